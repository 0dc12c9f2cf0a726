"""对账: the QR channel reconciled against the wallet's statement (对账单).

Each payment the terminal holds as paid, and each credit it holds as done, is looked for in the
statement by order number: matched, only at the terminal, only at the wallet, or amount differs.
Every finding but a match goes on the exception report with what to do about it.
"""

from __future__ import annotations

from collections.abc import Iterable

from drivers.record import Record

__all__ = ["ACTIONS", "Finding", "Reconciliation", "StatementEntry", "TerminalEntry", "reconcile"]

# What a person does about each kind of finding (printed on the exception report).
ACTIONS = {
    "only_terminal": "the wallet has no such payment: query the order; if still absent, contact the acquirer",
    "only_wallet": "the wallet booked a payment the terminal does not hold as paid: check the order, refund it"
                   " if the customer paid twice",
    "amount_differs": "amounts disagree: the statement is final; raise it with the acquirer",
}


class TerminalEntry(Record):
    """What the terminal holds of one order for the day: paid, and returned (refunds of it, or
    the reverse that refunded it)."""

    order_no: str  # the payment's order number
    paid_fen: int = 0
    refunded_fen: int = 0
    txn_id: str = ""


class StatementEntry(Record):
    """The same, as the statement's rows add up for one order."""

    order_no: str
    paid_fen: int = 0
    refunded_fen: int = 0


class Finding(Record):
    kind: str  # matched, only_terminal, only_wallet, amount_differs
    order_no: str
    terminal: tuple[int, int] | None  # (paid, refunded) fen
    wallet: tuple[int, int] | None
    txn_id: str = ""

    @property
    def action(self) -> str:
        return ACTIONS.get(self.kind, "")


class Reconciliation(Record):
    bill_date: str
    findings: tuple[Finding, ...]

    @property
    def matched(self) -> int:
        return sum(f.kind == "matched" for f in self.findings)

    @property
    def problems(self) -> tuple[Finding, ...]:
        return tuple(f for f in self.findings if f.kind != "matched")

    @property
    def verdict(self) -> str:
        problems = len(self.problems)
        return f"{self.matched} 相符 MATCHED" + (f", {problems} 差错 EXCEPTIONS" if problems else "")


def _totals(entries: Iterable[TerminalEntry | StatementEntry]) -> dict[str, tuple[int, int, str]]:
    out: dict[str, tuple[int, int, str]] = {}
    for e in entries:
        paid, refunded, txn_id = out.get(e.order_no, (0, 0, ""))
        out[e.order_no] = (paid + e.paid_fen, refunded + e.refunded_fen, txn_id or getattr(e, "txn_id", ""))
    return out


def reconcile(bill_date: str, terminal: Iterable[TerminalEntry], wallet: Iterable[StatementEntry]) -> Reconciliation:
    """Per order number: what the terminal holds against what the statement adds up to."""
    ours, theirs = _totals(terminal), _totals(wallet)
    findings = []
    for order_no in sorted(ours.keys() | theirs.keys()):
        mine, other = ours.get(order_no), theirs.get(order_no)
        if mine is not None and other is not None:
            kind = "matched" if mine[:2] == other[:2] else "amount_differs"
        else:
            kind = "only_terminal" if mine is not None else "only_wallet"
        findings.append(Finding(kind=kind, order_no=order_no, terminal=mine[:2] if mine else None,
                                wallet=other[:2] if other else None, txn_id=mine[2] if mine else ""))
    return Reconciliation(bill_date=bill_date, findings=tuple(findings))
