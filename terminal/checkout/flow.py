"""The checkout machine's model: the phase modules composed, and every outside fact routed.

Every outside fact reaches the sale through `handle(event)`: a device event, a host message or
a clock deadline, routed by the tables of table.py (ROUTES, FAULTS, DEADLINES) to the step that
owns it. Card data (PAN, track 2, ICC, PIN block) stay in RAM only.
"""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

from drivers.events import DeviceFault, FaultKind
from terminal import i18n
from terminal.checkout.base import Sale, log
from terminal.checkout.outcome import OutcomeSteps
from terminal.checkout.qr import QrSteps
from terminal.checkout.signature import SignatureSteps
from terminal.checkout.table import CANCELLABLE, DEADLINES, FAULTS, LIMITS, ROUTES, CheckoutState, build_machine
from terminal.checkout.upload import UploadSteps
from terminal.clock import Deadline
from terminal.errors import AmountRefused, InputError, JournalError
from terminal.journal import JOURNAL_FULL_MESSAGE, new_txn_id
from terminal.journal.qr import QR_ENTRY_MODE
from terminal.runtime import SourceFailed
from terminal.security.access import Approval

__all__ = ["TENDERS", "AmountRefused", "Sale", "SaleFlow"]

S = CheckoutState
TENDERS = ("card", "qr", "qr-merchant")
QR_REFUND_DAYS = 30


