"""The wallet gateway's decisions (an aggregator in the WeChat Pay mould): one signed request in,
one signed answer out — or none, when a test payer's answer is lost. No I/O, no clock: time
passes only through `advance(seconds)`, and waiting payers pay when their time falls due.

The in-process peer (peer.py) and the HTTP server (server.py) both put their requests through
`respond()`; the answer vocabulary is docs/wallet-gateway.md's.
"""

from __future__ import annotations

import base64
import itertools
import json
from collections.abc import Callable
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any, Final

from drivers.wallet.codec import SIGN_TYPE, GatewayCall, GatewayReply, WalletCodec, channel_of
from drivers.wallet.events import Channel, TradeState
from emulator.books import BookFile, BooksError, Tables
from emulator.wallet.ledger import BEIJING, Ledger, Order
from emulator.wallet.payers import BIG_PAYMENT_FEN, Behaviour, payer_of

__all__ = ["BOOKS_FILE", "DEFAULT_START", "WalletGateway"]

BOOKS_FILE: Final = "wallet.jsonl"  # in the folder of use_folder()

DEFAULT_START = datetime(2026, 12, 1, 10, 0, 0, tzinfo=BEIJING)
BILL_READY = timedelta(days=1, hours=9)  # the bill of day D is ready at 09:00 on D+1
_MASK = {Channel.WECHAT.value: "oUpF", Channel.ALIPAY.value: "138", Channel.UNIONPAY.value: "6222"}
_USED = "商户订单号重复 / order number used"
_REQUIRED = {"pay": ("out_trade_no", "auth_code", "total_fee"), "query": ("out_trade_no",),
             "reverse": ("out_trade_no",), "refund": ("out_trade_no", "out_refund_no", "refund_fee"),
             "create": ("out_trade_no", "total_fee"), "close": ("out_trade_no",), "statement": ("bill_date",)}

Params = dict[str, str]


def _fee_ok(text: str) -> bool:
    return text.isascii() and text.isdigit() and not text.startswith("0") and len(text) <= 12


