"""The local journal: every sale, reversal, cancellation and print, durable before it matters.

Money invariants (ARCHITECTURE.md §5), enforced here:
- `record_sent` allocates the STAN and commits the row as SENT (WAL, synchronous=FULL) before the
  request may leave; calling it again with the same txn_id returns the same STAN (retries reuse it).
- `record_timeout` marks TIMEOUT and queues the reversal in one transaction.
- An offline approval and its advice are one transaction.
- Only last 4 + a keyed hash of the PAN are stored; nothing else of the card.
- Capacity: at the profile's limit new sales are refused until the batch is settled.

Storage (a journal on a file; `:memory:` has none of these):
- one writer: `journal.lock` is held while the journal is open (lock.py, `JournalLocked`);
- at open the file is checked (integrity.py, `JournalDamaged`) and compared with its witness
  (witness.py, `JournalMismatch`); the witness is rewritten after every commit that moved the
  journal's change counter, so the STAN is durable outside the database before a request leaves;
- a free-space reserve: below it no new sale is journalled (`DISK_FULL_MESSAGE`);
- a reversal the disk will not take (full, I/O error) is owed from memory and delivered at once,
  like any other: the row it reverses is still SENT or AUTHORIZED on disk, so a restart reverses
  it again (the host acknowledges a repeated reversal with 00 or 25).
"""

from __future__ import annotations

import logging
import os
import sqlite3
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import datetime
from pathlib import Path
from typing import Any

from terminal.errors import JournalError
from terminal.journal.core import (
    JOURNAL_FULL_MESSAGE,
    REVERSAL_FAILED_MESSAGE,
    STAN_MAX,
    Capacity,
    TxnRecord,
    new_txn_id,
)
from terminal.journal.integrity import JournalDamaged, check_integrity, damaged
from terminal.journal.lock import JournalLock, JournalLocked
from terminal.journal.orders import EcrOrder, OrderConflict, OrderJournal
from terminal.journal.qr import QrJournal, QrOrder
from terminal.journal.queues import OwedMessages
from terminal.journal.signatures import SignatureJournal, StoredSignature
from terminal.journal.witness import (
    META_SCHEMA,
    Acceptance,
    Acceptor,
    JournalMismatch,
    WitnessFile,
    WitnessState,
    compare,
    journal_state,
    later_stan,
)

__all__ = [
    "DISK_FULL_MESSAGE", "JOURNAL_FULL_MESSAGE", "REVERSAL_FAILED_MESSAGE", "Acceptance", "Acceptor", "Capacity",
    "EcrOrder", "Journal", "JournalDamaged", "JournalLocked", "JournalMismatch", "OrderConflict", "QrOrder",
    "StoredSignature", "TxnRecord", "new_txn_id",
]

log = logging.getLogger(__name__)
DISK_FULL_MESSAGE = "磁盘空间不足，暂停交易 / disk nearly full, no new sales"
_META_NAMES = {s.partition("IF NOT EXISTS")[2].split()[0] for s in META_SCHEMA}


def disk_free_bytes(folder: Path) -> int:
    """Bytes an unprivileged process may still write in `folder`'s file system."""
    st = os.statvfs(folder)
    return st.f_bavail * st.f_frsize


