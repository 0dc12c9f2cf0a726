"""The money path under misuse (issue 9, "Settlement and the checkout"): settlement with credits
after a 95, a full journal at every entry point, settling with an escalated reversal, a sale while
a reversal is owed, stale card removals, typed outcomes and amount rules, receipt times and reasons.

After every settlement path the terminal's batch number equals the host's."""

from __future__ import annotations

from pathlib import Path

import pytest

from drivers.events import DeviceFault, FaultKind
from emulator.acquirer.simulator import AcquirerSimulator
from sim.wiring import EmulatedTill, build_emulated_till
from terminal.checkout.flow import Sale
from terminal.checkout.table import LIMITS, CheckoutState
from terminal.clock import FakeClock
from terminal.errors import InputError, JournalError
from terminal.receipts.layout import Copy
from tests.system.conftest import SUPERVISOR, approve

S = CheckoutState
FULL = "交易流水已满，请先结算"


def _host(till: EmulatedTill) -> AcquirerSimulator:
    assert till.emulators.host is not None
    return till.emulators.host


def _state(till: EmulatedTill) -> CheckoutState:
    return till.flow.state


def _tid(till: EmulatedTill) -> str:
    return str(till.terminal["terminal_id"])


def _sell(till: EmulatedTill, amount: int, card: str = "approved") -> Sale:
    assert till.emulators.card_reader is not None
    till.emulators.card_reader.present(card)
    return till.sale(amount, io_wait=2.0)


def _batches_equal(till: EmulatedTill) -> None:
    """The host's batch for this terminal (None before any settlement: it then expects the
    terminal's first batch) equals the terminal's open batch."""
    host_batch = _host(till).current_batch(_tid(till))
    assert (host_batch or 1) == till.journal.current_batch(), (host_batch, till.journal.current_batch())


def _answer_lost(till: EmulatedTill, clock: FakeClock, amount: int) -> Sale:
    """An approved card's sale whose answer the host drops (set up by the caller): it times out
    and its first reversal goes."""
    assert till.emulators.card_reader is not None
    till.emulators.card_reader.present("approved")
    sale = till.flow.begin_sale(amount)
    assert till.runtime.run_until(lambda: till.flow.state is S.AUTHORIZING, io_wait=2.0)
    clock.advance(float(till.terminal["host"]["timeout_s"]))
    till.runtime.step()
    return sale


def _escalated_sale(till: EmulatedTill, clock: FakeClock) -> Sale:
    """A sale whose answer and every reversal answer are lost: its reversal is escalated."""
    host = _host(till)
    attempts = int(till.terminal["host"]["reversal_max_attempts"])
    host.drop_responses(1 + attempts)
    sale = _answer_lost(till, clock, 4200)
    for _ in range(attempts):
        assert till.flow.state is S.OUTCOME_UNKNOWN
        clock.advance(3600.0)
        till.runtime.step()
    assert till.runtime.run_until(lambda: till.flow.state is S.IDLE, io_wait=2.0)
    assert till.journal.reversal_info(sale.txn_id)[0] == "FAILED"
    return sale


# -- 1. settlement with credits after a 95; any error ends SETTLING ------------------------------
def test_a_batch_with_a_void_and_a_refund_settles_after_the_host_answers_95(till: EmulatedTill) -> None:
    voided = _sell(till, 5000).txn_id
    refunded = _sell(till, 3000).txn_id
    assert till.void(voided, **SUPERVISOR, reason="mistake", io_wait=2.0).outcome == "APPROVED"
    assert till.refund(refunded, 1000, **SUPERVISOR, reason="one item", io_wait=2.0).outcome == "APPROVED"
    _host(till).report_out_of_balance_once()
    result = till.settle(**SUPERVISOR, io_wait=2.0)
    assert result is not None and result.balanced and result.uploaded == 4, result
    kinds = sorted(d.kind for d in _host(till).uploads(_tid(till), 1))
    assert kinds == ["refund", "sale", "sale", "void"]
    assert till.flow.state is S.IDLE and till.journal.current_batch() == 2
    _batches_equal(till)


