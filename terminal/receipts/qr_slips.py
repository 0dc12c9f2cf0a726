"""扫码存根联: the slips of a QR payment, the merchant-presented code slip, the settlement slip's
QR block and the e-receipt JSON of a QR record. Same model as layout.py (Line, Receipt), so
every printer profile prints them and every slip has a paperless form."""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any

from drivers.printer.events import Align
from terminal.journal import QrOrder, TxnRecord
from terminal.money import format_amount
from terminal.receipts.layout import COPY_TITLES, TXN_TYPES, Copy, Line, Receipt, _txn_time

__all__ = ["CHANNELS", "STATUS_TEXT", "e_receipt", "payment_code_slip", "qr_receipt", "qr_settlement_lines"]

CHANNELS = {"wechat": ("微信支付", "WECHAT PAY"), "alipay": ("支付宝", "ALIPAY"), "unionpay": ("云闪付", "UNIONPAY QR"),
            "merchant": ("主扫未付款", "MERCHANT QR, UNPAID"), "": ("扫码支付", "QR PAYMENT")}
# What a slip says of the order, by its status in the journal.
STATUS_TEXT = {
    "PAID": ("支付成功", "PAID"), "DONE": ("成功", "DONE"), "UNKNOWN": ("待确认", "PENDING CONFIRMATION"),
    "REFUNDED": ("已退款", "REFUNDED"), "CLOSED": ("已关闭", "CLOSED"), "FAILED": ("支付失败", "FAILED"),
}
_CUSTOMER_COPY = ("客户存根", "CUSTOMER COPY")


def _status(order: QrOrder) -> tuple[str, str]:
    return STATUS_TEXT.get(order.status, ("处理中", "IN PROGRESS"))


def qr_receipt(record: TxnRecord, order: QrOrder, *, copy: Copy, terminal: Mapping[str, Any], when: str,
               reprint: bool = False) -> Receipt:
    """A QR payment's (or its void's / refund's) merchant or customer copy."""
    symbol = str(terminal["currency_symbol"])
    zh_channel, en_channel = CHANNELS.get(order.channel, CHANNELS[""])
    zh_status, en_status = _status(order)
    copy_title = COPY_TITLES[copy] if copy is Copy.MERCHANT else _CUSTOMER_COPY
    url = str(terminal["receipts"]["lookup_url"]).format(terminal_id=terminal["terminal_id"], txn_id=record.txn_id)
    lines = [
        Line(zh=terminal["merchant_name"]["zh"], align=Align.CENTER, large=True),
        Line(en=terminal["merchant_name"]["en"], align=Align.CENTER),
        Line(zh="扫码支付凭证", en="QR PAYMENT SLIP", align=Align.CENTER, bold=True),
        Line(zh=copy_title[0], en=copy_title[1], align=Align.CENTER),
    ]
    if reprint:
        lines.append(Line(zh="重打印", en="REPRINT", align=Align.CENTER, bold=True))
    lines += [
        Line(rule=True),
        Line(zh="商户编号", en="MERCHANT NO", value=str(terminal["merchant_id"])),
        Line(zh="终端编号", en="TERMINAL NO", value=str(terminal["terminal_id"])),
        Line(zh="支付渠道", en="CHANNEL", value=f"{zh_channel} {en_channel}"),
        Line(zh="交易类型", en="TXN TYPE", value=TXN_TYPES.get(record.kind, record.kind.upper())),
        Line(zh="批次号", en="BATCH NO", value=f"{record.batch:06d}"),
        Line(zh="凭证号", en="TRACE NO", value=f"{record.stan:06d}"),
        Line(zh="终端订单号", en="ORDER NO", value=order.order_no),
        Line(zh="钱包订单号", en="WALLET NO", value=order.wallet_order_no or "-"),
    ]
    if order.payer or order.code_masked:
        lines.append(Line(zh="付款人", en="PAYER", value=order.payer or order.code_masked))
    lines += [
        Line(zh="日期时间", en="DATE/TIME", value=_txn_time(record)),
        Line(zh="状态", en="STATUS", value=f"{zh_status} {en_status}", bold=True),
    ]
    if reprint:
        lines.append(Line(zh="重打印时间", en="REPRINTED AT", value=when))
    lines += [
        Line(zh="金额", en="AMOUNT", value=format_amount(record.amount_minor, symbol), bold=True),
        Line(rule=True),
    ]
    if order.status == "UNKNOWN":
        lines.append(Line(zh="支付结果待确认,终端将自动查询;请勿重复收款",
                          en="OUTCOME PENDING: THE TERMINAL CHECKS IT; DO NOT CHARGE AGAIN"))
    lines += [Line(qr=url, align=Align.CENTER), Line(zh="扫码查询交易", en="SCAN TO LOOK UP", align=Align.CENTER)]
    return Receipt(txn_id=record.txn_id, copy=copy, lines=tuple(lines))


