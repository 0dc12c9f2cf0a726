"""Pure builders and parsers for the terminal's ISO 8583 messages (no I/O, no clock).

Every builder returns a `HostMessage`; every parser (terminal/host/answers.py, re-exported
here) takes the response and returns a typed answer. Field layouts and codes come from
drivers/acquirer/spec.py (shared with the simulator) and are documented in docs/host-link.md.
Card data arrives in `Secret` and is revealed only here, into the `HostMessage` the codec
serialises (whose repr masks it). Values the caller gets wrong raise ValueError without quoting
card data; a response that breaks the layout raises RemoteProtocolError.
"""

from __future__ import annotations

from datetime import datetime
from typing import Final

from drivers.acquirer.events import HostMessage
from drivers.acquirer.spec import (
    FINANCIAL_CODES,
    NETWORK_CODES,
    RESPONSE_MTI,
    REVERSAL_REASONS,
    SETTLEMENT_CODES,
    BatchTotals,
    OriginalRef,
    ReceiptTlv,
    audit_anchor_field,
    content_ok,
)
from drivers.sensitive import Secret
from terminal.host.answers import (
    APPROVED,
    HostAnswer,
    ReversalAnswer,
    SaleAnswer,
    SettlementAnswer,
    SignOnAnswer,
    UploadAnswer,
    parse_advice_response,
    parse_network_response,
    parse_reversal_response,
    parse_sale_response,
    parse_settlement_response,
    parse_sign_on_response,
    parse_signature_upload_answer,
    parse_upload_response,
)

__all__ = [
    "APPROVED",
    "ENTRY_MODES",
    "SALE_PROCESSING_CODE",
    "BatchTotals",
    "HostAnswer",
    "OriginalRef",
    "ReversalAnswer",
    "SaleAnswer",
    "SettlementAnswer",
    "SignOnAnswer",
    "UploadAnswer",
    "advice_request",
    "as_repeat",
    "batch_upload_request",
    "echo_request",
    "match",
    "parse_advice_response",
    "parse_network_response",
    "parse_reversal_response",
    "parse_sale_response",
    "parse_settlement_response",
    "parse_sign_on_response",
    "parse_signature_upload_answer",
    "parse_upload_answer",
    "parse_upload_response",
    "refund_request",
    "reversal_request",
    "sale_request",
    "settlement_request",
    "sign_off_request",
    "sign_on_request",
    "signature_upload_request",
    "void_request",
]

SALE_PROCESSING_CODE: Final = FINANCIAL_CODES["sale"]

# DE 22: two digits PAN entry mode + one digit PIN entry capability (1 = terminal can take a PIN).
ENTRY_MODES: Final = {"chip": "051", "swipe": "021", "tap": "071"}
_NORMAL_CONDITION: Final = "00"  # DE 25: normal presentment


# -- field helpers ----------------------------------------------------------------------------
def _digits(name: str, value: str, lengths: range) -> str:
    if not (value.isascii() and value.isdigit() and len(value) in lengths):
        raise ValueError(f"{name} must be {lengths.start}-{lengths.stop - 1} digits")
    return value


def _number(name: str, value: int, width: int, *, low: int = 0) -> str:
    if not low <= value < 10**width:
        raise ValueError(f"{name} must be in {low}..{10**width - 1}")
    return f"{value:0{width}d}"


def _reference(name: str, value: str | None, key: str, length: int) -> dict[str, str | bytes]:
    if value is None:
        return {}
    if len(value) != length or not content_ok(key, value):
        raise ValueError(f"{name} must be {length} letters or digits")
    return {key: value}


def _common(
    processing_code: str, *, stan: int, when: datetime, terminal_id: str, merchant_id: str
) -> dict[str, str | bytes]:
    if len(terminal_id) != 8 or len(merchant_id) != 15:
        raise ValueError("terminal_id is 8 characters and merchant_id 15")
    if not (content_ok("41", terminal_id) and content_ok("42", merchant_id)):
        raise ValueError("terminal_id and merchant_id are printable ASCII")
    return {
        "3": processing_code,
        "11": _number("stan", stan, 6, low=1),
        "12": when.strftime("%H%M%S"),
        "13": when.strftime("%m%d"),
        "41": terminal_id,
        "42": merchant_id,
    }


