"""The acquirer link's ISO 8583 layout: one module, shared by the terminal and the simulator.

`FIELDS` is the single source of truth for the data elements; `SPEC` (the dict pyiso8583 wants)
and the content checks are derived from it, and docs/host-link.md prints the same table. The
codes (processing, response, reversal reason), the MTI pairs and the private sub-field layouts
(DE 61 original transaction, DE 62 working keys, DE 63 batch totals, DE 55 of an 0820: the
receipt TLV) live here too, so the
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

from drivers.emv import tlv
from drivers.emv.tlv import TLVError
from drivers.errors import LocalProtocolError, RemoteProtocolError
from drivers.record import Record, field
from drivers.sensitive import Secret

__all__ = [
    "BINARY_FIELDS",
    "FIELDS",
    "FINANCIAL_CODES",
    "MTI_FIELD",
    "MTI_FIELDS",
    "NETWORK_CODES",
    "RECEIPT_MANDATORY_TAGS",
    "RECEIPT_TLV_MAX",
    "RESPONSE_CODES",
    "RESPONSE_MTI",
    "REVERSAL_REASONS",
    "SETTLEMENT_CODES",
    "SPEC",
    "BatchTotals",
    "FieldFormat",
    "OriginalRef",
    "ReceiptTlv",
    "WorkingKeys",
    "audit_anchor_field",
    "binary_fields",
    "check_value",
    "content_ok",
    "field_format",
    "parse_audit_anchor",
    "spec_for",
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
    "15": FieldFormat(content="n", length=4, desc="Date, settlement (MMDD)"),
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

# A private field whose layout depends on the MTI: DE 62 of an 0820 is the signature image
# (binary, PROTOCOLS.md §4.1), where an 0810's carries the working keys as hex text. The wire
# form (LLL ASCII length + bytes) is the same; only the content class differs.
MTI_FIELDS: Final[dict[str, dict[str, FieldFormat]]] = {
    "0820": {"62": FieldFormat(content="b", length=999, var=3, desc="Reserved private: signature image (0820)")},
}


def field_format(mti: str, key: str) -> FieldFormat | None:
    """The format of DE `key` in a message of `mti` (None: not in the spec)."""
    return MTI_FIELDS.get(mti, {}).get(key) or FIELDS.get(key)


def binary_fields(mti: str) -> frozenset[str]:
    """The binary data elements of a message of `mti`."""
    merged = {**FIELDS, **MTI_FIELDS.get(mti, {})}
    return frozenset(key for key, fmt in merged.items() if fmt.content == "b")

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
    "0820": "0830",
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


def text_rules(mti: str) -> dict[str, tuple[FieldFormat, re.Pattern[str] | None]]:
    """Every DE of a message of `mti` with its format and, for a text field, the pattern of its
    content class (None: binary): what `content_ok` and `field_format` say, looked up once per MTI
    for the codec's per-field checks."""
    rules = _RULES.get(mti)
    if rules is None:
        merged = {**FIELDS, **MTI_FIELDS.get(mti, {})}
        rules = {key: (fmt, None if fmt.content == "b" else _PATTERNS[fmt.content]) for key, fmt in merged.items()}
        if len(_RULES) < 64:  # MTIs are few; a stream of odd ones is not kept
            _RULES[mti] = rules
    return rules


_RULES: dict[str, dict[str, tuple[FieldFormat, re.Pattern[str] | None]]] = {}


def content_ok(key: str, value: str, mti: str = "") -> bool:
    """Does a text field's value fit its content class? (Lengths are pyiso8583's job.)"""
    fmt = field_format(mti, key) or FIELDS[key]
    return _PATTERNS[fmt.content].fullmatch(value) is not None


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
_MTI_SPECS: Final = {mti: {**SPEC, **{key: _entry(fmt) for key, fmt in fields.items()}}
                     for mti, fields in MTI_FIELDS.items()}


def spec_for(mti: str) -> dict[str, dict[str, Any]]:
    """The pyiso8583 spec of a message of `mti` (SPEC, with that MTI's own private layouts)."""
    return _MTI_SPECS.get(mti, SPEC)


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


