"""What every part of the sale flow shares: the sale being worked on, the devices, the helpers.

The flow is split along the sale's seams — card (steps_card.py), host (steps_host.py), receipts
(steps_receipt.py) — as mixins over this base; terminal/flow.py composes them and routes facts.
"""

from __future__ import annotations

import itertools
import logging
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any, Protocol

from drivers.acquirer.events import HostMessage
from drivers.card_reader.events import CardRead, EntryMode
from drivers.events import DeviceFault
from drivers.sensitive import Secret
from terminal import i18n
from terminal.access import AccessDenied, Approval
from terminal.checkout import CheckoutState, Triggers
from terminal.clock import Clock, Deadline, Timer
from terminal.journal import Journal, TxnRecord
from terminal.printing import PrintedCopy, Spool
from terminal.reversal import ReversalDesk
from terminal.security import PanTokenizer

__all__ = ["CardReader", "FlowBase", "HostLink", "Sale"]

log = logging.getLogger("terminal.flow")
# Deadline tokens are unique across flows: a clock that outlives a restarted terminal may still
# hold the old flow's timers, and they must never match a wait of the new one.
_TOKENS = itertools.count(1)


class CardReader(Protocol):
    def start_read(
        self, *, amount_minor: int, currency: str, modes: Iterable[EntryMode], timeout_s: int
    ) -> DeviceFault | None: ...
    def request_pin(self, *, amount_minor: int, currency: str, timeout_s: int = 30) -> DeviceFault | None: ...
    def cancel(self) -> DeviceFault | None: ...
    def complete(self, *, approved: bool, response_code: str, issuer_data: bytes = b"") -> DeviceFault | None: ...


class HostLink(Protocol):
    @property
    def connected(self) -> bool: ...
    def connect(self) -> None: ...
    def send(self, msg: HostMessage) -> None: ...


@dataclass(kw_only=True)
class Sale:
    """One customer payment, across PIN retries (each a host transaction with its own txn_id)."""

    txn_id: str
    amount_minor: int
    kind: str = "sale"  # or "void" / "refund" of `original`
    original: TxnRecord | None = None
    modes: frozenset[EntryMode] = frozenset(EntryMode)
    fallbacks: int = 0
    card: CardRead | None = None  # RAM only, dropped when the sale ends
    pin_block: Secret[bytes] | None = None  # RAM only, dropped once the request is built
    pin_tries: int = 0
    record: TxnRecord | None = None
    issuer_data: bytes = b""
    offline: bool = False  # approved by the terminal with the host unreachable
    outcome: str | None = None
    response_code: str | None = None
    reason: str | None = None  # why it was declined or cancelled, in words
    cancel_reason: str | None = None
    printed: list[PrintedCopy] = field(default_factory=list)
    messages: list[str] = field(default_factory=list)


class FlowBase(Triggers):
    def __init__(
        self, *, clock: Clock, journal: Journal, tokenizer: PanTokenizer, card_reader: CardReader, printer: Any,
        host: HostLink, terminal: Mapping[str, Any], printer_profile: Mapping[str, Any],
        display: Callable[[str], None] = lambda line: None,
    ) -> None:
        self.clock, self.journal, self.tokenizer = clock, journal, tokenizer
        self.card_reader, self.printer, self.host = card_reader, printer, host
        self.terminal, self.printer_profile = terminal, printer_profile
        self._display = display
        self.reversals = ReversalDesk(journal=journal, host=host, clock=clock, terminal=terminal)
        from terminal.advice import AdviceDesk  # advice.py uses this module's HostLink type

        self.advices = AdviceDesk(journal=journal, host=host, clock=clock, terminal=terminal)
        self.spool = Spool(printer=printer, journal=journal, clock=clock, terminal=terminal,
                           printer_profile=printer_profile)
        self.sale: Sale | None = None
        self.completed: list[Sale] = []
        self._timer: Timer | None = None
        self._token = next(_TOKENS)
        self._escalated_retry_at = 0.0
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

    @staticmethod
    def _require(approval: Approval, operation: str) -> None:
        """A privileged step goes on only with an approval for exactly that operation."""
        if approval.operation != operation:
            raise AccessDenied(f"an approval for {approval.operation!r} does not allow {operation!r}")

    def is_state(self, state: CheckoutState) -> bool:
        return self.state is state
