"""Typed answers of the acquirer: parsers for every response the terminal receives (pure).

Each parser checks the MTI and DE 39 and reads the private layouts through drivers/acquirer/spec.py;
a response that breaks them raises RemoteProtocolError (never quoting field contents). The
builders are in terminal/host/messages.py, which re-exports all of this.
"""

from __future__ import annotations

from datetime import datetime
from typing import Final

from drivers.acquirer.events import HostMessage
from drivers.acquirer.spec import BatchTotals, WorkingKeys
from drivers.errors import RemoteProtocolError
from drivers.record import Record

__all__ = [
    "APPROVED",
    "HostAnswer",
    "ReversalAnswer",
    "SaleAnswer",
    "SettlementAnswer",
    "SignOnAnswer",
    "UploadAnswer",
    "parse_advice_response",
    "parse_network_response",
    "parse_reversal_response",
    "parse_sale_response",
    "parse_settlement_response",
    "parse_sign_on_response",
    "parse_signature_upload_answer",
    "parse_upload_response",
]

APPROVED: Final = "00"
_OUT_OF_BALANCE: Final = "95"
_SIGN_ON_AGAIN: Final = "A0"
_NOT_FOUND: Final = "25"
_DUPLICATE: Final = "94"
_FORMAT_ERROR: Final = "30"


class HostAnswer(Record):
    """What every response says: its DE 39."""

    response_code: str

    @property
    def approved(self) -> bool:
        return self.response_code == APPROVED

    @property
    def sign_on_required(self) -> bool:
        """A0: the host cannot check our MAC; sign on (new keys) before anything else."""
        return self.response_code == _SIGN_ON_AGAIN


class SaleAnswer(HostAnswer):
    """An 0210: the answer to a sale, a void or a refund."""

    auth_code: str | None
    rrn: str | None
    host_time: datetime | None  # DE 13 + DE 12; None unless the request time was given


class SignOnAnswer(HostAnswer):
    """An 0810 to a sign-on (or, with keys None, to a sign-off or echo test)."""

    batch: int | None  # DE 60: the batch the host expects this terminal to be in
    keys: WorkingKeys | None  # DE 62, on an approved sign-on
    host_time: datetime | None


class ReversalAnswer(HostAnswer):
    @property
    def done(self) -> bool:
        """The reversal needs no repeat: 00, or 25 (the host never booked the original)."""
        return self.response_code in (APPROVED, _NOT_FOUND)


class SettlementAnswer(HostAnswer):
    batch: int | None
    host_totals: BatchTotals | None  # DE 63 of the 0510: what the host holds for the batch

    @property
    def balanced(self) -> bool:
        return self.approved

    @property
    def out_of_balance(self) -> bool:
        """95: upload the batch detail (0320s), then settle again with `after_upload=True`."""
        return self.response_code == _OUT_OF_BALANCE


class UploadAnswer(Record):
    """An 0830, the answer to a signature upload: `00` stored, `94` stored already (a repeat);
    both are success, so a resend after a lost answer is safe (PROTOCOLS.md §4.1)."""

    code: str

    @property
    def ok(self) -> bool:
        """The host holds the signature: the upload may leave the queue."""
        return self.code in (APPROVED, _DUPLICATE)

    @property
    def repeat(self) -> bool:
        """94: the host had it already (an earlier upload whose answer was lost)."""
        return self.code == _DUPLICATE

    @property
    def sign_on_required(self) -> bool:
        return self.code == _SIGN_ON_AGAIN

    @property
    def final(self) -> bool:
        """30 (format error): the host will refuse this 0820 however often it comes (the terminal
        builds the same one every time), so the upload has failed for good."""
        return self.code == _FORMAT_ERROR


def _code(msg: HostMessage, mti: str, what: str) -> str:
    if msg.mti != mti:
        raise RemoteProtocolError(f"expected an {mti} {what} response, got MTI {msg.mti}")
    code = msg.response_code
    if code is None:
        raise RemoteProtocolError(f"{what} response without a response code (DE 39)")
    return code


def _batch(msg: HostMessage) -> int | None:
    value = msg.text("60")
    if value is None:
        return None
    if not (value.isascii() and value.isdigit() and len(value) <= 6):
        raise RemoteProtocolError("DE 60 batch number is up to 6 digits")
    return int(value)


def parse_sale_response(msg: HostMessage, *, sent_at: datetime | None = None) -> SaleAnswer:
    """Read an 0210 (sale, void or refund). DE 13 carries no year, so `host_time` is resolved
    against `sent_at` (the request's `when`): the closest candidate year (New Year's Eve)."""
    code = _code(msg, "0210", "sale")
    return SaleAnswer(
        response_code=code, auth_code=msg.text("38"), rrn=msg.text("37"), host_time=_host_time(msg, sent_at)
    )


def parse_sign_on_response(msg: HostMessage, *, sent_at: datetime | None = None) -> SignOnAnswer:
    """Read an 0810 to a sign-on: an approval must carry the working keys (DE 62)."""
    answer = parse_network_response(msg, sent_at=sent_at)
    if answer.approved and answer.keys is None:
        raise RemoteProtocolError("approved sign-on without working keys (DE 62)")
    return answer


def parse_network_response(msg: HostMessage, *, sent_at: datetime | None = None) -> SignOnAnswer:
    """Read any 0810 (sign-on, sign-off, echo test)."""
    code = _code(msg, "0810", "network management")
    keys_field = msg.text("62")
    keys = WorkingKeys.from_field(keys_field) if keys_field is not None else None
    return SignOnAnswer(response_code=code, batch=_batch(msg), keys=keys, host_time=_host_time(msg, sent_at))


def parse_reversal_response(msg: HostMessage) -> ReversalAnswer:
    return ReversalAnswer(response_code=_code(msg, "0410", "reversal"))


def parse_advice_response(msg: HostMessage) -> HostAnswer:
    """Read an 0230: 00 means the offline sale is booked and may leave the queue."""
    return HostAnswer(response_code=_code(msg, "0230", "advice"))


def parse_settlement_response(msg: HostMessage) -> SettlementAnswer:
    code = _code(msg, "0510", "settlement")
    totals = msg.text("63")
    return SettlementAnswer(
        response_code=code, batch=_batch(msg), host_totals=None if totals is None else BatchTotals.from_field(totals)
    )


def parse_upload_response(msg: HostMessage) -> HostAnswer:
    return HostAnswer(response_code=_code(msg, "0330", "batch upload"))


def parse_signature_upload_answer(msg: HostMessage) -> UploadAnswer:
    """Read an 0830 (the answer to an 0820 signature upload)."""
    return UploadAnswer(code=_code(msg, "0830", "signature upload"))


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
