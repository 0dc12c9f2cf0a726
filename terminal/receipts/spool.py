"""The receipt spool: which copies a sale still owes, printed one whole copy at a time.

A copy is a job (commands ending in a cut). When the printer stops (paper out, cover open,
offline, a pulled cable) the job stays at the head of the spool. If any of its bytes had
reached the printer, part of it may be on paper already, so it is printed again *whole* and
marked REPRINT / 重打印; a job refused before a byte was sent goes out unmarked. Nothing is
ever printed twice without the marker, and every attempt is journalled.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Protocol

from drivers.events import DeviceEvent, DeviceFault
from drivers.printer.events import PaperNearEnd, PrinterCommand, PrinterReady, PrinterStatus
from terminal.clock import Clock
from terminal.journal import Journal, TxnRecord
from terminal.receipts.layout import Copy, build_receipt, to_commands

__all__ = ["PrintJob", "PrintedCopy", "Printer", "Spool"]


class Printer(Protocol):
    last_job_bytes: int

    def print_job(self, commands: Sequence[PrinterCommand]) -> list[DeviceEvent]: ...
    def status(self) -> PrinterStatus | DeviceFault: ...


@dataclass(frozen=True, kw_only=True)
class PrintJob:
    copy: Copy
    reprint: bool = False


@dataclass(frozen=True, kw_only=True)
class PrintedCopy:
    copy: Copy
    reprint: bool
    bytes_sent: int
    warnings: tuple[str, ...]


_NOT_BLOCKING = (PaperNearEnd, PrinterReady)


def _names(events: Sequence[DeviceEvent]) -> str:
    return ", ".join(e.detail if isinstance(e, DeviceFault) else type(e).__name__ for e in events)


class Spool:
    def __init__(
        self, *, printer: Printer, journal: Journal, clock: Clock, terminal: Mapping[str, Any],
        printer_profile: Mapping[str, Any],
    ) -> None:
        self.printer, self.journal, self.clock = printer, journal, clock
        self.terminal, self.printer_profile = terminal, printer_profile
        self.pending: list[PrintJob] = []
        self.approved = True  # what the slips say: approval, or a decline

    def load(self, copies: Sequence[Copy], *, approved: bool) -> None:
        self.pending = [PrintJob(copy=c) for c in copies]
        self.approved = approved

    def run(self, record: TxnRecord) -> tuple[list[PrintedCopy], str | None]:
        """Print pending jobs in order. Returns what printed and, if the printer stopped, why."""
        printed: list[PrintedCopy] = []
        while self.pending:
            job = self.pending[0]
            events = self.print_one(record, job)
            blocking = [e for e in events if not isinstance(e, _NOT_BLOCKING)]
            if blocking:
                if self.printer.last_job_bytes:  # part of it may be on paper: reprint it whole, marked
                    self.pending[0] = PrintJob(copy=job.copy, reprint=True)
                return printed, _names(blocking)
            self.pending.pop(0)
            warnings = tuple(type(e).__name__ for e in events)
            printed.append(PrintedCopy(copy=job.copy, reprint=job.reprint, bytes_sent=self.printer.last_job_bytes,
                                       warnings=warnings))
        return printed, None

    def print_one(self, record: TxnRecord, job: PrintJob) -> list[DeviceEvent]:
        when = self.clock.wall().strftime("%Y-%m-%d %H:%M:%S")
        receipt = build_receipt(record, copy=job.copy, terminal=self.terminal, when=when, reprint=job.reprint,
                                approved=self.approved)
        events = self.printer.print_job(to_commands(receipt, self.printer_profile))
        self.journal.record_print(
            txn_id=record.txn_id, copy=job.copy.value, reprint=job.reprint,
            outcome=_names(events) or "ok", at=self.clock.wall(),
        )
        return events

    def ready(self) -> bool:
        status = self.printer.status()
        return isinstance(status, PrinterStatus) and status.printable
