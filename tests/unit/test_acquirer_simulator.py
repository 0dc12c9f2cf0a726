"""The acquirer simulator's decisions, without sockets: ledger, reversals, duplicates, voids,
refunds, advices, settlement and batch upload, and the faults that change an answer."""

from __future__ import annotations

import logging
from datetime import datetime
from typing import TypedDict

import pytest

from drivers.acquirer.events import HostMessage
from drivers.acquirer.spec import BatchTotals, OriginalRef
from drivers.sensitive import Secret
from emulator.acquirer.core import Acquirer
from emulator.acquirer.simulator import AcquirerSimulator
from emulator.card_reader.cards import get_card
from terminal.host.messages import (
    advice_request,
    batch_upload_request,
    echo_request,
    match,
    parse_settlement_response,
    parse_sign_on_response,
    refund_request,
    reversal_request,
    sale_request,
    settlement_request,
    sign_off_request,
    sign_on_request,
    void_request,
)

TID = "TERM0001"
class _Ids(TypedDict):
    terminal_id: str
    merchant_id: str


class _Money(_Ids):
    currency: str
    batch: int

IDS: _Ids = {"terminal_id": TID, "merchant_id": "MERCHANT0000001"}
MONEY: _Money = {**IDS, "currency": "156", "batch": 1}
WHEN = datetime(2025, 1, 15, 14, 30, 15)
HOST_NOW = datetime(2025, 1, 15, 14, 30, 16)


@pytest.fixture
def host() -> Acquirer:
    return Acquirer(now=lambda: HOST_NOW)


def _sale(stan: int, amount: int = 1000, card: str = "approved", when: datetime = WHEN) -> HostMessage:
    c = get_card(card)
    return sale_request(
        stan=stan, amount_minor=amount, pan=Secret(c.pan), entry_mode="swipe", expiry=None, track2=Secret(c.track2),
        icc_data=None, pan_sequence=None, when=when, **MONEY,
    )


def _reversal(stan: int, amount: int = 1000, *, kind: str = "sale", repeat: bool = False) -> HostMessage:
    return reversal_request(stan=stan, amount_minor=amount, reason="98", original_when=WHEN, kind=kind,
                            repeat=repeat, **MONEY)


def _credit(kind: str, stan: int, of: int, amount: int = 1000) -> HostMessage:
    build = void_request if kind == "void" else refund_request
    return build(stan=stan, amount_minor=amount, original=OriginalRef.of(batch=1, stan=of, when=WHEN),
                 original_rrn=None, original_auth_code=None, when=WHEN, **MONEY)


def _settle(stan: int, totals: BatchTotals, *, after_upload: bool = False) -> HostMessage:
    return settlement_request(stan=stan, totals=totals, when=WHEN, after_upload=after_upload, **MONEY)


def _ids_and_time() -> dict[str, str | bytes]:
    return {"41": TID, "42": IDS["merchant_id"], "12": "143015", "13": "0115"}


def _ask(host: Acquirer, request: HostMessage) -> HostMessage:
    answer = host.respond(request)
    assert answer is not None and match(request, answer)
    return answer


def _code(host: Acquirer, request: HostMessage) -> str:
    code = _ask(host, request).response_code
    assert code is not None
    return code


# -- reversals ------------------------------------------------------------------------------------
def test_reversal_nets_the_ledger_to_zero_and_is_idempotent(host: Acquirer) -> None:
    assert _code(host, _sale(1, 1250)) == "00"
    assert host.net_effect(TID, "000001") == 1250
    assert _code(host, _reversal(1, 1250)) == "00"
    assert host.net_effect(TID, "000001") == 0
    assert host.batch_totals(TID, 1) == BatchTotals()
    ledger = host.ledger
    assert _code(host, _reversal(1, 1250)) == "00"  # a second reversal changes nothing
    assert _code(host, _reversal(1, 1250, repeat=True)) == "00"  # nor does its 0401 repeat
    assert host.ledger == ledger and host.net_effect(TID, "000001") == 0


