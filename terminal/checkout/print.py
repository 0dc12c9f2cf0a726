"""PRINTING and PRINTER_PAUSED: the receipts of a decided sale, one whole copy at a time, and
what the operator may do while the printer is stopped (fix it, give up on the copies, reprint)."""

from __future__ import annotations

from functools import cached_property
from typing import Any

from drivers.events import DeviceFault
from drivers.printer.events import PrinterReady
from terminal.checkout.base import FlowBase, log
from terminal.checkout.table import LIMITS, CheckoutState
from terminal.errors import InputError
from terminal.receipts.layout import Copy
from terminal.receipts.spool import Printer, PrintJob, Spool
from terminal.security.access import Approval

__all__ = ["PrintSteps"]

S = CheckoutState


class PrintSteps(FlowBase):
    @property
    def printer(self) -> Printer:
        printer: Printer = self.devices["printer"]
        return printer

    @property
    def printer_profile(self) -> Any:
        return self.profiles["printer"]

    @cached_property
    def spool(self) -> Spool:
        return Spool(printer=self.printer, journal=self.journal, clock=self.clock, terminal=self.terminal,
                     printer_profile=self.printer_profile)

    def printer_ready(self, _: PrinterReady) -> None:
        self.resume_printing_now()

    def printer_fault(self, fault: DeviceFault) -> None:
        # A fault between jobs (an ASB push, a pulled cable) pauses nothing by itself: the next
        # job checks the printer first. The operator sees it at once.
        log.warning("printer fault in %s: %s", self.state.name, fault.detail)
        self._show("printer_warning", fault.detail)

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
        self._arm("printer_check", LIMITS.printer_recheck_s)

    def resume_printing_now(self) -> bool:
        """Operator: "paper loaded". True when printing resumed."""
        if self.state is not S.PRINTER_PAUSED:
            raise InputError(f"the printer is not paused (now {self.state.name})")
        if not self.spool.ready():
            self._arm("printer_check", LIMITS.printer_recheck_s)
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
