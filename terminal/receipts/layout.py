"""Receipts: a small model (what a slip says) and its translation into printer commands.

The model is the same for every printer; `to_commands` decides by the printer profile whether
Chinese is printed (GB18030, `FS &`), how many columns fit, and whether the lookup QR goes out as
a native `GS ( k` symbol or, where the printer has none, as a raster image (5-10x the bytes).
"""

from __future__ import annotations

import enum
import functools
import textwrap
from collections.abc import Mapping, Sequence
from datetime import datetime
from typing import Any

from drivers.printer.events import (
    Align,
    ChineseMode,
    Cut,
    FeedLines,
    Initialize,
    PrinterCommand,
    PrintRasterImage,
    PrintText,
    QrPrint,
    QrSelectModel,
    QrSetErrorCorrection,
    QrSetModuleSize,
    QrStore,
    SelectPrintMode,
    SetAlignment,
)
from drivers.record import Record
from drivers.sensitive import mask_pan
from terminal import i18n
from terminal.journal import TxnRecord
from terminal.money import format_amount

__all__ = ["Copy", "Line", "Receipt", "build_receipt", "line_text", "settlement_slip", "to_commands"]


class Copy(enum.Enum):
    MERCHANT = "merchant"
    CARDHOLDER = "cardholder"


COPY_TITLES = {Copy.MERCHANT: ("商户存根", "MERCHANT COPY"), Copy.CARDHOLDER: ("持卡人存根", "CARDHOLDER COPY")}
TXN_TYPES = {"sale": "消费 SALE", "void": "撤销 VOID", "refund": "退货 REFUND"}
ENTRY_MODES = {"chip": ("芯片", "CHIP"), "swipe": ("刷卡", "SWIPE"), "tap": ("挥卡", "TAP")}


class Line(Record):
    """One printed line: a label/value pair, a centred text, a rule, or the lookup QR."""

    zh: str = ""
    en: str = ""
    value: str = ""
    align: Align = Align.LEFT
    bold: bool = False
    large: bool = False
    rule: bool = False
    qr: str = ""
    image: PrintRasterImage | None = None  # a 1-bit picture (the cardholder's e-signature)


class Receipt(Record):
    txn_id: str
    copy: Copy
    lines: tuple[Line, ...]


# Codes that are not an issuer's refusal: on a declined slip they would read "declined, 00".
_NOT_A_DECLINE_CODE = {None, "", "00", "Y1", "Y3"}