def test_reversal_of_an_unknown_stan_is_approved_and_refuses_the_original_later(
    host: Acquirer, caplog: pytest.LogCaptureFixture
) -> None:
    assert _code(host, _reversal(7)) == "00"
    with caplog.at_level(logging.WARNING, logger="emulator.acquirer.simulator"):
        assert _code(host, _sale(7)) == "12"  # arrived after its reversal, over another link
    assert host.net_effect(TID, "000007") == 0
    assert any("after its reversal" in r.getMessage() for r in caplog.records)


def test_late_approval_after_reversal_is_logged_and_the_reversal_stands(caplog: pytest.LogCaptureFixture) -> None:
    host = AcquirerSimulator(now=lambda: HOST_NOW)  # not started: note_delivery is what its loop calls
    request = _sale(3)
    answer = _ask(host, request)  # decided and booked, but (say) held on the way back
    host.note_delivery(request, answer)
    assert not host.late_approvals  # delivered before any reversal: nothing late
    _ask(host, _reversal(3))
    with caplog.at_level(logging.WARNING, logger="emulator.acquirer.simulator"):
        host.note_delivery(request, answer)
        host.note_delivery(_reversal(3), _ask(host, _reversal(3)))  # an 0410 is never a late approval
    assert [(a.stan, a.mti) for a in host.late_approvals] == [("000003", "0210")]
    assert host.net_effect(TID, "000003") == 0
    assert any("late approval" in r.getMessage() for r in caplog.records)
    assert get_card("approved").pan not in caplog.text


# -- duplicates -----------------------------------------------------------------------------------
def test_duplicate_replays_the_first_answer(host: Acquirer) -> None:
    first = _ask(host, _sale(5))
    assert _ask(host, _sale(5)) is first
    assert len(host.ledger) == 1 and host.net_effect(TID, "000005") == 1000
    assert _code(host, _sale(5, amount=999)) == "94"  # same key, other content: not a retry
    assert _code(host, _sale(5, when=datetime(2025, 1, 16, 9, 0, 0))) == "00"  # same STAN, next day
    assert len(host.ledger) == 2 and host.net_effect(TID, "000005", "0115") == 1000


def test_a_declined_first_answer_is_replayed_too(host: Acquirer) -> None:
    host.decline_next("91")
    assert _code(host, _sale(6)) == "91"
    assert _code(host, _sale(6)) == "91"
    assert _code(host, _sale(8)) == "00"


# -- voids, refunds, advices ------------------------------------------------------------------------
def test_void(host: Acquirer) -> None:
    _ask(host, _sale(1, 1000))
    assert _code(host, _credit("void", 2, of=99)) == "25"
    assert _code(host, _credit("void", 3, of=1, amount=999)) == "64"
    void = _ask(host, _credit("void", 4, of=1))
    assert void.response_code == "00" and void.text("38") and void.text("37")
    assert host.net_effect(TID, "000001") == 0 and host.net_effect(TID, "000004") == -1000
    assert _code(host, _credit("void", 5, of=1)) == "12"  # voided already
    assert _code(host, _credit("refund", 6, of=1, amount=1)) == "12"
    assert host.batch_totals(TID, 1) == BatchTotals(sales_count=1, sales_amount=1000, voids_count=1,
                                                    voids_amount=1000)
    assert _code(host, _reversal(4, kind="void")) == "00"  # the void undone: the sale stands again
    assert host.net_effect(TID, "000001") == 1000


def test_refunds_in_part_up_to_the_sale(host: Acquirer) -> None:
    _ask(host, _sale(1, 1000))
    assert _code(host, _credit("refund", 2, of=1, amount=600)) == "00"
    assert _code(host, _credit("refund", 3, of=1, amount=401)) == "13"
    assert _code(host, _credit("refund", 4, of=1, amount=400)) == "00"
    assert _code(host, _credit("void", 5, of=1)) == "12"  # refunded: too late to void
    assert host.net_effect(TID, "000001") == 0
    assert host.batch_totals(TID, 1) == BatchTotals(sales_count=1, sales_amount=1000, refunds_count=2,
                                                    refunds_amount=1000)


