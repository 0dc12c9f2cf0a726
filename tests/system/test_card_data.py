"""Card data lives in RAM only as long as it must: the PIN block until the request is built
(terminal/checkout/authorize.py), the card read until the sale ends (terminal/checkout/idle.py)."""

from __future__ import annotations

from emulator.card_reader.cards import get_card
from sim.wiring import EmulatedTill
from terminal.app import SETTLED_STATES
from terminal.checkout.table import CheckoutState

S = CheckoutState
PIN_CARD = "pin-required"  # online PIN: the issuer approves only with a PIN block that verifies


def test_the_pin_card_needs_its_pin_block_at_the_issuer() -> None:
    # What makes the tests below meaningful: an approval of this card proves DE 52 went out.
    assert get_card(PIN_CARD).cvm.value == "online-pin"


def test_no_completed_sale_keeps_card_data(till: EmulatedTill) -> None:
    reader = till.emulators.card_reader
    assert reader is not None
    for card in (PIN_CARD, "approved", "declined"):
        reader.present(card)
        till.sale(1500)
    sales = till.flow.completed
    assert [s.outcome for s in sales] == ["APPROVED", "APPROVED", "DECLINED"]
    assert till.flow.sale is None
    for sale in sales:
        assert sale.card is None, f"{sale.txn_id} ({sale.outcome}) still holds its card read"
        assert sale.pin_block is None, f"{sale.txn_id} ({sale.outcome}) still holds its PIN block"


def test_the_pin_block_is_dropped_once_the_request_is_built(till: EmulatedTill) -> None:
    host, reader = till.emulators.host, till.emulators.card_reader
    assert host is not None and reader is not None
    host.answer_late(1)  # the host books the sale and holds its answer: the till waits in AUTHORIZING
    reader.present(PIN_CARD)
    sale = till.flow.begin_sale(1500)
    assert till.runtime.run_until(lambda: till.flow.state is S.AUTHORIZING)
    row = till.journal.get(sale.txn_id)
    assert sale.record is not None and row is not None and row.state == "SENT"  # the request is out
    assert sale.pin_block is None, "the PIN block outlived the request it was built into"
    assert sale.card is not None  # the card read is still needed (the chip's second GENERATE AC)

    assert host.release_late() == 1
    assert till.runtime.run_until(lambda: till.flow.state in SETTLED_STATES)
    assert (sale.outcome, sale.response_code) == ("APPROVED", "00")  # so the request did carry the PIN block
    assert sale.card is None and sale.pin_block is None
