from __future__ import annotations

import sqlite3
from datetime import datetime
from pathlib import Path

import pytest

from terminal.errors import JournalError
from terminal.journal import JOURNAL_FULL_MESSAGE, Journal

AT = datetime(2026, 11, 22, 9, 30)


def _sent(journal: Journal, txn_id: str, amount: int = 1234) -> int:
    return journal.record_sent(txn_id=txn_id, amount_minor=amount, currency="156", entry_mode="chip",
                               pan_last4="0010", pan_token="t" * 64, at=AT).stan


def test_durable_settings(tmp_path: Path) -> None:
    journal = Journal(tmp_path / "j.sqlite3")
    try:
        assert journal._db.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
        assert journal._db.execute("PRAGMA synchronous").fetchone()[0] == 2  # FULL
    finally:
        journal.close()


def test_sent_row_is_committed_and_visible_to_another_connection(tmp_path: Path) -> None:
    journal = Journal(tmp_path / "j.sqlite3")
    try:
        stan = _sent(journal, "a")
        other = sqlite3.connect(tmp_path / "j.sqlite3")
        assert other.execute("SELECT state, stan FROM transactions").fetchall() == [("SENT", stan)]
        other.close()
    finally:
        journal.close()


def test_retry_reuses_txn_id_and_stan_and_refuses_other_details() -> None:
    journal = Journal(":memory:")
    assert _sent(journal, "a") == _sent(journal, "a") == 1
    assert _sent(journal, "b") == 2
    with pytest.raises(JournalError):
        _sent(journal, "a", amount=999)


def test_answer_only_once() -> None:
    journal = Journal(":memory:")
    _sent(journal, "a")
    rec = journal.record_answer("a", approved=True, response_code="00", auth_code="123456", rrn="1" * 12, at=AT)
    assert rec.state == "APPROVED"
    with pytest.raises(JournalError):
        journal.record_answer("a", approved=False, response_code="05", auth_code=None, rrn=None, at=AT)


def test_timeout_queues_reversal_and_boot_recovers_unanswered(tmp_path: Path) -> None:
    path = tmp_path / "j.sqlite3"
    journal = Journal(path)
    _sent(journal, "timed-out")
    _sent(journal, "lost-in-crash")
    journal.record_timeout("timed-out", reason="no answer", at=AT)
    journal.close()  # "power loss": a fresh process opens the same file
    journal = Journal(path)
    try:
        assert journal.recover_unanswered(at=AT) == ["lost-in-crash"]
        assert sorted(journal.pending_reversals()) == ["lost-in-crash", "timed-out"]
        assert journal.count_by_state() == {"TIMEOUT": 2}
    finally:
        journal.close()


def test_full_journal_refuses_new_sales() -> None:
    journal = Journal(":memory:", capacity=2, warn_ratio=0.5)
    _sent(journal, "a")
    assert journal.capacity_status().warn and not journal.capacity_status().full
    _sent(journal, "b")
    with pytest.raises(JournalError, match="请先结算"):
        _sent(journal, "c")
    assert JOURNAL_FULL_MESSAGE.startswith("交易流水已满")  # Chinese first, as every operator message
    assert _sent(journal, "a") == 1  # a retry of a recorded sale is still answered
