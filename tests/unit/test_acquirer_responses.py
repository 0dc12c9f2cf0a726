"""Host-link responses: a golden frame for every response MTI the terminal reads (0810 sign-on,
0410, 0230, 0510, 0330) and its typed answer, plus the parsers' refusals. The sale's 0210 is in
test_acquirer_codec.py and test_host_link.py.

Frames are written out byte by byte from docs/host-link.md; each case checks bytes -> message
-> typed answer and message -> bytes.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime

import pytest

from drivers.acquirer.codec import AcquirerCodec
from drivers.acquirer.events import HostMessage
from drivers.acquirer.spec import BatchTotals, WorkingKeys, check_value
from drivers.errors import RemoteProtocolError
from drivers.events import Role
from drivers.sensitive import Secret
from terminal.host.messages import (
    HostAnswer,
    ReversalAnswer,
    SettlementAnswer,
    SignOnAnswer,
    parse_advice_response,
    parse_network_response,
    parse_reversal_response,
    parse_sale_response,
    parse_settlement_response,
    parse_sign_on_response,
    parse_upload_response,
    sign_off_request,
)

PIN_KEY = "00112233445566778899AABBCCDDEEFF"  # test key material, not a real key
MAC_KEY = "FFEEDDCCBBAA99887766554433221100"
WHEN = datetime(2025, 1, 15, 14, 30, 15)
_ID_FIELDS = {"41": "TERM0001", "42": "MERCHANT0000001"}
_TXN = {**_ID_FIELDS, "49": "156", "60": "000001"}

SIGN_ON_OK_FRAME = bytes.fromhex(
    "00 97 "  # length 151
    "30 38 31 30 "  # MTI 0810
    "20 38 00 00 02 C0 00 14 "  # bitmap: 3 11 12 13 39 41 42 60 62
    "39 32 30 30 30 30 "  # DE 3 processing code: "920000"
    "30 30 30 30 31 30 "  # DE 11 STAN: "000010"
    "31 34 33 30 31 36 "  # DE 12 time: "143016"
    "30 31 31 35 "  # DE 13 date: "0115"
    "30 30 "  # DE 39 response code: "00"
    "54 45 52 4D 30 30 30 31 "  # DE 41 terminal id: "TERM0001"
    "4D 45 52 43 48 41 4E 54 30 30 30 30 30 30 31 "  # DE 42 merchant id: "MERCHANT0000001"
    "30 30 36 30 30 30 30 30 31 "  # DE 60 batch: LLL "006" + "000001"
    "30 38 30 "  # DE 62 working keys: LLL "080"
    # PIN key "00112233445566778899AABBCCDDEEFF" under TEST_TMK: "79E5F977B95CB2664540340E03D3F4A9"
    "37 39 45 35 46 39 37 37 42 39 35 43 42 32 36 36 34 35 34 30 33 34 30 45 30 33 44 33 46 34 41 39 "
    "46 42 30 39 37 35 39 39 "  #   the clear key's KCV "FB097599"
    # MAC key "FFEEDDCCBBAA99887766554433221100" under TEST_TMK: "24641B3C4690B135A1CB24C22EEF8D54"
    "32 34 36 34 31 42 33 43 34 36 39 30 42 31 33 35 41 31 43 42 32 34 43 32 32 45 45 46 38 44 35 34 "
    "46 33 39 43 30 39 42 44 "  #   the clear key's KCV "F39C09BD"
)

REVERSAL_OK_FRAME = bytes.fromhex(
    "00 53 "  # length 83
    "30 34 31 30 "  # MTI 0410
    "30 38 00 00 02 C0 80 10 "  # bitmap: 3 4 11 12 13 39 41 42 49 60
    "30 30 30 30 30 30 "  # DE 3 processing code: "000000"
    "30 30 30 30 30 30 30 31 32 35 30 30 "  # DE 4 amount: "000000012500"
    "30 30 30 31 32 33 "  # DE 11 STAN: "000123"
    "31 34 33 31 32 30 "  # DE 12 time: "143120"
    "30 31 31 35 "  # DE 13 date: "0115"
    "30 30 "  # DE 39 response code: "00"
    "54 45 52 4D 30 30 30 31 "  # DE 41 terminal id: "TERM0001"
    "4D 45 52 43 48 41 4E 54 30 30 30 30 30 30 31 "  # DE 42 merchant id: "MERCHANT0000001"
    "31 35 36 "  # DE 49 currency: "156"
    "30 30 36 30 30 30 30 30 31 "  # DE 60 batch: LLL "006" + "000001"
)

ADVICE_OK_FRAME = bytes.fromhex(
    "00 5F "  # length 95
    "30 32 33 30 "  # MTI 0230
    "30 38 00 00 0A C0 80 10 "  # bitmap: 3 4 11 12 13 37 39 41 42 49 60
    "30 30 30 30 30 30 "  # DE 3 processing code: "000000"
    "30 30 30 30 30 30 30 30 33 30 30 30 "  # DE 4 amount: "000000003000"
    "30 30 30 31 32 36 "  # DE 11 STAN: "000126"
    "31 34 33 30 31 36 "  # DE 12 time: "143016"
    "30 31 31 35 "  # DE 13 date: "0115"
    "30 30 30 30 30 30 30 30 30 30 30 32 "  # DE 37 RRN: "000000000002"
    "30 30 "  # DE 39 response code: "00"
    "54 45 52 4D 30 30 30 31 "  # DE 41 terminal id: "TERM0001"
    "4D 45 52 43 48 41 4E 54 30 30 30 30 30 30 31 "  # DE 42 merchant id: "MERCHANT0000001"
    "31 35 36 "  # DE 49 currency: "156"
    "30 30 36 30 30 30 30 30 31 "  # DE 60 batch: LLL "006" + "000001"
)

SETTLE_95_FRAME = bytes.fromhex(
    "00 7A "  # length 122
    "30 35 31 30 "  # MTI 0510
    "20 38 00 00 02 C0 80 12 "  # bitmap: 3 11 12 13 39 41 42 49 60 63
    "39 32 30 30 30 30 "  # DE 3 processing code: "920000"
    "30 30 30 31 32 37 "  # DE 11 STAN: "000127"
    "31 38 30 30 30 31 "  # DE 12 time: "180001"
    "30 31 31 35 "  # DE 13 date: "0115"
    "39 35 "  # DE 39 response code: "95"
    "54 45 52 4D 30 30 30 31 "  # DE 41 terminal id: "TERM0001"
    "4D 45 52 43 48 41 4E 54 30 30 30 30 30 30 31 "  # DE 42 merchant id: "MERCHANT0000001"
    "31 35 36 "  # DE 49 currency: "156"
    "30 30 36 30 30 30 30 30 31 "  # DE 60 batch: LLL "006" + "000001"
    "30 34 38 "  # DE 63 totals: LLL "048"
    "30 30 30 31 "  #   sales count "0001"
    "30 30 30 30 30 30 30 31 32 35 30 30 "  #   sales amount "000000012500"
    "30 30 30 31 "  #   voids count "0001"
    "30 30 30 30 30 30 30 31 32 35 30 30 "  #   voids amount "000000012500"
    "30 30 30 31 "  #   refunds count "0001"
    "30 30 30 30 30 30 30 30 35 30 30 30 "  #   refunds amount "000000005000"
)

UPLOAD_OK_FRAME = bytes.fromhex(
    "00 53 "  # length 83
    "30 33 33 30 "  # MTI 0330
    "30 38 00 00 02 C0 80 10 "  # bitmap: 3 4 11 12 13 39 41 42 49 60
    "30 30 30 30 30 30 "  # DE 3 processing code: "000000"
    "30 30 30 30 30 30 30 31 32 35 30 30 "  # DE 4 amount: "000000012500"
    "30 30 30 31 32 33 "  # DE 11 STAN: "000123"
    "31 38 30 30 30 32 "  # DE 12 time: "180002"
    "30 31 31 35 "  # DE 13 date: "0115"
    "30 30 "  # DE 39 response code: "00"
    "54 45 52 4D 30 30 30 31 "  # DE 41 terminal id: "TERM0001"
    "4D 45 52 43 48 41 4E 54 30 30 30 30 30 30 31 "  # DE 42 merchant id: "MERCHANT0000001"
    "31 35 36 "  # DE 49 currency: "156"
    "30 30 36 30 30 30 30 30 31 "  # DE 60 batch: LLL "006" + "000001"
)


# (what, the message spelled out, its frame, parser, the typed answer)
RESPONSES = [
    (
        "sign-on",
        HostMessage(mti="0810", fields={"3": "920000", "11": "000010", "12": "143016", "13": "0115", "39": "00",
                                         **_ID_FIELDS, "60": "000001",
                                         "62": "79E5F977B95CB2664540340E03D3F4A9" "FB097599"
                                               "24641B3C4690B135A1CB24C22EEF8D54" "F39C09BD"}),
        SIGN_ON_OK_FRAME,
        parse_sign_on_response,
        SignOnAnswer(response_code="00", batch=1, host_time=None,
                     keys=WorkingKeys(pin_key=Secret(PIN_KEY), mac_key=Secret(MAC_KEY))),
    ),
    (
        "reversal",
        HostMessage(mti="0410", fields={"3": "000000", "4": "000000012500", "11": "000123", "12": "143120",
                                         "13": "0115", "39": "00", **_TXN}),
        REVERSAL_OK_FRAME,
        parse_reversal_response,
        ReversalAnswer(response_code="00"),
    ),
    (
        "advice",
        HostMessage(mti="0230", fields={"3": "000000", "4": "000000003000", "11": "000126", "12": "143016",
                                         "13": "0115", "37": "000000000002", "39": "00", **_TXN}),
        ADVICE_OK_FRAME,
        parse_advice_response,
        HostAnswer(response_code="00"),
    ),
    (
        "settlement",
        HostMessage(mti="0510", fields={"3": "920000", "11": "000127", "12": "180001", "13": "0115", "39": "95",
                                         **_TXN, "63": "000100000001250000010000000125000001000000005000"}),
        SETTLE_95_FRAME,
        parse_settlement_response,
        SettlementAnswer(response_code="95", batch=1, host_totals=BatchTotals(
            sales_count=1, sales_amount=12500, voids_count=1, voids_amount=12500, refunds_count=1,
            refunds_amount=5000)),
    ),
    (
        "upload",
        HostMessage(mti="0330", fields={"3": "000000", "4": "000000012500", "11": "000123", "12": "180002",
                                         "13": "0115", "39": "00", **_TXN}),
        UPLOAD_OK_FRAME,
        parse_upload_response,
        HostAnswer(response_code="00"),
    ),
]


def _decode(role: Role, frame: bytes) -> HostMessage:
    codec = AcquirerCodec(role)
    codec.receive_data(frame)
    message = codec.next_event()
    assert message is not None and codec.next_event() is None
    return message


@pytest.mark.parametrize(("what", "message", "frame", "parse", "answer"), RESPONSES, ids=[r[0] for r in RESPONSES])
def test_response_golden(
    what: str, message: HostMessage, frame: bytes, parse: Callable[[HostMessage], HostAnswer], answer: HostAnswer
) -> None:
    assert _decode(Role.HOST, frame) == message
    assert AcquirerCodec(Role.DEVICE).send(message) == frame
    assert parse(message) == answer


def test_check_values_and_keys_stay_secret() -> None:
    assert (check_value(PIN_KEY), check_value(MAC_KEY)) == ("FB097599", "F39C09BD")
    message = _decode(Role.HOST, SIGN_ON_OK_FRAME)
    answer = parse_sign_on_response(message)
    assert answer.keys is not None and answer.keys.pin_key.reveal() == PIN_KEY
    for shown in (repr(message), repr(answer)):
        assert PIN_KEY not in shown and MAC_KEY not in shown and "79E5F977B95CB2664540340E03D3F4A9" not in shown


def test_answer_properties() -> None:
    assert ReversalAnswer(response_code="25").done and not ReversalAnswer(response_code="96").done
    assert ReversalAnswer(response_code="A0").sign_on_required
    out = SettlementAnswer(response_code="95", batch=1, host_totals=None)
    assert out.out_of_balance and not out.balanced
    assert SettlementAnswer(response_code="00", batch=1, host_totals=None).balanced


def test_sign_off_and_network_answers() -> None:
    request = sign_off_request(stan=12, batch=3, when=WHEN, terminal_id="TERM0001", merchant_id="MERCHANT0000001")
    assert (request.mti, request.fields["3"], request.fields["60"]) == ("0800", "930000", "000003")
    bare = HostMessage(mti="0810", fields={"3": "930000", "11": "000012", "39": "00", **_ID_FIELDS})
    assert parse_network_response(bare) == SignOnAnswer(response_code="00", batch=None, keys=None, host_time=None)
    with pytest.raises(RemoteProtocolError):
        parse_sign_on_response(bare)  # an approved sign-on must bring keys


@pytest.mark.parametrize(
    ("parse", "mti"),
    [
        (parse_sale_response, "0210"), (parse_sign_on_response, "0810"), (parse_reversal_response, "0410"),
        (parse_advice_response, "0230"), (parse_settlement_response, "0510"), (parse_upload_response, "0330"),
    ],
)
def test_parsers_check_mti_and_response_code(parse: Callable[[HostMessage], HostAnswer], mti: str) -> None:
    with pytest.raises(RemoteProtocolError):
        parse(HostMessage(mti="0110", fields={"39": "00"}))
    with pytest.raises(RemoteProtocolError):
        parse(HostMessage(mti=mti, fields={}))


@pytest.mark.parametrize(
    ("key", "value"),
    [("62", "00" * 40), ("62", PIN_KEY + "A8FAED6A"), ("62", "x" * 80), ("63", "1" * 47), ("60", "1234567")],
)
def test_parsers_reject_broken_private_fields(key: str, value: str) -> None:
    mti, parse = ("0510", parse_settlement_response) if key in ("63", "60") else ("0810", parse_sign_on_response)
    message = HostMessage(mti=mti, fields={"39": "00", key: value})
    with pytest.raises(RemoteProtocolError) as info:
        parse(message)
    assert value not in str(info.value)


