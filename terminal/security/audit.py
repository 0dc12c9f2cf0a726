"""The audit trail: one hash-chained record per privileged decision, and its anchor outside the journal.

Each entry stores h_i = HMAC-SHA256(key, h_{i-1} || record_i) (RELIABILITY.md §6). Changing,
inserting or deleting a row in the middle breaks the chain at that row. The chain alone cannot see
its *last* rows deleted, every row deleted, the table dropped (it is re-created empty at the next
start), or a re-chain by someone who read the key from var/keys/: so after every entry the count,
the last seq and its hash are written to `var/audit.head` (fsynced, atomically replaced; see
files.py), and `check()` holds the journal to it. The head and count are also printed on every
settlement slip and sent to the host in the 0500's DE 48: the copies a person with write access
to var/ cannot rewrite (docs/access.md says what each anchor catches).

The entry is committed before its anchor is written: after a crash in between the journal is one
entry ahead of the anchor, which is accepted (the entry chains); the reverse would be a false alarm.
Once a check finds the trail broken the anchor is no longer moved, until a supervisor acknowledges
the break (`acknowledge`): that entry starts a new verified segment, and the anchor records it.
"""

from __future__ import annotations

import json
import sqlite3
from collections.abc import Sequence
from datetime import datetime
from pathlib import Path

from drivers.record import Record
from terminal.journal.core import JournalCore
from terminal.security.files import write_private

__all__ = ["GENESIS", "AuditCheck", "AuditTrail", "check_audit"]

_SCHEMA = """
CREATE TABLE IF NOT EXISTS audit (
    seq INTEGER PRIMARY KEY,
    at TEXT NOT NULL,
    operation TEXT NOT NULL,
    actor TEXT NOT NULL,
    approver TEXT,
    txn_id TEXT,
    reason TEXT NOT NULL,
    result TEXT NOT NULL,
    hash TEXT NOT NULL
)
"""
_COLUMNS = "seq, at, operation, actor, approver, txn_id, reason, result, hash"
GENESIS = "0" * 64


class AuditCheck(Record):
    count: int  # entries in the journal
    head: str  # hash of the last entry (GENESIS when there is none)
    reason: str  # why the trail does not hold; "" when it does


class Anchor(Record):
    count: int  # entries when it was written
    seq: int  # the last entry's seq then (0: none)
    head: str  # its hash
    since: int  # the first seq of the verified segment (0: from the start; > 0 after an acknowledged break)


class AuditTrail:
    def __init__(self, journal: JournalCore, key: bytes, anchor: Path | None = None) -> None:
        self._journal, self._key, self.anchor_path = journal, key, anchor
        self.broken = ""  # the reason of the last failed check
        with journal._tx() as db:
            db.execute(_SCHEMA)
            empty = db.execute("SELECT COUNT(*) FROM audit").fetchone()[0] == 0
        if anchor is not None and empty and not anchor.exists():
            self._write_anchor(Anchor(count=0, seq=0, head=GENESIS, since=0))  # a new till: before any entry

    def record(
        self, *, operation: str, actor: str, approver: str | None, txn_id: str | None, reason: str, result: str,
        at: datetime,
    ) -> str:
        """Append one entry (committed before the operation goes on), then move the anchor; returns its hash."""
        with self._journal._tx() as db:
            row = db.execute("SELECT hash FROM audit ORDER BY seq DESC LIMIT 1").fetchone()
            previous = row[0] if row else GENESIS
            fields = [at.isoformat(), operation, actor, approver, txn_id, reason, result]
            digest = _link(self._key, previous, fields)
            seq = db.execute("INSERT INTO audit (at, operation, actor, approver, txn_id, reason, result, hash)"
                             " VALUES (?, ?, ?, ?, ?, ?, ?, ?)", (*fields, digest)).lastrowid
            count = db.execute("SELECT COUNT(*) FROM audit").fetchone()[0]
        if self.anchor_path is not None and not self.broken:
            try:
                since = anchor.since if (anchor := _read_anchor(self.anchor_path)) is not None else 0
            except ValueError:  # never overwrite the evidence: the next check reports it
                self.broken = f"the anchor {self.anchor_path.name} cannot be read"
                return digest
            self._write_anchor(Anchor(count=int(count), seq=int(seq or 0), head=digest, since=since))
        return digest

    def check(self) -> AuditCheck:
        """The chain and the anchor, both; remembers a break in `broken`."""
        result = check_audit(self._journal._db, self._key, self.anchor_path)
        self.broken = result.reason
        return result

    def acknowledge(self, *, approver: str, reason: str, at: datetime) -> AuditCheck:
        """A supervisor saw the break: one entry says what was broken, and the anchor restarts there."""
        broken, self.broken = self.broken or self.check().reason, "pause anchoring"
        digest = self.record(operation="audit_ack", actor=approver, approver=approver, txn_id=None,
                             reason=reason, result=f"acknowledged: {broken}", at=at)
        seq, count = self._journal._db.execute("SELECT MAX(seq), COUNT(*) FROM audit").fetchone()
        if self.anchor_path is not None:
            self._write_anchor(Anchor(count=int(count), seq=int(seq), head=digest, since=int(seq)))
        return self.check()

    def verify(self) -> int | None:
        """The chain alone: None when it holds from the start; else the seq of the first entry that does not."""
        previous = GENESIS
        for seq, *fields, digest in self._journal._db.execute(f"SELECT {_COLUMNS} FROM audit ORDER BY seq"):
            if not _same(_link(self._key, previous, fields), digest):
                return int(seq)
            previous = digest
        return None

    def entries(self) -> list[dict[str, object]]:
        cur = self._journal._db.execute(
            "SELECT seq, at, operation, actor, approver, txn_id, reason, result FROM audit ORDER BY seq")
        names = [d[0] for d in cur.description]
        return [dict(zip(names, row, strict=True)) for row in cur]

    def head(self) -> tuple[int, str]:
        """(entries, hash of the last one): what the settlement slip prints."""
        count, = self._journal._db.execute("SELECT COUNT(*) FROM audit").fetchone()
        row = self._journal._db.execute("SELECT hash FROM audit ORDER BY seq DESC LIMIT 1").fetchone()
        return int(count), str(row[0]) if row else GENESIS

    def _write_anchor(self, anchor: Anchor) -> None:
        assert self.anchor_path is not None
        doc = {"count": anchor.count, "seq": anchor.seq, "head": anchor.head, "since": anchor.since}
        write_private(self.anchor_path, json.dumps(doc).encode())


