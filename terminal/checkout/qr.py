"""QR payments, the second channel beside the card (PROTOCOLS.md §9, docs/qr-payments.md).

Customer-presented (付款码, 被扫): SCANNING waits for the customer's code (or it is scanned while
the terminal waits for a card); the code's channel is checked before anything leaves; the row
and its order number are committed; QR_PAYING sends the pay. "User is paying" or no clear answer
-> QR_POLLING queries on the channel's timings; still unknown at the deadline -> QR_REVERSING,
no sooner than `reverse_not_before_s` after the pay, again while the gateway says to retry; a
reverse that says "paid, refunded" is recorded as a refund. Still unknown after that: the order
stays UNKNOWN (待确认 PENDING CONFIRMATION) and idle housekeeping (QR_RESOLVING) resolves it later.

Merchant-presented (主扫): QR_SHOWING creates the order, shows its code (a PNG under var/qr/, and
a slip where there is a printer) and polls; on the poll limit or the cashier's cancel QR_CLOSING
closes it; the close's answer decides (a payment that landed first is a payment).

A void or refund of a QR payment is a wallet refund (QR_REFUNDING), idempotent on its own order
number, retried until the wallet decides.

The order number is committed before a request leaves and reused by every retry, query and
reverse, so the wallet books one effect per order whatever fails. The payment code stays in RAM.
"""

from __future__ import annotations

from datetime import datetime, timedelta
from pathlib import Path
from typing import Any, Protocol

from drivers.events import DeviceFault
from drivers.scanner.events import Scanned
from drivers.wallet.codec import channel_of
from drivers.wallet.events import (
    CloseOrder,
    CreateOrder,
    Pay,
    Query,
    Refund,
    Reverse,
    Statement,
    TradeState,
    WalletAnswer,
    WalletRequest,
)
from terminal import i18n
from terminal.checkout.base import log
from terminal.checkout.idle import IdleSteps
from terminal.checkout.settle import SettleSteps
from terminal.checkout.table import CheckoutState
from terminal.errors import InputError, JournalError
from terminal.host.reconcile import Reconciliation, StatementEntry, TerminalEntry, reconcile
from terminal.journal import QrOrder, TxnRecord
from terminal.journal.qr import mask_code, order_number
from terminal.receipts.layout import Line
from terminal.receipts.qr_slips import CHANNELS, e_receipt, payment_code_slip, qr_settlement_lines

__all__ = ["QrSteps", "payment_channel"]

S = CheckoutState

_PAID_LATE = "late_wallet_answer"


def payment_channel(code: str) -> str | None:
    """The wallet a customer's payment code belongs to, by its shape (drivers/wallet/codec.py
    `channel_of`, PROTOCOLS.md §9); None: not a payment code."""
    channel = channel_of(code)
    return None if channel is None else channel.value


class Wallet(Protocol):
    def send(self, request: WalletRequest | Statement) -> DeviceFault | None: ...


