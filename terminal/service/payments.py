"""The payment API's words: what a register may send, and how a payment reads back.

A payment's `status` is read from the journal as it is now (a QR payment confirmed later, a
void, a reversal delivered), or from the copy its order kept once the batch was settled:

    in_progress           the terminal is working on it (card, PIN, host, wallet)
    approved              the customer paid (`credited_minor` says what was refunded since)
    declined | cancelled  nothing was charged
    reversed              an answer never came, or the card refused it, or the terminal undid the
                          approval (no signature): reversed, nothing charged
                          (`reversal`: "pending" until the host acknowledged it)
    pending_confirmation  a QR payment the wallet has not decided yet (待确认): ask again later
    voided | refunded     paid, then credited in full

Only masked card data ever leaves: the last 4 digits and the entry mode.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from drivers.record import Record
from terminal.errors import InputError
from terminal.journal.core import JournalCore, TxnRecord
from terminal.journal.orders import EcrOrder, _order, check_order_id
from terminal.money import format_amount, parse_amount

__all__ = ["CURRENCIES", "JournalReader", "PaymentRequest", "parse_payment", "payment_view"]

# ISO 4217 alpha -> numeric, for the currencies a terminal here is set up for.
CURRENCIES = {"CNY": "156", "HKD": "344", "MOP": "446", "USD": "840", "EUR": "978", "GBP": "826", "JPY": "392",
              "SGD": "702"}


class PaymentRequest(Record):
    order_id: str
    amount_minor: int
    currency: str  # numeric, as the journal keeps it
    tender: str


def parse_payment(body: Mapping[str, Any], terminal: Mapping[str, Any]) -> PaymentRequest:
    """`{order_id, amount | amount_minor, currency?, tender?}`, checked; InputError naming the field."""
    order_id = check_order_id(body.get("order_id"))
    limit = int(terminal["limits"]["max_amount_minor"])
    if ("amount" in body) == ("amount_minor" in body):
        raise InputError("give exactly one of amount (\"12.34\") and amount_minor (1234)")
    if "amount" in body:
        if not isinstance(body["amount"], str):
            raise InputError("amount is a string like \"12.34\" (amount_minor takes an integer)")
        amount_minor = parse_amount(body["amount"], max_minor=limit)
    else:
        amount_minor = body["amount_minor"]
        if isinstance(amount_minor, bool) or not isinstance(amount_minor, int) or not 0 < amount_minor <= limit:
            raise InputError(f"amount_minor is an integer from 1 to {limit}")
    ours = str(terminal["currency"])
    currency = body.get("currency", ours)
    if not isinstance(currency, str) or CURRENCIES.get(currency.upper(), currency) != ours:
        alpha = next((a for a, n in CURRENCIES.items() if n == ours), ours)
        raise InputError(f"currency {currency!r}: this terminal takes {alpha} ({ours}) only")
    tender = body.get("tender", "card")
    if tender not in ("card", "qr", "qr-merchant"):
        raise InputError("tender is one of card, qr (the customer's payment code), qr-merchant (show our code)")
    return PaymentRequest(order_id=order_id, amount_minor=amount_minor, currency=ours, tender=tender)


class JournalReader:
    """A read-only view of the journal for the API's threads: its own connection, which sees
    committed data only and never waits for the loop's writes (WAL)."""

    def __init__(self, path: Path) -> None:
        self._db = sqlite3.connect(f"file:{path}?mode=ro", uri=True, check_same_thread=False)
        self._db.execute("PRAGMA query_only = ON")

    def order(self, order_id: str) -> EcrOrder | None:
        return _order(self._db, order_id)

    def txn(self, txn_id: str) -> TxnRecord | None:
        return JournalCore._get(self._db, txn_id)

    def credits(self, txn_id: str) -> list[tuple[str, int]]:
        return [(str(k), int(a)) for k, a in self._db.execute(
            "SELECT kind, amount_minor FROM transactions WHERE original_txn_id = ? AND state = 'APPROVED'", (txn_id,))]

    def reversal(self, txn_id: str) -> str | None:
        row = self._db.execute("SELECT state FROM reversals WHERE txn_id = ?", (txn_id,)).fetchone()
        return None if row is None else str(row[0])

    def qr_status(self, txn_id: str) -> str | None:
        row = self._db.execute("SELECT status FROM qr_orders WHERE txn_id = ?", (txn_id,)).fetchone()
        return None if row is None else str(row[0])

    def qr_code_url(self, txn_id: str) -> str:
        """The code a merchant-presented QR payment shows ("" before the wallet made one)."""
        row = self._db.execute("SELECT code_url FROM qr_orders WHERE txn_id = ?", (txn_id,)).fetchone()
        return "" if row is None else str(row[0])

    def recent_orders(self, limit: int) -> list[EcrOrder]:
        """The latest orders, newest first."""
        ids = [str(r[0]) for r in self._db.execute(
            "SELECT order_id FROM ecr_orders ORDER BY created_at DESC, rowid DESC LIMIT ?", (limit,))]
        return [order for i in ids if (order := _order(self._db, i)) is not None]

    def close(self) -> None:
        self._db.close()


