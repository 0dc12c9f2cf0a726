"""The wallet gateway codec (drivers/wallet/codec.py): signing, payment-code shapes, the golden
request/answer bytes of docs/wallet-gateway.md, byte-at-a-time framing, and hostile input."""

from __future__ import annotations

import json

import pytest
from hypothesis import given
from hypothesis import strategies as st

from drivers.errors import FrameError, LocalProtocolError, RemoteProtocolError
from drivers.events import Role
from drivers.wallet.codec import (
    GatewayCall,
    GatewayReply,
    WalletCodec,
    answer_of,
    call_of,
    canonical,
    channel_of,
    encode_params,
    sign,
    verify,
)
from drivers.wallet.events import Channel, Pay, Query, Refund, Reverse, TradeState, WalletAnswer

# WeChat Pay's own example (pay.weixin.qq.com, "安全规范"): its published MD5 and HMAC-SHA256 signs.
WECHAT_PARAMS = {"appid": "wxd930ea5d5a258f4f", "mch_id": "10000100", "device_info": "1000", "body": "test",
                 "nonce_str": "ibuaiVcKdpRxkhJA"}
WECHAT_KEY = "192006250b4c09247ec02edce69f6a2d"
WECHAT_CANONICAL = ("appid=wxd930ea5d5a258f4f&body=test&device_info=1000&mch_id=10000100"
                    "&nonce_str=ibuaiVcKdpRxkhJA&key=192006250b4c09247ec02edce69f6a2d")
WECHAT_HMAC = "6A9AE1657590FD6257D693A078E1C3E4BB6BA4DC30B23E0EE2496E54170DACD6"

KEY = WalletCodec.TEST_KEY
SETTINGS = {"key": KEY, "mch_id": "1900000109", "terminal_id": "10000001"}

# docs/wallet-gateway.md, "Golden vectors": the pay request with nonce 5K8264ILTKCH16CQ2502SI8ZNMTM67VS
GOLDEN_PAY_BODY = (
    b'{"auth_code":"130000000000000000","body":"OpenTill","mch_id":"1900000109",'
    b'"nonce_str":"5K8264ILTKCH16CQ2502SI8ZNMTM67VS","out_trade_no":"T2026120100001",'
    b'"sign":"580C1297E5A6C6D65CA706DC9D6A4EE4F254D3B54FDCD75C2933BD46CF00A7F2",'
    b'"sign_type":"HMAC-SHA256","terminal_id":"10000001","total_fee":"1234"}'
)  # the sign checked with `openssl dgst -sha256 -hmac KEY` over the canonical string


def _codec(role: Role = Role.HOST) -> WalletCodec:
    codec = WalletCodec(role, SETTINGS)
    codec.nonce = lambda: "5K8264ILTKCH16CQ2502SI8ZNMTM67VS"
    return codec


def test_the_sign_is_wechats_own_example() -> None:
    assert canonical(WECHAT_PARAMS, WECHAT_KEY) == WECHAT_CANONICAL
    assert sign(WECHAT_PARAMS, WECHAT_KEY) == WECHAT_HMAC
    assert verify({**WECHAT_PARAMS, "sign": WECHAT_HMAC}, WECHAT_KEY)


def test_empty_values_and_the_sign_itself_are_not_signed() -> None:
    with_empties = {**WECHAT_PARAMS, "detail": "", "sign": "ANYTHING"}
    assert canonical(with_empties, WECHAT_KEY) == WECHAT_CANONICAL


@pytest.mark.parametrize("change", [
    {"body": "test2"}, {"sign": ""}, {"sign": "0" * 64}, {"sign_type": "MD5"}, {"extra": "x"},
    {"sign_type": "HMAC-SHA256"},  # present but not what was signed
])
def test_a_changed_answer_fails_verification(change: dict[str, str]) -> None:
    signed = {**WECHAT_PARAMS, "sign": WECHAT_HMAC}
    assert not verify({**signed, **change}, WECHAT_KEY)
    assert not verify(signed, "another-key")


def test_the_golden_pay_request() -> None:
    path, body = _codec().request_of(Pay(order_no="T2026120100001", auth_code="130000000000000000",
                                         amount_fen=1234, description="OpenTill"))
    params = json.loads(body)
    assert path == "/pay"
    assert params["total_fee"] == "1234" and isinstance(params["total_fee"], str)  # fen, as a string
    assert body == GOLDEN_PAY_BODY
    assert verify(params, KEY)


# docs/wallet-gateway.md: the gateway's answer to that pay
GOLDEN_PAY_ANSWER = (
    b'{"channel":"wechat","mch_id":"1900000109","nonce_str":"0000000000000001","out_trade_no":"T2026120100001",'
    b'"payer":"oUpF****0000","result_code":"SUCCESS","return_code":"SUCCESS","return_msg":"OK",'
    b'"sign":"E9CAB3480608B937157C8983A70F49C6955437F46DECE70D502C02F9A8CF02CD","sign_type":"HMAC-SHA256",'
    b'"time_end":"20261201100000","total_fee":"1234","trade_state":"SUCCESS",'
    b'"transaction_id":"4220261201000000000000000001"}'
)


