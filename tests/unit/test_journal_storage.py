"""The journal's storage guards (issue 9, "One writer, damaged storage"): one writer, damage
found at open, and a witness outside the database that notices a journal gone back or replaced."""

from __future__ import annotations

import os
import shutil
import sqlite3
import subprocess
import sys
from datetime import datetime
from pathlib import Path

import pytest

from terminal.clock import FakeClock
from terminal.errors import JournalError
from terminal.journal import Acceptance, Journal, JournalDamaged, JournalLocked, JournalMismatch
from terminal.security.acceptance import JournalAcceptance
from terminal.security.access import AccessDenied
from terminal.security.operators import OperatorStore
from tests.support.full_disk import FullDisk

AT = datetime(2026, 11, 22, 9, 30)
REPO = Path(__file__).resolve().parents[2]


def _accept(var: Path) -> JournalAcceptance:
    """supervisor-1's own PIN, checked by the access control against var/operators.json."""
    store = OperatorStore(var / "operators.json")
    if store.get("supervisor-1") is None:
        store.add("supervisor-1", "supervisor", "8888")
    return JournalAcceptance(var_dir=var, clock=FakeClock(), supervisor="supervisor-1", pin="8888",
                             reason="restored after disk swap, host checked")


def _sale(journal: Journal, txn_id: str, amount: int = 1234) -> int:
    stan = journal.record_sent(txn_id=txn_id, amount_minor=amount, currency="156", entry_mode="swipe",
                               pan_last4="0010", pan_token="t" * 64, at=AT).stan
    journal.record_answer(txn_id, approved=True, response_code="00", auth_code="123456", rrn="1" * 12, at=AT)
    return stan


def _journal_with_sales(var: Path, count: int = 3) -> Path:
    journal = Journal(var / "journal.sqlite3")
    for n in range(count):
        _sale(journal, f"sale-{n}")
    journal.close()
    return var / "journal.sqlite3"


# -- one writer -------------------------------------------------------------------------------------
def test_a_second_process_cannot_open_a_journal_in_use_and_is_told_who_holds_it(tmp_path: Path) -> None:
    path = tmp_path / "var" / "journal.sqlite3"
    with subprocess.Popen(
        [sys.executable, "-c", "import sys; from terminal.journal import Journal; j = Journal(sys.argv[1]);"
         " print('OPEN', flush=True); sys.stdin.read(); j.close()", str(path)],
        cwd=REPO, env={**os.environ, "PYTHONPATH": str(REPO)}, stdin=subprocess.PIPE, stdout=subprocess.PIPE,
        text=True,
    ) as holder:
        try:
            assert holder.stdout is not None and holder.stdin is not None
            assert holder.stdout.readline().strip() == "OPEN"
            with pytest.raises(JournalLocked) as refused:
                Journal(path)
            message = str(refused.value)
            assert str(path.parent) in message and f"pid {holder.pid}" in message
            assert "another till" in message and "另一个收银程序" in message and "\n" not in message
            holder.stdin.close()
            assert holder.wait(timeout=30) == 0
        finally:
            if holder.poll() is None:
                holder.kill()
    Journal(path).close()  # the holder is gone, and so is its lock


def test_a_lock_dies_with_its_process(tmp_path: Path) -> None:
    path = tmp_path / "journal.sqlite3"
    subprocess.run([sys.executable, "-c", "import os, sys; from terminal.journal import Journal;"
                    " Journal(sys.argv[1]); os._exit(0)", str(path)],
                   cwd=REPO, env={**os.environ, "PYTHONPATH": str(REPO)}, check=True)
    Journal(path).close()


def test_closing_the_journal_lets_the_next_one_open_it(tmp_path: Path) -> None:
    path = tmp_path / "journal.sqlite3"
    first = Journal(path)
    with pytest.raises(JournalLocked):
        Journal(path)  # flock is per open file: a second open in one process is refused too
    first.close()
    Journal(path).close()


