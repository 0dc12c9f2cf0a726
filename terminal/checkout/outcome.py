"""How a sale is decided: APPROVED, DECLINED, CANCELLED (recorded with who, where and why) and
OUTCOME_UNKNOWN, where every owed reversal is delivered, oldest first, before anything else."""

from __future__ import annotations

from typing import Any

from drivers.acquirer.events import HostMessage
from drivers.card_reader.events import Cvm, EntryMode
from terminal.checkout.authorize import AuthorizeSteps
from terminal.checkout.base import log
from terminal.checkout.signature import SignatureSteps
from terminal.checkout.table import LIMITS, CheckoutState

__all__ = ["OutcomeSteps"]

S = CheckoutState


class OutcomeSteps(AuthorizeSteps, SignatureSteps):
    def on_enter_APPROVED(self, _: Any) -> None:
        sale = self._sale()
        self._disarm()
        sale.outcome = "APPROVED"
        self._show("approved", sale.response_code or "")
        if sale.card is not None and sale.card.cvm is Cvm.SIGNATURE:
            if self.needs_signature():
                self.ask_signature()
                return
            self.waive_signature()
        self.print_receipts()

    def on_enter_DECLINED(self, event: Any) -> None:
        sale = self._sale()
        self._disarm()
        sale.outcome = "DECLINED"
        came_from = event.transition.source
        record = sale.record
        chip = sale.kind == "sale" and record is not None and record.entry_mode == EntryMode.CHIP.value
        if came_from == S.AUTHORIZING.name and chip:
            # Tell the card the issuer said no, so it ends its session with an AAC.
            fault = self.card_reader.complete(approved=False, response_code=sale.response_code or "05")
            if fault is not None:
                log.warning("card reader did not confirm the decline: %s", fault.detail)
        if sale.qr_refunded:  # a reverse that returned the customer's money: a refund, not a failure
            sale.outcome = "REFUNDED"
        self._show("declined", sale.reason or sale.response_code or "")
        self.print_receipts()

    def on_enter_CANCELLED(self, event: Any) -> None:
        sale = self._sale()
        self._disarm()
        reason, actor = event.kwargs.get("reason", "cancelled"), event.kwargs.get("actor", "operator")
        sale.outcome, sale.cancel_reason, sale.reason = "CANCELLED", reason, reason
        source = event.transition.source
        self.journal.record_cancellation(
            txn_id=sale.txn_id, amount_minor=sale.amount_minor, at_state=str(source).rsplit(".", 1)[-1],
            reason=reason, actor=actor, terminal_id=str(self.terminal["terminal_id"]), at=self.clock.wall(),
        )
        if source == S.SCANNING.name:
            stop = getattr(self.devices.get("scanner"), "stop", None)
            if stop is not None:
                stop()
        elif source != S.AMOUNT_ENTRY.name:
            self.card_reader.cancel()
        self._show("cancelled", reason)
        self.reset()

    # -- unknown outcomes -------------------------------------------------------------------------
    def on_enter_OUTCOME_UNKNOWN(self, event: Any) -> None:
        """Resolve unknown outcomes: reverse every unresolved sale, oldest first, then go idle."""
        if event.transition.source == S.AUTHORIZING.name:
            sale = self._sale()
            sale.outcome = "OUTCOME_UNKNOWN"
            self.journal.record_timeout(sale.txn_id, reason="no answer from host", at=self.clock.wall())
            self._show("outcome_unknown")
        self.reversals.start_round()
        self._next_reversal()

    def reversal_message(self, msg: HostMessage) -> None:
        if self.reversals.answered(msg):
            self._next_reversal()
        else:
            self._unmatched(msg)

    def _next_reversal(self) -> None:
        if self.reversals.pick():
            self._arm("reversal", self.reversals.send())
        else:
            self._disarm()
            self.resolve()

    def reversal_deadline(self) -> None:
        if self.reversals.exhausted():
            txn_id = self.reversals.current
            self.reversals.escalate()
            self._escalated_retry_at = self.clock.now() + LIMITS.escalated_retry_s
            self._show("reversal_failed", str(txn_id))
            self._next_reversal()
        else:
            self._arm("reversal", self.reversals.send())