def test_an_error_during_settlement_ends_settling_with_a_clear_outcome(
    till: EmulatedTill, monkeypatch: pytest.MonkeyPatch
) -> None:
    _sell(till, 1000)

    def broken(*_: object, **__: object) -> None:
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(till.flow.settlement.archive, "write", broken)
    result = till.settle(**SUPERVISOR, io_wait=2.0)
    assert result is not None and not result.balanced and "No space left" in result.detail
    assert till.flow.state is not S.SETTLING
    assert any(r["kind"] == "settlement_error" for r in till.journal.exception_report())
    # The host closed the batch; the terminal settles again before any sale and catches up.
    monkeypatch.undo()
    sale = _sell(till, 700)
    assert sale.outcome == "APPROVED"
    assert till.journal.current_batch() == 2 and sale.record is not None and sale.record.batch == 2
    _batches_equal(till)


def test_an_error_while_the_host_says_95_leaves_the_batch_open_without_blocking_sales(
    till: EmulatedTill, monkeypatch: pytest.MonkeyPatch
) -> None:
    _sell(till, 1000)
    _host(till).report_out_of_balance_once()

    def broken(**_: object) -> None:
        raise ValueError("cannot build the upload")

    monkeypatch.setattr("terminal.host.settlement.batch_upload_request", broken)
    result = till.settle(**SUPERVISOR, io_wait=2.0)
    assert result is not None and not result.balanced and "cannot build the upload" in result.detail
    assert till.flow.state is S.IDLE and till.journal.settlement_owed() is None
    _batches_equal(till)
    monkeypatch.undo()
    assert _sell(till, 200).outcome == "APPROVED"


def test_a_silent_host_at_settlement_is_settled_again_before_the_next_sale(
    till: EmulatedTill, clock: FakeClock
) -> None:
    _sell(till, 1000)
    host = _host(till)
    host.hold_responses = True  # the host settles, the 0510 is lost
    till.flow.start_settlement(approval=approve(till, "settle"))
    clock.advance(float(till.terminal["host"]["timeout_s"]))
    till.runtime.step()
    assert till.flow.state is S.IDLE and till.flow.last_settlement is not None
    assert not till.flow.last_settlement.balanced
    host.hold_responses = False
    sale = _sell(till, 300)
    assert sale.outcome == "APPROVED" and sale.record is not None and sale.record.batch == 2
    _batches_equal(till)


def test_a_host_that_disagrees_twice_leaves_the_batch_open_on_both_sides(
    till: EmulatedTill, monkeypatch: pytest.MonkeyPatch
) -> None:
    _sell(till, 1000)
    host = _host(till)
    real = host._settlement

    def always_95(request: object) -> object:
        host.report_out_of_balance_once()
        return real(request)  # type: ignore[arg-type]

    monkeypatch.setattr(host, "_settlement", always_95)
    result = till.settle(**SUPERVISOR, io_wait=2.0)
    assert result is not None and not result.balanced and result.definitive and result.uploaded == 1
    assert till.flow.state is S.IDLE and till.journal.settlement_owed() is None
    assert till.journal.current_batch() == 1
    _batches_equal(till)
    assert _sell(till, 200).outcome == "APPROVED"  # a definitive "no" does not block sales
    monkeypatch.undo()
    result = till.settle(**SUPERVISOR, io_wait=2.0)
    assert result is not None and result.balanced
    _batches_equal(till)


def test_a_host_that_cannot_be_reached_at_settlement_changes_nothing(
    till: EmulatedTill, monkeypatch: pytest.MonkeyPatch
) -> None:
    _sell(till, 1000)
    monkeypatch.setattr(till.host, "connect", lambda: DeviceFault(
        device="acquirer", kind=FaultKind.DISCONNECTED, detail="connection refused"))
    result = till.settle(**SUPERVISOR, io_wait=2.0)
    assert result is not None and not result.balanced and "connection refused" in result.detail
    assert till.flow.state is S.IDLE and till.journal.settlement_owed() is None  # nothing left
    _batches_equal(till)