# -- damage -----------------------------------------------------------------------------------------
def test_a_journal_failing_the_integrity_check_is_refused_with_what_to_do(tmp_path: Path) -> None:
    path = _journal_with_sales(tmp_path, count=40)
    db = sqlite3.connect(path)
    root = db.execute("SELECT rootpage FROM sqlite_master WHERE name = 'transactions_by_batch'").fetchone()[0]
    page = db.execute("PRAGMA page_size").fetchone()[0]
    db.close()
    with path.open("r+b") as f:  # scribble over the index's cells (the end of its page)
        f.seek(root * page - 200)
        f.write(b"\x07" * 150)
    with pytest.raises(JournalDamaged, match="交易流水已损坏") as refused:
        Journal(path)
    assert "call support" in str(refused.value) and str(tmp_path) in str(refused.value)


def test_one_invalid_utf8_byte_is_damage_not_a_crash(tmp_path: Path) -> None:
    path = _journal_with_sales(tmp_path)
    db = sqlite3.connect(path)
    db.execute("UPDATE transactions SET entry_mode = CAST(x'73ff77' AS TEXT) WHERE txn_id = 'sale-1'")
    db.commit()
    db.close()
    with pytest.raises(JournalDamaged, match="decode"):
        Journal(path)


def test_a_file_that_is_not_a_database_is_damage(tmp_path: Path) -> None:
    path = _journal_with_sales(tmp_path)
    with path.open("r+b") as f:
        f.write(b"garbage garbage!")  # the header
    with pytest.raises(JournalDamaged):
        Journal(path)


# -- the witness ------------------------------------------------------------------------------------
def test_a_journal_truncated_to_zero_bytes_is_not_taken_as_a_new_one(tmp_path: Path) -> None:
    path = _journal_with_sales(tmp_path, count=20)
    path.write_bytes(b"")
    with pytest.raises(JournalMismatch, match="missing or new") as refused:
        Journal(path)
    assert "supervisor" in str(refused.value) and "主管" in str(refused.value)
    with pytest.raises(JournalMismatch):  # the refused open left nothing that would pass next time
        Journal(path)


def test_a_deleted_journal_is_noticed(tmp_path: Path) -> None:
    path = _journal_with_sales(tmp_path)
    path.unlink()
    with pytest.raises(JournalMismatch, match="missing"):
        Journal(path)


def _crash_copy(path: Path, to: Path, *, wal: bool) -> Path:
    """The var dir as a power cut leaves it: the files of a journal still open (hot -wal)."""
    to.mkdir()
    for name in ("journal.sqlite3", "journal.witness", *(["journal.sqlite3-wal"] if wal else [])):
        shutil.copyfile(path.with_name(name), to / name)
    return to / "journal.sqlite3"


def test_losing_a_hot_wal_is_noticed(tmp_path: Path) -> None:
    journal = Journal(_journal_with_sales(tmp_path / "var"))
    _sale(journal, "acknowledged")
    assert (tmp_path / "var" / "journal.sqlite3-wal").stat().st_size > 0
    crashed = _crash_copy(journal.path, tmp_path / "crashed", wal=False)
    journal.close()
    with pytest.raises(JournalMismatch, match="went back"):
        Journal(crashed)


def test_a_flipped_byte_in_a_hot_wal_is_noticed(tmp_path: Path) -> None:
    journal = Journal(tmp_path / "var" / "journal.sqlite3")
    _sale(journal, "first")
    _sale(journal, "acknowledged")
    crashed = _crash_copy(journal.path, tmp_path / "crashed", wal=True)
    journal.close()
    wal = crashed.with_name("journal.sqlite3-wal")
    data = bytearray(wal.read_bytes())
    data[-100] ^= 0x01  # in the last frame: SQLite drops it (and the commit it ends) silently
    wal.write_bytes(bytes(data))
    with pytest.raises(JournalMismatch, match="went back"):
        Journal(crashed)