def build_receipt(
    record: TxnRecord, *, copy: Copy, terminal: Mapping[str, Any], when: str, reprint: bool = False,
    approved: bool | None = None, reason: str | None = None, signature: PrintRasterImage | None = None,
    feature_code: str = "", no_signature: bool = False,
) -> Receipt:
    """`approved` says what the slip reports; by default what the journal row says (a host
    approval the card then refused is printed as a decline, with the terminal's `reason`).
    DATE/TIME is the transaction's own time; `when` (the time of printing) appears only on a
    reprint, on its own line. `no_signature`: a 免签 sale (contactless under the no-signature
    limit): the merchant copy says no signature is required instead of a signature line."""
    approved = record.state == "APPROVED" if approved is None else approved
    merchant = terminal["merchant_name"]
    symbol = str(terminal["currency_symbol"])
    title = ("POS签购单", "SALE SLIP") if approved else ("交易失败", "DECLINED")
    url = str(terminal["receipts"]["lookup_url"]).format(terminal_id=terminal["terminal_id"], txn_id=record.txn_id)
    zh_mode, en_mode = ENTRY_MODES.get(record.entry_mode, (record.entry_mode, record.entry_mode.upper()))
    lines = [
        Line(zh=merchant["zh"], align=Align.CENTER, large=True),
        Line(en=merchant["en"], align=Align.CENTER),
        Line(zh=title[0], en=title[1], align=Align.CENTER, bold=True),
        Line(zh=COPY_TITLES[copy][0], en=COPY_TITLES[copy][1], align=Align.CENTER),
    ]
    if reprint:
        lines.append(Line(zh="重打印", en="REPRINT", align=Align.CENTER, bold=True))
    lines += [
        Line(rule=True),
        Line(zh="商户编号", en="MERCHANT NO", value=str(terminal["merchant_id"])),
        Line(zh="终端编号", en="TERMINAL NO", value=str(terminal["terminal_id"])),
        Line(zh="卡号", en="CARD NO", value=mask_pan(record.pan_last4)),
        Line(zh="输入方式", en="ENTRY", value=f"{zh_mode} {en_mode}"),
        Line(zh="交易类型", en="TXN TYPE", value=TXN_TYPES.get(record.kind, record.kind.upper())),
        Line(zh="批次号", en="BATCH NO", value=f"{record.batch:06d}"),
        Line(zh="凭证号", en="TRACE NO", value=f"{record.stan:06d}"),
        Line(zh="参考号", en="REF NO", value=record.rrn or "-"),
    ]
    if approved:
        lines.append(Line(zh="授权码", en="AUTH NO", value=record.auth_code or "-"))
    elif record.response_code in _NOT_A_DECLINE_CODE:
        # The host approved (or was never asked) and the terminal or the card said no: its reason.
        lines.append(Line(zh="原因", en="REASON", value="终端拒绝 DECLINED BY TERMINAL"))
        if reason:
            lines.append(Line(zh=i18n.chinese_for(reason) or "", en=reason))
    else:
        lines.append(Line(zh="应答码", en="RESPONSE", value=record.response_code or "-"))
    lines.append(Line(zh="日期时间", en="DATE/TIME", value=_txn_time(record)))
    if reprint:
        lines.append(Line(zh="重打印时间", en="REPRINTED AT", value=when))
    lines += [
        Line(zh="金额", en="AMOUNT", value=format_amount(record.amount_minor, symbol), bold=True),
        Line(rule=True),
        Line(qr=url, align=Align.CENTER),
        Line(zh="扫码查询交易", en="SCAN TO LOOK UP", align=Align.CENTER),
    ]
    if approved and copy is Copy.MERCHANT and signature is not None:  # 电签: the signature taken on the pad
        lines += [
            Line(zh="持卡人签名", en="CARDHOLDER SIGNATURE"),
            Line(image=signature, align=Align.CENTER),
            Line(zh="特征码", en="FEATURE CODE", value=feature_code),
            Line(rule=True),
            Line(zh="本人确认以上交易,同意将其记入本卡账户",
                 en="I ACKNOWLEDGE SATISFACTORY RECEIPT OF RELATIVE GOODS/SERVICES"),
        ]
    elif approved and copy is Copy.MERCHANT and no_signature:
        lines += [
            Line(zh="免签 小额免签,无需签名", en="NO SIGNATURE REQUIRED"),
            Line(rule=True),
        ]
    elif approved and copy is Copy.MERCHANT:
        lines += [
            Line(zh="持卡人签名", en="CARDHOLDER SIGNATURE"),
            Line(),
            Line(),
            Line(rule=True),
            Line(zh="本人确认以上交易,同意将其记入本卡账户",
                 en="I ACKNOWLEDGE SATISFACTORY RECEIPT OF RELATIVE GOODS/SERVICES"),
        ]
    return Receipt(txn_id=record.txn_id, copy=copy, lines=tuple(lines))


def _txn_time(record: TxnRecord) -> str:
    """The transaction's own local time, as journalled when it was made."""
    try:
        return datetime.fromisoformat(record.created_at).strftime("%Y-%m-%d %H:%M:%S")
    except ValueError:
        return record.created_at


