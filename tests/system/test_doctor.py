"""`till doctor` (terminal/service/doctor.py): one row a component, warn and fail when a person is
needed, a missing port or a silent device reported without a traceback or a hang."""

from __future__ import annotations

import json
from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path

import pytest

from drivers.acquirer.driver import AcquirerDriver
from drivers.transport import attach_peer, detach_peer
from emulator.acquirer.peer import AcquirerPeer
from sim.wiring import EmulatedTill, build_emulated_till
from terminal.app import load_terminal_profile
from terminal.checkout.table import CheckoutState
from terminal.clock import FakeClock
from terminal.journal import Journal
from terminal.service.doctor import Report, diagnose, diagnose_till
from tests.system.conftest import run_cli

COMPONENTS = ["printer", "card_reader", "scanner", "signature_pad", "wallet", "host", "journal", "disk", "clock"]
PLENTY = 10**10  # bytes free: the real disk's free space is not this test's business


def _ok(till: EmulatedTill) -> EmulatedTill:
    till.journal.free_bytes = lambda: PLENTY
    return till


@pytest.fixture
def till(clock: FakeClock, var_dir: Path) -> Iterator[EmulatedTill]:
    with build_emulated_till(clock=clock, var_dir=var_dir, host_transport="emu") as t:
        yield _ok(t)


def _statuses(report: Report) -> dict[str, str]:
    return {check.component: check.status for check in report.checks}


def test_an_emulated_till_is_all_ok(till: EmulatedTill) -> None:
    report = diagnose_till(till)
    assert [c.component for c in report.checks] == COMPONENTS
    assert set(_statuses(report).values()) == {"ok"}, report.render()
    assert not report.needs_person
    assert report.check("card_reader").data["firmware"]
    assert report.check("host").data["response_code"] == "00"
    assert report.check("signature_pad").data["serial_number"]
    text = report.render()
    assert all(component in text for component in COMPONENTS) and "all ok" in text
    assert till.flow.state is CheckoutState.IDLE  # the probes' answers were the doctor's, the till is as it was


def test_paper_near_end_warns(till: EmulatedTill) -> None:
    till.emulators.printer.set_fault("near-end")
    report = diagnose_till(till)
    printer = report.check("printer")
    assert (printer.status, printer.data["paper_near_end"]) == ("warn", True)
    assert "paper near end" in printer.detail and report.needs_person
    assert _statuses(report)["card_reader"] == "ok"


def test_devices_that_do_not_answer_fail_at_once(till: EmulatedTill) -> None:
    """emu:// peers gone silent: each request is over when nothing more can come (no real wait)."""
    till.emulators.card_reader.set_fault("silent")
    till.emulators.printer.set_fault("disconnect")
    report = diagnose_till(till)
    statuses = _statuses(report)
    assert (statuses["card_reader"], statuses["printer"]) == ("fail", "fail")
    assert "no answer" in report.check("card_reader").detail
    assert "no answer" in report.check("printer").detail
    assert statuses["host"] == statuses["journal"] == "ok"


class _SwitchablePeer(AcquirerPeer):
    """The in-process host, which stops answering when told to (a host that went quiet)."""

    silent = False

    def transmit(self) -> bytes:
        data = super().transmit()
        return b"" if self.silent else data


def test_a_host_that_does_not_answer_the_echo_fails(clock: FakeClock, var_dir: Path) -> None:
    peer = _SwitchablePeer()
    url = attach_peer("acquirer", peer)
    link = AcquirerDriver(url)
    link.connect()
    try:
        with build_emulated_till(clock=clock, var_dir=var_dir, host=link) as till:
            _ok(till)
            peer.silent = True
            report = diagnose_till(till)
            host = report.check("host")
            assert host.status == "fail" and "no answer" in host.detail
            assert till.flow.state is CheckoutState.IDLE
            assert _statuses(report)["printer"] == "ok"
            assert diagnose_till(till, echo=False).check("host").status == "ok"  # signed on, not asked
    finally:
        detach_peer(url)


def test_a_journal_nearly_full_warns_and_a_clock_behind_it_fails(clock: FakeClock, var_dir: Path) -> None:
    limits = {"limits.journal_capacity": 2, "limits.journal_warn_ratio": 0.5}
    with build_emulated_till(clock=clock, var_dir=var_dir, host_transport="emu", overrides=limits) as till:
        _ok(till)
        later = clock.wall() + timedelta(days=1)  # written by a clock that was ahead
        till.journal.record_sent(txn_id="t1", amount_minor=100, currency="156", entry_mode="chip", pan_last4="0001",
                                 pan_token="x", at=later)
        till.journal.record_answer("t1", approved=True, response_code="00", auth_code="123456", rrn="1" * 12,
                                   at=later)
        report = diagnose_till(till)
    journal = report.check("journal")
    assert (journal.status, journal.data["used"], journal.data["capacity"]) == ("warn", 1, 2)
    assert "settle soon" in journal.detail
    assert report.check("clock").status == "fail" and "behind" in report.check("clock").detail


