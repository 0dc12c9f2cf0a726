"""The gateway's books: orders by the merchant's order number (out_trade_no), their refunds and
state history, and the day's statement (对账单) in WeChat Pay's CSV habit.

Idempotent by construction: an order number is booked once; a retried pay with the same number
is answered from the order booked, never charged again. Refunds are bounded by what was paid.
"""

from __future__ import annotations

import io
from datetime import datetime, timedelta, timezone
from typing import Any, Final

from drivers.wallet.events import TradeState

__all__ = ["BEIJING", "STATEMENT_HEADER", "TRAILER_HEADER", "Ledger", "Order", "yuan"]

BEIJING: Final = timezone(timedelta(hours=8))
FEE_RATE_PER_10K: Final = 60  # 0.60 %, WeChat's usual rate for a small merchant
STATEMENT_HEADER: Final = (
    "交易时间", "公众账号ID", "商户号", "设备号", "微信订单号", "商户订单号", "用户标识", "交易类型", "交易状态",
    "付款银行", "货币种类", "应结订单金额", "代金券金额", "微信退款单号", "商户退款单号", "退款金额", "退款状态",
    "商品名称", "手续费", "费率",
)
TRAILER_HEADER: Final = ("总交易单数", "应结订单总金额", "退款总金额", "充值券退款总金额", "手续费总金额")
APP_ID: Final = "wx2421b1c4370ec43b"


def yuan(fen: int) -> str:
    sign = "-" if fen < 0 else ""
    return f"{sign}{abs(fen) // 100}.{abs(fen) % 100:02d}"


def _fee(fen: int) -> int:
    return (fen * FEE_RATE_PER_10K + 5_000) // 10_000  # half up, in fen


class Order:
    """One order at the gateway. `history` is (gateway time, state) from creation on."""

    def __init__(self, *, order_no: str, amount_fen: int, kind: str, channel: str, terminal_id: str,
                 at: datetime, auth_code: str = "", description: str = "", transaction_id: str = "") -> None:
        self.order_no, self.amount_fen, self.kind, self.channel = order_no, amount_fen, kind, channel
        self.terminal_id, self.auth_code, self.description = terminal_id, auth_code, description
        self.transaction_id = transaction_id
        self.state = TradeState.NOTPAY
        self.err_code = ""
        self.payer = ""
        self.paid_at: datetime | None = None
        self.pay_at: float | None = None  # gateway seconds when a waiting payer will have paid
        self.refunds: dict[str, tuple[int, datetime]] = {}  # refund number -> (fen, when)
        self.reverse_tries = 0
        self.code_url = ""
        self.history: list[tuple[datetime, TradeState]] = [(at, self.state)]

    @property
    def refunded_fen(self) -> int:
        return sum(fen for fen, _ in self.refunds.values())

    @property
    def paid(self) -> bool:
        return self.paid_at is not None

    def move(self, state: TradeState, at: datetime) -> None:
        if state is not self.state:
            self.state = state
            self.history.append((at, state))

    # -- the books on disk (WalletGateway.use_folder) ------------------------------------------------
    def to_json(self, pay_at: datetime | None) -> dict[str, Any]:
        """The order as JSON; `pay_at` is the gateway time a waiting payer pays at, as a wall time
        (the gateway's seconds start again at 0 after a restart)."""
        return {
            "order_no": self.order_no, "amount_fen": self.amount_fen, "kind": self.kind, "channel": self.channel,
            "terminal_id": self.terminal_id, "auth_code": self.auth_code, "description": self.description,
            "transaction_id": self.transaction_id, "state": self.state.value, "err_code": self.err_code,
            "payer": self.payer, "paid_at": _stamp(self.paid_at), "pay_at": _stamp(pay_at),
            "refunds": {no: [fen, when.isoformat()] for no, (fen, when) in self.refunds.items()},
            "reverse_tries": self.reverse_tries, "code_url": self.code_url,
            "history": [[when.isoformat(), state.value] for when, state in self.history],
        }

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> tuple[Order, datetime | None]:
        """The order `to_json` wrote, and its payer's wall time to pay (KeyError/ValueError/TypeError
        for data that is not one)."""
        history = [(datetime.fromisoformat(when), TradeState(state)) for when, state in data["history"]]
        order = cls(order_no=str(data["order_no"]), amount_fen=int(data["amount_fen"]), kind=str(data["kind"]),
                    channel=str(data["channel"]), terminal_id=str(data["terminal_id"]), at=history[0][0],
                    auth_code=str(data["auth_code"]), description=str(data["description"]),
                    transaction_id=str(data["transaction_id"]))
        order.state, order.err_code, order.payer = TradeState(data["state"]), str(data["err_code"]), str(data["payer"])
        order.paid_at = _moment(data["paid_at"])
        order.refunds = {str(no): (int(fen), datetime.fromisoformat(when))
                         for no, (fen, when) in data["refunds"].items()}
        order.reverse_tries, order.code_url, order.history = int(data["reverse_tries"]), str(data["code_url"]), history
        return order, _moment(data["pay_at"])


