"""Deny-all roles, own PINs with lockout, approvals only the access control issues, and a
tamper-evident audit trail anchored outside the journal (RELIABILITY.md §6, rows 15 and 16)."""

from __future__ import annotations

import json
import os
import stat
from collections.abc import Iterator
from pathlib import Path

import pytest

from drivers.record import replace
from sim.operators import TEST_OPERATORS
from terminal.clock import FakeClock
from terminal.journal import Journal
from terminal.security import access as access_module
from terminal.security import operators as operators_module
from terminal.security.access import (
    APPROVAL_TTL_S,
    LOCKOUT_AFTER,
    NOT_ACCEPTED,
    POLICY,
    AccessControl,
    AccessDenied,
    Approval,
)
from terminal.security.audit import AuditTrail
from terminal.security.operators import OperatorStore

OPERATORS = {"cashier-1": ("cashier", "1111"), "supervisor-1": ("supervisor", "8888"),
             "technician-1": ("technician", "9999")}
OPERATIONS = [*POLICY, "purge_saf", "switch_to_live", "retry_reversals", ""]


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock()


@pytest.fixture
def journal(tmp_path: Path) -> Iterator[Journal]:
    j = Journal(tmp_path / "j.sqlite3")
    yield j
    j.close()


def _access(tmp_path: Path, journal: Journal, clock: FakeClock) -> AccessControl:
    store = OperatorStore(tmp_path / "operators.json", seed=TEST_OPERATORS)
    return AccessControl(store, AuditTrail(journal, b"k" * 32, anchor=tmp_path / "audit.head"), clock)


@pytest.fixture
def access(tmp_path: Path, journal: Journal, clock: FakeClock) -> AccessControl:
    return _access(tmp_path, journal, clock)


def _void(access: AccessControl, txn_id: str = "A") -> Approval:
    return access.approve("void", operator_id="supervisor-1", pin="8888", reason="r", txn_id=txn_id)


def test_every_role_and_operation_follows_the_policy_table(access: AccessControl) -> None:
    for operator, (role, pin) in OPERATORS.items():
        for operation in OPERATIONS:
            allowed = role in POLICY.get(operation, frozenset())
            if allowed:
                assert access.approve(operation, operator_id=operator, pin=pin, reason="r", txn_id="t").approver \
                       == operator
            else:
                with pytest.raises(AccessDenied):
                    access.approve(operation, operator_id=operator, pin=pin, reason="r", txn_id="t")
    entries = access.audit.entries()
    assert len(entries) == len(OPERATORS) * len(OPERATIONS)  # denials are audited too
    assert access.audit.check().reason == ""


def test_wrong_pin_unknown_operator_and_missing_reason_are_denied(access: AccessControl) -> None:
    attempts = [("supervisor-1", "1234", "r"), ("nobody", "8888", "r"), ("supervisor-1", "8888", " ")]
    for operator_id, pin, reason in attempts:
        with pytest.raises(AccessDenied):
            access.approve("void", operator_id=operator_id, pin=pin, reason=reason, txn_id="A")
    assert all(str(e["result"]).startswith("denied") for e in access.audit.entries())


# -- approvals: issued here only, bound, single use, short-lived, audited ----------------------------
def test_a_hand_made_approval_is_refused_and_the_refusal_audited(access: AccessControl) -> None:
    forged = Approval(id="0" * 32, operation="void", approver="nobody", reason="x", txn_id="A", expires_at=1e9)
    with pytest.raises(AccessDenied, match="not issued here"):
        access.consume(forged, "void", txn_id="A")
    real = _void(access)
    with pytest.raises(AccessDenied, match="altered"):  # a copy with a field changed
        access.consume(replace(real, txn_id="B"), "void", txn_id="B")
    assert [str(e["result"]).split(":")[0] for e in access.audit.entries()] == [
        "refused #000000000000", f"granted #{real.id[:12]}", f"refused #{real.id[:12]}"]


def test_an_approval_is_for_one_transaction_one_operation_and_one_use(access: AccessControl) -> None:
    with pytest.raises(AccessDenied, match="another transaction"):
        access.consume(_void(access, "A"), "void", txn_id="B")
    with pytest.raises(AccessDenied, match="issued for 'void'"):
        access.consume(_void(access, "A"), "refund", txn_id="A")
    approval = _void(access, "A")
    assert access.consume(approval, "void", txn_id="A").approver == "supervisor-1"
    with pytest.raises(AccessDenied, match="used already"):
        access.consume(approval, "void", txn_id="A")
    copy = Approval(**{name: getattr(approval, name) for name in
                       ("id", "operation", "approver", "reason", "txn_id", "expires_at")})
    with pytest.raises(AccessDenied, match="used already"):
        access.consume(copy, "void", txn_id="A")
    with pytest.raises(AccessDenied, match="must name the original"):
        access.approve("void", operator_id="supervisor-1", pin="8888", reason="r")
    results = [str(e["result"]).split(" ")[0] for e in access.audit.entries()]
    assert results.count("used") == 1 and results.count("granted") == 3