def _money(amount_minor: int, currency: str, batch: int) -> dict[str, str | bytes]:
    return {
        "4": _number("amount_minor", amount_minor, 12, low=1),
        "49": _digits("currency", currency, range(3, 4)),
        "60": _number("batch", batch, 6),
    }


def _card(
    pan: Secret[str] | None, expiry: Secret[str] | None, icc_data: Secret[bytes] | None, pan_sequence: str | None
) -> dict[str, str | bytes]:
    fields: dict[str, str | bytes] = {}
    if pan is not None:
        fields["2"] = _digits("PAN", pan.reveal(), range(12, 20))
    if expiry is not None:
        fields["14"] = _digits("expiry", expiry.reveal(), range(4, 5))
    if pan_sequence is not None and pan_sequence != "":
        fields["23"] = _digits("pan_sequence", pan_sequence, range(1, 4)).zfill(3)
    if icc_data is not None:
        fields["55"] = icc_data.reveal()
    return fields


def _entry_mode(entry_mode: str) -> str:
    if entry_mode not in ENTRY_MODES:
        raise ValueError(f"entry_mode must be one of {sorted(ENTRY_MODES)}")
    return ENTRY_MODES[entry_mode]


def _kind(kind: str) -> str:
    if kind not in FINANCIAL_CODES:
        raise ValueError(f"kind must be one of {sorted(FINANCIAL_CODES)}")
    return FINANCIAL_CODES[kind]


# -- builders: network management (0800) ------------------------------------------------------
def sign_on_request(*, stan: int, terminal_id: str, merchant_id: str, batch: int, when: datetime) -> HostMessage:
    """0800 sign-on (签到): the host answers with working keys (DE 62) and its batch (DE 60)."""
    fields = _common(NETWORK_CODES["sign-on"], stan=stan, when=when, terminal_id=terminal_id, merchant_id=merchant_id)
    fields["60"] = _number("batch", batch, 6)
    return HostMessage(mti="0800", fields=fields)


def sign_off_request(*, stan: int, terminal_id: str, merchant_id: str, batch: int, when: datetime) -> HostMessage:
    """0800 sign-off (签退): the keys are void until the next sign-on."""
    fields = _common(NETWORK_CODES["sign-off"], stan=stan, when=when, terminal_id=terminal_id, merchant_id=merchant_id)
    fields["60"] = _number("batch", batch, 6)
    return HostMessage(mti="0800", fields=fields)


def echo_request(*, stan: int, terminal_id: str, merchant_id: str, when: datetime) -> HostMessage:
    """0800 echo test (回响测试): is the host there? Changes nothing."""
    fields = _common(NETWORK_CODES["echo"], stan=stan, when=when, terminal_id=terminal_id, merchant_id=merchant_id)
    return HostMessage(mti="0800", fields=fields)


# -- builders: financial (0200, 0220, 0400/0401) ----------------------------------------------
def sale_request(
    *,
    stan: int,
    amount_minor: int,
    pan: Secret[str],
    entry_mode: str,
    expiry: Secret[str] | None,
    track2: Secret[str] | None,
    icc_data: Secret[bytes] | None,
    pan_sequence: str | None,
    terminal_id: str,
    merchant_id: str,
    currency: str,
    batch: int,
    when: datetime,
    pin_block: Secret[bytes] | None = None,
) -> HostMessage:
    """An 0200 sale (消费). `when` is the terminal's local time of the sale; a retry must reuse
    it, because the host detects duplicates on (DE 41, DE 11, DE 13). An online PIN travels as
    the pad's encrypted block in DE 52 (format 0 under the PIN key), never in clear."""
    fields = _common(SALE_PROCESSING_CODE, stan=stan, when=when, terminal_id=terminal_id, merchant_id=merchant_id)
    fields.update(_money(amount_minor, currency, batch))
    fields.update(_card(pan, expiry, icc_data, pan_sequence))
    fields.update({"22": _entry_mode(entry_mode), "25": _NORMAL_CONDITION})
    if track2 is not None:
        fields["35"] = track2.reveal()
    if pin_block is not None:
        fields["52"] = pin_block.reveal()
    return HostMessage(mti="0200", fields=fields)


