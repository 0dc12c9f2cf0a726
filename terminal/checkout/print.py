"""PRINTING and PRINTER_PAUSED: the receipts of a decided sale, one whole copy at a time, and
what the operator may do while the printer is stopped (fix it, give up on the copies, reprint).

PRINTING hands one copy to the printer and returns: the machine keeps handling host messages,
card events and deadlines while it prints. The copy's end (PrintJobDone / PrintJobStopped,
ROUTES) starts the next copy, pauses, or finishes. The same job end closes a reprint, a copy
owed after a restart and the settlement slip, whichever state it arrives in."""

from __future__ import annotations

from functools import cached_property
from typing import Any

from drivers.events import DeviceFault
from drivers.printer.events import PrinterReady, PrintJobDone, PrintJobStopped
from terminal.checkout.base import FlowBase, log
from terminal.checkout.table import LIMITS, CheckoutState
from terminal.errors import InputError
from terminal.journal import TxnRecord
from terminal.receipts.layout import Copy
from terminal.receipts.spool import Finished, Printer, PrintJob, Spool
from terminal.security.access import Approval

__all__ = ["PrintSteps"]

S = CheckoutState
PAPERLESS_MEDIA = {"media": {"dots": 576}}  # what an e-receipt is drawn for: an 80 mm roll


class PrintSteps(FlowBase):
    _print_record: TxnRecord
    _last_side: Finished | None = None  # the end of the last job that was not a sale's copy

    @property
    def printer(self) -> Printer | None:
        """None on a paperless terminal (no printer slot): its slips are e-receipts."""
        printer: Printer | None = self.devices.get("printer")
        return printer

    @property
    def printer_profile(self) -> Any:
        return self.profiles.get("printer") or PAPERLESS_MEDIA

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
        if record.entry_mode == "qr" and sale.outcome == "DECLINED":
            self.finish()  # a QR payment that definitely failed took nothing: shown, not printed
            return
        if event.transition.source != S.PRINTER_PAUSED.name:
            approved = sale.outcome == "APPROVED"  # not record.state: the card may have refused
            self.spool.load([Copy.MERCHANT, Copy.CARDHOLDER] if approved else [Copy.CARDHOLDER], approved=approved)
        self._print_record = record
        self._show("printing")
        self._print_next()

    def _print_next(self) -> None:
        """PRINTING: send the next copy, or finish when none is left. While another job is still
        at the printer (a reprint, a slip) its end comes first and calls this again."""
        if self.spool.busy:
            return
        if not self.spool.pending:
            self.finish()
            return
        if (end := self.spool.start_next(self._print_record)) is not None:
            self.print_job_over(end)

    def print_job_over(self, end: PrintJobDone | PrintJobStopped) -> None:
        """The job at the printer ended (any state): journal it, then go on with what it was for."""
        done = self.spool.finished(end)
        if done is None:
            log.warning("print job end with no job at the printer: %s", end)
            return
        if done.what == "sale" and self.state is S.PRINTING:
            self._sale_copy_over(done)
            return
        if done.stopped_by or done.problems:
            log.warning("%s: printer said %s", done.what, done.stopped_by or done.problems)
            self._show("printer_warning", done.stopped_by or ", ".join(type(p).__name__ for p in done.problems))
        self._last_side = done
        self.side_job_over(done)
        if self.state is S.PRINTING:
            self._print_next()  # the sale's copies were waiting for the printer

    def side_job_over(self, done: Finished) -> None:
        """A job that is not one of the sale's copies ended (settle.py adds the slip's end)."""

    def _sale_copy_over(self, done: Finished) -> None:
        sale = self._sale()
        if done.printed is not None:
            sale.printed.append(done.printed)
            if done.printed.warnings:
                self._show("printer_warning", ", ".join(done.printed.warnings))
        if done.stopped_by:
            self.pause_printing(reason=done.stopped_by)
        else:
            self._print_next()

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
        approval = self._require(approval, "abandon_receipts", self.sale.txn_id if self.sale else None)
        reason, actor = approval.reason, approval.approver
        if self.state is not S.PRINTER_PAUSED:
            raise InputError(f"the printer is not paused (now {self.state.name})")
        sale = self._sale()
        self.journal.record_incident("receipts_abandoned", txn_id=sale.txn_id, at=self.clock.wall(),
                                     detail=f"{reason} (by {actor})")
        self.spool.pending.clear()
        self.abandon_printing()

    def defer_receipts(self, reason: str) -> None:
        """The printer is gone (disconnected, not out of paper) and the next customer is waiting:
        this sale's copies stay owed (the journal knows which never printed whole) and print once
        the printer is back, marked REPRINT / 重打印. Nothing is given up, so no approval."""
        if self.state is not S.PRINTER_PAUSED:
            raise InputError(f"the printer is not paused (now {self.state.name})")
        sale = self._sale()
        self.journal.record_incident("receipts_owed", txn_id=sale.txn_id, at=self.clock.wall(), detail=reason)
        self.spool.pending.clear()
        self.abandon_printing()

    def reprint(self, copy: Copy = Copy.CARDHOLDER, *, approval: Approval, txn_id: str | None = None) -> list[str]:
        """Supervisor: print the last decided transaction's copy (or `txn_id`'s) again, marked
        REPRINT / 重打印. Read from the journal, so it works after a restart too. Returns the
        problems known at once (the port failed); otherwise the copy prints while the machine goes
        on, and what the printer says at the end is journalled and shown."""
        record = self.journal.last_decided() if txn_id is None else self.journal.get(txn_id)
        self._require(approval, "reprint", record.txn_id if record is not None else None)
        if self.state not in (S.IDLE, S.SETTLE_REQUIRED):
            raise InputError(f"reprint only when idle (now {self.state.name})")
        if record is None:
            raise InputError("there is no receipt to reprint")
        if self.spool.busy:
            raise InputError("the printer is still printing; reprint when it is done")
        # A host approval the card then refused was reversed: its slip says declined.
        self.spool.approved = record.state in ("APPROVED", "OFFLINE")
        self._last_side = None
        end = self.spool.start_copy(record, PrintJob(copy=copy, reprint=True))
        if end is not None:  # could not even start
            self.print_job_over(end)
        else:
            # What the printer said at once (all of it, in process) is handled now; poll() never
            # blocks, and on a real line the rest arrives through the runtime.
            for event in self.printer.poll() if self.printer is not None else ():
                self.handle(event)
        done = self._last_side
        return [type(e).__name__ for e in done.problems] if done is not None else []