def test_the_golden_pay_answer() -> None:
    answer = answer_of("pay", "T2026120100001", 200, GOLDEN_PAY_ANSWER, KEY)
    assert (answer.state, answer.clear, answer.wallet_order_no, answer.amount_fen, answer.paid_at) == (
        TradeState.SUCCESS, True, "4220261201000000000000000001", 1234, "2026-12-01T10:00:00+08:00")
    tampered = GOLDEN_PAY_ANSWER.replace(b'"total_fee":"1234"', b'"total_fee":"1235"')
    assert answer_of("pay", "T2026120100001", 200, tampered, KEY).state is TradeState.UNKNOWN


def test_the_gateway_signs_the_golden_answer() -> None:
    params = json.loads(GOLDEN_PAY_ANSWER)
    assert encode_params(params, KEY) == GOLDEN_PAY_ANSWER


def test_the_stream_is_http_and_reads_back_byte_at_a_time() -> None:
    host, gateway = _codec(), _codec(Role.DEVICE)
    frame = host.send(Query(order_no="T1"))
    assert frame.startswith(b"POST /query HTTP/1.1\r\n") and b"Content-Length: " in frame
    for byte in frame[:-1]:
        gateway.receive_data(bytes([byte]))
        assert gateway.next_event() is None
    gateway.receive_data(frame[-1:])
    call = gateway.next_event()
    assert isinstance(call, GatewayCall) and call.op == "query" and call.signed
    answer = gateway.send(GatewayReply(params={"return_code": "SUCCESS", "result_code": "SUCCESS",
                                               "out_trade_no": "T1", "trade_state": "NOTPAY"}))
    assert answer.startswith(b"HTTP/1.1 200 OK\r\n")
    for byte in answer:
        host.receive_data(bytes([byte]))
    event = host.next_event()
    assert isinstance(event, WalletAnswer) and event.state is TradeState.NOTPAY and event.clear and event.op == "query"


# -- answers: what each one means to the terminal -----------------------------------------------------
def _answer(params: dict[str, str], status: int = 200, op: str = "pay", *, signed: bool = True) -> object:
    body = encode_params(params, KEY) if signed else json.dumps(params).encode()
    return answer_of(op, "T1", status, body, KEY)


OK = {"return_code": "SUCCESS", "result_code": "SUCCESS", "out_trade_no": "T1"}
FAIL = {"return_code": "SUCCESS", "result_code": "FAIL", "out_trade_no": "T1"}


@pytest.mark.parametrize(("params", "status", "op", "state", "clear"), [
    ({**OK, "trade_state": "SUCCESS", "total_fee": "1234"}, 200, "pay", TradeState.SUCCESS, True),
    ({**FAIL, "err_code": "USERPAYING"}, 200, "pay", TradeState.USERPAYING, False),
    ({**FAIL, "err_code": "USERPAYING", "trade_state": "USERPAYING"}, 202, "pay", TradeState.USERPAYING, False),
    ({**FAIL, "err_code": "NOTENOUGH"}, 200, "pay", TradeState.PAYERROR, True),
    ({**FAIL, "err_code": "SYSTEMERROR"}, 200, "pay", TradeState.UNKNOWN, False),
    ({**OK, "trade_state": "USERPAYING"}, 200, "query", TradeState.USERPAYING, False),
    ({**FAIL, "err_code": "ORDERNOTEXIST"}, 200, "query", TradeState.NOTPAY, True),
    ({**FAIL, "err_code": "SYSTEMERROR", "recall": "Y"}, 200, "reverse", TradeState.UNKNOWN, False),
    ({**OK, "recall": "N", "action": "close", "trade_state": "REVOKED"}, 200, "reverse", TradeState.REVOKED, True),
    ({**OK, "recall": "N", "action": "refund"}, 200, "reverse", TradeState.REFUND, True),
    ({**FAIL, "err_code": "ORDERPAID"}, 200, "close", TradeState.SUCCESS, True),
    ({"return_code": "FAIL", "return_msg": "签名错误"}, 200, "pay", TradeState.UNKNOWN, False),
    ({**OK, "trade_state": "SUCCESS"}, 500, "pay", TradeState.UNKNOWN, False),
])
def test_answer_table(params: dict[str, str], status: int, op: str, state: TradeState, clear: bool) -> None:
    answer = answer_of(op, "T1", status, encode_params(params, KEY), KEY)
    assert (answer.state, answer.clear, answer.http_status) == (state, clear, status)


def test_202_is_an_answer_not_an_error() -> None:
    answer = answer_of("pay", "T1", 202, encode_params({**FAIL, "err_code": "USERPAYING"}, KEY), KEY)
    assert answer.state is TradeState.USERPAYING and answer.err_code == "USERPAYING" and not answer.clear