def _credit(
    kind: str, *, stan: int, amount_minor: int, original: OriginalRef, original_rrn: str | None,
    original_auth_code: str | None, pan: Secret[str] | None, terminal_id: str, merchant_id: str,
    currency: str, batch: int, when: datetime,
) -> HostMessage:
    fields = _common(FINANCIAL_CODES[kind], stan=stan, when=when, terminal_id=terminal_id, merchant_id=merchant_id)
    fields.update(_money(amount_minor, currency, batch))
    fields.update(_card(pan, None, None, None))
    fields["25"] = _NORMAL_CONDITION
    fields.update(_reference("original_rrn", original_rrn, "37", 12))
    fields.update(_reference("original_auth_code", original_auth_code, "38", 6))
    fields["61"] = original.to_field()
    return HostMessage(mti="0200", fields=fields)


def void_request(
    *, stan: int, amount_minor: int, original: OriginalRef, original_rrn: str | None,
    original_auth_code: str | None, terminal_id: str, merchant_id: str, currency: str, batch: int,
    when: datetime, pan: Secret[str] | None = None,
) -> HostMessage:
    """0200 void (撤销) of a sale in the open batch: its own STAN; the sale's full amount; the
    sale's RRN (DE 37), auth code (DE 38) and batch/STAN/date (DE 61)."""
    return _credit(
        "void", stan=stan, amount_minor=amount_minor, original=original, original_rrn=original_rrn,
        original_auth_code=original_auth_code, pan=pan, terminal_id=terminal_id, merchant_id=merchant_id,
        currency=currency, batch=batch, when=when,
    )


def refund_request(
    *, stan: int, amount_minor: int, original: OriginalRef, original_rrn: str | None,
    original_auth_code: str | None, terminal_id: str, merchant_id: str, currency: str, batch: int,
    when: datetime, pan: Secret[str] | None = None,
) -> HostMessage:
    """0200 refund (退货) of a sale, in full or in part, in this batch or an earlier one."""
    return _credit(
        "refund", stan=stan, amount_minor=amount_minor, original=original, original_rrn=original_rrn,
        original_auth_code=original_auth_code, pan=pan, terminal_id=terminal_id, merchant_id=merchant_id,
        currency=currency, batch=batch, when=when,
    )


def advice_request(
    *, stan: int, amount_minor: int, offline_auth_code: str, entry_mode: str, pan: Secret[str] | None,
    terminal_id: str, merchant_id: str, currency: str, batch: int, when: datetime,
    expiry: Secret[str] | None = None, icc_data: Secret[bytes] | None = None, pan_sequence: str | None = None,
) -> HostMessage:
    """0220 advice: an offline sale forwarded (store-and-forward). `when` is the time of the sale
    and `offline_auth_code` (DE 38) the code the terminal gave it. Resend a lost one with
    `as_repeat` (0221). Real hosts want DE 2: the terminal must keep the PAN encrypted until
    the advice is delivered (PCI DSS 3.5); the simulator books advices without it."""
    fields = _common(SALE_PROCESSING_CODE, stan=stan, when=when, terminal_id=terminal_id, merchant_id=merchant_id)
    fields.update(_money(amount_minor, currency, batch))
    fields.update(_card(pan, expiry, icc_data, pan_sequence))
    fields.update({"22": _entry_mode(entry_mode), "25": _NORMAL_CONDITION})
    fields.update(_reference("offline_auth_code", offline_auth_code, "38", 6))
    return HostMessage(mti="0220", fields=fields)