def test_credits_of_a_declined_or_reversed_sale_find_no_original(host: Acquirer) -> None:
    _ask(host, _sale(1, card="declined"))
    _ask(host, _sale(2))
    _ask(host, _reversal(2))
    assert _code(host, _credit("void", 3, of=1)) == "25"
    assert _code(host, _credit("refund", 4, of=2)) == "25"


def test_advice_books_an_offline_sale_once(host: Acquirer) -> None:
    advice = advice_request(stan=9, amount_minor=3000, offline_auth_code="Y10001", entry_mode="chip", pan=None,
                            when=WHEN, **MONEY)
    first = _ask(host, advice)
    assert first.mti == "0230" and first.response_code == "00"
    assert _ask(host, HostMessage(mti="0221", fields=advice.fields)) is first  # the repeat: replayed
    assert host.net_effect(TID, "000009") == 3000
    assert [e.offline for e in host.ledger] == [True]
    assert host.batch_totals(TID, 1) == BatchTotals(sales_count=1, sales_amount=3000)
    assert _code(host, _sale(9)) == "94"  # the key is taken by the advice


# -- settlement and batch upload ----------------------------------------------------------------------
def _batch_of_three(host: Acquirer) -> BatchTotals:
    _ask(host, _sale(1, 1000))
    _ask(host, _sale(2, 2000))
    _ask(host, _credit("void", 3, of=2, amount=2000))
    _ask(host, _sale(4, 500, card="declined"))
    return BatchTotals(sales_count=2, sales_amount=3000, voids_count=1, voids_amount=2000)


def test_balanced_settlement_closes_the_batch(host: Acquirer) -> None:
    totals = _batch_of_three(host)
    answer = parse_settlement_response(_ask(host, _settle(10, totals)))
    assert answer.balanced and answer.host_totals == totals and answer.batch == 1
    assert [(s.batch, s.basis) for s in host.settlements] == [(1, "ledger")]
    assert host.current_batch(TID) == 2
    sign_on = parse_sign_on_response(_ask(host, sign_on_request(stan=11, batch=1, when=WHEN, **IDS)))
    assert sign_on.batch == 2  # a terminal that missed the 0510 learns its batch was closed
    assert _code(host, _credit("void", 12, of=1)) == "12"  # no void once the batch is settled


def test_out_of_balance_then_upload_then_balanced(host: Acquirer) -> None:
    host_totals = _batch_of_three(host)
    terminal_totals = host_totals.plus("sale", 700)  # the terminal has an offline sale the host lacks
    answer = parse_settlement_response(_ask(host, _settle(10, terminal_totals)))
    assert answer.out_of_balance and answer.host_totals == host_totals and not host.settlements
    details: list[tuple[str, int, int, int | None]] = [
        ("sale", 1, 1000, None), ("sale", 2, 2000, None), ("void", 3, 2000, 2), ("sale", 5, 700, None),
    ]
    for kind, stan, amount, of in details[:-1]:
        assert _code(host, _upload(kind, stan, amount, of)) == "00"
    assert parse_settlement_response(_ask(host, _settle(11, terminal_totals, after_upload=True))).out_of_balance
    assert _code(host, _upload(*details[-1])) == "00"
    assert _code(host, _upload(*details[-1])) == "00"  # uploaded twice: recorded once
    answer = parse_settlement_response(_ask(host, _settle(12, terminal_totals, after_upload=True)))
    assert answer.balanced and answer.host_totals == terminal_totals
    assert [(s.batch, s.basis, s.totals) for s in host.settlements] == [(1, "upload", terminal_totals)]
    assert len(host.uploads(TID, 1)) == 4


def _upload(kind: str, stan: int, amount: int, of: int | None) -> HostMessage:
    original = None if of is None else OriginalRef.of(batch=1, stan=of, when=WHEN)
    return batch_upload_request(stan=stan, kind=kind, amount_minor=amount, when=WHEN, auth_code=None, rrn=None,
                                original=original, **MONEY)


