"""Settlement as machine states: SETTLE_REQUIRED when the journal is full (交易流水已满，请先结算),
SETTLING while the batch is reconciled with the host. Reprints and reports still work meanwhile."""

from __future__ import annotations

from typing import Any

from drivers.acquirer.events import HostMessage
from terminal.checkout.base import log
from terminal.checkout.print import PrintSteps
from terminal.checkout.table import CheckoutState
from terminal.errors import InputError
from terminal.host.settlement import Archive, SettlementDesk, SettlementResult
from terminal.receipts.layout import settlement_slip, to_commands
from terminal.receipts.spool import Finished
from terminal.security.access import Approval

__all__ = ["SettleSteps"]

S = CheckoutState
_SLIP = "settlement slip"


class SettleSteps(PrintSteps):
    settlement: SettlementDesk
    last_settlement: SettlementResult | None = None

    def _init_settlement(self) -> None:
        folder = self.terminal["archive_dir"]
        archive = Archive(folder) if folder else Archive(self.journal.path.parent / "batches")
        self.settlement = SettlementDesk(journal=self.journal, clock=self.clock, terminal=self.terminal,
                                         archive=archive, audit_head=self.access.audit.head)

    def start_settlement(self, *, approval: Approval) -> None:
        """Supervisor: settle the open batch. Owed reversals and advices must have gone out first."""
        approval = self._require(approval, "settle")  # also holds the audit trail to its anchor
        if self.state not in (S.IDLE, S.SETTLE_REQUIRED):
            raise InputError(f"settlement starts when idle (now {self.state.name})")
        if self.journal.pending_reversals():
            raise InputError("a reversal is pending; it goes out before settlement")
        if self.journal.pending_advices():
            raise InputError("stored offline sales go to the host before settlement")
        log.info("settlement of batch %06d started by %s", self.journal.current_batch(), approval.approver)
        self.settle()

    def on_enter_SETTLE_REQUIRED(self, _: Any) -> None:
        self._show("journal_full")

    def on_enter_SETTLING(self, _: Any) -> None:
        self._show("settling")
        self._send_settlement(self.settlement.begin())

    def _send_settlement(self, request: HostMessage) -> None:
        if (fault := self.host.send(request)) is not None:
            self._settlement_over(self.settlement.failed(f"host unreachable: {fault.detail}"))
            return
        self._arm("settlement", float(self.terminal["host"]["timeout_s"]))

    def settlement_message(self, msg: HostMessage) -> None:
        step = self.settlement.answer(msg)
        if step is None:
            log.warning("host message %s (STAN %s) ignored during settlement", msg.mti, msg.stan)
        elif isinstance(step, SettlementResult):
            self._settlement_over(step)
        else:
            self._send_settlement(step)

    def settlement_deadline(self) -> None:
        self._settlement_over(self.settlement.failed("no answer from the host"))

    def _settlement_over(self, result: SettlementResult) -> None:
        self._disarm()
        self.last_settlement = result
        self._show("settled" if result.balanced else "settle_failed", result.detail)
        if result.balanced and not self.spool.busy:
            # The slip prints while SETTLING: its end (side_job_over) ends the settlement, so a
            # sale never finds the printer busy with it.
            slip = settlement_slip(result, terminal=self.terminal, when=self.clock.wall().strftime("%Y-%m-%d %H:%M:%S"),
                                   audit=self.access.audit.head())
            end = self.spool.start_commands(to_commands(slip, self.printer_profile), what=_SLIP)
            if end is not None:
                self.print_job_over(end)
            return
        if result.balanced:
            self._slip_not_printed("the printer was busy")
        self.end_settlement()

    def side_job_over(self, done: Finished) -> None:
        super().side_job_over(done)
        if done.what != _SLIP:
            return
        if done.stopped_by or done.problems:
            self._slip_not_printed(", ".join(type(p).__name__ for p in done.problems) or str(done.stopped_by))
        if self.state is S.SETTLING:
            self.end_settlement()

    def _slip_not_printed(self, detail: str) -> None:
        self.journal.record_incident("settlement_slip_not_printed", txn_id=None, at=self.clock.wall(), detail=detail)