def reversal_request(
    *, stan: int, amount_minor: int, reason: str, original_when: datetime, terminal_id: str,
    merchant_id: str, currency: str, batch: int, kind: str = "sale", rrn: str | None = None,
    auth_code: str | None = None, repeat: bool = False,
) -> HostMessage:
    """0400 reversal (冲正) of the transaction sent with STAN `stan` at local time `original_when`
    (DE 11/12/13 are the original's, so the host finds it and the 0410 matches on them); 0401
    when `repeat`. `reason` (DE 39) is a key of REVERSAL_REASONS: 98 no answer, 06 the card
    declined the completion, 96 the answer was unusable. RRN and auth code when they are known."""
    if reason not in REVERSAL_REASONS:
        raise ValueError(f"reason must be one of {sorted(REVERSAL_REASONS)}")
    fields = _common(_kind(kind), stan=stan, when=original_when, terminal_id=terminal_id, merchant_id=merchant_id)
    fields.update(_money(amount_minor, currency, batch))
    fields.update({"25": _NORMAL_CONDITION, "39": reason})
    fields.update(_reference("rrn", rrn, "37", 12))
    fields.update(_reference("auth_code", auth_code, "38", 6))
    return HostMessage(mti="0401" if repeat else "0400", fields=fields)


def as_repeat(request: HostMessage) -> HostMessage:
    """The repeat of a reversal or an advice (0400 -> 0401, 0220 -> 0221): same fields."""
    repeat = request.mti[:3] + "1"
    if request.mti[3] != "0" or repeat not in RESPONSE_MTI or not request.mti.startswith(("02", "04")):
        raise ValueError(f"MTI {request.mti} has no repeat on this link")
    return HostMessage(mti=repeat, fields=request.fields)


# -- builders: settlement (0500) and batch upload (0320) --------------------------------------
def settlement_request(
    *, stan: int, totals: BatchTotals, terminal_id: str, merchant_id: str, currency: str, batch: int,
    when: datetime, after_upload: bool = False, audit: tuple[int, str] | None = None,
) -> HostMessage:
    """0500 settlement (结算) of `batch` with the terminal's totals in DE 63. After an out-of-
    balance answer and the batch upload, settle again with `after_upload=True` (DE 3 960000).
    `audit` (the audit trail's count and head) goes in DE 48: the host's copy of the anchor."""
    code = SETTLEMENT_CODES["settle-after-upload" if after_upload else "settle"]
    fields = _common(code, stan=stan, when=when, terminal_id=terminal_id, merchant_id=merchant_id)
    fields.update({"49": _digits("currency", currency, range(3, 4)), "60": _number("batch", batch, 6)})
    fields["63"] = totals.to_field()
    if audit is not None:
        fields["48"] = audit_anchor_field(*audit)
    return HostMessage(mti="0500", fields=fields)


def batch_upload_request(
    *, stan: int, kind: str, amount_minor: int, when: datetime, auth_code: str | None, rrn: str | None,
    terminal_id: str, merchant_id: str, currency: str, batch: int, original: OriginalRef | None = None,
    entry_mode: str | None = None,
) -> HostMessage:
    """0320 batch upload (批上送): one transaction of the batch per message, as it was made —
    its own STAN (DE 11) and time, its type (DE 3), amount, auth code and RRN; a void or refund
    also names its sale (DE 61). Uploading uses no new STANs."""
    code = _kind(kind)
    if (original is None) != (kind == "sale"):
        raise ValueError("a void or refund names its original sale; a sale names none")
    fields = _common(code, stan=stan, when=when, terminal_id=terminal_id, merchant_id=merchant_id)
    fields.update(_money(amount_minor, currency, batch))
    fields["25"] = _NORMAL_CONDITION
    if entry_mode is not None:
        fields["22"] = _entry_mode(entry_mode)
    fields.update(_reference("rrn", rrn, "37", 12))
    fields.update(_reference("auth_code", auth_code, "38", 6))
    if original is not None:
        fields["61"] = original.to_field()
    return HostMessage(mti="0320", fields=fields)


