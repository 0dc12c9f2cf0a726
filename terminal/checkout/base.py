"""What every phase of the checkout shares: the sale being worked on, the devices, the helpers.

The flow is split along the sale's seams, one module a phase (card, authorize, outcome,
signature, print, idle, settle) as mixins over this base; flow.py composes them and routes facts
by the tables of table.py. Devices are held by slot name (`devices["card_reader"]`); the phase
that uses a device gives it a typed accessor, so this base names no device family.
"""

from __future__ import annotations

import itertools
import logging
from collections.abc import Callable, Iterable, Mapping
from pathlib import Path
from typing import Any, Final, Protocol

from drivers.acquirer.events import HostMessage
from drivers.card_reader.events import CardRead, EntryMode
from drivers.events import DeviceFault
from drivers.sensitive import Secret
from terminal import i18n
from terminal.checkout.table import LIMITS, CheckoutState, Triggers
from terminal.clock import Clock, Deadline, Timer
from terminal.host.advice import AdviceDesk
from terminal.host.link import HostLink
from terminal.host.reversal import ReversalDesk
from terminal.journal import Journal, QrOrder, TxnRecord
from terminal.receipts.spool import PrintedCopy
from terminal.security.access import AccessControl, Approval
from terminal.security.pan import PanTokenizer

__all__ = ["CardReader", "FlowBase", "HostLink", "Sale"]

log = logging.getLogger("terminal.checkout.flow")
# Deadline tokens are unique across flows: a clock that outlives a restarted terminal may still
# hold the old flow's timers, and they must never match a wait of the new one.
_TOKENS = itertools.count(1)


class CardReader(Protocol):
    def start_read(
        self, *, amount_minor: int, currency: str, modes: Iterable[EntryMode], timeout_s: int,
        unpredictable_number: bytes = b"",
    ) -> DeviceFault | None: ...
    def request_pin(self, *, amount_minor: int, currency: str, timeout_s: int = 30) -> DeviceFault | None: ...
    def cancel(self) -> DeviceFault | None: ...
    def complete(self, *, approved: bool, response_code: str, issuer_data: bytes = b"") -> DeviceFault | None: ...


class Sale:
    """One customer payment, across PIN retries (each a host transaction with its own txn_id).

    A plain mutable record with a dataclass's keyword-only constructor, repr and equality,
    written out: `dataclasses` (with `copy`) and the exec() it compiles a class with cost every
    start ~2 ms, and a till makes one Sale class."""

    txn_id: str
    amount_minor: int
    kind: str  # or "void" / "refund" of `original`
    original: TxnRecord | None
    modes: frozenset[EntryMode]
    fallbacks: int
    card: CardRead | None  # RAM only, dropped when the sale ends
    pin_block: Secret[bytes] | None  # RAM only, dropped once the request is built
    pin_tries: int
    record: TxnRecord | None
    issuer_data: bytes
    offline: bool  # approved by the terminal with the host unreachable
    outcome: str | None
    response_code: str | None
    reason: str | None  # why it was declined or cancelled, in words
    cancel_reason: str | None
    printed: list[PrintedCopy]
    messages: list[str]
    # QR payments (qr.py)
    tender: str  # "card" (a scanned code still pays), "qr" (the customer's code), "qr-merchant"
    qr_code: str | None  # the customer's one-time payment code: RAM only, dropped once the pay is built
    qr_channel: str | None
    qr_order: QrOrder | None
    qr_paid_order: QrOrder | None  # the payment a QR void or refund credits
    qr_sent_at: float  # Clock time the pay (or the merchant order) left
    qr_reverse_tries: int
    qr_polls: int
    qr_image: Path | None  # the merchant-presented code as a PNG
    qr_refunded: bool  # the reverse found it paid and returned the money
    signed: bool  # 电签: the cardholder signed on the pad (journalled, bound)

    def __init__(
        self, *,
        txn_id: str, amount_minor: int, kind: str = "sale", original: TxnRecord | None = None,
        modes: frozenset[EntryMode] = frozenset(EntryMode), fallbacks: int = 0, card: CardRead | None = None,
        pin_block: Secret[bytes] | None = None, pin_tries: int = 0, record: TxnRecord | None = None,
        issuer_data: bytes = b"", offline: bool = False, outcome: str | None = None,
        response_code: str | None = None, reason: str | None = None, cancel_reason: str | None = None,
        printed: list[PrintedCopy] | None = None, messages: list[str] | None = None, tender: str = "card",
        qr_code: str | None = None, qr_channel: str | None = None, qr_order: QrOrder | None = None,
        qr_paid_order: QrOrder | None = None, qr_sent_at: float = 0.0, qr_reverse_tries: int = 0,
        qr_polls: int = 0, qr_image: Path | None = None, qr_refunded: bool = False, signed: bool = False,
    ) -> None:
        self.txn_id = txn_id
        self.amount_minor = amount_minor
        self.kind = kind
        self.original = original
        self.modes = modes
        self.fallbacks = fallbacks
        self.card = card
        self.pin_block = pin_block
        self.pin_tries = pin_tries
        self.record = record
        self.issuer_data = issuer_data
        self.offline = offline
        self.outcome = outcome
        self.response_code = response_code
        self.reason = reason
        self.cancel_reason = cancel_reason
        self.printed = [] if printed is None else printed
        self.messages = [] if messages is None else messages
        self.tender = tender
        self.qr_code = qr_code
        self.qr_channel = qr_channel
        self.qr_order = qr_order
        self.qr_paid_order = qr_paid_order
        self.qr_sent_at = qr_sent_at
        self.qr_reverse_tries = qr_reverse_tries
        self.qr_polls = qr_polls
        self.qr_image = qr_image
        self.qr_refunded = qr_refunded
        self.signed = signed

    def __repr__(self) -> str:
        inner = ", ".join(f"{name}={getattr(self, name)!r}" for name in _SALE_FIELDS)
        return f"Sale({inner})"

    def __eq__(self, other: object) -> bool:
        if other.__class__ is not self.__class__:
            return NotImplemented
        return all(getattr(self, name) == getattr(other, name) for name in _SALE_FIELDS)

    __hash__ = None  # type: ignore[assignment]  # mutable: unhashable, as a dataclass with eq