def payment_code_slip(order: QrOrder, *, amount_minor: int, terminal: Mapping[str, Any]) -> Receipt:
    """主扫: the merchant's payment code for the customer to scan."""
    symbol = str(terminal["currency_symbol"])
    lines = (
        Line(zh=terminal["merchant_name"]["zh"], align=Align.CENTER, large=True),
        Line(zh="扫码付款", en="SCAN TO PAY", align=Align.CENTER, bold=True),
        Line(zh="金额", en="AMOUNT", value=format_amount(amount_minor, symbol), bold=True),
        Line(zh="终端订单号", en="ORDER NO", value=order.order_no),
        Line(qr=order.code_url, align=Align.CENTER),
        Line(zh="支持微信/支付宝/云闪付", en="WECHAT PAY / ALIPAY / UNIONPAY QR", align=Align.CENTER),
    )
    return Receipt(txn_id=order.txn_id, copy=Copy.CARDHOLDER, lines=lines)


def qr_settlement_lines(summary: Mapping[str, Mapping[str, Any]], symbol: str,
                        reconciliation: Any | None = None) -> list[Line]:
    """The settlement slip's QR block, beside the card totals: per channel, paid count and amount,
    credits, success rate and average wait; then the statement's verdict."""
    if not summary:
        return []
    lines = [Line(rule=True), Line(zh="扫码支付", en="QR PAYMENTS", align=Align.CENTER, bold=True)]
    for channel, row in sorted(summary.items()):
        zh, en = CHANNELS.get(channel, (channel, channel.upper()))
        lines += [
            Line(zh=zh, en=en, value=f"{row['paid']} / {format_amount(row['paid_minor'], symbol)}", bold=True),
            Line(zh="退款/撤销", en="CREDITS",
                 value=f"{row['credits']} / {format_amount(row['credit_minor'], symbol)}"),
            Line(zh="成功率", en="SUCCESS", value=f"{row['success_rate']:.0%} of {row['tried']}"),
            Line(zh="平均等待", en="AVG WAIT", value=f"{row['average_wait_s']:.1f} s"),
        ]
        if row["pending"]:
            lines.append(Line(zh="待确认", en="PENDING", value=str(row["pending"])))
    if reconciliation is not None:
        lines += [Line(zh="对账单核对", en="STATEMENT", value=reconciliation.verdict, bold=True)]
    return lines


def e_receipt(record: TxnRecord, order: QrOrder, *, terminal: Mapping[str, Any]) -> str:
    """The same record as an e-receipt (JSON): every field the slip prints, machine-readable."""
    return json.dumps({
        "merchant_id": terminal["merchant_id"], "terminal_id": terminal["terminal_id"],
        "channel": order.channel, "kind": record.kind, "batch": record.batch, "trace": record.stan,
        "order_no": order.order_no, "wallet_order_no": order.wallet_order_no,
        "payer": order.payer or order.code_masked, "amount_minor": record.amount_minor, "currency": record.currency,
        "time": record.created_at, "status": order.status, "state": record.state,
        "lookup": str(terminal["receipts"]["lookup_url"]).format(terminal_id=terminal["terminal_id"],
                                                                 txn_id=record.txn_id),
    }, ensure_ascii=False, indent=2)
