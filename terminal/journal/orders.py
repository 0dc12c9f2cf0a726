"""The cash register's orders (ECR `order_id`) in the journal: one payment per order, whatever
the register retries and whenever the power goes.

- An order is committed (OPEN) before its sale starts; the same `order_id` asked again is the
  same order — never a second charge. The same id with another amount, currency or tender is
  a conflict (`OrderConflict`), not a new payment.
- While an order is bound (`bind_order`), every transaction row the checkout inserts (a card
  sale, its PIN retry, an offline approval, a QR payment) is linked to it in the same commit
  that inserts the row: there is no moment at which money moved for a row the order does not
  name. The last linked row is the order's transaction (a PIN retry replaces a declined try).
- When the batch leaves the live journal at settlement, each order keeps a copy of its row
  (state, trace, codes, masked card, amount credited), so the register can still ask.
"""

from __future__ import annotations

import sqlite3
from datetime import datetime
from typing import Any

from drivers.record import Record
from terminal.errors import InputError
from terminal.journal.core import JournalCore

__all__ = ["ORDER_ID_MAX", "EcrOrder", "OrderConflict", "OrderJournal", "check_order_id"]

ORDER_ID_MAX = 64
_SNAPSHOT = ("txn_state", "stan", "batch", "auth_code", "rrn", "response_code", "pan_last4", "entry_mode")
_COLUMNS = ("order_id", "amount_minor", "currency", "tender", "status", "outcome", "reason", "txn_id",
            *_SNAPSHOT, "credited_minor", "voided", "created_at", "updated_at")


class OrderConflict(InputError):
    """An order id the register used before, for another payment."""


class EcrOrder(Record):
    order_id: str
    amount_minor: int
    currency: str
    tender: str
    status: str  # OPEN while the terminal works on it, DONE once its sale ended
    outcome: str  # the sale's outcome when it ended (APPROVED, DECLINED, CANCELLED, OUTCOME_UNKNOWN)
    reason: str
    txn_id: str  # its last host transaction ("" if none was made: no money moved)
    txn_state: str  # the copy of that row kept for when the batch has left the journal
    stan: int | None
    batch: int | None
    auth_code: str | None
    rrn: str | None
    response_code: str | None
    pan_last4: str
    entry_mode: str
    credited_minor: int
    voided: int  # 1 when what was credited is a void (撤销), not refunds
    created_at: str
    updated_at: str


def check_order_id(order_id: object) -> str:
    """1..64 printable ASCII characters without spaces: what every register can send and a log can show."""
    if (not isinstance(order_id, str) or not 0 < len(order_id) <= ORDER_ID_MAX
            or not all(33 <= ord(c) < 127 for c in order_id)):
        raise InputError(f"order_id is 1..{ORDER_ID_MAX} printable ASCII characters without spaces")
    return order_id


