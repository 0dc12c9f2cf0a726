"""The journal's core: schema, durable transactions, sales, prints, incidents, batches.

terminal/journal.py composes it with the owed-message queues (journal_queues.py) into `Journal`;
read that module's docstring for the money invariants.

Money invariants (ARCHITECTURE.md §5), enforced here:
- `record_sent` allocates the STAN and commits the row as SENT (WAL, synchronous=FULL) before the
  request may leave; calling it again with the same txn_id returns the same STAN (retries reuse it).
- `record_timeout` marks TIMEOUT and queues the reversal in one transaction.
- Only last 4 + a keyed hash of the PAN are stored; nothing else of the card.
- Capacity: at the profile's limit new sales are refused until the batch is settled.
"""

from __future__ import annotations

import os
import sqlite3
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import datetime
from pathlib import Path
from typing import Any

from drivers.record import Record
from terminal.errors import JournalError

__all__ = [
    "JOURNAL_FULL_MESSAGE", "REVERSAL_FAILED_MESSAGE", "STAN_MAX", "Capacity", "JournalCore", "TxnRecord", "new_txn_id",
]

JOURNAL_FULL_MESSAGE = "交易流水已满，请先结算 / journal full, settle first"
REVERSAL_FAILED_MESSAGE = "冲正不成功,请人工处理 / reversal failed, handle manually"
STAN_MAX = 999_999
SCHEMA_VERSION = 1  # PRAGMA user_version; a journal of another version is refused, never migrated blindly

