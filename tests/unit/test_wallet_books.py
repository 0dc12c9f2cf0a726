"""The wallet gateway simulator's books on disk (`WalletGateway.use_folder`): a gateway restarted
on the same folder still knows its orders, refunds them once, lists them in the statement of
their day, and a waiting payer still pays at the wall time due."""

from __future__ import annotations

import base64
from datetime import datetime, timedelta
from pathlib import Path

import pytest

from drivers.events import Role
from drivers.wallet.codec import AnyRequest, WalletCodec, call_of
from drivers.wallet.events import Pay, Query, Refund, Statement
from drivers.wallet.statement import TRAILER_FIRST, fen, parse_statement
from emulator.books import BooksError
from emulator.wallet.gateway import BOOKS_FILE, DEFAULT_START, WalletGateway
from emulator.wallet.payers import payment_code

HOST = WalletCodec(Role.HOST, {"terminal_id": "10000001"})


def _gateway(folder: Path, start: datetime = DEFAULT_START) -> WalletGateway:
    gateway = WalletGateway(start=start)
    gateway.use_folder(folder)
    return gateway


def ask(gateway: WalletGateway, request: AnyRequest) -> dict[str, str]:
    path, body = HOST.request_of(request)
    reply = gateway.respond(call_of(path, body, gateway.key))
    assert reply is not None
    return reply.params


def test_a_paid_order_is_known_refunded_and_on_the_statement_after_a_restart(tmp_path: Path) -> None:
    first = _gateway(tmp_path)
    paid = ask(first, Pay(order_no="T1", auth_code=payment_code("00"), amount_fen=1234))
    assert paid["trade_state"] == "SUCCESS"

    later = DEFAULT_START + timedelta(hours=2)
    gateway = _gateway(tmp_path, later)
    again = ask(gateway, Query(order_no="T1"))
    assert (again["trade_state"], again["transaction_id"], again["time_end"]) == (
        "SUCCESS", paid["transaction_id"], paid["time_end"])
    retried = ask(gateway, Pay(order_no="T1", auth_code=payment_code("00"), amount_fen=1234))
    assert retried["transaction_id"] == paid["transaction_id"] and gateway.ledger.charged_fen == 1234
    assert ask(gateway, Refund(order_no="T1", refund_no="R1", amount_fen=234))["result_code"] == "SUCCESS"
    new = ask(gateway, Pay(order_no="T2", auth_code=payment_code("00"), amount_fen=99))
    assert new["transaction_id"] != paid["transaction_id"]  # the order-number counter went on

    gateway = _gateway(tmp_path, DEFAULT_START + timedelta(days=1))  # the next morning, after 09:00
    assert ask(gateway, Refund(order_no="T1", refund_no="R1", amount_fen=234))["result_code"] == "SUCCESS"  # retry
    assert ask(gateway, Refund(order_no="T1", refund_no="R2", amount_fen=1001))["err_code"] == "REFUND_EXCEEDED"
    bill = parse_statement(base64.b64decode(ask(gateway, Statement(bill_date="20261201"))["bill_data"]).decode())
    assert [(r["商户订单号"], r["交易状态"]) for r in bill.rows] == [("T1", "SUCCESS"), ("T1", "REFUND"),
                                                                  ("T2", "SUCCESS")]
    assert bill.totals[TRAILER_FIRST] == "3" and fen(bill.totals["退款总金额"]) == 234
    assert gateway.ledger.charged_fen == 1234 - 234 + 99


def test_a_waiting_payer_pays_at_the_same_wall_time_after_a_restart(tmp_path: Path) -> None:
    first = _gateway(tmp_path)
    assert ask(first, Pay(order_no="T1", auth_code=payment_code("01"), amount_fen=100))["err_code"] == "USERPAYING"
    first.advance(4)
    gateway = _gateway(tmp_path, DEFAULT_START + timedelta(seconds=5))
    gateway.advance(4.9)
    assert ask(gateway, Query(order_no="T1"))["trade_state"] == "USERPAYING"
    gateway.advance(0.1)  # 10 s after the pay, as the payer's delay says
    assert ask(gateway, Query(order_no="T1"))["trade_state"] == "SUCCESS"
    assert _gateway(tmp_path, DEFAULT_START + timedelta(minutes=1)).ledger.orders["T1"].paid  # the charge was saved


def test_queries_write_nothing(tmp_path: Path) -> None:
    gateway = _gateway(tmp_path)
    ask(gateway, Pay(order_no="T1", auth_code=payment_code("00"), amount_fen=100))
    size = (tmp_path / BOOKS_FILE).stat().st_size
    for _ in range(3):
        ask(gateway, Query(order_no="T1"))
        gateway.advance(1)
    assert (tmp_path / BOOKS_FILE).stat().st_size == size


@pytest.mark.parametrize("damage", [b"garbage\n", b'[["order","T9",{"order_no":"T9"}]]\n', b'[["ghost","x",1]]\n'])
def test_unreadable_books_are_a_clear_error_and_stay_as_they_are(tmp_path: Path, damage: bytes) -> None:
    ask(_gateway(tmp_path), Pay(order_no="T1", auth_code=payment_code("00"), amount_fen=100))
    books = tmp_path / BOOKS_FILE
    books.write_bytes(books.read_bytes() + damage)
    before = books.read_bytes()
    with pytest.raises(BooksError, match=str(books)):
        _gateway(tmp_path)
    assert books.read_bytes() == before