@pytest.mark.parametrize("body", [
    json.dumps({**OK, "trade_state": "SUCCESS"}).encode(),  # unsigned
    encode_params({**OK, "trade_state": "SUCCESS"}, "another-key"),  # signed with another key
    b"<xml><return_code>SUCCESS</return_code></xml>", b"", b"[1]", b'{"total_fee": 1}', b"\xff\xfe",
])
def test_an_untrusted_answer_is_unknown(body: bytes) -> None:
    answer = answer_of("pay", "T1", 200, body, KEY)
    assert answer.state is TradeState.UNKNOWN and not answer.clear and answer.message


def test_an_answer_about_another_order_is_unknown() -> None:
    answer = answer_of("query", "T1", 200, encode_params({**OK, "out_trade_no": "T2", "trade_state": "SUCCESS"},
                                                         KEY), KEY)
    assert answer.state is TradeState.UNKNOWN


def test_the_answer_fields_come_through() -> None:
    params = {**OK, "trade_state": "SUCCESS", "transaction_id": "4200", "channel": "wechat", "payer": "oUpF****0000",
              "total_fee": "1234", "time_end": "20261201100005"}
    answer = answer_of("pay", "T1", 200, encode_params(params, KEY), KEY)
    assert (answer.wallet_order_no, answer.payer, answer.amount_fen, answer.paid_at) == (
        "4200", "oUpF****0000", 1234, "2026-12-01T10:00:05+08:00")


# -- requests we may not send -------------------------------------------------------------------------
@pytest.mark.parametrize("request_", [
    Pay(order_no="T1", auth_code="130000000000000000", amount_fen=0),
    Pay(order_no="T1", auth_code="130000000000000000", amount_fen=-5),
    Refund(order_no="T1", refund_no="R1", amount_fen=0),
])
def test_a_non_positive_amount_is_our_bug(request_: Pay | Refund) -> None:
    with pytest.raises(LocalProtocolError):
        _codec().send(request_)


def test_roles_send_only_their_own() -> None:
    with pytest.raises(LocalProtocolError):
        _codec(Role.DEVICE).send(Reverse(order_no="T1"))
    with pytest.raises(LocalProtocolError):
        _codec().send(GatewayReply())


def test_an_answer_to_no_request_breaks_the_stream() -> None:
    host = _codec()
    host.receive_data(b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\n{}")
    with pytest.raises(FrameError):
        host.next_event()


def test_the_gateway_reads_an_unsigned_request_as_unsigned() -> None:
    call = call_of("/pay", json.dumps({"mch_id": "1900000109", "out_trade_no": "T1"}).encode(), KEY)
    assert call.valid and not call.signed
    assert not call_of("/nothing", b"{}", KEY).valid and not call_of("/pay", b"not json", KEY).valid


# -- payment codes ----------------------------------------------------------------------------------------
@pytest.mark.parametrize(("code", "channel"), [
    ("100000000000000000", Channel.WECHAT), ("134567890123456789", Channel.WECHAT),
    ("150000000000000000", Channel.WECHAT),  # WeChat Pay HK
    ("160000000000000000", None), ("090000000000000000", None),
    ("13456789012345678", None), ("1345678901234567890", None),  # 17 and 19 digits
    ("2500000000000000", Channel.ALIPAY), ("280000000000000000", Channel.ALIPAY),  # 16 and 18 digits
    ("300000000000000000000000", Channel.ALIPAY),  # 24 digits
    ("250000000000000", None), ("2500000000000000000000000", None),  # 15 and 25 digits
    ("310000000000000000", None), ("240000000000000000", None),
    ("6200000000000000000", Channel.UNIONPAY), ("620000000000000000", None),  # 19; 18 digits
    ("62000000000000000000", None), ("6300000000000000000", None),
    ("", None), ("1", None), ("13000000000000000a", None), ("１３０００００００００００００００００", None),
    (" 130000000000000000", None),
])
def test_channel_of(code: str, channel: Channel | None) -> None:
    assert channel_of(code) is channel


# -- hostile bytes: only the documented errors ----------------------------------------------------------
@given(st.binary(max_size=600))
def test_host_side_raises_only_frame_errors(data: bytes) -> None:
    codec = _codec()
    codec.send(Query(order_no="T1"))
    codec.receive_data(data)
    try:
        while codec.next_event() is not None:
            pass
    except RemoteProtocolError:
        pass


@given(st.binary(max_size=600), st.integers(min_value=100, max_value=599))
def test_any_answer_body_is_an_answer(body: bytes, status: int) -> None:
    answer = answer_of("pay", "T1", status, body, KEY)
    assert answer.state is TradeState.UNKNOWN and not answer.clear


@given(st.dictionaries(st.text(max_size=12), st.text(max_size=20), max_size=8), st.integers(100, 599))
def test_any_signed_object_is_an_answer(params: dict[str, str], status: int) -> None:
    answer = answer_of("query", "T1", status, encode_params(params, KEY), KEY)
    assert isinstance(answer.state, TradeState)


@given(st.binary(max_size=600))
def test_device_side_raises_only_frame_errors(data: bytes) -> None:
    codec = _codec(Role.DEVICE)
    codec.receive_data(b"POST /pay HTTP/1.1\r\nContent-Length: " + data)
    try:
        while (event := codec.next_event()) is not None:
            assert isinstance(event, GatewayCall)
    except RemoteProtocolError:
        pass