def test_an_approval_expires_on_the_clock(access: AccessControl, clock: FakeClock) -> None:
    approval = _void(access)
    clock.advance(APPROVAL_TTL_S + 1)
    with pytest.raises(AccessDenied, match="expired"):
        access.consume(approval, "void", txn_id="A")


# -- PINs: lockout, one answer, operators in var/ ----------------------------------------------
def test_wrong_pins_lock_the_id_with_backoff_and_a_restart_does_not_reset_it(
    tmp_path: Path, journal: Journal, access: AccessControl, clock: FakeClock,
) -> None:
    for _ in range(LOCKOUT_AFTER):
        with pytest.raises(AccessDenied):
            access.approve("void", operator_id="supervisor-1", pin="0000", reason="r", txn_id="A")
    restarted = _access(tmp_path, journal, clock)  # a new process on the same var/
    with pytest.raises(AccessDenied, match="too many wrong PINs, try again in 60 s"):
        _void(restarted)  # the right PIN, but locked
    clock.advance(61)
    with pytest.raises(AccessDenied):
        restarted.approve("void", operator_id="supervisor-1", pin="0000", reason="r", txn_id="A")
    with pytest.raises(AccessDenied, match="try again in 120 s"):  # the next lock is twice as long
        _void(restarted)
    clock.advance(121)
    assert _void(restarted).approver == "supervisor-1"  # and a right PIN clears the count
    assert restarted.store.failures("supervisor-1") == (0, 0.0)


def test_an_unknown_and_a_known_operator_get_the_same_answer_for_the_same_work(
    access: AccessControl, monkeypatch: pytest.MonkeyPatch,
) -> None:
    runs: list[str] = []
    real = operators_module.pin_ok

    def counted(pin: str, stored: str) -> bool:
        runs.append(stored)
        return real(pin, stored)

    monkeypatch.setattr(access_module, "pin_ok", counted)
    answers = []
    for operator_id in ("supervisor-1", "nobody-at-all"):
        for _ in range(LOCKOUT_AFTER + 1):
            with pytest.raises(AccessDenied) as denied:
                access.approve("void", operator_id=operator_id, pin="0000", reason="", txn_id="A")
            answers.append(str(denied.value))
            with pytest.raises(AccessDenied) as denied:
                access.approve("void", operator_id=operator_id, pin="0000", reason="r", txn_id="A")
            answers.append(str(denied.value))
    half = len(answers) // 2
    assert answers[:half] == answers[half:]  # message for message, lockout included
    assert NOT_ACCEPTED in answers[1]
    assert len(runs) == 2 * (LOCKOUT_AFTER + 1)  # one PBKDF2 run per PIN checked, known or not...
    assert all(r.split("$")[1] == runs[0].split("$")[1] for r in runs)  # ...with the same iterations


def test_operators_live_in_var_mode_0600_and_are_managed_there(tmp_path: Path, journal: Journal,
                                                               clock: FakeClock) -> None:
    store = OperatorStore(tmp_path / "var" / "operators.json")
    assert store.operators() == {}
    store.add("sup-9", "supervisor", "246810")
    assert stat.S_IMODE(os.stat(store.path).st_mode) == 0o600
    assert "246810" not in store.path.read_text()
    access = AccessControl(store, AuditTrail(journal, b"k" * 32), clock)
    assert access.approve("settle", operator_id="sup-9", pin="246810", reason="r").approver == "sup-9"
    store.set_pin("sup-9", "135790")
    with pytest.raises(AccessDenied):
        access.approve("settle", operator_id="sup-9", pin="246810", reason="r")
    store.remove("sup-9")
    with pytest.raises(AccessDenied):
        access.approve("settle", operator_id="sup-9", pin="135790", reason="r")
    # Seeded once: an existing store is never overwritten by the seed.
    assert OperatorStore(store.path, seed=TEST_OPERATORS).operators() == {}
    assert json.loads(store.path.read_text())["operators"] == []


def test_every_policy_operation_is_enforced_somewhere() -> None:
    """An operation in the policy that no code path checks is a promise nobody keeps."""
    root = Path(__file__).resolve().parents[2] / "terminal"
    where = [*root.glob("checkout/*.py"), root / "app.py", root / "security" / "acceptance.py",
             root / "service" / "operations.py"]
    code = "".join(p.read_text() for p in where)
    assert [op for op in POLICY if f'"{op}"' not in code] == []


