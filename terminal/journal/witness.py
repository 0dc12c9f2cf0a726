"""The journal's witness: a small file outside the database that remembers what the journal was.

A journal can go back in time without SQLite noticing: a hot `-wal` lost or cut short at a bad
frame (SQLite silently drops the frames from there on), a file truncated to 0 bytes (opened as a
new, empty journal), a backup copied over it, another terminal's file. Each of those loses or
forges acknowledged sales, and could make the terminal send a STAN again that the host has seen.

The witness (`journal.witness`, JSON, next to the journal) holds:
- `journal_id`: a random id made with the journal and stored in it (table `journal_meta`);
- `seq` and `head`: the journal's change counter and a random tag, both renewed by triggers on
  every change of a transaction or a counter (STAN, batch), so a fork of the same journal gets
  another head even at the same `seq`;
- `stan`: the highest STAN the journal had allocated when the witness was written;
- `batch`: the open batch number then (a copy from before a settlement names a batch the host
  has closed; once accepted, the batch number continues from the witness's, as the STAN does).
  A witness written before this field reads as batch 0 (nothing to hold the journal to).

It is written crash-safely (created with temp file, fsync, rename, fsync of the folder; then two
slots written in turn, see `WitnessFile`) after every commit that changed the journal's `seq`:
a STAN allocation (so the STAN is durable outside the database before the request leaves) and
every state change of a sale, except a chip approval still waiting for the card (AUTHORIZED:
the next commit witnesses it; `Journal.record_answer` says why that is safe). Prints, incidents
and the audit trail do not move `seq`, so they cost no witness write (a lost print row only makes
a copy owed again). A chip sale makes 2 witness writes (STAN, the card's confirmation) among its
5 commits; each is one fdatasync, about what a journal commit costs.

The journal may be *ahead* of its witness (a crash between the commit and the witness write):
that is normal and the witness catches up at boot. Behind, another id, another head at the same
`seq`, a journal without an id while a witness exists, or a witness missing or damaged while the
journal has an id: the terminal refuses to sell (`JournalMismatch`) until a supervisor accepts the
journal as it is: `till journal accept` (terminal/security/acceptance.py), which passes the
journal an `Acceptor`. It is asked once the file is open, locked and sound but before it is
trusted, and decides through the access control (POLICY `accept_journal`, the supervisor's own
PIN against var/operators.json, audited in the journal's own trail). The decision is an incident
in the journal and a line in `journal.witness.log`. A hand-made `Acceptance` record is refused:
it is what an acceptor returns, not a permission. STANs then continue from the higher of the
journal's and the witness's.
"""

from __future__ import annotations

import hashlib
import json
import os
import sqlite3
from pathlib import Path
from typing import TYPE_CHECKING, Protocol

from drivers.record import Record
from terminal.errors import JournalError

if TYPE_CHECKING:
    from terminal.journal.core import JournalCore

__all__ = [
    "META_SCHEMA", "Acceptance", "Acceptor", "JournalMismatch", "WitnessFile", "WitnessState", "compare",
    "journal_state", "later_stan",
]

WITNESS_VERSION = 1

# The identity row and the triggers that move `seq`/`head` on every change that matters.
_BUMP = "UPDATE journal_meta SET seq = seq + 1, head = lower(hex(randomblob(16)))"
META_SCHEMA = [
    "CREATE TABLE IF NOT EXISTS journal_meta (id TEXT NOT NULL, seq INTEGER NOT NULL, head TEXT NOT NULL)",
    *(f"CREATE TRIGGER IF NOT EXISTS journal_meta_{table}_{op.lower()} AFTER {op} ON {table} BEGIN {_BUMP}; END"
      for table in ("transactions", "counters") for op in ("INSERT", "UPDATE", "DELETE")),
]


class JournalMismatch(JournalError):
    """The journal is not the one its witness remembers: a supervisor must accept it."""


class Acceptance(Record):
    """A supervisor's decision to go on with the journal as it is: what an `Acceptor` returns."""

    approver: str
    reason: str
    at: str  # ISO time of the decision


class Acceptor(Protocol):
    """Asked, with what does not match, once the journal is open, locked and sound but not yet
    trusted; returns the decision or raises (the journal then stays refused). The till's is
    terminal.security.acceptance.JournalAcceptance: the access control decides."""

    def __call__(self, journal: JournalCore, problem: str) -> Acceptance: ...


class WitnessState(Record):
    journal_id: str
    seq: int
    head: str
    stan: int
    batch: int = 0  # the open batch (0: a witness from before the field)


def journal_state(db: sqlite3.Connection) -> WitnessState | None:
    """What the journal says about itself (None: it has no identity yet)."""
    row = db.execute("SELECT id, seq, head FROM journal_meta").fetchone()
    if row is None:
        return None
    counters = dict(db.execute("SELECT name, value FROM counters WHERE name IN ('stan', 'batch')").fetchall())
    return WitnessState(journal_id=str(row[0]), seq=int(row[1]), head=str(row[2]), stan=int(counters.get("stan", 0)),
                        batch=int(counters.get("batch", 0)))


def later_stan(a: int, b: int, stan_max: int) -> int:
    """The later of two STANs on a counter that wraps at stan_max (b is later when it is less
    than half the round ahead of a)."""
    return b if 0 < (b - a) % stan_max < stan_max // 2 else a


