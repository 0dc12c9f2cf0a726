"""XON/XOFF end to end on a paced pty: a printer slower than its line fills its buffer, says XOFF,
and a host that listens loses nothing; one that does not loses what overflows."""

from __future__ import annotations

from typing import Any

from drivers.events import Role
from drivers.printer import events as ev
from drivers.printer.codec import PrinterCodec
from drivers.printer.driver import PrinterDriver
from drivers.transport import open_port
from emulator.link import PtyLink
from emulator.printer.emulator import PrinterEmulator
from firmware_profiles import load_profile

LINES = 12
JOB = [ev.Initialize(), ev.PrintText(data=(b"x" * 48 + b"\n") * LINES), ev.Cut()]


def slow_printer() -> dict[str, Any]:
    """9600 baud carries ~960 bytes/s; a 40 mm/s head prints ~9 lines (~460 bytes) a second."""
    profile = load_profile("printer", "epson-tm-t20iii")
    profile["serial"] = {**profile["serial"], "baud": 9600, "receive_buffer": 256, "xoff_free": 96, "xon_free": 160}
    profile["printing"] = {"speed_mm_s": 40}
    return profile


def test_a_host_that_honours_xoff_loses_nothing() -> None:
    profile = slow_printer()
    emulator = PrinterEmulator(profile)
    with PtyLink(emulator, baud=9600) as link:
        with PrinterDriver(link.endpoint, profile, timeout=5) as printer:
            assert printer.print_job(JOB) == []
        pauses, lost, pages = link.control(lambda _: (emulator.pauses, emulator.overflowed, list(emulator.pages)))
    assert pauses >= 1 and lost == 0
    assert pages[0].text.splitlines() == ["x" * 48] * LINES


def test_a_host_that_ignores_xoff_overflows_the_buffer() -> None:
    profile = slow_printer()
    emulator = PrinterEmulator(profile)
    with PtyLink(emulator, baud=9600) as link:
        port = open_port(link.endpoint, baudrate=9600, timeout=3)
        try:
            host = PrinterCodec(Role.HOST)
            port.write(b"".join(host.send(c) for c in JOB) + b"\x10\x04\x01")
            assert port.read(1) == b"\x13"  # XOFF first, then ...
            assert port.read(1) == b"\x12"  # ... the answer to DLE EOT 1, after every byte before it
        finally:
            port.close()
        lost = link.control(lambda _: emulator.overflowed)
    assert lost > 0


def test_over_tcp_a_full_buffer_pushes_back_and_loses_nothing_and_sends_no_xoff() -> None:
    """A network printer stops reading (the TCP window fills), where a serial one would drop."""
    import socket

    from emulator.link import TcpLink

    profile = slow_printer()
    emulator = PrinterEmulator(profile)
    host = PrinterCodec(Role.HOST)
    job = b"".join(host.send(c) for c in JOB * 2)  # ~1.2 KB: several times the 256-byte buffer
    emulator.advance(0)  # the head prints at its own pace from the first byte (as once served a while)
    with TcpLink(emulator) as link:
        address = link.endpoint.removeprefix("socket://").rsplit(":", 1)
        with socket.create_connection((address[0], int(address[1])), timeout=10) as conn:
            conn.sendall(job + b"\x10\x04\x01")  # a stock client: no flow control at all
            reply = conn.recv(16)  # answered once every byte before it has been taken in
        lost, pages = link.control(lambda _: (emulator.overflowed, list(emulator.pages)))
    assert lost == 0
    assert reply == b"\x12"  # the status byte only: no XOFF on a TCP printer's reply stream
    assert [p.text.splitlines() for p in pages] == [["x" * 48] * LINES] * 2
