"""The receipt spool: which copies a sale still owes, printed one whole copy at a time.

A copy is a job (commands ending in a cut). When the printer stops (paper out, cover open,
offline, a pulled cable) the job stays at the head of the spool. If any of its bytes had
reached the printer, part of it may be on paper already, so it is printed again *whole* and
marked REPRINT / 重打印; a job refused before a byte was sent goes out unmarked. Nothing is
ever printed twice without the marker, and every attempt is journalled.

Printing never blocks the machine: `start_*` hands a job to the printer and returns; the job's
end (PrintJobDone / PrintJobStopped) comes back through the runtime and `finished()` applies
the rules above to it. One job is at the printer at a time (`busy`).
"""

from __future__ import annotations

import logging
from collections.abc import Mapping, Sequence
from typing import Any, Protocol

from drivers.events import DeviceEvent, DeviceFault, FaultKind
from drivers.printer.events import (
    PaperNearEnd,
    PrinterCommand,
    PrinterReady,
    PrinterStatus,
    PrintJobDone,
    PrintJobStopped,
    PrintRasterImage,
)
from drivers.record import Record
from terminal.clock import Clock
from terminal.errors import JournalError
from terminal.journal import Journal, TxnRecord
from terminal.receipts.e_receipt import write_e_receipt
from terminal.receipts.layout import Copy, Receipt, build_receipt, to_commands
from terminal.receipts.qr_slips import qr_receipt

__all__ = ["Finished", "PrintJob", "PrintedCopy", "Printer", "Spool"]

log = logging.getLogger(__name__)


class Printer(Protocol):
    def start_job(self, commands: Sequence[PrinterCommand]) -> DeviceFault | None: ...
    def status(self) -> PrinterStatus | DeviceFault: ...
    def poll(self) -> list[DeviceEvent]: ...


class PrintJob(Record):
    copy: Copy
    reprint: bool = False


class PrintedCopy(Record):
    copy: Copy
    reprint: bool
    bytes_sent: int
    warnings: tuple[str, ...]


class _Active(Record):
    what: str  # "sale" (the head of `pending`), "copy" (a one-off reprint) or a slip's name
    record: TxnRecord | None = None
    job: PrintJob | None = None


class Finished(Record):
    """What a job at the printer came to."""

    what: str
    printed: PrintedCopy | None  # a receipt copy that printed
    stopped_by: str | None  # why the printer stopped it (None: it printed)
    problems: tuple[DeviceEvent, ...]  # everything the printer reported, warnings included


JobEnd = PrintJobDone | PrintJobStopped
_NOT_BLOCKING = (PaperNearEnd, PrinterReady)


def _names(events: Sequence[DeviceEvent]) -> str:
    return ", ".join(e.detail if isinstance(e, DeviceFault) else type(e).__name__ for e in events)


SIGNATURE_MAX_DOTS = 384  # the printed signature's width at most (48 mm at 8 dots/mm): legible, not a poster


