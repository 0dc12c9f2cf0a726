"""The wallet gateway simulator's books (emulator/wallet/): idempotent orders, bounded refunds,
merchant-presented orders, signature refusals, and the statement (对账单) read back by the
terminal's parser (drivers/wallet/statement.py), UTF-8 and GBK."""

from __future__ import annotations

import base64
import contextlib

import pytest
from hypothesis import given
from hypothesis import strategies as st

from drivers.events import Role
from drivers.wallet.codec import AnyRequest, GatewayReply, WalletCodec, call_of
from drivers.wallet.events import CloseOrder, CreateOrder, Pay, Query, Refund, Reverse, Statement, TradeState
from drivers.wallet.statement import TRAILER_FIRST, StatementError, fen, parse_statement
from emulator.wallet.gateway import WalletGateway
from emulator.wallet.payers import payment_code

HOST = WalletCodec(Role.HOST, {"terminal_id": "10000001"})


def ask(gateway: WalletGateway, request: AnyRequest) -> dict[str, str]:
    path, body = HOST.request_of(request)
    reply = gateway.respond(call_of(path, body, gateway.key))
    assert reply is not None
    return reply.params


def pay(gateway: WalletGateway, order_no: str, suffix: str = "00", fen: int = 1234) -> GatewayReply | None:
    path, body = HOST.request_of(Pay(order_no=order_no, auth_code=payment_code(suffix), amount_fen=fen))
    return gateway.respond(call_of(path, body, gateway.key))


@pytest.fixture
def gateway() -> WalletGateway:
    return WalletGateway()


def test_a_retried_pay_is_the_same_order_never_a_second_charge(gateway: WalletGateway) -> None:
    first = pay(gateway, "T1")
    again = pay(gateway, "T1")
    assert first is not None and again is not None
    assert first.params["transaction_id"] == again.params["transaction_id"]
    assert gateway.ledger.charged_fen == 1234 and len(gateway.ledger.orders) == 1


def test_a_lost_answer_is_booked_and_the_retry_gets_it(gateway: WalletGateway) -> None:
    assert pay(gateway, "T6", "06") is None
    assert gateway.ledger.charged_fen == 1234
    retry = pay(gateway, "T6", "06")
    assert retry is not None and retry.params["result_code"] == "SUCCESS"
    assert gateway.ledger.charged_fen == 1234


def test_an_order_number_reused_for_another_payment_is_refused(gateway: WalletGateway) -> None:
    pay(gateway, "T1")
    reused = pay(gateway, "T1", fen=999)
    assert reused is not None and reused.params["err_code"] == "OUT_TRADE_NO_USED"
    assert gateway.ledger.charged_fen == 1234


def test_refunds_are_bounded_by_what_was_paid(gateway: WalletGateway) -> None:
    pay(gateway, "T1")
    assert ask(gateway, Refund(order_no="T1", refund_no="R1", amount_fen=1000))["result_code"] == "SUCCESS"
    assert ask(gateway, Refund(order_no="T1", refund_no="R1", amount_fen=1000))["result_code"] == "SUCCESS"  # retry
    assert ask(gateway, Refund(order_no="T1", refund_no="R2", amount_fen=235))["err_code"] == "REFUND_EXCEEDED"
    assert ask(gateway, Refund(order_no="T1", refund_no="R2", amount_fen=234))["result_code"] == "SUCCESS"
    assert gateway.ledger.orders["T1"].refunded_fen == 1234 and gateway.ledger.charged_fen == 0


def test_an_unpaid_order_cannot_be_refunded(gateway: WalletGateway) -> None:
    pay(gateway, "T3", "03")
    assert ask(gateway, Refund(order_no="T3", refund_no="R1", amount_fen=1))["err_code"] == "TRADE_STATE_ERROR"
    assert ask(gateway, Refund(order_no="NONE", refund_no="R1", amount_fen=1))["err_code"] == "ORDERNOTEXIST"