# -- the audit trail and its anchor -------------------------------------------------------------
def _trail(tmp_path: Path, journal: Journal, clock: FakeClock, rows: int = 4) -> AuditTrail:
    audit = AuditTrail(journal, b"k" * 32, anchor=tmp_path / "audit.head")
    for i in range(rows):
        audit.record(operation="void", actor="a", approver="s", txn_id=f"t{i}", reason="r", result="granted",
                     at=clock.wall())
    return audit


def test_the_audit_chain_detects_a_changed_or_deleted_row(tmp_path: Path, journal: Journal,
                                                          clock: FakeClock) -> None:
    audit = _trail(tmp_path, journal, clock)
    assert audit.verify() is None and audit.check().reason == ""
    journal._db.execute("UPDATE audit SET reason = 'edited' WHERE seq = 2")
    assert audit.verify() == 2 and "entry 2 does not chain" in audit.check().reason
    journal._db.execute("UPDATE audit SET reason = 'r' WHERE seq = 2")
    journal._db.execute("DELETE FROM audit WHERE seq = 3")
    assert audit.verify() == 4
    assert AuditTrail(journal, b"x" * 32).verify() == 1  # another key cannot vouch for the chain


@pytest.mark.parametrize("damage", ["DELETE FROM audit WHERE seq >= 3", "DELETE FROM audit", "DROP TABLE audit"])
def test_the_anchor_catches_a_deleted_tail_every_row_and_a_dropped_table(
    tmp_path: Path, journal: Journal, clock: FakeClock, damage: str,
) -> None:
    _trail(tmp_path, journal, clock)
    journal._db.execute(damage)
    reopened = AuditTrail(journal, b"k" * 32, anchor=tmp_path / "audit.head")  # a restart re-creates the table
    assert reopened.verify() is None  # the chain alone sees nothing wrong
    assert "anchored entries are missing" in reopened.check().reason


def test_the_anchor_catches_a_re_chain_with_the_stolen_key(tmp_path: Path, journal: Journal,
                                                          clock: FakeClock) -> None:
    _trail(tmp_path, journal, clock)
    journal._db.execute("DELETE FROM audit WHERE seq >= 2")
    forger = AuditTrail(journal, b"k" * 32)  # the key read from var/keys/, no anchor
    for i in range(3):
        forger.record(operation="reprint", actor="x", approver="s", txn_id=f"f{i}", reason="r", result="granted",
                      at=clock.wall())
    audit = AuditTrail(journal, b"k" * 32, anchor=tmp_path / "audit.head")
    assert audit.verify() is None
    assert "not the one anchored" in audit.check().reason


def test_a_missing_anchor_is_a_break_but_a_crash_before_the_anchor_write_is_not(
    tmp_path: Path, journal: Journal, clock: FakeClock,
) -> None:
    audit = _trail(tmp_path, journal, clock, rows=2)
    AuditTrail(journal, b"k" * 32).record(operation="void", actor="a", approver="s", txn_id="t", reason="r",
                                          result="granted", at=clock.wall())  # committed, anchor not moved
    assert audit.check().reason == ""
    (tmp_path / "audit.head").unlink()
    assert "audit.head is missing" in audit.check().reason


def test_a_supervisor_acknowledges_a_break_and_the_trail_goes_on_from_there(
    tmp_path: Path, journal: Journal, clock: FakeClock,
) -> None:
    audit = _trail(tmp_path, journal, clock)
    journal._db.execute("DELETE FROM audit WHERE seq = 4")
    assert audit.check().reason
    audit.record(operation="void", actor="a", approver="s", txn_id="x", reason="r", result="denied", at=clock.wall())
    assert audit.check().reason, "a broken trail does not heal by writing more entries"
    assert audit.acknowledge(approver="supervisor-1", reason="checked", at=clock.wall()).reason == ""
    assert AuditTrail(journal, b"k" * 32, anchor=tmp_path / "audit.head").check().reason == ""
    assert str(audit.entries()[-1]["result"]).startswith("acknowledged: entry 4 is not the one anchored")


def test_an_unreadable_anchor_is_a_break_and_is_never_overwritten(tmp_path: Path, journal: Journal,
                                                                  clock: FakeClock) -> None:
    audit = _trail(tmp_path, journal, clock, rows=2)
    (tmp_path / "audit.head").write_text("{not json")
    audit.record(operation="void", actor="a", approver="s", txn_id="t", reason="r", result="granted", at=clock.wall())
    assert (tmp_path / "audit.head").read_text() == "{not json"
    assert "cannot be read" in audit.check().reason
