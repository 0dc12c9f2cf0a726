"""Settlement as machine states: SETTLE_REQUIRED when the journal is full (交易流水已满，请先结算),
SETTLING while the batch is reconciled with the host. Reprints and reports still work meanwhile.

SETTLING always ends: a host answer, the host timeout, or any error on the way (a message that
cannot be built, an archive that cannot be written) ends it with a SettlementResult that says
why, and an incident on the exception report. A settlement whose outcome the terminal cannot
know (no answer, or an error after the host closed the batch) stays owed: the same batch is
settled again before any sale (housekeeping, `resume_settlement`), so the terminal's batch
number follows the host's."""

from __future__ import annotations

from typing import Any

from drivers.acquirer.events import HostMessage
from terminal.checkout.base import log
from terminal.checkout.print import PrintSteps
from terminal.checkout.table import LIMITS, CheckoutState
from terminal.errors import InputError
from terminal.host.settlement import Archive, SettlementDesk, SettlementResult
from terminal.receipts.layout import Line, settlement_slip
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

    def resume_settlement(self) -> bool:
        """Settle again a batch whose last settlement has no definitive outcome (the supervisor's
        approval was for that settlement; this finishes it). True when it started."""
        if self.state in (S.IDLE, S.SETTLE_REQUIRED) and self.journal.settlement_owed() is not None:
            log.info("settlement of batch %06d has no outcome yet: settling again", self.journal.current_batch())
            self.settle()
            return True
        return False

    def on_enter_SETTLING(self, _: Any) -> None:
        self._show("settling")
        try:
            self._send_settlement(self.settlement.begin())
        except Exception as exc:  # any error ends SETTLING with a clear outcome (see the docstring)
            self._settlement_error(exc)

    def _send_settlement(self, request: HostMessage) -> None:
        if (fault := self.host.connect()) is not None:  # nothing leaves: the outcome is known
            self._settlement_over(self.settlement.failed(f"host unreachable: {fault.detail}", definitive=True))
            return
        if request.mti == "0500":
            self.journal.mark_settlement_owed(self.settlement.batch)  # durable before it leaves
        if (fault := self.host.send(request)) is not None:  # some bytes may have left
            self._settlement_over(self.settlement.failed(f"host unreachable: {fault.detail}"))
            return
        self._arm("settlement", float(self.terminal["host"]["timeout_s"]))

    def settlement_message(self, msg: HostMessage) -> None:
        try:
            step = self.settlement.answer(msg)
            if step is None:
                log.warning("host message %s (STAN %s) ignored during settlement", msg.mti, msg.stan)
            elif isinstance(step, SettlementResult):
                self._settlement_over(step)
            else:
                self._send_settlement(step)
        except Exception as exc:  # any error ends SETTLING with a clear outcome (see the docstring)
            self._settlement_error(exc)

    def settlement_deadline(self) -> None:
        self._settlement_over(self.settlement.failed("no answer from the host"))

    def _settlement_error(self, exc: Exception) -> None:
        log.exception("settlement of batch %06d failed", self.settlement.batch)
        detail = f"settlement error: {type(exc).__name__}: {exc}"
        try:
            self.journal.record_incident("settlement_error", txn_id=None, at=self.clock.wall(), detail=detail)
        except Exception:  # the journal itself may be what failed: the state must still end
            log.exception("could not record the settlement error")
        # After a 95 the batch is known to be open on both sides; otherwise the host may have
        # closed it (or its answer is unread): the settlement stays owed and is done again.
        known_open = self.settlement.host_said == "open"
        self._settlement_over(self.settlement.failed(
            detail if known_open else f"{detail}; settling again before the next sale", definitive=known_open))

    def _settlement_over(self, result: SettlementResult) -> None:
        self._disarm()
        self.last_settlement = result
        if not result.definitive:  # owed: the next sale settles again; idle housekeeping waits a while
            self._settle_retry_at = self.clock.now() + LIMITS.settlement_retry_s
        self._show("settled" if result.balanced else "settle_failed", result.detail)
        if self.state is not S.SETTLING:
            return
        if result.balanced and not self.spool.busy:
            # The slip prints while SETTLING: its end (side_job_over) ends the settlement, so a
            # sale never finds the printer busy with it.
            slip = settlement_slip(result, terminal=self.terminal, when=self.clock.wall().strftime("%Y-%m-%d %H:%M:%S"),
                                   audit=self.access.audit.head(), extra=self.slip_extras())
            end = self.spool.start_receipt(slip, what=_SLIP, name=f"settlement-{result.batch:06d}")
            if end is not None:
                self.print_job_over(end)
            return
        if result.balanced:
            self._slip_not_printed("the printer was busy")
        self.end_settlement()

    def slip_extras(self) -> list[Line]:
        """Lines another channel adds to the settlement slip (qr.py: the QR block)."""
        return []

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
