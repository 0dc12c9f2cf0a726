"""Crash-kill loop (RELIABILITY.md §3; §7 rows 3, 4 and 12): SIGKILL a selling till, again and again.

One acquirer simulator outlives every child: its ledger is the truth about money. Each child
(tests/reliability/crash_child.py) boots a till on the same var dir and sells back to back; the
parent kills it with SIGKILL at a seeded-random moment — 0–80 ms after its first sale began,
or for a fifth of the kills 0–20 ms into its boot: before, during or after a journal commit,
with a request on the wire or an answer unread — and keeps every `ACK` line that got out.
Usually the parent then boots a till itself (recovery: rows left SENT are reversed) and audits;
otherwise the next child boots on the crashed journal and recovers by itself, so kills land
inside recovery too. The audit:

1. `PRAGMA integrity_check` is ok, on the crashed file and after recovery;
2. every acknowledged sale is in the journal, APPROVED, with its amount (none lost);
3. the host's net effect of every journalled STAN is the row's amount when APPROVED, else 0 —
   never more (no double effect), and the host's effective total equals the journal's;
4. no row stays SENT or TIMEOUT, no reversal stays unacknowledged;
5. every STAN the host booked is a journal row with the same date and amount (no charge the
   terminal cannot see);
6. an acknowledged sale has both receipt copies journalled, and no copy is ever printed twice
   without the REPRINT mark. (Row 4 also wants the receipts of a sale approved just before the
   kill printed after the reboot; nothing does that yet, so those are only counted.)

Two kinds of rounds go further (issue 9). A *damaged-journal* round (after a share of the kills)
damages a copy of the crashed var dir — the hot `-wal` lost, a byte of it flipped, the journal
truncated to 0 bytes — and opens it: the journal must refuse (damaged, or not what its witness
remembers), or, if it opens, have lost nothing that matters (every acknowledged sale and every
STAN the host booked is in it). A *disk-full* round gives a child a journal whose disk fills at a
chosen statement after a few sales (tests/support/full_disk.py): its sales after that are never
acknowledged as APPROVED, and the audit above must hold all the same.

OPENTILL_CRASH_KILLS (200) sets the number of kills, OPENTILL_CRASH_SEED the schedule. The seed
fixes when each kill is sent, not what the child was doing at that instant (that is the
machine's timing), so a failure is rerun with the same seed, and with more kills if need be.
"""

from __future__ import annotations

import os
import random
import select
import shutil
import signal
import sqlite3
import subprocess
import sys
import time
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO

import pytest

from emulator.acquirer.simulator import AcquirerSimulator
from sim.wiring import build_emulated_till
from terminal.app import load_terminal_profile
from terminal.checkout.table import CheckoutState
from terminal.journal import Journal, JournalDamaged, JournalMismatch
from tests.reliability.crash_child import overrides

KILLS = int(os.environ.get("OPENTILL_CRASH_KILLS", "200"))
SEED = int(os.environ.get("OPENTILL_CRASH_SEED", "20250505"))
KILL_WINDOW_S = 0.080  # after READY: 0-80 ms is a few sales, so kills land anywhere in one
BOOT_KILLS = 0.2  # this share of the kills lands 0-20 ms after START, in the boot instead
BOOT_WINDOW_S = 0.020
RECOVER_IN_PARENT = 0.75  # the other kills leave recovery to the next child's boot
START_WAIT_S = 60.0  # bounds on waits that end in milliseconds when all is well
RECOVERY_WAIT_S = 30.0
EXIT_WAIT_S = 10.0
COVERAGE_KILLS = 100  # from this many kills on, the run must have hit every window of a sale
UNRESOLVED = ("SENT", "TIMEOUT")
COPIES = ("merchant", "cardholder")  # what an approved sale prints, in order
DAMAGE_ROUNDS = 0.15  # this share of the kills also opens a damaged copy of the crashed var dir
DAMAGES = ("lose the -wal", "flip a byte of the -wal", "truncate the journal")
DISK_FULL_CHILDREN = 0.1  # this share of the children fills its disk
DISK_FULL_AT = (  # statements at which the disk fills: the request's row, the answer, the card's TC, a print
    "INSERT INTO transactions", "UPDATE transactions SET state = ?, response_code", "SET state = 'APPROVED'",
    "INSERT INTO prints",
)
REPO = Path(__file__).resolve().parents[2]


