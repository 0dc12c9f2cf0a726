"""The card side of a sale: waiting for a card, reading it, PIN entry, and the chip's second
GENERATE AC. Bounded everywhere: two fallbacks, three PIN tries, a deadline on every wait."""

from __future__ import annotations

import os
from collections.abc import Callable
from typing import Any

from drivers.card_reader.events import (
    CardRead,
    CardRemoved,
    ChipCompleted,
    Cvm,
    EntryMode,
    PinCancelled,
    PinEntered,
    PinTimeout,
    ReadFailed,
)
from drivers.events import DeviceFault
from drivers.sensitive import luhn_ok
from terminal.checkout.base import CardReader, FlowBase, log
from terminal.checkout.table import CANCELLABLE, LIMITS, CheckoutState
from terminal.errors import JournalError

__all__ = ["CardSteps"]

S = CheckoutState


def _csprng_unpredictable_number() -> bytes:
    return os.urandom(4)  # what secrets.token_bytes is, without importing secrets (and random) at start


class CardSteps(FlowBase):
    # The terminal's unpredictable number (EMV 9F37) for each read: a CSPRNG's 4 bytes. Injectable:
    # a scenario sets one drawn from its seed (sim/scenario/rig.py) so that a replay is exact.
    unpredictable_number: Callable[[], bytes] = staticmethod(_csprng_unpredictable_number)

    @property
    def card_reader(self) -> CardReader:
        reader: CardReader = self.devices["card_reader"]
        return reader

    def card_detected(self, event: CardRead) -> None:
        self.detect_card(card=event)

    def card_wait_over(self) -> None:
        self.cancel(reason="no card presented in time", actor="terminal")

    def pin_wait_over(self) -> None:
        self.cancel(reason="PIN entry timed out", actor="terminal")

    def completion_over(self) -> None:
        self.card_refused("the card did not complete in time")

    def on_enter_AMOUNT_ENTRY(self, _: Any) -> None:
        self._show("enter_amount")

    def on_enter_AWAITING_CARD(self, _: Any) -> None:
        sale = self._sale()
        self._show("present_card" if not sale.fallbacks else "fallback")
        wait_s = int(self.terminal["limits"]["card_wait_timeout_s"])
        fault = self.card_reader.start_read(
            amount_minor=sale.amount_minor, currency=self.currency, modes=sale.modes, timeout_s=wait_s,
            unpredictable_number=self.unpredictable_number())
        if fault is not None:
            self.cancel(reason=f"card reader: {fault.detail}", actor="terminal")
            return
        self._arm("card_wait", float(wait_s))

    def card_read_failed(self, event: ReadFailed) -> None:
        sale = self._sale()
        if event.fallback_allowed and sale.fallbacks < LIMITS.max_fallbacks and self.state is S.AWAITING_CARD:
            # Chip error: swipe instead. Tap refused (over the contactless limit): insert.
            sale.fallbacks += 1
            sale.modes = frozenset({EntryMode.CHIP, EntryMode.SWIPE})
            log.info("card read failed (%s); fallback %d", event.reason, sale.fallbacks)
            self.retry_read()
        elif self.state in CANCELLABLE:
            self.cancel(reason=f"card read failed: {event.reason}", actor="card_reader")

    def on_enter_READING_CARD(self, event: Any) -> None:
        sale = self._sale()
        card: CardRead = event.kwargs["card"]
        sale.card = card
        self._show("reading_card")
        if not luhn_ok(card.pan.reveal()):
            self.cancel(reason="card number fails its check digit", actor="card_reader")
        elif card.entry_mode not in sale.modes:
            self.cancel(reason=f"{card.entry_mode.value} was not allowed for this read", actor="card_reader")
        elif card.cvm is Cvm.ONLINE_PIN:
            self.ask_pin()
        else:
            self.accept_card()

    def on_enter_PIN_ENTRY(self, event: Any) -> None:
        sale = self._sale()
        self._show("enter_pin" if event.transition.source != S.AUTHORIZING.name else "wrong_pin",
                    f"{LIMITS.max_pin_tries - sale.pin_tries}")
        fault = self.card_reader.request_pin(amount_minor=sale.amount_minor, currency=self.currency,
                                             timeout_s=LIMITS.pin_timeout_s)
        if fault is not None:
            self.cancel(reason=f"card reader: {fault.detail}", actor="terminal")
            return
        self._arm("pin", LIMITS.pin_timeout_s + 5.0)  # the pad times out first; this is the backstop

    def pin_entered(self, event: PinEntered) -> None:
        self._sale().pin_block = event.pin_block
        self.accept_pin()

    def pin_refused(self, event: PinCancelled | PinTimeout) -> None:
        why = "PIN entry timed out" if isinstance(event, PinTimeout) else "PIN entry cancelled"
        self.cancel(reason=why, actor="cardholder")

    def on_enter_COMPLETING(self, _: Any) -> None:
        sale = self._sale()
        arc = "Y3" if sale.offline else sale.response_code or "00"  # Y3: unable to go online
        fault = self.card_reader.complete(approved=True, response_code=arc, issuer_data=sale.issuer_data)
        if fault is not None:
            self.card_refused(f"card reader: {fault.detail}")
            return
        self._arm("completion", LIMITS.completion_timeout_s)

    def chip_completed(self, event: ChipCompleted) -> None:
        if event.approved:
            sale = self._sale()
            if not sale.offline:
                try:
                    sale.record = self.journal.confirm_approval(sale.txn_id, at=self.clock.wall())
                except JournalError as exc:  # not on disk, not approved: reverse it like a card's refusal
                    self.card_refused(f"journal write failed / 交易无法记录: {exc}")
                    return
            self.approve()
        else:
            self.card_refused("the card declined the issuer's approval")

    def card_refused(self, reason: str) -> None:
        """The host approved but the card did not finish (AAC, pulled, silent): reverse it."""
        sale = self._sale()
        sale.reason = reason
        if sale.offline:  # nothing reached the host: the offline sale is simply void
            self.journal.void_offline(sale.txn_id, reason=reason, at=self.clock.wall())
        else:
            self.journal.queue_reversal(sale.txn_id, reason=reason, reason_code="06", at=self.clock.wall())
        self.decline()

    def card_event(self, event: Any) -> None:
        """Card facts that are not answers to what the flow asked, by state."""
        state = self.state
        if isinstance(event, CardRemoved):
            card = self.sale.card if self.sale is not None else None
            if card is None or card.entry_mode is not EntryMode.CHIP:
                # Only an inserted chip card can leave the reader during its sale: a removal
                # now is the previous card's (late through the line).
                log.info("card removal in %s ignored: not this sale's card", state.name)
            elif state is S.COMPLETING:
                self.card_refused("card removed before completion")
            elif state in (S.READING_CARD, S.PIN_ENTRY, S.AWAITING_CARD):
                self.cancel(reason="card removed during the read", actor="cardholder")
        elif isinstance(event, DeviceFault) and event.blocking:
            if state is S.COMPLETING:
                self.card_refused(f"card reader: {event.detail}")
            elif state in CANCELLABLE:
                self.cancel(reason=f"{event.device}: {event.detail}", actor="terminal")