def check_audit(db: sqlite3.Connection, key: bytes, anchor_path: Path | None) -> AuditCheck:
    """Verify the chain (from the anchor's segment start) and hold it to the anchor file. Read only:
    `till audit verify` runs it on a journal opened read-only."""
    present = db.execute("SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = 'audit'").fetchone()
    rows = list(db.execute(f"SELECT {_COLUMNS} FROM audit ORDER BY seq")) if present else []
    count, head = len(rows), rows[-1][-1] if rows else GENESIS

    def broken(reason: str) -> AuditCheck:
        return AuditCheck(count=count, head=head, reason=reason)

    anchor: Anchor | None = None
    if anchor_path is not None:
        try:
            anchor = _read_anchor(anchor_path)
        except ValueError:
            return broken(f"the anchor {anchor_path.name} cannot be read")
        if anchor is None and rows:
            return broken(f"the anchor {anchor_path.name} is missing")
    if not rows and (anchor is None or anchor.count == 0):
        return AuditCheck(count=0, head=GENESIS, reason="")  # a new till: nothing to hash (boot stays cheap)
    since = anchor.since if anchor is not None else 0
    previous = GENESIS
    for seq, *fields, digest in rows:
        if seq >= since and not _same(_link(key, previous, fields), digest):
            return broken(f"entry {seq} does not chain: it was changed, or an entry before it was deleted "
                          "or inserted, or the key changed")
        previous = digest
    if anchor is not None:
        if count < anchor.count:
            return broken(f"{anchor.count - count} of {anchor.count} anchored entries are missing "
                          "(the last ones deleted, or the table dropped)")
        at_anchor = next((r[-1] for r in rows if r[0] == anchor.seq), None) if anchor.seq else GENESIS
        if at_anchor is None or not _same(at_anchor, anchor.head):
            return broken(f"entry {anchor.seq} is not the one anchored: the trail was re-written or replaced")
    return AuditCheck(count=count, head=head, reason="")


def _read_anchor(path: Path) -> Anchor | None:
    try:
        doc = json.loads(path.read_bytes())
        return Anchor(count=int(doc["count"]), seq=int(doc["seq"]), head=str(doc["head"]), since=int(doc["since"]))
    except FileNotFoundError:
        return None
    except (OSError, KeyError, TypeError, ValueError) as exc:
        raise ValueError(f"unreadable anchor {path}") from exc


def _same(a: str, b: str) -> bool:
    import hmac  # lazy, as in _link

    return hmac.compare_digest(a.encode(), str(b).encode())


def _link(key: bytes, previous: str, fields: Sequence[object]) -> str:
    import hashlib  # lazy: not needed to start (json, hashlib and hmac cost ~8 ms of it)
    import hmac

    record = json.dumps(list(fields), ensure_ascii=False, separators=(",", ":"))
    return hmac.new(key, (previous + record).encode(), hashlib.sha256).hexdigest()
