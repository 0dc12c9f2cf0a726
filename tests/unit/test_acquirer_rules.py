"""The acquirer simulator is as strict as a real acquirer (issue 10): every mandatory field of
docs/host-link.md's table, the content a real host refuses, and the ledger rules that a lax host
gets wrong (another card on a booked key, a resend after its reversal, a settled batch, a
replayed cryptogram, a malformed cryptogram)."""

from __future__ import annotations

import logging
from datetime import datetime

import pytest

from drivers.acquirer.events import HostMessage
from drivers.acquirer.spec import BatchTotals
from drivers.card_reader.events import EntryMode, StartRead
from drivers.emv import tlv
from drivers.sensitive import Secret
from emulator.acquirer.core import Acquirer
from emulator.card_reader.cards import get_card
from emulator.card_reader.emv import encrypt_pin_block, field_55, first_ac
from terminal.host.messages import (
    advice_request,
    echo_request,
    match,
    reversal_request,
    sale_request,
    settlement_request,
)

TID, MID = "TERM0001", "MERCHANT0000001"
WHEN = datetime(2025, 1, 15, 14, 30, 15)
HOST_NOW = datetime(2025, 1, 15, 14, 30, 16)


@pytest.fixture
def host() -> Acquirer:
    return Acquirer(now=lambda: HOST_NOW)


def _icc(card: str, amount: int, atc: int) -> bytes:
    read = StartRead(amount_minor=amount, currency="156", modes=frozenset({EntryMode.CHIP}), timeout_s=30)
    return field_55(first_ac(get_card(card), read, country="156", today=WHEN.date(), atc=atc), contactless=False)


def _chip(stan: int = 1, amount: int = 12500, card: str = "approved", atc: int | None = None) -> HostMessage:
    c = get_card(card)
    return sale_request(
        stan=stan, amount_minor=amount, pan=Secret(c.pan), entry_mode="chip", expiry=Secret(c.expiry), track2=None,
        icc_data=Secret(_icc(card, amount, stan if atc is None else atc)), pan_sequence=c.pan_sequence,
        terminal_id=TID, merchant_id=MID, currency="156", batch=1, when=WHEN,
    )


def _swipe(stan: int = 1, amount: int = 1000, card: str = "approved-swipe") -> HostMessage:
    c = get_card(card)
    return sale_request(
        stan=stan, amount_minor=amount, pan=Secret(c.pan), entry_mode="swipe", expiry=Secret(c.expiry),
        track2=Secret(c.track2), icc_data=None, pan_sequence=None, terminal_id=TID, merchant_id=MID,
        currency="156", batch=1, when=WHEN,
    )


def _with(request: HostMessage, **changes: str | bytes | None) -> HostMessage:
    """The request with fields changed (DE n as `f<n>`); None removes the field."""
    fields = dict(request.fields)
    for name, value in changes.items():
        fields.pop(name[1:], None)
        if value is not None:
            fields[name[1:]] = value
    return HostMessage(mti=request.mti, fields=fields)


def _code(host: Acquirer, request: HostMessage) -> str | None:
    answer = host.respond(request)
    assert answer is not None and match(request, answer)
    return answer.response_code


def _reversal(stan: int = 1, amount: int = 12500) -> HostMessage:
    return reversal_request(stan=stan, amount_minor=amount, reason="98", original_when=WHEN, terminal_id=TID,
                            merchant_id=MID, currency="156", batch=1)


def _advice(stan: int = 9) -> HostMessage:
    return advice_request(stan=stan, amount_minor=3000, offline_auth_code="Y10001", entry_mode="chip", pan=None,
                          terminal_id=TID, merchant_id=MID, currency="156", batch=1, when=WHEN)


def test_the_terminals_own_requests_pass(host: Acquirer) -> None:
    assert _code(host, _chip()) == "00"
    assert _code(host, _swipe(2)) == "00"
    assert _code(host, _advice()) == "00"
    assert _code(host, _reversal(2, 1000)) == "00"
    echo = echo_request(stan=5, terminal_id=TID, merchant_id=MID, when=WHEN)
    assert _code(host, echo) == "00"


@pytest.mark.parametrize("field", ["2", "3", "4", "12", "13", "22", "25", "42", "49", "60"])
def test_a_sale_without_a_mandatory_field_is_a_format_error(host: Acquirer, field: str) -> None:
    assert _code(host, _with(_swipe(), **{f"f{field}": None})) == "30"
    assert host.ledger == ()


@pytest.mark.parametrize("field", ["4", "39", "49", "60"])
def test_a_reversal_without_a_mandatory_field_is_a_format_error(host: Acquirer, field: str) -> None:
    assert _code(host, _with(_reversal(), **{f"f{field}": None})) == "30"


def test_a_reversal_with_an_unknown_reason_is_a_format_error(host: Acquirer) -> None:
    assert _code(host, _chip()) == "00"
    assert _code(host, _with(_reversal(), f39="ZZ")) == "30"
    assert host.net_effect(TID, "000001") == 12500  # not reversed


def test_an_advice_without_its_offline_auth_code_is_a_format_error(host: Acquirer) -> None:
    assert _code(host, _with(_advice(), f38=None)) == "30"
    assert host.ledger == ()


