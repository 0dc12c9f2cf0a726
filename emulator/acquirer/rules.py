"""What the host checks before it decides: each request's mandatory fields and their content.

Two steps, both pure functions of the request (and the host's clock and currency):
- `format_error(request)`: a mandatory field missing or malformed, or fields that contradict one
  another -> True, answered `30` before anything else (nothing booked, nothing remembered);
- `decline(request, now=, currency=)`: the content a real acquirer refuses although the message
  is well formed -> a response code (`13` invalid amount, `54` expired card, `58` not permitted
  to the terminal), decided and booked like an issuer's decline.
The tables here are the ones in docs/host-link.md ("What the host checks"): change both together.
A request without DE 11 or DE 41 cannot be matched by any answer: `matchable` says so, and the
host logs it and does not answer.
"""

from __future__ import annotations

import calendar
import functools
import re
from collections.abc import Mapping
from datetime import datetime
from types import MappingProxyType
from typing import Final

from drivers.acquirer.events import HostMessage
from drivers.acquirer.spec import FINANCIAL_CODES, REVERSAL_REASONS, ReceiptTlv
from drivers.emv import tlv
from drivers.errors import RemoteProtocolError

__all__ = ["MANDATORY", "SIGNATURE_UPLOAD_FIELD", "decline", "format_error", "icc_items", "matchable", "pan_of"]

FORMAT_ERROR: Final = "30"
INVALID_AMOUNT: Final = "13"
EXPIRED_CARD: Final = "54"
NOT_PERMITTED_TO_TERMINAL: Final = "58"

_KIND_BY_CODE: Final = {code: kind for kind, code in FINANCIAL_CODES.items()}
_ALWAYS: Final = frozenset({"3", "11", "12", "13", "41", "42"})  # every request carries them
_MONEY: Final = frozenset({"4", "49", "60"})
# The mandatory data elements of each request, by MTI (0200 by its DE 3 kind): docs/host-link.md.
MANDATORY: Final[dict[str, frozenset[str]]] = {
    "sale": _ALWAYS | _MONEY | {"2", "22", "25"},
    "void": _ALWAYS | _MONEY | {"25", "61"},
    "refund": _ALWAYS | _MONEY | {"25", "61"},
    "0220": _ALWAYS | _MONEY | {"22", "25", "38"},
    "0400": _ALWAYS | _MONEY | {"39"},
    "0320": _ALWAYS | _MONEY,
    "0500": _ALWAYS | {"49", "60", "63"},
    "0800": frozenset({"11", "12", "13", "41", "42"}),  # DE 3 absent: an echo test
    # Signature upload: the original's amount, STAN, RRN; receipt TLV, DE 60 "07"+batch+"800",
    # the image and a MAC (an image nobody can authenticate is not stored).
    "0820": frozenset({"4", "11", "37", "41", "42", "55", "60", "62", "64"}),
}
SIGNATURE_UPLOAD_FIELD: Final = re.compile(r"07[0-9]{6}800")  # DE 60 of an 0820
# DE 22 = PAN entry mode (2 digits) + PIN entry capability (1 digit: 0 unknown, 1 can, 2 cannot).
_PAN_ENTRY: Final = {"01": "manual", "02": "swipe", "05": "chip", "07": "tap", "80": "fallback",
                     "90": "swipe", "91": "tap-stripe"}
_CHIP_ENTRY: Final = frozenset({"05", "07"})  # the card's chip answered: DE 55 carries its ARQC
_STRIPE_ENTRY: Final = frozenset({"02", "80", "90", "91"})  # track 2 read: DE 35 carries it
_NO_PIN_PAD: Final = "2"
# DE 25, POS condition code: the ones this host knows (ISO 8583:1987 / CUP usage).
_CONDITIONS: Final = frozenset({"00", "01", "02", "03", "05", "06", "08", "51"})
# DE 55 tags whose length is fixed by EMV Book 3: a wrong length is a malformed field.
_ICC_LENGTHS: Final = {"9F26": 8, "9F36": 2, "9F02": 6, "9F27": 1, "9F37": 4}


def matchable(request: HostMessage) -> bool:
    """Can an answer to it be matched (DE 41 + DE 11)? If not, the host cannot answer it."""
    return bool(request.terminal_id) and bool(request.stan)


def mandatory(request: HostMessage) -> frozenset[str]:
    mti = request.mti[:3] + "0"  # a repeat (0201, 0221, 0401) needs what its original needs
    if mti == "0200":
        return MANDATORY.get(_KIND_BY_CODE.get(request.text("3") or "", ""), MANDATORY["sale"])
    if mti == "0320" and request.text("3") in (FINANCIAL_CODES["void"], FINANCIAL_CODES["refund"]):
        return MANDATORY["0320"] | {"61"}
    return MANDATORY.get(mti, frozenset())


def format_error(request: HostMessage) -> bool:
    """Is a mandatory field missing or malformed, or do two fields contradict each other?"""
    if any(request.get(key) in (None, "", b"") for key in mandatory(request)):
        return True
    return not all(check(request) for check in _CHECKS)


def decline(request: HostMessage, *, now: datetime, currency: str) -> str | None:
    """A well-formed financial request the host still refuses (0200 / 0220), or None."""
    amount = request.text("4")
    if amount is not None and int(amount) == 0:
        return INVALID_AMOUNT
    if request.text("49") not in (None, currency):
        return NOT_PERMITTED_TO_TERMINAL  # the terminal is not set up for that currency
    if request.mti[:3] != "020" or _KIND_BY_CODE.get(request.text("3") or "") != "sale":
        return None
    expiry = request.text("14")
    if expiry is not None and expiry < now.strftime("%y%m"):
        return EXPIRED_CARD
    signed = icc_items(request).get("9F02")
    if signed is not None and amount is not None and tlv.decode_n(signed).zfill(12) != amount:
        return INVALID_AMOUNT  # the chip's cryptogram covers another amount than DE 4
    return None


