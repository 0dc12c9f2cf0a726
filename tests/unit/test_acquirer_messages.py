"""Host-link messages beyond the golden frames: the request/response matching rules, repeats,
the builders' refusals, and the private sub-field layouts (DE 61 original, DE 63 totals)."""

from __future__ import annotations

import contextlib
from collections.abc import Callable
from datetime import datetime
from typing import TypedDict

import pytest
from hypothesis import given
from hypothesis import strategies as st

from drivers.acquirer.events import HostMessage
from drivers.acquirer.spec import BatchTotals, OriginalRef, WorkingKeys
from drivers.errors import LocalProtocolError, RemoteProtocolError
from drivers.sensitive import Secret
from terminal.host.messages import (
    advice_request,
    as_repeat,
    batch_upload_request,
    echo_request,
    match,
    refund_request,
    reversal_request,
    settlement_request,
    sign_on_request,
    void_request,
)

PAN = "4761739001010010"  # public test PAN (emulator/card_reader/cards.toml "approved")
MAC_KEY = "FFEEDDCCBBAA99887766554433221100"
WHEN = datetime(2025, 1, 15, 14, 30, 15)
SALE_123 = OriginalRef(batch=1, stan=123, date="0115")


class _Ids(TypedDict):
    terminal_id: str
    merchant_id: str


class _Money(_Ids):
    currency: str
    batch: int


IDS: _Ids = {"terminal_id": "TERM0001", "merchant_id": "MERCHANT0000001"}
MONEY: _Money = {**IDS, "currency": "156", "batch": 1}
REVERSAL = reversal_request(stan=123, amount_minor=12500, reason="98", original_when=WHEN, **MONEY)


# -- matching -----------------------------------------------------------------------------------
def _reply(request: HostMessage, mti: str, **changes: str) -> HostMessage:
    fields = {"11": request.fields["11"], "41": request.fields["41"], "39": "00"}
    fields.update(changes)
    return HostMessage(mti=mti, fields=fields)


@pytest.mark.parametrize(
    ("request_mti", "response_mti"),
    [("0200", "0210"), ("0201", "0210"), ("0220", "0230"), ("0221", "0230"), ("0320", "0330"),
     ("0400", "0410"), ("0401", "0410"), ("0500", "0510"), ("0800", "0810")],
)
def test_match_pairs(request_mti: str, response_mti: str) -> None:
    request = HostMessage(mti=request_mti, fields={"11": "000123", "41": "TERM0001"})
    assert match(request, _reply(request, response_mti))
    assert not match(request, _reply(request, response_mti, **{"11": "000124"}))
    assert not match(request, _reply(request, response_mti, **{"41": "TERM0002"}))
    others = {"0210", "0230", "0330", "0410", "0510", "0810", "0110", "0200"} - {response_mti}
    for other in others:
        assert not match(request, _reply(request, other))


def test_a_late_sale_answer_never_matches_its_reversal() -> None:
    late_0210 = HostMessage(mti="0210", fields={"11": "000123", "41": "TERM0001", "39": "00"})
    assert not match(REVERSAL, late_0210)  # same DE 41 and DE 11: only the MTI tells them apart
    assert match(REVERSAL, _reply(REVERSAL, "0410"))
    assert not match(late_0210, late_0210)  # a response is nobody's request
    assert not match(HostMessage(mti="0200", fields={}), HostMessage(mti="0210", fields={}))  # no key, no match


def test_as_repeat() -> None:
    repeat = reversal_request(stan=123, amount_minor=12500, reason="98", original_when=WHEN, repeat=True, **MONEY)
    assert as_repeat(REVERSAL) == repeat and repeat.mti == "0401"
    advice = advice_request(stan=126, amount_minor=3000, offline_auth_code="Y10001", entry_mode="chip",
                            pan=Secret(PAN), when=WHEN, **MONEY)
    assert as_repeat(advice).mti == "0221" and as_repeat(advice).fields == advice.fields
    for mti in ("0401", "0500", "0800", "0320"):
        with pytest.raises(ValueError):
            as_repeat(HostMessage(mti=mti, fields={}))


