"""The acquirer link's ISO 8583 layout: one module, shared by the terminal and the simulator.

`FIELDS` is the single source of truth for the data elements; `SPEC` (the dict pyiso8583 wants)
and the content checks are derived from it, and docs/host-link.md prints the same table. The
codes (processing, response, reversal reason), the MTI pairs and the private sub-field layouts
(DE 61 original transaction, DE 62 working keys, DE 63 batch totals) live here too, so the
builders in terminal/host/messages.py and the simulator read and write them the same way.

Layout choices:
- MTI and every text field are ASCII; variable lengths are ASCII digits (LL = 2, LLL = 3 bytes).
  ASCII PANs cost a few bytes over BCD but make a hexdump readable and golden vectors checkable
  by hand, which matters more on a TCP link than the bytes.
- Bitmaps, the PIN block (52), ICC data (55) and the MAC (64) are binary. pyiso8583 takes binary
  data as hex text; the codec converts so that `HostMessage` carries real `bytes`.
- Fields 65-128 are not defined: a secondary bitmap naming one is rejected as unknown. So the
  network management function (ISO DE 70) travels in DE 3, as many POS host specs do.

To add a field, add a row to `FIELDS`; the codec, the checks and the docs follow.
"""

from __future__ import annotations

import re
from datetime import datetime
from typing import Any, Final

from drivers.errors import LocalProtocolError, RemoteProtocolError
from drivers.record import Record
from drivers.sensitive import Secret

__all__ = [
    "BINARY_FIELDS",
    "FIELDS",
    "FINANCIAL_CODES",
    "MTI_FIELD",
    "NETWORK_CODES",
    "RESPONSE_CODES",
    "RESPONSE_MTI",
    "REVERSAL_REASONS",
    "SETTLEMENT_CODES",
    "SPEC",
    "BatchTotals",
    "FieldFormat",
    "OriginalRef",
    "WorkingKeys",
    "audit_anchor_field",
    "check_value",
    "content_ok",
    "parse_audit_anchor",
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
    "48": FieldFormat(content="ans", length=999, var=3, desc="Additional data, private: audit anchor (0500)"),
    "49": FieldFormat(content="n", length=3, desc="Currency code, transaction"),
    "52": FieldFormat(content="b", length=8, desc="PIN data (PIN block)"),
    "55": FieldFormat(content="b", length=255, var=3, desc="ICC system related data (EMV TLV)"),
    "60": FieldFormat(content="ans", length=999, var=3, desc="Reserved private: batch number"),
    "61": FieldFormat(content="n", length=16, desc="Reserved private: original batch, STAN, date"),
    "62": FieldFormat(content="ans", length=999, var=3, desc="Reserved private: working keys"),
    "63": FieldFormat(content="ans", length=999, var=3, desc="Reserved private: batch totals"),
    "64": FieldFormat(content="b", length=8, desc="Message authentication code (MAC)"),
}

BINARY_FIELDS: Final = frozenset(key for key, fmt in FIELDS.items() if fmt.content == "b")

# -- codes ------------------------------------------------------------------------------------
# DE 3 of financial messages (0200, 0220, 0400/0401, 0320): the ISO 8583:1987 transaction types
# most POS host specs use (00 goods and services, 02 debit adjustment = void, 20 returns).
FINANCIAL_CODES: Final = {"sale": "000000", "void": "020000", "refund": "200000"}
# DE 3 of 0800: the network management function (ISO puts it in DE 70, which we do not define).
NETWORK_CODES: Final = {"sign-on": "920000", "sign-off": "930000", "echo": "990000"}
# DE 3 of 0500: the first settlement request, and the one that follows a batch upload.
SETTLEMENT_CODES: Final = {"settle": "920000", "settle-after-upload": "960000"}

# Requests the terminal sends -> the response class that answers them (repeats share it).
RESPONSE_MTI: Final = {
    "0200": "0210", "0201": "0210",
    "0220": "0230", "0221": "0230",
    "0320": "0330",
    "0400": "0410", "0401": "0410",
    "0500": "0510",
    "0800": "0810",
}

# DE 39 as this link uses it (PROTOCOLS.md §8 plus the host's own outcomes).
RESPONSE_CODES: Final = {
    "00": "approved",
    "05": "do not honour",
    "12": "invalid transaction",
    "13": "invalid amount",
    "25": "unable to locate the original transaction",
    "30": "format error",
    "51": "insufficient funds",
    "54": "expired card",
    "55": "incorrect PIN",
    "58": "transaction not permitted to terminal",
    "64": "original amount incorrect",
    "91": "issuer unavailable",
    "94": "duplicate transmission",
    "95": "reconciliation error: batch out of balance",
    "96": "system malfunction",
    "A0": "MAC error: sign on again",
}
# DE 39 of a 0400/0401 request: why the terminal reverses (CUP practice).
REVERSAL_REASONS: Final = {
    "98": "no answer from the host in time",
    "06": "the card declined the completion (second GENERATE AC)",
    "96": "an answer arrived but could not be used (system malfunction)",
}

