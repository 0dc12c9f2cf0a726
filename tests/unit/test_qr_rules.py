"""The checkout's QR rules that are pure: which wallet a payment code belongs to, and the
reconciliation of the QR channel against the wallet's statement."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from terminal.checkout.qr import payment_channel
from terminal.host.reconcile import StatementEntry, TerminalEntry, reconcile


@pytest.mark.parametrize(("code", "channel"), [
    ("134567890123456789", "wechat"),  # 18 digits, 10-15
    ("104567890123456789", "wechat"),
    ("154567890123456789", "wechat"),  # WeChat Pay HK
    ("2845678901234567", "alipay"),  # 16 digits, 25-30
    ("284567890123456789012345", "alipay"),  # 24 digits
    ("254567890123456789", "alipay"),  # 18 digits starting 25: Alipay, not WeChat
    ("6212345678901234567", "unionpay"),  # 19 digits, 62
    ("164567890123456789", None),  # 16 is no wallet's
    ("13456789012345678", None),  # 17 digits
    ("1345678901234567890", None),  # 19 digits starting 13
    ("284567890123456", None),  # 15 digits
    ("2845678901234567890123456", None),  # 25 digits
    ("621234567890123456", None),  # 18 digits starting 62
    ("13456789012345678a", None),
    ("１３４５６７８９０１２３４５６７８９", None),  # full-width digits are not ASCII
    ("", None),
])
def test_payment_code_shapes(code: str, channel: str | None) -> None:
    assert payment_channel(code) == channel


@given(st.text(max_size=30))
def test_any_text_is_a_channel_or_none(text: str) -> None:
    channel = payment_channel(text)
    assert channel is None or (text.isascii() and text.isdigit() and 16 <= len(text) <= 24)


def test_reconcile_each_kind_of_finding() -> None:
    ours = [TerminalEntry(order_no="A", paid_fen=100, txn_id="ta"),
            TerminalEntry(order_no="B", paid_fen=200, txn_id="tb"),
            TerminalEntry(order_no="C", paid_fen=300, txn_id="tc"),
            TerminalEntry(order_no="R", paid_fen=80, txn_id="tr"),
            TerminalEntry(order_no="R", refunded_fen=50, txn_id="trr"),
            TerminalEntry(order_no="V", paid_fen=70, refunded_fen=70, txn_id="tv")]  # reversed: paid, returned
    theirs = [StatementEntry(order_no="A", paid_fen=100),
              StatementEntry(order_no="B", paid_fen=250),
              StatementEntry(order_no="D", paid_fen=400),
              StatementEntry(order_no="R", paid_fen=80), StatementEntry(order_no="R", refunded_fen=50),
              StatementEntry(order_no="V", paid_fen=70), StatementEntry(order_no="V", refunded_fen=70)]
    result = reconcile("20261202", ours, theirs)
    kinds = {f.order_no: f.kind for f in result.findings}
    assert kinds == {"A": "matched", "B": "amount_differs", "C": "only_terminal", "D": "only_wallet",
                     "R": "matched", "V": "matched"}
    assert result.matched == 3 and len(result.problems) == 3
    assert all(f.action for f in result.problems)
    assert {f.order_no: f.txn_id for f in result.problems} == {"B": "tb", "C": "tc", "D": ""}
    assert result.verdict == "3 相符 MATCHED, 3 差错 EXCEPTIONS"
    assert reconcile("20261202", [], []).verdict == "0 相符 MATCHED"
