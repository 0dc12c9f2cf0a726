"""Settlement and reconciliation: totals agree with the host, the batch is archived before it
leaves the journal, a full journal refuses sales until then."""

from __future__ import annotations

from pathlib import Path

import pytest

from sim.wiring import EmulatedTill, build_emulated_till
from terminal.checkout.table import CheckoutState
from terminal.clock import FakeClock
from terminal.errors import JournalError
from terminal.host.settlement import Archive
from terminal.receipts.layout import Copy
from tests.system.conftest import SUPERVISOR, approve

S = CheckoutState


def _sell(till: EmulatedTill, card: str, amount: int) -> str:
    assert till.emulators.card_reader is not None
    till.emulators.card_reader.present(card)
    sale = till.sale(amount, io_wait=2.0)
    assert sale.outcome is not None
    return sale.outcome


def _state(till: EmulatedTill) -> CheckoutState:
    return till.flow.state


def test_a_balanced_batch_is_archived_closed_and_the_next_one_starts(till: EmulatedTill, var_dir: Path) -> None:
    assert till.emulators.host is not None and till.emulators.printer is not None
    outcomes = [_sell(till, "approved", 1000), _sell(till, "declined", 500), _sell(till, "approved-swipe", 250)]
    assert outcomes == ["APPROVED", "DECLINED", "APPROVED"]
    tid = str(till.terminal["terminal_id"])
    assert till.emulators.host.batch_totals(tid, 1).sales_amount == 1250

    result = till.settle(**SUPERVISOR, io_wait=2.0)
    assert result is not None and result.balanced and result.uploaded == 0
    assert (result.totals.sales_count, result.totals.sales_amount) == (2, 1250)
    archive = var_dir / "batches" / "batch-000001.json"
    assert Archive.verify(archive)
    assert till.journal.current_batch() == 2 and till.journal.batch_records(1) == []
    assert "结算单" in till.emulators.printer.pages[-1].text and "对账平" in till.emulators.printer.pages[-1].text

    _sell(till, "approved", 700)
    [record] = till.journal.batch_records(2)
    assert record.batch == 2


def test_out_of_balance_uploads_the_detail_and_settles_again(till: EmulatedTill) -> None:
    assert till.emulators.host is not None
    _sell(till, "approved", 1000)
    _sell(till, "approved", 2000)
    till.emulators.host.report_out_of_balance_once()
    result = till.settle(**SUPERVISOR, io_wait=2.0)
    assert result is not None and result.balanced and result.uploaded == 2
    assert till.journal.current_batch() == 2


def test_a_silent_host_leaves_the_batch_open(till: EmulatedTill, clock: FakeClock) -> None:
    assert till.emulators.host is not None
    _sell(till, "approved", 1000)
    till.emulators.host.hold_responses = True
    till.flow.start_settlement(approval=approve(till, "settle"))
    assert _state(till) is S.SETTLING
    clock.advance(float(till.terminal["host"]["timeout_s"]))
    till.runtime.step()
    assert _state(till) is S.IDLE
    assert till.flow.last_settlement is not None and not till.flow.last_settlement.balanced
    assert till.journal.current_batch() == 1 and len(till.journal.batch_records(1)) == 1


def test_a_full_journal_refuses_sales_until_settled(clock: FakeClock, var_dir: Path) -> None:
    with build_emulated_till(clock=clock, var_dir=var_dir, overrides={"limits.journal_capacity": 3}) as till:
        for amount in (100, 200, 300):
            assert _sell(till, "approved", amount) == "APPROVED"
        assert _state(till) is S.SETTLE_REQUIRED
        with pytest.raises(JournalError, match="交易流水已满，请先结算"):
            till.flow.begin_sale(400)
        assert till.flow.reprint(Copy.CARDHOLDER, approval=approve(till, "reprint")) == []  # reprints still work
        result = till.settle(**SUPERVISOR, io_wait=2.0)
        assert result is not None and result.balanced
        assert _state(till) is S.IDLE
        assert _sell(till, "approved", 400) == "APPROVED"
