"""Is the journal file sound? Checked at every boot, before anything is read from it.

SQLite opens a damaged file and answers queries on it: a file that fails `PRAGMA
integrity_check` still boots and sells, and one byte of invalid UTF-8 in a text column raises at
every read of that row. Both are found here at boot, and the terminal refuses to sell
(`JournalDamaged`) with what to do. integrity_check (it also cross-checks every index against its
table, which quick_check does not) and then a read of every live table (bounded by the journal's
capacity; reading decodes every text) cost, best of 40 on the loaded dev box with 500 sales in
the batch: integrity_check ~1.7 ms (quick_check ~1.6 ms, so the full check is used), the read
~2 ms (one `group_concat` text per table, decoded once, measured slower: ~3.7 ms). A journal
open went from ~0.8 ms to ~6-10 ms with these checks and the witness.
"""

from __future__ import annotations

import sqlite3
from pathlib import Path

from terminal.errors import JournalError

__all__ = ["LIVE_TABLES", "JournalDamaged", "check_integrity", "damaged"]

# What boot and a sale read; each is bounded by the batch (the rest grow with history and are
# read only for reports, where a damaged row is an error of that report).
LIVE_TABLES = ("counters", "transactions", "reversals", "advices", "prints", "journal_meta")


class JournalDamaged(JournalError):
    """The journal file is damaged: nothing may be sold on it."""


def damaged(path: Path | str, detail: str) -> JournalDamaged:
    where = Path(path)
    return JournalDamaged(
        f"交易流水已损坏，已停止交易：请保留 {where.parent} 原样，联系技术支持 / journal damaged ({detail}): "
        f"selling is stopped. Keep {where.parent} as it is (copy it, delete nothing) and call support: "
        "reconcile the open batch with the host's records, move the damaged file aside, then a supervisor "
        "accepts the new journal (docs/reliability.md, 'Damaged journal')")


def check_integrity(db: sqlite3.Connection, path: Path | str) -> None:
    """Raise JournalDamaged when the file fails quick_check or a live row cannot be read."""
    try:
        problems = [str(r[0]) for r in db.execute("PRAGMA integrity_check")]
        if problems != ["ok"]:
            raise damaged(path, "integrity_check: " + "; ".join(problems[:3]))
        present = {name for (name,) in db.execute("SELECT name FROM sqlite_master WHERE type = 'table'")}
        for table in LIVE_TABLES:
            if table in present:
                db.execute(f"SELECT * FROM {table}").fetchall()  # decodes every text: bad UTF-8 raises
    except sqlite3.Error as exc:
        raise damaged(path, f"{type(exc).__name__}: {exc}") from exc
