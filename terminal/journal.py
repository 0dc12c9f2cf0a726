"""The local journal: every sale, reversal, cancellation and print, durable before it matters.

Money invariants (ARCHITECTURE.md §5), enforced here:
- `record_sent` allocates the STAN and commits the row as SENT (WAL, synchronous=FULL) before the
  request may leave; calling it again with the same txn_id returns the same STAN (retries reuse it).
- `record_timeout` marks TIMEOUT and queues the reversal in one transaction.
- Only last 4 + a keyed hash of the PAN are stored; nothing else of the card.
- Capacity: at the profile's limit new sales are refused until the batch is settled.
"""

from __future__ import annotations

import sqlite3
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path

from terminal.errors import JournalError

__all__ = ["JOURNAL_FULL_MESSAGE", "Capacity", "Journal", "TxnRecord", "new_txn_id"]

JOURNAL_FULL_MESSAGE = "journal full, settle first / 交易流水已满，请先结算"
STAN_MAX = 999_999

_SCHEMA = """
CREATE TABLE IF NOT EXISTS counters (name TEXT PRIMARY KEY, value INTEGER NOT NULL);
CREATE TABLE IF NOT EXISTS transactions (
    txn_id TEXT PRIMARY KEY,
    kind TEXT NOT NULL,
    state TEXT NOT NULL CHECK (state IN ('SENT', 'APPROVED', 'DECLINED', 'TIMEOUT')),
    stan INTEGER NOT NULL,
    batch INTEGER NOT NULL,
    amount_minor INTEGER NOT NULL CHECK (amount_minor > 0),
    currency TEXT NOT NULL,
    entry_mode TEXT NOT NULL,
    pan_last4 TEXT NOT NULL,
    pan_token TEXT NOT NULL,
    response_code TEXT,
    auth_code TEXT,
    rrn TEXT,
    created_at TEXT NOT NULL,
    updated_at TEXT NOT NULL,
    UNIQUE (batch, stan)
);
CREATE TABLE IF NOT EXISTS reversals (
    txn_id TEXT PRIMARY KEY REFERENCES transactions (txn_id),
    state TEXT NOT NULL CHECK (state IN ('PENDING', 'DONE', 'FAILED')),
    reason TEXT NOT NULL,
    attempts INTEGER NOT NULL DEFAULT 0,
    created_at TEXT NOT NULL
);
CREATE TABLE IF NOT EXISTS cancellations (
    id INTEGER PRIMARY KEY,
    txn_id TEXT NOT NULL,
    amount_minor INTEGER,
    at_state TEXT NOT NULL,
    reason TEXT NOT NULL,
    actor TEXT NOT NULL,
    terminal_id TEXT NOT NULL,
    at TEXT NOT NULL
);
CREATE TABLE IF NOT EXISTS prints (
    id INTEGER PRIMARY KEY,
    txn_id TEXT NOT NULL REFERENCES transactions (txn_id),
    copy TEXT NOT NULL,
    reprint INTEGER NOT NULL,
    outcome TEXT NOT NULL,
    at TEXT NOT NULL
);
"""


def new_txn_id() -> str:
    return str(uuid.uuid4())


@dataclass(frozen=True, kw_only=True)
class TxnRecord:
    txn_id: str
    kind: str
    state: str
    stan: int
    batch: int
    amount_minor: int
    currency: str
    entry_mode: str
    pan_last4: str
    response_code: str | None
    auth_code: str | None
    rrn: str | None
    created_at: str


@dataclass(frozen=True, kw_only=True)
class Capacity:
    used: int
    limit: int
    warn_ratio: float

    @property
    def full(self) -> bool:
        return self.used >= self.limit

    @property
    def warn(self) -> bool:
        return self.used >= self.limit * self.warn_ratio


