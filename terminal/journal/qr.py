"""QR payments in the journal: the second payment channel beside the card one.

A QR payment is a row of `transactions` like a card sale (entry mode `qr`: it takes a trace
number, counts against the journal's capacity, belongs to a batch, prints and reprints like a
card slip) plus its order in `qr_orders`: the terminal's order number (`out_trade_no`), the
channel, where the order stands at the wallet, and every step in `qr_events`.

Money invariants, as for cards (ARCHITECTURE.md §5):
- the order number is committed with the row, before the request leaves, and every retry,
  query and reverse reuses it (the gateway is idempotent on it);
- the payer's one-time payment code is never stored: a masked form only (it is a bearer token
  for about a minute);
- a row stays SENT until the wallet's answer decides it. A QR payment never owes an ISO 8583
  reversal: its unknowns are resolved by the wallet's query and reverse (`qr_unresolved`), by
  idle housekeeping, at settlement (carried into the next batch while still unknown) or by the
  statement.
"""

from __future__ import annotations

import sqlite3
from datetime import datetime
from typing import Any

from drivers.record import Record
from terminal.errors import JournalError
from terminal.journal.core import JournalCore, TxnRecord, _record

__all__ = ["FINAL_STATUSES", "QR_ENTRY_MODE", "QrJournal", "QrOrder", "mask_code", "order_number"]

QR_ENTRY_MODE = "qr"
# Where a QR order stands. PAYING..CLOSING are on the way; the last five are the end of it.
STATUSES = ("PAYING", "USERPAYING", "QUERYING", "REVERSING", "SHOWING", "CLOSING", "REFUNDING",
            "UNKNOWN", "PAID", "FAILED", "CLOSED", "REFUNDED", "DONE")
FINAL_STATUSES = frozenset({"PAID", "FAILED", "CLOSED", "REFUNDED", "DONE"})
_FIELDS = ("wallet_order_no", "payer", "code_url", "err_code", "message", "paid_at", "wait_s", "channel")


class QrOrder(Record):
    txn_id: str
    order_no: str
    mode: str  # customer (被扫), merchant (主扫) or refund (a void/refund of a QR payment)
    channel: str  # wechat / alipay / unionpay ("" until known for a merchant order)
    status: str
    code_masked: str
    wallet_order_no: str
    payer: str
    code_url: str
    paid_order_no: str  # a refund's: the payment it returns money of
    err_code: str
    message: str
    paid_at: str
    wait_s: float
    created_at: str
    updated_at: str

    @property
    def final(self) -> bool:
        return self.status in FINAL_STATUSES


_ORDER_KEYS = tuple(QrOrder.__annotations__)
_ORDER_COLUMNS = ", ".join(_ORDER_KEYS)


def order_number(terminal_id: str, at: datetime, stan: int) -> str:
    """The terminal's order number: unique per terminal (time + trace), 32 characters at most,
    [A-Za-z0-9] only, as the wallets require of `out_trade_no`."""
    digits = "".join(ch for ch in terminal_id if ch.isalnum())[:12]
    return f"OT{digits}{at:%y%m%d%H%M%S}{stan:06d}"


def mask_code(code: str) -> str:
    """A payment code as it may be stored and printed: first 4 and last 4 digits."""
    return code if len(code) <= 8 else f"{code[:4]}{'*' * (len(code) - 8)}{code[-4:]}"


