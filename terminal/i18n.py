"""Operator and cardholder texts in Chinese and English; both are shown, Chinese first."""

from __future__ import annotations

__all__ = ["REASONS", "TEXTS", "bilingual", "chinese_for"]

TEXTS: dict[str, tuple[str, str]] = {
    "enter_amount": ("请输入金额", "ENTER AMOUNT"),
    "present_card": ("请插卡/刷卡/挥卡", "INSERT, SWIPE OR TAP CARD"),
    "fallback": ("请刷卡或插卡", "PLEASE SWIPE OR INSERT CARD"),
    "enter_pin": ("请输入密码", "PLEASE ENTER PIN"),
    "wrong_pin": ("密码错误,请重新输入", "WRONG PIN, TRY AGAIN; TRIES LEFT"),
    "sign_here": ("请持卡人签名", "CARDHOLDER PLEASE SIGN"),
    "reading_card": ("读卡中,请勿拔卡", "READING CARD, DO NOT REMOVE"),
    "processing": ("处理中,请稍候", "PROCESSING, PLEASE WAIT"),
    "approved": ("交易成功", "APPROVED"),
    "declined": ("交易失败", "DECLINED"),
    "cancelled": ("交易已取消", "CANCELLED"),
    "outcome_unknown": ("交易结果未知,将自动冲正", "NO ANSWER FROM HOST, WILL REVERSE"),
    "printing": ("打印中", "PRINTING"),
    "remove_card": ("请拔卡", "PLEASE REMOVE CARD"),
    "journal_warn": ("交易流水将满,请尽快结算", "JOURNAL NEARLY FULL, PLEASE SETTLE SOON"),
    "journal_full": ("交易流水已满，请先结算", "JOURNAL FULL, SETTLE FIRST"),
    "reversal_failed": ("冲正不成功,请人工处理", "REVERSAL FAILED, HANDLE MANUALLY"),
    "reversal_pending": ("有未完成的冲正,正在处理", "A REVERSAL IS PENDING, RESOLVING IT FIRST"),
    "unresolved_full": ("未完成交易已满,请先处理/结算", "TOO MANY UNRESOLVED TRANSACTIONS, RESOLVE OR SETTLE FIRST"),
    "offline_approved": ("离线批准,联机后上送", "APPROVED OFFLINE, FORWARDED WHEN THE HOST IS BACK"),
    "signed_on": ("签到成功", "SIGNED ON"),
    "sign_on_failed": ("签到失败", "SIGN-ON FAILED"),
    "settling": ("结算中", "SETTLING"),
    "settled": ("结算成功", "SETTLED"),
    "settle_failed": ("结算未完成", "SETTLEMENT NOT COMPLETED"),
    "printer_warning": ("打印机提示", "PRINTER NOTICE"),
    "device_fault": ("设备故障", "DEVICE FAULT"),
    "amount_refused": ("金额无效:须大于零且不超过单笔限额",
                       "AMOUNT REFUSED: MORE THAN ZERO, AT MOST THE PER-SALE LIMIT"),
    "settlement_owed": ("上次结算未完成,请先结算", "THE LAST SETTLEMENT HAS NO OUTCOME YET, SETTLE FIRST"),
    "show_payment_code": ("请出示付款码", "PLEASE SHOW YOUR PAYMENT CODE"),
    "not_payment_code": ("不是付款码,已忽略", "NOT A PAYMENT CODE, IGNORED"),
    "qr_unavailable": ("扫码支付不可用(未配置钱包网关)", "QR PAYMENTS NOT AVAILABLE (NO WALLET GATEWAY)"),
    "qr_paying": ("扫码支付中,请稍候", "QR PAYMENT IN PROGRESS, PLEASE WAIT"),
    "qr_user_paying": ("用户支付中,请输入支付密码", "CUSTOMER IS PAYING, WAITING FOR THE PASSWORD"),
    "qr_querying": ("支付结果查询中", "CHECKING THE PAYMENT"),
    "qr_reversing": ("支付结果未知,正在撤销", "OUTCOME UNKNOWN, CANCELLING THE PAYMENT"),
    "qr_reversed": ("支付已撤销,未扣款", "PAYMENT CANCELLED, NOTHING CHARGED"),
    "qr_refunded": ("已付款,已全额退回", "PAID, THEN REFUNDED IN FULL"),
    "qr_pending": ("待确认,请稍后查询", "PENDING CONFIRMATION, CHECK LATER"),
    "qr_resolved": ("待确认交易已确认", "PENDING PAYMENT RESOLVED"),
    "qr_creating": ("正在生成收款码", "CREATING THE PAYMENT CODE"),
    "qr_scan_to_pay": ("请顾客扫码支付", "CUSTOMER PLEASE SCAN TO PAY"),
    "qr_closing": ("正在关闭订单", "CLOSING THE ORDER"),
    "qr_closed": ("订单已关闭,未付款", "ORDER CLOSED, NOT PAID"),
    "txn_found": ("已找到交易", "TRANSACTION FOUND"),
    "sign_on_pad": ("请在签名板上签名,特征码", "PLEASE SIGN ON THE PAD; FEATURE CODE"),
    "signature_too_small": ("签名无效,请重新签名", "SIGNATURE BLANK OR TOO SMALL, PLEASE SIGN AGAIN"),
    "signature_taken": ("签名完成", "SIGNED"),
    "reconciling": ("对账中", "RECONCILING WITH THE STATEMENT"),
    "reconciled": ("对账完成", "RECONCILED"),
    "reconcile_later": ("对账单暂不可用,稍后再对账", "STATEMENT NOT AVAILABLE, RECONCILING LATER"),
    "printer_paused": ("打印暂停,请检查打印机(缺纸/开盖)后继续", "PRINTING PAUSED: CHECK PAPER AND COVER"),
}

# The terminal's own reasons (sale.reason, the journal), kept in English there; a slip prints both.
REASONS: dict[str, str] = {
    "card removed before completion": "完成前卡被拔出",
    "the card declined the issuer's approval": "卡片拒绝了发卡行的批准",
    "the card did not complete in time": "卡片未按时完成",
}


def chinese_for(reason: str) -> str | None:
    return REASONS.get(reason)


def bilingual(key: str, detail: str = "") -> str:
    zh, en = TEXTS[key]
    return f"{zh} / {en}" + (f": {detail}" if detail else "")
