"""Host-link requests: a golden frame for every request MTI the terminal sends (0800 sign-on and
echo, 0200 void and refund, 0400 and 0401 reversal, 0220 advice, 0500 settlement, 0320 batch
upload), and the builders' refusals. The sale 0200 is in test_acquirer_codec.py.

Frames are written out byte by byte from docs/host-link.md (ASCII text, ASCII LL/LLL lengths,
binary bitmap); each case checks builder -> message -> bytes and bytes -> message.
"""

from __future__ import annotations

from datetime import datetime
from typing import TypedDict

import pytest

from drivers.acquirer.codec import AcquirerCodec
from drivers.acquirer.events import HostMessage
from drivers.acquirer.spec import BatchTotals, OriginalRef
from drivers.events import Role
from drivers.sensitive import Secret
from terminal.host.messages import (
    advice_request,
    batch_upload_request,
    echo_request,
    refund_request,
    reversal_request,
    settlement_request,
    sign_on_request,
    void_request,
)

PAN = "4761739001010010"  # public test PAN (emulator/card_reader/cards.toml "approved")
WHEN = datetime(2025, 1, 15, 14, 30, 15)
SALE_123 = OriginalRef(batch=1, stan=123, date="0115")  # the sale of test_acquirer_codec.SALE


class _Ids(TypedDict):
    terminal_id: str
    merchant_id: str


class _Money(_Ids):
    currency: str
    batch: int


IDS: _Ids = {"terminal_id": "TERM0001", "merchant_id": "MERCHANT0000001"}
MONEY: _Money = {**IDS, "currency": "156", "batch": 1}
_TXN = {"41": "TERM0001", "42": "MERCHANT0000001", "49": "156", "60": "000001"}
_ID_FIELDS = {"41": "TERM0001", "42": "MERCHANT0000001"}

SIGN_ON_FRAME = bytes.fromhex(
    "00 42 "  # length 66
    "30 38 30 30 "  # MTI 0800
    "20 38 00 00 00 C0 00 10 "  # bitmap: 3 11 12 13 41 42 60
    "39 32 30 30 30 30 "  # DE 3 processing code: "920000"
    "30 30 30 30 31 30 "  # DE 11 STAN: "000010"
    "31 34 33 30 31 35 "  # DE 12 time: "143015"
    "30 31 31 35 "  # DE 13 date: "0115"
    "54 45 52 4D 30 30 30 31 "  # DE 41 terminal id: "TERM0001"
    "4D 45 52 43 48 41 4E 54 30 30 30 30 30 30 31 "  # DE 42 merchant id: "MERCHANT0000001"
    "30 30 36 30 30 30 30 30 31 "  # DE 60 batch: LLL "006" + "000001"
)

ECHO_FRAME = bytes.fromhex(
    "00 39 "  # length 57
    "30 38 30 30 "  # MTI 0800
    "20 38 00 00 00 C0 00 00 "  # bitmap: 3 11 12 13 41 42
    "39 39 30 30 30 30 "  # DE 3 processing code: "990000"
    "30 30 30 30 31 31 "  # DE 11 STAN: "000011"
    "31 34 33 30 31 35 "  # DE 12 time: "143015"
    "30 31 31 35 "  # DE 13 date: "0115"
    "54 45 52 4D 30 30 30 31 "  # DE 41 terminal id: "TERM0001"
    "4D 45 52 43 48 41 4E 54 30 30 30 30 30 30 31 "  # DE 42 merchant id: "MERCHANT0000001"
)

VOID_FRAME = bytes.fromhex(
    "00 75 "  # length 117
    "30 32 30 30 "  # MTI 0200
    "30 38 00 80 0C C0 80 18 "  # bitmap: 3 4 11 12 13 25 37 38 41 42 49 60 61
    "30 32 30 30 30 30 "  # DE 3 processing code: "020000"
    "30 30 30 30 30 30 30 31 32 35 30 30 "  # DE 4 amount: "000000012500"
    "30 30 30 31 32 34 "  # DE 11 STAN: "000124"
    "31 34 33 30 31 35 "  # DE 12 time: "143015"
    "30 31 31 35 "  # DE 13 date: "0115"
    "30 30 "  # DE 25 condition: "00"
    "30 30 30 30 30 30 30 30 30 30 30 31 "  # DE 37 RRN: "000000000001"
    "30 30 30 30 30 31 "  # DE 38 auth code: "000001"
    "54 45 52 4D 30 30 30 31 "  # DE 41 terminal id: "TERM0001"
    "4D 45 52 43 48 41 4E 54 30 30 30 30 30 30 31 "  # DE 42 merchant id: "MERCHANT0000001"
    "31 35 36 "  # DE 49 currency: "156"
    "30 30 36 30 30 30 30 30 31 "  # DE 60 batch: LLL "006" + "000001"
    "30 30 30 30 30 31 "  #   original batch "000001"
    "30 30 30 31 32 33 "  #   original STAN "000123"
    "30 31 31 35 "  #   original date "0115"
)

