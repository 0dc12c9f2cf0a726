"""The gateway's statement (对账单) as the terminal reads it: WeChat Pay's CSV habit.

A header row, one row per payment or refund with every field prefixed by a backtick (so a
spreadsheet keeps a 28-digit order number as text), then the trailer: a header row starting
`总交易单数` and one row of totals. A statement that does not have that shape, or whose trailer
count disagrees with its rows, is one `StatementError` naming what is wrong — never a half-read
statement a reconciliation could trust.
"""

from __future__ import annotations

import csv
from typing import Final

from drivers.record import Record

__all__ = ["TRAILER_FIRST", "BillStatement", "StatementError", "fen", "parse_statement"]

TRAILER_FIRST: Final = "总交易单数"
MAX_ROWS: Final = 1_000_000


class StatementError(ValueError):
    """The statement does not parse (the message says where)."""


class BillStatement(Record):
    header: tuple[str, ...]
    rows: tuple[dict[str, str], ...]
    totals: dict[str, str]


def fen(yuan: str) -> int:
    """"12.34" -> 1234, "-0.07" -> -7; StatementError for anything else."""
    sign, text = (-1, yuan[1:]) if yuan.startswith("-") else (1, yuan)
    whole, dot, cents = text.partition(".")
    if not (whole.isascii() and whole.isdigit() and dot and len(cents) == 2 and cents.isdigit() and len(whole) < 13):
        raise StatementError("an amount is not yuan with two decimals")
    return sign * (int(whole) * 100 + int(cents))


def _field(value: str, where: str) -> str:
    if not value.startswith("`"):
        raise StatementError(f"{where}: a field without its backtick")
    return value[1:]


def parse_statement(text: str) -> BillStatement:
    try:
        lines = list(csv.reader(text.splitlines()))
    except csv.Error as exc:
        raise StatementError(f"statement is not CSV: {exc}") from None
    lines = [line for line in lines if line]
    if len(lines) < 3:
        raise StatementError("statement too short: a header, the trailer header and its totals at least")
    if len(lines) > MAX_ROWS:
        raise StatementError("statement has too many rows")
    header = tuple(lines[0])
    if not header or any(not name or name.startswith("`") for name in header):
        raise StatementError("statement header is missing or malformed")
    ends = [i for i, line in enumerate(lines) if line and line[0] == TRAILER_FIRST]
    if len(ends) != 1 or ends[0] != len(lines) - 2:
        raise StatementError(f"statement has no single trailer ({TRAILER_FIRST}...) followed by one totals row")
    trailer, values = lines[-2], lines[-1]
    if len(values) != len(trailer):
        raise StatementError("trailer totals do not match the trailer header")
    totals = {name: _field(v, "trailer") for name, v in zip(trailer, values, strict=True)}
    rows = []
    for number, line in enumerate(lines[1:-2], start=2):
        if len(line) != len(header):
            raise StatementError(f"row {number} has {len(line)} fields, the header {len(header)}")
        rows.append({name: _field(v, f"row {number}") for name, v in zip(header, line, strict=True)})
    count = totals.get(TRAILER_FIRST, "")
    if not (count.isascii() and count.isdigit()) or int(count) != len(rows):
        raise StatementError(f"trailer says {count[:12]!r} rows, the statement has {len(rows)}")
    return BillStatement(header=header, rows=tuple(rows), totals=totals)