# -- builders refuse what the caller gets wrong ---------------------------------------------------
@pytest.mark.parametrize(
    "build",
    [
        lambda: reversal_request(stan=1, amount_minor=1, reason="05", original_when=WHEN, **MONEY),
        lambda: reversal_request(stan=1, amount_minor=1, reason="98", original_when=WHEN, kind="cash", **MONEY),
        lambda: void_request(stan=2, amount_minor=1, original=SALE_123, original_rrn="short",
                             original_auth_code=None, when=WHEN, **MONEY),
        lambda: void_request(stan=2, amount_minor=1, original=SALE_123, original_rrn=None,
                             original_auth_code="00000!", when=WHEN, **MONEY),
        lambda: refund_request(stan=2, amount_minor=0, original=SALE_123, original_rrn=None,
                               original_auth_code=None, when=WHEN, **MONEY),
        lambda: refund_request(stan=2, amount_minor=1, original=SALE_123, original_rrn=None,
                               original_auth_code=None, when=WHEN, pan=Secret("4761x"), **MONEY),
        lambda: batch_upload_request(stan=1, kind="void", amount_minor=1, when=WHEN, auth_code=None, rrn=None,
                                     **MONEY),
        lambda: batch_upload_request(stan=1, kind="sale", amount_minor=1, when=WHEN, auth_code=None, rrn=None,
                                     original=SALE_123, **MONEY),
        lambda: advice_request(stan=1, amount_minor=1, offline_auth_code="Y1", entry_mode="chip", pan=None,
                               when=WHEN, **MONEY),
        lambda: advice_request(stan=1, amount_minor=1, offline_auth_code="Y10001", entry_mode="nfc", pan=None,
                               when=WHEN, **MONEY),
        lambda: sign_on_request(stan=1, batch=10**6, when=WHEN, **IDS),
        lambda: echo_request(stan=1, when=WHEN, terminal_id="T1", merchant_id="MERCHANT0000001"),
        lambda: settlement_request(stan=1, totals=BatchTotals(sales_count=10_000), when=WHEN, **MONEY),
        lambda: void_request(stan=2, amount_minor=1, original=OriginalRef(batch=1, stan=1, date="115"),
                             original_rrn=None, original_auth_code=None, when=WHEN, **MONEY),
    ],
)
def test_builders_reject_bad_input(build: Callable[[], HostMessage]) -> None:
    with pytest.raises(ValueError) as info:
        build()
    assert "4761" not in str(info.value)


def test_void_with_card_and_upload_of_a_refund() -> None:
    void = void_request(stan=2, amount_minor=100, original=SALE_123, original_rrn=None, original_auth_code=None,
                        when=WHEN, pan=Secret(PAN), **MONEY)
    assert void.fields["2"] == PAN and PAN not in repr(void) and "37" not in void.fields
    upload = batch_upload_request(stan=125, kind="refund", amount_minor=5000, when=WHEN, auth_code="000003",
                                  rrn="000000000003", original=SALE_123, entry_mode="tap", **MONEY)
    assert (upload.fields["3"], upload.fields["22"], upload.fields["61"]) == ("200000", "071", "0000010001230115")
    assert OriginalRef.of(batch=1, stan=123, when=WHEN) == SALE_123


# -- sub-field layouts ------------------------------------------------------------------------------
_totals = st.builds(
    BatchTotals,
    **{name: st.integers(0, 9999) for name in ("sales_count", "voids_count", "refunds_count")},
    **{name: st.integers(0, 10**12 - 1) for name in ("sales_amount", "voids_amount", "refunds_amount")},
)


@given(_totals)
def test_totals_round_trip(totals: BatchTotals) -> None:
    field = totals.to_field()
    assert len(field) == 48 and BatchTotals.from_field(field) == totals


@given(st.text(max_size=60))
def test_totals_parser_raises_only_remote_protocol_error(text: str) -> None:
    with contextlib.suppress(RemoteProtocolError):
        assert len(BatchTotals.from_field(text).to_field()) == 48


@given(st.integers(0, 999_999), st.integers(0, 999_999), st.from_regex(r"[0-9]{4}", fullmatch=True))
def test_original_ref_round_trip(batch: int, stan: int, date: str) -> None:
    ref = OriginalRef(batch=batch, stan=stan, date=date)
    assert OriginalRef.from_field(ref.to_field()) == ref


@given(st.text(max_size=20))
def test_original_ref_parser_raises_only_remote_protocol_error(text: str) -> None:
    with contextlib.suppress(RemoteProtocolError):
        OriginalRef.from_field(text)


def test_totals_arithmetic_and_misuse() -> None:
    totals = BatchTotals().plus("sale", 1000).plus("sale", 500).plus("void", 1000).plus("refund", 200)
    assert totals == BatchTotals(sales_count=2, sales_amount=1500, voids_count=1, voids_amount=1000,
                                 refunds_count=1, refunds_amount=200)
    assert totals.net_amount == 300
    with pytest.raises(LocalProtocolError):
        totals.plus("cash", 1)
    with pytest.raises(LocalProtocolError):
        WorkingKeys(pin_key=Secret("00"), mac_key=Secret(MAC_KEY)).to_field()