class WalletGateway:
    """The books and the rules. `faults`: "unsigned" / "badsign" answers, "error500" (not booked)."""

    CONTROL = "emulator.wallet.control"
    FAULTS = ("unsigned", "badsign", "error500")

    def __init__(self, *, key: str = "", mch_id: str = "", start: datetime = DEFAULT_START) -> None:
        # "" is the shipped test merchant (drivers/wallet/codec.py WalletCodec.TEST_KEY / TEST_MCH_ID)
        self.key, self.mch_id = key or WalletCodec.TEST_KEY, mch_id or WalletCodec.TEST_MCH_ID
        self.start = start
        self.elapsed = 0.0
        self.ledger = Ledger(mch_id)
        self.faults: dict[str, int] = {}  # fault -> answers it still applies to
        self.requests = 0
        self.refused = 0  # requests refused for a missing or wrong signature
        self._last_id = 0  # wallet order numbers (transaction_id) issued
        # Answer nonces: not kept across a restart (the terminal only signs over them, never
        # remembers one), so the books get no line for a query.
        self._nonces = itertools.count(1)
        self._books: BookFile | None = None  # use_folder(): where the books persist
        self._touched: set[str] = set()  # order numbers a call may have changed, to save
        self._saved: dict[str, str] = {}  # what the books hold, by order number (JSON text)
        self._saved_id = 0  # the counter as the books hold it
        self._handlers: dict[str, Callable[[Params], GatewayReply | None]] = {
            "pay": self._pay, "query": self._query, "reverse": self._reverse, "refund": self._refund,
            "create": self._create, "close": self._close, "statement": self._statement}

    # -- time -------------------------------------------------------------------------------------
    @property
    def now(self) -> datetime:
        return self.start + timedelta(seconds=self.elapsed)

    def advance(self, seconds: float) -> None:
        self.elapsed += max(0.0, seconds)
        for order in self.ledger.orders.values():
            if order.pay_at is not None and order.pay_at <= self.elapsed:
                self._charge(order)
        if self._books is not None and self._touched:
            self._save()

    # -- books on disk ------------------------------------------------------------------------------
    def use_folder(self, folder: Path, *, durable: bool = False) -> None:
        """Keep the gateway's books in `folder`/wallet.jsonl (emulator/books.py: one line per
        change, written before the answer leaves; `durable` fsyncs it too): orders with their
        refunds and history, and the order-number counter, so a restarted gateway still knows
        every order, refunds it and lists it in the statement. Loaded now: BooksError (a
        ValueError naming the file) for books it cannot read, and the file is left as it is.
        A waiting payer pays at the same wall time after a restart. Call it before serving."""
        if self._books is not None or self.ledger.orders:
            raise ValueError("use_folder() goes before the first request, once")
        books = BookFile(folder / BOOKS_FILE, kind="wallet", durable=durable)
        books.load(lambda tables: self._take_over(tables, str(books.path)))
        self._books = books

    def _take_over(self, tables: Tables, where: str) -> None:
        orders: dict[str, tuple[Order, datetime | None]] = {}
        try:
            for order_no, data in tables.get("order", {}).items():
                orders[order_no] = Order.from_json(data)
            last_id = int(tables.get("counter", {}).get("ids", 0))
            unknown = set(tables) - {"order", "counter"}
            if unknown:
                raise ValueError(f"unknown table {sorted(unknown)[0]!r}")
        except (KeyError, TypeError, ValueError, AttributeError) as exc:
            raise BooksError(f"{where}: not wallet books ({type(exc).__name__}: {exc}); "
                             "the books are left as they are") from exc
        for order_no, (order, pay_at) in orders.items():
            if pay_at is not None:
                order.pay_at = (pay_at - self.start).total_seconds()  # may be past: pays at the next advance
            self.ledger.orders[order_no] = order
            self._saved[order_no] = json.dumps(tables["order"][order_no], sort_keys=True)
        self._last_id = self._saved_id = last_id

    def _save(self) -> None:
        """The orders a call changed (and the counter) as one line of the books."""
        assert self._books is not None
        puts: list[tuple[str, str, Any]] = []
        texts: dict[str, str] = {}
        for order_no in sorted(self._touched):
            order = self.ledger.get(order_no)
            if order is None:
                continue
            pay_at = None if order.pay_at is None else self.start + timedelta(seconds=order.pay_at)
            data = order.to_json(pay_at)
            text = json.dumps(data, sort_keys=True)
            if self._saved.get(order_no) != text:
                puts.append(("order", order_no, data))
                texts[order_no] = text
        if self._saved_id != self._last_id:
            puts.append(("counter", "ids", self._last_id))
        if puts:
            self._books.append(puts)  # an OSError goes up: this answer is not sent
            self._saved.update(texts)
            self._saved_id = self._last_id
        self._touched.clear()

    # -- the door -----------------------------------------------------------------------------------
    def respond(self, call: GatewayCall) -> GatewayReply | None:
        """The answer to send (signed by the codec unless a signing fault applies); None: lost.
        With books (use_folder), what the call changed is written before the answer leaves."""
        reply = self._decide(call)
        if self._books is not None:
            self._touched.add(call.params.get("out_trade_no", ""))
            self._save()
        return None if reply is None else self._seal(reply)

    def _decide(self, call: GatewayCall) -> GatewayReply | None:
        self.requests += 1
        if self._take_fault("error500"):
            return GatewayReply(status=500, params={"return_code": "FAIL", "return_msg": "system busy"})
        if not call.valid:
            return self._fail_return("请求格式错误 / not a JSON request to a known path", status=400)
        if not call.signed:
            self.refused += 1
            return self._fail_return("签名错误 / signature missing or wrong")
        params = call.params
        if params.get("mch_id") != self.mch_id:
            return self._fail_return("商户号不存在 / unknown mch_id")
        missing = [k for k in _REQUIRED[call.op] if not params.get(k)]
        if missing:
            return self._fail_return(f"缺少参数 / missing parameter {missing[0]}")
        for fee in ("total_fee", "refund_fee"):
            if fee in _REQUIRED[call.op] and not _fee_ok(params[fee]):
                return self._fail_return(f"{fee} must be a positive integer number of fen")
        return self._handlers[call.op](params)

    def _seal(self, reply: GatewayReply) -> GatewayReply:
        params = {"nonce_str": f"{next(self._nonces):016x}", "sign_type": SIGN_TYPE, **reply.params}
        if self._take_fault("unsigned"):
            return GatewayReply(status=reply.status, params=params, signed=False)
        if self._take_fault("badsign"):
            return GatewayReply(status=reply.status, params={**params, "sign": "0" * 64}, signed=False)
        return GatewayReply(status=reply.status, params=params)

    def _take_fault(self, name: str) -> bool:
        left = self.faults.get(name, 0)
        if left <= 0:
            return False
        self.faults[name] = left - 1
        return True

    # -- answers ----------------------------------------------------------------------------------------
    def _fail_return(self, why: str, status: int = 200) -> GatewayReply:
        return GatewayReply(status=status, params={"return_code": "FAIL", "return_msg": why})

    def _answer(self, order: Order | None, *, result: str = "SUCCESS", err: str = "", why: str = "",
                status: int = 200, **more: str) -> GatewayReply:
        p: Params = {"return_code": "SUCCESS", "return_msg": "OK", "result_code": result, "mch_id": self.mch_id}
        if err:
            p |= {"err_code": err, "err_code_des": why or err}
        if order is not None:
            p |= {"out_trade_no": order.order_no, "trade_state": order.state.value, "total_fee": str(order.amount_fen),
                  "channel": order.channel}
            if order.transaction_id:
                p["transaction_id"] = order.transaction_id
            if order.payer:
                p["payer"] = order.payer
            if order.paid_at is not None:
                p["time_end"] = order.paid_at.astimezone(BEIJING).strftime("%Y%m%d%H%M%S")
            if order.code_url:
                p["code_url"] = order.code_url
        return GatewayReply(status=status, params={**p, **more})

    def _order_answer(self, order: Order) -> GatewayReply:
        """A pay retried, answered from the booked order as the first pay would have been."""
        if order.state is TradeState.SUCCESS:
            return self._answer(order)
        if order.state is TradeState.USERPAYING:
            return self._answer(order, result="FAIL", err="USERPAYING",
                                why="需要用户输入支付密码 / waiting for the password")
        if order.state is TradeState.PAYERROR:
            return self._answer(order, result="FAIL", err=order.err_code, why=order.err_code)
        return self._answer(order, result="FAIL", err="ORDERREVERSED",
                            why="订单已撤销 / the order was reversed or closed")

    # -- state changes -----------------------------------------------------------------------------------
    def _charge(self, order: Order) -> None:
        if order.paid:
            return
        order.pay_at = None
        order.paid_at = self.now
        if self._books is not None:
            self._touched.add(order.order_no)
        order.payer = order.payer or self._mask(order)
        order.move(TradeState.SUCCESS, self.now)

    def _mask(self, order: Order) -> str:
        tail = (order.auth_code or order.order_no)[-4:]
        return f"{_MASK.get(order.channel, 'user')}****{tail}"

    def _new_id(self) -> str:
        self._last_id += 1
        return self.now.strftime("42%Y%m%d") + f"{self._last_id:018d}"

    # -- pay, query, reverse, refund ---------------------------------------------------------------------------
    def _pay(self, p: Params) -> GatewayReply | None:
        order = self.ledger.get(p["out_trade_no"])
        amount = int(p["total_fee"])
        if order is not None:
            if order.auth_code != p["auth_code"] or order.amount_fen != amount:
                return self._answer(None, result="FAIL", err="OUT_TRADE_NO_USED", why=_USED)
            return self._order_answer(order)
        channel = channel_of(p["auth_code"])
        if channel is None:
            return self._answer(None, result="FAIL", err="AUTH_CODE_INVALID", why="付款码无效 / not a payment code")
        order = self.ledger.book(Order(
            order_no=p["out_trade_no"], amount_fen=amount, kind="micropay", channel=channel.value,
            terminal_id=p.get("terminal_id", ""), at=self.now, auth_code=p["auth_code"],
            description=p.get("body", ""), transaction_id=self._new_id()))
        payer = payer_of(p["auth_code"])
        b = payer.behaviour
        if b in (Behaviour.NOTENOUGH, Behaviour.EXPIRED):
            order.err_code = "NOTENOUGH" if b is Behaviour.NOTENOUGH else "AUTH_CODE_EXPIRED"
            order.move(TradeState.PAYERROR, self.now)
            why = "余额不足 / not enough balance" if b is Behaviour.NOTENOUGH else "付款码已过期 / payment code expired"
            return self._answer(order, result="FAIL", err=order.err_code, why=why)
        if b is Behaviour.PAYS and amount > BIG_PAYMENT_FEN:
            order.pay_at = self.elapsed + 10.0
        elif b in (Behaviour.PASSWORD, Behaviour.ACCEPTED_202):
            order.pay_at = self.elapsed + payer.delay_s
        elif b in (Behaviour.PAYS, Behaviour.LOST_ANSWER, Behaviour.SYSTEMERROR):
            self._charge(order)
        if not order.paid:
            order.move(TradeState.USERPAYING, self.now)
        if b is Behaviour.LOST_ANSWER:
            return None  # booked and charged; the answer never leaves
        if b is Behaviour.SYSTEMERROR:
            return self._answer(order, result="FAIL", err="SYSTEMERROR", why="系统超时 / system error, query the order")
        reply = self._order_answer(order)
        return GatewayReply(status=202, params=reply.params) if b is Behaviour.ACCEPTED_202 else reply

    def _query(self, p: Params) -> GatewayReply:
        order = self.ledger.get(p["out_trade_no"])
        if order is None:
            return self._answer(None, result="FAIL", err="ORDERNOTEXIST", why="订单不存在 / no such order")
        return self._answer(order)

    def _reverse(self, p: Params) -> GatewayReply:
        order = self.ledger.get(p["out_trade_no"])
        if order is None:  # the pay never arrived: book the number as reversed, so it cannot pay late
            order = self.ledger.book(Order(order_no=p["out_trade_no"], amount_fen=0, kind="micropay", channel="",
                                           terminal_id=p.get("terminal_id", ""), at=self.now))
            order.move(TradeState.REVOKED, self.now)
            return self._answer(order, recall="N", action="close")
        behaviour = payer_of(order.auth_code).behaviour if order.auth_code else Behaviour.PAYS
        if behaviour is Behaviour.RECALL_TWICE and order.reverse_tries < 2 and not order.paid:
            order.reverse_tries += 1
            return self._answer(order, result="FAIL", err="SYSTEMERROR", why="系统繁忙，请重试 / busy, reverse again",
                                recall="Y")
        if behaviour is Behaviour.PAYS_AT_REVERSE and order.state is TradeState.USERPAYING:
            self._charge(order)  # the customer pressed pay between the last query and this reverse
        if order.paid:
            self._return_money(order, f"RV{order.order_no}"[:32])
            return self._answer(order, recall="N", action="refund")
        if order.state in (TradeState.USERPAYING, TradeState.NOTPAY, TradeState.PAYERROR):
            order.pay_at = None
            order.move(TradeState.REVOKED, self.now)
        return self._answer(order, recall="N", action="close")

    def _return_money(self, order: Order, refund_no: str) -> None:
        rest = order.amount_fen - order.refunded_fen
        if rest > 0:
            order.refunds[refund_no] = (rest, self.now)
        order.move(TradeState.REFUND, self.now)

    def _refund(self, p: Params) -> GatewayReply:
        order = self.ledger.get(p["out_trade_no"])
        if order is None:
            return self._answer(None, result="FAIL", err="ORDERNOTEXIST", why="订单不存在 / no such order")
        fee, refund_no = int(p["refund_fee"]), p["out_refund_no"]
        done = order.refunds.get(refund_no)
        if done is not None:  # a retried refund: the same answer, no second refund
            if done[0] != fee:
                return self._answer(order, result="FAIL", err="INVALID_REQUEST",
                                    why="退款单号重复 / refund number used")
            return self._answer(order, out_refund_no=refund_no, refund_fee=str(fee))
        if not order.paid:
            return self._answer(order, result="FAIL", err="TRADE_STATE_ERROR", why="订单未支付 / the order is not paid")
        if fee > order.amount_fen - order.refunded_fen:
            return self._answer(order, result="FAIL", err="REFUND_EXCEEDED",
                                why="退款金额超过可退金额 / more than is left to refund")
        order.refunds[refund_no] = (fee, self.now)
        order.move(TradeState.REFUND, self.now)
        return self._answer(order, out_refund_no=refund_no, refund_fee=str(fee))

    # -- merchant-presented ----------------------------------------------------------------------------
    def _create(self, p: Params) -> GatewayReply:
        order = self.ledger.get(p["out_trade_no"])
        amount = int(p["total_fee"])
        if order is not None:
            if order.kind != "native" or order.amount_fen != amount:
                return self._answer(None, result="FAIL", err="OUT_TRADE_NO_USED", why=_USED)
            return self._answer(order)
        order = self.ledger.book(Order(
            order_no=p["out_trade_no"], amount_fen=amount, kind="native", channel=Channel.WECHAT.value,
            terminal_id=p.get("terminal_id", ""), at=self.now, description=p.get("body", ""),
            transaction_id=self._new_id()))
        order.code_url = f"weixin://wxpay/bizpayurl?pr={order.transaction_id[-10:]}"
        return self._answer(order)

    def _close(self, p: Params) -> GatewayReply:
        order = self.ledger.get(p["out_trade_no"])
        if order is None:
            return self._answer(None, result="FAIL", err="ORDERNOTEXIST", why="订单不存在 / no such order")
        if order.paid:
            return self._answer(order, result="FAIL", err="ORDERPAID", why="订单已支付 / the order is paid")
        if order.state in (TradeState.NOTPAY, TradeState.USERPAYING):
            order.pay_at = None
            order.move(TradeState.CLOSED, self.now)
        return self._answer(order)

    def pay_order(self, order_no: str, payer: str = "") -> str:
        """A customer scans a merchant-presented order and pays (the `pay` control). A payment
        that lands after the order was closed is taken and returned at once (state REFUND)."""
        order = self.ledger.get(order_no)
        if order is None or order.kind != "native":
            raise ValueError("no merchant-presented order with that number")
        if order.paid:
            raise ValueError("the order is paid already")
        order.payer = payer[:4] + "****" + payer[-4:] if len(payer) > 8 else (payer or self._mask(order))
        was_closed = order.state in (TradeState.CLOSED, TradeState.REVOKED)
        self._charge(order)
        if was_closed:
            self._return_money(order, f"RC{order.order_no}"[:32])
        if self._books is not None:
            self._save()
        return "paid after the close: refunded at once" if was_closed else "paid"

    # -- statement ----------------------------------------------------------------------------------------
    def _statement(self, p: Params) -> GatewayReply:
        try:
            day = datetime.strptime(p["bill_date"], "%Y%m%d").replace(tzinfo=BEIJING)
        except ValueError:
            return self._answer(None, result="FAIL", err="INVALID_BILL_DATE", why="bill_date is YYYYMMDD")
        if self.now < day + BILL_READY:
            return self._answer(None, result="FAIL", err="BILL_NOT_READY",
                                why="对账单次日9点后生成 / the bill is ready at 09:00 the next day")
        encoding = p.get("encoding", "utf-8").lower()
        if encoding not in ("utf-8", "gbk"):
            return self._answer(None, result="FAIL", err="PARAM_ERROR", why="encoding is utf-8 or gbk")
        data = self.ledger.statement(p["bill_date"]).encode(encoding)
        return self._answer(None, bill_data=base64.b64encode(data).decode("ascii"), bill_encoding=encoding)

    def status(self) -> str:
        orders = self.ledger.orders.values()
        paid = sum(1 for o in orders if o.paid)
        return (f"wallet gateway: {len(self.ledger.orders)} orders ({paid} paid), charged "
                f"{self.ledger.charged_fen} fen net, {self.requests} requests, {self.refused} refused (signature), "
                f"time {self.now.isoformat()}")
