"""The printer contract, on every transport: status, a receipt job, and every fault the emulator can set."""

from __future__ import annotations

from typing import Any

import pytest

from drivers.base import DeviceEvent, DeviceFault, FaultKind
from drivers.printer import events as ev
from drivers.printer.driver import PrinterDriver
from emulator.printer.emulator import PrinterEmulator
from firmware_profiles import load_profile
from tests.contract.conftest import Serve, wait_for_events


def _profile(request: pytest.FixtureRequest) -> dict[str, Any]:
    return load_profile("printer", request.config.getoption("--hil-profile") or "cn-80mm")


def test_idle_printer_reports_ready(serve: Serve, request: pytest.FixtureRequest) -> None:
    profile = _profile(request)
    url, _ = serve("printer", PrinterEmulator(profile))
    with PrinterDriver(url, profile, timeout=5) as printer:
        status = printer.status()
    assert isinstance(status, ev.PrinterStatus) and status.online and not status.paper_out


def test_a_job_prints_and_ends_with_a_cut(serve: Serve, request: pytest.FixtureRequest) -> None:
    profile = _profile(request)
    emulator = PrinterEmulator(profile)
    url, control = serve("printer", emulator)
    job = [ev.Initialize(), ev.ChineseMode(on=True), ev.PrintText(data="合约测试 CONTRACT\n".encode("gb18030")),
           ev.FeedLines(lines=2), ev.Cut(partial=True)]
    with PrinterDriver(url, profile, timeout=5) as printer:
        assert printer.print_job(job) == []
    if control is None:
        pytest.skip("on hardware, look at the paper")
    pages = control(lambda peer: list(peer.pages))
    assert len(pages) == 1 and "合约测试 CONTRACT" in pages[0].text


def test_paper_out_refuses_the_job_and_says_why(serve: Serve, request: pytest.FixtureRequest) -> None:
    profile = _profile(request)
    emulator = PrinterEmulator(profile)
    url, control = serve("printer", emulator)
    if control is None:
        pytest.skip("needs the emulator's paper sensor")
    control(lambda peer: peer.set_paper("out"))
    with PrinterDriver(url, profile, timeout=5) as printer:
        problems = printer.print_job([ev.Initialize(), ev.PrintText(data=b"NOT PRINTED\n"), ev.Cut()])
    assert any(isinstance(p, ev.PaperOut) for p in problems)
    assert control(lambda peer: list(peer.pages)) == []


# -- faults, on every transport ---------------------------------------------------------------------
def test_near_end_prints_and_warns(serve: Serve, request: pytest.FixtureRequest) -> None:
    profile = _profile(request)
    url, control = serve("printer", PrinterEmulator(profile))
    if control is None:
        pytest.skip("needs the emulator's paper sensor")
    control(lambda peer: peer.set_fault("near-end"))
    with PrinterDriver(url, profile, timeout=5) as printer:
        assert printer.print_job([ev.Initialize(), ev.PrintText(data=b"LOW PAPER\n"), ev.Cut()]) == [ev.PaperNearEnd()]
    assert [p.text for p in control(lambda peer: list(peer.pages))] == ["LOW PAPER"]


@pytest.mark.parametrize(("fault", "problems"), [
    ("cover-open", [ev.CoverOpen(), ev.PrinterOffline(cause="cover open")]),
    ("cutter", [ev.CutterError(), ev.PrinterOffline(cause="cutter error")]),
    ("overheat", [ev.PrinterOffline(cause="auto-recoverable error")]),
    ("offline", [ev.PrinterOffline(cause="offline")]),
])
def test_a_stopped_printer_refuses_the_job_and_says_why(
    serve: Serve, request: pytest.FixtureRequest, fault: str, problems: list[DeviceEvent],
) -> None:
    profile = _profile(request)
    url, control = serve("printer", PrinterEmulator(profile, faults=[fault]))
    if control is None:
        pytest.skip("needs the emulator's fault switches")
    with PrinterDriver(url, profile, timeout=5) as printer:
        assert printer.print_job([ev.Initialize(), ev.PrintText(data=b"NOT PRINTED\n"), ev.Cut()]) == problems
    assert control(lambda peer: list(peer.pages)) == []


def test_paper_running_out_mid_job_is_reported_after_it(serve: Serve, request: pytest.FixtureRequest) -> None:
    profile = _profile(request)
    url, control = serve("printer", PrinterEmulator(profile))
    if control is None:
        pytest.skip("needs the emulator's paper sensor")
    control(lambda peer: peer.set_fault("paper-out", after_lines=1))
    job = [ev.Initialize(), ev.PrintText(data=b"FIRST\nSECOND\n"), ev.FeedLines(lines=2), ev.Cut()]
    with PrinterDriver(url, profile, timeout=5) as printer:
        assert printer.print_job(job) == [ev.PaperOut(), ev.PrinterOffline(cause="paper out")]
    assert control(lambda peer: (list(peer.pages), peer.current_page().text)) == ([], "FIRST")


def test_a_hot_head_recovers_and_auto_status_says_so(serve: Serve, request: pytest.FixtureRequest) -> None:
    profile = _profile(request)
    url, control = serve("printer", PrinterEmulator(profile))
    if control is None:
        pytest.skip("needs the emulator's fault switches")
    with PrinterDriver(url, profile, timeout=5) as printer:
        printer.enable_auto_status()
        assert wait_for_events(printer) == [ev.PrinterReady()]
        control(lambda peer: peer.set_fault("overheat"))
        assert wait_for_events(printer) == [ev.PrinterOffline(cause="auto-recoverable error")]
        control(lambda peer: peer.tick(60))  # emulated time: the head has cooled down
        assert wait_for_events(printer) == [ev.PrinterReady()]


def test_a_pulled_cable_is_no_answer_never_paper_ok(serve: Serve, request: pytest.FixtureRequest) -> None:
    profile = _profile(request)
    url, control = serve("printer", PrinterEmulator(profile))
    if control is None:
        pytest.skip("needs the emulator's fault switches")
    control(lambda peer: peer.set_fault("disconnect"))
    with PrinterDriver(url, profile, timeout=0.3) as printer:
        fault = printer.status()
        assert isinstance(fault, DeviceFault) and fault.kind is FaultKind.NO_ANSWER
        control(lambda peer: peer.clear_faults())
        assert printer.status() == ev.PrinterStatus()
