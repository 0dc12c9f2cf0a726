"""The acquirer simulator's books as JSON tables (emulator/books.py keeps them on disk).

What a restart must not lose, table by table (keys are JSON lists, see `key_of`):

- `entry` (terminal, STAN, date): every ledger entry, with the answer a retry replays;
  `tombstone`: reversals of originals never seen; `upload` (terminal, batch, STAN, date): 0320
  detail; `settlement` (terminal, batch); `signature` (terminal, STAN, date): stored 0820s;
- `reply` (MTI, terminal, STAN, date): the first answer to every remembered request, so a
  request repeated after the restart gets the same answer (or 94 for other content);
- `cryptogram`: the approved ARQCs (PAN digest, PSN, ARQC), so a replay is still refused;
- `batch` (terminal): the batch the host expects; `anchor` (terminal): the audit anchor of its
  last settlement; `regression`: audit trails seen shrinking;
- `counter`: the last auth code, RRN and working-key serial issued.

Not kept: the working keys themselves and who is signed on. Keys are never written to disk
(house rule), and a terminal signs on at every start; a terminal that did not restart with the
host sends its next MACed request under keys the host no longer has, gets A0, signs on and
sends it again — what a real host's key loss looks like. The key serial is kept, so keys issued
after the restart are never the ones issued before it. Faults (decline_next...) are a test's
settings, not books: a restart clears them. Nothing here holds a PAN, track data, PIN block or
key: answers never echo DE 2/35/52, and a card is its digest.
"""

from __future__ import annotations

import base64
import json
from typing import Any

from drivers.acquirer.events import HostMessage
from drivers.acquirer.spec import BatchTotals
from drivers.record import as_dict
from emulator.acquirer.ledger import Key, LedgerEntry, Settlement, SignatureUpload, UploadedDetail
from emulator.books import BooksError, Tables, key_of

__all__ = ["Restored", "decode", "encode_put"]

Put = tuple[str, str, Any]


def _message(message: HostMessage) -> dict[str, Any]:
    text = {k: v for k, v in message.fields.items() if isinstance(v, str)}
    binary = {k: v.hex() for k, v in message.fields.items() if isinstance(v, bytes)}
    return {"mti": message.mti, "text": text, "hex": binary}


def _message_of(data: dict[str, Any]) -> HostMessage:
    fields: dict[str, str | bytes] = dict(data["text"])
    fields.update({k: bytes.fromhex(v) for k, v in data["hex"].items()})
    return HostMessage(mti=data["mti"], fields=fields)


def encode_put(table: str, key: tuple[object, ...], value: Any) -> Put:
    """One put of the `table`, its value as JSON (records by field, bytes as hex or base64)."""
    data: Any
    if table == "entry":
        data = {**as_dict(value), "answer": _message(value.answer)}
    elif table in ("upload", "settlement"):
        data = as_dict(value)
        if table == "settlement":
            data["totals"] = as_dict(value.totals)
    elif table == "signature":
        data = {**as_dict(value), "receipt_tlv": value.receipt_tlv.hex(),
                "image": base64.b64encode(value.image).decode("ascii")}
    elif table == "reply":
        content, answer = value
        data = {"content": list(content), "answer": _message(answer)}
    else:  # tombstone, cryptogram, batch, anchor, regression, counter: plain JSON already
        data = value
    return table, key_of(*(k.hex() if isinstance(k, bytes) else k for k in key)), data


class Restored:
    """The acquirer's state as the books last held it (what `Acquirer.use_folder` takes over)."""

    def __init__(self) -> None:
        self.entries: dict[Key, LedgerEntry] = {}
        self.tombstones: set[Key] = set()
        self.uploads: dict[tuple[str, int], dict[tuple[str, str], UploadedDetail]] = {}
        self.settled: dict[tuple[str, int], Settlement] = {}
        self.signatures: dict[Key, SignatureUpload] = {}
        self.replies: dict[tuple[str, str, str, str], tuple[tuple[str | None, ...], HostMessage]] = {}
        self.cryptograms: set[tuple[str, str, bytes]] = set()
        self.batches: dict[str, int] = {}
        self.anchors: dict[str, tuple[int, str]] = {}
        self.regressions: list[tuple[str, int, int, int]] = []
        self.counters: dict[str, int] = {}


def _key3(key: list[Any]) -> Key:
    terminal_id, stan, date = key
    return str(terminal_id), str(stan), str(date)


def decode(tables: Tables, where: str) -> Restored:
    """The tables read back into records; BooksError (naming `where`) for one that does not fit."""
    state = Restored()
    table = key = ""
    try:
        for table, rows in tables.items():
            for key, value in rows.items():
                _decode_row(state, table, json.loads(key), value)
    except (KeyError, TypeError, ValueError, AttributeError) as exc:
        raise BooksError(f"{where}: {table} {key} is not an acquirer record ({type(exc).__name__}: {exc}); "
                         "the books are left as they are") from exc
    return state


def _decode_row(state: Restored, table: str, key: list[Any], value: Any) -> None:
    if table == "entry":
        fields = dict(value, answer=_message_of(value["answer"]))
        if fields["original"] is not None:
            fields["original"] = tuple(fields["original"])
        entry = LedgerEntry(**fields)
        state.entries[entry.key] = entry
    elif table == "tombstone":
        state.tombstones.add(_key3(key))
    elif table == "upload":
        terminal_id, batch, stan, date = key
        state.uploads.setdefault((terminal_id, int(batch)), {})[(stan, date)] = UploadedDetail(**value)
    elif table == "settlement":
        audit = value["audit"]
        settlement = Settlement(**dict(value, totals=BatchTotals(**value["totals"]),
                                       audit=None if audit is None else (int(audit[0]), str(audit[1]))))
        state.settled[(settlement.terminal_id, settlement.batch)] = settlement
    elif table == "signature":
        upload = SignatureUpload(**dict(value, receipt_tlv=bytes.fromhex(value["receipt_tlv"]),
                                        image=base64.b64decode(value["image"], validate=True)))
        state.signatures[upload.key] = upload
    elif table == "reply":
        mti, terminal_id, stan, date = key
        state.replies[(mti, terminal_id, stan, date)] = (tuple(value["content"]), _message_of(value["answer"]))
    elif table == "cryptogram":
        digest, psn, arqc = key
        state.cryptograms.add((str(digest), str(psn), bytes.fromhex(arqc)))
    elif table == "batch":
        state.batches[str(key[0])] = int(value)
    elif table == "anchor":
        state.anchors[str(key[0])] = (int(value[0]), str(value[1]))
    elif table == "regression":
        terminal_id, batch, before, now = value
        state.regressions.append((str(terminal_id), int(batch), int(before), int(now)))
    elif table == "counter":
        state.counters[str(key[0])] = int(value)
    else:
        raise ValueError(f"unknown table {table!r}")
