"""Who may do what: roles, operators with their own PINs, deny-all by default (PCI DSS 7.2, 8.2).

A privileged operation (void, refund, settlement, reprint, abandoning receipts, retrying
escalated reversals) needs a supervisor's *own* id and PIN and a reason; every decision, granted
or denied, is one entry in the hash-chained audit trail (terminal/audit.py). PINs are kept only as
PBKDF2-SHA256 hashes; a wrong PIN and an unknown operator get the same answer.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from drivers.record import Record
from terminal.clock import Clock
from terminal.errors import TerminalError
from terminal.security.audit import AuditTrail

__all__ = ["POLICY", "AccessControl", "AccessDenied", "Approval", "Operator", "hash_pin"]

# operation -> roles allowed. Anything not listed is denied to everyone.
POLICY: dict[str, frozenset[str]] = {
    "sale": frozenset({"cashier", "supervisor"}),
    "void": frozenset({"supervisor"}),
    "refund": frozenset({"supervisor"}),
    "settle": frozenset({"supervisor"}),
    "reprint": frozenset({"supervisor"}),
    "abandon_receipts": frozenset({"supervisor"}),
    "retry_reversals": frozenset({"supervisor", "technician"}),
}


class AccessDenied(TerminalError, PermissionError):
    """The operator may not do this (wrong PIN, wrong role, unknown operation)."""


class Operator(Record):
    id: str
    role: str
    pin_hash: str


class Approval(Record):
    """Proof that `approver` allowed `operation` for `reason`; it is audited already."""

    operation: str
    approver: str
    reason: str


def hash_pin(pin: str, *, salt: bytes, iterations: int = 100_000) -> str:
    import hashlib  # lazy: not needed to start (hashlib loads OpenSSL)

    digest = hashlib.pbkdf2_hmac("sha256", pin.encode(), salt, iterations).hex()
    return f"pbkdf2_sha256${iterations}${salt.hex()}${digest}"


def _pin_ok(pin: str, stored: str) -> bool:
    try:
        scheme, iterations, salt, _ = stored.split("$")
    except ValueError:
        return False
    if scheme != "pbkdf2_sha256" or not iterations.isdigit():
        return False
    import hmac  # lazy, as hashlib above

    return hmac.compare_digest(hash_pin(pin, salt=bytes.fromhex(salt), iterations=int(iterations)), stored)


class AccessControl:
    def __init__(self, terminal: Mapping[str, Any], audit: AuditTrail, clock: Clock) -> None:
        self.audit, self.clock = audit, clock
        self.operators = {
            str(o["id"]): Operator(id=str(o["id"]), role=str(o["role"]), pin_hash=str(o["pin_hash"]))
            for o in terminal["operators"]
        }

    def approve(self, operation: str, *, operator_id: str, pin: str, reason: str, actor: str = "",
                txn_id: str | None = None) -> Approval:
        """Check the operator's own PIN and role; audit the decision either way."""
        operator = self.operators.get(operator_id)
        granted = (
            operator is not None and _pin_ok(pin, operator.pin_hash)
            and operator.role in POLICY.get(operation, frozenset()) and bool(reason.strip())
        )
        why = "" if granted else (
            "a reason is required" if operator is not None and not reason.strip() else "not allowed")
        self.audit.record(operation=operation, actor=actor or operator_id, approver=operator_id, txn_id=txn_id,
                          reason=reason, result="granted" if granted else f"denied: {why}", at=self.clock.wall())
        if not granted:
            raise AccessDenied(f"{operation} denied for {operator_id!r}: {why}")
        return Approval(operation=operation, approver=operator_id, reason=reason)
