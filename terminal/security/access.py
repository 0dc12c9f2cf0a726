"""Who may do what: roles, operators with their own PINs, deny-all by default (PCI DSS 7.2, 8.2, 8.3.4).

A privileged operation (void, refund, settlement, reprint, abandoning receipts, acknowledging
a broken audit trail, accepting a journal that does not match its witness) needs a
supervisor's *own* id and PIN and a reason. What they get back is an `Approval`, and only this
class issues them: each has a random 128-bit id that AccessControl keeps in its set of outstanding
approvals, together with what it was issued for. The checkout's privileged steps call `consume()`,
which takes the id out of that set (single use) and checks the operation, the transaction and the
expiry against what was *issued*, not against the fields of the object presented. An Approval
built by hand, a copy of a used one, or one with a field changed is refused. The set lives in
RAM: a restart voids every outstanding approval, which is what a short-lived approval wants.

PINs: one answer ("operator or PIN not accepted") and one PBKDF2 run for an unknown operator, a
wrong PIN and a locked-out operator alike; after LOCKOUT_AFTER wrong PINs in a row an id is locked
for a doubling time (wall clock, persisted in var/operators.json, so a restart does not reset it).
A disabled operator (`till operators disable`) is refused, and told so only after the right PIN.
Every decision (issued, used, refused, denied) is one entry in the audit trail (audit.py).
"""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import Final

from drivers.record import Record
from terminal.clock import Clock
from terminal.errors import TerminalError
from terminal.security.audit import AuditTrail
from terminal.security.operators import DUMMY_HASH, Operator, OperatorStore, hash_pin, pin_ok

__all__ = ["APPROVAL_TTL_S", "FINANCIAL", "LOCKOUT_AFTER", "POLICY", "TXN_BOUND", "AccessControl",
           "AccessDenied", "Approval", "Operator", "hash_pin"]

# operation -> roles allowed. Anything not listed is denied to everyone. "sale" is the cashier's
# sign-in (`Till.sign_in`, when the profile sets `cashier_sign_in`). Owed reversals are retried by
# the terminal itself and are never dropped, so there is no person's "retry reversals" operation.
POLICY: Final[dict[str, frozenset[str]]] = {
    "sale": frozenset({"cashier", "supervisor"}),
    "void": frozenset({"supervisor"}),
    "refund": frozenset({"supervisor"}),
    "settle": frozenset({"supervisor"}),
    "reprint": frozenset({"supervisor"}),
    "abandon_receipts": frozenset({"supervisor"}),
    "audit_ack": frozenset({"supervisor"}),
    "accept_journal": frozenset({"supervisor"}),  # a journal that does not match its witness (acceptance.py)
    "manage_operators": frozenset({"supervisor"}),  # add, disable, enable, reset a PIN (the web terminal, the API)
}
TXN_BOUND: Final = frozenset({"void", "refund"})  # issued for one original transaction, used only for it
FINANCIAL: Final = frozenset({"void", "refund", "settle"})  # refused while the audit trail is broken
APPROVAL_TTL_S: Final = 120.0  # an approval not used within this (Clock.now) is void
LOCKOUT_AFTER: Final = 5  # wrong PINs in a row before an id is locked
LOCKOUT_BASE_S: Final = 60.0  # the first lock; each further wrong PIN doubles it...
LOCKOUT_MAX_S: Final = 1800.0  # ...up to 30 minutes (PCI DSS 8.3.4)

NOT_ACCEPTED: Final = "操作员或密码不正确 / operator or PIN not accepted"


class AccessDenied(TerminalError, PermissionError):
    """The operator may not do this (wrong PIN, wrong role, unknown operation, a bad approval)."""


class Approval(Record):
    """A supervisor's permission for one operation, issued by AccessControl.approve, spent by
    AccessControl.consume. Its fields are for reading; only the id in the issuer's set counts."""

    id: str
    operation: str
    approver: str
    reason: str
    txn_id: str | None
    expires_at: float  # Clock.now() of the issuing process