REFUND_FRAME = bytes.fromhex(
    "00 6F "  # length 111
    "30 32 30 30 "  # MTI 0200
    "30 38 00 80 08 C0 80 18 "  # bitmap: 3 4 11 12 13 25 37 41 42 49 60 61
    "32 30 30 30 30 30 "  # DE 3 processing code: "200000"
    "30 30 30 30 30 30 30 30 35 30 30 30 "  # DE 4 amount: "000000005000"
    "30 30 30 31 32 35 "  # DE 11 STAN: "000125"
    "31 34 33 30 31 35 "  # DE 12 time: "143015"
    "30 31 31 35 "  # DE 13 date: "0115"
    "30 30 "  # DE 25 condition: "00"
    "30 30 30 30 30 30 30 30 30 30 30 31 "  # DE 37 RRN: "000000000001"
    "54 45 52 4D 30 30 30 31 "  # DE 41 terminal id: "TERM0001"
    "4D 45 52 43 48 41 4E 54 30 30 30 30 30 30 31 "  # DE 42 merchant id: "MERCHANT0000001"
    "31 35 36 "  # DE 49 currency: "156"
    "30 30 36 30 30 30 30 30 31 "  # DE 60 batch: LLL "006" + "000001"
    "30 30 30 30 30 31 "  #   original batch "000001"
    "30 30 30 31 32 33 "  #   original STAN "000123"
    "30 31 31 35 "  #   original date "0115"
)

REVERSAL_FRAME = bytes.fromhex(
    "00 55 "  # length 85
    "30 34 30 30 "  # MTI 0400
    "30 38 00 80 02 C0 80 10 "  # bitmap: 3 4 11 12 13 25 39 41 42 49 60
    "30 30 30 30 30 30 "  # DE 3 processing code: "000000"
    "30 30 30 30 30 30 30 31 32 35 30 30 "  # DE 4 amount: "000000012500"
    "30 30 30 31 32 33 "  # DE 11 STAN: "000123"
    "31 34 33 30 31 35 "  # DE 12 time: "143015"
    "30 31 31 35 "  # DE 13 date: "0115"
    "30 30 "  # DE 25 condition: "00"
    "39 38 "  # DE 39 response code: "98"
    "54 45 52 4D 30 30 30 31 "  # DE 41 terminal id: "TERM0001"
    "4D 45 52 43 48 41 4E 54 30 30 30 30 30 30 31 "  # DE 42 merchant id: "MERCHANT0000001"
    "31 35 36 "  # DE 49 currency: "156"
    "30 30 36 30 30 30 30 30 31 "  # DE 60 batch: LLL "006" + "000001"
)

ADVICE_FRAME = bytes.fromhex(
    "00 6E "  # length 110
    "30 32 32 30 "  # MTI 0220
    "70 38 04 80 04 C0 80 10 "  # bitmap: 2 3 4 11 12 13 22 25 38 41 42 49 60
    "31 36 34 37 36 31 37 33 39 30 30 31 30 31 30 30 31 30 "  # DE 2 PAN: LL "16" + "4761739001010010"
    "30 30 30 30 30 30 "  # DE 3 processing code: "000000"
    "30 30 30 30 30 30 30 30 33 30 30 30 "  # DE 4 amount: "000000003000"
    "30 30 30 31 32 36 "  # DE 11 STAN: "000126"
    "31 32 30 30 30 30 "  # DE 12 time: "120000"
    "30 31 31 35 "  # DE 13 date: "0115"
    "30 35 31 "  # DE 22 entry mode: "051"
    "30 30 "  # DE 25 condition: "00"
    "59 31 30 30 30 31 "  # DE 38 auth code: "Y10001"
    "54 45 52 4D 30 30 30 31 "  # DE 41 terminal id: "TERM0001"
    "4D 45 52 43 48 41 4E 54 30 30 30 30 30 30 31 "  # DE 42 merchant id: "MERCHANT0000001"
    "31 35 36 "  # DE 49 currency: "156"
    "30 30 36 30 30 30 30 30 31 "  # DE 60 batch: LLL "006" + "000001"
)