_SCHEMA = """
CREATE TABLE IF NOT EXISTS counters (name TEXT PRIMARY KEY, value INTEGER NOT NULL);
CREATE TABLE IF NOT EXISTS transactions (
    txn_id TEXT PRIMARY KEY,
    kind TEXT NOT NULL,
    state TEXT NOT NULL
        CHECK (state IN ('SENT', 'AUTHORIZED', 'APPROVED', 'DECLINED', 'TIMEOUT', 'REVERSED', 'OFFLINE')),
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
    original_txn_id TEXT REFERENCES transactions (txn_id),
    created_at TEXT NOT NULL,
    updated_at TEXT NOT NULL,
    UNIQUE (batch, stan)
);
CREATE INDEX IF NOT EXISTS transactions_by_batch ON transactions (batch, state);
CREATE TABLE IF NOT EXISTS reversals (
    txn_id TEXT PRIMARY KEY REFERENCES transactions (txn_id),
    state TEXT NOT NULL CHECK (state IN ('PENDING', 'DONE', 'FAILED')),
    reason TEXT NOT NULL,
    reason_code TEXT NOT NULL DEFAULT '98',
    attempts INTEGER NOT NULL DEFAULT 0,
    created_at TEXT NOT NULL,
    updated_at TEXT
);
CREATE TABLE IF NOT EXISTS advices (
    txn_id TEXT PRIMARY KEY REFERENCES transactions (txn_id),
    state TEXT NOT NULL CHECK (state IN ('PENDING', 'DONE', 'FAILED')),
    attempts INTEGER NOT NULL DEFAULT 0,
    created_at TEXT NOT NULL,
    updated_at TEXT
);
CREATE TABLE IF NOT EXISTS incidents (
    id INTEGER PRIMARY KEY,
    kind TEXT NOT NULL,
    txn_id TEXT,
    detail TEXT NOT NULL,
    at TEXT NOT NULL
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
CREATE TABLE IF NOT EXISTS qr_orders (
    txn_id TEXT PRIMARY KEY REFERENCES transactions (txn_id),
    order_no TEXT NOT NULL UNIQUE,
    mode TEXT NOT NULL CHECK (mode IN ('customer', 'merchant', 'refund')),
    channel TEXT NOT NULL,
    status TEXT NOT NULL,
    code_masked TEXT NOT NULL DEFAULT '',
    wallet_order_no TEXT NOT NULL DEFAULT '',
    payer TEXT NOT NULL DEFAULT '',
    code_url TEXT NOT NULL DEFAULT '',
    paid_order_no TEXT NOT NULL DEFAULT '',
    err_code TEXT NOT NULL DEFAULT '',
    message TEXT NOT NULL DEFAULT '',
    paid_at TEXT NOT NULL DEFAULT '',
    wait_s REAL NOT NULL DEFAULT 0,
    created_at TEXT NOT NULL,
    updated_at TEXT NOT NULL
);
CREATE TABLE IF NOT EXISTS signatures (
    txn_id TEXT PRIMARY KEY REFERENCES transactions (txn_id),
    strokes BLOB NOT NULL,
    width INTEGER NOT NULL,
    height INTEGER NOT NULL,
    dpi INTEGER NOT NULL,
    feature_code TEXT NOT NULL,
    binding TEXT NOT NULL,
    created_at TEXT NOT NULL
);
CREATE TABLE IF NOT EXISTS signature_uploads (
    txn_id TEXT PRIMARY KEY REFERENCES signatures (txn_id),
    state TEXT NOT NULL CHECK (state IN ('PENDING', 'DONE', 'FAILED')),
    attempts INTEGER NOT NULL DEFAULT 0,
    response_code TEXT,
    created_at TEXT NOT NULL,
    updated_at TEXT
);
CREATE TABLE IF NOT EXISTS signature_marks (
    txn_id TEXT PRIMARY KEY REFERENCES transactions (txn_id),
    mark TEXT NOT NULL CHECK (mark IN ('OWED', 'WAIVED')),
    created_at TEXT NOT NULL
);
CREATE TABLE IF NOT EXISTS qr_events (
    id INTEGER PRIMARY KEY,
    txn_id TEXT NOT NULL,
    status TEXT NOT NULL,
    detail TEXT NOT NULL,
    at TEXT NOT NULL
);
CREATE TABLE IF NOT EXISTS ecr_orders (
    order_id TEXT PRIMARY KEY,
    amount_minor INTEGER NOT NULL CHECK (amount_minor > 0),
    currency TEXT NOT NULL,
    tender TEXT NOT NULL,
    status TEXT NOT NULL CHECK (status IN ('OPEN', 'DONE')),
    outcome TEXT NOT NULL DEFAULT '',
    reason TEXT NOT NULL DEFAULT '',
    txn_id TEXT NOT NULL DEFAULT '',
    txn_state TEXT NOT NULL DEFAULT '',
    stan INTEGER,
    batch INTEGER,
    auth_code TEXT,
    rrn TEXT,
    response_code TEXT,
    pan_last4 TEXT NOT NULL DEFAULT '',
    entry_mode TEXT NOT NULL DEFAULT '',
    credited_minor INTEGER NOT NULL DEFAULT 0,
    voided INTEGER NOT NULL DEFAULT 0,
    created_at TEXT NOT NULL,
    updated_at TEXT NOT NULL
);
"""
_SCHEMA_STATEMENTS = [s.strip() for s in _SCHEMA.split(";") if s.strip()]
# The table and index names _SCHEMA creates ("... IF NOT EXISTS <name> ..."); a statement of
# another form counts as never present, so it runs at every open.
_SCHEMA_NAMES = {(s.partition("IF NOT EXISTS")[2].split() or [s])[0] for s in _SCHEMA_STATEMENTS}


def new_txn_id() -> str:
    # A random (version 4) UUID; the uuid module is not imported for this (it costs ~3 ms a start).
    raw = bytearray(os.urandom(16))
    raw[6] = (raw[6] & 0x0F) | 0x40
    raw[8] = (raw[8] & 0x3F) | 0x80
    h = raw.hex()
    return f"{h[:8]}-{h[8:12]}-{h[12:16]}-{h[16:20]}-{h[20:]}"


class TxnRecord(Record):
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
    original_txn_id: str | None = None  # the sale a void or refund credits


class Capacity(Record):
    used: int
    limit: int
    warn_ratio: float

    @property
    def full(self) -> bool:
        return self.used >= self.limit

    @property
    def warn(self) -> bool:
        return self.used >= self.limit * self.warn_ratio


