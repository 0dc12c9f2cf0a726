"""The host side of a sale: the journalled request, its answer, and resolving unknown outcomes.

A txn_id's row, STAN and SENT state are committed before a byte leaves for the host. A request
whose answer never came goes to OUTCOME_UNKNOWN, which delivers every owed reversal (oldest
first) before the terminal does anything else online.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from drivers.acquirer.events import HostMessage
from drivers.acquirer.spec import OriginalRef
from drivers.card_reader import tlv
from drivers.card_reader.events import Cvm, EntryMode
from drivers.errors import RemoteProtocolError
from terminal.checkout import CheckoutState
from terminal.errors import JournalError
from terminal.flow_base import FlowBase, log
from terminal.host.client import HostLinkError
from terminal.host.messages import (
    match,
    parse_sale_response,
    parse_sign_on_response,
    refund_request,
    sale_request,
    sign_on_request,
    void_request,
)
from terminal.journal import new_txn_id
from terminal.steps_card import MAX_PIN_TRIES

__all__ = ["HostSteps"]

S = CheckoutState
WRONG_PIN = "55"
SIGN_ON_RETRY_S = 60.0  # after a failed sign-on, wait this long before the next try
ESCALATED_RETRY_S = 600.0  # an escalated reversal gets another round this long after (while idle)


class HostSteps(FlowBase):
    def on_enter_AUTHORIZING(self, _: Any) -> None:
        sale = self._sale()
        if sale.kind != "sale":
            self._authorize_credit()
            return
        card = sale.card
        assert card is not None, "authorising without a card"
        if sale.record is not None:  # a PIN retry is a new host transaction
            sale.txn_id, sale.record = new_txn_id(), None
        try:
            if not self.host.connected:
                self.host.connect()
        except HostLinkError as exc:  # nothing has left: the terminal may decide offline
            log.warning("host unreachable for %s: %s", sale.txn_id, exc)
            self._offline(str(exc))
            return
        try:
            sale.record = record = self.journal.record_sent(
                txn_id=sale.txn_id, amount_minor=sale.amount_minor, currency=self.currency,
                entry_mode=card.entry_mode.value, pan_last4=card.pan_last4,
                pan_token=self.tokenizer.token(card.pan), at=self.clock.wall(),
            )
        except JournalError as exc:  # nothing left for the host: the sale just ends here
            sale.outcome, sale.reason = "DECLINED", str(exc)
            self._show("declined", str(exc))
            self.decline()
            return
        self._show("processing")
        self._arm("host", float(self.terminal["host"]["timeout_s"]))
        request = sale_request(
            stan=record.stan, amount_minor=record.amount_minor, pan=card.pan, entry_mode=card.entry_mode.value,
            expiry=card.expiry, track2=card.track2, icc_data=card.icc_data, pan_sequence=card.pan_sequence,
            terminal_id=str(self.terminal["terminal_id"]), merchant_id=str(self.terminal["merchant_id"]),
            currency=self.currency, batch=record.batch, when=datetime.fromisoformat(record.created_at),
            pin_block=sale.pin_block,
        )
        sale.pin_block = None  # the PIN block lives only until the request is built
        try:
            self.host.send(request)
        except HostLinkError as exc:
            # Some bytes may have left: treat it as no answer, so the reversal covers it.
            log.warning("host send failed for %s: %s", sale.txn_id, exc)
            self.lose_host()

    def host_message(self, msg: HostMessage) -> None:
        if self.state is S.OUTCOME_UNKNOWN and self.reversals.answered(msg):
            self._next_reversal()
            return
        sale = self.sale
        if (
            self.state is not S.AUTHORIZING or sale is None or sale.record is None
            or msg.mti != "0210" or msg.stan != f"{sale.record.stan:06d}"
        ):
            self._unmatched(msg)
            return
        answer = parse_sale_response(msg)
        chip = sale.kind == "sale" and sale.record.entry_mode == EntryMode.CHIP.value
        sale.record = self.journal.record_answer(
            sale.txn_id, approved=answer.approved, response_code=answer.response_code,
            auth_code=answer.auth_code, rrn=answer.rrn, at=self.clock.wall(), card_must_confirm=chip,
        )
        sale.response_code = answer.response_code
        self._disarm()
        if answer.approved and chip:
            sale.issuer_data = _issuer_data(msg)
            self.complete_chip()
        elif answer.approved:
            self.approve()
        elif answer.sign_on_required:  # A0: the host no longer trusts our keys
            self.signed_on, self._sign_on_at = False, 0.0
            sale.reason = "MAC error: signing on again, please retry / MAC校验错,重新签到后请重试"
            self.decline()
        elif answer.response_code == WRONG_PIN and sale.card is not None and sale.card.cvm is Cvm.ONLINE_PIN:
            sale.pin_tries += 1
            if sale.pin_tries < MAX_PIN_TRIES:
                self.retry_pin()
            else:
                sale.reason = "PIN tries exceeded / 密码错误次数超限"
                self.decline()
        else:
            self.decline()

    def _authorize_credit(self) -> None:
        """A void (撤销) or refund (退货): journalled first like a sale, no card, never offline."""
        sale, original = self._sale(), self._sale().original
        assert original is not None, "a credit names its sale"
        try:
            if not self.host.connected:
                self.host.connect()
            sale.record = record = self.journal.record_sent(
                txn_id=sale.txn_id, amount_minor=sale.amount_minor, currency=original.currency,
                entry_mode=original.entry_mode, pan_last4=original.pan_last4,
                pan_token=self.journal.pan_token_of(original.txn_id), at=self.clock.wall(), kind=sale.kind,
                original_txn_id=original.txn_id,
            )
        except (HostLinkError, JournalError) as exc:  # nothing has left for the host
            sale.reason = f"{sale.kind} not possible now: {exc}"
            self.decline()
            return
        self._show("processing")
        self._arm("host", float(self.terminal["host"]["timeout_s"]))
        build = void_request if sale.kind == "void" else refund_request
        request = build(
            stan=record.stan, amount_minor=record.amount_minor,
            original=OriginalRef.of(batch=original.batch, stan=original.stan,
                                    when=datetime.fromisoformat(original.created_at)),
            original_rrn=original.rrn, original_auth_code=original.auth_code,
            terminal_id=str(self.terminal["terminal_id"]), merchant_id=str(self.terminal["merchant_id"]),
            currency=record.currency, batch=record.batch, when=datetime.fromisoformat(record.created_at),
        )
        try:
            self.host.send(request)
        except HostLinkError as exc:
            log.warning("host send failed for %s: %s", sale.txn_id, exc)
            self.lose_host()

    def _offline(self, why: str) -> None:
        """Host unreachable before a byte left: approve offline within the floor limits, or decline."""
        sale = self._sale()
        card = sale.card
        assert card is not None
        refusal = self.advices.limits.refusal(sale.amount_minor, self.journal)
        if card.cvm is Cvm.ONLINE_PIN:
            refusal = "an online PIN needs the host"
        if refusal is not None:
            sale.reason = f"host unreachable / 主机不可达: {refusal}"
            self.decline()
            return
        try:
            sale.record = self.journal.record_offline(
                txn_id=sale.txn_id, amount_minor=sale.amount_minor, currency=self.currency,
                entry_mode=card.entry_mode.value, pan_last4=card.pan_last4, pan_token=self.tokenizer.token(card.pan),
                at=self.clock.wall(),
            )
        except JournalError as exc:
            sale.reason = str(exc)
            self.decline()
            return
        sale.offline, sale.response_code = True, "Y1"
        self._show("offline_approved", why)
        if card.entry_mode is EntryMode.CHIP:
            self.complete_chip()  # the card decides too: Y3 = unable to go online
        else:
            self.approve()

    # -- sign-on (签到) -------------------------------------------------------------------------
    def on_enter_SIGNING_ON(self, _: Any) -> None:
        self._sign_on_request = sign_on_request(
            stan=self.journal.next_stan(), terminal_id=str(self.terminal["terminal_id"]),
            merchant_id=str(self.terminal["merchant_id"]), batch=self.journal.current_batch(), when=self.clock.wall(),
        )
        try:
            if not self.host.connected:
                self.host.connect()
            self.host.send(self._sign_on_request)
        except HostLinkError as exc:
            log.info("sign-on not possible now: %s", exc)
            self._sign_on_failed()
            return
        self._arm("sign_on", float(self.terminal["host"]["timeout_s"]))

    def _sign_on_failed(self) -> None:
        # Counted from the failure, not the send: a silent host must leave room for sales between tries.
        self._sign_on_at = self.clock.now() + SIGN_ON_RETRY_S
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
            self._show("signed_on")
            self._disarm()
            self.end_sign_on()
            return
        self._show("sign_on_failed", msg.response_code or "")
        self._disarm()
        self._sign_on_failed()

    def sign_on_deadline(self) -> None:
        self._show("sign_on_failed", "no answer")
        self._sign_on_failed()

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
        if self.advices.answered(msg):
            self._forward_next()
        else:
            self._unmatched(msg)

    def advice_deadline(self) -> None:
        self.advices.give_up_round()
        self.end_forwarding()

    def _unmatched(self, msg: HostMessage) -> None:
        # QMUX's "unhandled" queue: a late or stray answer never changes a decided sale; an
        # approval after its reversal was queued is recorded, and the reversal stands.
        log.warning("unmatched host message %s (STAN %s) in %s", msg.mti, msg.stan, self.state.name)
        if msg.mti == "0210":
            stan = msg.stan or ""
            txn_id = self.journal.txn_id_for_stan(int(stan)) if stan.isdigit() else None
            self.journal.record_incident("late_response", txn_id=txn_id, at=self.clock.wall(),
                                         detail=f"0210 STAN {msg.stan} code {msg.response_code} after timeout")

    # -- unknown outcomes -------------------------------------------------------------------------
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

    def reversal_deadline(self) -> None:
        if self.reversals.exhausted():
            txn_id = self.reversals.current
            self.reversals.escalate()
            self._escalated_retry_at = self.clock.now() + ESCALATED_RETRY_S
            self._show("reversal_failed", str(txn_id))
            self._next_reversal()
        else:
            self._arm("reversal", self.reversals.send())


def _issuer_data(msg: HostMessage) -> bytes:
    """Tag 91 (ARPC + ARC) from DE 55 of the answer: the card checks it before it gives a TC."""
    raw = msg.get("55")
    if not isinstance(raw, bytes):
        return b""
    try:
        return tlv.find(raw, "91") or b""
    except RemoteProtocolError:
        log.warning("DE 55 of the answer is not TLV; the card gets no issuer data")
        return b""