def test_an_old_copy_restored_is_noticed_and_stans_never_go_back_after_acceptance(tmp_path: Path) -> None:
    path = _journal_with_sales(tmp_path / "var", count=2)
    shutil.copyfile(path, tmp_path / "backup.sqlite3")
    journal = Journal(path)
    highest = max(_sale(journal, f"later-{n}") for n in range(3))
    journal.close()
    shutil.copyfile(tmp_path / "backup.sqlite3", path)
    with pytest.raises(JournalMismatch, match="went back"):
        Journal(path)
    journal = Journal(path, accept=_accept(path.parent))
    try:
        assert _sale(journal, "after-restore") > highest  # the host has seen every STAN up to `highest`
        accepted = [i for i in journal.exception_report() if i["kind"] == "journal_accepted"]
        assert len(accepted) == 1 and "supervisor-1" in str(accepted[0]["detail"])
    finally:
        journal.close()
    assert "supervisor-1" in path.with_name("journal.witness.log").read_text()
    Journal(path).close()  # accepted once: the next boot is a normal one


def test_another_journal_copied_in_is_noticed(tmp_path: Path) -> None:
    ours = _journal_with_sales(tmp_path / "ours")
    other = _journal_with_sales(tmp_path / "other")
    shutil.copyfile(other, ours)
    with pytest.raises(JournalMismatch, match="replaced"):
        Journal(ours)


def test_a_fork_at_the_same_change_is_noticed(tmp_path: Path) -> None:
    path = _journal_with_sales(tmp_path / "var", count=1)
    shutil.copyfile(path, tmp_path / "copy.sqlite3")
    journal = Journal(path)
    _sale(journal, "here")
    journal.close()
    shutil.copyfile(path.with_name("journal.witness"), tmp_path / "witness")
    shutil.copyfile(tmp_path / "copy.sqlite3", path)
    path.with_name("journal.witness").unlink()
    journal = Journal(path, accept=_accept(path.parent))  # the copy goes its own way with the same number of changes
    _sale(journal, "there")
    journal.close()
    shutil.copyfile(tmp_path / "witness", path.with_name("journal.witness"))
    with pytest.raises(JournalMismatch, match="forked"):
        Journal(path)


def test_a_missing_or_damaged_witness_is_noticed(tmp_path: Path) -> None:
    path = _journal_with_sales(tmp_path)
    witness = path.with_name("journal.witness")
    good = witness.read_bytes()
    witness.write_bytes(good.replace(b'"stan": ', b'"stan": 9'))
    with pytest.raises(JournalMismatch, match="damaged"):
        Journal(path)
    witness.unlink()
    with pytest.raises(JournalMismatch, match="witness is missing"):
        Journal(path)
    witness.write_bytes(good)
    Journal(path).close()


def test_a_journal_ahead_of_its_witness_is_a_crash_between_two_writes_and_opens(tmp_path: Path) -> None:
    path = _journal_with_sales(tmp_path)
    witness = path.with_name("journal.witness")
    before = witness.read_bytes()
    journal = Journal(path)
    _sale(journal, "after")
    journal.close()
    witness.write_bytes(before)  # as if killed after the commit, before the witness write
    Journal(path).close()
    assert witness.read_bytes() != before  # caught up


def test_the_witness_holds_the_stan_before_the_request_may_leave(tmp_path: Path) -> None:
    journal = Journal(tmp_path / "journal.sqlite3")
    try:
        synced = journal.witness_syncs  # counted for bench/sale.py's floor
        stan = journal.record_sent(txn_id="a", amount_minor=5, currency="156", entry_mode="swipe",
                                   pan_last4="0010", pan_token="t" * 64, at=AT).stan
        assert journal.witness_syncs == synced + 1  # one slot write, one fdatasync
        assert f'"stan": {stan}' in (tmp_path / "journal.witness").read_text()
        assert f'"stan": {journal.next_stan()}' in (tmp_path / "journal.witness").read_text()
    finally:
        journal.close()