class Child:
    """One crash_child process. Its stdout is read through select() with bounded waits."""

    def __init__(self, var_dir: Path, port: int, seed: int, stderr: IO[bytes],
                 disk_full: tuple[int, str] | None = None, extra: tuple[str, ...] = ()) -> None:
        self.disk_full = disk_full  # (sales before, statement): this child's disk fills
        fill = ["--disk-full-after", str(disk_full[0]), "--disk-full-at", disk_full[1]] if disk_full else []
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "tests.reliability.crash_child", "--var-dir", str(var_dir),
             "--port", str(port), "--seed", str(seed), *fill, *extra],
            cwd=REPO, stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=stderr, bufsize=0,
        )
        assert self.proc.stdin is not None and self.proc.stdout is not None
        self._stdin, self._stdout = self.proc.stdin, self.proc.stdout
        self.lines: list[str] = []  # complete lines only: a line cut by the kill never counts
        self._partial = b""
        self.eof = False

    def go(self) -> bool:
        """Let it boot; False when it has already died (see the children's stderr)."""
        try:
            self._stdin.write(b"GO\n")
            self._stdin.close()
        except BrokenPipeError:
            return False
        return True

    def _read_once(self, timeout: float) -> None:
        ready, _, _ = select.select([self._stdout], [], [], max(0.0, timeout))
        if not ready:
            return
        data = os.read(self._stdout.fileno(), 65536)
        if not data:
            self.eof = True
            return
        *complete, self._partial = (self._partial + data).split(b"\n")
        self.lines += [line.decode() for line in complete]

    def wait_for(self, line: str, timeout: float) -> bool:
        until = time.monotonic() + timeout
        while line not in self.lines and not self.eof and time.monotonic() < until:
            self._read_once(until - time.monotonic())
        return line in self.lines

    def read_until(self, until: float) -> None:
        """Collect output until the monotonic instant `until` (the kill's moment)."""
        while not self.eof and time.monotonic() < until:
            self._read_once(until - time.monotonic())

    def kill(self) -> int:
        """SIGKILL, read what had already left, reap; returns the exit status."""
        if self.proc.returncode is None:
            os.kill(self.proc.pid, signal.SIGKILL)
        until = time.monotonic() + EXIT_WAIT_S
        while not self.eof and time.monotonic() < until:
            self._read_once(until - time.monotonic())
        return self.proc.wait(timeout=EXIT_WAIT_S)

    def close(self) -> None:
        """Whatever state it is in: no process, pipe or zombie left behind. Idempotent."""
        if not self._stdin.closed:
            self._stdin.close()  # a child still waiting for GO exits on EOF; kill it anyway
        if self.proc.poll() is None:
            self.proc.kill()
        self.proc.wait(timeout=EXIT_WAIT_S)
        self._stdout.close()


@dataclass(frozen=True)
class Row:
    txn_id: str
    state: str
    stan: int
    amount_minor: int
    date: str  # MMDD of created_at: DE 13 of its request, part of the host's key


@dataclass(frozen=True)
class Snapshot:
    rows: list[Row]
    reversals: dict[str, str]  # txn_id -> PENDING / DONE / FAILED
    originals: dict[tuple[str, str], int]  # (txn_id, copy) -> prints without the REPRINT mark
    printed: set[tuple[str, str]]  # (txn_id, copy) printed at all, REPRINT or not
    incidents: dict[str, int]  # kind -> count