def test_power_lost_while_the_settlement_is_unanswered_settles_again_at_boot(clock: FakeClock, var_dir: Path) -> None:
    from tests.support.harness import TillHarness

    rig = TillHarness(var_dir, clock)
    try:
        till = rig.boot()
        assert _sell(till, 1000).outcome == "APPROVED"
        rig.host.hold_responses = True  # the host settles; its 0510 never arrives
        till.flow.start_settlement(approval=approve(till, "settle"))
        rig.wait_unread(0)
        rig.host.hold_responses = False
        till = rig.power_cycle()  # boot finds the settlement owed and settles batch 1 again
        assert till.journal.settlement_owed() is None and till.journal.current_batch() == 2
        assert till.flow.state is S.IDLE
        assert rig.host.current_batch(_tid(till)) == 2
    finally:
        rig.close()


# -- 2. journal full at every entry point -----------------------------------------------------
def test_a_full_journal_answers_every_entry_point_at_once_and_boot_returns(
    clock: FakeClock, var_dir: Path
) -> None:
    overrides = {"limits.journal_capacity": 2}
    with build_emulated_till(clock=clock, var_dir=var_dir, overrides=overrides) as till:
        first = _sell(till, 100).txn_id
        _sell(till, 200)
        assert till.flow.state is S.SETTLE_REQUIRED
    with build_emulated_till(clock=clock, var_dir=var_dir, overrides=overrides) as till:  # boot returns
        assert till.flow.state is S.SETTLE_REQUIRED
        with pytest.raises(JournalError, match=FULL) as refused:
            till.sale(300, io_wait=2.0)
        assert "journal full" in str(refused.value)
        with pytest.raises(JournalError, match=FULL):
            till.void(first, **SUPERVISOR, reason="r", io_wait=2.0)
        with pytest.raises(JournalError, match=FULL):
            till.refund(first, 50, **SUPERVISOR, reason="r", io_wait=2.0)
        result = till.settle(**SUPERVISOR, io_wait=2.0)
        assert result is not None and result.balanced and _state(till) is S.IDLE
        assert _sell(till, 300).outcome == "APPROVED"
        _batches_equal(till)


def test_a_full_journal_with_a_reversal_owed_from_before_a_restart_can_still_settle(
    clock: FakeClock, var_dir: Path
) -> None:
    overrides = {"limits.journal_capacity": 2}
    with build_emulated_till(clock=clock, var_dir=var_dir, overrides=overrides) as till:
        _sell(till, 100)
        _host(till).hold_responses = True
        assert till.emulators.card_reader is not None
        till.emulators.card_reader.present("approved")
        lost = till.flow.begin_sale(200)
        assert till.runtime.run_until(lambda: till.flow.state is S.AUTHORIZING, io_wait=2.0)
        # the power goes: the journal is full and the second sale is owed a reversal
    with build_emulated_till(clock=clock, var_dir=var_dir, overrides=overrides) as till:
        assert till.flow.state is S.SETTLE_REQUIRED
        assert till.journal.reversal_info(lost.txn_id)[0] == "DONE"  # delivered at boot all the same
        result = till.settle(**SUPERVISOR, io_wait=2.0)
        assert result is not None and result.balanced
        _batches_equal(till)


def test_the_demo_at_a_full_journal_answers_at_once(var_dir: Path, capsys: pytest.CaptureFixture[str]) -> None:
    from sim.demo import run_demo

    var_dir.mkdir(parents=True, exist_ok=True)
    profile = var_dir / "emulated-counter.toml"
    base = Path("firmware_profiles/terminals/emulated-counter.toml").read_text()
    profile.write_text(base.replace("journal_capacity = 500", "journal_capacity = 1"))
    assert run_demo(card="approved", amount="1.00", as_json=True, profile=str(profile), var_dir=var_dir) == 0
    capsys.readouterr()
    with pytest.raises(JournalError, match=FULL):
        run_demo(card="approved", amount="1.00", as_json=True, profile=str(profile), var_dir=var_dir)