_PATTERNS: Final = {
    "n": re.compile(r"[0-9]*"),
    "an": re.compile(r"[A-Za-z0-9 ]*"),
    "ans": re.compile(r"[\x20-\x7e]*"),
    "z": re.compile(r"[0-9=D]*"),  # ISO 7813 track 2 without sentinels; '=' or 'D' separates
}
_HEX: Final = re.compile(r"[0-9A-F]*")


def content_ok(key: str, value: str) -> bool:
    """Does a text field's value fit its content class? (Lengths are pyiso8583's job.)"""
    return _PATTERNS[FIELDS[key].content].fullmatch(value) is not None


def _digits(value: int, width: int, name: str) -> str:
    if not 0 <= value < 10**width:
        raise LocalProtocolError(f"{name} does not fit {width} digits")
    return f"{value:0{width}d}"


# -- DE 61: the original transaction of a void, a refund or a batch-upload detail ---------------
class OriginalRef(Record):
    """DE 61 = batch (n6) + STAN (n6) + local date MMDD (n4) of the original transaction: the
    host's key for it is (DE 41, STAN, date)."""

    batch: int
    stan: int
    date: str  # MMDD, as the original's DE 13

    @classmethod
    def of(cls, *, batch: int, stan: int, when: datetime) -> OriginalRef:
        """The reference of a transaction made at local time `when` (its DE 13)."""
        return cls(batch=batch, stan=stan, date=when.strftime("%m%d"))

    def to_field(self) -> str:
        if not (len(self.date) == 4 and self.date.isascii() and self.date.isdigit()):
            raise LocalProtocolError("an original date is MMDD")
        return _digits(self.batch, 6, "original batch") + _digits(self.stan, 6, "original STAN") + self.date

    @classmethod
    def from_field(cls, value: str) -> OriginalRef:
        if len(value) != 16 or not (value.isascii() and value.isdigit()):
            raise RemoteProtocolError("DE 61 is 16 digits: batch, STAN, date")
        return cls(batch=int(value[:6]), stan=int(value[6:12]), date=value[12:])


# -- DE 63: settlement totals --------------------------------------------------------------------
_TOTALS_KINDS: Final = ("sales", "voids", "refunds")
_COUNT_WIDTH: Final = 4
_AMOUNT_WIDTH: Final = 12
_TOTALS_SIZE: Final = len(_TOTALS_KINDS) * (_COUNT_WIDTH + _AMOUNT_WIDTH)


class BatchTotals(Record):
    """A batch's totals by type. DE 63 = for sales, voids, refunds in turn: count (n4) + amount in
    minor units (n12), 48 digits. Sales include offline sales forwarded by advice and sales that
    were later voided (the void is counted under voids); reversed transactions count nowhere."""

    sales_count: int = 0
    sales_amount: int = 0
    voids_count: int = 0
    voids_amount: int = 0
    refunds_count: int = 0
    refunds_amount: int = 0

    @property
    def net_amount(self) -> int:
        """What the merchant is owed: sales less voids and refunds."""
        return self.sales_amount - self.voids_amount - self.refunds_amount

    def plus(self, kind: str, amount_minor: int) -> BatchTotals:
        """These totals with one more transaction of `kind` ("sale", "void" or "refund")."""
        name = f"{kind}s"
        if name not in _TOTALS_KINDS:
            raise LocalProtocolError(f"kind must be one of {[k[:-1] for k in _TOTALS_KINDS]}")
        values = {n: getattr(self, n) for n in self._fields}
        values[f"{name}_count"] += 1
        values[f"{name}_amount"] += amount_minor
        return BatchTotals(**values)

    def to_field(self) -> str:
        parts = []
        for kind in _TOTALS_KINDS:
            parts.append(_digits(getattr(self, f"{kind}_count"), _COUNT_WIDTH, f"{kind} count"))
            parts.append(_digits(getattr(self, f"{kind}_amount"), _AMOUNT_WIDTH, f"{kind} amount"))
        return "".join(parts)

    @classmethod
    def from_field(cls, value: str) -> BatchTotals:
        if len(value) != _TOTALS_SIZE or not (value.isascii() and value.isdigit()):
            raise RemoteProtocolError(f"DE 63 totals are {_TOTALS_SIZE} digits")
        values: dict[str, int] = {}
        pos = 0
        for kind in _TOTALS_KINDS:
            values[f"{kind}_count"] = int(value[pos:pos + _COUNT_WIDTH])
            pos += _COUNT_WIDTH
            values[f"{kind}_amount"] = int(value[pos:pos + _AMOUNT_WIDTH])
            pos += _AMOUNT_WIDTH
        return cls(**values)


