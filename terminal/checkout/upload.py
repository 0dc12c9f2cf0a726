"""UPLOADING: e-signatures (电签) going up to the acquirer, 0820 (PROTOCOLS.md §4.1).

An upload is owed from the moment the signature is journalled with its sale. It goes when the
terminal is next idle after a transaction (housekeeping, UPLOADING; after a round that left some
owed, not again for `LIMITS.housekeeping_s`), and at settlement: `signature.upload_rounds` rounds
inside SETTLING, before the 0500. Answers 00 and 94 (the host has it already) both mean done, so
a repeat after a crash has one effect. After the settlement's last round an upload still owed is
FAILED: on the exception report and, where there is a printer, the signed sale is printed on
paper (marked REPRINT) so the merchant holds the cardholder's signature either way. An answer
30 (format error) is final at once, in any round: the resend would be the same message.
"""

from __future__ import annotations

from typing import Any

from drivers.acquirer.events import HostMessage
from terminal.checkout.base import log
from terminal.checkout.idle import IdleSteps
from terminal.checkout.settle import SettleSteps
from terminal.checkout.table import LIMITS, CheckoutState
from terminal.errors import JournalError
from terminal.host.messages import match
from terminal.receipts.layout import Copy
from terminal.receipts.spool import Finished, PrintJob

__all__ = ["UploadSteps"]

S = CheckoutState
_SIGNED_COPY = "signed copy"  # the print job of a signed sale whose upload failed