# -- 3. settling with an escalated reversal ---------------------------------------------------
def test_settling_with_an_escalated_reversal_carries_it_into_the_next_batch(
    till: EmulatedTill, clock: FakeClock
) -> None:
    _sell(till, 1000)
    stuck = _escalated_sale(till, clock)
    # The supervisor settles at once (the escalated reversal's next round is not due yet).
    till.flow.start_settlement(approval=approve(till, "settle"))
    assert till.runtime.run_until(lambda: till.flow.state is not S.SETTLING, io_wait=2.0)
    result = till.flow.last_settlement
    assert result is not None and result.balanced, result
    assert till.flow.state is S.IDLE
    _batches_equal(till)
    assert till.journal.current_batch() == 2
    record = till.journal.get(stuck.txn_id)
    assert record is not None and record.state == "TIMEOUT" and record.batch == 2  # carried, not dropped
    assert till.journal.unresolved_reversals() == [stuck.txn_id]
    assert len(result.carried) == 1
    assert till.emulators.printer is not None
    slip = till.emulators.printer.pages[-1].text
    assert "结算单" in slip and "未决" in slip and "CARRIED" in slip and "42.00" in slip
    assert any(r["kind"] == "carried_over" and r["txn_id"] == stuck.txn_id for r in till.journal.exception_report())
    # The reversal still goes out later, and the next settlement closes the carried row.
    clock.advance(LIMITS.escalated_retry_s)
    sale = _sell(till, 500)
    assert sale.outcome == "APPROVED"
    assert till.journal.reversal_info(stuck.txn_id)[0] == "DONE"
    assert _host(till).net_effect(_tid(till), f"{stuck.record.stan:06d}" if stuck.record else "") == 0
    result = till.settle(**SUPERVISOR, io_wait=2.0)
    assert result is not None and result.balanced and result.carried == ()
    assert till.journal.get(stuck.txn_id) is None
    _batches_equal(till)


# -- 4. a sale while a reversal is owed; bounded backoff ----------------------------------------
def test_a_sale_started_while_a_reversal_waits_sends_it_at_once(till: EmulatedTill, clock: FakeClock) -> None:
    host = _host(till)
    host.drop_responses(2)  # the sale's answer and the first 0400's answer are lost
    lost = _answer_lost(till, clock, 900)
    assert till.flow.state is S.OUTCOME_UNKNOWN  # the 0400 went, its answer was lost; backoff runs
    sale = _sell(till, 100)  # no clock move: the cashier does not wait for the backoff
    assert sale.outcome == "APPROVED"
    assert till.journal.reversal_info(lost.txn_id)[0] == "DONE"


def test_a_credit_is_refused_while_a_reversal_is_owed_and_the_till_sends_it_first(
    till: EmulatedTill, clock: FakeClock
) -> None:
    """Like a sale: the flow refuses a void while a reversal is owed; Till.void delivers it first."""
    first, second = _sell(till, 700), _sell(till, 800)
    till.journal.queue_reversal(second.txn_id, reason="test", reason_code="06", at=clock.wall())
    with pytest.raises(InputError):
        till.flow.begin_credit("void", first.txn_id, 700, approval=approve(till, "void", txn_id=first.txn_id))
    void = till.void(first.txn_id, **SUPERVISOR, reason="customer changed mind", io_wait=2.0)
    assert void.outcome == "APPROVED" and till.journal.reversal_info(second.txn_id)[0] == "DONE"


def test_recover_sends_an_owed_reversal_now(till: EmulatedTill, clock: FakeClock) -> None:
    host = _host(till)
    host.drop_responses(2)
    lost = _answer_lost(till, clock, 900)
    assert till.flow.recover_if_needed()
    assert till.runtime.run_until(lambda: till.flow.state is S.IDLE, io_wait=2.0)
    assert till.journal.reversal_info(lost.txn_id)[0] == "DONE"


def test_the_reversal_backoff_is_bounded_per_round(till: EmulatedTill) -> None:
    desk = till.flow.reversals
    first = float(till.terminal["host"]["reversal_wait_s"])
    attempts = int(till.terminal["host"]["reversal_max_attempts"])
    # Cumulative attempts of earlier rounds do not grow the wait of a new round.
    waits = [desk.wait_for(attempt_in_round=n) for n in range(1, attempts + 1)]
    assert waits[0] == first and waits == sorted(waits)
    assert max(waits) <= LIMITS.reversal_max_wait_s
    assert desk.wait_for(attempt_in_round=1) == first


