"""Void (撤销) and refund (退货) under a supervisor's own PIN, audited; the host's books agree."""

from __future__ import annotations

import pytest

from sim.wiring import EmulatedTill
from terminal.checkout.table import CheckoutState
from terminal.clock import FakeClock
from terminal.errors import InputError
from terminal.security.access import AccessDenied
from tests.system.conftest import SUPERVISOR

S = CheckoutState


def _approved(till: EmulatedTill, amount: int) -> str:
    assert till.emulators.card_reader is not None
    till.emulators.card_reader.present("approved")
    sale = till.sale(amount, io_wait=2.0)
    assert sale.outcome == "APPROVED"
    return sale.txn_id


def _host_net(till: EmulatedTill, txn_id: str) -> int:
    assert till.emulators.host is not None
    record = till.journal.get(txn_id)
    assert record is not None
    return till.emulators.host.net_effect(str(till.terminal["terminal_id"]), f"{record.stan:06d}")


def test_a_void_nets_the_sale_to_zero_and_prints_a_void_slip(till: EmulatedTill) -> None:
    txn = _approved(till, 5000)
    void = till.void(txn, **SUPERVISOR, reason="customer changed mind", io_wait=2.0)
    assert (void.outcome, void.response_code) == ("APPROVED", "00")
    assert _host_net(till, txn) == 0
    assert till.emulators.printer is not None and "撤销 VOID" in till.emulators.printer.pages[-1].text
    with pytest.raises(InputError, match="already voided"):
        till.void(txn, **SUPERVISOR, reason="again", io_wait=2.0)
    result = till.settle(**SUPERVISOR, io_wait=2.0)
    assert result is not None and result.balanced
    assert (result.totals.sales_amount, result.totals.voids_amount, result.totals.net_amount) == (5000, 5000, 0)


def test_partial_refunds_up_to_what_is_left(till: EmulatedTill) -> None:
    txn = _approved(till, 3000)
    assert till.refund(txn, 1000, **SUPERVISOR, reason="one item back", io_wait=2.0).outcome == "APPROVED"
    assert till.refund(txn, 2000, **SUPERVISOR, reason="the rest", io_wait=2.0).outcome == "APPROVED"
    with pytest.raises(InputError, match="at most what is left"):
        till.refund(txn, 1, **SUPERVISOR, reason="too much", io_wait=2.0)
    assert _host_net(till, txn) == 0


def test_a_cashier_cannot_void_and_every_decision_is_audited(till: EmulatedTill) -> None:
    txn = _approved(till, 800)
    with pytest.raises(AccessDenied):
        till.void(txn, supervisor="cashier-1", pin="1111", reason="trying", io_wait=2.0)
    with pytest.raises(AccessDenied):
        till.void(txn, supervisor="supervisor-1", pin="0000", reason="wrong PIN", io_wait=2.0)
    till.void(txn, **SUPERVISOR, reason="duplicate charge", io_wait=2.0)
    results = [(e["operation"], e["approver"], str(e["result"]).split(" #")[0]) for e in till.audit.entries()]
    assert results == [("void", "cashier-1", "denied: role not allowed"), ("void", "supervisor-1", "denied: wrong PIN"),
                       ("void", "supervisor-1", "granted"), ("void", "supervisor-1", "used")]
    assert till.audit.check().reason == ""


def test_a_void_without_an_answer_is_reversed(till: EmulatedTill, clock: FakeClock) -> None:
    txn = _approved(till, 1200)
    assert till.emulators.host is not None
    till.emulators.host.hold_responses = True
    approval = till.approve("void", operator_id="supervisor-1", pin="8888", reason="test", txn_id=txn)
    void = till.flow.begin_credit("void", txn, 1200, approval=approval)
    clock.advance(float(till.terminal["host"]["timeout_s"]))
    till.runtime.step()
    assert till.flow.state is S.OUTCOME_UNKNOWN and void.outcome == "OUTCOME_UNKNOWN"
    till.emulators.host.hold_responses = False
    clock.advance(float(till.terminal["host"]["reversal_wait_s"]))
    assert till.runtime.run_until(lambda: till.flow.state is S.IDLE, io_wait=2.0)
    record = till.journal.get(void.txn_id)
    assert record is not None and record.state == "REVERSED"
    assert _host_net(till, txn) == 1200  # the void was undone: the sale stands