class UploadSteps(SettleSteps, IdleSteps):
    def __init__(self, **deps: Any) -> None:
        super().__init__(**deps)
        self._upload_at = 0.0  # earliest Clock time for the next idle round
        self._upload_queue: list[str] = []
        self._upload_request: HostMessage | None = None
        self._upload_current: str | None = None
        self._upload_round = 0
        self._uploading_for_settlement = False
        self._paper_queue: list[str] = []  # signed sales to print on paper, one job at a time
        self._settle_after_paper = False  # SETTLING waits for them before its 0500

    # -- when -----------------------------------------------------------------------------------
    def housekeeping(self) -> bool:
        if super().housekeeping():
            return True
        if self.state is S.IDLE and self.clock.now() >= self._upload_at and self.journal.pending_uploads():
            self.upload_signatures()
            return True
        return False

    def on_enter_UPLOADING(self, _: Any) -> None:
        self._uploading_for_settlement, self._upload_round = False, 1
        self._upload_queue = list(self.journal.pending_uploads())
        self._upload_next()

    def on_enter_SETTLING(self, event: Any) -> None:
        """The owed uploads' rounds first, then the settlement itself."""
        if not self.journal.pending_uploads():
            super().on_enter_SETTLING(event)
            return
        self._uploading_for_settlement, self._upload_round = True, 1
        self._upload_queue = list(self.journal.pending_uploads())
        self._upload_next()

    # -- one upload at a time ----------------------------------------------------------------------
    def _upload_next(self) -> None:
        while self._upload_queue:
            txn_id = self._upload_current = self._upload_queue.pop(0)
            try:
                request = self._upload_message(txn_id)
            except Exception as exc:  # one that cannot be built must not hold up the others
                log.error("signature upload of %s not built: %s", txn_id, exc)
                continue
            if request is None:
                continue
            if (fault := self.host.connect()) is not None or (fault := self.host.send(request)) is not None:
                log.info("signature uploads wait: %s", fault.detail)
                self._upload_queue.clear()
                break
            self._upload_request = request
            self._arm("upload", float(self.terminal["host"]["timeout_s"]))
            return
        self._upload_request = self._upload_current = None
        self._upload_round_over()

    def _upload_message(self, txn_id: str) -> HostMessage | None:
        from terminal.host.signature_upload import upload_request_for

        record, stored = self.journal.get(txn_id), self.journal.signature(txn_id)
        if record is None or stored is None:
            return None
        self.journal.upload_attempt(txn_id, at=self.clock.wall())  # counted before it leaves
        return upload_request_for(record, stored, terminal=self.terminal, when=self.clock.wall())

    def upload_message(self, msg: HostMessage) -> None:
        request, txn_id = self._upload_request, self._upload_current
        if request is None or txn_id is None or not match(request, msg):
            self._unmatched(msg)
            return
        from terminal.host.signature_upload import parse_upload_answer

        answer = parse_upload_answer(msg)
        self._disarm()
        if answer.ok:
            try:
                self.journal.upload_done(txn_id, response_code=answer.code, at=self.clock.wall())
            except JournalError as exc:  # owed still: the next round repeats it, and the host says 94
                log.error("upload of %s done but not journalled: %s", txn_id, exc)
        elif answer.final:
            # A format error: the 0820 is rebuilt the same from the journal every time, so the
            # host would refuse every resend. Final now: reported, and the signed copy on paper.
            log.warning("signature upload of %s refused as malformed (%s): not sent again", txn_id, answer.code)
            try:
                self.journal.upload_failed(txn_id, at=self.clock.wall(),
                                           detail=f"the host refused the signature upload ({answer.code}: format"
                                                  " error); not sent again")
            except JournalError as exc:
                log.error("final failure of the upload of %s not journalled: %s", txn_id, exc)
            self._print_signed_on_paper(txn_id)
        else:
            log.info("signature upload of %s refused (%s)", txn_id, answer.code)
        self._upload_next()

    def settlement_message(self, msg: HostMessage) -> None:
        if self._uploading_for_settlement:  # SETTLING's upload rounds come before the 0500
            self.upload_message(msg)
        else:
            super().settlement_message(msg)

    def upload_deadline(self) -> None:
        self._upload_next()  # no answer: owed still, the next round repeats it

    def _upload_round_over(self) -> None:
        if not self._uploading_for_settlement:
            self._upload_at = self.clock.now() + LIMITS.housekeeping_s
            self._disarm()
            self.end_uploading()
            return
        if self.journal.pending_uploads() and self._upload_round < int(self.terminal["signature"]["upload_rounds"]):
            self._upload_round += 1
            self._upload_queue = list(self.journal.pending_uploads())
            self._upload_next()
            return
        for txn_id in self.journal.pending_uploads():
            self.journal.upload_failed(txn_id, at=self.clock.wall(),
                                       detail=f"signature not uploaded after {self._upload_round} round(s)"
                                              " at settlement")
            self._print_signed_on_paper(txn_id)
        self._uploading_for_settlement = False
        if self._paper_queue or self.spool.busy:
            # The signed copies print before the 0500: once the host closes the batch, its rows
            # leave the live journal, and the slip needs the printer after them.
            self._settle_after_paper = True
            return
        super().on_enter_SETTLING(None)

    def _print_signed_on_paper(self, txn_id: str) -> None:
        """打印上送电子签名失败签购单: the signed merchant copy on paper, where there is a printer
        (queued: each one prints after the job before it)."""
        if self.devices.get("printer") is None:
            return
        self._paper_queue.append(txn_id)
        self._paper_next()

    def _paper_next(self) -> None:
        while self._paper_queue and not self.spool.busy:
            record = self.journal.get(self._paper_queue.pop(0))
            if record is None:
                continue
            self.spool.approved = True
            end = self.spool.start_copy(record, PrintJob(copy=Copy.MERCHANT, reprint=True), what=_SIGNED_COPY)
            if end is not None:
                self.print_job_over(end)  # its end comes back here through side_job_over
                return
        if not self._paper_queue and not self.spool.busy and self._settle_after_paper:
            self._settle_after_paper = False
            if self.state is S.SETTLING:
                super().on_enter_SETTLING(None)

    def side_job_over(self, done: Finished) -> None:
        super().side_job_over(done)
        if self._paper_queue or self._settle_after_paper:
            self._paper_next()