# -- DE 55 of an 0820: the receipt TLV (not EMV data) --------------------------------------------
# Tags are two-byte BER tags FFxx (drivers/emv/tlv.py encodes them). The value formats are ours
# (no public primary source fixes them): text is ASCII unless said, the merchant name is GBK, the
# date-time is BCD, the AID and cryptogram are binary. In tag order:
#
# | Tag  | Content | Format |
# |------|---------|--------|
# | FF00 | merchant name | GBK, 1-40 bytes |
# | FF01 | transaction type: the original's DE 3 processing code | ASCII n6 (`000000` sale) |
# | FF02 | operator (cashier) number | ASCII n2 |
# | FF06 | date-time of the transaction, YYYYMMDDhhmmss | BCD, 7 bytes |
# | FF07 | authorisation code | ASCII an6 |
# | FF0A | currency, ISO 4217 numeric | ASCII n3 |
# | FF0B | cardholder phone (optional) | ASCII digits, 1-20 |
# | FF22 | AID (chip and tap; absent for a swipe) | binary, 5-16 bytes |
# | FF23 | application cryptogram (optional) | binary, 8 bytes |
# | FF60 | original trace (STAN) | ASCII n6 |
# | FF61 | original batch | ASCII n6 |
# | FF62 | original RRN | ASCII an12 |
# | FF63 | original local date MMDD (its DE 13) | ASCII n4 |
# | FF64 | original authorisation code | ASCII an6 |
# | FF65 | original terminal id | ASCII ans8 |
# | FF70 | receipt print count (0 on a paperless terminal) | ASCII n1-2 |
#
# `ReceiptTlv.encode()` writes it, `ReceiptTlv.decode()` reads it back (a peer's bytes that break
# the table are a TLVError, quoting no value). terminal/host/receipt_tlv.py has the terminal's
# one-call builder; the simulator decodes it (emulator/acquirer/rules.py).
RECEIPT_TLV_MAX: Final = 255  # DE 55 is b..255
_MAX_MERCHANT_NAME: Final = 40  # bytes of GBK
RECEIPT_MANDATORY_TAGS: Final = ("FF00", "FF01", "FF02", "FF06", "FF07", "FF0A",
                                  "FF60", "FF61", "FF62", "FF63", "FF64", "FF65", "FF70")
_RECEIPT_DATE_TIME: Final = "%Y%m%d%H%M%S"
# Text tags: (attribute, pattern). Checked both ways, so what is written can always be read.
_RECEIPT_TEXT: Final = {
    "FF01": ("txn_type", re.compile(r"[0-9]{6}")),
    "FF02": ("operator", re.compile(r"[0-9]{2}")),
    "FF07": ("auth_code", re.compile(r"[A-Za-z0-9 ]{6}")),
    "FF0A": ("currency", re.compile(r"[0-9]{3}")),
    "FF0B": ("phone", re.compile(r"[0-9]{1,20}")),
    "FF60": ("original_stan", re.compile(r"[0-9]{6}")),
    "FF61": ("original_batch", re.compile(r"[0-9]{6}")),
    "FF62": ("original_rrn", re.compile(r"[A-Za-z0-9 ]{12}")),
    "FF63": ("original_date", re.compile(r"[0-9]{4}")),
    "FF64": ("original_auth_code", re.compile(r"[A-Za-z0-9 ]{6}")),
    "FF65": ("terminal_id", re.compile(r"[\x20-\x7e]{8}")),
    "FF70": ("print_count", re.compile(r"[0-9]{1,2}")),
}
_RECEIPT_ORDER: Final = ("FF00", "FF01", "FF02", "FF06", "FF07", "FF0A", "FF0B", "FF22", "FF23",
                 "FF60", "FF61", "FF62", "FF63", "FF64", "FF65", "FF70")