def icc_items(request: HostMessage) -> Mapping[str, bytes]:
    """DE 55 as tag -> value ({} when absent); format_error has rejected a malformed one."""
    icc = request.get("55")
    if not isinstance(icc, bytes) or not icc:
        return {}
    try:
        return _icc_dict(icc)
    except RemoteProtocolError:
        return {}


# One request's DE 55 is read by several checks and by the answer (the cryptogram, the ATC, the
# amount signed): decoded once. The last one only: the host holds that request anyway.
@functools.lru_cache(maxsize=1)
def _icc_dict(icc: bytes) -> Mapping[str, bytes]:
    return MappingProxyType(tlv.decode_dict(icc))


def pan_of(request: HostMessage) -> str:
    """DE 2, or the PAN part of track 2 (DE 35) when a request carries no DE 2."""
    pan = request.text("2")
    if pan:
        return pan
    return _track2_pan(request.text("35") or "")


def _track2_pan(track2: str) -> str:
    return track2.replace("D", "=").split("=", 1)[0]


# -- the content checks: each True when the field is absent or right ---------------------------
def _stan(request: HostMessage) -> bool:
    return request.stan is None or request.stan != "000000"


def _time(request: HostMessage) -> bool:
    value = request.text("12")
    return value is None or (int(value[:2]) < 24 and int(value[2:4]) < 60 and int(value[4:]) < 60)


def _date(request: HostMessage) -> bool:
    value = request.text("13")
    if value is None:
        return True
    month, day = int(value[:2]), int(value[2:])
    return 1 <= month <= 12 and 1 <= day <= calendar.monthrange(2024, month)[1]  # a leap year: 29 Feb is a date


def _expiry(request: HostMessage) -> bool:
    value = request.text("14")
    return value is None or 1 <= int(value[2:]) <= 12


def _entry_mode(request: HostMessage) -> bool:
    value = request.text("22")
    return value is None or (value[:2] in _PAN_ENTRY and value[2] in "012")


def _condition(request: HostMessage) -> bool:
    value = request.text("25")
    return value is None or value in _CONDITIONS


def _batch(request: HostMessage) -> bool:
    value = request.text("60")
    if request.mti == "0820":
        return value is None or SIGNATURE_UPLOAD_FIELD.fullmatch(value) is not None
    return value is None or (len(value) == 6 and value.isascii() and value.isdigit())


def _settlement_date(request: HostMessage) -> bool:
    value = request.text("15")
    if value is None:
        return True
    month, day = int(value[:2]), int(value[2:])
    return 1 <= month <= 12 and 1 <= day <= calendar.monthrange(2024, month)[1]


def _receipt(request: HostMessage) -> bool:
    """The 0820's DE 55 is the receipt TLV (not EMV data), and it names the same original."""
    if request.mti != "0820":
        return True
    data = request.get("55")
    if not isinstance(data, bytes) or not data:
        return True  # missing: the mandatory rule answers it
    try:
        receipt = ReceiptTlv.decode(data)
    except RemoteProtocolError:
        return False
    return (receipt.original_stan, receipt.original_rrn, receipt.terminal_id) == (
        request.stan, request.text("37"), request.terminal_id)


def _currency(request: HostMessage) -> bool:
    value = request.text("49")
    return value is None or value != "000"


def _reason(request: HostMessage) -> bool:
    return not request.mti.startswith("04") or request.text("39") in REVERSAL_REASONS


def _pan(request: HostMessage) -> bool:
    pan, track2 = request.text("2"), request.text("35")
    if pan is not None and not 12 <= len(pan) <= 19:
        return False
    if track2 is None:
        return True
    track_pan = _track2_pan(track2)
    if "=" not in track2.replace("D", "=") or not 12 <= len(track_pan) <= 19:
        return False
    return pan is None or pan == track_pan  # DE 2 and DE 35 name the same card


def _pin_block(request: HostMessage) -> bool:
    entry = request.text("22")
    return request.get("52") is None or entry is None or entry[2] != _NO_PIN_PAD


def _card_read(request: HostMessage) -> bool:
    """A sale read from the chip carries its ICC data; one read from the stripe its track 2."""
    if request.mti[:3] != "020" or _KIND_BY_CODE.get(request.text("3") or "") != "sale":
        return True
    entry = (request.text("22") or "")[:2]
    if entry in _CHIP_ENTRY:
        items = icc_items(request)
        return all(tag in items for tag in ("9F26", "9F36", "9F02"))
    return entry not in _STRIPE_ENTRY or request.get("35") is not None


def _icc(request: HostMessage) -> bool:
    icc = request.get("55")
    if request.mti == "0820" or not isinstance(icc, bytes) or not icc:
        return True
    try:
        items = _icc_dict(icc)
        if "9F02" in items:
            tlv.decode_n(items["9F02"])
    except (RemoteProtocolError, ValueError):
        return False
    return all(len(items[tag]) == size for tag, size in _ICC_LENGTHS.items() if tag in items)


_CHECKS: Final = (_stan, _time, _date, _settlement_date, _expiry, _entry_mode, _condition, _batch, _currency,
                  _reason, _pan, _pin_block, _card_read, _icc, _receipt)
