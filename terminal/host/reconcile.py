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
    order_no: str  # the payment's order number, or a refund's own number
    amount_fen: int
    kind: str  # "pay" or "refund"
    txn_id: str = ""


class StatementEntry(Record):
    order_no: str
    amount_fen: int
    kind: str  # "pay" or "refund"


class Finding(Record):
    kind: str  # matched, only_terminal, only_wallet, amount_differs
    order_no: str
    terminal_fen: int | None
    wallet_fen: int | None
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


def reconcile(bill_date: str, terminal: Iterable[TerminalEntry], wallet: Iterable[StatementEntry]) -> Reconciliation:
    ours = {(e.kind, e.order_no): e for e in terminal}
    theirs = {(e.kind, e.order_no): e for e in wallet}
    findings = []
    for key in sorted(ours.keys() | theirs.keys()):
        mine, other = ours.get(key), theirs.get(key)
        if mine is not None and other is not None:
            kind = "matched" if mine.amount_fen == other.amount_fen else "amount_differs"
        else:
            kind = "only_terminal" if mine is not None else "only_wallet"
        findings.append(Finding(kind=kind, order_no=key[1], terminal_fen=mine.amount_fen if mine else None,
                                wallet_fen=other.amount_fen if other else None, txn_id=mine.txn_id if mine else ""))
    return Reconciliation(bill_date=bill_date, findings=tuple(findings))