class ReceiptTlv(Record):
    """The receipt fields an 0820 carries. Text fields as the table in the module docstring."""

    merchant_name: str
    txn_type: str  # the original's DE 3 processing code
    operator: str
    when: datetime  # the transaction's local date-time
    auth_code: str
    currency: str
    original_stan: str
    original_batch: str
    original_rrn: str
    original_date: str  # MMDD, the original's DE 13
    original_auth_code: str
    terminal_id: str
    print_count: str = "1"
    phone: str | None = field(default=None, repr=False)  # personal data: never in a repr or a log
    aid: bytes | None = None
    cryptogram: bytes | None = None

    def encode(self) -> bytes:
        """The DE 55 bytes; a value outside the table is a ValueError naming the tag."""
        items: dict[str, bytes] = {}
        try:
            name = self.merchant_name.encode("gbk")
        except UnicodeEncodeError:
            raise ValueError("FF00 merchant name has characters GBK cannot write") from None
        if not 1 <= len(name) <= _MAX_MERCHANT_NAME:
            raise ValueError(f"FF00 merchant name is 1-{_MAX_MERCHANT_NAME} bytes of GBK")
        items["FF00"] = name
        items["FF06"] = tlv.encode_n(self.when.strftime(_RECEIPT_DATE_TIME), 7)
        for tag, (attr, pattern) in _RECEIPT_TEXT.items():
            value: str | None = getattr(self, attr)
            if value is None:
                continue
            if not (value.isascii() and pattern.fullmatch(value)):
                raise ValueError(f"{tag} {attr} does not match {pattern.pattern}")
            items[tag] = value.encode("ascii")
        if self.aid is not None:
            if not 5 <= len(self.aid) <= 16:
                raise ValueError("FF22 AID is 5-16 bytes")
            items["FF22"] = self.aid
        if self.cryptogram is not None:
            if len(self.cryptogram) != 8:
                raise ValueError("FF23 cryptogram is 8 bytes")
            items["FF23"] = self.cryptogram
        data = tlv.encode([(tag, items[tag]) for tag in _RECEIPT_ORDER if tag in items])
        if len(data) > RECEIPT_TLV_MAX:
            raise ValueError(f"the receipt TLV is {len(data)} bytes; DE 55 holds {RECEIPT_TLV_MAX}")
        return data

    @classmethod
    def decode(cls, data: bytes) -> ReceiptTlv:
        """Read DE 55 of an 0820. Missing mandatory tags, unknown or repeated tags and values
        outside the table are a TLVError (never quoting a value)."""
        objects = tlv.decode(data)
        items: dict[str, bytes] = {}
        for obj in objects:
            if obj.tag not in _RECEIPT_ORDER:
                raise TLVError(f"tag {obj.tag} is not a receipt tag")
            if obj.tag in items:
                raise TLVError(f"tag {obj.tag} appears twice")
            items[obj.tag] = obj.value
        missing = [tag for tag in RECEIPT_MANDATORY_TAGS if tag not in items]
        if missing:
            raise TLVError(f"receipt TLV lacks {missing}")
        values: dict[str, object] = {}
        for tag, (attr, pattern) in _RECEIPT_TEXT.items():
            if tag not in items:
                continue
            text = items[tag].decode("ascii", "replace")
            if pattern.fullmatch(text) is None:
                raise TLVError(f"tag {tag} is not {attr} in its format")
            values[attr] = text
        try:
            values["merchant_name"] = items["FF00"].decode("gbk")
            values["when"] = datetime.strptime(tlv.decode_n(items["FF06"]), _RECEIPT_DATE_TIME)
        except (UnicodeDecodeError, ValueError):
            raise TLVError("FF00 is not GBK text or FF06 not a BCD date-time") from None
        if len(items["FF06"]) != 7 or not 1 <= len(items["FF00"]) <= _MAX_MERCHANT_NAME:
            raise TLVError("FF00 or FF06 has the wrong length")
        aid, cryptogram = items.get("FF22"), items.get("FF23")
        if (aid is not None and not 5 <= len(aid) <= 16) or (cryptogram is not None and len(cryptogram) != 8):
            raise TLVError("FF22 is 5-16 bytes and FF23 8")
        return cls(aid=aid, cryptogram=cryptogram, **values)  # type: ignore[arg-type]
