"""AUTHORIZING: the journalled request and its answer; offline approval when the host is away.

A txn_id's row, STAN and SENT state are committed before a byte leaves for the host. A request
whose answer never came goes to OUTCOME_UNKNOWN (outcome.py), which delivers every owed reversal
before the terminal does anything else online.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from drivers.acquirer.events import HostMessage
from drivers.acquirer.spec import OriginalRef
from drivers.card_reader.events import Cvm, EntryMode
from drivers.emv import tlv
from drivers.errors import RemoteProtocolError
from drivers.events import DeviceFault
from terminal.checkout.base import log
from terminal.checkout.card import CardSteps
from terminal.checkout.signature import signature_owed
from terminal.checkout.table import LIMITS, CheckoutState
from terminal.errors import JournalError
from terminal.host.messages import parse_sale_response, refund_request, sale_request, void_request
from terminal.journal import new_txn_id

__all__ = ["ANSWER_NOT_JOURNALLED", "AuthorizeSteps"]

ANSWER_NOT_JOURNALLED = "交易无法记录，已冲正 / the host's answer could not be journalled: reversed"

S = CheckoutState


class AuthorizeSteps(CardSteps):
    def on_enter_AUTHORIZING(self, _: Any) -> None:
        sale = self._sale()
        if sale.kind != "sale":
            self._authorize_credit()
            return
        card = sale.card
        assert card is not None, "authorising without a card"
        if sale.record is not None:  # a PIN retry is a new host transaction
            sale.txn_id, sale.record = new_txn_id(), None
        if (fault := self.host.connect()) is not None:  # nothing has left: the terminal may decide offline
            log.warning("host unreachable for %s: %s", sale.txn_id, fault.detail)
            self._offline(fault.detail)
            return
        try:
            sale.record = record = self.journal.record_sent(
                txn_id=sale.txn_id, amount_minor=sale.amount_minor, currency=self.currency,
                entry_mode=card.entry_mode.value, pan_last4=card.pan_last4,
                pan_token=self.tokenizer.token(card.pan), at=self.clock.wall(),
                signature_owed=signature_owed(sale, self.terminal, self.devices),
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
        if (fault := self.host.send(request)) is not None:
            # Some bytes may have left: treat it as no answer, so the reversal covers it.
            log.warning("host send failed for %s: %s", sale.txn_id, fault.detail)
            self.lose_host()

    def host_message(self, msg: HostMessage) -> None:
        sale = self.sale
        if (
            self.state is not S.AUTHORIZING or sale is None or sale.record is None
            or msg.mti != "0210" or msg.stan != f"{sale.record.stan:06d}"
        ):
            self._unmatched(msg)
            return
        answer = parse_sale_response(msg)
        chip = sale.kind == "sale" and sale.record.entry_mode == EntryMode.CHIP.value
        try:
            sale.record = self.journal.record_answer(
                sale.txn_id, approved=answer.approved, response_code=answer.response_code,
                auth_code=answer.auth_code, rrn=answer.rrn, at=self.clock.wall(), card_must_confirm=chip,
            )
        except JournalError as exc:  # an answer that is not on disk never happened: reverse it now
            log.error("the answer to %s could not be journalled: %s", sale.txn_id, exc)
            sale.response_code, sale.reason = answer.response_code, f"{ANSWER_NOT_JOURNALLED} ({exc})"
            self.lose_host()  # OUTCOME_UNKNOWN: its reversal goes out at once (owed from memory if need be)
            return
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
        elif (answer.response_code == LIMITS.wrong_pin_code and sale.card is not None
              and sale.card.cvm is Cvm.ONLINE_PIN):
            sale.pin_tries += 1
            if sale.pin_tries < LIMITS.max_pin_tries:
                self.retry_pin()
            else:
                sale.reason = "PIN tries exceeded / 密码错误次数超限"
                self.decline()
        else:
            self.decline()

    def host_fault(self, fault: DeviceFault) -> None:
        if self.state is S.AUTHORIZING:
            self.lose_host()  # the answer cannot come on a connection that is gone
        else:  # the next message connects again; each waiting state has its own deadline
            log.info("acquirer link lost in %s: %s", self.state.name, fault.detail)

    def _authorize_credit(self) -> None:
        """A void (撤销) or refund (退货): journalled first like a sale, no card, never offline."""
        sale, original = self._sale(), self._sale().original
        assert original is not None, "a credit names its sale"
        try:
            if (fault := self.host.connect()) is not None:
                raise JournalError(fault.detail)  # nothing has left for the host
            sale.record = record = self.journal.record_sent(
                txn_id=sale.txn_id, amount_minor=sale.amount_minor, currency=original.currency,
                entry_mode=original.entry_mode, pan_last4=original.pan_last4,
                pan_token=self.journal.pan_token_of(original.txn_id), at=self.clock.wall(), kind=sale.kind,
                original_txn_id=original.txn_id,
            )
        except JournalError as exc:  # nothing has left for the host
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
        if (fault := self.host.send(request)) is not None:
            log.warning("host send failed for %s: %s", sale.txn_id, fault.detail)
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