# -- DE 62: working keys from a sign-on ------------------------------------------------------------
_KEY_HEX: Final = 32  # a double-length key, as hex
_CHECK_HEX: Final = 8


def check_value(key_hex: str) -> str:
    """The KCV of a clear key, as hex: the first 4 bytes of 3DES-ECB(key, 8 zero bytes)."""
    from drivers.acquirer.keys import kcv  # lazy: pyemv/cryptography load at the first sign-on

    return kcv(bytes.fromhex(key_hex)).hex().upper()


class WorkingKeys(Record):
    """The clear working keys of a sign-on (32 hex each, kept in `Secret`). On the wire, DE 62 of
    an approved 0810 = PIN key under the TMK (32 hex) + its KCV (8 hex) + MAC key under the TMK
    (32 hex) + its KCV (8 hex), 80 characters; the KCV is of the clear key (drivers/acquirer/keys.py)."""

    pin_key: Secret[str]
    mac_key: Secret[str]

    def to_field(self, tmk: bytes | None = None) -> str:
        """DE 62 with the keys encrypted under `tmk` (default: the published TEST_TMK)."""
        from drivers.acquirer.keys import TEST_TMK, encrypt_key

        parts = []
        for key in (self.pin_key.reveal(), self.mac_key.reveal()):
            if len(key) != _KEY_HEX or _HEX.fullmatch(key) is None:
                raise LocalProtocolError(f"a working key is {_KEY_HEX} upper-case hex digits")
            parts += [encrypt_key(tmk or TEST_TMK, bytes.fromhex(key)).hex().upper(), check_value(key)]
        return "".join(parts)

    @classmethod
    def from_field(cls, value: str, tmk: bytes | None = None) -> WorkingKeys:
        """The clear keys of DE 62, decrypted under `tmk` (default TEST_TMK); a KCV that does not
        match (wrong TMK, corrupted field) is a RemoteProtocolError that quotes nothing."""
        from drivers.acquirer.keys import TEST_TMK, decrypt_key

        size = _KEY_HEX + _CHECK_HEX
        if len(value) != 2 * size or _HEX.fullmatch(value) is None:
            raise RemoteProtocolError(f"DE 62 working keys are {2 * size} upper-case hex digits")
        keys = []
        for start in (0, size):
            wrapped, check = value[start:start + _KEY_HEX], value[start + _KEY_HEX:start + size]
            clear = decrypt_key(tmk or TEST_TMK, bytes.fromhex(wrapped)).hex().upper()
            if check_value(clear) != check:
                raise RemoteProtocolError("a working key in DE 62 fails its check value")
            keys.append(Secret(clear))
        return cls(pin_key=keys[0], mac_key=keys[1])

    def wrapped_pin_key(self, tmk: bytes | None = None) -> tuple[Secret[bytes], bytes]:
        """The PIN key as it travelled (under `tmk`, default TEST_TMK) and its KCV: what the
        terminal hands the PIN pad, which holds the TMK and decrypts it inside."""
        from drivers.acquirer.keys import TEST_TMK, encrypt_key, kcv

        clear = bytes.fromhex(self.pin_key.reveal())
        return Secret(encrypt_key(tmk or TEST_TMK, clear)), kcv(clear)

    @property
    def mac_key_bytes(self) -> Secret[bytes]:
        return Secret(bytes.fromhex(self.mac_key.reveal()))

    @property
    def pin_key_bytes(self) -> Secret[bytes]:
        return Secret(bytes.fromhex(self.pin_key.reveal()))


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


# -- DE 48 of a 0500: the terminal's audit-trail anchor ---------------------------------------
_AUDIT_TAG = "AUDH"


def audit_anchor_field(count: int, head: str) -> str:
    """`AUDH` + the audit trail's entry count (10 digits) + its head hash (64 hex): the host keeps
    the last one per terminal, so a trail that lost entries is seen at the next settlement."""
    if not 0 <= count < 10**10 or len(head) != 64 or _HEX_LOWER.fullmatch(head) is None:
        raise LocalProtocolError("an audit anchor is a count and a 64-hex head")
    return f"{_AUDIT_TAG}{count:010d}{head}"


def parse_audit_anchor(value: str | None) -> tuple[int, str] | None:
    """(count, head) from DE 48, or None when it holds no audit anchor."""
    if value is None or len(value) != 78 or not value.startswith(_AUDIT_TAG) or not value[4:14].isdigit():
        return None
    head = value[14:]
    return (int(value[4:14]), head) if _HEX_LOWER.fullmatch(head) else None


_HEX_LOWER = re.compile("[0-9a-f]{64}")