def test_a_password_payer_pays_when_its_time_is_due(gateway: WalletGateway) -> None:
    pay(gateway, "T1", "01")
    gateway.advance(9.9)
    assert ask(gateway, Query(order_no="T1"))["trade_state"] == "USERPAYING"
    gateway.advance(0.1)
    assert ask(gateway, Query(order_no="T1"))["trade_state"] == "SUCCESS"
    assert [s for _, s in gateway.ledger.orders["T1"].history] == [
        TradeState.NOTPAY, TradeState.USERPAYING, TradeState.SUCCESS]


def test_over_1000_yuan_the_at_once_payer_needs_the_password(gateway: WalletGateway) -> None:
    reply = pay(gateway, "T1", "00", fen=100_001)
    assert reply is not None and reply.params["err_code"] == "USERPAYING"
    gateway.advance(10)
    assert gateway.ledger.orders["T1"].paid


def test_a_reverse_closes_an_unpaid_order_and_a_late_payer_cannot_pay(gateway: WalletGateway) -> None:
    pay(gateway, "T1", "02")
    answer = ask(gateway, Reverse(order_no="T1"))
    assert (answer["result_code"], answer["action"], answer["recall"]) == ("SUCCESS", "close", "N")
    gateway.advance(60)
    assert ask(gateway, Query(order_no="T1"))["trade_state"] == "REVOKED" and gateway.ledger.charged_fen == 0


def test_a_reverse_of_a_pay_that_never_arrived_bars_the_number(gateway: WalletGateway) -> None:
    assert ask(gateway, Reverse(order_no="T9"))["action"] == "close"
    late = pay(gateway, "T9")
    assert late is not None and late.params["result_code"] == "FAIL" and gateway.ledger.charged_fen == 0


def test_the_payer_who_pays_at_the_reverse_is_refunded(gateway: WalletGateway) -> None:
    pay(gateway, "T7", "07")
    assert ask(gateway, Query(order_no="T7"))["trade_state"] == "USERPAYING"
    answer = ask(gateway, Reverse(order_no="T7"))
    assert (answer["action"], answer["trade_state"]) == ("refund", "REFUND")
    assert gateway.ledger.charged_fen == 0 and gateway.ledger.orders["T7"].paid


def test_recall_twice(gateway: WalletGateway) -> None:
    pay(gateway, "T8", "08")
    assert [ask(gateway, Reverse(order_no="T8")).get("recall") for _ in range(3)] == ["Y", "Y", "N"]


def test_merchant_presented_create_pay_close(gateway: WalletGateway) -> None:
    created = ask(gateway, CreateOrder(order_no="M1", amount_fen=500))
    assert created["code_url"].startswith("weixin://wxpay/bizpayurl?pr=") and created["trade_state"] == "NOTPAY"
    assert ask(gateway, CreateOrder(order_no="M1", amount_fen=500))["code_url"] == created["code_url"]
    assert gateway.pay_order("M1", "oUpF8uMuAJO_M2pxb1Q9zNjWeS6o") == "paid"
    assert ask(gateway, Query(order_no="M1"))["payer"] == "oUpF****eS6o"  # masked, never the whole id
    assert ask(gateway, CloseOrder(order_no="M1"))["err_code"] == "ORDERPAID"


def test_a_payment_after_the_close_is_refunded(gateway: WalletGateway) -> None:
    ask(gateway, CreateOrder(order_no="M2", amount_fen=500))
    assert ask(gateway, CloseOrder(order_no="M2"))["trade_state"] == "CLOSED"
    assert "refunded" in gateway.pay_order("M2")
    assert ask(gateway, Query(order_no="M2"))["trade_state"] == "REFUND" and gateway.ledger.charged_fen == 0


def test_a_request_without_a_good_signature_is_refused(gateway: WalletGateway) -> None:
    path, body = HOST.request_of(Pay(order_no="T1", auth_code=payment_code("00"), amount_fen=1))
    tampered = body.replace(b'"total_fee":"1"', b'"total_fee":"9"')
    reply = gateway.respond(call_of(path, tampered, gateway.key))
    assert reply is not None and reply.params["return_code"] == "FAIL" and not gateway.ledger.orders
    assert gateway.refused == 1
    other = WalletGateway(key="another-merchant-key")
    assert other.respond(call_of(path, body, other.key)).params["return_code"] == "FAIL"  # type: ignore[union-attr]


