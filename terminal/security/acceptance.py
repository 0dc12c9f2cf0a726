"""A supervisor takes the till's own records as they are: a journal that does not match its
witness (`till journal accept`), a broken audit trail (`till audit ack`, Till.acknowledge_audit).

A journal that went backwards or was replaced is refused at boot (`JournalMismatch`, witness.py):
going on with it is a privileged decision like a void, so it goes through the access control
(POLICY `accept_journal`: a supervisor's own id and PIN, lockout, audited granted/used/denied).

The order resolves a chicken-and-egg: the access control reads the operators from var/ (not the
journal), but the audit trail lives in the journal. So the journal is opened first, locked and
checked for damage, and *then* asked to be trusted: `Journal(..., accept=JournalAcceptance(...))`
calls the acceptance with what mismatched while it is open but not yet trusted. The trail is
held to its anchor (a replaced journal shows as a broken trail, which stays for `till audit ack`),
the supervisor's PIN is checked against var/operators.json, the approval is issued and spent at
once, and the journal records the `journal_accepted` incident and the witness log line. A wrong
PIN leaves the journal refused, with a `denied` entry and a wrong-PIN count.
"""

from __future__ import annotations

from pathlib import Path

from terminal.clock import Clock
from terminal.errors import InputError
from terminal.journal.core import JournalCore
from terminal.journal.witness import Acceptance
from terminal.security.access import AccessControl
from terminal.security.audit import AuditTrail
from terminal.security.operators import OperatorStore
from terminal.security.pan import load_or_create_key

__all__ = ["JournalAcceptance", "access_for", "acknowledge_audit"]


def access_for(journal: JournalCore, var_dir: Path, clock: Clock) -> AccessControl:
    """The access control of `var_dir` over an open journal, outside a running till (the CLI):
    operators from var/operators.json (never created here), the trail held to var/audit.head."""
    store = OperatorStore(var_dir / "operators.json", create=False)
    if not store.path.exists():
        raise InputError(f"no operators at {store.path}: a supervisor is needed (`till operator add`)")
    audit = AuditTrail(journal, load_or_create_key(var_dir / "keys" / "audit.key"), anchor=var_dir / "audit.head")
    audit.check()  # a broken trail must not move its anchor (audit.py): remember the break first
    return AccessControl(store, audit, clock)


def acknowledge_audit(access: AccessControl, *, supervisor: str, pin: str, reason: str) -> str:
    """A supervisor saw that the audit trail is broken (and why); money operations go on.
    Returns what was broken. The break stays in the trail as an entry of its own."""
    broken = access.audit.check().reason
    if not broken:
        raise InputError("审计记录完好 / the audit trail holds: nothing to acknowledge")
    approval = access.approve("audit_ack", operator_id=supervisor, pin=pin, reason=reason)
    access.consume(approval, "audit_ack")
    access.audit.acknowledge(approver=supervisor, reason=reason, at=access.clock.wall())
    return broken


class JournalAcceptance:
    """The journal's `Acceptor`: a supervisor's decision, checked by the access control when asked."""

    def __init__(self, *, var_dir: Path, clock: Clock, supervisor: str, pin: str, reason: str) -> None:
        self.var_dir, self.clock = var_dir, clock
        self._supervisor, self._pin, self.reason = supervisor, pin, reason
        self.problem: str | None = None  # what was accepted (None: the journal matched, nothing was asked)
        self.audit_broken = ""  # the trail's break, if any: `till audit ack` is the next step

    def __call__(self, journal: JournalCore, problem: str) -> Acceptance:
        access = access_for(journal, self.var_dir, self.clock)
        self.audit_broken = access.audit.broken
        approval = access.approve("accept_journal", operator_id=self._supervisor, pin=self._pin, reason=self.reason)
        issued = access.consume(approval, "accept_journal")
        self.problem = problem
        return Acceptance(approver=issued.approver, reason=issued.reason, at=self.clock.wall().isoformat())