def test_an_escalated_reversal_retried_later_waits_the_first_pause_not_the_grown_one(
    till: EmulatedTill, clock: FakeClock
) -> None:
    stuck = _escalated_sale(till, clock)
    host = _host(till)
    host.drop_responses(1)  # the next round's first 0401 is lost; the second is answered
    clock.advance(LIMITS.escalated_retry_s)
    assert till.flow.recover_if_needed()
    assert till.flow.state is S.OUTCOME_UNKNOWN
    clock.advance(float(till.terminal["host"]["reversal_wait_s"]))  # the first pause of a round, not 240 s
    assert till.runtime.run_until(lambda: till.flow.state is S.IDLE, io_wait=2.0)
    assert till.journal.reversal_info(stuck.txn_id)[0] == "DONE"


# -- 5. stale removals, typed outcomes, amount rules ------------------------------------------
def test_a_stale_card_removal_does_not_cancel_the_next_sale(till: EmulatedTill) -> None:
    reader = till.emulators.card_reader
    assert reader is not None
    assert _sell(till, 100).outcome == "APPROVED"
    reader.remove()  # the previous customer takes the card while nobody polls the reader
    reader.present("approved")
    sale = till.sale(200, io_wait=2.0)
    assert sale.outcome == "APPROVED", sale.reason


def test_a_reader_that_fails_at_start_read_gives_a_typed_outcome(
    till: EmulatedTill, monkeypatch: pytest.MonkeyPatch
) -> None:
    reader = till.devices["card_reader"]
    monkeypatch.setattr(reader, "start_read", lambda **_: DeviceFault(
        device="card_reader", kind=FaultKind.DISCONNECTED, detail="port gone"))
    sale = till.sale(100, io_wait=2.0)
    assert isinstance(sale, Sale)
    assert sale.outcome == "CANCELLED" and sale.reason is not None and "port gone" in sale.reason
    assert till.flow.state is S.IDLE


@pytest.mark.parametrize("amount", [0, -5, 99_999_999])
def test_amount_rules_live_in_the_checkout(till: EmulatedTill, amount: int) -> None:
    with pytest.raises(InputError) as refused:
        till.sale(amount, io_wait=2.0)
    assert "金额" in str(refused.value) and "amount" in str(refused.value).lower()
    assert till.flow.state is S.IDLE and till.journal.count_by_state() == {}


def test_a_refund_over_the_per_sale_maximum_is_refused_by_the_core(till: EmulatedTill) -> None:
    txn = _sell(till, 1000).txn_id
    for amount in (0, -1):
        with pytest.raises(InputError, match="金额"):
            till.refund(txn, amount, **SUPERVISOR, reason="r", io_wait=2.0)
    with pytest.raises(InputError, match="金额"):
        till.flow.begin_credit("refund", txn, 10**9, approval=approve(till, "refund", txn_id=txn))


# -- 6. receipts: original time on reprints, the terminal's reason ------------------------------
def test_a_reprint_shows_the_original_time_and_the_reprint_time(till: EmulatedTill, clock: FakeClock) -> None:
    sale = _sell(till, 1234)
    assert sale.record is not None
    original = sale.record.created_at.replace("T", " ")[:19]
    clock.advance(3 * 3600.0)
    later = (clock.wall()).strftime("%Y-%m-%d %H:%M:%S")
    assert till.flow.reprint(Copy.CARDHOLDER, approval=approve(till, "reprint")) == []
    assert till.emulators.printer is not None
    text = till.emulators.printer.pages[-1].text
    date_line = next(line for line in text.splitlines() if "DATE/TIME" in line)
    assert original in date_line and later not in date_line
    reprint_line = next(line for line in text.splitlines() if "REPRINTED" in line)
    assert later in reprint_line


