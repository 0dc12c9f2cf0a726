"""The checkout machine's model: what the terminal *does* in each state of terminal/checkout.py.

Every outside fact reaches the sale through `handle(event)`: a device event, a host message or
a clock deadline, routed by the tables below to the step that owns it (steps_card.py,
steps_host.py, steps_receipt.py). Card data (PAN, track 2, ICC, PIN block) stay in RAM only.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from drivers.acquirer.events import HostMessage
from drivers.card_reader.events import (
    CardRead,
    CardRemoved,
    ChipCompleted,
    PinCancelled,
    PinEntered,
    PinTimeout,
    ReadFailed,
)
from drivers.events import DeviceFault, FaultKind
from drivers.printer.events import PrinterReady
from terminal import i18n
from terminal.access import Approval
from terminal.checkout import CANCELLABLE, CheckoutState, build_machine
from terminal.clock import Deadline
from terminal.errors import InputError, JournalError
from terminal.flow_base import CardReader, HostLink, Sale, log
from terminal.journal import JOURNAL_FULL_MESSAGE, new_txn_id
from terminal.printing import PrintedCopy, Printer
from terminal.runtime import SourceFailed
from terminal.steps_card import CardSteps
from terminal.steps_host import HostSteps
from terminal.steps_receipt import PRINTER_RECHECK_S, ReceiptSteps
from terminal.steps_settle import SettleSteps

__all__ = ["PRINTER_RECHECK_S", "CardReader", "HostLink", "PrintedCopy", "Printer", "Sale", "SaleFlow"]

S = CheckoutState


class SaleFlow(CardSteps, HostSteps, ReceiptSteps, SettleSteps):
    def __init__(self, **deps: Any) -> None:
        super().__init__(**deps)
        self._init_settlement()
        build_machine(self)

    # -- operator actions ---------------------------------------------------------------------
    def begin_sale(self, amount_minor: int) -> Sale:
        """Start a sale for an already-validated amount (the CLI parses operator text)."""
        if self.state is S.SETTLE_REQUIRED:
            raise JournalError(JOURNAL_FULL_MESSAGE)
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

    def begin_credit(self, kind: str, original_txn_id: str, amount_minor: int, *, approval: Approval) -> Sale:
        """Supervisor: void (撤销, the whole sale, same batch) or refund (退货, up to what is left)."""
        self._require(approval, kind)
        if kind not in ("void", "refund"):
            raise InputError(f"{kind!r} is neither a void nor a refund")
        if self.state is not S.IDLE:
            raise InputError(f"a {kind} can only start when idle (now {self.state.name})")
        original = self.journal.get(original_txn_id)
        if original is None or original.kind != "sale" or original.state != "APPROVED":
            raise InputError(f"{original_txn_id} is not an approved sale")
        credits = self.journal.credits_against(original_txn_id)
        if any(c.kind == "void" for c in credits):
            raise InputError("that sale is already voided")
        if kind == "void":
            if original.batch != self.journal.current_batch():
                raise InputError("only a sale of the open batch can be voided; refund it instead")
            if credits:
                raise InputError("that sale is partly refunded; refund the rest instead")
            if amount_minor != original.amount_minor:
                raise InputError("a void is for the sale's full amount")
        elif not 0 < amount_minor <= original.amount_minor - sum(c.amount_minor for c in credits):
            raise InputError("a refund is more than zero and at most what is left of the sale")
        if self.journal.capacity_status().full:
            raise JournalError(JOURNAL_FULL_MESSAGE)
        log.info("%s of %s approved by %s: %s", kind, original_txn_id, approval.approver, approval.reason)
        self.sale = Sale(txn_id=new_txn_id(), amount_minor=amount_minor, kind=kind, original=original)
        self.start_credit()
        return self.sale

    def recover_if_needed(self) -> bool:
        """Deliver the reversals the journal still owes (at start-up, before a sale). True when
        recovery began."""
        if self.state is S.IDLE and self.journal.unresolved_reversals():
            self.recover()
            return True
        return False

    def cancel_sale(self, reason: str = "operator cancelled", actor: str = "operator") -> None:
        if self.state not in CANCELLABLE:
            raise InputError(f"nothing to cancel in state {self.state.name}")
        self.cancel(reason=reason, actor=actor)

    # -- inbound facts ------------------------------------------------------------------------
    def handle(self, event: object) -> None:
        state = self.state
        if isinstance(event, Deadline):
            if event.token == self._token and (route := DEADLINES.get((event.name, state))):
                route(self)
            return
        for kind, states, route_event in ROUTES:
            if isinstance(event, kind) and (states is None or state in states):
                route_event(self, event)
                return
        log.debug("event %s ignored in %s", type(event).__name__, state.name)

    def _source_failed(self, event: SourceFailed) -> None:
        if event.source is self.host and self.state is S.AUTHORIZING:
            self.lose_host()  # the answer cannot come on a connection that is gone
        elif event.source is self.card_reader:
            self.card_event(DeviceFault(device="card_reader", kind=FaultKind.DISCONNECTED, detail=event.error))


# Which step a deadline belongs to, by (deadline name, state). A deadline in any other state
# belongs to a wait that is over.
DEADLINES: dict[tuple[str, CheckoutState], Callable[[SaleFlow], Any]] = {
    ("card_wait", S.AWAITING_CARD): lambda f: f.cancel(reason="no card presented in time", actor="terminal"),
    ("pin", S.PIN_ENTRY): lambda f: f.cancel(reason="PIN entry timed out", actor="terminal"),
    ("host", S.AUTHORIZING): lambda f: f.lose_host(),
    ("completion", S.COMPLETING): lambda f: f.card_refused("the card did not complete in time"),
    ("reversal", S.OUTCOME_UNKNOWN): lambda f: f.reversal_deadline(),
    ("printer_check", S.PRINTER_PAUSED): lambda f: f.resume_printing_now(),
    ("settlement", S.SETTLING): lambda f: f.settlement_deadline(),
    ("advice", S.FORWARDING): lambda f: f.advice_deadline(),
    ("sign_on", S.SIGNING_ON): lambda f: f.sign_on_deadline(),
    ("housekeeping", S.IDLE): lambda f: f.idle_tick(),
}

# Which step a fact belongs to: (event type, states it matters in or None for any, handler).
ROUTES: list[tuple[type, frozenset[CheckoutState] | None, Callable[[SaleFlow, Any], Any]]] = [
    (CardRead, frozenset({S.AWAITING_CARD}), lambda f, e: f.detect_card(card=e)),
    (ReadFailed, frozenset({S.AWAITING_CARD, S.READING_CARD}), SaleFlow.card_read_failed),
    (PinEntered, frozenset({S.PIN_ENTRY}), SaleFlow.pin_entered),
    (PinCancelled, frozenset({S.PIN_ENTRY}), SaleFlow.pin_refused),
    (PinTimeout, frozenset({S.PIN_ENTRY}), SaleFlow.pin_refused),
    (ChipCompleted, frozenset({S.COMPLETING}), SaleFlow.chip_completed),
    (CardRemoved, None, SaleFlow.card_event),
    (DeviceFault, None, lambda f, e: f.card_event(e) if e.device == "card_reader" else None),
    (PrinterReady, frozenset({S.PRINTER_PAUSED}), lambda f, e: f.resume_printing_now()),
    (HostMessage, frozenset({S.SETTLING}), SaleFlow.settlement_message),
    (HostMessage, frozenset({S.FORWARDING}), SaleFlow.advice_message),
    (HostMessage, frozenset({S.SIGNING_ON}), SaleFlow.sign_on_message),
    (HostMessage, None, SaleFlow.host_message),
    (SourceFailed, None, SaleFlow._source_failed),
]
