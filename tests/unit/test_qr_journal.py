"""QR payments in the journal: the order number committed with the row, the state history, the
card-only views the acquirer's code reads, the batch summary and carrying unknowns over."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import datetime
from pathlib import Path
from typing import Any

import pytest

from terminal.errors import JournalError
from terminal.journal import Journal
from terminal.journal.qr import mask_code, order_number

AT = datetime(2026, 12, 2, 10, 30, 0)


@pytest.fixture
def journal(tmp_path: Path) -> Iterator[Journal]:
    j = Journal(tmp_path / "journal.db", capacity=10)
    yield j
    j.close()


def _pay(journal: Journal, txn_id: str, amount: int = 1234, channel: str = "wechat") -> Any:
    return journal.record_qr_sent(txn_id=txn_id, mode="customer", channel=channel, amount_minor=amount,
                                  currency="CNY", terminal_id="T0000001", at=AT,
                                  code_masked=mask_code("134567890123456789"))


def test_order_number_is_committed_with_the_row_and_reused_by_a_retry(journal: Journal) -> None:
    record, order = _pay(journal, "t1")
    assert record.state == "SENT" and record.entry_mode == "qr" and record.stan == 1
    assert order.order_no == f"OTT0000001{AT:%y%m%d%H%M%S}000001" and len(order.order_no) <= 32
    assert order.status == "PAYING" and order.code_masked == "1345**********6789"
    again, same = _pay(journal, "t1")
    assert (again.stan, same.order_no) == (record.stan, order.order_no)
    with pytest.raises(JournalError, match="other details"):
        _pay(journal, "t1", amount=99)


def test_the_payment_code_is_never_stored(journal: Journal, tmp_path: Path) -> None:
    _pay(journal, "t1")
    journal.close()
    raw = b"".join(p.read_bytes() for p in tmp_path.iterdir() if p.is_file())
    assert b"134567890123456789" not in raw


def test_decide_changes_row_status_and_history_together(journal: Journal) -> None:
    _pay(journal, "t1")
    journal.qr_note("t1", "USERPAYING", detail="password", at=AT)
    record = journal.qr_decide("t1", state="APPROVED", status="PAID", detail="paid", at=AT, response_code="00",
                               wallet_order_no="4200000001", payer="o***x", wait_s=7.5)
    assert record.state == "APPROVED"
    order = journal.qr_order("t1")
    assert order is not None and (order.status, order.wallet_order_no, order.wait_s) == ("PAID", "4200000001", 7.5)
    assert [h["status"] for h in journal.qr_history("t1")] == ["PAYING", "USERPAYING", "PAID"]
    with pytest.raises(JournalError, match="not awaiting"):
        journal.qr_decide("t1", state="DECLINED", status="FAILED", detail="late", at=AT)
    with pytest.raises(ValueError):
        journal.qr_note("t1", "NONSENSE", detail="", at=AT)
    with pytest.raises(ValueError):
        journal.qr_note("t1", "PAID", detail="", at=AT, pan="4111")


def test_qr_rows_stay_out_of_the_acquirers_views(journal: Journal) -> None:
    _pay(journal, "t1")
    assert journal.batch_records(1) == []
    assert [r.txn_id for r in journal.batch_records(1, channel="qr")] == ["t1"]
    assert journal.recover_unanswered(at=AT) == []  # never an ISO 8583 reversal
    assert journal.pending_reversals() == []
    assert [o.txn_id for o in journal.qr_unresolved()] == ["t1"]
    assert journal.capacity_status().used == 1  # but it counts against the journal's capacity


def test_summary_per_channel(journal: Journal) -> None:
    _pay(journal, "a", 1000)
    journal.qr_decide("a", state="APPROVED", status="PAID", detail="", at=AT, wait_s=4.0)
    _pay(journal, "b", 500)
    journal.qr_decide("b", state="DECLINED", status="FAILED", detail="", at=AT)
    _pay(journal, "c", 700, channel="alipay")
    summary = journal.qr_summary(1)
    assert summary["wechat"] | {} == {"tried": 2, "paid": 1, "paid_minor": 1000, "credits": 0, "credit_minor": 0,
                                      "pending": 0, "success_rate": 0.5, "average_wait_s": 4.0}
    assert summary["alipay"]["pending"] == 1 and summary["alipay"]["paid"] == 0


def test_settling_carries_an_unknown_qr_payment_and_drops_the_decided_ones(journal: Journal) -> None:
    _pay(journal, "paid")
    journal.qr_decide("paid", state="APPROVED", status="PAID", detail="", at=AT)
    _pay(journal, "unknown")
    journal.qr_note("unknown", "UNKNOWN", detail="reverse not answered", at=AT)
    carried = journal.close_batch(1, at=AT)
    assert [r.txn_id for r in carried] == ["unknown"]
    assert journal.qr_order("paid") is None and journal.get("paid") is None
    moved = journal.get("unknown")
    assert moved is not None and moved.batch == 2 and journal.qr_order("unknown") is not None
    assert any(i["kind"] == "carried_over" and "QR payment unconfirmed" in str(i["detail"])
               for i in journal.exception_report())


def test_order_number_shape() -> None:
    assert order_number("T-01", datetime(2026, 1, 2, 3, 4, 5), 42) == "OTT01260102030405000042"
    assert order_number("X" * 40, AT, 999999).isalnum() and len(order_number("X" * 40, AT, 999999)) == 32
    assert mask_code("1234") == "1234"
