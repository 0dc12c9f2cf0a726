"""What the printer contract cannot see through control lines: the rendered paper itself.

Not contract tests (marked `emulator_insides`): they read the in-process emulator's pages, which
no control line reports and no real printer offers, so they run on emu:// only.
"""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from drivers.printer import events as ev
from drivers.printer.driver import PrinterDriver
from drivers.transport import attach_peer, detach_peer
from emulator.printer.emulator import PrinterEmulator
from terminal import devices

pytestmark = pytest.mark.emulator_insides


@pytest.fixture
def printer() -> Iterator[tuple[PrinterEmulator, PrinterDriver]]:
    row = devices.family("printer")
    profile = devices.load_device_profile(row, row.default_profile)
    emulator = PrinterEmulator(profile)
    url = attach_peer(row.url_kind, emulator)
    try:
        with PrinterDriver(url, profile, timeout=5) as driver:
            yield emulator, driver
    finally:
        detach_peer(url)


def test_the_job_is_on_the_paper(printer: tuple[PrinterEmulator, PrinterDriver]) -> None:
    emulator, driver = printer
    job = [ev.Initialize(), ev.ChineseMode(on=True), ev.PrintText(data="合约测试 CONTRACT\n".encode("gb18030")),
           ev.FeedLines(lines=2), ev.Cut(partial=True)]
    assert driver.print_job(job) == []
    assert len(emulator.pages) == 1 and "合约测试 CONTRACT" in emulator.pages[0].text


def test_near_end_still_prints_the_words(printer: tuple[PrinterEmulator, PrinterDriver]) -> None:
    emulator, driver = printer
    emulator.set_fault("near-end")
    assert driver.print_job([ev.Initialize(), ev.PrintText(data=b"LOW PAPER\n"), ev.Cut()]) == [ev.PaperNearEnd()]
    assert [p.text for p in emulator.pages] == ["LOW PAPER"]


def test_paper_running_out_mid_job_keeps_what_was_printed(printer: tuple[PrinterEmulator, PrinterDriver]) -> None:
    emulator, driver = printer
    emulator.set_fault("paper-out", after_lines=1)
    job = [ev.Initialize(), ev.PrintText(data=b"FIRST\nSECOND\n"), ev.FeedLines(lines=2), ev.Cut()]
    assert driver.print_job(job) == [ev.PaperOut(), ev.PrinterOffline(cause="paper out")]
    assert (list(emulator.pages), emulator.current_page().text) == ([], "FIRST")