def payment_view(order: EcrOrder, reader: JournalReader | None = None) -> dict[str, Any]:
    """How a payment reads back to the register (never more of the card than its last 4 digits)."""
    record = reader.txn(order.txn_id) if reader is not None and order.txn_id else None
    state = record.state if record is not None else order.txn_state
    credits = reader.credits(order.txn_id) if reader is not None and record is not None else (
        [("void", order.credited_minor)] if order.voided else [])  # settled: the kept copy says which
    credited = sum(a for _, a in credits) if record is not None else order.credited_minor
    view: dict[str, Any] = {
        "order_id": order.order_id,
        "status": _status(order, record, state, credits, credited, reader),
        "outcome": order.outcome or None,
        "reason": order.reason or None,
        "amount": format_amount(order.amount_minor),
        "amount_minor": order.amount_minor,
        "currency": order.currency,
        "tender": order.tender,
        "txn_id": order.txn_id or None,
        "credited_minor": credited,
        "created_at": order.created_at,
        "updated_at": order.updated_at,
    }
    source: Any = record if record is not None else order
    if order.txn_id:
        stan = source.stan
        view.update({
            "trace": None if stan is None else f"{int(stan):06d}", "batch": source.batch,
            "auth_code": source.auth_code, "rrn": source.rrn, "response_code": source.response_code,
            "card": None if source.entry_mode == "qr" or not source.pan_last4 else {
                "masked_pan": f"**** **** **** {source.pan_last4}", "entry_mode": source.entry_mode},
        })
    if record is not None and reader is not None and (reversal := reader.reversal(record.txn_id)) is not None:
        view["reversal"] = "done" if reversal == "DONE" else "pending"
    return view


def _status(order: EcrOrder, record: TxnRecord | None, state: str, credits: list[tuple[str, int]], credited: int,
            reader: JournalReader | None) -> str:
    if order.status == "OPEN":
        return "in_progress"
    if not state:  # no host transaction was made: refused or cancelled before anything left
        return "cancelled" if order.outcome in ("CANCELLED", "") else "declined"
    if state in ("APPROVED", "OFFLINE"):
        if record is not None and reader is not None and reader.reversal(record.txn_id) is not None:
            return "reversed"  # the terminal undid the approval (no signature): never "approved" meanwhile
        if credited >= order.amount_minor:
            return "voided" if any(kind == "void" for kind, _ in credits) else "refunded"
        return "approved"
    if state == "DECLINED":
        return "declined"
    if state == "REVERSED":
        return "reversed"
    if state == "SENT" and (record is None or record.entry_mode == "qr"):
        if record is not None and reader is not None and reader.qr_status(record.txn_id) in ("PAID",):
            return "approved"
        return "pending_confirmation"
    return "reversed"  # TIMEOUT, or AUTHORIZED / SENT at a restart: the reversal is owed, nothing is charged