def test_a_chip_approval_is_witnessed_when_the_card_confirms_it_and_a_lost_one_is_noticed(tmp_path: Path) -> None:
    """SENT -> AUTHORIZED leaves the witness to the card's confirmation (a row found SENT or
    AUTHORIZED at boot is reversed either way); the confirmed approval is witnessed at once."""
    var = tmp_path / "var"
    journal = Journal(_journal_with_sales(var, count=1))  # on disk whole: a -wal lost takes only what follows
    witness = var / "journal.witness"
    try:
        stan = journal.record_sent(txn_id="chip", amount_minor=5, currency="156", entry_mode="chip",
                                   pan_last4="0010", pan_token="t" * 64, at=AT).stan
        assert f'"stan": {stan}' in witness.read_text()  # before the request may leave, as ever
        sent = witness.read_bytes()
        journal.record_answer("chip", approved=True, response_code="00", auth_code="123456", rrn="1" * 12, at=AT,
                              card_must_confirm=True)
        assert witness.read_bytes() == sent  # the change waits for the next commit
        authorized = _crash_copy(journal.path, tmp_path / "authorized", wal=True)
        journal.confirm_approval("chip", at=AT)
        assert witness.read_bytes() != sent
        confirmed = _crash_copy(journal.path, tmp_path / "confirmed", wal=False)
    finally:
        journal.close()
    killed = Journal(authorized)  # killed before the card confirmed: one change ahead, it opens...
    try:
        assert killed.recover_unanswered(at=AT) == ["chip"]  # ...and the approval is reversed (06)
    finally:
        killed.close()
    with pytest.raises(JournalMismatch, match="went back"):  # the confirmed approval lost with the -wal
        Journal(confirmed)


def test_an_unchanged_journal_opens_without_writing(tmp_path: Path) -> None:
    path = _journal_with_sales(tmp_path)
    witness = path.with_name("journal.witness")
    stamp = witness.stat().st_mtime_ns
    journal = Journal(path)
    wal = path.with_name("journal.sqlite3-wal")
    assert not wal.exists() or wal.stat().st_size == 0  # nothing written to the journal
    journal.close()
    assert witness.stat().st_mtime_ns == stamp


def test_a_kill_while_a_new_journal_is_made_is_not_a_replacement(tmp_path: Path) -> None:
    path = tmp_path / "journal.sqlite3"
    Journal(path).close()  # the witness is written before the identity commits...
    for name in ("journal.sqlite3", "journal.sqlite3-wal", "journal.sqlite3-shm"):
        path.with_name(name).unlink(missing_ok=True)  # ...as if killed in between: no journal
    journal = Journal(path)  # nothing was ever recorded under that witness
    try:
        assert _sale(journal, "first") == 1
    finally:
        journal.close()


# -- a full disk ------------------------------------------------------------------------------------
def test_reversals_the_disk_will_not_take_are_owed_from_memory_and_again_after_a_restart(tmp_path: Path) -> None:
    path = tmp_path / "journal.sqlite3"
    journal = Journal(path)
    for txn_id in ("on-disk", "in-memory"):
        journal.record_sent(txn_id=txn_id, amount_minor=5, currency="156", entry_mode="swipe", pan_last4="0010",
                            pan_token="t" * 64, at=AT)
    journal.record_timeout("on-disk", reason="no answer", at=AT)
    disk = FullDisk(journal)
    disk.full = True
    journal.record_timeout("in-memory", reason="no answer", at=AT)  # no error: owed from memory
    assert journal.pending_reversals() == ["on-disk", "in-memory"]
    assert journal.reversal_attempt("on-disk", at=AT) == 1 and journal.reversal_attempt("in-memory", at=AT) == 1
    journal.record_reversed("on-disk", at=AT)
    journal.escalate_reversal("in-memory", at=AT)
    assert journal.pending_reversals() == [] and journal.unresolved_reversals() == ["in-memory"]
    assert disk.refused and journal.count_by_state() == {"TIMEOUT": 1, "SENT": 1}  # nothing reached the disk
    disk.free()
    journal.record_reversed("in-memory", at=AT)  # room again: this one is on disk now
    assert journal.unresolved_reversals() == []
    journal.close()
    journal = Journal(path)
    try:  # a restart owes what the disk never took: the on-disk reversal is delivered (again)
        assert journal.recover_unanswered(at=AT) == [] and journal.pending_reversals() == ["on-disk"]
        assert journal.count_by_state() == {"TIMEOUT": 1, "REVERSED": 1}
    finally:
        journal.close()