@dataclass
class Audit:
    """What the parent knows: the acknowledged sales, the journal file and the host."""

    sim: AcquirerSimulator
    db_path: Path
    terminal_id: str
    where: str = ""
    acked: dict[str, int] = field(default_factory=dict)  # txn_id -> amount_minor
    # Acknowledged by a child whose disk filled: a print row it could not write leaves the copy
    # owed, and the next boot prints it marked REPRINT (part may have printed).
    acked_on_full_disk: set[str] = field(default_factory=set)
    settled: set[str] = field(default_factory=set)  # rows whose host effect was checked final
    seen: set[str] = field(default_factory=set)  # rows seen at an earlier crash
    stats: Counter[str] = field(default_factory=Counter)
    problems: list[str] = field(default_factory=list)

    def fail(self, what: str) -> None:
        self.problems.append(what)

    def take_acks(self, lines: list[str], *, disk_full: bool = False) -> None:
        for line in lines:
            if not line.startswith("ACK "):
                continue
            _, txn_id, amount, outcome = line.split()
            self.stats["acknowledged"] += 1
            if outcome != "APPROVED" and disk_full:  # the disk filled: not approved is the right answer
                self.stats[f"disk full: a sale ended {outcome}"] += 1
            elif outcome != "APPROVED":
                self.fail(f"the approved card's sale {txn_id} ended {outcome}")
            elif txn_id in self.acked:
                self.fail(f"sale {txn_id} acknowledged twice")
            else:
                self.acked[txn_id] = int(amount)
                if disk_full:
                    self.acked_on_full_disk.add(txn_id)

    def read_journal(self) -> Snapshot:
        """The journal file as it is, after an integrity check."""
        db = sqlite3.connect(self.db_path)
        try:
            integrity = [r[0] for r in db.execute("PRAGMA integrity_check")]
            if integrity != ["ok"]:
                self.fail(f"integrity_check says {integrity[:5]}")
            if db.execute("SELECT 1 FROM sqlite_master WHERE name = 'transactions'").fetchone() is None:
                # Killed in the very first boot, before the schema's transaction committed.
                if self.seen or self.acked:
                    self.fail("the journal has lost its tables")
                self.stats["killed before the schema was committed"] += 1
                return Snapshot(rows=[], reversals={}, originals={}, printed=set(), incidents={})
            return Snapshot(
                rows=[Row(t, s, n, a, f"{c[5:7]}{c[8:10]}") for t, s, n, a, c in db.execute(
                    "SELECT txn_id, state, stan, amount_minor, created_at FROM transactions")],
                reversals=dict(db.execute("SELECT txn_id, state FROM reversals").fetchall()),
                originals={(t, c): n for t, c, n in db.execute(
                    "SELECT txn_id, copy, COUNT(*) FROM prints WHERE NOT reprint GROUP BY txn_id, copy")},
                printed=set(db.execute("SELECT DISTINCT txn_id, copy FROM prints").fetchall()),
                incidents=dict(db.execute("SELECT kind, COUNT(*) FROM incidents GROUP BY kind").fetchall()),
            )
        finally:
            db.close()

    def classify_crash(self) -> None:
        """Check the crashed file, and count where the kill landed (so a run shows it hit the
        windows that matter: a row SENT with or without the host's booking, an approval unsaid)."""
        if not self.db_path.exists():
            self.stats["killed before the journal existed"] += 1
            return
        journal = self.read_journal()
        booked = {e.stan for e in self.sim.ledger}
        new = [r for r in journal.rows if r.txn_id not in self.seen]
        self.seen.update(r.txn_id for r in new)
        for row in new:
            if row.state == "SENT":
                self.stats["left SENT, host had booked it" if f"{row.stan:06d}" in booked
                           else "left SENT, host had not booked it"] += 1
            elif row.state == "APPROVED" and row.txn_id not in self.acked:
                self.stats["APPROVED, killed before its ACK"] += 1
                printed = sum(bool(journal.originals.get((row.txn_id, copy))) for copy in COPIES)
                if printed < len(COPIES):
                    self.stats[f"APPROVED, killed with {printed} of {len(COPIES)} receipts printed"] += 1

    def damage_round(self, rng: random.Random, var_dir: Path, scratch: Path) -> None:
        """Damage a copy of the crashed var dir; the journal must refuse it or have lost nothing."""
        damage = rng.choice(DAMAGES)
        wal = var_dir / "journal.sqlite3-wal"
        if damage != "truncate the journal" and (not wal.exists() or wal.stat().st_size <= 32):
            damage = "truncate the journal"  # no hot -wal to damage
        if not (var_dir / "journal.sqlite3").exists():
            return
        shutil.rmtree(scratch, ignore_errors=True)
        scratch.mkdir()
        for name in ("journal.sqlite3", "journal.sqlite3-wal", "journal.witness"):
            if (var_dir / name).exists():
                shutil.copyfile(var_dir / name, scratch / name)
        copy = scratch / "journal.sqlite3"
        if damage == "lose the -wal":
            (scratch / "journal.sqlite3-wal").unlink()
        elif damage == "flip a byte of the -wal":
            data = bytearray((scratch / "journal.sqlite3-wal").read_bytes())
            data[rng.randrange(32, len(data))] ^= 1 << rng.randrange(8)
            (scratch / "journal.sqlite3-wal").write_bytes(bytes(data))
        else:
            copy.write_bytes(b"")
        try:
            journal = Journal(copy)
        except (JournalDamaged, JournalMismatch):
            self.stats[f"damage refused: {damage}"] += 1
            return
        try:
            booked = {e.stan for e in self.sim.ledger if e.terminal_id == self.terminal_id}
            rows = {(r.txn_id, r.state) for r in (journal.get(t) for t in self.acked) if r is not None}
            stans = {f"{stan:06d}" for (stan,) in journal._db.execute("SELECT stan FROM transactions")}
        finally:
            journal.close()
        lost = [t for t in self.acked if (t, "APPROVED") not in rows] + sorted(booked - stans)
        if lost:
            self.fail(f"a journal damaged by '{damage}' opened without a word and lost {lost[:5]}")
        self.stats[f"damage harmless: {damage}"] += 1

    def recover(self, var_dir: Path) -> None:
        """Boot a till on the journal, as the next power-on would, and let it settle."""
        with build_emulated_till(var_dir=var_dir, overrides=overrides(self.sim.address[1])) as till:
            limit = time.monotonic() + RECOVERY_WAIT_S
            till.runtime.run_until(
                lambda: till.flow.state is CheckoutState.IDLE or time.monotonic() > limit, io_wait=1.0)
            if till.flow.state is not CheckoutState.IDLE:
                self.fail(f"recovery did not reach IDLE in {RECOVERY_WAIT_S}s (state {till.flow.state.name})")

    def check(self, *, full: bool) -> None:
        """The audit of the module docstring; `full` re-checks rows already found final."""
        journal = self.read_journal()
        rows = journal.rows
        by_id = {r.txn_id: r for r in rows}
        by_stan: dict[str, Row] = {}
        for row in rows:
            if f"{row.stan:06d}" in by_stan:
                self.fail(f"STAN {row.stan} is used by two rows")
            by_stan[f"{row.stan:06d}"] = row
        for txn_id, amount in self.acked.items():
            got = by_id.get(txn_id)
            if got is None or (got.state, got.amount_minor) != ("APPROVED", amount):
                self.fail(f"acknowledged sale {txn_id} of {amount} is {got} in the journal (lost)")
        for row in rows:
            if row.state in UNRESOLVED:
                self.fail(f"{row.txn_id} is still {row.state} after recovery")
            if row.txn_id in self.settled and not full:
                continue
            net = self.sim.net_effect(self.terminal_id, f"{row.stan:06d}")
            expected = row.amount_minor if row.state == "APPROVED" else 0
            if net != expected:
                self.fail(f"{row.txn_id} is {row.state} for {row.amount_minor} but the host nets {net}")
            elif row.state not in UNRESOLVED:
                self.settled.add(row.txn_id)
        for (txn_id, copy), count in journal.originals.items():
            if count > 1:
                self.fail(f"the {copy} copy of {txn_id} was printed {count} times without the REPRINT mark")
        for txn_id in self.acked:
            if txn_id in self.acked_on_full_disk:
                if not all((txn_id, copy) in journal.printed for copy in COPIES):
                    self.fail(f"acknowledged sale {txn_id} (disk full) never got a receipt copy, not even at boot")
            elif not all(journal.originals.get((txn_id, copy)) for copy in COPIES):
                self.fail(f"acknowledged sale {txn_id} is missing a receipt copy in the journal")
        for txn_id, state in journal.reversals.items():
            if state != "DONE":
                self.fail(f"the reversal of {txn_id} is {state} after recovery")
        host_total = 0
        for entry in self.sim.ledger:
            ours = by_stan.get(entry.stan) if entry.terminal_id == self.terminal_id else None
            if ours is None or (ours.date, ours.amount_minor) != (entry.date, entry.amount_minor):
                self.fail(f"the host booked {entry.terminal_id}/{entry.stan}/{entry.date} for "
                          f"{entry.amount_minor}, which the journal has as {ours}")
            if entry.effective:
                host_total += entry.signed_amount
        journal_total = sum(r.amount_minor for r in rows if r.state == "APPROVED")
        if host_total != journal_total:
            self.fail(f"the host's effective total {host_total} is not the journal's approved total {journal_total}")
        self.stats.update({f"incidents: {kind}": n for kind, n in journal.incidents.items()} if full else {})
        if self.sim.internal_errors:
            self.fail(f"the simulator raised {self.sim.internal_errors!r}")