# -- signature upload (0820) -------------------------------------------------------------------
SIGNATURE_UPLOAD_PREFIX: Final = "07"  # DE 60.1: message type code of an electronic signature upload
SIGNATURE_UPLOAD_CODE: Final = "800"  # DE 60.3: network management code of the upload
MAX_IMAGE: Final = 999  # DE 62 of an 0820 is b..999
NO_SETTLEMENT_DATE: Final = "0000"

parse_upload_answer = parse_signature_upload_answer  # the name the checkout calls


def signature_upload_request(
    *, original_stan: int, amount_minor: int, pan: Secret[str] | str | None, settlement_date: str, rrn: str,
    terminal_id: str, merchant_id: str, batch: int, receipt: ReceiptTlv | bytes, image: bytes,
    when: datetime | None = None, currency: str | None = None,
) -> HostMessage:
    """0820 electronic signature upload (电子签名上送) of one signed sale, PROTOCOLS.md §4.1:
    DE 2 the PAN when the original had one, 4 its amount, 11 its STAN (so the 0830 matches on
    the original trace), 15 the settlement date unless "0000", 37 its RRN, 41/42, 55 the receipt
    TLV (terminal/host/receipt_tlv.py), 60 = "07" + batch + "800", 62 the image (JBIG1 or PNG,
    opaque to the host, at most 999 bytes). `when` (the upload's local time, DE 12/13) and
    `currency` (DE 49) are sent when given, as on every other request. A resend is the same
    message: the host answers 94 to a repeat and stores nothing new. MAC it like every request
    (the driver does, drivers/acquirer/mac.py lists 0820)."""
    if not image:
        raise ValueError("a signature upload carries an image")
    if len(image) > MAX_IMAGE:
        raise ValueError(f"the signature image is {len(image)} bytes; DE 62 holds {MAX_IMAGE}")
    if len(terminal_id) != 8 or len(merchant_id) != 15:
        raise ValueError("terminal_id is 8 characters and merchant_id 15")
    if not (content_ok("41", terminal_id) and content_ok("42", merchant_id)):
        raise ValueError("terminal_id and merchant_id are printable ASCII")
    fields: dict[str, str | bytes] = {
        "4": _number("amount_minor", amount_minor, 12, low=1),
        "11": _number("original_stan", original_stan, 6, low=1),
        "41": terminal_id,
        "42": merchant_id,
    }
    if pan is not None:
        fields["2"] = _digits("PAN", pan.reveal() if isinstance(pan, Secret) else pan, range(12, 20))
    date = _digits("settlement_date", settlement_date, range(4, 5))
    if date != NO_SETTLEMENT_DATE:
        fields["15"] = date
    if when is not None:
        fields.update({"12": when.strftime("%H%M%S"), "13": when.strftime("%m%d")})
    if currency is not None:
        fields["49"] = _digits("currency", currency, range(3, 4))
    fields.update(_reference("rrn", rrn, "37", 12))
    fields["55"] = receipt.encode() if isinstance(receipt, ReceiptTlv) else bytes(receipt)
    if not fields["55"]:
        raise ValueError("a signature upload carries its receipt TLV")
    fields["60"] = SIGNATURE_UPLOAD_PREFIX + _number("batch", batch, 6) + SIGNATURE_UPLOAD_CODE
    fields["62"] = bytes(image)
    return HostMessage(mti="0820", fields=fields)


# -- matching ---------------------------------------------------------------------------------
def match(request: HostMessage, response: HostMessage) -> bool:
    """Is `response` the answer to `request`? MTI pair (0200/0201 -> 0210, 0220/0221 -> 0230,
    0320 -> 0330, 0400/0401 -> 0410, 0500 -> 0510, 0800 -> 0810, 0820 -> 0830) and the same DE 41
    and DE 11.
    A late 0210 thus never matches the 0400 that reverses its sale, though both carry its STAN."""
    expected = RESPONSE_MTI.get(request.mti)
    return (
        expected is not None
        and response.mti == expected
        and request.stan is not None
        and request.terminal_id is not None
        and (response.terminal_id, response.stan) == (request.terminal_id, request.stan)
    )
