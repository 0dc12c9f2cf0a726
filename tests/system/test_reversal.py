"""Reversal (冲正): whatever the host does, a sale whose answer never came nets to zero."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

from emulator.acquirer.simulator import AcquirerSimulator
from sim.wiring import EmulatedTill, build_emulated_till
from terminal.checkout.flow import Sale
from terminal.checkout.table import CheckoutState
from terminal.clock import FakeClock

S = CheckoutState


def _state(till: EmulatedTill) -> CheckoutState:
    return till.flow.state


def _host(till: EmulatedTill) -> AcquirerSimulator:
    assert till.emulators.host is not None
    return till.emulators.host


def _until(till: EmulatedTill, done: Callable[[], bool]) -> bool:
    return till.runtime.run_until(done, io_wait=2.0)


def _sale_without_answer(till: EmulatedTill, clock: FakeClock, amount: int = 4200) -> Sale:
    assert till.emulators.card_reader is not None
    till.emulators.card_reader.present("approved")
    sale = till.flow.begin_sale(amount)
    assert _until(till, lambda: _state(till) is S.AUTHORIZING)
    clock.advance(float(till.terminal["host"]["timeout_s"]))
    till.runtime.step()
    assert _state(till) is S.OUTCOME_UNKNOWN
    return sale


def _net(till: EmulatedTill, sale: Sale) -> int:
    assert sale.record is not None
    return _host(till).net_effect(str(till.terminal["terminal_id"]), f"{sale.record.stan:06d}")


def _wait_s(till: EmulatedTill) -> float:
    return float(till.terminal["host"]["reversal_wait_s"])


def test_a_timed_out_sale_is_reversed_and_nets_to_zero(till: EmulatedTill, clock: FakeClock) -> None:
    host = _host(till)
    host.hold_responses = True  # the 0210 and the first 0400's answer are lost
    sale = _sale_without_answer(till, clock)
    host.hold_responses = False
    clock.advance(_wait_s(till))  # no 0410: repeat as 0401
    assert _until(till, lambda: _state(till) is S.IDLE)
    record = till.journal.get(sale.txn_id)
    assert record is not None and record.state == "REVERSED"
    assert till.journal.reversal_info(sale.txn_id)[0] == "DONE"
    assert till.journal.reversal_info(sale.txn_id)[2] == 2  # 0400, then 0401
    assert _net(till, sale) == 0


def test_an_approval_after_the_timeout_is_logged_and_the_reversal_stands(till: EmulatedTill, clock: FakeClock) -> None:
    host = _host(till)
    host.answer_late(1)  # the 0210 comes only when released
    sale = _sale_without_answer(till, clock)
    assert _until(till, lambda: _state(till) is S.IDLE)  # the 0400 is answered at once
    host.release_late()
    assert _until(till, lambda: bool(till.journal.exception_report()))  # the late 0210 arrives
    assert sale.outcome == "OUTCOME_UNKNOWN"
    record = till.journal.get(sale.txn_id)
    assert record is not None and record.state == "REVERSED"
    [incident] = till.journal.exception_report()
    assert incident["kind"] == "late_response" and incident["txn_id"] == sale.txn_id
    assert _net(till, sale) == 0


def test_an_undeliverable_reversal_is_escalated_never_dropped(till: EmulatedTill, clock: FakeClock) -> None:
    host = _host(till)
    attempts = int(till.terminal["host"]["reversal_max_attempts"])
    host.drop_responses(1 + attempts)  # the sale's answer and every reversal answer are lost
    sale = _sale_without_answer(till, clock)
    for attempt in range(attempts):
        clock.advance(_wait_s(till) * 2**attempt)
        till.runtime.step()
    assert _until(till, lambda: _state(till) is S.IDLE)
    assert till.journal.reversal_info(sale.txn_id)[0] == "FAILED"
    assert any("冲正不成功" in m for m in sale.messages)
    assert [r["kind"] for r in till.journal.exception_report()] == ["reversal_failed"]

    # The next sale first tries the reversal again; this time the host answers.
    assert till.emulators.card_reader is not None
    till.emulators.card_reader.present("approved")
    nxt = till.sale(100, io_wait=2.0)
    assert nxt.outcome == "APPROVED"
    assert till.journal.reversal_info(sale.txn_id)[0] == "DONE"
    assert _net(till, sale) == 0


def test_a_restart_delivers_the_reversals_owed(clock: FakeClock, var_dir: Path) -> None:
    with build_emulated_till(clock=clock, var_dir=var_dir) as till:
        host = _host(till)
        host.hold_responses = True
        assert till.emulators.card_reader is not None
        till.emulators.card_reader.present("approved")
        sale = till.flow.begin_sale(700)
        assert _until(till, lambda: _state(till) is S.AUTHORIZING)
        tid, stan = str(till.terminal["terminal_id"]), sale.record.stan if sale.record else 0
        # the power goes here: the host booked the sale, the terminal never heard
    with build_emulated_till(clock=clock, var_dir=var_dir) as again:
        assert _state(again) is S.IDLE  # boot delivers the owed reversal before it is ready for sale
        record = again.journal.get(sale.txn_id)
        assert record is not None and record.state == "REVERSED"
        # (a new simulator process: it had never booked the sale, so it acknowledges with nothing to undo)
        assert _host(again).net_effect(tid, f"{stan:06d}") == 0