def test_sigkill_at_random_points_loses_no_acknowledged_sale_and_charges_once(tmp_path: Path) -> None:
    rng = random.Random(SEED)
    var_dir, stderr_path = tmp_path / "var", tmp_path / "children.stderr"
    rerun = f"seed={SEED} kills={KILLS} (rerun: OPENTILL_CRASH_SEED={SEED} OPENTILL_CRASH_KILLS={KILLS})"
    started = time.monotonic()
    with AcquirerSimulator() as sim, stderr_path.open("wb") as stderr:
        port = sim.address[1]
        terminal_id = str(load_terminal_profile("emulated-counter")["terminal_id"])
        audit = Audit(sim=sim, db_path=var_dir / "journal.sqlite3", terminal_id=terminal_id)
        def next_child() -> Child:
            fill = (rng.randrange(2), rng.choice(DISK_FULL_AT)) if rng.random() < DISK_FULL_CHILDREN else None
            return Child(var_dir, port, rng.getrandbits(32), stderr, fill)

        child: Child | None = next_child()
        spare: Child | None = None
        try:
            for kill in range(1, KILLS + 1):
                audit.where = f"kill {kill}/{KILLS}, {rerun}, children's stderr in {stderr_path}"
                assert child is not None
                started_ok = child.go() and child.wait_for("START", START_WAIT_S)
                assert started_ok, f"{audit.where}: the child never started (exit {child.proc.poll()}); see its stderr"
                if kill < KILLS:  # the next child imports while this one sells
                    spare = next_child()
                # Most kills are timed from the first sale, so a slow (loaded) machine still
                # gets them in the sales; the rest from the boot's start.
                in_boot = rng.random() < BOOT_KILLS
                if not in_boot:
                    assert child.wait_for("READY", START_WAIT_S), f"{audit.where}: no READY; got {child.lines}"
                child.read_until(time.monotonic() + rng.uniform(0.0, BOOT_WINDOW_S if in_boot else KILL_WINDOW_S))
                returncode = child.kill()
                assert returncode == -signal.SIGKILL, (
                    f"{audit.where}: the child ended by itself ({returncode}) before the kill; see its stderr")
                child.close()
                audit.stats["kills"] += 1
                audit.stats["killed before READY"] += "READY" not in child.lines
                audit.take_acks(child.lines, disk_full=child.disk_full is not None)
                audit.stats["disk-full children"] += child.disk_full is not None
                if rng.random() < DAMAGE_ROUNDS:  # first: reading the crashed file checkpoints its hot -wal
                    audit.damage_round(rng, var_dir, tmp_path / "damaged")
                audit.classify_crash()
                if kill == KILLS or rng.random() < RECOVER_IN_PARENT:
                    audit.recover(var_dir)
                    audit.check(full=kill == KILLS)
                if audit.problems:
                    pytest.fail("\n  ".join([f"{audit.where}:", *audit.problems[:20]]), pytrace=False)
                child, spare = spare, None
        finally:
            for left in (child, spare):
                if left is not None:
                    left.close()
    print(f"crash-kill: {rerun}: {time.monotonic() - started:.1f}s, {dict(audit.stats)}")
    if KILLS >= COVERAGE_KILLS:  # the loop proves something only if kills hit the windows that matter
        sent = audit.stats["left SENT, host had booked it"] + audit.stats["left SENT, host had not booked it"]
        assert audit.acked and sent and audit.stats["APPROVED, killed before its ACK"], (
            f"{rerun}: the kills missed the windows of a sale: {dict(audit.stats)}")
