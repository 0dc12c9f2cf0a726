"""EMV for the emulated card and issuer: real cryptograms with pyemv, PIN blocks, test keys.

Everything here is **TEST ONLY**: the keys below are published in this file and in
docs/card-reader-protocol.md, so nothing they protect is secret. They exist so that the
emulated card computes a real ARQC, the host simulator verifies it and answers with a real ARPC,
and the card checks that ARPC in the second GENERATE AC, as a real card and issuer would.

Cryptogram version: Visa CVN 10 (PROTOCOLS.md §7), via `pyemv.cvn.VisaCVN10`:
- ICC master keys derived from the issuer master key with EMV option A (PAN + PSN),
- AC (ARQC / TC / AAC) = ISO 9797-1 MAC algorithm 3 over 9F02 9F03 9F1A 95 5F2A 9A 9C 9F37 82
  9F36 + CVR (Visa padding), with no session key,
- ARPC method 1: 3DES(ARQC XOR ARC), sent as tag 91 = ARPC || ARC.

Users: emulator/card_reader/emulator.py (the card side: `first_ac`, `second_ac`, `encrypt_pin_block`)
and the acquirer simulator (the issuer side: `verify_arqc` / `verify_arqc_items`, `make_arpc`, `verify_pin_block`).
"""

from __future__ import annotations

import datetime
import functools
import os
import warnings
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

import drivers.emv.tlv as tlv

if TYPE_CHECKING:
    from pyemv.cvn import VisaCVN10
from drivers.card_reader.events import Cvm, StartRead
from drivers.errors import RemoteProtocolError
from drivers.record import Record
from emulator.card_reader.cards import TestCard

__all__ = [
    "CONTACTLESS_TAGS",
    "ICC_TAGS",
    "ISSUER_MASTER_KEY",
    "TEST_PIN_KEY",
    "TEST_PIN_KEY_ID",
    "ChipSession",
    "SecondAc",
    "encrypt_pin_block",
    "field_55",
    "first_ac",
    "generate_ac",
    "make_arpc",
    "pin_block_format0",
    "second_ac",
    "verify_arqc",
    "verify_arqc_items",
    "verify_pin_block",
]

# pyemv 1.5 uses 3DES through cryptography's old import path and with two-key (16-byte) keys,
# as EMV does; cryptography >= 47 flags both with a CryptographyDeprecationWarning on every call.
# They are pyemv's, not ours: pyproject.toml ignores them in the tests, the filter below keeps
# `till` quiet. pyemv (and cryptography under it) load on the first cryptogram, not at start-up.
@functools.cache
def _pyemv() -> tuple[Any, type[VisaCVN10]]:
    from cryptography.utils import CryptographyDeprecationWarning
    from pyemv import tools
    from pyemv.cvn import VisaCVN10

    warnings.filterwarnings("ignore", category=CryptographyDeprecationWarning, module=r"pyemv\.")
    return tools, VisaCVN10


# TEST ONLY. PROTOCOLS.md §7: the issuer master key for AC, SMI and SMC of every test card.
ISSUER_MASTER_KEY = bytes.fromhex("0123456789ABCDEFFEDCBA9876543210")
# TEST ONLY. The PIN pad's PIN encryption key (a double-length 3DES key, fixed: no DUKPT), and
# the name the pad reports it under in PinEntered.key_id.
TEST_PIN_KEY = bytes.fromhex("FEDCBA98765432100123456789ABCDEF")
TEST_PIN_KEY_ID = "OPENTILL-TEST-TPK-1"

# Field 55 of a contact read, in the order the §7 vector uses (plus 5F24, and 9F34 at the end).
ICC_TAGS = (
    "5A", "57", "5F24", "5F34", "82", "95", "9A", "9C", "9F02", "5F2A", "9F1A", "9F36", "9F37",
    "9F26", "9F27", "9F10", "9F34",
)  # fmt: skip
# A contactless (qVSDC-like) read reports the track 2 equivalent rather than 5A/5F24.
CONTACTLESS_TAGS = tuple(t for t in ICC_TAGS if t not in {"5A", "5F24"})