def test_a_card_refusal_after_the_host_approved_prints_the_terminals_reason(till: EmulatedTill) -> None:
    sale = _sell(till, 3300, card="removed-before-second-ac")
    assert sale.outcome == "DECLINED" and sale.response_code == "00"  # the host approved
    assert till.emulators.printer is not None
    text = till.emulators.printer.pages[-1].text
    assert "RESPONSE" not in text and "00" not in next(ln for ln in text.splitlines() if "REASON" in ln)
    assert "终端拒绝" in text and "DECLINED BY TERMINAL" in text
    assert "card removed before completion" in text and "完成前卡被拔出" in text


STALE_REMOVAL_CHILD = """
import json, sys
from terminal.app import build_till
urls = json.loads(sys.argv[1])
with build_till("emulated-counter", var_dir=sys.argv[2], device_urls=urls["devices"],
                overrides={"host.url": urls["host"], "wallet.url": ""}) as till:
    for amount in (100, 200):
        sale = till.sale(amount, io_wait=5.0)
        print(json.dumps({"outcome": sale.outcome, "reason": sale.reason}), flush=True)
        sys.stdin.readline()  # the parent moves the cards
"""


def test_a_stale_card_removal_over_ptys_does_not_cancel_the_next_sale(tmp_path: Path) -> None:
    import json
    import subprocess
    import sys
    from contextlib import ExitStack

    from tests.support.processes import served

    with ExitStack() as stack:
        printer = stack.enter_context(served("emulate", "printer", "--pty"))
        reader = stack.enter_context(served("emulate", "card-reader", "--pty"))
        scanner = stack.enter_context(served("emulate", "scanner", "--pty"))
        host = stack.enter_context(served("host", "--listen", "127.0.0.1:0"))
        assert reader.control("present approved chip").startswith("ok:")
        urls = {"devices": {"printer": printer.endpoint, "card_reader": reader.endpoint, "scanner": scanner.endpoint},
                "host": host.endpoint}
        child = subprocess.Popen([sys.executable, "-c", STALE_REMOVAL_CHILD, json.dumps(urls), str(tmp_path / "var")],
                                 stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        try:
            assert child.stdin is not None and child.stdout is not None
            first = json.loads(child.stdout.readline())
            assert first["outcome"] == "APPROVED", first
            assert reader.control("remove").startswith("ok")  # the first customer takes the card...
            assert reader.control("present approved chip").startswith("ok:")  # ...the next one inserts theirs
            child.stdin.write("\n")
            child.stdin.flush()
            second = json.loads(child.stdout.readline())
            assert second["outcome"] == "APPROVED", second
            child.stdin.write("\n")
            child.stdin.flush()
            assert child.wait(timeout=30) == 0
        finally:
            if child.poll() is None:
                child.kill()
                child.wait()
            for stream in (child.stdin, child.stdout, child.stderr):
                if stream is not None:
                    stream.close()


def test_an_offline_sale_cut_off_while_its_receipts_wait_gets_them_at_boot(clock: FakeClock, var_dir: Path) -> None:
    """Found by the stateful machine: an offline approval (journal state OFFLINE) whose receipts
    were interrupted by a power cut was never printed at boot, unlike an online one (row 4 of the
    fault matrix); the customer left with the goods and no slip."""
    from emulator.printer.emulator import PrinterEmulator
    from firmware_profiles import load_profile

    printer = PrinterEmulator(load_profile("printer", "cn-80mm"))
    def boot() -> EmulatedTill:  # nothing listens on the host's port: every sale is offline
        return build_emulated_till(clock=clock, var_dir=var_dir, peers={"printer": printer},
                                   overrides={"host.url": "tcp://127.0.0.1:9"}, boot_io_wait=0.0)

    printer.set_paper("out")
    with boot() as till:
        sale = _sell(till, 1000, "approved-swipe")
        assert (sale.outcome, sale.response_code, _state(till)) == ("APPROVED", "Y1", S.PRINTER_PAUSED)
        assert till.journal.count_by_state() == {"OFFLINE": 1}
    printer.set_paper("ok")  # the power comes back with paper in the printer
    with boot() as again:
        assert not again.journal.receipts_owed()
        prints = again.journal._db.execute("SELECT copy, reprint FROM prints WHERE outcome = 'ok'").fetchall()
        assert sorted(prints) == [("cardholder", 1), ("merchant", 1)]
        assert "重打印 REPRINT" in printer.pages[-1].text