def settlement_slip(result: Any, *, terminal: Mapping[str, Any], when: str,
                    audit: tuple[int, str] | None = None, extra: Sequence[Line] = ()) -> Receipt:
    """结算单 SETTLEMENT: the batch's totals as the host agreed them, and the audit trail's
    entry count and head hash (`audit`): a paper anchor nobody with access to var/ can rewrite."""
    symbol = str(terminal["currency_symbol"])
    totals = result.totals
    lines = [
        Line(zh=terminal["merchant_name"]["zh"], align=Align.CENTER, large=True),
        Line(en=terminal["merchant_name"]["en"], align=Align.CENTER),
        Line(zh="结算单", en="SETTLEMENT", align=Align.CENTER, bold=True),
        Line(rule=True),
        Line(zh="商户编号", en="MERCHANT NO", value=str(terminal["merchant_id"])),
        Line(zh="终端编号", en="TERMINAL NO", value=str(terminal["terminal_id"])),
        Line(zh="批次号", en="BATCH NO", value=f"{result.batch:06d}"),
        Line(zh="日期时间", en="DATE/TIME", value=when),
        Line(rule=True),
        Line(zh="消费", en="SALES", value=f"{totals.sales_count} / {format_amount(totals.sales_amount, symbol)}"),
        Line(zh="撤销", en="VOIDS", value=f"{totals.voids_count} / {format_amount(totals.voids_amount, symbol)}"),
        Line(zh="退货", en="REFUNDS", value=f"{totals.refunds_count} / {format_amount(totals.refunds_amount, symbol)}"),
        Line(zh="净额", en="NET", value=format_amount(totals.net_amount, symbol), bold=True),
        Line(rule=True),
        Line(zh="对账平" if result.balanced else "对账不平", en="BALANCED" if result.balanced else "OUT OF BALANCE",
             align=Align.CENTER, bold=True),
    ]
    if result.uploaded:
        lines.append(Line(zh="批上送笔数", en="UPLOADED", value=str(result.uploaded)))
    # Outside these totals, each with its own block: unresolved reversals carried into the next
    # batch, and offline sales the host refused (the merchant's loss).
    lines += _exceptions(tuple(getattr(result, "carried", ())), symbol, ("未决交易转下批", "CARRIED OVER"),
                         ("冲正未完成,请人工处理", "REVERSAL UNRESOLVED, SEE EXCEPTION REPORT"))
    lines += _exceptions(tuple(getattr(result, "refused", ())), symbol, ("离线交易被拒", "ADVICE REFUSED"),
                         ("主机拒付,请查看异常报告", "HOST WILL NOT PAY, SEE EXCEPTION REPORT"))
    lines += extra  # the other payment channels, side by side with the card totals (qr_slips.py)
    if audit is not None:
        lines += [Line(rule=True), Line(zh="审计记录", en="AUDIT ENTRIES", value=str(audit[0])),
                  Line(zh="审计链头", en="AUDIT HEAD"), Line(en=audit[1][:32]), Line(en=audit[1][32:])]
    return Receipt(txn_id="", copy=Copy.MERCHANT, lines=tuple(lines))



def _exceptions(records: tuple[Any, ...], symbol: str, title: tuple[str, str], note: tuple[str, str]) -> list[Line]:
    """A settlement slip's block of transactions outside the totals: count, sum, each trace number."""
    if not records:
        return []
    total = sum(r.amount_minor for r in records)
    return [
        Line(rule=True),
        Line(zh=title[0], en=title[1], value=f"{len(records)} / {format_amount(total, symbol)}", bold=True),
        *(Line(zh="凭证号", en="TRACE NO", value=f"{r.stan:06d} {format_amount(r.amount_minor, symbol)}")
          for r in records),
        Line(zh=note[0], en=note[1]),
    ]

# -- printer commands ----------------------------------------------------------------------------

def _width(text: str) -> int:
    """Printed columns: CJK and fullwidth characters take two font-A cells."""
    if text.isascii():
        return len(text)
    return _wide_width(text)


@functools.lru_cache(maxsize=1024)
def _wide_width(text: str) -> int:
    # Receipt labels repeat on every slip: each distinct text is measured once.
    import unicodedata  # lazy: a till is ready for sale before it lays out a slip

    return sum(2 if unicodedata.east_asian_width(ch) in "WF" else 1 for ch in text)


def _label(line: Line, chinese: bool) -> str:
    if chinese and line.zh and line.en:
        return f"{line.zh} {line.en}"
    return line.en or (line.zh if chinese else "")


class _Encoder:
    def __init__(self, encoding: str, columns: int) -> None:
        self.chinese = encoding.lower() in {"gb18030", "gbk", "gb2312"}
        self.encoding = "gb18030" if self.chinese else encoding
        self.columns = columns

    def encode(self, text: str) -> bytes:
        if self.chinese:
            text = text.replace("¥", "￥")  # U+00A5 is a 4-byte GB18030 code no CN printer prints
        return text.encode(self.encoding, errors="replace")