class JournalCore:
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
                version = db.execute("PRAGMA user_version").fetchone()[0]
                present = {name for (name,) in db.execute("SELECT name FROM sqlite_master")}
                if present and version != SCHEMA_VERSION:
                    raise JournalError(
                        f"the journal at {path} has schema v{version}, this terminal needs v{SCHEMA_VERSION}:"
                        " settle the batch with the old version, archive the file, then start a new one")
                # A current journal that has every table and index is opened as is: no statements,
                # no write (setting user_version again would cost a commit to disk at every start).
                if version != SCHEMA_VERSION or not _SCHEMA_NAMES.issubset(present):
                    for statement in _SCHEMA_STATEMENTS:
                        db.execute(statement)
                    db.execute("INSERT OR IGNORE INTO counters VALUES ('stan', 0), ('batch', 1)")
                    db.execute(f"PRAGMA user_version = {SCHEMA_VERSION}")
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
        original_txn_id: str | None = None,
        signature_owed: bool = False,
    ) -> TxnRecord:
        """Allocate the STAN and commit the row as SENT. Idempotent on txn_id. `signature_owed`:
        the card asks for an e-signature (电签), marked OWED in the same commit, so no restart
        can leave its approval without either the signature or the fallback (signatures.py)."""
        with self._tx() as db:
            existing = self._get(db, txn_id)
            if existing is not None:
                if (existing.amount_minor, existing.kind) != (amount_minor, kind):
                    raise JournalError(f"transaction {txn_id} was recorded with other details")
                return existing
            record = self._insert_sent(db, txn_id=txn_id, kind=kind, amount_minor=amount_minor, currency=currency,
                                       entry_mode=entry_mode, pan_last4=pan_last4, pan_token=pan_token,
                                       original_txn_id=original_txn_id, at=at)
            if signature_owed:
                db.execute("INSERT OR REPLACE INTO signature_marks VALUES (?, 'OWED', ?)", (txn_id, at.isoformat()))
        assert record is not None
        return record

    def _insert_sent(
        self, db: sqlite3.Connection, *, txn_id: str, kind: str, amount_minor: int, currency: str, entry_mode: str,
        pan_last4: str, pan_token: str, original_txn_id: str | None, at: datetime,
    ) -> TxnRecord:
        """Insert a new SENT row with the next STAN, inside the caller's transaction."""
        # One read of both counters serves the capacity check, the STAN and the batch number.
        counters = dict(db.execute("SELECT name, value FROM counters WHERE name IN ('stan', 'batch')"))
        batch = int(counters["batch"])
        used = db.execute("SELECT COUNT(*) FROM transactions WHERE batch = ?", (batch,)).fetchone()[0]
        if used >= self.capacity:
            raise JournalError(JOURNAL_FULL_MESSAGE)
        stan = int(counters["stan"]) % STAN_MAX + 1
        db.execute("UPDATE counters SET value = ? WHERE name = 'stan'", (stan,))
        stamp = at.isoformat()
        db.execute(
            "INSERT INTO transactions (txn_id, kind, state, stan, batch, amount_minor, currency,"
            " entry_mode, pan_last4, pan_token, original_txn_id, created_at, updated_at)"
            " VALUES (?, ?, 'SENT', ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
            (txn_id, kind, stan, batch, amount_minor, currency, entry_mode, pan_last4, pan_token,
             original_txn_id, stamp, stamp),
        )
        self._row_inserted(db, txn_id)
        # The row as it reads back, without reading it back: the arguments are stored as given.
        return TxnRecord(
            txn_id=txn_id, kind=kind, state="SENT", stan=stan, batch=batch, amount_minor=amount_minor,
            currency=currency, entry_mode=entry_mode, pan_last4=pan_last4, response_code=None,
            auth_code=None, rrn=None, created_at=stamp, original_txn_id=original_txn_id)

    # Hooks inside the transaction that inserts a row / closes a batch (orders.py: the ECR's
    # order is linked to its host transaction in the same commit, and keeps its outcome when
    # the batch leaves the live journal).
    def _row_inserted(self, db: sqlite3.Connection, txn_id: str) -> None:
        pass

    def _batch_leaving(self, db: sqlite3.Connection, batch: int) -> None:
        pass

    def record_answer(
        self, txn_id: str, *, approved: bool, response_code: str, auth_code: str | None,
        rrn: str | None, at: datetime, card_must_confirm: bool = False,
    ) -> TxnRecord:
        """The host answered in time. Only a SENT row can take an answer. A chip approval is
        AUTHORIZED until the card confirms it (`confirm_approval`): a restart in between reverses
        it, as the card never agreed."""
        state = ("AUTHORIZED" if card_must_confirm else "APPROVED") if approved else "DECLINED"
        with self._tx() as db:
            rows = db.execute(
                "UPDATE transactions SET state = ?, response_code = ?, auth_code = ?, rrn = ?, updated_at = ?"
                f" WHERE txn_id = ? AND state = 'SENT' RETURNING {_RECORD_COLUMNS}",
                (state, response_code, auth_code, rrn, at.isoformat(), txn_id),
            ).fetchall()
            if len(rows) != 1:
                raise JournalError(f"transaction {txn_id} is not awaiting an answer")
        return _record(rows[0])

    def confirm_approval(self, txn_id: str, *, at: datetime) -> TxnRecord:
        """The card agreed with the issuer (TC): the approval is final."""
        with self._tx() as db:
            rows = db.execute("UPDATE transactions SET state = 'APPROVED', updated_at = ?"
                              f" WHERE txn_id = ? AND state = 'AUTHORIZED' RETURNING {_RECORD_COLUMNS}",
                              (at.isoformat(), txn_id)).fetchall()
            if len(rows) != 1:
                raise JournalError(f"transaction {txn_id} is not awaiting the card's confirmation")
        return _record(rows[0])

    def receipts_owed(self) -> list[tuple[TxnRecord, str]]:
        """Approved sales of the open batch (offline ones too) with a copy never printed whole (a
        restart or an abandoned print job came between): (record, copy) pairs, oldest first."""
        owed = []
        for (txn_id,) in self._db.execute(
            # Not one being reversed (a signature never given, a card that refused): no approved slip.
            "SELECT txn_id FROM transactions WHERE state IN ('APPROVED', 'OFFLINE') AND batch = ?"
            " AND txn_id NOT IN (SELECT txn_id FROM reversals) ORDER BY rowid",
            (self.current_batch(),),
        ).fetchall():
            done = {c for (c,) in self._db.execute(
                "SELECT copy FROM prints WHERE txn_id = ? AND outcome = 'ok'", (txn_id,))}
            record = self.get(txn_id)
            owed += [(record, copy) for copy in ("merchant", "cardholder") if copy not in done and record]
        return owed

    def record_incident(self, kind: str, *, txn_id: str | None, detail: str, at: datetime) -> None:
        with self._tx() as db:
            self._incident(db, kind, txn_id, detail, at)

    @staticmethod
    def _incident(db: sqlite3.Connection, kind: str, txn_id: str | None, detail: str, at: datetime) -> None:
        db.execute("INSERT INTO incidents (kind, txn_id, detail, at) VALUES (?, ?, ?, ?)",
                   (kind, txn_id, detail, at.isoformat()))

    def exception_report(self) -> list[dict[str, object]]:
        """What a person must look at: escalated reversals and every incident, oldest first."""
        cur = self._db.execute("SELECT kind, txn_id, detail, at FROM incidents ORDER BY id")
        return [dict(zip(("kind", "txn_id", "detail", "at"), row, strict=True)) for row in cur]

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

    # -- batch and settlement ---------------------------------------------------------------
    def current_batch(self) -> int:
        return int(self._db.execute("SELECT value FROM counters WHERE name = 'batch'").fetchone()[0])

    def next_stan(self) -> int:
        """A STAN for a message that is not a transaction (settlement, sign-on), committed first."""
        with self._tx() as db:
            return self._allocate_stan(db)

    @staticmethod
    def _allocate_stan(db: sqlite3.Connection) -> int:
        """The next trace number, 1..999999 and round again (call inside a transaction)."""
        stan = int(db.execute("SELECT value FROM counters WHERE name = 'stan'").fetchone()[0]) % STAN_MAX + 1
        db.execute("UPDATE counters SET value = ? WHERE name = 'stan'", (stan,))
        return stan

    @staticmethod
    def _batch(db: sqlite3.Connection) -> int:
        return int(db.execute("SELECT value FROM counters WHERE name = 'batch'").fetchone()[0])

    def batch_records(self, batch: int, *, channel: str = "card") -> list[TxnRecord]:
        """Every transaction of a batch in one channel ("card": what the acquirer settles, "qr":
        what the wallet settles, "all"), in the order it was made."""
        where = {"card": " AND entry_mode != 'qr'", "qr": " AND entry_mode = 'qr'", "all": ""}[channel]
        ids = [r[0] for r in self._db.execute(
            f"SELECT txn_id FROM transactions WHERE batch = ?{where} ORDER BY created_at, stan", (batch,))]
        return [r for r in (self.get(i) for i in ids) if r is not None]

    def close_batch(self, batch: int, *, at: datetime) -> list[TxnRecord]:
        """After the host agreed and the archive is on disk: the batch leaves the live journal
        and the next batch number starts, in one transaction (which also clears the settlement
        owed mark). A transaction whose reversal is still unresolved (pending or escalated) is
        not dropped: it is carried into the next batch, with an incident for the exception
        report, and settled with the batch in which its reversal is finally acknowledged.
        Returns the carried transactions as they were in `batch`."""
        with self._tx() as db:
            if db.execute("SELECT value FROM counters WHERE name = 'batch'").fetchone()[0] != batch:
                raise JournalError(f"batch {batch} is not the open batch")
            # Carried too: a QR payment the wallet has not decided yet (resolved by a query later).
            carried = [_record(row) for row in db.execute(
                f"SELECT {_RECORD_COLUMNS} FROM transactions WHERE batch = ? AND (txn_id IN"
                " (SELECT txn_id FROM reversals WHERE state IN ('PENDING', 'FAILED'))"
                " OR (entry_mode = 'qr' AND state = 'SENT')) ORDER BY rowid", (batch,))]
            for record in carried:
                # A carried credit no longer points at its sale, which leaves with this batch
                # (the archive and the incident keep the link).
                db.execute("UPDATE transactions SET batch = batch + 1, original_txn_id = NULL, updated_at = ?"
                           " WHERE txn_id = ?", (at.isoformat(), record.txn_id))
                what = "QR payment unconfirmed" if record.entry_mode == "qr" else "reversal unresolved"
                self._incident(db, "carried_over", record.txn_id,
                               f"{record.kind} STAN {record.stan:06d} of batch {batch:06d}, {record.amount_minor}"
                               f" {record.currency}: {what}, carried into batch {batch + 1:06d}"
                               + (f" (original {record.original_txn_id})" if record.original_txn_id else ""), at)
            unsettled = db.execute(
                "SELECT COUNT(*) FROM transactions WHERE batch = ? AND state IN ('SENT', 'TIMEOUT', 'OFFLINE',"
                " 'AUTHORIZED')",
                (batch,)).fetchone()[0]
            if unsettled:
                raise JournalError(f"batch {batch} still has {unsettled} unresolved transaction(s)")
            self._batch_leaving(db, batch)
            ids = "SELECT txn_id FROM transactions WHERE batch = ?"
            db.execute(f"DELETE FROM prints WHERE txn_id IN ({ids})", (batch,))
            # The batch's signatures went to its archive (settlement.py, batch-NNNNNN-signatures.json)
            # and live on there until the archive's retention deletes them.
            db.execute(f"DELETE FROM signature_uploads WHERE txn_id IN ({ids})", (batch,))
            db.execute(f"DELETE FROM signatures WHERE txn_id IN ({ids})", (batch,))
            db.execute(f"DELETE FROM signature_marks WHERE txn_id IN ({ids})", (batch,))
            db.execute(f"DELETE FROM qr_events WHERE txn_id IN ({ids})", (batch,))
            db.execute(f"DELETE FROM qr_orders WHERE txn_id IN ({ids})", (batch,))
            db.execute(f"DELETE FROM reversals WHERE state = 'DONE' AND txn_id IN ({ids})", (batch,))
            db.execute(f"DELETE FROM advices WHERE state != 'PENDING' AND txn_id IN ({ids})", (batch,))
            db.execute("DELETE FROM transactions WHERE batch = ?", (batch,))
            db.execute("UPDATE counters SET value = value + 1 WHERE name = 'batch'")
            db.execute("DELETE FROM counters WHERE name = 'settlement_owed'")
            self._incident(db, "batch_settled", None, f"batch {batch:06d} settled and archived", at)
        return carried

    def mark_settlement_owed(self, batch: int) -> None:
        """A settlement request for `batch` is about to leave: until the host's definitive answer
        (or the batch is closed) the terminal does not know whether the host closed the batch,
        so it settles again before anything else (committed before a byte leaves)."""
        with self._tx() as db:
            db.execute("INSERT OR REPLACE INTO counters VALUES ('settlement_owed', ?)", (batch,))

    def clear_settlement_owed(self) -> None:
        """The host answered definitively without closing the batch (e.g. out of balance twice)."""
        with self._tx() as db:
            db.execute("DELETE FROM counters WHERE name = 'settlement_owed'")

    def settlement_owed(self) -> int | None:
        """The batch whose settlement has no definitive outcome yet, or None."""
        row = self._db.execute("SELECT value FROM counters WHERE name = 'settlement_owed'").fetchone()
        return None if row is None else int(row[0])

    # -- queries ----------------------------------------------------------------------------
    def get(self, txn_id: str) -> TxnRecord | None:
        return self._get(self._db, txn_id)

    def pan_token_of(self, txn_id: str) -> str:
        """The keyed hash of a transaction's card, so a void or refund names the same card."""
        row = self._db.execute("SELECT pan_token FROM transactions WHERE txn_id = ?", (txn_id,)).fetchone()
        if row is None:
            raise JournalError(f"no transaction {txn_id}")
        return str(row[0])

    def credits_against(self, txn_id: str) -> list[TxnRecord]:
        """Voids and refunds of a sale that the host approved or may still book (not declined)."""
        ids = [r[0] for r in self._db.execute(
            "SELECT txn_id FROM transactions WHERE original_txn_id = ? AND state IN ('SENT', 'APPROVED', 'TIMEOUT')"
            " ORDER BY rowid", (txn_id,))]
        return [r for r in (self.get(i) for i in ids) if r is not None]

    def last_decided(self) -> TxnRecord | None:
        """The most recent transaction with an outcome a receipt can show (what "reprint" prints)."""
        row = self._db.execute(
            "SELECT txn_id FROM transactions WHERE state IN ('APPROVED', 'DECLINED', 'REVERSED', 'OFFLINE')"
            " ORDER BY rowid DESC LIMIT 1").fetchone()
        return None if row is None else self.get(str(row[0]))

    def txn_id_for_stan(self, stan: int) -> str | None:
        """The most recent transaction sent with this STAN (STANs wrap, so the newest wins)."""
        row = self._db.execute(
            "SELECT txn_id FROM transactions WHERE stan = ? ORDER BY created_at DESC LIMIT 1", (stan,)).fetchone()
        return None if row is None else str(row[0])

    def capacity_status(self) -> Capacity:
        return Capacity(used=self._used(self._db), limit=self.capacity, warn_ratio=self.warn_ratio)

    def count_by_state(self) -> dict[str, int]:
        return dict(self._db.execute("SELECT state, COUNT(*) FROM transactions GROUP BY state").fetchall())

    @staticmethod
    def _used(db: sqlite3.Connection) -> int:
        return int(db.execute(
            "SELECT COUNT(*) FROM transactions WHERE batch = (SELECT value FROM counters WHERE name = 'batch')"
        ).fetchone()[0])

    @staticmethod
    def _get(db: sqlite3.Connection, txn_id: str) -> TxnRecord | None:
        row = db.execute(f"SELECT {_RECORD_COLUMNS} FROM transactions WHERE txn_id = ?", (txn_id,)).fetchone()
        return None if row is None else _record(row)


_RECORD_KEYS = ("txn_id", "kind", "state", "stan", "batch", "amount_minor", "currency", "entry_mode",
                "pan_last4", "response_code", "auth_code", "rrn", "created_at", "original_txn_id")
_RECORD_COLUMNS = ", ".join(_RECORD_KEYS)


def _record(row: tuple[Any, ...]) -> TxnRecord:
    return TxnRecord(**dict(zip(_RECORD_KEYS, row, strict=True)))
