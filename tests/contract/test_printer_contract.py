"""The printer contract, on every transport: status, a receipt job, and every fault the emulator can set.

The peer is touched only through the wire (PrinterDriver) and control lines (`fault ...`, `clear`,
`tick`, `pages`, `status`); on real hardware a control line skips the test (a person would have
to pull the roll)."""

from __future__ import annotations

import pytest

from drivers.base import DeviceEvent, DeviceFault, FaultKind
from drivers.printer import events as ev
from drivers.printer.driver import PrinterDriver
from tests.contract.conftest import Control, Rig, Serve, wait_for_events

FAMILY = "printer"


def open_driver(rig: Rig, timeout: float = 5) -> PrinterDriver:
    return PrinterDriver(rig.url, rig.profile, timeout=timeout)


def pages_cut(control: Control) -> int:
    """`pages` -> "ok: N page(s) cut, M unknown command(s)"."""
    return int(control.send("pages").split()[1])


def test_idle_printer_reports_ready(contract: Serve) -> None:
    rig = contract()
    with open_driver(rig) as printer:
        status = printer.status()
    assert isinstance(status, ev.PrinterStatus) and status.online and not status.paper_out


def test_a_job_prints_and_ends_with_a_cut(contract: Serve) -> None:
    rig = contract()
    job = [ev.Initialize(), ev.ChineseMode(on=True), ev.PrintText(data="合约测试 CONTRACT\n".encode("gb18030")),
           ev.FeedLines(lines=2), ev.Cut(partial=True)]
    with open_driver(rig) as printer:
        assert printer.print_job(job) == []
    assert rig.control.send("pages") == "ok: 1 page(s) cut, 0 unknown command(s)"


def test_paper_out_refuses_the_job_and_says_why(contract: Serve) -> None:
    rig = contract()
    assert "paper=out" in rig.control.send("fault paper-out")
    with open_driver(rig) as printer:
        problems = printer.print_job([ev.Initialize(), ev.PrintText(data=b"NOT PRINTED\n"), ev.Cut()])
    assert any(isinstance(p, ev.PaperOut) for p in problems)
    assert pages_cut(rig.control) == 0


# -- faults, on every transport ---------------------------------------------------------------------
def test_near_end_prints_and_warns(contract: Serve) -> None:
    rig = contract()
    rig.control.send("fault near-end")
    with open_driver(rig) as printer:
        assert printer.print_job([ev.Initialize(), ev.PrintText(data=b"LOW PAPER\n"), ev.Cut()]) == [ev.PaperNearEnd()]
    assert pages_cut(rig.control) == 1


@pytest.mark.parametrize(("fault", "problems"), [
    ("cover-open", [ev.CoverOpen(), ev.PrinterOffline(cause="cover open")]),
    ("cutter", [ev.CutterError(), ev.PrinterOffline(cause="cutter error")]),
    ("overheat", [ev.PrinterOffline(cause="auto-recoverable error")]),
    ("offline", [ev.PrinterOffline(cause="offline")]),
])
def test_a_stopped_printer_refuses_the_job_and_says_why(
    contract: Serve, fault: str, problems: list[DeviceEvent],
) -> None:
    rig = contract()
    rig.control.send(f"fault {fault}")
    with open_driver(rig) as printer:
        assert printer.print_job([ev.Initialize(), ev.PrintText(data=b"NOT PRINTED\n"), ev.Cut()]) == problems
    assert pages_cut(rig.control) == 0


def test_paper_running_out_mid_job_is_reported_after_it(contract: Serve) -> None:
    rig = contract()
    rig.control.send("fault paper-out after-lines 1")
    job = [ev.Initialize(), ev.PrintText(data=b"FIRST\nSECOND\n"), ev.FeedLines(lines=2), ev.Cut()]
    with open_driver(rig) as printer:
        assert printer.print_job(job) == [ev.PaperOut(), ev.PrinterOffline(cause="paper out")]
    status = rig.control.send("status")
    assert "paper=out" in status.split() and "pages=0" in status.split()


def test_a_hot_head_recovers_and_auto_status_says_so(contract: Serve) -> None:
    rig = contract()
    with open_driver(rig) as printer:
        printer.enable_auto_status()
        assert wait_for_events(printer) == [ev.PrinterReady()]
        rig.control.send("fault overheat")
        assert wait_for_events(printer) == [ev.PrinterOffline(cause="auto-recoverable error")]
        rig.control.send("tick 60")  # emulated time: the head has cooled down
        assert wait_for_events(printer) == [ev.PrinterReady()]


def test_a_pulled_cable_is_no_answer_never_paper_ok(contract: Serve) -> None:
    rig = contract()
    rig.control.send("fault disconnect")
    with open_driver(rig, timeout=0.3) as printer:
        fault = printer.status()
        assert isinstance(fault, DeviceFault) and fault.kind is FaultKind.NO_ANSWER
        rig.control.send("clear")
        assert printer.status() == ev.PrinterStatus()