def test_a_code_of_no_wallet_is_refused_unbooked(gateway: WalletGateway) -> None:
    path, body = HOST.request_of(Pay(order_no="T1", auth_code="990000000000000000", amount_fen=1))
    reply = gateway.respond(call_of(path, body, gateway.key))
    assert reply is not None and reply.params["err_code"] == "AUTH_CODE_INVALID" and not gateway.ledger.orders


# -- the statement ------------------------------------------------------------------------------------
def _day(gateway: WalletGateway) -> None:
    pay(gateway, "T1")
    gateway.advance(60)
    pay(gateway, "T2", fen=99)
    gateway.advance(60)
    ask(gateway, Refund(order_no="T1", refund_no="R1", amount_fen=234))
    pay(gateway, "T4", "04")  # failed: not on the bill


@pytest.mark.parametrize("encoding", ["utf-8", "gbk"])
def test_the_statement_parses_back(gateway: WalletGateway, encoding: str) -> None:
    _day(gateway)
    assert ask(gateway, Statement(bill_date="20261201"))["err_code"] == "BILL_NOT_READY"
    gateway.advance(24 * 3600)
    answer = ask(gateway, Statement(bill_date="20261201", encoding=encoding))
    raw = base64.b64decode(answer["bill_data"])
    text = raw.decode(encoding)
    if encoding == "gbk":
        assert "交易时间".encode("gbk") in raw and "交易时间".encode() not in raw
    bill = parse_statement(text)
    assert [r["商户订单号"] for r in bill.rows] == ["T1", "T2", "T1"]
    assert [r["交易状态"] for r in bill.rows] == ["SUCCESS", "SUCCESS", "REFUND"]
    assert bill.totals[TRAILER_FIRST] == "3"
    assert fen(bill.totals["应结订单总金额"]) == 1333 and fen(bill.totals["退款总金额"]) == 234
    assert sum(fen(r["应结订单金额"]) for r in bill.rows) == 1333
    assert all(line.startswith("`") for line in text.splitlines()[1:-2])


def test_another_day_has_an_empty_statement(gateway: WalletGateway) -> None:
    _day(gateway)
    gateway.advance(3 * 24 * 3600)
    bill = parse_statement(base64.b64decode(ask(gateway, Statement(bill_date="20261202"))["bill_data"]).decode())
    assert bill.rows == () and bill.totals[TRAILER_FIRST] == "0"


GOOD = "交易时间,商户订单号\r\n`2026-12-01 10:00:00,`T1\r\n总交易单数,应结订单总金额\r\n`1,`12.34\r\n"


@pytest.mark.parametrize("text", [
    "", "交易时间\r\n", GOOD.replace("`T1", "T1"), GOOD.replace("`1,", "`2,"),
    GOOD.replace("总交易单数", "合计"), GOOD + "`extra\r\n", GOOD.replace(",`T1", ""),
    GOOD.replace("`1,`12.34", "`1"),
])
def test_a_statement_that_does_not_parse_is_one_clear_error(text: str) -> None:
    with pytest.raises(StatementError):
        parse_statement(text)


def test_the_good_sample_parses() -> None:
    assert parse_statement(GOOD).rows == ({"交易时间": "2026-12-01 10:00:00", "商户订单号": "T1"},)


@given(st.text(max_size=400))
def test_any_text_parses_or_is_a_statement_error(text: str) -> None:
    with contextlib.suppress(StatementError):
        parse_statement(text)


@pytest.mark.parametrize(("text", "value"), [("12.34", 1234), ("0.07", 7), ("-0.07", -7), ("100.00", 10000)])
def test_fen(text: str, value: int) -> None:
    assert fen(text) == value


@pytest.mark.parametrize("text", ["12.3", "12", "", "1.234", "a.bc", "--1.00", "１.00"])
def test_fen_refuses(text: str) -> None:
    with pytest.raises(StatementError):
        fen(text)