class AccessControl:
    def __init__(self, store: OperatorStore, audit: AuditTrail, clock: Clock) -> None:
        self.store, self.audit, self.clock = store, audit, clock
        self._outstanding: dict[str, Approval] = {}

    # -- issuing -----------------------------------------------------------------------------
    def approve(self, operation: str, *, operator_id: str, pin: str, reason: str, actor: str = "",
                txn_id: str | None = None) -> Approval:
        """Check the operator's own PIN and role; audit the decision either way."""
        def deny(why: str, message: str) -> AccessDenied:
            self._audit(operation, actor or operator_id, operator_id, txn_id, reason, f"denied: {why}")
            return AccessDenied(f"{operation}: {message}")

        if not reason.strip():  # before the PIN: the answer must not depend on who asked
            raise deny("a reason is required", "请填写原因 / a reason is required")
        if operation in TXN_BOUND and not txn_id:
            raise deny("no transaction named", "须指定原交易 / the approval must name the original transaction")
        operator = self._authenticate(operator_id, pin, deny)
        if operator.role not in POLICY.get(operation, frozenset()):
            raise deny("role not allowed", "无此权限 / not allowed for this role")
        import secrets  # lazy: only an approval needs it

        approval = Approval(id=secrets.token_hex(16), operation=operation, approver=operator.id, reason=reason,
                            txn_id=txn_id, expires_at=self.clock.now() + APPROVAL_TTL_S)
        self._outstanding[approval.id] = approval
        self._audit(operation, actor or operator_id, operator_id, txn_id, reason, f"granted #{approval.id[:12]}")
        return approval

    def sign_in(self, operator_id: str, pin: str) -> Operator:
        """A cashier (or supervisor) signs in to sell; audited either way."""
        def deny(why: str, message: str) -> AccessDenied:
            self._audit("sign_in", operator_id, operator_id, None, "sign in", f"denied: {why}")
            return AccessDenied(f"sign in: {message}")

        operator = self._authenticate(operator_id, pin, deny)
        if operator.role not in POLICY["sale"]:
            raise deny("role not allowed", "无此权限 / not allowed for this role")
        self._audit("sign_in", operator_id, operator_id, None, "sign in", "granted")
        return operator

    def _authenticate(self, operator_id: str, pin: str, deny: Callable[[str, str], AccessDenied]) -> Operator:
        """Exactly one PBKDF2 run and one answer whether the id is unknown, locked or the PIN wrong."""
        now = self.clock.wall().timestamp()
        operator = self.store.get(operator_id)
        count, locked_until = self.store.failures(operator_id)
        locked = locked_until > now
        matches = pin_ok(pin, operator.pin_hash if operator is not None and not locked else DUMMY_HASH)
        if locked:
            wait = math.ceil(locked_until - now)
            raise deny("locked out", f"{NOT_ACCEPTED}; 错误次数过多，请{wait}秒后再试 / "
                                     f"too many wrong PINs, try again in {wait} s")
        if operator is None or not matches:
            count += 1
            lock = 0.0
            if count >= LOCKOUT_AFTER:
                lock = now + min(LOCKOUT_MAX_S, LOCKOUT_BASE_S * 2 ** (count - LOCKOUT_AFTER))
            self.store.record_failure(operator_id, count=count, locked_until=lock, at=now)
            raise deny("unknown operator" if operator is None else "wrong PIN", NOT_ACCEPTED)
        if operator.disabled:  # told only after the right PIN, as a role's refusal is
            raise deny("operator disabled", f"操作员已停用 / operator {operator.id} is disabled "
                                            "(till operators enable)")
        if count:
            self.store.clear_failures(operator_id)
        return operator

    # -- using -------------------------------------------------------------------------------
    def consume(self, approval: Approval, operation: str, *, txn_id: str | None = None) -> Approval:
        """Spend an approval on `operation` (for `txn_id`); returns what was issued. Refused, and
        audited, when it was not issued here, is used already, altered, for another operation or
        transaction, or expired. Presenting it spends it, whatever follows."""
        issued = self._outstanding.pop(getattr(approval, "id", ""), None)
        why = ""
        if issued is None:
            why = "not issued here or used already"
        elif issued != approval:
            why = "altered after it was issued"
        elif issued.operation != operation:
            why = f"issued for {issued.operation!r}"
        elif (issued.txn_id is not None or operation in TXN_BOUND) and issued.txn_id != txn_id:
            why = "issued for another transaction"
        elif self.clock.now() > issued.expires_at:
            why = f"expired (valid {APPROVAL_TTL_S:.0f} s)"
        elif operation in FINANCIAL and (broken := self.audit.check()).reason:
            why = f"audit trail broken: {broken.reason}"
        approver = issued.approver if issued is not None else str(getattr(approval, "approver", ""))
        reason = issued.reason if issued is not None else str(getattr(approval, "reason", ""))
        ref = f"#{str(getattr(approval, 'id', ''))[:12]}"
        if why:
            self._audit(operation, "checkout", approver, txn_id, reason, f"refused {ref}: {why}")
            if why.startswith("audit"):
                raise AccessDenied(f"{operation}: 审计记录异常，须主管确认 / {why}; "
                                   "a supervisor acknowledges it with Till.acknowledge_audit")
            raise AccessDenied(f"{operation}: 授权无效 / the approval is not valid: {why}")
        assert issued is not None
        self._audit(operation, "checkout", approver, txn_id, reason, f"used {ref}")
        return issued

    def _audit(self, operation: str, actor: str, approver: str | None, txn_id: str | None, reason: str,
               result: str) -> None:
        self.audit.record(operation=operation, actor=actor, approver=approver, txn_id=txn_id, reason=reason,
                          result=result, at=self.clock.wall())