class Journal(OwedMessages, QrJournal, SignatureJournal, OrderJournal):
    """The whole journal: the core (core.py), what is owed to the host (queues.py), and its
    storage guards (lock, integrity, witness, free-space reserve)."""

    def __init__(
        self, path: Path | str, *, capacity: int = 500, warn_ratio: float = 0.9, disk_reserve_bytes: int = 0,
        free_bytes: Callable[[], int] | None = None, accept: Acceptor | None = None,
    ) -> None:
        on_file = str(path) != ":memory:"
        where = Path(path)
        self.disk_reserve_bytes = disk_reserve_bytes
        self.free_bytes = free_bytes or (lambda: disk_free_bytes(where.parent))
        # Reversals the disk would not take (txn_id -> [state, reason code, attempts]): owed from memory
        # this session; their rows are still SENT or AUTHORIZED on disk, so the next boot owes them again.
        self._owed_in_memory: dict[str, list[Any]] = {}
        self._witness: WitnessFile | None = None  # set once the journal matched it: commits keep it current
        self._witnessed_seq = -1
        self._witness_waits = False  # this commit leaves the witness to the next one (see record_answer)
        self._witness_file: WitnessFile | None = None
        self._lock: JournalLock | None = None
        if on_file:
            where.parent.mkdir(parents=True, exist_ok=True)
            self._lock = JournalLock(where.with_suffix(".lock"))
        opened = False
        try:
            try:
                super().__init__(path, capacity=capacity, warn_ratio=warn_ratio)
                opened = True
            except JournalError as exc:
                cause = exc.__cause__
                if isinstance(cause, sqlite3.DatabaseError) and not _transient(cause):
                    raise damaged(where, f"{type(cause).__name__}: {cause}") from exc
                raise
            if on_file:
                check_integrity(self._db, where)
                self._witness_file = WitnessFile(where.with_suffix(".witness"))
                self._guard(self._witness_file, accept)
        except BaseException:
            if opened:
                self._db.close()
            self._release()
            raise

    def close(self) -> None:
        try:
            super().close()
        finally:
            self._release()

    def _release(self) -> None:
        if self._witness_file is not None:
            self._witness_file.close()
        if self._lock is not None:
            self._lock.release()
            self._lock = None

    # -- the witness ------------------------------------------------------------------------
    def identity(self) -> str | None:
        """The journal's id (the witness's `journal_id`); None for a journal in memory."""
        state = journal_state(self._db)
        return None if state is None else state.journal_id

    def _guard(self, witness_file: WitnessFile, accept: Acceptor | None) -> None:
        """Compare the journal with its witness; refuse a mismatch unless a supervisor accepted it."""
        present = {name for (name,) in self._db.execute("SELECT name FROM sqlite_master")}
        if not _META_NAMES.issubset(present):
            with self._tx() as db:
                for statement in META_SCHEMA:
                    db.execute(statement)
        state = journal_state(self._db)
        try:
            witness = witness_file.read()
            problem = compare(state, witness, where=self.path)
        except JournalMismatch as exc:
            witness, problem = None, str(exc)
        if problem is not None:
            if accept is None:
                raise JournalMismatch(
                    "交易流水与见证记录不符，已停止交易，需主管确认 / the journal does not match its witness:"
                    f" {problem}. Selling is stopped: a supervisor reconciles the open batch with the host,"
                    " then accepts this journal as it is: `till journal accept --var DIR --supervisor ID --reason TEXT`"
                    " (docs/reliability.md, 'Journal witness')")
            if isinstance(accept, Acceptance) or not callable(accept):  # a record is no permission
                raise JournalMismatch(f"{problem}: a journal is accepted through the access control"
                                      " (`till journal accept`), not with a hand-made record")
            self._accept(witness_file, problem, state, witness, accept(self, problem))
        elif state is None:  # a new journal, or one from before the witness: it gets its identity
            if witness is None:  # the witness first: a kill before the commit leaves one at change 0
                counters = dict(self._db.execute("SELECT name, value FROM counters").fetchall())
                witness = WitnessState(journal_id=new_txn_id(), seq=0, head=os.urandom(16).hex(),
                                       stan=int(counters["stan"]), batch=int(counters["batch"]))
                witness_file.write(witness)
            with self._tx() as db:
                db.execute("INSERT INTO journal_meta VALUES (?, 0, ?)", (witness.journal_id, witness.head))
        if witness is not None:  # never reuse a STAN the host may have seen, nor a batch it closed
            self._continue_stan(witness.stan)
            self._continue_batch(witness.batch)
        self._witness = witness_file
        if witness is None or journal_state(self._db) != witness:
            self._write_witness()
        else:
            self._witnessed_seq = witness.seq

    def _accept(self, witness_file: WitnessFile, problem: str, state: WitnessState | None,
                witness: WitnessState | None, accept: Acceptance) -> None:
        """A supervisor's deliberate decision: the journal is taken as it is, and that is on record."""
        detail = f"journal accepted by {accept.approver} ({accept.reason}): {problem}"
        with self._tx() as db:
            if state is None:
                db.execute("INSERT INTO journal_meta VALUES (?, 0, ?)", (new_txn_id(), os.urandom(16).hex()))
            self._incident(db, "journal_accepted", None, detail, datetime.fromisoformat(accept.at))
        witness_file.log(f"{accept.at} {detail}")
        log.warning("%s", detail)

    def _continue_stan(self, witness_stan: int) -> None:
        current = int(self._db.execute("SELECT value FROM counters WHERE name = 'stan'").fetchone()[0])
        if later_stan(current, witness_stan, STAN_MAX) != current:  # a write only when the journal is behind
            with self._tx() as db:
                db.execute("UPDATE counters SET value = ? WHERE name = 'stan'", (witness_stan,))

    def _continue_batch(self, witness_batch: int) -> None:
        """An accepted old copy goes on with the host's batch. Rows left in older batches stay where
        they are (the supervisor reconciled them with the host), off this batch's totals."""
        current = self.current_batch()
        if witness_batch > current:
            with self._tx() as db:
                db.execute("UPDATE counters SET value = ? WHERE name = 'batch'", (witness_batch,))

    @property
    def witness_syncs(self) -> int:
        """The witness's fsyncs so far (with `commits`: what durability has cost, for the benchmarks)."""
        return 0 if self._witness is None else self._witness.syncs

    def _write_witness(self) -> None:
        state = journal_state(self._db)
        if self._witness is None or state is None:
            return
        try:
            self._witness.write(state)
        except OSError as exc:  # the journal has it; the witness catches up at the next commit or boot
            log.warning("journal witness not written: %s", exc)
            return
        self._witnessed_seq = state.seq

    @contextmanager
    def _tx(self) -> Iterator[sqlite3.Connection]:
        try:
            with super()._tx() as db:
                yield db
        except JournalError:
            # A COMMIT that failed (a full disk) can leave the transaction open; end it, or every
            # later BEGIN would fail too.
            if self._db.in_transaction:
                try:
                    self._db.execute("ROLLBACK")
                except sqlite3.Error as exc:
                    log.error("journal rollback failed: %s", exc)
            raise
        # Committed: bring the witness up to date when the change counter moved (cheap read).
        if self._witness is not None and not self._witness_waits:
            row = self._db.execute("SELECT seq FROM journal_meta").fetchone()
            if row is not None and int(row[0]) != self._witnessed_seq:
                self._write_witness()

    def record_answer(self, txn_id: str, *, approved: bool, response_code: str, auth_code: str | None,
                      rrn: str | None, at: datetime, card_must_confirm: bool = False) -> TxnRecord:
        """A chip approval (SENT -> AUTHORIZED, the card has yet to confirm) does not write the
        witness: the next commit does (the card's confirmation, or the reversal when it refuses).
        Until then the journal is one change ahead of its witness, as after a kill between a commit
        and its witness write. What that lets go unnoticed is the loss of that one change, and it
        changes nothing: a row found SENT or AUTHORIZED at boot is reversed all the same (98 or 06),
        nothing was acknowledged in between (the sale is approved only once the card confirms, and
        that commit is witnessed), and the STAN was witnessed with the SENT row before the request
        left. Every other answer (an approval without a card to confirm it, a decline) is final and
        witnessed at once. One fdatasync less per chip sale (3 witness writes -> 2)."""
        self._witness_waits = approved and card_must_confirm
        try:
            return super().record_answer(txn_id, approved=approved, response_code=response_code, auth_code=auth_code,
                                         rrn=rrn, at=at, card_must_confirm=card_must_confirm)
        finally:
            self._witness_waits = False

    # -- free space -------------------------------------------------------------------------
    def disk_refusal(self) -> str | None:
        """Why no new sale may start for want of disk space (None: there is room)."""
        if self.disk_reserve_bytes <= 0:
            return None
        try:
            free = self.free_bytes()
        except OSError as exc:
            return f"{DISK_FULL_MESSAGE} ({exc})"
        if free < self.disk_reserve_bytes:
            return f"{DISK_FULL_MESSAGE} ({free // 1_000_000} MB free, {self.disk_reserve_bytes // 1_000_000} MB kept)"
        return None

    def record_sent(self, *args: Any, **kwargs: Any) -> TxnRecord:
        if (refusal := self.disk_refusal()) is not None and self.get(str(kwargs.get("txn_id"))) is None:
            raise JournalError(refusal)  # a new sale: nothing has left for the host
        return super().record_sent(*args, **kwargs)

    def record_offline(self, *args: Any, **kwargs: Any) -> TxnRecord:
        if (refusal := self.disk_refusal()) is not None:
            raise JournalError(refusal)
        return super().record_offline(*args, **kwargs)

    # -- reversals the disk would not take ------------------------------------------------------
    def record_timeout(self, txn_id: str, *, reason: str, at: datetime, reason_code: str = "98") -> None:
        try:
            super().record_timeout(txn_id, reason=reason, at=at, reason_code=reason_code)
        except JournalError as exc:
            self._owe_in_memory(txn_id, reason_code, exc)

    def queue_reversal(self, txn_id: str, *, reason: str, reason_code: str, at: datetime) -> None:
        try:
            super().queue_reversal(txn_id, reason=reason, reason_code=reason_code, at=at)
        except JournalError as exc:
            self._owe_in_memory(txn_id, reason_code, exc)

    def recover_unanswered(self, *, at: datetime) -> list[str]:
        try:
            return super().recover_unanswered(at=at)
        except JournalError as exc:
            sent = [str(r[0]) for r in self._db.execute(
                "SELECT txn_id FROM transactions WHERE state = 'SENT' AND entry_mode != 'qr' ORDER BY rowid")]
            unconfirmed = [str(r[0]) for r in self._db.execute(
                "SELECT txn_id FROM transactions WHERE state = 'AUTHORIZED' ORDER BY rowid")]
            for txn_id in sent:
                self._owe_in_memory(txn_id, "98", exc)
            for txn_id in unconfirmed:
                self._owe_in_memory(txn_id, "06", exc)
            return sent + unconfirmed

    def _owe_in_memory(self, txn_id: str, reason_code: str, exc: JournalError, *, attempts: int = 0,
                       state: str = "PENDING") -> None:
        if not _disk_failed(exc):
            raise exc  # not the disk: a mistake of the caller's
        log.error("reversal of %s kept in memory: the journal cannot take it (%s)", txn_id, exc)
        owed = self._owed_in_memory.setdefault(txn_id, [state, reason_code, attempts])
        owed[0] = state

    def _merged(self, on_disk: list[str], states: tuple[str, ...]) -> list[str]:
        """The queue on disk, with what memory knows better (delivered, escalated, or never written)."""
        memory = self._owed_in_memory
        kept = [t for t in on_disk if t not in memory or memory[t][0] in states]
        return kept + [t for t, r in memory.items() if r[0] in states and t not in on_disk]

    def pending_reversals(self) -> list[str]:
        return self._merged(super().pending_reversals(), ("PENDING",))

    def unresolved_reversals(self) -> list[str]:
        return self._merged(super().unresolved_reversals(), ("PENDING", "FAILED"))

    def reversal_info(self, txn_id: str) -> tuple[str, str, int]:
        if (owed := self._owed_in_memory.get(txn_id)) is not None:
            return str(owed[0]), str(owed[1]), int(owed[2])
        return super().reversal_info(txn_id)

    def reversal_attempt(self, txn_id: str, *, at: datetime) -> int:
        if (owed := self._owed_in_memory.get(txn_id)) is None:
            try:
                return super().reversal_attempt(txn_id, at=at)
            except JournalError as exc:  # not counted on disk: it goes out all the same (reversals repeat safely)
                state, code, attempts = super().reversal_info(txn_id)
                self._owe_in_memory(txn_id, code, exc, attempts=attempts, state=state)
                owed = self._owed_in_memory[txn_id]
        owed[2] += 1
        return int(owed[2])

    def record_reversed(self, txn_id: str, *, at: datetime) -> None:
        try:  # the disk may have room again; if not, the next boot reverses the row once more
            super().record_reversed(txn_id, at=at)
        except JournalError as exc:
            self._owe_in_memory(txn_id, "98", exc, state="DONE")
            return
        if txn_id in self._owed_in_memory:
            self._owed_in_memory[txn_id][0] = "DONE"

    def escalate_reversal(self, txn_id: str, *, at: datetime) -> None:
        owed = self._owed_in_memory.get(txn_id)
        try:
            if owed is None:
                super().escalate_reversal(txn_id, at=at)
            else:
                self.record_incident("reversal_failed", txn_id=txn_id, detail=REVERSAL_FAILED_MESSAGE, at=at)
        except JournalError as exc:
            _, code, attempts = self.reversal_info(txn_id)
            self._owe_in_memory(txn_id, code, exc, attempts=attempts, state="FAILED")
        if owed is not None:
            owed[0] = "FAILED"


def _disk_failed(exc: JournalError) -> bool:
    """A write the disk refused (full, I/O), as opposed to a rule of the journal's."""
    return isinstance(exc.__cause__, sqlite3.Error)

def _transient(exc: sqlite3.DatabaseError) -> bool:
    """Errors of the moment (a lock, a full disk, I/O), not of the file's content."""
    text = str(exc).lower()
    return isinstance(exc, sqlite3.OperationalError) and any(
        w in text for w in ("locked", "busy", "disk is full", "disk i/o", "unable to open", "readonly"))
