"""The register's orders in the journal: one payment per order_id, linked to its host
transaction in the commit that inserts the row, and kept when the batch is settled."""

from __future__ import annotations

import sqlite3
from datetime import datetime
from pathlib import Path

import pytest

from terminal.errors import InputError
from terminal.journal import Journal, OrderConflict
from terminal.service.payments import JournalReader, payment_view

AT = datetime(2026, 12, 2, 10, 0)


def _open(journal: Journal, order_id: str = "ECR-1", amount: int = 1234) -> None:
    journal.open_order(order_id=order_id, amount_minor=amount, currency="156", tender="card", at=AT)


def _sent(journal: Journal, txn_id: str, amount: int = 1234) -> None:
    journal.record_sent(txn_id=txn_id, amount_minor=amount, currency="156", entry_mode="chip", pan_last4="0010",
                        pan_token="t" * 64, at=AT)


def _paid(journal: Journal, order_id: str, txn_id: str) -> None:
    """The register's order, paid by `txn_id` (approved by the host), its sale over."""
    _open(journal, order_id)
    journal.bind_order(order_id)
    _sent(journal, txn_id)
    journal.bind_order(None)
    journal.record_answer(txn_id, approved=True, response_code="00", auth_code="123456", rrn="000000000009", at=AT)
    journal.finish_order(order_id, outcome="APPROVED", reason="", at=AT)


def test_the_same_order_is_the_same_payment_and_another_payment_is_a_conflict() -> None:
    journal = Journal(":memory:")
    order, created = journal.open_order(order_id="ECR-1", amount_minor=1234, currency="156", tender="card", at=AT)
    assert created and order.status == "OPEN"
    again, created = journal.open_order(order_id="ECR-1", amount_minor=1234, currency="156", tender="card", at=AT)
    assert not created and again == order
    with pytest.raises(OrderConflict, match="new order_id"):
        journal.open_order(order_id="ECR-1", amount_minor=1235, currency="156", tender="card", at=AT)
    with pytest.raises(OrderConflict):
        journal.open_order(order_id="ECR-1", amount_minor=1234, currency="156", tender="qr", at=AT)


@pytest.mark.parametrize("bad", ["", "a b", "x" * 65, "订单", "tab\t", None, 12])
def test_order_ids_are_printable_ascii_of_bounded_length(bad: object) -> None:
    with pytest.raises(InputError, match="order_id"):
        Journal(":memory:").open_order(order_id=bad, amount_minor=1, currency="156", tender="card", at=AT)  # type: ignore[arg-type]


def test_a_bound_order_names_every_row_inserted_in_the_same_commit_and_the_last_try_wins(tmp_path: Path) -> None:
    journal = Journal(tmp_path / "j.sqlite3")
    try:
        _open(journal)
        journal.bind_order("ECR-1")
        _sent(journal, "try-1")
        # Read by another connection: the link is committed with the row, not after it.
        other = sqlite3.connect(tmp_path / "j.sqlite3")
        assert other.execute("SELECT txn_id FROM ecr_orders").fetchone() == ("try-1",)
        _sent(journal, "try-2")  # a PIN retry is a new host transaction
        journal.record_offline(txn_id="try-3", amount_minor=1234, currency="156", entry_mode="chip",
                               pan_last4="0010", pan_token="t" * 64, at=AT)
        assert other.execute("SELECT txn_id FROM ecr_orders").fetchone() == ("try-3",)
        journal.bind_order(None)
        _sent(journal, "not-the-register's")
        order = journal.order("ECR-1")
        assert order is not None and order.txn_id == "try-3"
        other.close()
    finally:
        journal.close()


def test_a_finished_order_keeps_its_row_when_the_batch_leaves_the_journal(tmp_path: Path) -> None:
    journal = Journal(tmp_path / "j.sqlite3")
    try:
        _paid(journal, "ECR-1", "sale-1")
        reader = JournalReader(tmp_path / "j.sqlite3")
        try:
            order = journal.order("ECR-1")
            assert order is not None
            live = payment_view(order, reader)
            assert live["status"] == "approved" and live["auth_code"] == "123456"
            journal.close_batch(journal.current_batch(), at=AT)
            assert journal.get("sale-1") is None  # the row has left with its batch
            kept = journal.order("ECR-1")
            assert kept is not None and kept.txn_state == "APPROVED"
            settled = payment_view(kept, reader)
            assert settled["status"] == "approved" and settled["trace"] == live["trace"]
            assert settled["card"] == {"masked_pan": "**** **** **** 0010", "entry_mode": "chip"}
        finally:
            reader.close()
    finally:
        journal.close()


def test_an_order_refused_before_it_started_leaves_nothing() -> None:
    journal = Journal(":memory:")
    _open(journal)
    journal.drop_order("ECR-1")
    assert journal.order("ECR-1") is None
    _open(journal)
    journal.bind_order("ECR-1")
    _sent(journal, "sale-1")
    journal.drop_order("ECR-1")  # it made a transaction: kept, whatever the caller says
    assert journal.order("ECR-1") is not None


def test_a_voided_payment_still_reads_voided_once_its_batch_is_settled(tmp_path: Path) -> None:
    journal = Journal(tmp_path / "j.sqlite3")
    try:
        _paid(journal, "ECR-1", "sale-1")
        journal.record_sent(txn_id="void-1", amount_minor=1234, currency="156", entry_mode="chip", pan_last4="0010",
                            pan_token="t" * 64, at=AT, kind="void", original_txn_id="sale-1")
        journal.record_answer("void-1", approved=True, response_code="00", auth_code="3", rrn="4", at=AT)
        reader = JournalReader(tmp_path / "j.sqlite3")
        try:
            live = journal.order("ECR-1")
            assert live is not None and payment_view(live, reader)["status"] == "voided"
            journal.close_batch(journal.current_batch(), at=AT)
            kept = journal.order("ECR-1")
            assert kept is not None and (kept.voided, kept.credited_minor) == (1, 1234)
            assert payment_view(kept, reader)["status"] == "voided"
        finally:
            reader.close()
    finally:
        journal.close()
