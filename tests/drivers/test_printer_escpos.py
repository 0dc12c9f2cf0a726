"""python-escpos's own Serial printer against our emulator on a pty: a third party's view of it.

python-escpos opens a device path with serial.Serial (no URLs, PROTOCOLS.md §1.4 pitfall 3), so
the emulator is served on a pty. Each status query waits the full read timeout (pitfall 1), hence
the small timeout here.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest

from emulator.link import PtyLink
from emulator.printer.emulator import PrinterEmulator
from firmware_profiles import load_profile

PROFILE = load_profile("printer", "epson-tm-t20iii")


def _emulator(peer: object) -> PrinterEmulator:
    assert isinstance(peer, PrinterEmulator)
    return peer


@pytest.fixture
def served() -> Iterator[tuple[PtyLink, Any]]:
    from escpos.printer import Serial

    link = PtyLink(PrinterEmulator(PROFILE), baud=PROFILE["serial"]["baud"])
    link.start()
    printer = Serial(devfile=link.endpoint, baudrate=PROFILE["serial"]["baud"], timeout=0.2)
    try:
        yield link, printer
    finally:
        printer.close()
        link.stop()


def test_is_online_and_paper_status_as_python_escpos_reads_them(served: tuple[PtyLink, Any]) -> None:
    link, printer = served
    assert printer.is_online() is True
    assert printer.paper_status() == 2
    link.control(lambda peer: _emulator(peer).set_fault("near-end"))
    assert printer.paper_status() == 1
    link.control(lambda peer: _emulator(peer).set_fault("paper-out"))
    assert printer.paper_status() == 0
    assert printer.is_online() is False


def test_what_python_escpos_prints_comes_out_of_the_emulator(served: tuple[PtyLink, Any]) -> None:
    link, printer = served
    printer.set(align="center", bold=True)
    printer.text("OpenTill\n")
    printer.qr("https://x.cn/p?o=1", native=True, size=4)
    printer.cut()
    assert printer.is_online() is True  # answered after the job: everything before it has arrived
    pages = link.control(lambda peer: [p.text for p in _emulator(peer).pages])
    assert pages == [" " * 20 + "OpenTill\n" + " " * 12 + "[QR: https://x.cn/p?o=1]" + "\n" * 6]
