"""The audit trail: one hash-chained record per privileged operation, granted or denied.

Each entry stores h_i = HMAC-SHA256(key, h_{i-1} || record_i) (RELIABILITY.md §6). Changing,
inserting or deleting a row breaks the chain at that row and `verify()` says where. A chain cannot
see a deleted *tail* by itself; the head hash is what settlement would anchor at the host (not
done yet, noted in docs/access.md). The key lives beside the PAN key, mode 0600.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime

from terminal.journal.core import JournalCore

__all__ = ["AuditTrail"]

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
_GENESIS = "0" * 64


class AuditTrail:
    def __init__(self, journal: JournalCore, key: bytes) -> None:
        self._journal, self._key = journal, key
        with journal._tx() as db:
            db.execute(_SCHEMA)

    def record(
        self, *, operation: str, actor: str, approver: str | None, txn_id: str | None, reason: str, result: str,
        at: datetime,
    ) -> str:
        """Append one entry (committed before the operation goes on); returns its hash."""
        with self._journal._tx() as db:
            row = db.execute("SELECT hash FROM audit ORDER BY seq DESC LIMIT 1").fetchone()
            previous = row[0] if row else _GENESIS
            fields = [at.isoformat(), operation, actor, approver, txn_id, reason, result]
            digest = self._link(previous, fields)
            db.execute("INSERT INTO audit (at, operation, actor, approver, txn_id, reason, result, hash)"
                       " VALUES (?, ?, ?, ?, ?, ?, ?, ?)", (*fields, digest))
        return digest

    def verify(self) -> int | None:
        """None when the whole chain holds; else the seq of the first entry that does not."""
        import hmac  # lazy, as in _link

        previous = _GENESIS
        for seq, *fields, digest in self._journal._db.execute(
            "SELECT seq, at, operation, actor, approver, txn_id, reason, result, hash FROM audit ORDER BY seq"
        ):
            if not hmac.compare_digest(self._link(previous, fields), digest):
                return int(seq)
            previous = digest
        return None

    def entries(self) -> list[dict[str, object]]:
        cur = self._journal._db.execute(
            "SELECT seq, at, operation, actor, approver, txn_id, reason, result FROM audit ORDER BY seq")
        names = [d[0] for d in cur.description]
        return [dict(zip(names, row, strict=True)) for row in cur]

    def _link(self, previous: str, fields: Sequence[object]) -> str:
        import hashlib  # lazy: not needed to start (json, hashlib and hmac cost ~8 ms of it)
        import hmac
        import json

        record = json.dumps(fields, ensure_ascii=False, separators=(",", ":"))
        return hmac.new(self._key, (previous + record).encode(), hashlib.sha256).hexdigest()
