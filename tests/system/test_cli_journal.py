"""`till journal check|accept` and `till audit ack`, as a supervisor runs them (issue 9): a journal
that does not match its witness is taken as it is only under a supervisor's own PIN, through the
access control, and that is on record."""

from __future__ import annotations

import shutil
import sqlite3
from datetime import datetime
from pathlib import Path

import pytest

from terminal.journal import Journal, JournalMismatch
from terminal.security.operators import OperatorStore
from tests.system.conftest import run_cli as _run

AT = datetime(2026, 11, 22, 9, 30)




def _sale(journal: Journal, txn_id: str) -> int:
    stan = journal.record_sent(txn_id=txn_id, amount_minor=1234, currency="156", entry_mode="swipe",
                               pan_last4="0010", pan_token="t" * 64, at=AT).stan
    journal.record_answer(txn_id, approved=True, response_code="00", auth_code="123456", rrn="1" * 12, at=AT)
    return stan


def _restored_old_copy(var: Path) -> Path:
    """A var/ whose journal was put back to an older copy (the witness remembers more)."""
    store = OperatorStore(var / "operators.json")
    store.add("sup-1", "supervisor", "482913")
    store.add("cash-1", "cashier", "1111")
    path = var / "journal.sqlite3"
    journal = Journal(path)
    _sale(journal, "a")
    journal.close()
    shutil.copyfile(path, var / "old.sqlite3")
    journal = Journal(path)
    _sale(journal, "b")
    journal.close()
    shutil.copyfile(var / "old.sqlite3", path)
    return path


def _audit(path: Path) -> list[tuple[str, str, str]]:
    db = sqlite3.connect(path)
    try:
        return [(str(o), str(a), str(r)) for o, a, r in db.execute("SELECT operation, approver, result FROM audit")]
    finally:
        db.close()


def test_a_restored_journal_is_checked_then_accepted_under_the_supervisors_pin(
        capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch, var_dir: Path) -> None:
    path = _restored_old_copy(var_dir)
    var = ["--var", str(var_dir)]
    code, out, _ = _run(capsys, monkeypatch, "journal", "check", *var)
    assert code == 1 and "MISMATCH" in out and "went back" in out and len(out.splitlines()) == 1

    accept = ["journal", "accept", *var, "--supervisor", "sup-1", "--reason", "restored, batch checked with host"]
    code, _, err = _run(capsys, monkeypatch, *accept, stdin="000000\n")  # a wrong PIN: still refused
    assert code == 2 and "not accepted" in err and len(err.splitlines()) == 1
    assert OperatorStore(var_dir / "operators.json").failures("sup-1")[0] == 1
    with pytest.raises(JournalMismatch):
        Journal(path).close()
    code, _, err = _run(capsys, monkeypatch, *accept[:-4], "--supervisor", "cash-1", accept[-2], accept[-1],
                        stdin="1111\n")  # a cashier may not
    assert code == 2 and "not allowed for this role" in err

    code, out, _ = _run(capsys, monkeypatch, *accept, stdin="482913\n")
    journal = Journal(path)  # accepted: the next boot is a normal one
    try:
        journal_id = journal.identity()
        incidents = [i for i in journal.exception_report() if i["kind"] == "journal_accepted"]
    finally:
        journal.close()
    assert code == 0 and f"journal {journal_id} accepted by sup-1" in out and "went back" in out
    assert len(incidents) == 1 and "sup-1" in str(incidents[0]["detail"])
    results = [r for o, a, r in _audit(path) if o == "accept_journal" and a == "sup-1"]
    assert [r.split(" #")[0].split(":")[0] for r in results] == ["denied", "granted", "used"]
    assert _run(capsys, monkeypatch, "journal", "check", *var)[:2][0] == 0
    code, _, err = _run(capsys, monkeypatch, *accept, stdin="482913\n")  # nothing left to accept
    assert code == 2 and "nothing to accept" in err


def test_journal_check_reads_only_and_says_ok(capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch,
                                              var_dir: Path) -> None:
    assert _run(capsys, monkeypatch, "journal", "check", "--var", str(var_dir))[0] == 2  # no journal at all
    journal = Journal(var_dir / "journal.sqlite3")
    _sale(journal, "a")
    journal.close()
    before = (var_dir / "journal.sqlite3").read_bytes()
    code, out, _ = _run(capsys, monkeypatch, "journal", "check", "--var", str(var_dir))
    assert code == 0 and out.startswith("journal ok: ") and "STAN 000001" in out
    assert (var_dir / "journal.sqlite3").read_bytes() == before
    (var_dir / "journal.sqlite3").write_bytes(before[:100] + b"\xff" * 200 + before[300:])
    code, out, _ = _run(capsys, monkeypatch, "journal", "check", "--var", str(var_dir))
    assert code == 1 and out.startswith("journal DAMAGED") and len(out.splitlines()) == 1


def test_audit_ack_acknowledges_a_broken_trail_under_the_supervisors_pin(
        capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch, var_dir: Path) -> None:
    path = _restored_old_copy(var_dir)
    var = ["--var", str(var_dir)]
    ack = ["audit", "ack", *var, "--supervisor", "sup-1", "--reason", "rows lost with the restore"]
    assert _run(capsys, monkeypatch, "journal", "accept", *var, "--supervisor", "sup-1", "--reason", "restored",
                stdin="482913\n")[0] == 0
    code, _, err = _run(capsys, monkeypatch, *ack, stdin="482913\n")
    assert code == 2 and "nothing to acknowledge" in err  # the trail holds
    db = sqlite3.connect(path)
    db.execute("DELETE FROM audit WHERE seq = (SELECT MAX(seq) FROM audit)")
    db.commit()
    db.close()
    assert _run(capsys, monkeypatch, "audit", "verify", *var)[0] == 1
    code, _, err = _run(capsys, monkeypatch, *ack, stdin="0000\n")
    assert code == 2 and "not accepted" in err and len(err.splitlines()) == 1
    code, out, _ = _run(capsys, monkeypatch, *ack, stdin="482913\n")
    assert code == 0 and out.startswith("audit trail break acknowledged by sup-1: ") and "anchored" in out
    assert _run(capsys, monkeypatch, "audit", "verify", *var)[0] == 0
    code, _, err = _run(capsys, monkeypatch, *ack[:-1], "", stdin="482913\n")
    assert code == 2 and "--reason" in err