def test_out_of_balance_once(host: Acquirer) -> None:
    totals = _batch_of_three(host)
    host.report_out_of_balance_once()
    assert parse_settlement_response(_ask(host, _settle(10, totals))).out_of_balance
    assert _ask(host, _settle(10, totals)).response_code == "95"  # the same 0500 again: replayed
    assert parse_settlement_response(_ask(host, _settle(11, totals))).balanced


# -- faults that change the answer ------------------------------------------------------------------------
def test_decline_next_and_decline_card(host: Acquirer) -> None:
    host.decline_next("51", count=2)
    assert [_code(host, _sale(n)) for n in (1, 2, 3)] == ["51", "51", "00"]
    host.decline_card("approved", "54")
    assert _code(host, _sale(4)) == "54" and _code(host, _sale(5, card="approved-swipe")) == "00"
    host.decline_card("approved", None)
    assert _code(host, _sale(6)) == "00"
    assert host.net_effect(TID, "000001") == 0 and host.net_effect(TID, "000003") == 1000
    for bad in ("00", "ZZ", "5"):
        with pytest.raises(ValueError):
            host.decline_next(bad)


def test_refused_mac_until_sign_on(host: Acquirer) -> None:
    host.refuse_mac()
    assert _code(host, _sale(1)) == "A0"
    assert _code(host, _reversal(9)) == "A0"
    assert _code(host, echo_request(stan=2, when=WHEN, **IDS)) == "00"  # no MAC on an echo
    assert host.ledger == ()
    answer = parse_sign_on_response(_ask(host, sign_on_request(stan=3, batch=1, when=WHEN, **IDS)))
    assert answer.approved and answer.keys is not None and answer.batch == 1
    assert _code(host, _sale(1)) == "00"  # the same request, resent after signing on
    host.refuse_mac(TID)
    assert _code(host, _sale(4)) == "A0"
    host.clear_faults()
    assert _code(host, _sale(4)) == "00"


def test_require_sign_on_and_sign_off() -> None:
    host = Acquirer(now=lambda: HOST_NOW, require_sign_on=True)
    assert _code(host, _sale(1)) == "A0"
    keys = [parse_sign_on_response(_ask(host, sign_on_request(stan=n, batch=1, when=WHEN, **IDS))).keys
            for n in (2, 3)]
    assert keys[0] is not None and keys[1] is not None and keys[0] != keys[1]  # fresh keys each time
    assert _code(host, _sale(1)) == "00"
    assert _code(host, sign_off_request(stan=4, batch=1, when=WHEN, **IDS)) == "00"
    assert _code(host, _sale(5)) == "A0"


# -- malformed requests ---------------------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("request_", "code"),
    [
        (HostMessage(mti="0200", fields={"3": "000000", "11": "000001", "13": "0115", "41": TID}), "30"),
        (HostMessage(mti="0200", fields={**_sale(1).fields, "3": "310000"}), "12"),
        (HostMessage(mti="0200", fields={k: v for k, v in _credit("void", 2, of=1).fields.items() if k != "61"}),
         "30"),
        (HostMessage(mti="0500", fields={**_settle(1, BatchTotals()).fields, "63": "12"}), "30"),
        (HostMessage(mti="0500", fields={**_settle(1, BatchTotals()).fields, "3": "000000"}), "12"),
        (HostMessage(mti="0320", fields={**_upload("sale", 1, 1, None).fields, "3": "310000"}), "12"),
        (HostMessage(mti="0800", fields={**_ids_and_time(), "3": "123456", "11": "000001"}), "12"),
        (HostMessage(mti="0400", fields={"11": "000001", "41": TID}), "30"),
        (HostMessage(mti="0100", fields={"11": "000001", "41": TID}), "12"),
    ],
)
def test_malformed_or_unsupported_requests(host: Acquirer, request_: HostMessage, code: str) -> None:
    answer = host.respond(request_)
    assert answer is not None and answer.response_code == code
    assert host.ledger == ()


def test_responses_get_no_answer(host: Acquirer) -> None:
    for mti in ("0210", "0230", "0410", "0810"):
        assert host.respond(HostMessage(mti=mti, fields={"39": "00"})) is None