_SALE_FIELDS: Final = tuple(Sale.__annotations__)  # the fields, in their order


class FlowBase(Triggers):
    def __init__(
        self, *, clock: Clock, journal: Journal, tokenizer: PanTokenizer, devices: Mapping[str, Any],
        profiles: Mapping[str, Mapping[str, Any]], host: HostLink, terminal: Mapping[str, Any],
        access: AccessControl, display: Callable[[str], None] = lambda line: None,
    ) -> None:
        self.clock, self.journal, self.tokenizer = clock, journal, tokenizer
        self.access = access
        self.devices, self.profiles, self.host = devices, profiles, host
        self.terminal = terminal
        self._display = display
        self.reversals = ReversalDesk(journal=journal, host=host, clock=clock, terminal=terminal,
                                      max_wait_s=LIMITS.reversal_max_wait_s)
        self.advices = AdviceDesk(journal=journal, host=host, clock=clock, terminal=terminal)
        self.sale: Sale | None = None
        self.completed: list[Sale] = []
        self._timer: Timer | None = None
        self._token = next(_TOKENS)
        self._escalated_retry_at = 0.0
        self._settle_retry_at = 0.0  # earliest time housekeeping settles an owed settlement again
        self.signed_on = False
        self.working_keys: Any = None  # DE 62 of the last sign-on (RAM only)
        self._sign_on_at = 0.0  # earliest time for the next sign-on attempt
        self._sign_on_request: HostMessage | None = None

    @property
    def currency(self) -> str:
        return str(self.terminal["currency"])

    def _sale(self) -> Sale:
        assert self.sale is not None, "no sale in progress"
        return self.sale

    def _record(self) -> TxnRecord:
        record = self._sale().record
        assert record is not None, "the sale has no journal row yet"
        return record

    def _arm(self, name: str, seconds: float) -> None:
        """Start the one wait the flow has at a time; an older deadline is ignored when it fires."""
        self._disarm()
        self._timer = self.clock.call_later(seconds, Deadline(name=name, token=self._token))

    def _disarm(self) -> None:
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None
        self._token = next(_TOKENS)

    def _show(self, key: str, detail: str = "") -> None:
        line = i18n.bilingual(key, detail)
        if self.sale is not None:
            self.sale.messages.append(line)
        self._display(line)

    def _require(self, approval: Approval, operation: str, txn_id: str | None = None) -> Approval:
        """A privileged step goes on only with an approval the access control issued for exactly
        that operation (and transaction), unused and unexpired; it is spent here. Returns what
        was issued (read its approver and reason, not the presented object's)."""
        return self.access.consume(approval, operation, txn_id=txn_id)

    def handle(self, event: object) -> None:
        """Route one outside fact to its step (flow.py composes the phases and implements it)."""
        raise NotImplementedError

    def is_state(self, state: CheckoutState) -> bool:
        return self.state is state

    def _unmatched(self, msg: HostMessage) -> None:
        # QMUX's "unhandled" queue: a late or stray answer never changes a decided sale; an
        # approval after its reversal was queued is recorded, and the reversal stands.
        log.warning("unmatched host message %s (STAN %s) in %s", msg.mti, msg.stan, self.state.name)
        if msg.mti == "0210":
            stan = msg.stan or ""
            txn_id = self.journal.txn_id_for_stan(int(stan)) if stan.isdigit() else None
            self.journal.record_incident("late_response", txn_id=txn_id, at=self.clock.wall(),
                                         detail=f"0210 STAN {msg.stan} code {msg.response_code} after timeout")
