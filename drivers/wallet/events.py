"""Wallet gateway messages, sans-I/O: what the terminal asks (requests) and what comes back
(answers). Interface shared by the wallet driver, the gateway simulator and the checkout's QR
phase: field names are fixed; a helper may add optional fields with defaults.

Amounts are integer fen (minor units). `order_no` is the terminal's order number
(`out_trade_no`), committed to the journal before a request leaves and reused by every retry.
"""

from __future__ import annotations

import enum

from drivers.events import DeviceEvent
from drivers.record import Record

__all__ = [
    "Channel", "CloseOrder", "CreateOrder", "Pay", "Query", "Refund", "Reverse", "Statement",
    "TradeState", "WalletAnswer", "WalletRequest",
]


class Channel(enum.Enum):
    WECHAT = "wechat"  # 微信支付
    ALIPAY = "alipay"  # 支付宝
    UNIONPAY = "unionpay"  # 云闪付


class TradeState(enum.Enum):
    """Where an order is at the gateway (WeChat's trade_state vocabulary)."""

    SUCCESS = "SUCCESS"  # paid
    USERPAYING = "USERPAYING"  # the customer is entering a password
    NOTPAY = "NOTPAY"  # merchant-presented order not paid (yet)
    CLOSED = "CLOSED"  # closed unpaid
    REVOKED = "REVOKED"  # reversed (撤销) unpaid
    REFUND = "REFUND"  # paid, then money returned (refund or a reverse of a paid order)
    PAYERROR = "PAYERROR"  # definite failure (balance, expired code, ...): see err_code
    UNKNOWN = "UNKNOWN"  # no clear answer (timeout, 5xx, unsigned or badly signed answer)


class WalletRequest(Record):
    """Terminal -> gateway. Every request names the order it is about."""

    order_no: str


class Pay(WalletRequest):
    """Customer-presented (被扫): charge the scanned payment code."""

    auth_code: str
    amount_fen: int
    description: str = ""


class Query(WalletRequest):
    """Where is this order now?"""


class Reverse(WalletRequest):
    """撤销/cancel an order whose outcome is unknown: the gateway closes it, or refunds it if paid."""


class Refund(WalletRequest):
    """退款 of a paid order, whole or part; `refund_no` is the terminal's idempotency key."""

    refund_no: str
    amount_fen: int


class CreateOrder(WalletRequest):
    """Merchant-presented (主扫): create an order; the answer carries the code URL to show."""

    amount_fen: int
    description: str = ""


class CloseOrder(WalletRequest):
    """Close a merchant-presented order that was not paid."""


class Statement(Record):
    """Download the day's statement (对账单), `bill_date` = YYYYMMDD."""

    bill_date: str
    encoding: str = "utf-8"  # or "gbk" (Alipay's habit)


class WalletAnswer(DeviceEvent):
    """Gateway -> terminal, as the driver reports it (signature already checked: an answer whose
    signature is missing or wrong arrives as `state=UNKNOWN, clear=False`)."""

    op: str  # "pay", "query", "reverse", "refund", "create", "close", "statement"
    order_no: str
    state: TradeState
    clear: bool = True  # False: the outcome is not known (timeout, system error, 202, bad sign)
    err_code: str = ""  # gateway's code: USERPAYING, NOTENOUGH, AUTH_CODE_EXPIRED, SYSTEMERROR, ...
    message: str = ""  # the gateway's reason in words (zh/en)
    wallet_order_no: str = ""  # transaction_id at the wallet
    channel: str = ""  # Channel value
    payer: str = ""  # masked payer id (never the full id)
    amount_fen: int = 0
    paid_at: str = ""  # ISO 8601, when paid
    recall: bool = False  # reverse: "Y" = try the reverse again
    action: str = ""  # reverse: "close" (was never paid) or "refund" (was paid, money returned)
    code_url: str = ""  # create: the URL to show as a QR
    refund_no: str = ""
    statement: str = ""  # statement: the CSV text (decoded)
    http_status: int = 0
