"""Issue 10's proof for the printer: python-escpos, a client written from ESC/POS docs alone,
prints two receipts over TCP (`Network`, what `till emulate printer --listen` serves) and over a
pty (`Serial`, `--pty`), and both come out whole.

Over TCP the printer is made slow and small-buffered (256 bytes, 40 mm/s): each receipt is several
buffers long, so only the TCP window's push-back keeps it whole (python-escpos has no flow
control of its own on a socket). Over the pty the client turns XON/XOFF on, as a third-party
serial client must (docs/printer-emulator.md)."""

from __future__ import annotations

from typing import Any

from emulator.link import PtyLink, TcpLink
from emulator.printer.emulator import PrinterEmulator
from firmware_profiles import load_profile

LINES = 16


def receipt(printer: Any, number: int) -> list[str]:
    """Print one receipt through python-escpos; returns the lines it should come out as."""
    lines = [f"RECEIPT {number}"] + [f"item {i:02d} {'.' * 30} {i * 1.25:6.2f}" for i in range(LINES)]
    for line in lines:
        printer.text(line + "\n")
    printer.cut()
    return lines


def printed(link: Any, emulator: PrinterEmulator) -> tuple[list[list[str]], int]:
    pages, lost = link.control(lambda _: (list(emulator.pages), emulator.overflowed))
    return [[line for line in page.text.splitlines() if line] for page in pages], lost


def test_python_escpos_network_prints_two_whole_receipts_on_a_slow_printer() -> None:
    from escpos.printer import Network

    profile = load_profile("printer", "epson-tm-t20iii")
    profile["serial"] = {**profile["serial"], "receive_buffer": 256, "xoff_free": 96, "xon_free": 160}
    profile["printing"] = {"speed_mm_s": 40}
    emulator = PrinterEmulator(profile)
    emulator.advance(0)  # printing at its own pace from the first byte
    with TcpLink(emulator) as link:
        host, port = link.endpoint.removeprefix("socket://").rsplit(":", 1)
        printer = Network(host, int(port), timeout=30)
        printer.open()
        try:
            expected = [receipt(printer, 1), receipt(printer, 2)]
            assert printer.is_online() is True  # answered once every byte before it was taken in
        finally:
            printer.close()
        pages, lost = printed(link, emulator)
    assert lost == 0
    assert pages == expected


def test_python_escpos_serial_prints_two_whole_receipts_on_a_pty() -> None:
    from escpos.printer import Serial

    profile = load_profile("printer", "epson-tm-t20iii")
    emulator = PrinterEmulator(profile)
    baud = int(profile["serial"]["baud"])
    with PtyLink(emulator, baud=baud) as link:
        printer = Serial(devfile=link.endpoint, baudrate=baud, timeout=2, xonxoff=True, dsrdtr=False)
        try:
            expected = [receipt(printer, 1), receipt(printer, 2)]
            assert printer.is_online() is True
        finally:
            printer.close()
        pages, lost = printed(link, emulator)
    assert lost == 0
    assert pages == expected