SETTLE_FRAME = bytes.fromhex(
    "00 78 "  # length 120
    "30 35 30 30 "  # MTI 0500
    "20 38 00 00 00 C0 80 12 "  # bitmap: 3 11 12 13 41 42 49 60 63
    "39 32 30 30 30 30 "  # DE 3 processing code: "920000"
    "30 30 30 31 32 37 "  # DE 11 STAN: "000127"
    "31 38 30 30 30 30 "  # DE 12 time: "180000"
    "30 31 31 35 "  # DE 13 date: "0115"
    "54 45 52 4D 30 30 30 31 "  # DE 41 terminal id: "TERM0001"
    "4D 45 52 43 48 41 4E 54 30 30 30 30 30 30 31 "  # DE 42 merchant id: "MERCHANT0000001"
    "31 35 36 "  # DE 49 currency: "156"
    "30 30 36 30 30 30 30 30 31 "  # DE 60 batch: LLL "006" + "000001"
    "30 34 38 "  # DE 63 totals: LLL "048"
    "30 30 30 32 "  #   sales count "0002"
    "30 30 30 30 30 30 30 31 35 35 30 30 "  #   sales amount "000000015500"
    "30 30 30 31 "  #   voids count "0001"
    "30 30 30 30 30 30 30 31 32 35 30 30 "  #   voids amount "000000012500"
    "30 30 30 31 "  #   refunds count "0001"
    "30 30 30 30 30 30 30 30 35 30 30 30 "  #   refunds amount "000000005000"
)

UPLOAD_FRAME = bytes.fromhex(
    "00 65 "  # length 101
    "30 33 32 30 "  # MTI 0320
    "30 38 00 80 0C C0 80 10 "  # bitmap: 3 4 11 12 13 25 37 38 41 42 49 60
    "30 30 30 30 30 30 "  # DE 3 processing code: "000000"
    "30 30 30 30 30 30 30 31 32 35 30 30 "  # DE 4 amount: "000000012500"
    "30 30 30 31 32 33 "  # DE 11 STAN: "000123"
    "31 34 33 30 31 35 "  # DE 12 time: "143015"
    "30 31 31 35 "  # DE 13 date: "0115"
    "30 30 "  # DE 25 condition: "00"
    "30 30 30 30 30 30 30 30 30 30 30 31 "  # DE 37 RRN: "000000000001"
    "30 30 30 30 30 31 "  # DE 38 auth code: "000001"
    "54 45 52 4D 30 30 30 31 "  # DE 41 terminal id: "TERM0001"
    "4D 45 52 43 48 41 4E 54 30 30 30 30 30 30 31 "  # DE 42 merchant id: "MERCHANT0000001"
    "31 35 36 "  # DE 49 currency: "156"
    "30 30 36 30 30 30 30 30 31 "  # DE 60 batch: LLL "006" + "000001"
)

REVERSAL_REPEAT_FRAME = REVERSAL_FRAME[:5] + bytes.fromhex("31") + REVERSAL_FRAME[6:]  # MTI 0401: 4th digit only


