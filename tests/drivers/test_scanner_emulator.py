"""The scanner emulator and driver on virtual time (emu://, a fake clock for the driver): line-rate
pacing, decode and trigger timeouts, the ACK/NAK handshake giving up, command resends and their
NO_ANSWER fault, a partial line dropped as noise, unplugging and plugging back, and the control
vocabulary's replies. No sleeps: time moves only when a test says so."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from drivers.base import DeviceFault, FaultKind
from drivers.scanner import events as ev
from drivers.scanner.driver import ScannerDriver
from drivers.transport import attach_peer, detach_peer
from emulator.control import apply
from emulator.scanner.emulator import ScannerEmulator
from firmware_profiles import load_profile
from terminal.errors import ConfigError

CODE = "134567890123456789"


class FakeTime:
    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


class Swallow:
    """A peer that takes everything and says nothing (a scanner with its TX wire cut)."""

    def __init__(self) -> None:
        self.received = bytearray()

    def receive(self, data: bytes) -> None:
        self.received += data

    def transmit(self) -> bytes:
        return b""

    def close(self) -> None:
        pass


def profile(name: str) -> dict[str, Any]:
    return load_profile("scanner", name)


@pytest.fixture
def attach() -> Iterator[Any]:
    urls: list[str] = []
    drivers: list[ScannerDriver] = []

    def make(peer: Any, name: str, clock: FakeTime | None = None) -> ScannerDriver:
        url = attach_peer("scanner", peer)
        urls.append(url)
        driver = ScannerDriver(url, profile(name), clock=clock or FakeTime())
        driver.open()
        drivers.append(driver)
        return driver

    yield make
    for driver in drivers:
        driver.close()
    for url in urls:
        detach_peer(url)


def test_bytes_leave_at_the_line_rate_once_time_runs() -> None:
    scanner = ScannerEmulator(profile("generic-serial"))  # 9600 8N1: 960 bytes a second
    scanner.advance(0.0)
    scanner.scan(CODE)  # ]Q1 + 18 digits + CR = 22 bytes
    assert scanner.transmit() == b""
    scanner.advance(10 / 9600 * 5)
    assert scanner.transmit() == b"]Q113"
    scanner.advance(1.0)
    assert scanner.transmit() == b"4567890123456789\r"
    assert scanner.transmit() == b""


def test_without_a_clock_the_line_is_infinitely_fast() -> None:
    scanner = ScannerEmulator(profile("generic-serial"))
    scanner.scan(CODE, "code128")
    assert scanner.transmit() == f"]C0{CODE}\r".encode()


def test_a_serial_trigger_scanner_reads_only_while_triggered() -> None:
    scanner = ScannerEmulator(profile("honeywell-xenon"))
    scanner.advance(0.0)
    assert scanner.scan(CODE) is False
    scanner.advance(10.0)
    assert scanner.transmit() == b""  # nobody triggered it
    scanner.receive(b"\x16T\r")
    scanner.advance(0.049)
    assert scanner.transmit() == b""  # timing.decode_s = 0.05
    scanner.advance(0.011)
    scanner.advance(1.0)
    assert scanner.transmit() == f"s{CODE}\r\n".encode()


def test_a_triggered_scan_with_nothing_in_front_ends_with_no_read() -> None:
    scanner = ScannerEmulator(profile("honeywell-xenon"))
    scanner.advance(0.0)
    scanner.receive(b"\x16T\r")
    scanner.advance(2.9)
    assert scanner.transmit() == b""
    scanner.advance(0.2)  # trigger.timeout_s = 3
    scanner.advance(1.0)
    assert scanner.transmit() == b"NR\r\n"


def test_an_unanswered_decode_is_given_up_and_the_next_goes() -> None:
    scanner = ScannerEmulator(profile("honeywell-xenon"))
    scanner.advance(0.0)
    scanner.receive(b"\x16T\r")
    scanner.scan("FIRST")
    scanner.advance(1.0)
    scanner.receive(b"\x16T\r")
    scanner.scan("SECOND")
    scanner.advance(0.1)
    assert scanner.transmit() == b"sFIRST\r\n"  # SECOND waits for FIRST's ACK
    scanner.advance(2.0)  # handshake.timeout_s
    scanner.advance(0.1)
    assert scanner.transmit() == b"sSECOND\r\n" and scanner.given_up == 1


def test_naks_make_it_resend_until_it_gives_up() -> None:
    scanner = ScannerEmulator(profile("honeywell-xenon"))
    scanner.receive(b"\x16T\r")
    scanner.scan(CODE)
    line = f"s{CODE}\r\n".encode()
    assert scanner.transmit() == line
    for _ in range(3):  # handshake.max_resends
        scanner.receive(b"\x15")
        assert scanner.transmit() == line
    scanner.receive(b"\x15")
    assert scanner.transmit() == b"" and scanner.given_up == 1 and scanner.resends == 3


def test_an_unanswered_command_is_resent_then_no_answer(attach: Any) -> None:
    clock, peer = FakeTime(), Swallow()
    scanner = attach(peer, "zebra-ssi", clock)
    assert scanner.trigger() is None
    assert scanner.poll() == [] and scanner.wake_in() == pytest.approx(1.0)
    for _ in range(2):
        clock.now += 1.0
        assert scanner.poll() == []
    clock.now += 1.0
    (fault,) = scanner.poll()
    assert isinstance(fault, DeviceFault) and fault.kind is FaultKind.NO_ANSWER and fault.blocking
    first, resend = bytes.fromhex("04 E4 04 00 FF 14"), bytes.fromhex("04 E4 04 01 FF 13")
    assert bytes(peer.received) == first + resend + resend  # command.max_attempts = 3, retransmit bit set
    assert scanner.wake_in() is None and not scanner.busy


def test_commands_queue_behind_the_one_in_flight(attach: Any) -> None:
    peer = ScannerEmulator(profile("gm65"))
    scanner = attach(peer, "gm65")
    assert scanner.heartbeat() is None and scanner.read_zone(0x0000) is None
    assert scanner.poll() == [ev.HeartbeatReply(), ev.ZoneReply(data=b"\x01")]  # command mode
    assert peer.commands == 2


def test_a_stalled_partial_line_is_dropped_as_noise(attach: Any) -> None:
    clock = FakeTime()
    peer = ScannerEmulator(profile("generic-serial"))
    scanner = attach(peer, "generic-serial", clock)
    peer._put(b"]Q1123")  # the cable pulled mid-line
    assert scanner.poll() == []
    clock.now += 0.5  # command.inter_char_timeout_s
    assert scanner.poll() == []
    peer.scan(CODE)
    assert scanner.poll() == [ev.Scanned(data=CODE, symbology="qr", aim="]Q1")]


def test_the_same_code_twice_is_one_read_only_within_the_window(attach: Any) -> None:
    clock = FakeTime()
    peer = ScannerEmulator(profile("generic-serial"))
    scanner = attach(peer, "generic-serial", clock)
    peer.scan(CODE)
    peer.scan(CODE)
    assert len(scanner.poll()) == 1 and scanner.duplicates == 1
    clock.now += 0.5  # driver.same_code_s
    peer.scan(CODE)
    assert len(scanner.poll()) == 1


def test_unplugged_then_plugged_back(attach: Any) -> None:
    peer = ScannerEmulator(profile("zebra-ssi"))
    scanner = attach(peer, "zebra-ssi")
    peer.set_fault("unplugged")
    (fault,) = scanner.poll()
    assert isinstance(fault, DeviceFault) and fault.kind is FaultKind.DISCONNECTED
    assert isinstance(scanner.trigger(), DeviceFault)
    peer.clear_faults()
    peer.scan(CODE)
    assert scanner.trigger() is None
    assert scanner.poll() == [ev.Scanned(data=CODE, symbology="qr")]


def test_control_replies_are_one_line_and_never_repeat_the_code(tmp_path: Path) -> None:
    scanner = ScannerEmulator(profile("honeywell-xenon"))
    replies = [
        apply(scanner, f"scan {CODE}"), apply(scanner, f"scan {CODE} aztec"), apply(scanner, "scan"),
        apply(scanner, f"scan-image {tmp_path / 'missing.png'}"), apply(scanner, "fault no-read 0"),
        apply(scanner, "fault garbled 2"), apply(scanner, "fault nak-storm"), apply(scanner, "fault sideways"),
        apply(scanner, "status"), apply(scanner, "fault clear"), apply(scanner, "help"),
    ]
    assert [r.split(":")[0] for r in replies] == [
        "ok", "error", "error", "error", "error", "ok", "ok", "error", "ok", "ok", "ok"]
    assert not any(CODE in r or "\n" in r for r in replies)
    assert replies[0] == "ok: qr code of 18 character(s) waits for a trigger"
    assert "faults=garbled 2,nak-storm" in replies[8]
    assert all(word in replies[10] for word in ("scan", "scan-image", "fault", "status", "help"))


def test_a_picture_without_a_code_is_an_error(tmp_path: Path) -> None:
    from PIL import Image

    Image.new("L", (64, 64), 255).save(tmp_path / "blank.png")
    assert apply(ScannerEmulator(profile("generic-serial")), f"scan-image {tmp_path / 'blank.png'}") == (
        "error: no code found in the picture")


# -- in the till ------------------------------------------------------------------------------------
def test_the_emulated_till_opens_and_polls_its_scanner(tmp_path: Path) -> None:
    from sim.wiring import build_emulated_till
    from terminal.clock import FakeClock

    till = build_emulated_till(var_dir=tmp_path / "var", clock=FakeClock())
    try:
        scanner, emulator = till.devices["scanner"], till.emulators.scanner
        assert isinstance(scanner, ScannerDriver) and isinstance(emulator, ScannerEmulator)
        state = till.flow.state
        emulator.scan(CODE)
        seen: list[object] = []
        handle = till.flow.handle

        def recording(event: object) -> None:
            seen.append(event)
            handle(event)

        till.flow.handle = recording  # type: ignore[method-assign]
        till.runtime.step()
        assert ev.Scanned(data=CODE, symbology="qr", aim="]Q1") in seen
        assert till.flow.state == state  # the checkout has no phase for it yet: ignored
    finally:
        till.close()


def test_a_real_till_leaves_out_an_optional_emulated_slot() -> None:
    from terminal.app import open_devices

    terminal = {"devices": {"scanner": {"url": "emu://scanner", "profile": "", "driver": "", "optional": True}}}
    assert open_devices(terminal, {"scanner": profile("generic-serial")}, {}) == {}
    terminal["devices"]["scanner"]["optional"] = False
    with pytest.raises(ConfigError, match="is an emulator"):
        open_devices(terminal, {"scanner": profile("generic-serial")}, {})


def test_till_emulate_scanner_help_is_the_control_vocabulary() -> None:
    from emulator.scanner import control
    from sim.services import control_help, emulated_families

    assert "scanner" in emulated_families()
    assert control_help("scanner") == (control.__doc__ or "").strip()
    assert all(word in control_help("scanner") for word in ("scan TEXT", "scan-image FILE.png", "fault no-read"))