class QrSteps(SettleSteps, IdleSteps):
    """The QR states; the rows are in table.py."""

    def __init__(self, **deps: Any) -> None:
        super().__init__(**deps)
        self._resolving: QrOrder | None = None
        self._resolve_queue: list[QrOrder] = []
        self._resolve_reversing = False
        self._qr_resolve_at = 0.0
        self.looked_up: TxnRecord | None = None  # the transaction the last lookup QR named
        self.qr_batch_summary: dict[str, dict[str, Any]] = {}  # the QR block of the settlement slip
        self.last_reconciliation: Reconciliation | None = None
        self._statement_for: str | None = None
        self._reconcile_at = 0.0

    # -- devices and timings ------------------------------------------------------------------
    @property
    def wallet(self) -> Wallet:
        wallet = self.devices.get("wallet")
        if wallet is None:
            raise InputError(i18n.bilingual("qr_unavailable"))
        return wallet  # type: ignore[no-any-return]

    @property
    def has_wallet(self) -> bool:
        return self.devices.get("wallet") is not None

    def qr_timing(self, name: str, channel: str = "") -> float:
        """A wallet timing, per channel where the profile gives one (`[wallet.channels.<name>]`)."""
        settings = self.terminal["wallet"]
        value = ((settings.get("channels") or {}).get(channel) or {}).get(name)
        return float(settings[name] if value is None or value < 0 else value)  # -1: the general value

    def _send_wallet(self, request: WalletRequest | Statement) -> bool:
        fault = self.wallet.send(request)
        if fault is not None:
            log.warning("wallet request %s not sent: %s", request, fault.detail)
        return fault is None

    # -- customer-presented: waiting for the code -------------------------------------------------
    def on_enter_SCANNING(self, _: Any) -> None:
        self._show("show_payment_code")
        scanner = self.devices.get("scanner")
        if (trigger := getattr(scanner, "trigger", None)) is not None and (fault := trigger()) is not None:
            log.warning("scanner did not start: %s", fault.detail)
        self._arm("code_wait", float(self.terminal["limits"]["card_wait_timeout_s"]))

    def code_wait_over(self) -> None:
        self.cancel(reason="no payment code in time", actor="terminal")

    def code_scanned(self, scan: Scanned) -> None:
        """SCANNING or AWAITING_CARD: a payment code pays; anything else is shown and ignored."""
        self.enter_code(scan.data)

    def enter_code(self, code: str) -> bool:
        """The customer's code, scanned or typed by the cashier. True when the payment started."""
        code = code.strip()
        if self.state not in (S.SCANNING, S.AWAITING_CARD):
            raise InputError(f"no payment is waiting for a code (now {self.state.name})")
        channel = payment_channel(code)
        if channel is None:
            self._show("not_payment_code", mask_code(code[:40]) if code.isdigit() else f"{len(code)} chars")
            return False
        if not self.has_wallet:
            self._show("qr_unavailable")
            return False
        if self.state is S.AWAITING_CARD and (fault := self.card_reader_cancel()) is not None:
            log.warning("card reader did not stop for the QR payment: %s", fault.detail)
        self._stop_scanner()
        sale = self._sale()
        sale.qr_code, sale.qr_channel = code, channel
        self.take_code()
        return True

    def card_reader_cancel(self) -> DeviceFault | None:
        reader = self.devices.get("card_reader")
        cancel = getattr(reader, "cancel", None)
        return cancel() if cancel is not None else None

    def _stop_scanner(self) -> None:
        scanner = self.devices.get("scanner")
        if (stop := getattr(scanner, "stop", None)) is not None:
            stop()

    def lookup_scanned(self, scan: Scanned) -> None:
        """IDLE: a receipt's lookup QR finds its transaction (for a reprint, void or refund)."""
        record = self.lookup(scan.data)
        if record is None:
            self._show("not_payment_code", "")
            return
        self.looked_up = record
        self._show("txn_found", f"{record.stan:06d} {record.kind} {record.amount_minor} {record.state}")

    def lookup(self, text: str) -> TxnRecord | None:
        """The transaction a lookup QR (the receipt's URL) or a trace number names."""
        text = text.strip()
        if text.isdigit() and len(text) <= 6:
            txn_id = self.journal.txn_id_for_stan(int(text))
            return self.journal.get(txn_id) if txn_id else None
        template = str(self.terminal["receipts"]["lookup_url"])
        head, _, tail = template.format(terminal_id=self.terminal["terminal_id"], txn_id="\0").partition("\0")
        if text.startswith(head) and text.endswith(tail):
            return self.journal.get(text[len(head):len(text) - len(tail)] if tail else text[len(head):])
        return None

    def scan_ignored(self, scan: Scanned) -> None:
        log.info("scan ignored in %s (%d characters)", self.state.name, len(scan.data))
        self._show("not_payment_code", "")

    def scanner_fault(self, fault: DeviceFault) -> None:
        log.warning("scanner fault in %s: %s", self.state.name, fault.detail)
        self._show("device_fault", f"scanner: {fault.detail}")

    # -- customer-presented: pay, query, reverse --------------------------------------------------
    def on_enter_QR_PAYING(self, _: Any) -> None:
        sale = self._sale()
        code, channel = sale.qr_code, sale.qr_channel
        assert code and channel, "paying without a code"
        try:
            sale.record, sale.qr_order = self.journal.record_qr_sent(
                txn_id=sale.txn_id, mode="customer", channel=channel, amount_minor=sale.amount_minor,
                currency=self.currency, terminal_id=str(self.terminal["terminal_id"]), at=self.clock.wall(),
                code_masked=mask_code(code))
        except JournalError as exc:  # nothing has left for the wallet
            sale.reason = str(exc)
            self.decline()
            return
        sale.qr_sent_at = self.clock.now()
        self._show("qr_paying", " ".join(CHANNELS[channel]))
        request = Pay(order_no=sale.qr_order.order_no, auth_code=code, amount_fen=sale.amount_minor,
                      description=str(self.terminal["merchant_name"]["zh"]))
        sale.qr_code = None  # the code is spent: queries and the reverse name the order
        self._arm("qr_answer", self.qr_timing("timeout_s", channel))
        if not self._send_wallet(request):
            self.poll_wallet(why="pay not sent")

    def wallet_answer(self, answer: WalletAnswer) -> None:
        """Every wallet answer, by state; one about another order is late and never decides this one."""
        if self.state is S.QR_RESOLVING:
            self._resolve_answer(answer)
            return
        if self.state is S.RECONCILING:
            self.statement_answer(answer)
            return
        sale = self.sale
        order = sale.qr_order if sale is not None else None
        # A refund is asked under the payment's order number, with its own as the refund number.
        about = sale.qr_paid_order.order_no if sale is not None and sale.qr_paid_order is not None else None
        if sale is None or order is None or answer.order_no not in (order.order_no, about):
            self.wallet_unmatched(answer)
            return
        step = {S.QR_PAYING: self._pay_answer, S.QR_POLLING: self._query_answer,
                S.QR_REVERSING: self._reverse_answer, S.QR_SHOWING: self._showing_answer,
                S.QR_CLOSING: self._close_answer, S.QR_REFUNDING: self._refund_answer}[self.state]
        step(answer)

    def _pay_answer(self, answer: WalletAnswer) -> None:
        if answer.op != "pay":
            return
        if self._decided_by(answer):
            return
        self.poll_wallet(why=answer.err_code or answer.message or answer.state.value,
                         paying=answer.state is TradeState.USERPAYING)

    def _decided_by(self, answer: WalletAnswer) -> bool:
        """Paid, or definitely not: decide the sale. False: the outcome is still open."""
        if not answer.clear or not self._answer_valid(answer):
            return False
        if answer.state is TradeState.SUCCESS:
            self._qr_paid(answer)
            return True
        if answer.state in (TradeState.PAYERROR, TradeState.CLOSED, TradeState.REVOKED):
            self._qr_failed(answer, "FAILED" if answer.state is TradeState.PAYERROR else "CLOSED")
            return True
        if answer.state is TradeState.REFUND:
            self._qr_refunded(answer)
            return True
        return False

    def _answer_valid(self, answer: WalletAnswer) -> bool:
        """A signed answer is still checked against the order: its amount, and (a customer code)
        its channel. One that disagrees decides nothing; it is an incident, and the order is
        asked again (query, then reverse) as after an unclear answer."""
        sale = self._sale()
        order = sale.qr_order
        wrong = []
        if answer.state is TradeState.SUCCESS and answer.amount_fen and answer.amount_fen != sale.amount_minor:
            wrong.append(f"amount {answer.amount_fen} for {sale.amount_minor}")
        if order is not None and order.channel and answer.channel and answer.channel != order.channel:
            wrong.append(f"channel {answer.channel} for {order.channel}")
        if wrong:
            self.journal.record_incident("qr_answer_refused", txn_id=sale.txn_id, at=self.clock.wall(),
                                         detail=f"{answer.op} of {answer.order_no}: {', '.join(wrong)}")
            log.warning("wallet answer for %s refused: %s", answer.order_no, ", ".join(wrong))
        return not wrong

    def qr_no_answer(self) -> None:
        """QR_PAYING: the pay's answer did not come in time (the request may have been booked)."""
        self.poll_wallet(why="no answer to the pay")

    def on_enter_QR_POLLING(self, event: Any) -> None:
        sale, order = self._sale(), self._qr()
        why, paying = event.kwargs.get("why", ""), event.kwargs.get("paying", False)
        self.journal.qr_note(sale.txn_id, "USERPAYING" if paying else "QUERYING", detail=why, at=self.clock.wall())
        self._show("qr_user_paying" if paying else "qr_querying", why)
        # A password needs its time; an unclear answer waits for the gateway to settle first.
        self._arm("qr_query", self.qr_timing("query_every_s" if paying else "query_first_s", order.channel))

    def qr_query_tick(self) -> None:
        sale, order = self._sale(), self._qr()
        if self.clock.now() - sale.qr_sent_at >= self.qr_timing("give_up_s", order.channel):
            self.reverse_qr()
            return
        self._send_wallet(Query(order_no=order.order_no))
        self._arm("qr_query", self.qr_timing("query_every_s", order.channel))

    def _query_answer(self, answer: WalletAnswer) -> None:
        if answer.op in ("pay", "query"):  # a pay answered late counts as much as a query
            self._decided_by(answer)  # still paying or unclear: the next tick asks again

    def on_enter_QR_REVERSING(self, _: Any) -> None:
        sale, order = self._sale(), self._qr()
        sale.qr_reverse_tries = 0
        self.journal.qr_note(sale.txn_id, "REVERSING", detail="outcome unknown at the deadline",
                             at=self.clock.wall())
        self._show("qr_reversing")
        # WeChat refuses a reverse sooner than 15 s after the pay.
        earliest = sale.qr_sent_at + self.qr_timing("reverse_not_before_s", order.channel)
        self._arm("qr_reverse", max(0.0, earliest - self.clock.now()))

    def qr_reverse_tick(self) -> None:
        """Send the (next) reverse, or give up: the order stays UNKNOWN, pending confirmation."""
        sale, order = self._sale(), self._qr()
        if sale.qr_reverse_tries >= int(self.qr_timing("reverse_max_tries", order.channel)):
            self._qr_pending("reverse not answered")
            return
        sale.qr_reverse_tries += 1
        self._send_wallet(Reverse(order_no=order.order_no))
        self._arm("qr_reverse", self.qr_timing("reverse_retry_s", order.channel))

    def _reverse_answer(self, answer: WalletAnswer) -> None:
        if answer.op != "reverse":
            if answer.op in ("pay", "query") and answer.clear and answer.state is TradeState.SUCCESS:
                self._qr_paid(answer)  # a query answered late: paid before the reverse
            return
        if answer.clear and answer.recall:  # the gateway asks for the reverse again
            self._arm("qr_reverse", self.qr_timing("reverse_retry_s", self._qr().channel))
            return
        if answer.clear and (answer.action == "refund" or answer.state is TradeState.REFUND):
            self._qr_refunded(answer)
        elif answer.clear and (answer.action == "close" or answer.state in (TradeState.REVOKED, TradeState.CLOSED)):
            self._qr_failed(answer, "CLOSED", reason_key="qr_reversed")
        elif answer.clear and answer.state is TradeState.SUCCESS:
            self._qr_paid(answer)  # the gateway would not reverse a paid order: it is a payment
        # unclear: the tick sends the next reverse, or gives up

    # -- merchant-presented ----------------------------------------------------------------------
    def on_enter_QR_SHOWING(self, _: Any) -> None:
        sale = self._sale()
        try:
            sale.record, sale.qr_order = self.journal.record_qr_sent(
                txn_id=sale.txn_id, mode="merchant", channel="", amount_minor=sale.amount_minor,
                currency=self.currency, terminal_id=str(self.terminal["terminal_id"]), at=self.clock.wall())
        except JournalError as exc:
            sale.reason = str(exc)
            self.decline()
            return
        sale.qr_sent_at, sale.qr_polls = self.clock.now(), 0
        self._show("qr_creating")
        self._arm("qr_poll", self.qr_timing("timeout_s"))
        if not self._send_wallet(CreateOrder(order_no=sale.qr_order.order_no, amount_fen=sale.amount_minor,
                                             description=str(self.terminal["merchant_name"]["zh"]))):
            self.close_order(reason="order not created")

    def _showing_answer(self, answer: WalletAnswer) -> None:
        sale, order = self._sale(), self._qr()
        if answer.op == "create":
            if answer.clear and answer.code_url:
                sale.qr_order = self.journal.qr_note(sale.txn_id, "SHOWING", detail="code shown",
                                                     at=self.clock.wall(), code_url=answer.code_url)
                sale.qr_image = self._show_code(sale.qr_order, answer.code_url)
                self._arm("qr_poll", self.qr_timing("merchant_poll_every_s"))
            elif answer.clear and answer.state is TradeState.PAYERROR:
                self._qr_failed(answer, "FAILED")
            else:
                self.close_order(reason=answer.message or "order not created")
        elif answer.op == "query" and order.code_url:
            self._decided_by(answer)

    def _show_code(self, order: QrOrder, code_url: str) -> Path | None:
        """The payment code as a PNG any screen can show, and on a slip where there is a printer."""
        from terminal.receipts.qr_image import write_qr_png  # lazy: qrcode + Pillow

        path = self.journal.path.parent / "qr" / f"{order.order_no}.png"
        try:
            write_qr_png(code_url, path)
        except OSError as exc:
            log.warning("the payment code image was not written: %s", exc)
            path = None  # type: ignore[assignment]
        self._show("qr_scan_to_pay", str(path or code_url))
        self.print_payment_code(order, code_url)
        return path

    def qr_poll_tick(self) -> None:
        sale, order = self._sale(), self._qr()
        if not order.code_url:  # the create was never answered
            self.close_order(reason="no answer to the order")
            return
        if sale.qr_polls >= int(self.qr_timing("merchant_poll_times")):
            self.close_order(reason="not paid in time")
            return
        sale.qr_polls += 1
        self._send_wallet(Query(order_no=order.order_no))
        self._arm("qr_poll", self.qr_timing("merchant_poll_every_s"))

    def on_enter_QR_CLOSING(self, event: Any) -> None:
        sale, order = self._sale(), self._qr()
        sale.reason = event.kwargs.get("reason", "closed")
        sale.cancel_reason = event.kwargs.get("actor") and sale.reason
        self.journal.qr_note(sale.txn_id, "CLOSING", detail=sale.reason, at=self.clock.wall())
        self._show("qr_closing", sale.reason)
        self._arm("qr_close", self.qr_timing("timeout_s"))
        if not self._send_wallet(CloseOrder(order_no=order.order_no)):
            self.reverse_qr()

    def _close_answer(self, answer: WalletAnswer) -> None:
        if answer.op == "query":
            self._decided_by(answer) if answer.state is TradeState.SUCCESS else None
            return
        if answer.op != "close":
            return
        if answer.clear and answer.state in (TradeState.CLOSED, TradeState.NOTPAY, TradeState.REVOKED):
            self._qr_failed(answer, "CLOSED", reason_key="qr_closed")
        elif not self._decided_by(answer):
            self.reverse_qr()  # unclear: the reverse closes it, or refunds what landed

    def qr_close_over(self) -> None:
        self.reverse_qr()

    # -- void and refund of a QR payment -----------------------------------------------------------
    def on_enter_QR_REFUNDING(self, _: Any) -> None:
        sale = self._sale()
        original = sale.original
        assert original is not None, "a refund names its payment"
        paid = self.journal.qr_order(original.txn_id)
        try:
            if paid is None:
                raise JournalError(f"no QR order for {original.txn_id}")
            sale.record, sale.qr_order = self.journal.record_qr_sent(
                txn_id=sale.txn_id, mode="refund", channel=paid.channel, amount_minor=sale.amount_minor,
                currency=original.currency, terminal_id=str(self.terminal["terminal_id"]), at=self.clock.wall(),
                kind=sale.kind, original_txn_id=original.txn_id, paid_order_no=paid.order_no)
        except JournalError as exc:
            sale.reason = f"{sale.kind} not possible now: {exc}"
            self.decline()
            return
        sale.qr_paid_order, sale.qr_reverse_tries = paid, 0
        self._show("processing")
        self.qr_refund_tick()

    def _refund_request(self) -> Refund:
        sale, paid = self._sale(), self._sale().qr_paid_order
        assert paid is not None
        return Refund(order_no=paid.order_no, refund_no=self._qr().order_no, amount_fen=sale.amount_minor)

    def qr_refund_tick(self) -> None:
        sale, order = self._sale(), self._qr()
        if sale.qr_reverse_tries >= int(self.qr_timing("reverse_max_tries", order.channel)):
            self._qr_pending("refund not answered")
            return
        sale.qr_reverse_tries += 1
        self._send_wallet(self._refund_request())  # idempotent on the refund's own order number
        self._arm("qr_refund", self.qr_timing("timeout_s", order.channel))

    def _refund_answer(self, answer: WalletAnswer) -> None:
        if answer.op != "refund" or (answer.refund_no and answer.refund_no != self._qr().order_no):
            return
        if answer.clear and answer.state in (TradeState.REFUND, TradeState.SUCCESS):
            sale = self._sale()
            sale.record = self.journal.qr_decide(sale.txn_id, state="APPROVED", status="DONE", at=self.clock.wall(),
                                                 detail=f"refunded {answer.amount_fen or sale.amount_minor}",
                                                 response_code="00", wallet_order_no=answer.wallet_order_no)
            sale.response_code = "00"
            self.write_e_receipt(sale.txn_id)
            self.approve()
        elif answer.clear and answer.state is TradeState.PAYERROR:
            self._qr_failed(answer, "FAILED")
        # unclear: the tick sends it again

    # -- outcomes -----------------------------------------------------------------------------------
    def _qr_paid(self, answer: WalletAnswer) -> None:
        sale = self._sale()
        wait = self.clock.now() - sale.qr_sent_at
        try:
            self._record_paid(answer, wait)
        except JournalError as exc:  # the row stays SENT: the resolver asks the wallet again later
            self._qr_pending(f"paid, not journalled: {exc}")
            return
        sale.qr_order, sale.response_code = self.journal.qr_order(sale.txn_id), "00"
        self.write_e_receipt(sale.txn_id)
        self.approve()

    def _record_paid(self, answer: WalletAnswer, wait: float) -> None:
        sale = self._sale()
        sale.record = self.journal.qr_decide(
            sale.txn_id, state="APPROVED", status="PAID", at=self.clock.wall(), response_code="00",
            detail=f"paid after {wait:.1f} s", wallet_order_no=answer.wallet_order_no, payer=answer.payer,
            paid_at=answer.paid_at, channel=answer.channel, wait_s=round(wait, 1))

    def _qr_failed(self, answer: WalletAnswer, status: str, *, reason_key: str = "") -> None:
        sale = self._sale()
        why = answer.message or answer.err_code or answer.state.value
        sale.reason = i18n.bilingual(reason_key, why) if reason_key else why
        sale.response_code = answer.err_code or answer.state.value
        try:
            sale.record = self.journal.qr_decide(sale.txn_id, state="DECLINED", status=status, at=self.clock.wall(),
                                                 detail=why, response_code=sale.response_code[:8],
                                                 err_code=answer.err_code, message=answer.message)
        except JournalError as exc:
            self._qr_pending(f"failed, not journalled: {exc}")
            return
        self.decline()

    def _qr_refunded(self, answer: WalletAnswer) -> None:
        """The reverse found the order paid and returned the money: a refund, not a failure."""
        sale = self._sale()
        sale.reason = i18n.bilingual("qr_refunded")
        try:
            sale.record = self.journal.qr_decide(
                sale.txn_id, state="REVERSED", status="REFUNDED", at=self.clock.wall(),
                detail="paid, then refunded by the reverse", response_code="RF",
                wallet_order_no=answer.wallet_order_no, payer=answer.payer)
        except JournalError as exc:
            self._qr_pending(f"refunded, not journalled: {exc}")
            return
        sale.qr_refunded = True
        self.write_e_receipt(sale.txn_id)
        self.decline()

    def _qr_pending(self, why: str) -> None:
        """Still unknown: a persisted UNKNOWN order (待确认) resolved later; never a charge forgotten."""
        sale = self._sale()
        try:
            sale.qr_order = self.journal.qr_note(sale.txn_id, "UNKNOWN", detail=why, at=self.clock.wall())
        except JournalError as exc:  # the row is SENT on disk all the same: unresolved, asked again later
            log.error("QR order %s left unknown, not noted: %s", sale.txn_id, exc)
        sale.outcome, sale.reason = "PENDING", i18n.bilingual("qr_pending", why)
        self.write_e_receipt(sale.txn_id)
        self._show("qr_pending", why)
        self.leave_pending()

    def write_e_receipt(self, txn_id: str) -> Path | None:
        """The e-receipt (电子签购单) of a QR record, var/receipts/<txn_id>.json: every field of its
        slip, for a paperless copy or the customer's "send me the slip". Written atomically; a
        disk that will not take it changes nothing about the money (logged)."""
        record, order = self.journal.get(txn_id), self.journal.qr_order(txn_id)
        if record is None or order is None:
            return None
        path = self.journal.path.parent / "receipts" / f"{txn_id}.json"
        try:
            path.parent.mkdir(parents=True, exist_ok=True)
            tmp = path.with_suffix(".json.tmp")
            tmp.write_text(e_receipt(record, order, terminal=self.terminal), encoding="utf-8")
            tmp.replace(path)
        except OSError as exc:
            log.warning("e-receipt of %s not written: %s", txn_id, exc)
            return None
        return path

    def _qr(self) -> QrOrder:
        order = self._sale().qr_order
        assert order is not None, "the sale has no QR order"
        return order

    def wallet_unmatched(self, answer: WalletAnswer) -> None:
        """An answer about an order no wait is for: a late one. A payment the terminal no longer
        expects goes on the exception report (the resolver or the statement settles it)."""
        log.warning("wallet answer %s for %s in %s", answer.op, answer.order_no, self.state.name)
        if answer.clear and answer.state is TradeState.SUCCESS:
            order = self.journal.qr_order_by_number(answer.order_no)
            self.journal.record_incident(_PAID_LATE, txn_id=order.txn_id if order else None, at=self.clock.wall(),
                                         detail=f"{answer.op} of {answer.order_no}: paid after the terminal moved on")

    def wallet_fault(self, fault: DeviceFault) -> None:
        log.warning("wallet link fault in %s: %s", self.state.name, fault.detail)
        if self.state is S.QR_PAYING:
            self.poll_wallet(why=fault.detail)  # the pay may have been booked: ask

    # -- housekeeping: orders whose outcome is not known yet -----------------------------------------
    def housekeeping(self) -> bool:
        """Idle: what is owed to the acquirer first, then the QR orders still unknown (their own
        round, every `wallet.resolve_every_s`, so a silent wallet never holds up card sales)."""
        if super().housekeeping():
            return True
        if self.state is S.IDLE and self.qr_resolution_due():
            self.resolve_qr()
            return True
        if self.state is S.IDLE and self.reconciliation_due():
            self._reconcile_at = self.clock.now() + float(self.terminal["wallet"]["resolve_every_s"])
            yesterday = (self.clock.wall() - timedelta(days=1)).strftime("%Y%m%d")
            if self._day_entries(yesterday):
                self.reconcile(bill_date=yesterday)
                return True
            self.journal.set_qr_reconciled_through(int(yesterday), at=self.clock.wall(), quiet=True)  # nothing to do
        return False

    def qr_resolution_due(self) -> bool:
        return (self.has_wallet and self.clock.now() >= self._qr_resolve_at
                and bool(self.journal.qr_unresolved()))

    def on_enter_QR_RESOLVING(self, _: Any) -> None:
        self._qr_resolve_at = self.clock.now() + float(self.terminal["wallet"]["resolve_every_s"])
        self._resolve_queue = self.journal.qr_unresolved()
        self._resolve_next()

    def _resolve_next(self) -> None:
        if not self._resolve_queue:
            self._resolving = None
            self._disarm()
            self.end_resolving()
            return
        order = self._resolving = self._resolve_queue.pop(0)
        self._resolve_reversing = False
        if order.mode == "refund":
            record = self.journal.get(order.txn_id)
            paid = self.journal.qr_order(record.original_txn_id) if record and record.original_txn_id else None
            if record is None or paid is None:
                self._resolve_next()
                return
            self._send_wallet(Refund(order_no=paid.order_no, refund_no=order.order_no, amount_fen=record.amount_minor))
        else:
            self._send_wallet(Query(order_no=order.order_no))
        self._arm("qr_resolve", self.qr_timing("timeout_s", order.channel))

    def qr_resolve_over(self) -> None:
        self._resolve_next()  # no answer: it stays unknown until the next round

    def _resolve_answer(self, answer: WalletAnswer) -> None:
        order = self._resolving
        if order is None or (answer.order_no not in (order.order_no,) and answer.refund_no != order.order_no):
            self.wallet_unmatched(answer)
            return
        at, decided = self.clock.wall(), True
        try:
            if order.mode == "refund":
                if answer.clear and answer.state in (TradeState.REFUND, TradeState.SUCCESS):
                    self.journal.qr_decide(order.txn_id, state="APPROVED", status="DONE", at=at, response_code="00",
                                           detail="refund confirmed later")
                elif answer.clear and answer.state is TradeState.PAYERROR:
                    self.journal.qr_decide(order.txn_id, state="DECLINED", status="FAILED", at=at,
                                           detail=answer.message or answer.err_code, err_code=answer.err_code)
                else:
                    decided = False
            elif answer.clear and answer.state is TradeState.SUCCESS:
                self.journal.qr_decide(order.txn_id, state="APPROVED", status="PAID", at=at, response_code="00",
                                       detail=f"{answer.op}: paid, confirmed later",
                                       wallet_order_no=answer.wallet_order_no, payer=answer.payer,
                                       paid_at=answer.paid_at, channel=answer.channel)
            elif answer.clear and (answer.state is TradeState.REFUND or answer.action == "refund"):
                self.journal.qr_decide(order.txn_id, state="REVERSED", status="REFUNDED", at=at, response_code="RF",
                                       detail=f"{answer.op}: paid and refunded")
            elif answer.clear and (answer.state in (TradeState.CLOSED, TradeState.REVOKED, TradeState.PAYERROR)
                                   or answer.action == "close"):
                self.journal.qr_decide(order.txn_id, state="DECLINED", status="CLOSED", at=at,
                                       detail=f"{answer.op}: {answer.state.value} {answer.err_code}".strip())
            elif (answer.op == "query" and answer.state in (TradeState.USERPAYING, TradeState.NOTPAY)
                  and not self._resolve_reversing):
                # Nobody is waiting at the counter any more: close it, or refund what landed.
                self._resolve_reversing = True
                self._send_wallet(Reverse(order_no=order.order_no))
                self._arm("qr_resolve", self.qr_timing("timeout_s", order.channel))
                return
            else:
                decided = False
        except JournalError as exc:
            log.error("the wallet's answer for %s was not journalled: %s", order.order_no, exc)
            decided = False
        if decided:
            self._show("qr_resolved", f"{order.order_no} {answer.state.value}")
        self._resolve_next()

    # -- settlement and reconciliation (对账) ---------------------------------------------------------
    def on_enter_SETTLING(self, event: Any) -> None:
        """Settlement covers both channels: the QR block of the slip is taken now, before the rows
        leave the live journal with the batch (the wallet settles them; its statement of the day
        is reconciled the day after: RECONCILING)."""
        self.qr_batch_summary = self.journal.qr_summary(self.journal.current_batch())
        super().on_enter_SETTLING(event)

    def reconciliation_due(self) -> bool:
        """Idle: yesterday's statement is ready (`wallet.statement_ready_hour`) and not reconciled."""
        if not self.has_wallet or self.clock.now() < self._reconcile_at:
            return False
        wall = self.clock.wall()
        yesterday = int((wall - timedelta(days=1)).strftime("%Y%m%d"))
        ready = wall.hour >= int(self.terminal["wallet"]["statement_ready_hour"])
        return ready and self.journal.qr_reconciled_through() < yesterday

    def start_reconciliation(self, bill_date: str | None = None) -> None:
        """对账: reconcile one day's QR payments (default yesterday) against the wallet's statement."""
        if self.state not in (S.IDLE, S.SETTLE_REQUIRED):
            raise InputError(f"reconciliation starts when idle (now {self.state.name})")
        day = bill_date or (self.clock.wall() - timedelta(days=1)).strftime("%Y%m%d")
        try:
            datetime.strptime(day, "%Y%m%d")
        except ValueError:
            raise InputError(f"the statement date is YYYYMMDD, not {day[:20]!r}") from None
        self._wallet_or_refuse()
        self.reconcile(bill_date=day)

    def _wallet_or_refuse(self) -> None:
        if not self.has_wallet:
            raise InputError(i18n.bilingual("qr_unavailable"))

    def on_enter_RECONCILING(self, event: Any) -> None:
        self._reconcile_at = self.clock.now() + float(self.terminal["wallet"]["resolve_every_s"])
        self._statement_for = event.kwargs["bill_date"]
        self._show("reconciling", self._statement_for)
        self._arm("statement", self.qr_timing("timeout_s"))
        if not self._send_wallet(Statement(bill_date=self._statement_for)):
            self._no_statement("not sent")

    def statement_deadline(self) -> None:
        self._no_statement("no answer")

    def _no_statement(self, why: str) -> None:
        bill_date, self._statement_for = self._statement_for, None
        log.info("statement %s not reconciled: %s", bill_date, why)
        self._show("reconcile_later", f"{bill_date}: {why}")
        self._disarm()
        self.end_reconciling()

    def statement_answer(self, answer: WalletAnswer) -> None:
        """RECONCILING: the statement; every finding but a match goes on the exception report."""
        if answer.op != "statement" or self._statement_for is None:
            self.wallet_unmatched(answer)
            return
        if not answer.clear or answer.state is not TradeState.SUCCESS:  # e.g. BILL_NOT_READY: later
            self._no_statement(answer.message or answer.err_code or "no clear answer")
            return
        bill_date = self._statement_for
        try:
            self._reconcile(bill_date, answer.statement)
        except JournalError as exc:
            log.error("reconciliation of %s not journalled: %s", bill_date, exc)
        self._statement_for = None
        self._disarm()
        self.end_reconciling()

    def _reconcile(self, bill_date: str, text: str) -> None:
        from drivers.wallet.statement import StatementError, parse_statement

        at = self.clock.wall()
        try:
            rows = _statement_entries(parse_statement(text))
        except StatementError as exc:
            self.journal.record_incident("statement_unreadable", txn_id=None, at=at, detail=f"{bill_date}: {exc}")
            self._show("reconcile_later", f"{bill_date}: {exc}")
            return
        prefix = order_number(str(self.terminal["terminal_id"]), at, 0)[:-18]  # "OT" + this terminal's id
        ours = self._day_entries(bill_date)
        wallet = [e for e in rows if e.order_no.startswith(prefix)]
        result = self.last_reconciliation = reconcile(bill_date, ours, wallet)
        for finding in result.problems:
            self.journal.record_incident(
                f"reconcile_{finding.kind}", txn_id=finding.txn_id or None, at=at,
                detail=f"{bill_date} order {finding.order_no}: terminal (paid, refunded) {finding.terminal},"
                       f" wallet {finding.wallet}. {finding.action}")
        self.journal.set_qr_reconciled_through(int(bill_date), at=at)
        self._show("reconciled", f"{bill_date}: {result.verdict}")

    def _day_entries(self, bill_date: str) -> list[TerminalEntry]:
        """The terminal's QR rows of one day: the live journal's and the settled batches' archives."""
        day = f"{bill_date[:4]}-{bill_date[4:6]}-{bill_date[6:]}"
        rows: list[tuple[TxnRecord, QrOrder]] = [
            (record, order) for record, order in self.journal.qr_rows() if record.created_at.startswith(day)]
        live = {order.order_no for _, order in rows}
        for archived in self.settlement.archive.qr_orders():
            if str(archived.get("created_at", "")).startswith(day) and archived.get("order_no") not in live:
                record, order = _from_archive(archived)
                rows.append((record, order))
        return _terminal_entries(rows)

    def slip_extras(self) -> list[Line]:
        return qr_settlement_lines(self.qr_batch_summary, str(self.terminal["currency_symbol"]),
                                   self.last_reconciliation)

    def print_payment_code(self, order: QrOrder, code_url: str) -> None:
        """主扫: the code on a slip too, where there is a printer that is free."""
        if self.spool.busy:
            return
        slip = payment_code_slip(order, amount_minor=self._sale().amount_minor, terminal=self.terminal)
        end = self.spool.start_receipt(slip, what="payment code", name=f"pay-{order.order_no}")
        if end is not None:
            self.print_job_over(end)


