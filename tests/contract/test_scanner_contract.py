"""The scanner contract, on every transport: emu://, a pty, socket://, a `till emulate scanner` process
and (with --hil scanner=URL[,profile=NAME]) a real scanner.

The peer is touched only through the wire (ScannerDriver) and control lines (`scan`, `scan-image`,
`fault`, `clear`, `status`); on real hardware a control line skips the test, where a person would
hold the code under the scanner. Each protocol (serial line mode, GM65 frames, Zebra SSI) runs on
its own profile."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from drivers.base import DeviceEvent, DeviceFault, FaultKind
from drivers.scanner import events as ev
from drivers.scanner.driver import ScannerDriver
from tests.contract.conftest import Control, Rig, Serve, collect

FAMILY = "scanner"
PROFILES = ["generic-serial", "honeywell-xenon", "gm65", "zebra-ssi"]
PAYMENT_CODE = "134567890123456789"  # a WeChat Pay-style payment code: 18 digits


def open_driver(rig: Rig, **driver: Any) -> ScannerDriver:
    profile = {**rig.profile, "driver": {**rig.profile["driver"], **driver}}
    return ScannerDriver(rig.url, profile, timeout=5)


def status_of(control: Control) -> dict[str, str]:
    words = control.send("status").removeprefix("ok:").split()
    return dict(w.split("=", 1) for w in words if "=" in w)




def scans(events: list[DeviceEvent]) -> list[ev.Scanned]:
    return [e for e in events if isinstance(e, ev.Scanned)]


def faults(events: list[DeviceEvent]) -> list[DeviceFault]:
    return [e for e in events if isinstance(e, DeviceFault)]


def read_one(rig: Rig, driver: ScannerDriver, line: str) -> list[DeviceEvent]:
    """Hold a code in front of the scanner, trigger it if the profile wants the host to, and wait."""
    rig.control.send(line)
    if rig.profile["trigger"]["mode"] == "serial":
        assert driver.trigger() is None
    return collect(driver, lambda seen: bool(scans(seen)))


@pytest.mark.parametrize("profile_name", PROFILES)
def test_a_payment_code_is_scanned(contract: Serve, profile_name: str) -> None:
    rig = contract(profile_name)
    with open_driver(rig) as scanner:
        (code,) = scans(read_one(rig, scanner, f"scan {PAYMENT_CODE} qr"))
    assert code.data == PAYMENT_CODE
    expected = {"aim": ("qr", "]Q1"), "honeywell": ("qr", "s"), "none": ("", "")}[rig.profile["output"]["symbology_id"]]
    if rig.profile["protocol"] == "ssi":
        expected = ("qr", "")
    assert (code.symbology, code.aim) == expected


@pytest.mark.parametrize("profile_name", ["generic-serial", "zebra-ssi"])
def test_chinese_text_and_a_barcode(contract: Serve, profile_name: str) -> None:
    rig = contract(profile_name)
    with open_driver(rig) as scanner:
        (qr,) = scans(read_one(rig, scanner, "scan 会员码:VIP-8848 qr"))
        (bar,) = scans(read_one(rig, scanner, "scan 6901234567892 ean13"))
    assert qr.data == "会员码:VIP-8848"
    assert (bar.data, bar.symbology) == ("6901234567892", "ean13")


@pytest.mark.parametrize("profile_name", ["honeywell-xenon", "zebra-ssi"])
def test_a_garbled_decode_is_naked_and_resent(contract: Serve, profile_name: str) -> None:
    rig = contract(profile_name)
    rig.control.send("fault garbled")
    with open_driver(rig) as scanner:
        events = read_one(rig, scanner, f"scan {PAYMENT_CODE}")
        assert [c.data for c in scans(events)] == [PAYMENT_CODE]
        assert faults(events) and all(f.kind is FaultKind.PROTOCOL and not f.blocking for f in faults(events))
        assert scanner.garbled == 1
    assert status_of(rig.control)["resends"] == "1"


def test_without_a_handshake_a_garbled_line_is_a_fault_and_no_code(contract: Serve) -> None:
    rig = contract("generic-serial")
    rig.control.send("fault garbled")
    with open_driver(rig) as scanner:
        rig.control.send(f"scan {PAYMENT_CODE}")
        events = collect(scanner, lambda seen: bool(faults(seen)))
        assert not scans(events) and [f.kind for f in faults(events)] == [FaultKind.PROTOCOL]
        (code,) = scans(read_one(rig, scanner, f"scan {PAYMENT_CODE}"))  # the next one is clean
    assert code.data == PAYMENT_CODE


@pytest.mark.parametrize("profile_name", ["generic-serial", "gm65"])
def test_a_double_read_is_one_code(contract: Serve, profile_name: str) -> None:
    rig = contract(profile_name)
    rig.control.send("fault double-read")
    with open_driver(rig, same_code_s=3600.0) as scanner:  # a window no machine's stall reaches
        rig.control.send(f"scan {PAYMENT_CODE}")
        if rig.profile["trigger"]["mode"] == "serial":
            assert scanner.trigger() is None
        events = collect(scanner, lambda seen: scanner.duplicates == 1)
        assert [c.data for c in scans(events)] == [PAYMENT_CODE] and scanner.duplicates == 1


def test_a_no_read_is_reported(contract: Serve) -> None:
    rig = contract("honeywell-xenon")  # it sends "NR" when a triggered scan reads nothing
    rig.control.send("fault no-read 1")
    with open_driver(rig) as scanner:
        rig.control.send(f"scan {PAYMENT_CODE}")
        assert scanner.trigger() is None
        events = collect(scanner, lambda seen: any(isinstance(e, ev.NoRead) for e in seen))
        assert any(isinstance(e, ev.NoRead) for e in events) and not scans(events)
        (code,) = scans(read_one(rig, scanner, f"scan {PAYMENT_CODE}"))
    assert code.data == PAYMENT_CODE


@pytest.mark.parametrize("profile_name", ["gm65", "zebra-ssi"])
def test_a_nak_storm_fails_the_trigger_then_passes(contract: Serve, profile_name: str) -> None:
    rig = contract(profile_name)
    rig.control.send("fault nak-storm")
    with open_driver(rig) as scanner:
        assert scanner.trigger() is None  # written; the refusals come through poll()
        events = collect(scanner, lambda seen: bool(faults(seen)))
        assert [f.kind for f in faults(events)] == [FaultKind.PROTOCOL] and not scanner.busy
        rig.control.send("fault clear")
        (code,) = scans(read_one(rig, scanner, f"scan {PAYMENT_CODE}"))
    assert code.data == PAYMENT_CODE
    assert int(status_of(rig.control)["commands"]) == rig.profile["command"]["max_attempts"] + 1


def test_menu_commands_are_echoed(contract: Serve) -> None:
    rig = contract("honeywell-xenon")
    rig.control.send("status")  # a real Xenon answers menu commands itself; the emulator needs no set-up
    with open_driver(rig) as scanner:
        assert scanner.menu("PRE", "BK2", "995C80") is None
        assert scanner.menu("PRE", "BK2", "?") is None
        replies = [e for e in collect(scanner, lambda seen: len(seen) >= 2) if isinstance(e, ev.MenuReply)]
    assert replies == [ev.MenuReply(setting="PREBK2995C80"), ev.MenuReply(setting="PREBK2995C80")]


def test_gm65_zone_read_and_heartbeat(contract: Serve) -> None:
    rig = contract("gm65")
    rig.control.send("status")
    with open_driver(rig) as scanner:
        assert scanner.read_zone(0x002A, 2) is None and scanner.heartbeat() is None
        events = collect(scanner, lambda seen: len(seen) >= 2)
    assert events == [ev.ZoneReply(status=0, data=b"\x39\x01"), ev.HeartbeatReply()]  # 9600 baud


def test_an_unplugged_scanner_is_a_disconnect(contract: Serve) -> None:
    rig = contract()
    with open_driver(rig) as scanner:
        rig.control.send("fault unplugged")
        events = collect(scanner, lambda seen: bool(faults(seen)))
    assert [f.kind for f in faults(events)] == [FaultKind.DISCONNECTED]


def test_scan_image_reads_every_code_in_a_picture(contract: Serve, tmp_path: Path) -> None:
    import qrcode
    from PIL import Image

    first = qrcode.make(PAYMENT_CODE).get_image().convert("L")
    second = qrcode.make("https://qr.alipay.com/fkx12345").get_image().convert("L")
    picture = Image.new("L", (first.width + second.width + 40, max(first.height, second.height)), 255)
    picture.paste(first, (0, 0))
    picture.paste(second, (first.width + 40, 0))
    path = tmp_path / "two-codes.png"
    picture.save(path)
    rig = contract()
    with open_driver(rig) as scanner:
        assert rig.control.send(f"scan-image {path}") == "ok: qr, qr (2 code(s))"
        events = collect(scanner, lambda seen: len(scans(seen)) >= 2)
    assert sorted(c.data for c in scans(events)) == sorted([PAYMENT_CODE, "https://qr.alipay.com/fkx12345"])
    assert {c.symbology for c in scans(events)} == {"qr"}
