"""A full disk for a journal, without filling one: its connection, wrapped, fails every write the
way SQLite does when the disk is full (`sqlite3.OperationalError("database or disk is full")`),
from the moment a chosen statement is first executed (`full_from`) or `full` is set."""

from __future__ import annotations

import sqlite3
from typing import Any, cast

from terminal.journal import Journal

__all__ = ["FullDisk"]

_WRITES = ("INSERT", "UPDATE", "DELETE", "REPLACE", "CREATE", "COMMIT")


class FullDisk:
    def __init__(self, journal: Journal, *, full_from: str | None = None) -> None:
        self._real: sqlite3.Connection = journal._db
        self.full_from = full_from
        self.full = False
        self.refused = 0  # writes refused so far
        self.journal = journal
        journal._db = cast(sqlite3.Connection, self)

    def execute(self, sql: str, params: Any = ()) -> sqlite3.Cursor:
        if self.full_from is not None and self.full_from in sql:
            self.full = True
        verb = sql.lstrip().split(None, 1)[0].upper()
        if self.full and verb in _WRITES:
            self.refused += 1
            # A write fails at the commit, as SQLite's WAL append does: the statement itself runs.
            if verb == "COMMIT":
                raise sqlite3.OperationalError("database or disk is full")
        return self._real.execute(sql, params)

    def free(self) -> None:
        """Room again: the journal gets its own connection back."""
        self.full, self.full_from = False, None
        self.journal._db = self._real

    def __getattr__(self, name: str) -> Any:
        return getattr(self._real, name)