class Spool:
    def __init__(
        self, *, printer: Printer | None, journal: Journal, clock: Clock, terminal: Mapping[str, Any],
        printer_profile: Mapping[str, Any],
    ) -> None:
        self.printer, self.journal, self.clock = printer, journal, clock
        # No printer (a paperless 电签 terminal): every job is an e-receipt under var/receipts/,
        # "printed" at once, so the flow around it is the same.
        self.paperless = printer is None
        self.folder = journal.path.parent / "receipts"
        self.terminal, self.printer_profile = terminal, printer_profile
        self.pending: list[PrintJob] = []
        self.approved = True  # what the slips say: approval, or a decline
        self.active: _Active | None = None

    @property
    def busy(self) -> bool:
        """A job is at the printer and its end has not come back yet."""
        return self.active is not None

    def load(self, copies: Sequence[Copy], *, approved: bool) -> None:
        self.pending = [PrintJob(copy=c) for c in copies]
        self.approved = approved

    def start_next(self, record: TxnRecord) -> JobEnd | None:
        """Send the head of `pending`. Returns the job's end when it could not even start."""
        return self.start_copy(record, self.pending[0], what="sale")

    def start_copy(self, record: TxnRecord, job: PrintJob, *, what: str = "copy") -> JobEnd | None:
        """Send one receipt copy (a reprint, a copy owed after a restart)."""
        receipt = self.receipt_of(record, job)
        active = _Active(what=what, record=record, job=job)
        if self.paperless:
            name = f"{record.txn_id}-{job.copy.value}" + (f"-reprint-{self.clock.wall():%Y%m%d%H%M%S}"
                                                          if job.reprint else "")
            return self._write(active, receipt, name, {"txn_id": record.txn_id, "kind": record.kind,
                                                        "state": record.state, "amount_minor": record.amount_minor,
                                                        "currency": record.currency, "trace": record.stan,
                                                        "batch": record.batch, "reprint": job.reprint})
        return self._start(active, to_commands(receipt, self.printer_profile))

    def receipt_of(self, record: TxnRecord, job: PrintJob, *, approved: bool | None = None) -> Receipt:
        """The slip of one copy as it prints (the payment API shows the same as text or a picture).
        `approved`: what the slip reports (default: what the sale in hand decided)."""
        when = self.clock.wall().strftime("%Y-%m-%d %H:%M:%S")
        order = self.journal.qr_order(record.txn_id) if record.entry_mode == "qr" else None
        if order is not None:  # 扫码存根联: a QR payment's slip says what the wallet said
            return qr_receipt(record, order, copy=job.copy, terminal=self.terminal, when=when, reprint=job.reprint)
        approved = self.approved if approved is None else approved
        reason = None if approved else self.journal.refusal_reason(record.txn_id)
        image, feature_code = self._signature(record, job.copy)
        waived = job.copy is Copy.MERCHANT and self.journal.signature_mark(record.txn_id) == "WAIVED"  # 免签
        return build_receipt(record, copy=job.copy, terminal=self.terminal, when=when, reprint=job.reprint,
                             approved=approved, reason=reason, signature=image, feature_code=feature_code,
                             no_signature=waived)

    def start_receipt(self, receipt: Receipt, *, what: str, name: str) -> JobEnd | None:
        """A slip that is not a sale's copy (the settlement slip, a payment code): printed, or on
        a paperless terminal written as the e-receipt `name`."""
        if self.paperless:
            return self._write(_Active(what=what), receipt, name, {"what": what})
        return self.start_commands(to_commands(receipt, self.printer_profile), what=what)

    def _write(self, active: _Active, receipt: Receipt, name: str, fields: dict[str, Any]) -> JobEnd:
        """Paperless: the job is an e-receipt; its end is at once (a disk that will not take it
        stops the job, as paper out would)."""
        assert self.active is None, "one job at a time"
        self.active = active
        try:
            write_e_receipt(self.folder, name, receipt, fields)
        except OSError as exc:
            log.error("e-receipt %s not written: %s", name, exc)
            return PrintJobStopped(bytes_sent=0, conditions=(DeviceFault(
                device="printer", kind=FaultKind.DEVICE, detail=f"e-receipt not written: {exc}"),))
        return PrintJobDone(bytes_sent=0)

    def _signature(self, record: TxnRecord, copy: Copy) -> tuple[PrintRasterImage | None, str]:
        """The merchant copy of an e-signed sale prints the signature (rendered at the printer's
        dot width from the journal's strokes) and its feature code; a binding that does not verify
        prints no picture (and is an incident)."""
        if copy is not Copy.MERCHANT:
            return None, ""
        stored = self.journal.signature(record.txn_id)
        if stored is None:
            return None, ""
        if not self.journal.verify_signature(record.txn_id):
            log.error("signature of %s does not verify against its sale: not printed", record.txn_id)
            self.journal.record_incident("signature_binding_broken", txn_id=record.txn_id, at=self.clock.wall(),
                                         detail="the stored signature does not match its transaction")
            return None, stored.feature_code
        from drivers.signature_pad.strokes import decode_strokes
        from terminal.receipts.signature_image import raster_command, render_signature

        signature = decode_strokes(stored.strokes)
        dots = min(int(self.printer_profile["media"]["dots"]), SIGNATURE_MAX_DOTS)
        image = render_signature(signature.strokes, signature.width, signature.height, dots=dots)
        return raster_command(image), stored.feature_code

    def start_commands(self, commands: Sequence[PrinterCommand], *, what: str) -> JobEnd | None:
        """Send a job that is not a receipt copy (the settlement slip): not journalled as a print."""
        return self._start(_Active(what=what), commands)

    def _start(self, active: _Active, commands: Sequence[PrinterCommand]) -> JobEnd | None:
        assert self.active is None, "one job at the printer at a time"
        self.active = active
        assert self.printer is not None, "a paperless spool writes e-receipts (_write)"
        fault = self.printer.start_job(commands)
        return None if fault is None else PrintJobStopped(bytes_sent=0, conditions=(fault,))

    def finished(self, end: JobEnd) -> Finished | None:
        """Apply the spool's rules to the end of the job at the printer (None: no job was)."""
        active, self.active = self.active, None
        if active is None:
            return None
        events = list(end.conditions)
        blocking = [e for e in events if not isinstance(e, _NOT_BLOCKING)]
        if isinstance(end, PrintJobStopped) and not blocking:
            blocking = events or [PrintJobStopped(bytes_sent=end.bytes_sent, conditions=())]
        stopped_by = _names(blocking) if blocking else None
        job, record = active.job, active.record
        if job is None or record is None:
            return Finished(what=active.what, printed=None, stopped_by=stopped_by, problems=tuple(events))
        try:
            self.journal.record_print(
                txn_id=record.txn_id, copy=job.copy.value, reprint=job.reprint,
                outcome=_names(events) or "ok", at=self.clock.wall(),
            )
        except JournalError as exc:  # the money is decided: the copy stays owed (reprinted, marked, at boot)
            log.error("print of the %s copy of %s not journalled: %s", job.copy.value, record.txn_id, exc)
        printed = None
        if active.what == "sale" and self.pending and self.pending[0] == job:
            if blocking:
                if end.bytes_sent:  # part of it may be on paper: reprint it whole, marked
                    self.pending[0] = PrintJob(copy=job.copy, reprint=True)
            else:
                self.pending.pop(0)
        if not blocking:
            printed = PrintedCopy(copy=job.copy, reprint=job.reprint, bytes_sent=end.bytes_sent,
                                  warnings=tuple(type(e).__name__ for e in events))
        return Finished(what=active.what, printed=printed, stopped_by=stopped_by, problems=tuple(events))

    def ready(self) -> bool:
        if self.printer is None:
            return True  # paperless: nothing to load or close
        status = self.printer.status()
        return isinstance(status, PrinterStatus) and status.printable
