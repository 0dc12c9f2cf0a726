"""How a sale ends: the decision shown, the signature, the receipts, the cancellation record."""

from __future__ import annotations

from typing import Any

from drivers.card_reader.events import Cvm, EntryMode
from terminal.access import Approval
from terminal.checkout import CheckoutState
from terminal.errors import InputError
from terminal.flow_base import FlowBase, log
from terminal.printing import PrintJob
from terminal.receipts import Copy
from terminal.steps_host import ESCALATED_RETRY_S

__all__ = ["PRINTER_RECHECK_S", "ReceiptSteps"]

S = CheckoutState
PRINTER_RECHECK_S = 2.0  # while paused, how often to ask the printer whether it is ready again
HOUSEKEEPING_S = 60.0  # while idle, how often to look for reversals and advices owed to the host


class ReceiptSteps(FlowBase):
    def on_enter_APPROVED(self, _: Any) -> None:
        sale = self._sale()
        self._disarm()
        sale.outcome = "APPROVED"
        self._show("approved", sale.response_code or "")
        if sale.card is not None and sale.card.cvm is Cvm.SIGNATURE:
            self.ask_signature()
        else:
            self.print_receipts()

    def on_enter_SIGNATURE_REQUIRED(self, _: Any) -> None:
        # The e-signature pad will capture here (电签); until then the cardholder signs the
        # merchant copy and the operator confirms with `confirm_signature()`.
        self._show("sign_here")

    def confirm_signature(self, *, actor: str) -> None:
        if self.state is not S.SIGNATURE_REQUIRED:
            raise InputError(f"no signature is awaited (now {self.state.name})")
        log.info("signature for %s confirmed by %s", self._sale().txn_id, actor)
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
        self._show("declined", sale.reason or sale.response_code or "")
        self.print_receipts()

    def on_enter_PRINTING(self, event: Any) -> None:
        sale = self._sale()
        record = self.journal.get(sale.txn_id) if sale.record is not None else None
        if record is None:  # nothing reached the host (the journal refused): no slip to print
            self.finish()
            return
        if event.transition.source != S.PRINTER_PAUSED.name:
            approved = sale.outcome == "APPROVED"  # not record.state: the card may have refused
            self.spool.load([Copy.MERCHANT, Copy.CARDHOLDER] if approved else [Copy.CARDHOLDER], approved=approved)
        self._show("printing")
        printed, stopped_by = self.spool.run(record)
        sale.printed += printed
        for copy in printed:
            if copy.warnings:
                self._show("printer_warning", ", ".join(copy.warnings))
        if stopped_by:
            self.pause_printing(reason=stopped_by)
        else:
            self.finish()

    def on_enter_PRINTER_PAUSED(self, event: Any) -> None:
        # The sale stays decided; the operator fixes the printer and printing resumes by itself
        # (an ASB "ready" push, or the periodic status check) or on `resume_printing_now()`.
        self._show("printer_paused", event.kwargs.get("reason", ""))
        self._arm("printer_check", PRINTER_RECHECK_S)

    def resume_printing_now(self) -> bool:
        """Operator: "paper loaded". True when printing resumed."""
        if self.state is not S.PRINTER_PAUSED:
            raise InputError(f"the printer is not paused (now {self.state.name})")
        if not self.spool.ready():
            self._arm("printer_check", PRINTER_RECHECK_S)
            return False
        self.resume_printing()
        return True

    def abandon_receipts(self, *, approval: Approval) -> None:
        """Supervisor: give up on the rest of this sale's receipts (they can be reprinted later)."""
        self._require(approval, "abandon_receipts")
        reason, actor = approval.reason, approval.approver
        if self.state is not S.PRINTER_PAUSED:
            raise InputError(f"the printer is not paused (now {self.state.name})")
        sale = self._sale()
        self.journal.record_incident("receipts_abandoned", txn_id=sale.txn_id, at=self.clock.wall(),
                                     detail=f"{reason} (by {actor})")
        self.spool.pending.clear()
        self.abandon_printing()

    def reprint_last(self, copy: Copy = Copy.CARDHOLDER, *, approval: Approval) -> list[str]:
        """Supervisor: print the last decided transaction's copy again, marked REPRINT / 重打印.
        Read from the journal, so it works after a restart too. Returns the printer's problems."""
        self._require(approval, "reprint")
        if self.state not in (S.IDLE, S.SETTLE_REQUIRED):
            raise InputError(f"reprint only when idle (now {self.state.name})")
        record = self.journal.last_decided()
        if record is None:
            raise InputError("there is no receipt to reprint")
        # A host approval the card then refused was reversed: its slip says declined.
        self.spool.approved = record.state in ("APPROVED", "OFFLINE")
        events = self.spool.print_one(record, PrintJob(copy=copy, reprint=True))
        return [type(e).__name__ for e in events]

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
        if source != S.AMOUNT_ENTRY.name:
            self.card_reader.cancel()
        self._show("cancelled", reason)
        self.reset()

    def on_enter_IDLE(self, _: Any) -> None:
        if self.sale is not None:
            self.sale.card = self.sale.pin_block = None  # card data never outlives its sale
            self.completed.append(self.sale)
            self.sale = None
        if self.journal.capacity_status().full:
            self.require_settlement()
        elif not self.housekeeping():
            self._arm("housekeeping", HOUSEKEEPING_S)

    def idle_tick(self) -> None:
        if not self.housekeeping():
            self._arm("housekeeping", HOUSEKEEPING_S)

    def housekeeping(self) -> bool:
        """When idle: deliver what is owed to the host. True when that started (the state moved)."""
        if self.state is not S.IDLE:
            return False
        if not self.signed_on and self.clock.now() >= self._sign_on_at:
            self.sign_on()  # keys first: the messages below are MACed with them on a real host
        elif self.journal.pending_reversals():
            self.recover()  # e.g. a card that refused its approval: reverse it now
        elif self.advices.due():
            self.forward()  # the host may be back: stored offline sales go
        elif self.journal.unresolved_reversals() and self.clock.now() >= self._escalated_retry_at:
            self._escalated_retry_at = self.clock.now() + ESCALATED_RETRY_S
            self.recover()  # escalated reversals: another round now and then, never dropped
        else:
            return False
        return True
