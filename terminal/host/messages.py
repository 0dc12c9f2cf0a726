"""Pure builders and parsers for the terminal's ISO 8583 messages (no I/O, no clock).

Card data arrives in `Secret` and is revealed only here, into the `HostMessage` the codec
serialises (whose repr masks it). Values the caller gets wrong raise ValueError without
quoting card data.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Final

from drivers.acquirer.events import HostMessage
from drivers.errors import RemoteProtocolError
from drivers.sensitive import Secret

__all__ = ["ENTRY_MODES", "SALE_PROCESSING_CODE", "SaleAnswer", "parse_sale_response", "sale_request"]

SALE_PROCESSING_CODE: Final = "000000"
APPROVED: Final = "00"

# DE 22: two digits PAN entry mode + one digit PIN entry capability (1 = terminal can take a PIN).
ENTRY_MODES: Final = {"chip": "051", "swipe": "021", "tap": "071"}
_NORMAL_CONDITION: Final = "00"  # DE 25: normal presentment


@dataclass(frozen=True, kw_only=True)
class SaleAnswer:
    approved: bool
    response_code: str
    auth_code: str | None
    rrn: str | None
    host_time: datetime | None  # DE 13 + DE 12; None unless the request time was given


def _digits(name: str, value: str, lengths: range) -> str:
    if not (value.isascii() and value.isdigit() and len(value) in lengths):
        raise ValueError(f"{name} must be {lengths.start}-{lengths.stop - 1} digits")
    return value


def _number(name: str, value: int, width: int, *, low: int = 0) -> str:
    if not low <= value < 10**width:
        raise ValueError(f"{name} must be in {low}..{10**width - 1}")
    return f"{value:0{width}d}"


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
) -> HostMessage:
    """An 0200 sale authorisation request. `when` is the terminal's local time of the sale."""
    if entry_mode not in ENTRY_MODES:
        raise ValueError(f"entry_mode must be one of {sorted(ENTRY_MODES)}")
    if len(terminal_id) != 8 or len(merchant_id) != 15:
        raise ValueError("terminal_id is 8 characters and merchant_id 15")
    fields: dict[str, str | bytes] = {
        "2": _digits("PAN", pan.reveal(), range(12, 20)),
        "3": SALE_PROCESSING_CODE,
        "4": _number("amount_minor", amount_minor, 12, low=1),
        "11": _number("stan", stan, 6, low=1),
        "12": when.strftime("%H%M%S"),
        "13": when.strftime("%m%d"),
        "22": ENTRY_MODES[entry_mode],
        "25": _NORMAL_CONDITION,
        "41": terminal_id,
        "42": merchant_id,
        "49": _digits("currency", currency, range(3, 4)),
        "60": _number("batch", batch, 6),
    }
    if expiry is not None:
        fields["14"] = _digits("expiry", expiry.reveal(), range(4, 5))
    if pan_sequence is not None and pan_sequence != "":
        fields["23"] = _digits("pan_sequence", pan_sequence, range(1, 4)).zfill(3)
    if track2 is not None:
        fields["35"] = track2.reveal()
    if icc_data is not None:
        fields["55"] = icc_data.reveal()
    return HostMessage(mti="0200", fields=fields)


def parse_sale_response(msg: HostMessage, *, sent_at: datetime | None = None) -> SaleAnswer:
    """Read an 0210. DE 13 carries no year, so `host_time` is resolved against `sent_at`
    (the request's `when`): the candidate year closest to it, which handles New Year's Eve."""
    if msg.mti != "0210":
        raise RemoteProtocolError(f"expected an 0210 sale response, got MTI {msg.mti}")
    code = msg.response_code
    if code is None:
        raise RemoteProtocolError("sale response without a response code (DE 39)")
    return SaleAnswer(
        approved=code == APPROVED,
        response_code=code,
        auth_code=msg.text("38"),
        rrn=msg.text("37"),
        host_time=_host_time(msg, sent_at),
    )


def _host_time(msg: HostMessage, sent_at: datetime | None) -> datetime | None:
    date, time = msg.text("13"), msg.text("12")
    if sent_at is None or date is None or time is None:
        return None
    candidates = []
    for year in (sent_at.year - 1, sent_at.year, sent_at.year + 1):
        try:
            candidates.append(datetime.strptime(f"{year}{date}{time}", "%Y%m%d%H%M%S"))
        except ValueError:
            continue  # 29 February in a common year, or a malformed value
    if not candidates:
        raise RemoteProtocolError("host date/time (DE 13/12) is not a valid date")
    naive = sent_at.replace(tzinfo=None)
    best = min(candidates, key=lambda c: abs(c - naive))
    return best.replace(tzinfo=sent_at.tzinfo)