def _profile(tmp_path: Path, name: str, body: str) -> Path:
    path = tmp_path / f"{name}.toml"
    path.write_text(f'schema = 1\nname = "{name}"\ninherits = "emulated-counter"\n{body}', encoding="utf-8")
    return path


def test_a_missing_port_is_a_fail_row_and_the_rest_is_reported(
    clock: FakeClock, var_dir: Path, tmp_path: Path,
) -> None:
    profile = _profile(tmp_path, "no-printer", '[devices.printer]\nurl = "/dev/nonexistent"\n')
    report = diagnose(str(profile), var_dir, clock=clock, build=build_emulated_till, host_transport="emu")
    assert [c.component for c in report.checks] == COMPONENTS
    printer = report.check("printer")
    assert printer.status == "fail" and "devices.printer" in printer.detail and "/dev/nonexistent" in printer.detail
    assert {status for component, status in _statuses(report).items()
            if component not in ("printer", "disk")} == {"ok"}, report.render()


def test_a_damaged_journal_fails_and_nothing_else_is_hidden(clock: FakeClock, var_dir: Path) -> None:
    var_dir.mkdir(parents=True)
    (var_dir / "journal.sqlite3").write_bytes(b"not a database" * 100)
    report = diagnose("emulated-counter", var_dir, clock=clock, build=build_emulated_till, host_transport="emu")
    assert [c.component for c in report.checks] == COMPONENTS
    assert report.check("journal").status == "fail" and "damaged" in report.check("journal").detail
    assert report.check("printer").status == "warn"  # not checked: the till did not start


# -- the command -------------------------------------------------------------------------------------
def test_cli_json_has_every_component_and_exit_0(
    capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch, var_dir: Path,
) -> None:
    monkeypatch.setattr("terminal.journal.disk_free_bytes", lambda folder: PLENTY)
    code, out, err = run_cli(capsys, monkeypatch, "doctor", "--var", str(var_dir), "--json")
    report = json.loads(out)
    assert (code, err) == (0, ""), out
    assert [c["component"] for c in report["checks"]] == COMPONENTS and report["needs_person"] is False


def test_cli_exit_1_when_a_person_is_needed_and_2_for_bad_input(
    capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch, var_dir: Path, tmp_path: Path,
) -> None:
    profile = _profile(tmp_path, "tty-less", '[devices.card_reader]\nurl = "/dev/nonexistent"\n')
    code, out, _ = run_cli(capsys, monkeypatch, "doctor", "--var", str(var_dir), "--profile", str(profile))
    assert code == 1 and "FAIL" in out and "/dev/nonexistent" in out
    code, out, err = run_cli(capsys, monkeypatch, "doctor", "--var", str(var_dir), "--profile", "no-such-profile")
    assert code == 2 and out == "" and err.startswith("till: ") and err.count("\n") == 1
    journal = Journal(var_dir / "journal.sqlite3")  # a till holds the journal
    try:
        code, out, err = run_cli(capsys, monkeypatch, "doctor", "--var", str(var_dir))
    finally:
        journal.close()
    assert code == 2 and out == "" and "another till is using" in err


@pytest.mark.parametrize("model", ["gm65", "zebra-ssi"])
def test_a_scanner_that_answers_commands_is_asked(clock: FakeClock, var_dir: Path, model: str) -> None:
    settings = load_terminal_profile("emulated-counter")["devices"]["scanner"]
    overrides = {"devices.scanner": {**settings, "profile": model}}
    with build_emulated_till(clock=clock, var_dir=var_dir, host_transport="emu", overrides=overrides) as till:
        assert diagnose_till(till).check("scanner").status == "ok"
        till.emulators.scanner.set_fault("nak-storm")
        scanner = diagnose_till(till).check("scanner")
        assert scanner.status == "fail", scanner
        till.emulators.scanner.clear_faults()
        assert diagnose_till(till).check("scanner").status == "ok"


def test_cli_var_that_is_a_file_is_bad_input(
    capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch, tmp_path: Path,
) -> None:
    (tmp_path / "file").write_text("x")
    code, out, err = run_cli(capsys, monkeypatch, "doctor", "--var", str(tmp_path / "file"))
    assert (code, out) == (2, "") and "is not a folder" in err


def test_a_till_in_a_sale_is_not_interrupted(till: EmulatedTill) -> None:
    """Mid-sale the host gets no echo and the reader no request; the sale goes on as before."""
    till.flow.begin_sale(1500)
    till.runtime.run_until(lambda: till.flow.state is CheckoutState.AWAITING_CARD, io_wait=0.0)
    report = diagnose_till(till)
    for component in ("card_reader", "host", "wallet"):
        check = report.check(component)
        assert check.status == "ok" and "busy (AWAITING_CARD)" in check.detail, check
    assert report.check("printer").data["online"] is True  # a status request disturbs no sale
    till.emulators.card_reader.present("approved")
    till.runtime.run_until(lambda: till.flow.state is CheckoutState.IDLE, io_wait=0.0)
    assert till.flow.completed[-1].outcome == "APPROVED"