def _terminal_entries(rows: list[tuple[TxnRecord, QrOrder]]) -> list[TerminalEntry]:
    """What the statement must show of a batch, per payment order: each payment taken (a payment
    the reverse refunded was taken, then returned in full) and each refund done."""
    entries = []
    for record, order in rows:
        if record.kind == "sale" and record.state in ("APPROVED", "REVERSED"):
            returned = record.amount_minor if record.state == "REVERSED" else 0
            entries.append(TerminalEntry(order_no=order.order_no, paid_fen=record.amount_minor,
                                         refunded_fen=returned, txn_id=record.txn_id))
        elif record.kind != "sale" and record.state == "APPROVED" and order.paid_order_no:
            entries.append(TerminalEntry(order_no=order.paid_order_no, refunded_fen=record.amount_minor,
                                         txn_id=record.txn_id))
    return entries


def _statement_entries(statement: Any) -> list[StatementEntry]:
    """The statement's rows per order (WeChat's columns: 商户订单号, 交易状态, 应结订单金额, 退款金额)."""
    from drivers.wallet.statement import fen

    entries = []
    for row in statement.rows:
        order_no, status = row.get("商户订单号", ""), row.get("交易状态", "")
        if status == "SUCCESS":
            entries.append(StatementEntry(order_no=order_no, paid_fen=fen(row.get("应结订单金额", "0.00"))))
        elif status == "REFUND":
            entries.append(StatementEntry(order_no=order_no, refunded_fen=fen(row.get("退款金额", "0.00"))))
    return entries


def _from_archive(o: dict[str, Any]) -> tuple[TxnRecord, QrOrder]:
    """A QR row of a settled batch's archive, as the journal would give it."""
    record = TxnRecord(txn_id=str(o["txn_id"]), kind=str(o["kind"]), state=str(o["state"]), stan=int(o["stan"]),
                       batch=0, amount_minor=int(o["amount_minor"]), currency=str(o["currency"]), entry_mode="qr",
                       pan_last4="", response_code=None, auth_code=None, rrn=None, created_at=str(o["created_at"]),
                       original_txn_id=o.get("original_txn_id"))
    fields = {k: o.get(k, "") for k in QrOrder.__annotations__}
    fields["wait_s"] = float(o.get("wait_s") or 0.0)
    return record, QrOrder(**fields)
