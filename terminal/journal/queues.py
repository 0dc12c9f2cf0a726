"""What the terminal owes the host, kept in the journal: reversals and advices (offline sales).

Mixed into `Journal`; every method is one durable transaction.
"""

from __future__ import annotations

import sqlite3
from datetime import datetime

from terminal.errors import JournalError
from terminal.journal.core import JOURNAL_FULL_MESSAGE, REVERSAL_FAILED_MESSAGE, JournalCore, TxnRecord

__all__ = ["OwedMessages"]


class OwedMessages(JournalCore):
    def record_timeout(self, txn_id: str, *, reason: str, at: datetime, reason_code: str = "98") -> None:
        """Outcome unknown: mark TIMEOUT and queue its reversal in one transaction."""
        with self._tx() as db:
            cur = db.execute(
                "UPDATE transactions SET state = 'TIMEOUT', updated_at = ? WHERE txn_id = ? AND state = 'SENT'",
                (at.isoformat(), txn_id),
            )
            if cur.rowcount != 1:
                raise JournalError(f"transaction {txn_id} is not awaiting an answer")
            self._queue_reversal(db, txn_id, reason, reason_code, at)

    def queue_reversal(self, txn_id: str, *, reason: str, reason_code: str, at: datetime) -> None:
        """Reverse an approved transaction (e.g. the card refused the host's approval)."""
        with self._tx() as db:
            if self._get(db, txn_id) is None:
                raise JournalError(f"no transaction {txn_id} to reverse")
            self._queue_reversal(db, txn_id, reason, reason_code, at)

    @staticmethod
    def _queue_reversal(db: sqlite3.Connection, txn_id: str, reason: str, code: str, at: datetime) -> None:
        db.execute(
            "INSERT OR IGNORE INTO reversals (txn_id, state, reason, reason_code, created_at)"
            " VALUES (?, 'PENDING', ?, ?, ?)",
            (txn_id, reason, code, at.isoformat()),
        )

    def reversal_attempt(self, txn_id: str, *, at: datetime) -> int:
        """Count one more send of this reversal (committed before it leaves); returns the count."""
        with self._tx() as db:
            db.execute("UPDATE reversals SET attempts = attempts + 1, updated_at = ? WHERE txn_id = ?",
                       (at.isoformat(), txn_id))
            row = db.execute("SELECT attempts FROM reversals WHERE txn_id = ?", (txn_id,)).fetchone()
        if row is None:
            raise JournalError(f"no reversal queued for {txn_id}")
        return int(row[0])

    def record_reversed(self, txn_id: str, *, at: datetime) -> None:
        """The host acknowledged the reversal: the transaction has no financial effect any more."""
        with self._tx() as db:
            db.execute("UPDATE reversals SET state = 'DONE', updated_at = ? WHERE txn_id = ?", (at.isoformat(), txn_id))
            db.execute("UPDATE transactions SET state = 'REVERSED', updated_at = ? WHERE txn_id = ?",
                       (at.isoformat(), txn_id))

    def escalate_reversal(self, txn_id: str, *, at: datetime) -> None:
        """Undeliverable for now: FAILED is shown on the exception report and retried, never dropped."""
        with self._tx() as db:
            db.execute("UPDATE reversals SET state = 'FAILED', updated_at = ? WHERE txn_id = ?",
                       (at.isoformat(), txn_id))
            self._incident(db, "reversal_failed", txn_id, REVERSAL_FAILED_MESSAGE, at)

    def reversal_info(self, txn_id: str) -> tuple[str, str, int]:
        """(state, reason_code, attempts) of a queued reversal."""
        row = self._db.execute(
            "SELECT state, reason_code, attempts FROM reversals WHERE txn_id = ?", (txn_id,)).fetchone()
        if row is None:
            raise JournalError(f"no reversal queued for {txn_id}")
        return str(row[0]), str(row[1]), int(row[2])

    def unresolved_reversals(self) -> list[str]:
        """Every reversal not yet acknowledged, oldest first: PENDING and escalated (FAILED)."""
        return [r[0] for r in self._db.execute(
            "SELECT txn_id FROM reversals WHERE state IN ('PENDING', 'FAILED') ORDER BY rowid")]

    def recover_unanswered(self, *, at: datetime) -> list[str]:
        """On boot: a card row still SENT lost its answer with the power (reverse it, 98); a row still
        AUTHORIZED lost the card's confirmation (reverse it, 06: the card never agreed)."""
        with self._tx() as db:
            sent = [r[0] for r in db.execute(
                "SELECT txn_id FROM transactions WHERE state = 'SENT' AND entry_mode != 'qr' ORDER BY rowid")]
            for txn_id in sent:
                db.execute("UPDATE transactions SET state = 'TIMEOUT', updated_at = ? WHERE txn_id = ?",
                           (at.isoformat(), txn_id))
                self._queue_reversal(db, txn_id, "no answer before restart", "98", at)
            unconfirmed = [r[0] for r in db.execute(
                "SELECT txn_id FROM transactions WHERE state = 'AUTHORIZED' ORDER BY rowid")]
            for txn_id in unconfirmed:
                self._queue_reversal(db, txn_id, "the card had not confirmed before restart", "06", at)
        return sent + unconfirmed

    def refusal_reason(self, txn_id: str) -> str | None:
        """Why the terminal undid a transaction the host approved (or approved offline): the
        reversal's reason, or the card's refusal of an offline sale. None: no such reason."""
        row = self._db.execute("SELECT reason FROM reversals WHERE txn_id = ?", (txn_id,)).fetchone()
        if row is None:
            row = self._db.execute(
                "SELECT detail FROM incidents WHERE txn_id = ? AND kind = 'offline_sale_refused_by_card'"
                " ORDER BY id DESC LIMIT 1", (txn_id,)).fetchone()
        return None if row is None else str(row[0])

    def pending_reversals(self) -> list[str]:
        return [r[0] for r in self._db.execute(
            "SELECT txn_id FROM reversals WHERE state = 'PENDING' ORDER BY rowid")]

    # -- offline sales (store and forward) ------------------------------------------------------
    def record_offline(
        self, *, txn_id: str, amount_minor: int, currency: str, entry_mode: str, pan_last4: str, pan_token: str,
        at: datetime,
    ) -> TxnRecord:
        """An offline approval and its advice, in one transaction: the sale is owed to the host."""
        with self._tx() as db:
            if self._used(db) >= self.capacity:
                raise JournalError(JOURNAL_FULL_MESSAGE)
            stan, batch = self._allocate_stan(db), self._batch(db)
            stamp = at.isoformat()
            auth = f"Y1{stan % 10_000:04d}"  # offline approval code: Y1 = approved offline by the terminal
            db.execute(
                "INSERT INTO transactions (txn_id, kind, state, stan, batch, amount_minor, currency, entry_mode,"
                " pan_last4, pan_token, response_code, auth_code, created_at, updated_at)"
                " VALUES (?, 'sale', 'OFFLINE', ?, ?, ?, ?, ?, ?, ?, 'Y1', ?, ?, ?)",
                (txn_id, stan, batch, amount_minor, currency, entry_mode, pan_last4, pan_token, auth, stamp, stamp),
            )
            db.execute("INSERT INTO advices (txn_id, state, created_at) VALUES (?, 'PENDING', ?)", (txn_id, stamp))
            self._row_inserted(db, txn_id)
            record = self._get(db, txn_id)
        assert record is not None
        return record

    def void_offline(self, txn_id: str, *, reason: str, at: datetime) -> None:
        """An offline sale the card then refused never happened: no advice, no money."""
        with self._tx() as db:
            db.execute("UPDATE transactions SET state = 'DECLINED', updated_at = ?"
                       " WHERE txn_id = ? AND state = 'OFFLINE'", (at.isoformat(), txn_id))
            db.execute("DELETE FROM advices WHERE txn_id = ? AND state = 'PENDING'", (txn_id,))
            self._incident(db, "offline_sale_refused_by_card", txn_id, reason, at)

    def offline_exposure(self) -> tuple[int, int]:
        """(count, total) of offline sales the host has not acknowledged yet: the floor-limit risk."""
        row = self._db.execute(
            "SELECT COUNT(*), COALESCE(SUM(t.amount_minor), 0) FROM advices a JOIN transactions t USING (txn_id)"
            " WHERE a.state != 'DONE'").fetchone()
        return int(row[0]), int(row[1])

    def pending_advices(self) -> list[str]:
        """Advices still owed to the host, oldest first (a refused one is on the exception report)."""
        return [r[0] for r in self._db.execute(
            "SELECT txn_id FROM advices WHERE state = 'PENDING' ORDER BY rowid")]

    def advice_attempt(self, txn_id: str, *, at: datetime) -> int:
        with self._tx() as db:
            db.execute("UPDATE advices SET attempts = attempts + 1, updated_at = ? WHERE txn_id = ?",
                       (at.isoformat(), txn_id))
            row = db.execute("SELECT attempts FROM advices WHERE txn_id = ?", (txn_id,)).fetchone()
        if row is None:
            raise JournalError(f"no advice queued for {txn_id}")
        return int(row[0])

    def record_advised(self, txn_id: str, *, accepted: bool, response_code: str, rrn: str | None,
                       at: datetime) -> None:
        """The host answered the advice. Accepted: the sale is booked. Refused: the merchant carries
        the loss (the customer left with the goods), so a person is told; the sale is DECLINED with
        the host's code (its advice row stays FAILED: what `refused_advices` lists)."""
        with self._tx() as db:
            db.execute("UPDATE advices SET state = ?, updated_at = ? WHERE txn_id = ?",
                       ("DONE" if accepted else "FAILED", at.isoformat(), txn_id))
            if accepted:
                db.execute("UPDATE transactions SET state = 'APPROVED', rrn = COALESCE(?, rrn), updated_at = ?"
                           " WHERE txn_id = ?", (rrn, at.isoformat(), txn_id))
            else:
                # The host will not pay it: out of the batch totals on both sides (DECLINED, with the
                # host's code), on the exception report and the settlement slip, never sent again.
                db.execute("UPDATE transactions SET state = 'DECLINED', response_code = ?, updated_at = ?"
                           " WHERE txn_id = ? AND state = 'OFFLINE'", (response_code, at.isoformat(), txn_id))
                self._incident(db, "advice_refused", txn_id, f"host refused the offline sale ({response_code}):"
                               " the merchant carries it", at)

    def refused_advices(self, batch: int) -> list[TxnRecord]:
        """Offline sales of `batch` the host refused to pay (ADVICE REFUSED on the slip), oldest first."""
        ids = [r[0] for r in self._db.execute(
            "SELECT a.txn_id FROM advices a JOIN transactions t USING (txn_id) WHERE a.state = 'FAILED'"
            " AND t.batch = ? ORDER BY a.rowid", (batch,))]
        return [r for r in (self.get(i) for i in ids) if r is not None]