class Journal:
    def __init__(self, path: Path | str, *, capacity: int = 500, warn_ratio: float = 0.9) -> None:
        self.path = Path(path)
        self.capacity = capacity
        self.warn_ratio = warn_ratio
        self.commits = 0  # durable commits made, for the benchmarks
        if str(path) != ":memory:":
            self.path.parent.mkdir(parents=True, exist_ok=True)
        try:
            # isolation_level=None: we open every transaction ourselves with BEGIN IMMEDIATE.
            self._db = sqlite3.connect(str(path), isolation_level=None, check_same_thread=False)
            self._db.execute("PRAGMA journal_mode=WAL")
            self._db.execute("PRAGMA synchronous=FULL")
            self._db.execute("PRAGMA foreign_keys=ON")
            with self._tx() as db:
                for statement in filter(str.strip, _SCHEMA.split(";")):
                    db.execute(statement)
                db.execute("INSERT OR IGNORE INTO counters VALUES ('stan', 0), ('batch', 1)")
        except sqlite3.Error as exc:
            raise JournalError(f"cannot open the journal at {path}: {exc}") from exc

    def close(self) -> None:
        self._db.close()

    @contextmanager
    def _tx(self) -> Iterator[sqlite3.Connection]:
        try:
            self._db.execute("BEGIN IMMEDIATE")
            try:
                yield self._db
            except BaseException:
                self._db.execute("ROLLBACK")
                raise
            self._db.execute("COMMIT")
            self.commits += 1
        except sqlite3.Error as exc:
            raise JournalError(f"journal write failed: {exc}") from exc

    # -- sales ------------------------------------------------------------------------------
    def record_sent(
        self,
        *,
        txn_id: str,
        amount_minor: int,
        currency: str,
        entry_mode: str,
        pan_last4: str,
        pan_token: str,
        at: datetime,
        kind: str = "sale",
    ) -> TxnRecord:
        """Allocate the STAN and commit the row as SENT. Idempotent on txn_id."""
        with self._tx() as db:
            existing = self._get(db, txn_id)
            if existing is not None:
                if (existing.amount_minor, existing.kind) != (amount_minor, kind):
                    raise JournalError(f"transaction {txn_id} was recorded with other details")
                return existing
            if self._used(db) >= self.capacity:
                raise JournalError(JOURNAL_FULL_MESSAGE)
            stan = db.execute("SELECT value FROM counters WHERE name = 'stan'").fetchone()[0] % STAN_MAX + 1
            batch = db.execute("SELECT value FROM counters WHERE name = 'batch'").fetchone()[0]
            db.execute("UPDATE counters SET value = ? WHERE name = 'stan'", (stan,))
            stamp = at.isoformat()
            db.execute(
                "INSERT INTO transactions (txn_id, kind, state, stan, batch, amount_minor, currency,"
                " entry_mode, pan_last4, pan_token, created_at, updated_at)"
                " VALUES (?, ?, 'SENT', ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                (txn_id, kind, stan, batch, amount_minor, currency, entry_mode, pan_last4, pan_token,
                 stamp, stamp),
            )
            record = self._get(db, txn_id)
        assert record is not None
        return record

    def record_answer(
        self, txn_id: str, *, approved: bool, response_code: str, auth_code: str | None,
        rrn: str | None, at: datetime,
    ) -> TxnRecord:
        """The host answered in time. Only a SENT row can take an answer."""
        with self._tx() as db:
            cur = db.execute(
                "UPDATE transactions SET state = ?, response_code = ?, auth_code = ?, rrn = ?, updated_at = ?"
                " WHERE txn_id = ? AND state = 'SENT'",
                ("APPROVED" if approved else "DECLINED", response_code, auth_code, rrn, at.isoformat(), txn_id),
            )
            if cur.rowcount != 1:
                raise JournalError(f"transaction {txn_id} is not awaiting an answer")
            record = self._get(db, txn_id)
        assert record is not None
        return record

    def record_timeout(self, txn_id: str, *, reason: str, at: datetime) -> None:
        """Outcome unknown: mark TIMEOUT and queue its reversal in one transaction."""
        with self._tx() as db:
            cur = db.execute(
                "UPDATE transactions SET state = 'TIMEOUT', updated_at = ? WHERE txn_id = ? AND state = 'SENT'",
                (at.isoformat(), txn_id),
            )
            if cur.rowcount != 1:
                raise JournalError(f"transaction {txn_id} is not awaiting an answer")
            db.execute(
                "INSERT OR IGNORE INTO reversals (txn_id, state, reason, created_at) VALUES (?, 'PENDING', ?, ?)",
                (txn_id, reason, at.isoformat()),
            )

    def recover_unanswered(self, *, at: datetime) -> list[str]:
        """On boot: every row still SENT lost its answer with the power; queue its reversal."""
        with self._tx() as db:
            ids = [r[0] for r in db.execute("SELECT txn_id FROM transactions WHERE state = 'SENT'")]
            for txn_id in ids:
                db.execute("UPDATE transactions SET state = 'TIMEOUT', updated_at = ? WHERE txn_id = ?",
                           (at.isoformat(), txn_id))
                db.execute(
                    "INSERT OR IGNORE INTO reversals (txn_id, state, reason, created_at)"
                    " VALUES (?, 'PENDING', 'no answer before restart', ?)",
                    (txn_id, at.isoformat()),
                )
        return ids

    def pending_reversals(self) -> list[str]:
        return [r[0] for r in self._db.execute(
            "SELECT txn_id FROM reversals WHERE state = 'PENDING' ORDER BY created_at, txn_id")]

    # -- cancellations and prints -----------------------------------------------------------
    def record_cancellation(
        self, *, txn_id: str, amount_minor: int | None, at_state: str, reason: str, actor: str,
        terminal_id: str, at: datetime,
    ) -> None:
        with self._tx() as db:
            db.execute(
                "INSERT INTO cancellations (txn_id, amount_minor, at_state, reason, actor, terminal_id, at)"
                " VALUES (?, ?, ?, ?, ?, ?, ?)",
                (txn_id, amount_minor, at_state, reason, actor, terminal_id, at.isoformat()),
            )

    def cancellations(self) -> list[dict[str, object]]:
        cur = self._db.execute("SELECT * FROM cancellations ORDER BY id")
        names = [d[0] for d in cur.description]
        return [dict(zip(names, row, strict=True)) for row in cur]

    def record_print(self, *, txn_id: str, copy: str, reprint: bool, outcome: str, at: datetime) -> None:
        with self._tx() as db:
            db.execute(
                "INSERT INTO prints (txn_id, copy, reprint, outcome, at) VALUES (?, ?, ?, ?, ?)",
                (txn_id, copy, int(reprint), outcome, at.isoformat()),
            )

    # -- queries ----------------------------------------------------------------------------
    def get(self, txn_id: str) -> TxnRecord | None:
        return self._get(self._db, txn_id)

    def capacity_status(self) -> Capacity:
        return Capacity(used=self._used(self._db), limit=self.capacity, warn_ratio=self.warn_ratio)

    def count_by_state(self) -> dict[str, int]:
        return dict(self._db.execute("SELECT state, COUNT(*) FROM transactions GROUP BY state").fetchall())

    @staticmethod
    def _used(db: sqlite3.Connection) -> int:
        batch = db.execute("SELECT value FROM counters WHERE name = 'batch'").fetchone()[0]
        return int(db.execute("SELECT COUNT(*) FROM transactions WHERE batch = ?", (batch,)).fetchone()[0])

    @staticmethod
    def _get(db: sqlite3.Connection, txn_id: str) -> TxnRecord | None:
        row = db.execute(
            "SELECT txn_id, kind, state, stan, batch, amount_minor, currency, entry_mode, pan_last4,"
            " response_code, auth_code, rrn, created_at FROM transactions WHERE txn_id = ?",
            (txn_id,),
        ).fetchone()
        if row is None:
            return None
        keys = ("txn_id", "kind", "state", "stan", "batch", "amount_minor", "currency", "entry_mode",
                "pan_last4", "response_code", "auth_code", "rrn", "created_at")
        return TxnRecord(**dict(zip(keys, row, strict=True)))
