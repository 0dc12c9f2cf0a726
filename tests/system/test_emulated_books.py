"""`persist_emulated_books` (what `till run` in emulator mode passes): the emulated acquirer and
wallet gateway keep their books under var/emulated/, so a till built again on the same var/ (a
restart) settles the batch it opened before with the host's own books — in balance, no upload —
and its QR orders are still known to the gateway."""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path

from emulator.wallet.payers import payment_code
from sim.wiring import EmulatedTill, build_emulated_till
from terminal.checkout.table import CheckoutState
from terminal.clock import FakeClock
from tests.system.conftest import SUPERVISOR


def _build(clock: FakeClock, var_dir: Path) -> EmulatedTill:
    return build_emulated_till(clock=clock, var_dir=var_dir, host_transport="emu", persist_emulated_books=True)


def _card_sale(till: EmulatedTill, amount: int) -> str:
    assert till.emulators.card_reader is not None
    till.emulators.card_reader.present("approved")
    sale = till.sale(amount, io_wait=2.0)
    assert sale.outcome == "APPROVED"
    record = till.journal.get(sale.txn_id)
    assert record is not None and record.auth_code is not None
    return record.auth_code


def test_the_batch_opened_before_a_restart_settles_in_balance_after_it(clock: FakeClock, var_dir: Path) -> None:
    with _build(clock, var_dir) as till:
        first_code = _card_sale(till, 1000)
        qr = till.sale(1234, tender="qr")
        assert till.flow.enter_code(payment_code("00"))
        till.wait(io_wait=2.0)
        assert qr.outcome == "APPROVED"
        order = till.journal.qr_order(qr.txn_id)
        assert order is not None
    assert (var_dir / "emulated" / "acquirer" / "acquirer.jsonl").is_file()

    later = FakeClock(clock.wall() + timedelta(minutes=5))
    with _build(later, var_dir) as till:  # the same var/: the same host and gateway
        assert till.emulators.acquirer is not None and till.emulators.wallet is not None
        assert int(_card_sale(till, 250)) == int(first_code) + 1  # auth codes go on
        at_wallet = till.emulators.wallet.gateway.ledger.get(order.order_no)
        assert at_wallet is not None and at_wallet.paid and at_wallet.amount_fen == 1234
        result = till.settle(**SUPERVISOR, io_wait=2.0)
        assert result is not None and result.balanced and result.uploaded == 0  # the host's own books agree
        assert (result.totals.sales_count, result.totals.sales_amount) == (2, 1250)
        assert till.flow.state is CheckoutState.IDLE and till.journal.current_batch() == 2


def test_without_the_flag_each_build_is_a_fresh_host(clock: FakeClock, var_dir: Path) -> None:
    with build_emulated_till(clock=clock, var_dir=var_dir, host_transport="emu") as till:
        _card_sale(till, 1000)
    assert not (var_dir / "emulated" / "acquirer").exists() and not (var_dir / "emulated" / "wallet").exists()
