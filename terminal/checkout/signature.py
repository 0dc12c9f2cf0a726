"""SIGNATURE_REQUIRED: the cardholder's signature for a sale whose CVM asks for one (电签).

With a signature pad (`devices["signature_pad"]`) the pad shows the amount and the feature code
(特征码, PROTOCOLS.md §4.1) and captures: the capture ends on the pad's OK key, or when the pen
has been away for the pad profile's `capture.pen_away_s` after some ink, or at the terminal's
`signature.timeout_s` in all. A signature with too little ink or too small a box is refused and
asked for again, up to `capture.max_attempts`; Clear starts again. The signature is journalled,
bound to the sale (terminal/journal/signatures.py) with its upload owed, before the slips print;
the merchant copy prints it.

Without a valid signature (Cancel, the time is up, the attempts are spent, a pad fault) the
terminal profile's `signature.fallback` decides: "paper" — the merchant copy gets a signature line
for the cardholder to sign (only where there is a printer) — or "void": the approved sale is
reversed (reason code 06, like a card that refused its approval) with the reason recorded.
Without a pad the cardholder signs the paper copy and the operator confirms (`confirm_signature`).
Contactless sales up to `signature.no_signature_limit_minor` (免签) skip the signature.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from drivers.card_reader.events import Cvm, EntryMode
from drivers.events import DeviceFault
from drivers.signature_pad.events import InkAdded, PadKey
from terminal import i18n
from terminal.checkout.base import FlowBase, Sale, log
from terminal.checkout.table import CheckoutState
from terminal.errors import InputError, JournalError
from terminal.host.feature_code import feature_code
from terminal.money import format_amount

__all__ = ["SignatureSteps", "feature_code_of", "needs_signature", "signature_owed"]

S = CheckoutState


def feature_code_of(settlement_date: str | None, rrn: str | None) -> str:
    """特征码 of a sale (terminal/host/feature_code.py): "0000" without a settlement date, zeros
    without an RRN (an offline approval)."""
    return feature_code(settlement_date or "0000", (rrn or "").rjust(12, "0")[-12:])


def needs_signature(sale: Sale, terminal: Mapping[str, Any]) -> bool:
    """免签: a contactless sale up to the no-signature limit needs none."""
    limit = int(terminal["signature"]["no_signature_limit_minor"])
    card = sale.card
    return not (card is not None and card.entry_mode is EntryMode.TAP and sale.amount_minor <= limit)


def signature_owed(sale: Sale, terminal: Mapping[str, Any], devices: Mapping[str, Any]) -> bool:
    """The sale will be signed on the pad if approved: its card asks for a signature, there is a
    pad, and it is not 免签 (marked OWED with its request: journal/signatures.py)."""
    card = sale.card
    return (card is not None and card.cvm is Cvm.SIGNATURE and devices.get("signature_pad") is not None
            and needs_signature(sale, terminal))


class SignatureSteps(FlowBase):
    _sig_attempts = 0
    _sig_until = 0.0  # Clock time the whole capture ends
    _sig_inked = False
    _sig_feature = ""

    @property
    def signature_inked(self) -> bool:
        """The capture under way has ink (the pen has written on the pad)."""
        return self.state is S.SIGNATURE_REQUIRED and self._sig_inked

    @property
    def signature_pad(self) -> Any:
        return self.devices.get("signature_pad")

    def needs_signature(self) -> bool:
        return needs_signature(self._sale(), self.terminal)

    def waive_signature(self) -> None:
        """免签: marked, so the merchant copy says no signature is required (a reprint too)."""
        sale = self._sale()
        try:
            self.journal.mark_signature(sale.txn_id, "WAIVED", at=self.clock.wall())
        except JournalError as exc:  # the slip then has a signature line: harmless
            log.warning("免签 of %s not journalled: %s", sale.txn_id, exc)

    def on_enter_SIGNATURE_REQUIRED(self, _: Any) -> None:
        if self.signature_pad is None:
            self._show("sign_here")  # the cardholder signs the merchant copy; the operator confirms
            return
        record = self._record()
        try:  # durable before the pad asks (marked already with the request, authorize.py)
            if self.journal.signature_mark(record.txn_id) != "OWED":
                self.journal.mark_signature(record.txn_id, "OWED", at=self.clock.wall())
        except JournalError as exc:
            self._signature_fallback(f"the signature could not be journalled: {exc}")
            return
        self._sig_attempts, self._sig_feature = 0, feature_code_of(None, record.rrn)
        self._sig_until = self.clock.now() + float(self.terminal["signature"]["timeout_s"])
        self._begin_capture()

    def _pad_setting(self, name: str) -> Any:
        return self.profiles["signature_pad"]["capture"][name]

    def _begin_capture(self) -> None:
        sale = self._sale()
        symbol = str(self.terminal["currency_symbol"])
        lines = [f"金额 AMOUNT {format_amount(sale.amount_minor, symbol)}", f"特征码 {self._sig_feature}",
                 "请签名 PLEASE SIGN", "确认 OK / 清除 CLEAR"]
        self._sig_inked = False
        fault = self.signature_pad.begin_capture(lines)
        if fault is not None:
            self._signature_fallback(f"signature pad: {fault.detail}")
            return
        self._show("sign_on_pad", self._sig_feature)
        self._arm("signature", max(0.0, self._sig_until - self.clock.now()))

    def ink_added(self, _: InkAdded) -> None:
        self._sig_inked = True
        pen_away = float(self._pad_setting("pen_away_s"))
        self._arm("signature", max(0.0, min(pen_away, self._sig_until - self.clock.now())))

    def pad_key(self, event: PadKey) -> None:
        if event.key == "ok":
            self._capture_over()
        elif event.key == "clear":
            self.signature_pad.clear_ink()
            self._begin_capture()
        elif event.key == "cancel":
            self._signature_fallback("the cardholder cancelled the signature")

    def signature_deadline(self) -> None:
        """The pen has been away long enough (after ink), or the whole time is up."""
        if self._sig_inked and self.clock.now() < self._sig_until:
            self._capture_over()
        else:
            self._signature_fallback("no signature in time")

    def signature_pad_fault(self, fault: DeviceFault) -> None:
        if self.state is S.SIGNATURE_REQUIRED and self.signature_pad is not None:
            self._signature_fallback(f"signature pad: {fault.detail}")
        else:
            log.warning("signature pad fault in %s: %s", self.state.name, fault.detail)
            self._show("device_fault", f"signature pad: {fault.detail}")

    def _capture_over(self) -> None:
        from drivers.signature_pad.strokes import bbox, encode_strokes, ink_points

        pad, sale = self.signature_pad, self._sale()
        signature = pad.take_signature()
        box = bbox(signature)
        min_w, min_h = (int(v) for v in self._pad_setting("min_bbox"))
        too_small = (ink_points(signature) < int(self._pad_setting("min_ink_points"))
                     or box is None or box[2] - box[0] < min_w or box[3] - box[1] < min_h)
        if too_small:
            self._sig_attempts += 1
            if self._sig_attempts >= int(self._pad_setting("max_attempts")):
                self._signature_fallback("the signature was blank or too small, every time")
                return
            self._show("signature_too_small", f"{self._sig_attempts}/{self._pad_setting('max_attempts')}")
            pad.clear_ink()
            self._begin_capture()
            return
        try:
            self.journal.record_signature(
                txn_id=sale.txn_id, strokes=encode_strokes(signature), width=signature.width,
                height=signature.height, dpi=signature.dpi, feature_code=self._sig_feature, at=self.clock.wall())
        except JournalError as exc:  # not bound, not kept: as no signature at all
            self._signature_fallback(f"the signature could not be journalled: {exc}")
            return
        self._disarm()
        pad.end_capture()
        sale.signed = True
        self._show("signature_taken", self._sig_feature)
        self.print_receipts()

    def _signature_fallback(self, why: str) -> None:
        """No valid signature: a paper line (where there is a printer) or the sale reversed."""
        sale = self._sale()
        self._disarm()
        pad = self.signature_pad
        if pad is not None:
            pad.end_capture()
        paper = self._fallback_is_paper()
        log.info("no e-signature for %s (%s): %s", sale.txn_id, why, "paper" if paper else "reversed")
        if paper:
            self._show("sign_here", why)
            self._journal_fallback(sale.txn_id, paper=True, reason=why)
            self.print_receipts()
            return
        sale.reason = f"no signature, reversed / 未签名,已冲正: {why}"
        self._journal_fallback(sale.txn_id, paper=False, reason=sale.reason)
        self.decline()

    def _fallback_is_paper(self) -> bool:
        return str(self.terminal["signature"]["fallback"]) == "paper" and self.devices.get("printer") is not None

    def _journal_fallback(self, txn_id: str, *, paper: bool, reason: str) -> None:
        try:
            self.journal.signature_fallback(txn_id, paper=paper, reason=reason, at=self.clock.wall())
        except JournalError as exc:
            log.error("signature fallback of %s not journalled: %s", txn_id, exc)
            if not paper:  # the reversal is owed from memory (Journal.queue_reversal does that)
                self.journal.queue_reversal(txn_id, reason=reason, reason_code="06", at=self.clock.wall())

    def recover_signatures(self) -> list[str]:
        """At boot: a sale whose capture began before a restart and never ended gets the
        fallback now — the paper line (its merchant copy is owed and prints at boot) or the
        reversal. A sale no longer approved (reversed meanwhile) only loses its mark."""
        done = []
        for txn_id in self.journal.signatures_owed():
            record = self.journal.get(txn_id)
            if record is None or record.state != "APPROVED" or self.journal.signature(txn_id) is not None:
                try:
                    self.journal.clear_signature_owed(txn_id)
                except JournalError as exc:  # harmless: the next boot looks again
                    log.warning("signature mark of %s not cleared: %s", txn_id, exc)
                continue
            why = "the power went while the cardholder signed / 签名时断电"
            if self._fallback_is_paper():
                self._journal_fallback(txn_id, paper=True, reason=why)
            else:
                self._journal_fallback(txn_id, paper=False, reason=f"no signature, reversed / 未签名,已冲正: {why}")
            done.append(txn_id)
        return done

    def confirm_signature(self, *, actor: str) -> None:
        if self.state is not S.SIGNATURE_REQUIRED:
            raise InputError(f"no signature is awaited (now {self.state.name})")
        if self.signature_pad is not None:
            raise InputError(i18n.bilingual("sign_on_pad", "the cardholder signs on the pad"))
        log.info("signature for %s confirmed by %s", self._sale().txn_id, actor)
        self.print_receipts()