def test_an_0800_without_de_11_or_41_is_not_answered(host: Acquirer, caplog: pytest.LogCaptureFixture) -> None:
    echo = echo_request(stan=5, terminal_id=TID, merchant_id=MID, when=WHEN)
    with caplog.at_level(logging.WARNING):
        assert host.respond(_with(echo, f11=None)) is None
        assert host.respond(_with(echo, f41=None)) is None
    assert any("cannot be matched" in r.getMessage() for r in caplog.records)
    assert _code(host, _with(echo, f42=None)) == "30"


@pytest.mark.parametrize(
    ("changes", "code"),
    [
        ({"f4": "000000000000"}, "13"),
        ({"f11": "000000"}, "30"),
        ({"f12": "256199"}, "30"),
        ({"f13": "1340"}, "30"),
        ({"f13": "0230"}, "30"),
        ({"f14": "3013"}, "30"),
        ({"f14": "2412"}, "54"),  # expired by the host's date (January 2025)
        ({"f22": "999"}, "30"),
        ({"f25": "99"}, "30"),
        ({"f49": "840"}, "58"),  # the terminal is set up for CNY (156)
        ({"f60": "1"}, "30"),
        ({"f35": get_card("approved").track2}, "30"),  # DE 2 and DE 35 name different cards
    ],
)
def test_content_a_real_acquirer_refuses(host: Acquirer, changes: dict[str, str], code: str) -> None:
    assert _code(host, _with(_swipe(), **changes)) == code


def test_a_pin_block_from_a_terminal_without_a_pin_pad_is_a_format_error(host: Acquirer) -> None:
    card = get_card("pin-required")
    sale = _with(_chip(card="pin-required"), f22="052", f52=encrypt_pin_block("1234", card.pan))
    assert _code(host, sale) == "30"
    assert _code(host, _with(sale, f22="051", f11="000002")) == "00"


def test_a_chip_sale_carries_its_icc_data(host: Acquirer) -> None:
    assert _code(host, _with(_chip(), f55=None)) == "30"
    assert _code(host, _with(_swipe(), f35=None)) == "30"  # a swipe carries its track 2


def test_the_amount_is_the_one_the_card_signed(host: Acquirer) -> None:
    assert _code(host, _with(_chip(amount=12500), f4="000000000999")) == "13"


def test_a_cryptogram_of_the_wrong_length_is_a_format_error(host: Acquirer) -> None:
    items = tlv.decode(_chip().fields["55"])  # type: ignore[arg-type]
    bad = tlv.encode([(i.tag, i.value[:7] if i.tag == "9F26" else i.value) for i in items])
    assert _code(host, _with(_chip(), f55=bad)) == "30"
    assert _code(host, _with(_chip(), f55=b"\x9f\x26\x20")) == "30"  # not even TLV
    assert host.internal_errors == []


def test_another_card_on_a_booked_key_is_a_duplicate_not_a_replay(host: Acquirer) -> None:
    assert _code(host, _swipe(1, card="approved-swipe")) == "00"
    other = _swipe(1, card="approved")  # same terminal, STAN and date; same amount
    answer = host.respond(other)
    assert answer is not None and answer.response_code == "94" and "38" not in answer.fields
    assert _code(host, _swipe(1, card="approved-swipe")) == "00"  # the real retry is still replayed


def test_the_original_resent_after_its_reversal_is_refused(host: Acquirer) -> None:
    sale = _chip()
    assert _code(host, sale) == "00"
    assert _code(host, _reversal()) == "00"
    assert _code(host, sale) == "12"  # the tombstone wins over the duplicate rule
    assert host.net_effect(TID, "000001") == 0


def test_a_sale_for_a_settled_batch_is_refused(host: Acquirer) -> None:
    assert _code(host, _swipe(1)) == "00"
    totals = BatchTotals(sales_count=1, sales_amount=1000)
    settle = settlement_request(stan=2, totals=totals, terminal_id=TID, merchant_id=MID, currency="156", batch=1,
                                when=WHEN)
    assert _code(host, settle) == "00"
    assert _code(host, _swipe(3)) == "12"
    assert host.batch_totals(TID, 1) == totals


def test_a_replayed_cryptogram_is_refused(host: Acquirer) -> None:
    first = _chip(1, atc=7)
    assert _code(host, first) == "00"
    assert _code(host, _with(_chip(2), f55=first.fields["55"])) == "05"  # the first sale's ARQC again
    assert _code(host, _chip(3, atc=8)) == "00"
    assert _code(host, first) == "00"  # the retry of the first is a duplicate, replayed


def test_a_declined_cryptogram_may_come_again_with_a_new_pin(host: Acquirer) -> None:
    card = get_card("pin-required")
    first = _with(_chip(1, card="pin-required"), f52=encrypt_pin_block("4321", card.pan))
    assert _code(host, first) == "55"
    retry = _with(_chip(2, card="pin-required"), f55=first.fields["55"], f52=encrypt_pin_block("1234", card.pan))
    assert _code(host, retry) == "00"  # the PIN retry of the same card session
    assert _code(host, _with(retry, f11="000003")) == "05"  # now approved: that ARQC is spent
