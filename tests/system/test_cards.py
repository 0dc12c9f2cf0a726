"""Every test card through the whole terminal: the outcome and response code a cashier would see,
and the money: what the host booked nets to the sale amount or to zero, never more."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from drivers.card_reader.events import StartRead
from emulator.card_reader.cards import get_card, load_catalogue
from sim.wiring import EmulatedTill, build_emulated_till
from terminal.checkout.table import CheckoutState
from terminal.clock import FakeClock
from tests.system.conftest import sign_on_pad

S = CheckoutState

# card -> (outcome, response code, what the host keeps)
EXPECTED: dict[str, tuple[str, str | None, str]] = {
    "approved": ("APPROVED", "00", "amount"),
    "approved-swipe": ("APPROVED", "00", "amount"),
    "approved-tap": ("APPROVED", "00", "amount"),
    "declined": ("DECLINED", "05", "nothing"),
    "insufficient-funds": ("DECLINED", "51", "nothing"),
    "wrong-pin": ("DECLINED", "55", "nothing"),
    "expired": ("DECLINED", "54", "nothing"),
    "pin-required": ("APPROVED", "00", "amount"),
    "signature-required": ("APPROVED", "00", "amount"),
    "chip-error-fallback": ("APPROVED", "00", "amount"),
    "removed-during-read": ("CANCELLED", None, "nothing"),
    "removed-before-second-ac": ("DECLINED", "00", "nothing"),  # approved, then reversed
    "tap-over-limit": ("APPROVED", "00", "amount"),
    "slow-card": ("APPROVED", "00", "amount"),
    "signature-tap": ("APPROVED", "00", "amount"),  # 免签 at its demo amount
}


def test_every_catalogue_card_has_an_expectation() -> None:
    assert set(EXPECTED) == set(load_catalogue())


@pytest.mark.parametrize("name", sorted(EXPECTED))
def test_card(name: str, till: EmulatedTill, clock: FakeClock) -> None:
    outcome, code, kept = EXPECTED[name]
    card = get_card(name)
    amount = card.demo_amount_minor or 1234
    assert till.emulators.card_reader is not None and till.emulators.host is not None
    till.emulators.card_reader.present(name)
    sale = till.sale(amount, io_wait=2.0)
    if till.flow.state is S.AWAITING_CARD and card.delay_s:  # a slow card answers after its delay
        clock.advance(card.delay_s)
        assert till.runtime.run_until(lambda: till.flow.state in (S.IDLE, S.SIGNATURE_REQUIRED), io_wait=2.0)
    if till.flow.state is S.SIGNATURE_REQUIRED:
        sign_on_pad(till, clock)  # 电签: the cardholder signs on the pad
        assert sale.signed

    assert (sale.outcome, sale.response_code) == (outcome, code), sale.reason or sale.messages
    assert till.flow.state is S.IDLE
    booked = sum(
        till.emulators.host.net_effect(str(till.terminal["terminal_id"]), f"{r[0]:06d}")
        for r in till.journal._db.execute("SELECT stan FROM transactions")
    )
    assert booked == (amount if kept == "amount" else 0)
    assert not till.journal.unresolved_reversals()
    if outcome == "CANCELLED":
        assert [c["txn_id"] for c in till.journal.cancellations()] == [sale.txn_id]


def test_three_wrong_pins_decline_with_the_right_message(till: EmulatedTill) -> None:
    assert till.emulators.card_reader is not None
    till.emulators.card_reader.present("wrong-pin")
    sale = till.sale(2000, io_wait=2.0)
    assert (sale.outcome, sale.response_code) == ("DECLINED", "55")
    assert sale.reason is not None and "密码错误次数超限" in sale.reason
    states = [r[0] for r in till.journal._db.execute("SELECT response_code FROM transactions ORDER BY stan")]
    assert states == ["55", "55", "55"]  # three tries, each its own host transaction
    assert sum("WRONG PIN" in m for m in sale.messages) == 2


def test_a_card_that_refuses_the_approval_is_reversed_and_slips_say_declined(till: EmulatedTill) -> None:
    assert till.emulators.card_reader is not None and till.emulators.printer is not None
    till.emulators.card_reader.present("removed-before-second-ac")
    sale = till.sale(3300, io_wait=2.0)
    assert sale.outcome == "DECLINED" and sale.reason == "card removed before completion"
    record = till.journal.get(sale.txn_id)
    assert record is not None and record.state == "REVERSED"
    assert [p.copy.value for p in sale.printed] == ["cardholder"]
    assert "交易失败" in till.emulators.printer.pages[-1].text


def test_each_read_signs_a_fresh_terminal_number_and_the_atc_survives_a_restart(
    clock: FakeClock, var_dir: Path,
) -> None:
    """Three identical sales used to give three identical ARQCs: ATC 0001 and a hashed 9F37 each time."""
    numbers: list[bytes] = []
    for _ in range(2):  # the emulated world starts twice on one var/
        with build_emulated_till(clock=clock, var_dir=var_dir) as till:
            reader = till.emulators.card_reader
            assert reader is not None
            for _ in range(2):
                reader.present("approved")
                assert till.sale(1234, io_wait=2.0).outcome == "APPROVED"
            numbers += [c.unpredictable_number for c in reader.commands if isinstance(c, StartRead)]
    assert len(numbers) == 4 and len(set(numbers)) == 4 and {len(n) for n in numbers} == {4}
    (state,) = var_dir.glob("emulated/*/atc.json")
    assert json.loads(state.read_text()) == {"approved": 4}