_AIP = bytes.fromhex("1800")  # SDA + cardholder verification supported, as in the §7 vector
_IAD_HEAD = bytes.fromhex("06010A")  # IAD length 6, derivation key index 01, CVN 0A (= 10)
# Card verification results (Visa CVR, 4 bytes with its length byte), byte 2 as we read VIS:
# bits 8-7 = 2nd GENERATE AC (00 AAC, 01 TC, 10 not requested), bits 6-5 = 1st GENERATE AC
# (10 ARQC), bit 4 = issuer authentication performed and failed.
_CVR_ARQC, _CVR_TC, _CVR_AAC, _CVR_ISSUER_AUTH_FAILED = 0xA0, 0x60, 0x20, 0x08
_TVR_ISSUER_AUTH_FAILED = bytes.fromhex("0000000040")  # TVR byte 5 bit 7
_CID = {"arqc": b"\x80", "tc": b"\x40", "aac": b"\x00"}
# 9F34 CVM results: method, condition, result (00 unknown: verified online; 02 successful).
_CVM_RESULTS = {Cvm.ONLINE_PIN: "020000", Cvm.SIGNATURE: "1E0000", Cvm.NONE: "1F0002"}
_AC_TAGS = ("9F02", "9F03", "9F1A", "95", "5F2A", "9A", "9C", "9F37", "82", "9F36")
_ZERO_AMOUNT = bytes(6)