def to_commands(receipt: Receipt, printer: Mapping[str, Any]) -> list[PrinterCommand]:
    encoding, columns = str(printer["text"]["encoding"]), int(printer["fonts"]["a"]["columns"])
    qr = bool(printer["features"]["native_qr"]), int(printer["media"]["dots"])
    out: list[PrinterCommand] = [Initialize()]
    if _Encoder(encoding, columns).chinese:
        out.append(ChineseMode(on=True))
    for line in receipt.lines:
        if line.image is not None:  # a signature: never kept past its slip
            out += [SetAlignment(align=line.align), line.image]
        elif line.qr:  # this sale's own (and a raster QR is big): not worth keeping
            out += [SetAlignment(align=Align.CENTER), *_qr_commands(line.qr, native=qr[0], dots=qr[1])]
        else:
            out += _line_commands(line, encoding, columns)
    out += [FeedLines(lines=3), Cut(partial=True)]
    return out


# Most lines of a slip are the same on both copies and on every sale (the merchant, the titles,
# the labels, the rules): each distinct line is laid out once. Commands are frozen records, so
# the slips share them. Lines hold no card data (the card number is masked on the slip).
@functools.lru_cache(maxsize=256)
def _line_commands(line: Line, encoding: str, columns: int) -> tuple[PrinterCommand, ...]:
    enc = _Encoder(encoding, columns)
    if line.rule:
        return (SetAlignment(align=Align.LEFT), PrintText(data=b"-" * enc.columns + b"\n"))
    mode = SelectPrintMode(bold=line.bold, double_height=line.large, double_width=line.large)
    text = line_text(line, enc.columns, enc.chinese)
    return (SetAlignment(align=line.align), mode, PrintText(data=enc.encode(text)), SelectPrintMode())


def line_text(line: Line, columns: int, chinese: bool) -> str:
    """A text line as it prints in `columns` (halved for a large line), newline-terminated rows:
    the label and value flush left and right, or wrapped. Shared with the e-receipts."""
    label = _label(line, chinese)
    columns = columns // 2 if line.large else columns
    if not line.value:
        return "".join(row + "\n" for row in _wrap(line, label, columns, chinese))
    if _width(label) + 1 + _width(line.value) <= columns:
        return label + " " * (columns - _width(label) - _width(line.value)) + line.value + "\n"
    # too long for one line: the label, then the value flush right
    return label + "\n" + " " * max(0, columns - _width(line.value)) + line.value + "\n"


def _wrap(line: Line, label: str, columns: int, chinese: bool) -> list[str]:
    """A text too wide for one line: Chinese and English on lines of their own, English by words."""
    if _width(label) <= columns:
        return [label]
    rows: list[str] = []
    if chinese and line.zh:
        row = ""
        for ch in line.zh:
            if _width(row + ch) > columns:
                rows.append(row)
                row = ""
            row += ch
        rows.append(row)
    rows += textwrap.wrap(line.en, columns) if line.en else []
    return rows


def _qr_commands(data: str, *, native: bool, dots: int) -> Sequence[PrinterCommand]:
    if native:
        return [
            QrSelectModel(model=2),
            QrSetModuleSize(size=6),
            QrSetErrorCorrection(level="M"),
            QrStore(data=data.encode("ascii")),
            QrPrint(),
        ]
    return [_raster_qr(data, dots=dots)]


def _raster_qr(data: str, *, dots: int) -> PrintRasterImage:
    import qrcode  # lazy: Pillow and qrcode cost start-up time and most receipts use native QR

    qr = qrcode.QRCode(error_correction=qrcode.constants.ERROR_CORRECT_M, border=2, box_size=1)
    qr.add_data(data)
    qr.make(fit=True)
    modules = qr.get_matrix()  # list of rows of bools, border included
    scale = max(1, min(6, (dots // 2) // len(modules)))
    size = len(modules) * scale
    width_bytes = (size + 7) // 8
    rows = bytearray()
    for row in modules:
        bits = bytearray(width_bytes)
        for x, dark in enumerate(row):
            if dark:
                for dx in range(scale):
                    px = x * scale + dx
                    bits[px // 8] |= 0x80 >> (px % 8)
        rows += bytes(bits) * scale
    return PrintRasterImage(width_bytes=width_bytes, height=size, data=bytes(rows))