REQUESTS = [
    (
        "sign-on",
        sign_on_request(stan=10, batch=1, when=WHEN, **IDS),
        HostMessage(mti="0800", fields={"3": "920000", "11": "000010", "12": "143015", "13": "0115",
                                         **_ID_FIELDS, "60": "000001"}),
        SIGN_ON_FRAME,
    ),
    (
        "echo",
        echo_request(stan=11, when=WHEN, **IDS),
        HostMessage(mti="0800", fields={"3": "990000", "11": "000011", "12": "143015", "13": "0115", **_ID_FIELDS}),
        ECHO_FRAME,
    ),
    (
        "void",
        void_request(stan=124, amount_minor=12500, original=SALE_123, original_rrn="000000000001",
                     original_auth_code="000001", when=WHEN, **MONEY),
        HostMessage(mti="0200", fields={"3": "020000", "4": "000000012500", "11": "000124", "12": "143015",
                                         "13": "0115", "25": "00", "37": "000000000001", "38": "000001", **_TXN,
                                         "61": "0000010001230115"}),
        VOID_FRAME,
    ),
    (
        "refund",
        refund_request(stan=125, amount_minor=5000, original=SALE_123, original_rrn="000000000001",
                       original_auth_code=None, when=WHEN, **MONEY),
        HostMessage(mti="0200", fields={"3": "200000", "4": "000000005000", "11": "000125", "12": "143015",
                                         "13": "0115", "25": "00", "37": "000000000001", **_TXN,
                                         "61": "0000010001230115"}),
        REFUND_FRAME,
    ),
    (
        "reversal",
        reversal_request(stan=123, amount_minor=12500, reason="98", original_when=WHEN, **MONEY),
        HostMessage(mti="0400", fields={"3": "000000", "4": "000000012500", "11": "000123", "12": "143015",
                                         "13": "0115", "25": "00", "39": "98", **_TXN}),
        REVERSAL_FRAME,
    ),
    (
        "reversal-repeat",
        reversal_request(stan=123, amount_minor=12500, reason="98", original_when=WHEN, repeat=True, **MONEY),
        HostMessage(mti="0401", fields={"3": "000000", "4": "000000012500", "11": "000123", "12": "143015",
                                         "13": "0115", "25": "00", "39": "98", **_TXN}),
        REVERSAL_REPEAT_FRAME,
    ),
    (
        "advice",
        advice_request(stan=126, amount_minor=3000, offline_auth_code="Y10001", entry_mode="chip",
                       pan=Secret(PAN), when=datetime(2025, 1, 15, 12, 0, 0), **MONEY),
        HostMessage(mti="0220", fields={"2": PAN, "3": "000000", "4": "000000003000", "11": "000126",
                                         "12": "120000", "13": "0115", "22": "051", "25": "00", "38": "Y10001",
                                         **_TXN}),
        ADVICE_FRAME,
    ),
    (
        "settlement",
        settlement_request(
            stan=127, when=datetime(2025, 1, 15, 18, 0, 0), **MONEY,
            totals=BatchTotals(sales_count=2, sales_amount=15500, voids_count=1, voids_amount=12500,
                               refunds_count=1, refunds_amount=5000),
        ),
        HostMessage(mti="0500", fields={"3": "920000", "11": "000127", "12": "180000", "13": "0115", **_TXN,
                                         "63": "000200000001550000010000000125000001000000005000"}),
        SETTLE_FRAME,
    ),
    (
        "upload",
        batch_upload_request(stan=123, kind="sale", amount_minor=12500, when=WHEN, auth_code="000001",
                             rrn="000000000001", **MONEY),
        HostMessage(mti="0320", fields={"3": "000000", "4": "000000012500", "11": "000123", "12": "143015",
                                         "13": "0115", "25": "00", "37": "000000000001", "38": "000001", **_TXN}),
        UPLOAD_FRAME,
    ),
]

def _decode(role: Role, frame: bytes) -> HostMessage:
    codec = AcquirerCodec(role)
    codec.receive_data(frame)
    message = codec.next_event()
    assert message is not None and codec.next_event() is None
    return message


@pytest.mark.parametrize(("what", "built", "message", "frame"), REQUESTS, ids=[r[0] for r in REQUESTS])
def test_request_golden(what: str, built: HostMessage, message: HostMessage, frame: bytes) -> None:
    assert built == message
    assert AcquirerCodec(Role.HOST).send(built) == frame
    assert _decode(Role.DEVICE, frame) == message


@pytest.mark.parametrize(("what", "built", "message", "frame"), REQUESTS, ids=[r[0] for r in REQUESTS])
def test_request_byte_at_a_time(what: str, built: HostMessage, message: HostMessage, frame: bytes) -> None:
    codec = AcquirerCodec(Role.DEVICE)
    for byte in frame[:-1]:
        codec.receive_data(bytes([byte]))
        assert codec.next_event() is None
    codec.receive_data(frame[-1:])
    assert codec.next_event() == message