class SaleFlow(OutcomeSteps, SignatureSteps, UploadSteps, QrSteps):
    def __init__(self, **deps: Any) -> None:
        super().__init__(**deps)
        self._init_settlement()
        build_machine(self)

    # -- operator actions ---------------------------------------------------------------------
    # Each refuses at once, with a typed error and a bilingual message, what cannot start: a
    # full journal (JournalError, every entry point), an amount outside the rules (AmountRefused),
    # a settlement or reversal still owed (InputError). Once started, the sale ends in one
    # outcome on the returned Sale (APPROVED, DECLINED, CANCELLED, OUTCOME_UNKNOWN) with a reason.
    def refuse_if_full(self) -> None:
        """交易流水已满，请先结算: the journal holds no more transactions until settlement."""
        if self.state is S.SETTLE_REQUIRED or self.journal.capacity_status().full:
            raise JournalError(JOURNAL_FULL_MESSAGE)

    def check_amount(self, amount_minor: int) -> None:
        """The amount rules of every sale, void and refund: a whole number of minor units, more
        than zero, at most the terminal's per-sale maximum (profile `limits.max_amount_minor`)."""
        limit = int(self.terminal["limits"]["max_amount_minor"])
        if (isinstance(amount_minor, bool) or not isinstance(amount_minor, int)
                or not LIMITS.min_amount_minor <= amount_minor <= limit):
            raise AmountRefused(i18n.bilingual("amount_refused", f"{amount_minor!r} (1..{limit})"))

    def begin_sale(self, amount_minor: int, *, tender: str = "card") -> Sale:
        """Start a sale (the CLI parses operator text; the rules on the amount are checked here).
        `tender`: "card" (the reader waits; a payment code scanned meanwhile pays by QR), "qr"
        (the customer's code, 付款码) or "qr-merchant" (the terminal shows its code, 主扫)."""
        if tender not in TENDERS:
            raise InputError(f"unknown tender {tender!r} (one of {', '.join(TENDERS)})")
        if tender != "card" and not self.has_wallet:
            raise InputError(i18n.bilingual("qr_unavailable"))
        self.refuse_if_full()
        self.check_amount(amount_minor)
        if self.journal.settlement_owed() is not None:
            raise InputError(i18n.bilingual("settlement_owed"))
        if self.state is not S.IDLE:
            raise InputError(f"a sale can only start when idle (now {self.state.name})")
        capacity = self.journal.capacity_status()
        if (no_room := self.journal.disk_refusal()) is not None:  # keep room for what the host's answer needs
            raise JournalError(no_room)
        if self.journal.pending_reversals():
            raise InputError(i18n.bilingual("reversal_pending"))
        if len(self.journal.unresolved_reversals()) >= int(self.terminal["limits"]["unresolved_capacity"]):
            raise JournalError(i18n.bilingual("unresolved_full"))
        self.sale = sale = Sale(txn_id=new_txn_id(), amount_minor=amount_minor, tender=tender)
        if capacity.warn:
            self._show("journal_warn", f"{capacity.used}/{capacity.limit}")
        self.start_sale()
        if tender == "qr":
            self.await_code()
        elif tender == "qr-merchant":
            self.show_code()
        else:
            self.enter_amount()  # may run to the end at once (a reader that fails at StartRead)
        return sale

    def begin_credit(self, kind: str, original_txn_id: str, amount_minor: int, *, approval: Approval) -> Sale:
        """Supervisor: void (撤销, the whole sale, same batch) or refund (退货, up to what is left)."""
        approval = self._require(approval, kind, original_txn_id)
        if kind not in ("void", "refund"):
            raise InputError(f"{kind!r} is neither a void nor a refund")
        self.refuse_if_full()
        self.check_amount(amount_minor)
        if self.journal.settlement_owed() is not None:
            raise InputError(i18n.bilingual("settlement_owed"))
        if self.state is not S.IDLE:
            raise InputError(f"a {kind} can only start when idle (now {self.state.name})")
        if self.journal.pending_reversals():  # as for a sale: owed reversals go out first (Till does that)
            raise InputError(i18n.bilingual("reversal_pending"))
        original = self.journal.get(original_txn_id)
        if original is None or original.kind != "sale" or original.state != "APPROVED":
            raise InputError(f"{original_txn_id} is not an approved sale")
        if original.entry_mode == QR_ENTRY_MODE and not self.has_wallet:
            raise InputError(i18n.bilingual("qr_unavailable"))
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
        if original.entry_mode == QR_ENTRY_MODE:
            self._qr_credit_window(kind, original)
        log.info("%s of %s approved by %s: %s", kind, original_txn_id, approval.approver, approval.reason)
        self.sale = sale = Sale(txn_id=new_txn_id(), amount_minor=amount_minor, kind=kind, original=original)
        if original.entry_mode == QR_ENTRY_MODE:  # a QR payment is credited by its wallet
            sale.tender = "qr"
            self.start_qr_credit()
        else:
            self.start_credit()
        return sale

    def _qr_credit_window(self, kind: str, original: Any) -> None:
        """The wallets' rules (PROTOCOLS.md §9): a QR void the same day, a refund within 30 days."""
        age = self.clock.wall() - datetime.fromisoformat(original.created_at)
        if kind == "void" and datetime.fromisoformat(original.created_at).date() != self.clock.wall().date():
            raise InputError("a QR payment is voided the same day only; refund it instead / 扫码交易仅限当日撤销")
        if kind == "refund" and age > timedelta(days=QR_REFUND_DAYS):
            raise InputError(f"a QR payment is refunded within {QR_REFUND_DAYS} days"
                             f" / 扫码交易须在{QR_REFUND_DAYS}天内退货")

    def recover_if_needed(self) -> bool:
        """Deliver the reversals the journal still owes, now (at start-up, before a sale): from
        IDLE a recovery round starts; in OUTCOME_UNKNOWN the reversal waiting out its backoff is
        sent again at once. True when a reversal went out."""
        if self.state is S.IDLE and self.journal.unresolved_reversals():
            self.recover()
            return True
        if self.state is S.OUTCOME_UNKNOWN and self.reversals.current is not None:
            self._arm("reversal", self.reversals.send())
            return True
        return False

    def cancel_sale(self, reason: str = "operator cancelled", actor: str = "operator") -> None:
        if self.state is S.QR_SHOWING:  # the order exists at the wallet: close it (its answer decides)
            self.close_order(reason=reason, actor=actor)
            return
        if self.state not in CANCELLABLE:
            raise InputError(f"nothing to cancel in state {self.state.name}")
        self.cancel(reason=reason, actor=actor)

    # -- inbound facts ------------------------------------------------------------------------
    def handle(self, event: object) -> None:
        state = self.state
        if isinstance(event, Deadline):
            if event.token == self._token and (step := DEADLINES.get((event.name, state))):
                getattr(self, step)()
            return
        for route in ROUTES:
            if isinstance(event, route.event) and (route.states is None or state in route.states):
                getattr(self, route.step)(event)
                return
        log.debug("event %s ignored in %s", type(event).__name__, state.name)

    def device_fault(self, fault: DeviceFault) -> None:
        step = FAULTS.get(fault.device)
        if step is not None:
            getattr(self, step)(fault)
            return
        log.warning("%s fault in %s: %s", fault.device, self.state.name, fault.detail)
        self._show("device_fault", f"{fault.device}: {fault.detail}")

    def source_failed(self, event: SourceFailed) -> None:
        """A source whose poll() raised (a driver's bug, not a device condition): the same as a
        disconnect of its device."""
        device = str(getattr(event.source, "family", type(event.source).__name__))
        self.device_fault(DeviceFault(device=device, kind=FaultKind.DISCONNECTED, detail=event.error))
