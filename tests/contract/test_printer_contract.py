"""The printer contract, on every transport: status, a receipt job, and conditions."""

from __future__ import annotations

from typing import Any

import pytest

from drivers.printer import events as ev
from drivers.printer.driver import PrinterDriver
from emulator.printer import PrinterEmulator
from firmware_profiles import load_profile
from tests.contract.conftest import Serve


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