class OrderJournal(JournalCore):
    _bound_order: str | None = None

    def open_order(self, *, order_id: str, amount_minor: int, currency: str, tender: str,
                   at: datetime) -> tuple[EcrOrder, bool]:
        """The order, committed OPEN; (order, True) when new. Asked again with the same payment:
        (the stored order, False). With another payment under the same id: OrderConflict."""
        check_order_id(order_id)
        stamp = at.isoformat()
        with self._tx() as db:
            existing = _order(db, order_id)
            if existing is None:
                db.execute("INSERT INTO ecr_orders (order_id, amount_minor, currency, tender, status, created_at,"
                           " updated_at) VALUES (?, ?, ?, ?, 'OPEN', ?, ?)",
                           (order_id, amount_minor, currency, tender, stamp, stamp))
        if existing is not None:
            if (existing.amount_minor, existing.currency, existing.tender) != (amount_minor, currency, tender):
                raise OrderConflict(
                    f"订单号已用于另一笔交易 / order {order_id} is already a payment of {existing.amount_minor}"
                    f" {existing.currency} by {existing.tender}: use a new order_id for a new payment")
            return existing, False
        order = _order(self._db, order_id)
        assert order is not None
        return order, True

    def drop_order(self, order_id: str) -> None:
        """An order whose sale never started (refused at once): as if never asked."""
        with self._tx() as db:
            db.execute("DELETE FROM ecr_orders WHERE order_id = ? AND status = 'OPEN' AND txn_id = ''", (order_id,))

    def bind_order(self, order_id: str | None) -> None:
        """Link every transaction row inserted from now on to `order_id` (None: to nothing)."""
        self._bound_order = order_id

    def _row_inserted(self, db: sqlite3.Connection, txn_id: str) -> None:
        super()._row_inserted(db, txn_id)
        if self._bound_order is not None:
            db.execute("UPDATE ecr_orders SET txn_id = ?, updated_at = (SELECT created_at FROM transactions"
                       " WHERE txn_id = ?) WHERE order_id = ?", (txn_id, txn_id, self._bound_order))

    def finish_order(self, order_id: str, *, outcome: str, reason: str, at: datetime) -> EcrOrder:
        """The order's sale ended: DONE, with its outcome and a copy of its row."""
        with self._tx() as db:
            db.execute("UPDATE ecr_orders SET status = 'DONE', outcome = ?, reason = ?, updated_at = ?"
                       " WHERE order_id = ?", (outcome, reason[:500], at.isoformat(), order_id))
            _keep_rows(db, "ecr_orders.order_id = ?", (order_id,))
            order = _order(db, order_id)
        if order is None:
            raise InputError(f"no order {order_id}")
        return order

    def _batch_leaving(self, db: sqlite3.Connection, batch: int) -> None:
        super()._batch_leaving(db, batch)
        _keep_rows(db, "ecr_orders.txn_id IN (SELECT txn_id FROM transactions WHERE batch = ?)", (batch,))

    def order(self, order_id: str) -> EcrOrder | None:
        return _order(self._db, order_id)

    def open_orders(self) -> list[EcrOrder]:
        cur = self._db.execute(f"SELECT {', '.join(_COLUMNS)} FROM ecr_orders WHERE status = 'OPEN'"
                               " ORDER BY created_at")
        return [EcrOrder(**dict(zip(_COLUMNS, row, strict=True))) for row in cur]

    def order_of_txn(self, txn_id: str) -> EcrOrder | None:
        row = self._db.execute(f"SELECT {', '.join(_COLUMNS)} FROM ecr_orders WHERE txn_id = ?",
                               (txn_id,)).fetchone()
        return None if row is None else EcrOrder(**dict(zip(_COLUMNS, row, strict=True)))


def _order(db: sqlite3.Connection, order_id: str) -> EcrOrder | None:
    row = db.execute(f"SELECT {', '.join(_COLUMNS)} FROM ecr_orders WHERE order_id = ?", (order_id,)).fetchone()
    return None if row is None else EcrOrder(**dict(zip(_COLUMNS, row, strict=True)))


def _keep_rows(db: sqlite3.Connection, where: str, args: tuple[Any, ...]) -> None:
    """Copy each order's transaction row (and what was credited against it) onto the order."""
    db.execute(
        "UPDATE ecr_orders SET txn_state = t.state, stan = t.stan, batch = t.batch, auth_code = t.auth_code,"
        " rrn = t.rrn, response_code = t.response_code, pan_last4 = t.pan_last4, entry_mode = t.entry_mode,"
        " credited_minor = (SELECT COALESCE(SUM(c.amount_minor), 0) FROM transactions c"
        "   WHERE c.original_txn_id = t.txn_id AND c.state = 'APPROVED'),"
        " voided = EXISTS (SELECT 1 FROM transactions c"
        "   WHERE c.original_txn_id = t.txn_id AND c.state = 'APPROVED' AND c.kind = 'void')"
        f" FROM transactions t WHERE t.txn_id = ecr_orders.txn_id AND {where}", args)
