"""The acquirer link's ISO 8583 field layout: one table, shared by the terminal and the simulator.

`FIELDS` is the single source of truth; `SPEC` (the dict pyiso8583 wants) and the content checks
are derived from it, and docs/host-link.md prints the same table. Layout choices:

- MTI and every text field are ASCII; variable lengths are ASCII digits (LL = 2, LLL = 3 bytes).
  ASCII PANs cost a few bytes over BCD but make a hexdump readable and golden vectors checkable
  by hand, which matters more on a TCP link than the bytes.
- Bitmaps, the PIN block (52), ICC data (55) and the MAC (64) are binary. pyiso8583 takes binary
  data as hex text; the codec converts so that `HostMessage` carries real `bytes`.
- Fields 65-128 are not defined: a secondary bitmap naming one is rejected as unknown.

To add a field, add a row to `FIELDS`; the codec, the checks and the docs follow.
"""

from __future__ import annotations

import re
from typing import Any, Final

from drivers.record import Record

__all__ = [
    "BINARY_FIELDS",
    "FIELDS",
    "MTI_FIELD",
    "SPEC",
    "FieldFormat",
    "content_ok",
]


class FieldFormat(Record):
    """One data element: ISO content class, length rule and what it carries."""

    content: str  # "n" digits, "an" alphanumeric (+ space), "ans" printable ASCII, "z" track 2, "b" binary
    length: int  # exact length when `var` is 0, else the maximum
    var: int = 0  # 0 fixed, 2 LLVAR, 3 LLLVAR (ASCII digits)
    desc: str


MTI_FIELD: Final = "t"

FIELDS: Final[dict[str, FieldFormat]] = {
    "2": FieldFormat(content="n", length=19, var=2, desc="Primary account number (PAN)"),
    "3": FieldFormat(content="n", length=6, desc="Processing code"),
    "4": FieldFormat(content="n", length=12, desc="Amount, transaction (minor units)"),
    "11": FieldFormat(content="n", length=6, desc="System trace audit number (STAN)"),
    "12": FieldFormat(content="n", length=6, desc="Time, local transaction (hhmmss)"),
    "13": FieldFormat(content="n", length=4, desc="Date, local transaction (MMDD)"),
    "14": FieldFormat(content="n", length=4, desc="Date, expiration (YYMM)"),
    "22": FieldFormat(content="n", length=3, desc="POS entry mode"),
    "23": FieldFormat(content="n", length=3, desc="Card sequence number"),
    "25": FieldFormat(content="n", length=2, desc="POS condition code"),
    "35": FieldFormat(content="z", length=37, var=2, desc="Track 2 data"),
    "37": FieldFormat(content="an", length=12, desc="Retrieval reference number (RRN)"),
    "38": FieldFormat(content="an", length=6, desc="Authorisation identification response"),
    "39": FieldFormat(content="an", length=2, desc="Response code"),
    "41": FieldFormat(content="ans", length=8, desc="Card acceptor terminal identification"),
    "42": FieldFormat(content="ans", length=15, desc="Card acceptor identification code"),
    "49": FieldFormat(content="n", length=3, desc="Currency code, transaction"),
    "52": FieldFormat(content="b", length=8, desc="PIN data (PIN block)"),
    "55": FieldFormat(content="b", length=255, var=3, desc="ICC system related data (EMV TLV)"),
    "60": FieldFormat(content="ans", length=999, var=3, desc="Reserved private: batch number"),
    "62": FieldFormat(content="ans", length=999, var=3, desc="Reserved private"),
    "63": FieldFormat(content="ans", length=999, var=3, desc="Reserved private: totals"),
    "64": FieldFormat(content="b", length=8, desc="Message authentication code (reserved)"),
}

BINARY_FIELDS: Final = frozenset(key for key, fmt in FIELDS.items() if fmt.content == "b")

_PATTERNS: Final = {
    "n": re.compile(r"[0-9]*"),
    "an": re.compile(r"[A-Za-z0-9 ]*"),
    "ans": re.compile(r"[\x20-\x7e]*"),
    "z": re.compile(r"[0-9=D]*"),  # ISO 7813 track 2 without sentinels; '=' or 'D' separates
}


def content_ok(key: str, value: str) -> bool:
    """Does a text field's value fit its content class? (Lengths are pyiso8583's job.)"""
    return _PATTERNS[FIELDS[key].content].fullmatch(value) is not None


def _entry(fmt: FieldFormat) -> dict[str, Any]:
    return {
        "data_enc": "b" if fmt.content == "b" else "ascii",
        "len_enc": "ascii",
        "len_type": fmt.var,
        "max_len": fmt.length,
        "desc": fmt.desc,
    }


# pyiso8583 needs "h" even without a header: max_len 0 disables it.
SPEC: Final[dict[str, dict[str, Any]]] = {
    "h": {"data_enc": "ascii", "len_enc": "ascii", "len_type": 0, "max_len": 0, "desc": "Header"},
    "t": {"data_enc": "ascii", "len_enc": "ascii", "len_type": 0, "max_len": 4, "desc": "Message type"},
    "p": {"data_enc": "b", "len_enc": "ascii", "len_type": 0, "max_len": 8, "desc": "Bitmap, primary"},
    "1": {"data_enc": "b", "len_enc": "ascii", "len_type": 0, "max_len": 8, "desc": "Bitmap, secondary"},
    **{key: _entry(fmt) for key, fmt in FIELDS.items()},
}