def _last_day(year: int, month: int) -> int:
    """The last day of a card's expiry month (5F24 is YYMMDD)."""
    first_of_next = datetime.date(year + month // 12, month % 12 + 1, 1)
    return (first_of_next - datetime.timedelta(days=1)).day


def _psn_digits(psn: str) -> str:
    digits = psn if psn.isdigit() else "0"
    return digits.zfill(2)[-2:]


@functools.lru_cache(maxsize=64)
def _card_keys(pan: str, psn: str) -> VisaCVN10:
    """The card's ICC master keys (EMV option A), derived once per card: they depend on the PAN
    and the PSN only (CVN 10 has no session key), and pyemv never changes them after __init__."""
    return _pyemv()[1](
        iss_mk_ac=ISSUER_MASTER_KEY,
        iss_mk_smi=ISSUER_MASTER_KEY,
        iss_mk_smc=ISSUER_MASTER_KEY,
        pan=pan,
        psn=psn,
    )


# The card and the issuer compute the same cryptograms from the same bytes (the card's ARQC, which
# the issuer verifies; the issuer's ARPC, which the card checks): a pure function of its inputs, so
# the second computation is a lookup. Keys are whole inputs: a changed byte is a new computation.
@functools.lru_cache(maxsize=256)
def _ac(pan: str, psn: str, values: tuple[bytes, ...], cvr: bytes) -> bytes:
    v9f02, v9f03, v9f1a, v95, v5f2a, v9a, v9c, v9f37, v82, v9f36 = values
    return bytes(_card_keys(pan, psn).generate_ac(
        tag_9f02=v9f02, tag_9f03=v9f03, tag_9f1a=v9f1a, tag_95=v95, tag_5f2a=v5f2a, tag_9a=v9a, tag_9c=v9c,
        tag_9f37=v9f37, tag_82=v82, tag_9f36=v9f36, cvr=cvr,
    ))


@functools.lru_cache(maxsize=256)
def _arpc(pan: str, psn: str, arqc: bytes, code: bytes) -> bytes:
    return bytes(_card_keys(pan, psn).generate_arpc(arqc, code))


def generate_ac(data: Mapping[str, bytes], cvr: bytes, *, pan: str, psn: str) -> bytes:
    """The 8-byte application cryptogram (ARQC, TC or AAC) over `data` (tag -> value; a missing
    9F03 counts as zero, as in the §7 vector) and the 4-byte CVR."""
    get = data.get
    values = tuple(bytes(get(tag, _ZERO_AMOUNT if tag == "9F03" else b"")) for tag in _AC_TAGS)
    return _ac(pan, _psn_digits(psn), values, bytes(cvr))


def _arc(arc: bytes | str) -> bytes:
    raw = arc.encode("ascii") if isinstance(arc, str) else bytes(arc)
    if len(raw) != 2:
        raise ValueError("an authorisation response code is 2 bytes")
    return raw


def make_arpc(arqc: bytes, arc: bytes | str, *, pan: str, psn: str) -> bytes:
    """Issuer authentication data for tag 91: ARPC (method 1, 8 bytes) || ARC (2 bytes).
    The issuer answers the card's ARQC with it; `pan`/`psn` pick the card's key."""
    code = _arc(arc)
    return _arpc(pan, _psn_digits(psn), bytes(arqc), code) + code


def verify_arqc(icc_data: bytes, pan: str, psn: str) -> bool:
    """Issuer side: does 9F26 in this field 55 match the cryptogram the card's key gives?
    False for a wrong cryptogram and for ICC data that lacks what CVN 10 needs."""
    try:
        items = tlv.decode_dict(icc_data)
    except RemoteProtocolError:
        return False
    return verify_arqc_items(items, pan, psn)


def verify_arqc_items(items: Mapping[str, bytes], pan: str, psn: str) -> bool:
    """verify_arqc of field 55 already decoded (tag -> value): the host has read it for its checks."""
    iad, arqc = items.get("9F10", b""), items.get("9F26", b"")
    if len(iad) < 7 or iad[2] != 0x0A or len(arqc) != 8 or not all(t in items for t in _AC_TAGS if t != "9F03"):
        return False
    return generate_ac(items, iad[3:7], pan=pan, psn=psn) == arqc


# -- the card side -----------------------------------------------------------------------------
class ChipSession(Record):
    """What the card remembers between the first and the second GENERATE AC. Holds card data:
    never logged (the repr shows the card's catalogue name and the ATC only)."""

    card: TestCard
    atc: bytes
    values: Mapping[str, bytes]  # the first AC's data objects, by tag

    def __repr__(self) -> str:
        return f"ChipSession(card={self.card.name!r}, atc={self.atc.hex()})"


class SecondAc(Record):
    approved: bool  # TC (True) or AAC
    issuer_authenticated: bool  # tag 91 was present and its ARPC verified
    icc_data: bytes


def first_ac(card: TestCard, read: StartRead, *, country: str, today: datetime.date, atc: int,
             unpredictable: bytes | None = None) -> ChipSession:
    """The first GENERATE AC: the card's data, the transaction's (amount and currency from the
    StartRead, the terminal's unpredictable number 9F37), and a real ARQC (9F26). Without an
    unpredictable number (a host that sent none) one is drawn from a CSPRNG."""
    year, month = 2000 + int(card.expiry[:2]), int(card.expiry[2:])
    amount = tlv.encode_n(read.amount_minor, 6)
    counter = atc.to_bytes(2, "big")
    values = {
        "5A": tlv.encode_cn(card.pan),
        "57": tlv.encode_track2(card.track2),
        "5F24": tlv.encode_n(f"{card.expiry}{_last_day(year, month):02d}", 3),
        "5F34": tlv.encode_n(card.pan_sequence or "0", 1),
        "82": _AIP,
        "95": bytes(5),  # TVR: no failed checks
        "9A": tlv.encode_n(today.strftime("%y%m%d"), 3),
        "9C": b"\x00",  # purchase
        "9F02": amount,
        "5F2A": tlv.encode_n(read.currency, 2),
        "9F1A": tlv.encode_n(country, 2),
        "9F36": counter,
        "9F37": unpredictable or os.urandom(4),  # the terminal's (a scenario's comes from its seed)
        "9F27": _CID["arqc"],
        "9F10": _IAD_HEAD + bytes([0x03, _CVR_ARQC, 0, 0]),
        "9F34": bytes.fromhex(_CVM_RESULTS[card.cvm]),
    }
    values["9F26"] = generate_ac(values, values["9F10"][3:], pan=card.pan, psn=card.pan_sequence)
    return ChipSession(card=card, atc=counter, values=values)


def field_55(session: ChipSession, *, contactless: bool) -> bytes:
    """The ICC data a read reports: ICC_TAGS for chip, the CONTACTLESS_TAGS subset for tap."""
    tags = CONTACTLESS_TAGS if contactless else ICC_TAGS
    values = session.values
    return tlv.encode([(tag, values[tag]) for tag in tags])


def second_ac(session: ChipSession, *, host_approved: bool, arc: str, issuer_data: bytes) -> SecondAc:
    """The card's answer to the host: TC only when the host approved, the ARC is 00 and the ARPC
    in tag 91 verifies for this card and this ARQC; otherwise AAC."""
    card, values = session.card, session.values
    code = arc.encode("ascii")
    expected = make_arpc(values["9F26"], code, pan=card.pan, psn=card.pan_sequence)
    authenticated = bool(issuer_data) and issuer_data == expected
    # Y3 "unable to go online": the card approves offline on its own risk rules (here: any card
    # that does not need an online PIN), with no issuer data to check.
    offline = arc == "Y3" and not issuer_data and card.cvm.value != "online-pin"
    approved = host_approved and ((arc == "00" and authenticated) or offline)
    cvr = (_CVR_TC if approved else _CVR_AAC) | (_CVR_ISSUER_AUTH_FAILED if issuer_data and not authenticated else 0)
    tvr = _TVR_ISSUER_AUTH_FAILED if issuer_data and not authenticated else bytes(5)
    iad = _IAD_HEAD + bytes([0x03, cvr, 0, 0])
    data = {**values, "95": tvr}
    cryptogram = generate_ac(data, iad[3:], pan=card.pan, psn=card.pan_sequence)
    items = [
        ("9F27", _CID["tc" if approved else "aac"]),
        ("9F26", cryptogram),
        ("9F36", session.atc),
        ("8A", code),
        ("95", tvr),
        ("9F10", iad),
    ]
    return SecondAc(approved=approved, issuer_authenticated=authenticated, icc_data=tlv.encode(items))


# -- PIN blocks --------------------------------------------------------------------------------
def pin_block_format0(pin: str, pan: str) -> bytes:
    """ISO 9564-1 format 0, in clear: (0 | length | PIN | F padding) XOR (0000 | the 12 PAN
    digits left of the check digit). Errors never quote the PIN or the PAN."""
    if not (pin.isascii() and pin.isdigit() and 4 <= len(pin) <= 12):
        raise ValueError("a PIN is 4-12 digits")
    if not (pan.isascii() and pan.isdigit() and len(pan) >= 13):
        raise ValueError("format 0 needs a PAN of at least 13 digits")
    pin_field = bytes.fromhex(f"0{len(pin):X}{pin}".ljust(16, "F"))
    pan_field = bytes.fromhex("0000" + pan[:-1][-12:])
    return bytes(a ^ b for a, b in zip(pin_field, pan_field, strict=True))


def encrypt_pin_block(pin: str, pan: str, key: bytes = TEST_PIN_KEY) -> bytes:
    """What the pad sends: the format-0 block encrypted (3DES ECB) under the PIN key."""
    return bytes(_pyemv()[0].encrypt_tdes_ecb(key, pin_block_format0(pin, pan)))


def verify_pin_block(pin_block: bytes, pan: str, pin: str, key: bytes = TEST_PIN_KEY) -> bool:
    """Issuer side: is this the block of `pin` for `pan`? Format 0 is deterministic, so the check
    encrypts the expected block and compares; no clear PIN is ever recovered."""
    try:
        return encrypt_pin_block(pin, pan, key) == bytes(pin_block)
    except ValueError:
        return False
