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

from typing import Any

from drivers.card_reader.events import EntryMode
from drivers.events import DeviceFault
from drivers.signature_pad.events import InkAdded, PadKey
from terminal import i18n
from terminal.checkout.base import FlowBase, log
from terminal.checkout.table import CheckoutState
from terminal.errors import InputError, JournalError
from terminal.host.feature_code import feature_code
from terminal.money import format_amount

__all__ = ["SignatureSteps", "feature_code_of"]

S = CheckoutState


def feature_code_of(settlement_date: str | None, rrn: str | None) -> str:
    """特征码 of a sale (terminal/host/feature_code.py): "0000" without a settlement date, zeros
    without an RRN (an offline approval)."""
    return feature_code(settlement_date or "0000", (rrn or "").rjust(12, "0")[-12:])


class SignatureSteps(FlowBase):
    _sig_attempts = 0
    _sig_until = 0.0  # Clock time the whole capture ends
    _sig_inked = False
    _sig_feature = ""

    @property
    def signature_pad(self) -> Any:
        return self.devices.get("signature_pad")

    def needs_signature(self) -> bool:
        """免签: a contactless sale up to the no-signature limit needs none."""
        sale = self._sale()
        limit = int(self.terminal["signature"]["no_signature_limit_minor"])
        card = sale.card
        return not (card is not None and card.entry_mode is EntryMode.TAP and sale.amount_minor <= limit)

    def on_enter_SIGNATURE_REQUIRED(self, _: Any) -> None:
        if self.signature_pad is None:
            self._show("sign_here")  # the cardholder signs the merchant copy; the operator confirms
            return
        record = self._record()
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
        fallback = str(self.terminal["signature"]["fallback"])
        log.info("no e-signature for %s (%s): %s", sale.txn_id, why, fallback)
        if fallback == "paper" and self.devices.get("printer") is not None:
            self._show("sign_here", why)
            self.journal.record_incident("signature_on_paper", txn_id=sale.txn_id, at=self.clock.wall(), detail=why)
            self.print_receipts()
            return
        sale.reason = f"no signature, reversed / 未签名,已冲正: {why}"
        self.journal.queue_reversal(sale.txn_id, reason=sale.reason, reason_code="06", at=self.clock.wall())
        self.decline()

    def confirm_signature(self, *, actor: str) -> None:
        if self.state is not S.SIGNATURE_REQUIRED:
            raise InputError(f"no signature is awaited (now {self.state.name})")
        if self.signature_pad is not None:
            raise InputError(i18n.bilingual("sign_on_pad", "the cardholder signs on the pad"))
        log.info("signature for %s confirmed by %s", self._sale().txn_id, actor)
        self.print_receipts()
