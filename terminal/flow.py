"""The checkout machine's model: what the terminal *does* in each state of terminal/checkout.py.

Every outside fact reaches the sale through `handle(event)`: a device event, a host message or
a clock deadline. Effects are the on_enter_<STATE> callbacks. Card data (PAN, track 2, ICC) stay
in RAM only, and only until the request has left.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Protocol

from drivers.acquirer.events import HostMessage
from drivers.base import DeviceFault
from drivers.card_reader.events import CardRead, CardRemoved, EntryMode, ReadFailed
from drivers.printer.events import PrinterReady
from drivers.sensitive import luhn_ok
from terminal import i18n
from terminal.checkout import CANCELLABLE, CheckoutState, Triggers, build_machine
from terminal.clock import Clock, Deadline, Timer
from terminal.errors import InputError, JournalError
from terminal.host.client import HostLinkError
from terminal.host.messages import parse_sale_response, sale_request
from terminal.journal import JOURNAL_FULL_MESSAGE, Journal, TxnRecord, new_txn_id
from terminal.printing import PrintedCopy, Printer, PrintJob, Spool
from terminal.receipts import Copy
from terminal.reversal import ReversalDesk
from terminal.runtime import SourceFailed
from terminal.security import PanTokenizer

__all__ = ["CardReader", "HostLink", "PrintedCopy", "Printer", "Sale", "SaleFlow"]

log = logging.getLogger(__name__)
S = CheckoutState
PRINTER_RECHECK_S = 2.0  # while paused, how often to ask the printer whether it is ready again


class CardReader(Protocol):
    def start_read(
        self, *, amount_minor: int, currency: str, modes: frozenset[EntryMode], timeout_s: int
    ) -> DeviceFault | None: ...
    def cancel(self) -> DeviceFault | None: ...
    def complete(self, *, approved: bool, response_code: str, issuer_data: bytes = b"") -> DeviceFault | None: ...


class HostLink(Protocol):
    @property
    def connected(self) -> bool: ...
    def connect(self) -> None: ...
    def send(self, msg: Any) -> None: ...


@dataclass(kw_only=True)
class Sale:
    txn_id: str
    amount_minor: int
    card: CardRead | None = None  # RAM only, dropped once the request has left
    record: TxnRecord | None = None
    outcome: str | None = None
    response_code: str | None = None
    cancel_reason: str | None = None
    printed: list[PrintedCopy] = field(default_factory=list)
    messages: list[str] = field(default_factory=list)


class SaleFlow(Triggers):

    def __init__(
        self,
        *,
        clock: Clock,
        journal: Journal,
        tokenizer: PanTokenizer,
        card_reader: CardReader,
        printer: Printer,
        host: HostLink,
        terminal: Mapping[str, Any],
        printer_profile: Mapping[str, Any],
        display: Callable[[str], None] = lambda line: None,
    ) -> None:
        self.clock, self.journal, self.tokenizer = clock, journal, tokenizer
        self.card_reader, self.printer, self.host = card_reader, printer, host
        self.terminal, self.printer_profile = terminal, printer_profile
        self._display = display
        self.reversals = ReversalDesk(journal=journal, host=host, clock=clock, terminal=terminal)
        self.spool = Spool(printer=printer, journal=journal, clock=clock, terminal=terminal,
                           printer_profile=printer_profile)
        self.sale: Sale | None = None
        self.completed: list[Sale] = []
        self._timer: Timer | None = None
        self._token = 0
        build_machine(self)

    # -- operator actions -------------------------------------------------------------------
    def begin_sale(self, amount_minor: int) -> Sale:
        """Start a sale for an already-validated amount (the CLI parses operator text)."""
        if self.state is not S.IDLE:
            raise InputError(f"a sale can only start when idle (now {self.state.name})")
        capacity = self.journal.capacity_status()
        if capacity.full:
            raise JournalError(JOURNAL_FULL_MESSAGE)
        if self.journal.pending_reversals():
            raise InputError(i18n.bilingual("reversal_pending"))
        if len(self.journal.unresolved_reversals()) >= int(self.terminal["limits"].get("unresolved_capacity", 10)):
            raise JournalError(i18n.bilingual("unresolved_full"))
        self.sale = Sale(txn_id=new_txn_id(), amount_minor=amount_minor)
        if capacity.warn:
            self._show("journal_warn", f"{capacity.used}/{capacity.limit}")
        self.start_sale()
        self.enter_amount()
        return self.sale

    def recover_if_needed(self) -> bool:
        """At start-up: deliver the reversals the journal still owes. True when recovery began."""
        if self.state is S.IDLE and self.journal.unresolved_reversals():
            self.recover()
            return True
        return False

    def cancel_sale(self, reason: str = "operator cancelled", actor: str = "operator") -> None:
        if self.state not in CANCELLABLE:
            raise InputError(f"nothing to cancel in state {self.state.name}")
        self.cancel(reason=reason, actor=actor)

    # -- inbound facts ----------------------------------------------------------------------
    def handle(self, event: object) -> None:
        state = self.state
        if isinstance(event, Deadline):
            if event.token != self._token:
                return  # a deadline of a wait that is already over
            if event.name == "reversal" and state is S.OUTCOME_UNKNOWN:
                self._reversal_deadline()
            elif event.name == "printer_check" and state is S.PRINTER_PAUSED:
                self.resume_printing_now()
            elif event.name == "card_wait" and state is S.AWAITING_CARD:
                self.cancel(reason="no card presented in time", actor="terminal")
            elif event.name == "host" and state is S.AUTHORIZING:
                self.lose_host()
        elif isinstance(event, CardRead) and state is S.AWAITING_CARD:
            self.detect_card(card=event)
        elif isinstance(event, ReadFailed) and state in CANCELLABLE:
            self.cancel(reason=f"card read failed: {event.reason}", actor="card_reader")
        elif isinstance(event, CardRemoved) and state is S.READING_CARD:
            self.cancel(reason="card removed during the read", actor="cardholder")
        elif isinstance(event, DeviceFault) and event.blocking and state in CANCELLABLE:
            self.cancel(reason=f"{event.device}: {event.detail}", actor="terminal")
        elif isinstance(event, PrinterReady) and state is S.PRINTER_PAUSED:
            self.resume_printing_now()
        elif isinstance(event, SourceFailed):
            if event.source is self.host and state is S.AUTHORIZING:
                self.lose_host()  # the answer cannot come on a connection that is gone
            elif event.source is self.card_reader and state in CANCELLABLE:
                self.cancel(reason=f"card reader link failed: {event.error}", actor="terminal")
        elif isinstance(event, HostMessage):
            self._host_message(event)
        else:
            log.debug("event %s ignored in %s", type(event).__name__, state.name)

    def _host_message(self, msg: HostMessage) -> None:
        if self.state is S.OUTCOME_UNKNOWN and self.reversals.answered(msg):
            self._next_reversal()
            return
        sale = self.sale
        if (
            self.state is not S.AUTHORIZING or sale is None or sale.record is None
            or msg.mti != "0210" or msg.stan != f"{sale.record.stan:06d}"
        ):
            # QMUX's "unhandled" queue: a late or stray answer never changes a decided sale; an
            # approval after its reversal was queued is recorded, and the reversal stands.
            log.warning("unmatched host message %s (STAN %s) in %s", msg.mti, msg.stan, self.state.name)
            if msg.mti == "0210":
                txn_id = self.journal.txn_id_for_stan(int(msg.stan)) if (msg.stan or "").isdigit() else None
                self.journal.record_incident("late_response", txn_id=txn_id, at=self.clock.wall(),
                                             detail=f"0210 STAN {msg.stan} code {msg.response_code} after timeout")
            return
        answer = parse_sale_response(msg)
        sale.record = self.journal.record_answer(
            sale.txn_id, approved=answer.approved, response_code=answer.response_code,
            auth_code=answer.auth_code, rrn=answer.rrn, at=self.clock.wall(),
        )
        sale.response_code = answer.response_code
        self.approve() if answer.approved else self.decline()

    # -- effects, one per state ---------------------------------------------------------------
    def on_enter_AMOUNT_ENTRY(self, _: Any) -> None:
        self._show("enter_amount")

    def on_enter_AWAITING_CARD(self, _: Any) -> None:
        sale = self._sale()
        self._show("present_card")
        limits = self.terminal["limits"]
        modes = frozenset(EntryMode)
        fault = self.card_reader.start_read(
            amount_minor=sale.amount_minor, currency=str(self.terminal["currency"]), modes=modes,
            timeout_s=int(limits["card_wait_timeout_s"]),
        )
        if fault is not None:
            self.cancel(reason=f"card reader: {fault.detail}", actor="terminal")
            return
        self._arm("card_wait", float(limits["card_wait_timeout_s"]))

    def on_enter_READING_CARD(self, event: Any) -> None:
        sale = self._sale()
        card: CardRead = event.kwargs["card"]
        sale.card = card
        self._show("reading_card")
        if not luhn_ok(card.pan.reveal()):
            self.cancel(reason="card number fails its check digit", actor="card_reader")
            return
        try:  # the row, its STAN and SENT are durable before a byte leaves for the host
            sale.record = self.journal.record_sent(
                txn_id=sale.txn_id, amount_minor=sale.amount_minor, currency=str(self.terminal["currency"]),
                entry_mode=card.entry_mode.value, pan_last4=card.pan_last4,
                pan_token=self.tokenizer.token(card.pan), at=self.clock.wall(),
            )
        except JournalError as exc:
            self.cancel(reason=str(exc), actor="terminal")
            return
        self.accept_card()

    def on_enter_AUTHORIZING(self, _: Any) -> None:
        sale, record = self._sale(), self._record()
        card = sale.card
        assert card is not None
        self._show("processing")
        self._arm("host", float(self.terminal["host"]["timeout_s"]))
        request = sale_request(
            stan=record.stan, amount_minor=record.amount_minor, pan=card.pan, entry_mode=card.entry_mode.value,
            expiry=card.expiry, track2=card.track2, icc_data=card.icc_data, pan_sequence=card.pan_sequence,
            terminal_id=str(self.terminal["terminal_id"]), merchant_id=str(self.terminal["merchant_id"]),
            currency=str(self.terminal["currency"]), batch=record.batch, when=datetime.fromisoformat(record.created_at),
        )
        sale.card = None  # SAD lives only until the request is built
        try:
            if not self.host.connected:
                self.host.connect()
            self.host.send(request)
        except HostLinkError as exc:
            # Some bytes may have left: treat it as no answer, so the reversal covers it.
            log.warning("host send failed for %s: %s", sale.txn_id, exc)
            self.lose_host()

    def on_enter_APPROVED(self, _: Any) -> None:
        self._conclude("APPROVED", "approved", approved=True)

    def on_enter_DECLINED(self, _: Any) -> None:
        self._conclude("DECLINED", "declined", approved=False)

    def _conclude(self, outcome: str, text: str, *, approved: bool) -> None:
        sale = self._sale()
        self._disarm()
        sale.outcome = outcome
        self._show(text, f"{sale.response_code}")
        if self._record().entry_mode == EntryMode.CHIP.value:
            fault = self.card_reader.complete(approved=approved, response_code=sale.response_code or "")
            if fault is not None:
                log.warning("card reader did not confirm completion: %s", fault.detail)
        self.print_receipts()

    def on_enter_OUTCOME_UNKNOWN(self, event: Any) -> None:
        """Resolve unknown outcomes: reverse every unresolved sale, oldest first, then go idle."""
        if event.transition.source == S.AUTHORIZING.name:
            sale = self._sale()
            sale.outcome = "OUTCOME_UNKNOWN"
            self.journal.record_timeout(sale.txn_id, reason="no answer from host", at=self.clock.wall())
            self._show("outcome_unknown")
        self.reversals.start_round()
        self._next_reversal()

    def _next_reversal(self) -> None:
        if self.reversals.pick():
            self._arm("reversal", self.reversals.send())
        else:
            self._disarm()
            self.resolve()

    def _reversal_deadline(self) -> None:
        if self.reversals.exhausted():
            txn_id = self.reversals.current
            self.reversals.escalate()
            self._show("reversal_failed", str(txn_id))
            self._next_reversal()
        else:
            self._arm("reversal", self.reversals.send())

    def on_enter_PRINTING(self, event: Any) -> None:
        sale, record = self._sale(), self._record()
        if event.transition.source in (S.APPROVED.name, S.DECLINED.name):
            self.spool.load([Copy.MERCHANT, Copy.CARDHOLDER] if record.state == "APPROVED" else [Copy.CARDHOLDER])
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
        # The sale stays approved; the operator fixes the printer and printing resumes by itself
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

    def abandon_receipts(self, *, reason: str, actor: str) -> None:
        """Operator: give up on the rest of this sale's receipts (they can be reprinted later)."""
        if self.state is not S.PRINTER_PAUSED:
            raise InputError(f"the printer is not paused (now {self.state.name})")
        log.warning("receipts abandoned for %s by %s: %s", self._sale().txn_id, actor, reason)
        self.spool.pending.clear()
        self.abandon_printing()

    def reprint_last(self, copy: Copy = Copy.CARDHOLDER) -> list[str]:
        """Operator: print the last sale's copy again, marked REPRINT / 重打印. Returns problems."""
        if self.state is not S.IDLE:
            raise InputError(f"reprint only when idle (now {self.state.name})")
        last = next((s for s in reversed(self.completed) if s.record is not None and s.record.state != "SENT"), None)
        record = self.journal.get(last.record.txn_id) if last and last.record else None
        if record is None or record.state not in ("APPROVED", "DECLINED"):
            raise InputError("there is no receipt to reprint")
        events = self.spool.print_one(record, PrintJob(copy=copy, reprint=True))
        return [type(e).__name__ for e in events]

    def on_enter_CANCELLED(self, event: Any) -> None:
        sale = self._sale()
        self._disarm()
        reason, actor = event.kwargs.get("reason", "cancelled"), event.kwargs.get("actor", "operator")
        sale.outcome, sale.cancel_reason, sale.card = "CANCELLED", reason, None
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
            self.completed.append(self.sale)
            self.sale = None

    # -- helpers ------------------------------------------------------------------------------
    def _sale(self) -> Sale:
        assert self.sale is not None, "no sale in progress"
        return self.sale

    def _record(self) -> TxnRecord:
        record = self._sale().record
        assert record is not None, "the sale has no journal row yet"
        return record

    def _arm(self, name: str, seconds: float) -> None:
        self._disarm()
        self._token += 1
        self._timer = self.clock.call_later(seconds, Deadline(name=name, token=self._token))

    def _disarm(self) -> None:
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None
        self._token += 1

    def _show(self, key: str, detail: str = "") -> None:
        line = i18n.bilingual(key, detail)
        if self.sale is not None:
            self.sale.messages.append(line)
        self._display(line)