def _stamp(when: datetime | None) -> str | None:
    return None if when is None else when.isoformat()


def _moment(text: str | None) -> datetime | None:
    return None if text is None else datetime.fromisoformat(text)


class Ledger:
    def __init__(self, mch_id: str) -> None:
        self.mch_id = mch_id
        self.orders: dict[str, Order] = {}

    def get(self, order_no: str) -> Order | None:
        return self.orders.get(order_no)

    def book(self, order: Order) -> Order:
        if order.order_no in self.orders:
            raise ValueError(f"order {order.order_no} is booked already")  # a bug: callers check first
        self.orders[order.order_no] = order
        return order

    @property
    def charged_fen(self) -> int:
        """Money taken from payers, net of refunds (what the books owe the merchant)."""
        return sum(o.amount_fen - o.refunded_fen for o in self.orders.values() if o.paid)

    def statement(self, bill_date: str) -> str:
        """The statement of one Beijing day (YYYYMMDD): a row per payment and per refund, then the
        trailer; every field prefixed with a backtick (so a spreadsheet keeps long numbers)."""
        day = datetime.strptime(bill_date, "%Y%m%d").date()
        rows: list[tuple[datetime, list[str]]] = []
        paid = refunded = fees = count = 0
        for o in self.orders.values():
            base = [APP_ID, self.mch_id, o.terminal_id, o.transaction_id, o.order_no, o.payer,
                    "MICROPAY" if o.kind == "micropay" else "NATIVE"]
            if o.paid_at is not None and o.paid_at.astimezone(BEIJING).date() == day:
                fee = _fee(o.amount_fen)
                rows.append((o.paid_at, [*base, "SUCCESS", "OTHERS", "CNY", yuan(o.amount_fen), "0.00", "0", "0",
                                         "0.00", "", o.description, yuan(fee), "0.60%"]))
                paid, fees, count = paid + o.amount_fen, fees + fee, count + 1
            for refund_no, (fen, when) in o.refunds.items():
                if when.astimezone(BEIJING).date() == day:
                    fee = -_fee(fen)
                    rows.append((when, [*base, "REFUND", "OTHERS", "CNY", "0.00", "0.00", f"50{o.transaction_id[2:]}",
                                        refund_no, yuan(fen), "SUCCESS", o.description, yuan(fee), "0.60%"]))
                    refunded, fees, count = refunded + fen, fees + fee, count + 1
        import csv  # the statement, once a day: not at every start of the emulated world

        out = io.StringIO()
        writer = csv.writer(out, lineterminator="\r\n")
        writer.writerow(STATEMENT_HEADER)
        for when, fields in sorted(rows, key=lambda r: r[0]):
            stamp = when.astimezone(BEIJING).strftime("%Y-%m-%d %H:%M:%S")
            writer.writerow([f"`{v}" for v in (stamp, *fields)])
        writer.writerow(TRAILER_HEADER)
        writer.writerow([f"`{v}" for v in (str(count), yuan(paid), yuan(refunded), "0.00", yuan(fees))])
        return out.getvalue()