def compare(journal: WitnessState | None, witness: WitnessState | None, *, where: Path) -> str | None:
    """Why the journal is not the one the witness remembers (None: it is, or it is ahead)."""
    if witness is None:
        return None if journal is None else (
            f"the journal at {where} has id {journal.journal_id} but its witness is missing")
    if journal is None:
        if witness.seq == 0 and witness.stan == 0:
            return None  # killed while a new journal was made: nothing was ever recorded under it
        return (f"the journal at {where} is missing or new (empty), but its witness remembers journal "
                f"{witness.journal_id} at change {witness.seq}, STAN {witness.stan}")
    if journal.journal_id != witness.journal_id:
        return f"the journal at {where} is {journal.journal_id}, its witness remembers {witness.journal_id} (replaced)"
    if journal.batch < witness.batch:
        return (f"the journal at {where} went back from batch {witness.batch:06d} to {journal.batch:06d}"
                f" (an old copy: the host closed batch {journal.batch:06d} already)")
    if journal.seq < witness.seq:
        return (f"the journal at {where} went back from change {witness.seq} to {journal.seq}"
                " (lost or damaged -wal, or an old copy)")
    if journal.seq == witness.seq and journal.head != witness.head:
        return f"the journal at {where} is another copy of itself at change {journal.seq} (forked)"
    return None


SLOT = 512  # one sector: the witness is two of them, written in turn


class WitnessFile:
    """Two fixed slots of one sector each, written in turn (the older one is overwritten), each with
    its own generation and checksum: a write torn by a power cut spoils one slot and the other
    still holds the previous state (a witness that lags is harmless: the journal is ahead of it).
    The file is created with temp file, fsync, rename and an fsync of the folder; an update is then
    one pwrite and one fdatasync on the open file, no rename: ~2-3.5 ms against ~9 ms for a
    temp-and-rename of its own per update, measured on the dev box under load."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self.log_path = path.with_name(path.name + ".log")
        self._fd: int | None = None
        self._gen = 0  # the generation of the newest valid slot read or written
        self.syncs = 0  # fsyncs and fdatasyncs made, for the benchmarks (a sale's durability cost)

    def read(self) -> WitnessState | None:
        """The newest valid slot, None when there is no witness; JournalMismatch when neither slot
        can be trusted."""
        try:
            raw = self.path.read_bytes()
        except FileNotFoundError:
            return None
        except OSError as exc:
            raise JournalMismatch(f"the journal's witness {self.path} cannot be read: {exc}") from exc
        slots = [_parse(raw[i * SLOT:(i + 1) * SLOT]) for i in range(2)] if len(raw) == 2 * SLOT else []
        valid = [slot for slot in slots if slot is not None]
        if not valid:
            raise JournalMismatch(f"the journal's witness {self.path} is damaged (no valid slot)")
        self._gen, state = max(valid, key=lambda slot: slot[0])
        return state

    def write(self, state: WitnessState) -> None:
        if self._fd is None:
            if not self.path.exists():
                self._create(state)
                return
            self._fd = os.open(self.path, os.O_RDWR | os.O_CLOEXEC)
        self._gen += 1
        os.pwrite(self._fd, _slot(self._gen, state), (self._gen % 2) * SLOT)
        os.fdatasync(self._fd)
        self.syncs += 1

    def _create(self, state: WitnessState) -> None:
        """Temp file, fsync, rename, fsync of the folder: the file appears whole or not at all."""
        self._gen = 1
        data = _slot(0, None) + _slot(1, state)
        tmp = self.path.with_name(self.path.name + ".tmp")
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC | os.O_CLOEXEC, 0o600)
        try:
            os.write(fd, data)
            os.fsync(fd)
        finally:
            os.close(fd)
        os.replace(tmp, self.path)
        _fsync_dir(self.path.parent)
        self.syncs += 2
        self._fd = os.open(self.path, os.O_RDWR | os.O_CLOEXEC)

    def close(self) -> None:
        if self._fd is not None:
            os.close(self._fd)
            self._fd = None

    def log(self, line: str) -> None:
        """Append one line to the witness's own log (acceptances), durably."""
        fd = os.open(self.log_path, os.O_WRONLY | os.O_CREAT | os.O_APPEND | os.O_CLOEXEC, 0o600)
        try:
            os.write(fd, (line.rstrip("\n") + "\n").encode())
            os.fsync(fd)
        finally:
            os.close(fd)


def _slot(gen: int, state: WitnessState | None) -> bytes:
    body: dict[str, object] = {"version": WITNESS_VERSION, "gen": gen}
    if state is not None:
        body.update(journal_id=state.journal_id, seq=state.seq, head=state.head, stan=state.stan, batch=state.batch)
    data = json.dumps({**body, "check": _check(body)}).encode()
    assert len(data) < SLOT, "a witness slot holds one sector"
    return data.ljust(SLOT - 1) + b"\n"


def _parse(raw: bytes) -> tuple[int, WitnessState] | None:
    """(generation, state) of a valid, filled slot; None for a torn, damaged or empty one."""
    try:
        data = json.loads(raw)
        body = {k: data[k] for k in ("version", "gen", "journal_id", "seq", "head", "stan")}
        if "batch" in data:  # absent in a witness written before the field
            body["batch"] = data["batch"]
        if data["check"] != _check(body) or body["version"] != WITNESS_VERSION:
            return None
        return int(body["gen"]), WitnessState(journal_id=str(body["journal_id"]), seq=int(body["seq"]),
                                              head=str(body["head"]), stan=int(body["stan"]),
                                              batch=int(body.get("batch", 0)))
    except (ValueError, KeyError, TypeError):
        return None


def _check(body: dict[str, object]) -> str:
    return hashlib.sha256(json.dumps(body, sort_keys=True).encode()).hexdigest()


def _fsync_dir(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY | os.O_DIRECTORY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)