def test_a_failed_commit_leaves_no_transaction_open(tmp_path: Path) -> None:
    journal = Journal(tmp_path / "journal.sqlite3")
    try:
        disk = FullDisk(journal)
        disk.full = True
        with pytest.raises(JournalError, match="disk is full"):
            _sale(journal, "refused")
        disk.free()
        assert _sale(journal, "next") == 1  # the refused sale's STAN was never taken
    finally:
        journal.close()


def test_below_the_reserve_the_journal_takes_no_new_sale(tmp_path: Path) -> None:
    free = [10**9]
    journal = Journal(tmp_path / "journal.sqlite3", disk_reserve_bytes=20_000_000, free_bytes=lambda: free[0])
    try:
        assert journal.disk_refusal() is None
        _sale(journal, "before")
        free[0] = 19_000_000
        refusal = journal.disk_refusal()
        assert refusal is not None and "磁盘空间不足" in refusal and "disk nearly full" in refusal
        with pytest.raises(JournalError, match="disk nearly full"):
            _sale(journal, "after")
    finally:
        journal.close()


def test_a_hand_made_acceptance_record_is_no_permission(tmp_path: Path) -> None:
    """Accepting a journal goes through the access control (POLICY accept_journal): a record
    anyone can build, or an acceptance with a wrong PIN, leaves the journal refused."""
    path = _journal_with_sales(tmp_path / "var", count=2)
    shutil.copyfile(path, tmp_path / "backup.sqlite3")
    journal = Journal(path)
    _sale(journal, "later")
    journal.close()
    shutil.copyfile(tmp_path / "backup.sqlite3", path)
    forged = Acceptance(approver="nobody", reason="trust me", at=AT.isoformat())
    with pytest.raises(JournalMismatch, match="access control"):
        Journal(path, accept=forged)  # type: ignore[arg-type]
    good = _accept(path.parent)
    wrong = JournalAcceptance(var_dir=path.parent, clock=FakeClock(), supervisor="supervisor-1", pin="0000",
                              reason=good.reason)
    with pytest.raises(AccessDenied):
        Journal(path, accept=wrong)
    with pytest.raises(JournalMismatch):
        Journal(path)
    Journal(path, accept=good).close()
    assert good.problem is not None and "went back" in good.problem
    Journal(path).close()


def test_an_old_copy_of_a_settled_batch_is_noticed_and_the_batch_number_never_goes_back(tmp_path: Path) -> None:
    """The witness keeps the batch number: a copy from before a settlement names its batch, and
    once accepted the terminal goes on with the host's next batch, never one the host closed."""
    path = _journal_with_sales(tmp_path / "var", count=2)
    shutil.copyfile(path, tmp_path / "backup.sqlite3")
    journal = Journal(path)
    journal.close_batch(1, at=AT)  # the host closed batch 1
    journal.close()
    shutil.copyfile(tmp_path / "backup.sqlite3", path)
    with pytest.raises(JournalMismatch, match="batch 000002 to 000001"):
        Journal(path)
    journal = Journal(path, accept=_accept(path.parent))
    try:
        assert journal.current_batch() == 2
    finally:
        journal.close()
