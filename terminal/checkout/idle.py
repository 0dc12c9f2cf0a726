"""IDLE and its housekeeping: sign-on (签到, SIGNING_ON), owed reversals and stored offline
sales (FORWARDING) go out while no sale is running. Ready for sale means nothing is owed."""

from __future__ import annotations

from typing import Any

from drivers.acquirer.events import HostMessage
from drivers.errors import RemoteProtocolError
from terminal.checkout.base import FlowBase, log
from terminal.checkout.table import LIMITS, CheckoutState
from terminal.host.answers import SignOnAnswer
from terminal.host.messages import match, parse_sign_on_response, sign_off_request, sign_on_request

__all__ = ["IdleSteps"]

S = CheckoutState


class IdleSteps(FlowBase):
    def on_enter_IDLE(self, _: Any) -> None:
        if self.sale is not None:
            self.sale.card = self.sale.pin_block = None  # card data never outlives its sale
            self.sale.qr_code = None  # nor does a payment code
            self.completed.append(self.sale)
            self.sale = None
        self._sign_off_after_settlement()
        # What is owed to the host goes out first, a full journal or not: settlement needs it.
        if self.housekeeping():
            return
        if self.journal.capacity_status().full:
            self.require_settlement()
        else:
            self._arm("housekeeping", LIMITS.housekeeping_s)

    def idle_tick(self) -> None:
        if not self.housekeeping():
            self._arm("housekeeping", LIMITS.housekeeping_s)

    def pin_pad_back(self) -> None:
        """A PIN pad plugged in again (or replaced) holds no working PIN key: sign on again at the
        next idle moment, which loads it."""
        self.signed_on, self._sign_on_at = False, 0.0

    def housekeeping(self) -> bool:
        """When idle: deliver what is owed to the host. True when that started (the state moved)."""
        if self.state is not S.IDLE:
            return False
        if self.signed_on and self.host.needs_sign_on:
            # A0, or an answer that failed its MAC: new keys before the next online message.
            log.info("the host no longer trusts our working keys: signing on again")
            self.signed_on, self._sign_on_at = False, 0.0
        if not self.signed_on and self.clock.now() >= self._sign_on_at:
            self.sign_on()  # keys first: the messages below are MACed with them on a real host
        elif self.journal.pending_reversals():
            self.recover()  # e.g. a card that refused its approval: reverse it now
        elif self.journal.settlement_owed() is not None and self.clock.now() >= self._settle_retry_at:
            # A settlement without an outcome: settle the same batch again before anything else.
            self._settle_retry_at = self.clock.now() + LIMITS.settlement_retry_s
            self.settle()
        elif self.advices.due():
            self.forward()  # the host may be back: stored offline sales go
        elif self.journal.unresolved_reversals() and self.clock.now() >= self._escalated_retry_at:
            self._escalated_retry_at = self.clock.now() + LIMITS.escalated_retry_s
            self.recover()  # escalated reversals: another round now and then, never dropped
        else:
            return False
        return True

    # -- sign-on (签到) -------------------------------------------------------------------------
    # -- sign-on (签到) -------------------------------------------------------------------------
    def on_enter_SIGNING_ON(self, _: Any) -> None:
        self._sign_on_request = sign_on_request(
            stan=self.journal.next_stan(), terminal_id=str(self.terminal["terminal_id"]),
            merchant_id=str(self.terminal["merchant_id"]), batch=self.journal.current_batch(), when=self.clock.wall(),
        )
        if (fault := self.host.send(self._sign_on_request)) is not None:
            log.info("sign-on not possible now: %s", fault.detail)
            self._sign_on_failed()
            return
        self._arm("sign_on", float(self.terminal["host"]["timeout_s"]))

    def _sign_on_failed(self) -> None:
        # Counted from the failure, not the send: a silent host must leave room for sales between tries.
        self._sign_on_at = self.clock.now() + LIMITS.sign_on_retry_s
        self.end_sign_on()

    def sign_on_message(self, msg: HostMessage) -> None:
        if self._sign_on_request is None or not match(self._sign_on_request, msg):
            self._unmatched(msg)
            return
        try:
            answer = parse_sign_on_response(msg)
        except RemoteProtocolError as exc:
            log.warning("unusable sign-on answer: %s", exc)
            answer = None
        if answer is not None and answer.approved:
            self.signed_on, self.working_keys = True, answer.keys
            self.host.use_keys(answer.keys)  # DE 64 from now on
            self._load_pin_key(answer)
            self._show("signed_on")
            self._disarm()
            self.end_sign_on()
            return
        self._show("sign_on_failed", msg.response_code or "")
        self._disarm()
        self._sign_on_failed()

    # -- sign-off (签退) ---------------------------------------------------------------------------
    def _sign_off_after_settlement(self) -> None:
        """After a balanced settlement, where the profile says so: 0800 sign-off, keys dropped. Its
        0810 changes nothing (it arrives in IDLE, logged as unmatched); the next idle round signs
        on again, so the new batch runs under new keys."""
        result = getattr(self, "last_settlement", None)
        if (result is None or result is getattr(self, "_signed_off_for", None) or not result.balanced
                or not self.signed_on or not self.terminal["host"].get("sign_off_after_settlement", False)):
            return
        self._signed_off_for = result
        request = sign_off_request(
            stan=self.journal.next_stan(), terminal_id=str(self.terminal["terminal_id"]),
            merchant_id=str(self.terminal["merchant_id"]), batch=self.journal.current_batch(), when=self.clock.wall(),
        )
        if (fault := self.host.send(request)) is not None:
            log.info("sign-off not delivered: %s", fault.detail)  # the host voids the keys at the next sign-on anyway
        self.signed_on, self.working_keys = False, None
        self.host.use_keys(None)
        self._sign_on_at = self.clock.now() + LIMITS.housekeeping_s
        log.info("signed off after the settlement of batch %06d", result.batch)

    def _load_pin_key(self, answer: SignOnAnswer) -> None:
        """The working PIN key goes to the PIN pad under the TMK, which the pad holds and decrypts
        it with inside, as a real pad does. (Limit: `WorkingKeys` parsed it to clear in RAM, in
        `Secret`, and re-encrypts it here; see docs/host-link.md "Keys and MAC".) A pad that does
        not take it keeps its old key, and the host answers 55."""
        reader = self.devices.get("card_reader")
        load = getattr(reader, "load_pin_key", None)
        if answer.keys is None or load is None:
            return
        fault = load(answer.keys.wrapped_pin_key())
        if fault is not None:
            log.warning("the PIN pad did not take the working PIN key: %s", fault.detail)

    def sign_on_deadline(self) -> None:
        self._show("sign_on_failed", "no answer")
        self._sign_on_failed()

    # -- store and forward --------------------------------------------------------------------
    # -- store and forward --------------------------------------------------------------------
    def on_enter_FORWARDING(self, _: Any) -> None:
        self._forward_next()

    def _forward_next(self) -> None:
        if self.advices.send_next():
            self._arm("advice", float(self.terminal["host"]["timeout_s"]))
        else:
            self._disarm()
            self.end_forwarding()

    def advice_message(self, msg: HostMessage) -> None:
        if not self.advices.answered(msg):
            self._unmatched(msg)
        elif self.host.needs_sign_on:  # A0: the keys first (housekeeping signs on); the advice stays owed
            self._disarm()
            self.end_forwarding()
        else:
            self._forward_next()

    def advice_deadline(self) -> None:
        self.advices.give_up_round()
        self.end_forwarding()