class QrJournal(JournalCore):
    def record_qr_sent(
        self, *, txn_id: str, mode: str, channel: str, amount_minor: int, currency: str, terminal_id: str,
        at: datetime, code_masked: str = "", kind: str = "sale", original_txn_id: str | None = None,
        paid_order_no: str = "",
    ) -> tuple[TxnRecord, QrOrder]:
        """The row, its trace number and its order number, committed before the request leaves.
        Idempotent on txn_id (a retry gets the same order number)."""
        status = {"customer": "PAYING", "merchant": "SHOWING", "refund": "REFUNDING"}[mode]
        with self._tx() as db:
            existing = self._get(db, txn_id)
            if existing is not None:
                order = self._order(db, txn_id)
                if order is None or (existing.amount_minor, existing.kind) != (amount_minor, kind):
                    raise JournalError(f"transaction {txn_id} was recorded with other details")
                return existing, order
            record = self._insert_sent(
                db, txn_id=txn_id, kind=kind, amount_minor=amount_minor, currency=currency,
                entry_mode=QR_ENTRY_MODE, pan_last4="", pan_token="", original_txn_id=original_txn_id, at=at)
            stamp = at.isoformat()
            order_no = order_number(terminal_id, at, record.stan)
            db.execute(
                "INSERT INTO qr_orders (txn_id, order_no, mode, channel, status, code_masked, paid_order_no,"
                " created_at, updated_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)",
                (txn_id, order_no, mode, channel, status, code_masked, paid_order_no, stamp, stamp))
            self._qr_event(db, txn_id, status, f"{mode} {kind} {amount_minor} {currency} order {order_no}", at)
            order = self._order(db, txn_id)
        assert order is not None
        return record, order

    def qr_note(self, txn_id: str, status: str, *, detail: str, at: datetime, **fields: Any) -> QrOrder:
        """Where the order stands now (and what the wallet said), with the step in its history."""
        with self._tx() as db:
            order = self._update(db, txn_id, status, fields, at)
            self._qr_event(db, txn_id, status, detail, at)
        return order

    def qr_decide(self, txn_id: str, *, state: str, status: str, detail: str, at: datetime,
                  response_code: str = "", **fields: Any) -> TxnRecord:
        """The wallet's answer decides the row: APPROVED (paid), DECLINED (never paid) or REVERSED
        (paid, then the money went back). Only a SENT row can be decided; the order's status and
        its history change in the same transaction."""
        if state not in ("APPROVED", "DECLINED", "REVERSED"):
            raise ValueError(f"{state!r} is not an outcome of a QR payment")
        with self._tx() as db:
            rows = db.execute(
                "UPDATE transactions SET state = ?, response_code = ?, auth_code = ?, updated_at = ?"
                " WHERE txn_id = ? AND state = 'SENT' AND entry_mode = ?"
                " RETURNING txn_id, kind, state, stan, batch, amount_minor, currency, entry_mode, pan_last4,"
                " response_code, auth_code, rrn, created_at, original_txn_id",
                (state, response_code or None, None, at.isoformat(), txn_id, QR_ENTRY_MODE)).fetchall()
            if len(rows) != 1:
                raise JournalError(f"QR transaction {txn_id} is not awaiting the wallet")
            self._update(db, txn_id, status, fields, at)
            self._qr_event(db, txn_id, status, detail, at)
        return _record(rows[0])

    def qr_order(self, txn_id: str) -> QrOrder | None:
        return self._order(self._db, txn_id)

    def qr_order_by_number(self, order_no: str) -> QrOrder | None:
        row = self._db.execute(f"SELECT {_ORDER_COLUMNS} FROM qr_orders WHERE order_no = ?", (order_no,)).fetchone()
        return None if row is None else QrOrder(**dict(zip(_ORDER_KEYS, row, strict=True)))

    def qr_unresolved(self) -> list[QrOrder]:
        """QR orders whose row the wallet has not decided yet (after a crash: every one that was on
        its way), oldest first."""
        rows = self._db.execute(
            f"SELECT {', '.join('q.' + k for k in _ORDER_KEYS)} FROM qr_orders q JOIN transactions t USING (txn_id)"
            " WHERE t.state = 'SENT' ORDER BY t.rowid").fetchall()
        return [QrOrder(**dict(zip(_ORDER_KEYS, row, strict=True))) for row in rows]

    def qr_history(self, txn_id: str) -> list[dict[str, str]]:
        cur = self._db.execute("SELECT status, detail, at FROM qr_events WHERE txn_id = ? ORDER BY id", (txn_id,))
        return [dict(zip(("status", "detail", "at"), row, strict=True)) for row in cur]

    def qr_summary(self, batch: int) -> dict[str, dict[str, Any]]:
        """Per channel, for the settlement slip and the reports: payments tried, paid (count and
        amount), refunded, success rate and the average wait of the paid ones."""
        summary: dict[str, dict[str, Any]] = {}
        rows = self._db.execute(
            "SELECT q.channel, t.kind, t.state, t.amount_minor, q.wait_s FROM qr_orders q JOIN transactions t"
            " USING (txn_id) WHERE t.batch = ?", (batch,)).fetchall()
        for channel, kind, state, amount, wait in rows:
            row = summary.setdefault(channel or "merchant", {  # "": a merchant order nobody paid
                "tried": 0, "paid": 0, "paid_minor": 0, "credits": 0, "credit_minor": 0, "pending": 0,
                "wait_total_s": 0.0})
            if kind == "sale":
                row["tried"] += 1
                row["pending"] += state == "SENT"
                if state == "APPROVED":
                    row["paid"] += 1
                    row["paid_minor"] += amount
                    row["wait_total_s"] += wait
            elif state == "APPROVED":
                row["credits"] += 1
                row["credit_minor"] += amount
        for row in summary.values():
            row["success_rate"] = round(row["paid"] / row["tried"], 3) if row["tried"] else 0.0
            wait_total = row.pop("wait_total_s")
            row["average_wait_s"] = round(wait_total / row["paid"], 1) if row["paid"] else 0.0
        return summary

    def qr_rows(self) -> list[tuple[TxnRecord, QrOrder]]:
        """Every QR row of the live journal with its order, oldest first."""
        out = []
        for (txn_id,) in self._db.execute(
                "SELECT txn_id FROM transactions WHERE entry_mode = 'qr' ORDER BY rowid").fetchall():
            record, order = self.get(txn_id), self.qr_order(txn_id)
            if record is not None and order is not None:
                out.append((record, order))
        return out

    def qr_reconciled_through(self) -> int:
        """The last statement day (YYYYMMDD) reconciled, 0 when none."""
        row = self._db.execute("SELECT value FROM counters WHERE name = 'qr_reconciled'").fetchone()
        return 0 if row is None else int(row[0])

    def set_qr_reconciled_through(self, day: int, *, at: datetime, quiet: bool = False) -> None:
        """`quiet`: a day without QR payments, passed over without an incident."""
        day = max(day, self.qr_reconciled_through())  # never back: an older day reconciled again is no news
        with self._tx() as db:
            db.execute("INSERT OR REPLACE INTO counters VALUES ('qr_reconciled', ?)", (day,))
            if not quiet:
                self._incident(db, "statement_reconciled", None, f"statement {day} reconciled", at)

    def qr_batch(self, batch: int) -> list[tuple[TxnRecord, QrOrder]]:
        """The batch's QR rows with their orders, in the order they were made."""
        out = []
        for record in self.batch_records(batch, channel="qr"):
            order = self.qr_order(record.txn_id)
            if order is not None:
                out.append((record, order))
        return out

    def qr_export(self, batch: int) -> list[dict[str, Any]]:
        """The batch's QR rows as plain data for the archive: row, order and history."""
        from drivers.record import as_dict

        return [{**as_dict(order), "state": record.state, "kind": record.kind, "stan": record.stan,
                 "amount_minor": record.amount_minor, "currency": record.currency,
                 "original_txn_id": record.original_txn_id, "history": self.qr_history(record.txn_id)}
                for record, order in self.qr_batch(batch)]

    # -- inside a transaction ----------------------------------------------------------------
    @staticmethod
    def _order(db: sqlite3.Connection, txn_id: str) -> QrOrder | None:
        row = db.execute(f"SELECT {_ORDER_COLUMNS} FROM qr_orders WHERE txn_id = ?", (txn_id,)).fetchone()
        return None if row is None else QrOrder(**dict(zip(_ORDER_KEYS, row, strict=True)))

    def _update(self, db: sqlite3.Connection, txn_id: str, status: str, fields: dict[str, Any],
                at: datetime) -> QrOrder:
        if status not in STATUSES:
            raise ValueError(f"{status!r} is not a QR order status")
        unknown = set(fields) - set(_FIELDS)
        if unknown:
            raise ValueError(f"not fields of a QR order: {sorted(unknown)}")
        kept = {k: v for k, v in fields.items() if v not in (None, "")}
        sets = "".join(f", {k} = ?" for k in kept)
        cur = db.execute(f"UPDATE qr_orders SET status = ?, updated_at = ?{sets} WHERE txn_id = ?",
                         (status, at.isoformat(), *kept.values(), txn_id))
        if cur.rowcount != 1:
            raise JournalError(f"no QR order for {txn_id}")
        order = self._order(db, txn_id)
        assert order is not None
        return order

    @staticmethod
    def _qr_event(db: sqlite3.Connection, txn_id: str, status: str, detail: str, at: datetime) -> None:
        db.execute("INSERT INTO qr_events (txn_id, status, detail, at) VALUES (?, ?, ?, ?)",
                   (txn_id, status, detail, at.isoformat()))
