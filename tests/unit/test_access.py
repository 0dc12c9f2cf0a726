"""Deny-all roles, own PINs, and a tamper-evident audit trail (RELIABILITY.md §6, rows 15 and 16)."""

from __future__ import annotations

from pathlib import Path

import pytest

from firmware_profiles import load_profile
from terminal.clock import FakeClock
from terminal.journal import Journal
from terminal.security.access import POLICY, AccessControl, AccessDenied
from terminal.security.audit import AuditTrail

OPERATORS = {"cashier-1": ("cashier", "1111"), "supervisor-1": ("supervisor", "8888"),
             "technician-1": ("technician", "9999")}
OPERATIONS = [*POLICY, "purge_saf", "switch_to_live", ""]


@pytest.fixture
def access(tmp_path: Path) -> AccessControl:
    journal = Journal(tmp_path / "j.sqlite3")
    return AccessControl(load_profile("terminal", "emulated-counter"), AuditTrail(journal, b"k" * 32), FakeClock())


def test_every_role_and_operation_follows_the_policy_table(access: AccessControl) -> None:
    for operator, (role, pin) in OPERATORS.items():
        for operation in OPERATIONS:
            allowed = role in POLICY.get(operation, frozenset())
            if allowed:
                assert access.approve(operation, operator_id=operator, pin=pin, reason="r").approver == operator
            else:
                with pytest.raises(AccessDenied):
                    access.approve(operation, operator_id=operator, pin=pin, reason="r")
    entries = access.audit.entries()
    assert len(entries) == len(OPERATORS) * len(OPERATIONS)  # denials are audited too
    assert access.audit.verify() is None


def test_wrong_pin_unknown_operator_and_missing_reason_are_denied(access: AccessControl) -> None:
    attempts = [("supervisor-1", "1234", "r"), ("nobody", "8888", "r"), ("supervisor-1", "8888", " ")]
    for operator_id, pin, reason in attempts:
        with pytest.raises(AccessDenied):
            access.approve("void", operator_id=operator_id, pin=pin, reason=reason)
    assert all(str(e["result"]).startswith("denied") for e in access.audit.entries())


def test_the_audit_chain_detects_a_changed_or_deleted_row(tmp_path: Path) -> None:
    journal = Journal(tmp_path / "j.sqlite3")
    audit = AuditTrail(journal, b"k" * 32)
    clock = FakeClock()
    for i in range(4):
        audit.record(operation="void", actor="a", approver="s", txn_id=f"t{i}", reason="r", result="granted",
                     at=clock.wall())
    assert audit.verify() is None
    journal._db.execute("UPDATE audit SET reason = 'edited' WHERE seq = 2")
    assert audit.verify() == 2
    journal._db.execute("UPDATE audit SET reason = 'r' WHERE seq = 2")
    journal._db.execute("DELETE FROM audit WHERE seq = 3")
    assert audit.verify() == 4
    assert AuditTrail(journal, b"x" * 32).verify() == 1  # another key cannot vouch for the chain
