"""The whole terminal against every emulator and the host simulator, on a FakeClock."""

from __future__ import annotations

from pathlib import Path

import pytest

from emulator.card_reader.cards import get_card
from sim.wiring import EmulatedTill, build_emulated_till
from terminal.checkout.table import CheckoutState
from terminal.clock import FakeClock
from terminal.errors import InputError

S = CheckoutState


def _emus(till: EmulatedTill):  # type: ignore[no-untyped-def]
    e = till.emulators
    assert e.card_reader is not None and e.printer is not None and e.host is not None
    return e.card_reader, e.printer, e.host


def test_approved_chip_sale_prints_merchant_then_cardholder_copy(till: EmulatedTill) -> None:
    reader, printer, host = _emus(till)
    reader.present("approved")
    sale = till.sale(1234)

    assert (sale.outcome, sale.response_code, till.flow.state) == ("APPROVED", "00", S.IDLE)
    record = till.journal.get(sale.txn_id)
    assert record is not None and record.state == "APPROVED" and record.auth_code and record.rrn
    assert host.net_effect(str(till.terminal["terminal_id"]), f"{record.stan:06d}") == 1234

    assert [p.copy.value for p in sale.printed] == ["merchant", "cardholder"]
    merchant, cardholder = (page.text for page in printer.pages[-2:])
    assert "商户存根" in merchant and "MERCHANT COPY" in merchant and "持卡人签名" in merchant
    assert "持卡人存根" in cardholder and "CARDHOLDER COPY" in cardholder and "持卡人签名" not in cardholder
    for text in (merchant, cardholder):
        assert "**** **** **** 0010" in text
        assert get_card("approved").pan not in text
        assert "￥12.34" in text and record.auth_code in text and f"{record.stan:06d}" in text
        assert str(till.terminal["merchant_id"]) in text and str(till.terminal["terminal_id"]) in text
        assert f"[QR: https://receipts.opentill.example/t/{till.terminal['terminal_id']}/{sale.txn_id}]" in text


def test_declined_sale_prints_one_declined_slip_and_charges_nothing(till: EmulatedTill) -> None:
    reader, printer, host = _emus(till)
    reader.present("declined")
    sale = till.sale(500)
    assert (sale.outcome, sale.response_code) == ("DECLINED", "05")
    record = till.journal.get(sale.txn_id)
    assert record is not None and record.state == "DECLINED"
    assert host.net_effect(str(till.terminal["terminal_id"]), f"{record.stan:06d}") == 0
    assert [p.copy.value for p in sale.printed] == ["cardholder"]
    assert "交易失败" in printer.pages[-1].text and "05" in printer.pages[-1].text


def test_swipe_sale_is_approved(till: EmulatedTill) -> None:
    reader, _, _ = _emus(till)
    reader.present("approved-swipe")
    sale = till.sale(100)
    assert sale.outcome == "APPROVED"
    record = till.journal.get(sale.txn_id)
    assert record is not None and record.entry_mode == "swipe"


def test_operator_cancels_while_waiting_for_a_card(till: EmulatedTill) -> None:
    sale = till.flow.begin_sale(999)
    assert not till.runtime.run_until(lambda: till.flow.state is not S.AWAITING_CARD, io_wait=0.01)
    till.flow.cancel_sale(reason="customer changed their mind", actor="cashier-7")
    assert (sale.outcome, till.flow.state) == ("CANCELLED", S.IDLE)
    [row] = till.journal.cancellations()
    assert row["txn_id"] == sale.txn_id and row["reason"] == "customer changed their mind"
    assert row["actor"] == "cashier-7" and row["at_state"] == "AWAITING_CARD"
    assert row["terminal_id"] == till.terminal["terminal_id"]
    assert till.journal.get(sale.txn_id) is None  # nothing went to the host


def test_no_card_in_time_cancels_on_the_virtual_clock(till: EmulatedTill, clock: FakeClock) -> None:
    sale = till.flow.begin_sale(999)
    assert not till.runtime.run_until(lambda: till.flow.state is S.IDLE, io_wait=0.01)
    clock.advance(float(till.terminal["limits"]["card_wait_timeout_s"]))
    assert till.runtime.run_until(lambda: till.flow.state is S.IDLE, io_wait=0.01)
    assert sale.outcome == "CANCELLED" and "no card presented in time" in (sale.cancel_reason or "")


def test_host_silence_is_outcome_unknown_with_a_queued_reversal(till: EmulatedTill, clock: FakeClock) -> None:
    reader, printer, host = _emus(till)
    host.hold_responses = True
    reader.present("approved")
    pages_before = len(printer.pages)
    sale = till.flow.begin_sale(2000)
    assert till.runtime.run_until(lambda: till.flow.state is S.AUTHORIZING)
    clock.advance(float(till.terminal["host"]["timeout_s"]))
    till.runtime.step()
    assert till.flow.state is S.OUTCOME_UNKNOWN and sale.outcome == "OUTCOME_UNKNOWN"
    assert till.journal.pending_reversals() == [sale.txn_id]
    assert len(printer.pages) == pages_before  # no receipt for a sale nobody approved
    with pytest.raises(InputError):
        till.flow.begin_sale(100)  # no new sale until the unknown outcome is resolved


def test_a_restart_reverses_sales_left_without_an_answer(clock: FakeClock, var_dir: Path) -> None:
    with build_emulated_till(clock=clock, var_dir=var_dir) as till:
        reader, _, host = _emus(till)
        host.hold_responses = True
        reader.present("approved")
        sale = till.flow.begin_sale(700)
        assert till.runtime.run_until(lambda: till.flow.state is S.AUTHORIZING)
        # power goes: the process state is dropped without the timeout ever firing
    with build_emulated_till(clock=clock, var_dir=var_dir) as again:  # ready for sale = the reversal delivered
        assert again.flow.state is S.IDLE and again.journal.pending_reversals() == []
        assert again.journal.count_by_state() == {"REVERSED": 1}
        assert again.journal.reversal_info(sale.txn_id)[0] == "DONE"


def test_no_pan_or_track_data_reaches_the_disk(till: EmulatedTill, var_dir: Path) -> None:
    reader, _, _ = _emus(till)
    for card in ("approved", "approved-swipe", "declined"):
        reader.present(card)
        till.sale(4321)
    canaries = [get_card(n).pan.encode() for n in ("approved", "approved-swipe", "declined")]
    canaries += [get_card("approved").track2.encode()]
    files = [p for p in var_dir.rglob("*") if p.is_file()]
    assert any(p.name.startswith("journal.sqlite3") for p in files)
    for path in files:
        data = path.read_bytes()
        for canary in canaries:
            assert canary not in data, f"card data found in {path.name}"
