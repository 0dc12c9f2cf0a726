"""QR payments end to end on virtual time (docs/qr-payments.md): every test payer of the wallet
gateway simulator (emulator/wallet/payers.py), faults of the gateway, merchant-presented orders,
voids and refunds, the unknowns resolved later, settlement and reconciliation. The wallet's
ledger is the truth about money: one effect per order, whatever the path."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from emulator.wallet.ledger import Order
from emulator.wallet.payers import payment_code as payer_code
from sim.wiring import EmulatedTill, build_emulated_till
from terminal.checkout.table import CheckoutState
from terminal.clock import FakeClock
from terminal.errors import InputError

S = CheckoutState


@pytest.fixture
def till(clock: FakeClock, var_dir: Path) -> Iterator[EmulatedTill]:
    with build_emulated_till(clock=clock, var_dir=var_dir) as t:
        yield t


def drive(till: EmulatedTill, clock: FakeClock, done: Callable[[], bool], *, limit_s: float = 600.0) -> None:
    """Run, moving virtual time to each next deadline, until `done()` (at most `limit_s` on)."""
    start = clock.now()
    while not till.runtime.run_until(done, io_wait=0.01):
        due = clock.next_deadline()
        assert due is not None and due - start <= limit_s, f"stuck in {till.flow.state.name}"
        clock.advance(max(0.0, due - clock.now()))


def pay(till: EmulatedTill, clock: FakeClock, amount: int, suffix: str, channel: str = "wechat"):  # type: ignore[no-untyped-def]
    sale = till.sale(amount, tender="qr")
    assert till.flow.state is S.SCANNING
    assert till.flow.enter_code(payer_code(suffix, channel))
    drive(till, clock, lambda: till.flow.state is S.IDLE)
    return sale


def wallet_order(till: EmulatedTill, txn_id: str):  # type: ignore[no-untyped-def]
    order = till.journal.qr_order(txn_id)
    assert order is not None
    assert till.emulators.wallet is not None
    return order, till.emulators.wallet.gateway.ledger.get(order.order_no)


def net_fen(till: EmulatedTill, txn_id: str) -> int:
    _, at_wallet = wallet_order(till, txn_id)
    return 0 if at_wallet is None or not at_wallet.paid else at_wallet.amount_fen - at_wallet.refunded_fen


@pytest.mark.parametrize(("suffix", "channel"), [("00", "wechat"), ("00", "alipay"), ("00", "unionpay")])
def test_a_code_that_pays_at_once_prints_both_qr_slips(till: EmulatedTill, clock: FakeClock, suffix: str,
                                                       channel: str) -> None:
    sale = pay(till, clock, 1234, suffix, channel)
    assert sale.outcome == "APPROVED"
    order, _ = wallet_order(till, sale.txn_id)
    assert (order.status, order.channel) == ("PAID", channel) and order.wallet_order_no
    assert net_fen(till, sale.txn_id) == 1234
    assert [c.copy.value for c in sale.printed] == ["merchant", "cardholder"]
    printer = till.emulators.printer
    text = printer.pages[-1].text
    name = {"wechat": "微信支付", "alipay": "支付宝", "unionpay": "云闪付"}[channel]
    assert "扫码支付凭证" in text and name in text and "客户存根" in text and order.order_no in text
    assert payer_code(suffix, channel) not in text  # the one-time code is masked on paper too


@pytest.mark.parametrize(("suffix", "why", "paid_after_s"), [
    ("01", "password", 10.0), ("02", "slow password", 25.0), ("09", "HTTP 202 in progress", 10.0)])
def test_a_customer_entering_a_password_is_queried_until_paid(till: EmulatedTill, clock: FakeClock, suffix: str,
                                                              why: str, paid_after_s: float) -> None:
    started = clock.now()
    sale = pay(till, clock, 2000, suffix)
    assert sale.outcome == "APPROVED", why
    assert paid_after_s <= clock.now() - started < paid_after_s + 6  # found by the next query, not later
    history = [h["status"] for h in till.journal.qr_history(sale.txn_id)]
    assert history[0] == "PAYING" and history[-1] == "PAID" and "USERPAYING" in history
    assert net_fen(till, sale.txn_id) == 2000


@pytest.mark.parametrize(("suffix", "reason"), [("04", "余额不足"), ("05", "")])
def test_a_definite_failure_shows_the_reason_and_charges_nothing(till: EmulatedTill, clock: FakeClock, suffix: str,
                                                                 reason: str) -> None:
    pages = len(till.emulators.printer.pages)
    sale = pay(till, clock, 500, suffix)
    assert sale.outcome == "DECLINED" and reason in (sale.reason or "")
    assert till.journal.get(sale.txn_id).state == "DECLINED"  # type: ignore[union-attr]
    assert net_fen(till, sale.txn_id) == 0
    assert len(till.emulators.printer.pages) == pages  # shown, not printed
    assert any("交易失败" in line or "DECLINED" in line for line in sale.messages)


def test_a_payer_who_never_pays_is_reversed_not_before_15_s_and_not_charged(till: EmulatedTill,
                                                                             clock: FakeClock) -> None:
    started = clock.now()
    sale = pay(till, clock, 800, "03")
    assert sale.outcome == "DECLINED"
    order, at_wallet = wallet_order(till, sale.txn_id)
    assert order.status == "CLOSED" and at_wallet is not None and not at_wallet.paid
    reversing = [h for h in till.journal.qr_history(sale.txn_id) if h["status"] == "REVERSING"]
    assert reversing and clock.now() - started >= 30.0  # gave up at give_up_s, then reversed


def test_the_lost_answer_is_found_by_a_query_and_charged_once(till: EmulatedTill, clock: FakeClock) -> None:
    sale = pay(till, clock, 4321, "06")
    assert sale.outcome == "APPROVED"
    assert net_fen(till, sale.txn_id) == 4321
    assert "QUERYING" in [h["status"] for h in till.journal.qr_history(sale.txn_id)]


def test_a_payment_that_lands_at_the_reverse_is_recorded_as_a_refund(till: EmulatedTill, clock: FakeClock) -> None:
    sale = pay(till, clock, 990, "07")
    assert sale.outcome == "REFUNDED"  # not a failure: the customer paid, the money went back
    order, at_wallet = wallet_order(till, sale.txn_id)
    assert order.status == "REFUNDED" and till.journal.get(sale.txn_id).state == "REVERSED"  # type: ignore[union-attr]
    assert at_wallet is not None and at_wallet.paid and at_wallet.refunded_fen == 990
    assert "已退款" in till.emulators.printer.pages[-1].text


def test_the_reverse_is_repeated_while_the_gateway_says_recall(till: EmulatedTill, clock: FakeClock) -> None:
    sale = pay(till, clock, 300, "08")
    assert sale.outcome == "DECLINED"
    _, at_wallet = wallet_order(till, sale.txn_id)
    # Two reverses answered recall=Y, the third closed it (reverse_max_tries = 3).
    assert at_wallet is not None and at_wallet.reverse_tries == 2 and not at_wallet.paid
    assert at_wallet.state.value == "REVOKED"


def test_a_system_error_on_a_paid_order_is_cleared_up_by_the_query(till: EmulatedTill, clock: FakeClock) -> None:
    sale = pay(till, clock, 1500, "10")
    assert sale.outcome == "APPROVED" and net_fen(till, sale.txn_id) == 1500


@pytest.mark.parametrize("text", ["hello", "1234", "164567890123456789", "https://example.com/x", "１３４５６７８"])
def test_anything_but_a_payment_code_is_refused_before_anything_leaves(till: EmulatedTill, text: str) -> None:
    gateway = till.emulators.wallet.gateway  # type: ignore[union-attr]
    requests = gateway.requests
    till.sale(100, tender="qr")
    assert till.flow.enter_code(text) is False
    assert till.flow.state is S.SCANNING and gateway.requests == requests
    assert "不是付款码" in till.flow.sale.messages[-1]  # type: ignore[union-attr]
    assert till.journal.qr_rows() == []
    till.flow.cancel_sale("customer left")


def test_a_code_scanned_while_waiting_for_a_card_pays_by_qr(till: EmulatedTill, clock: FakeClock) -> None:
    sale = till.sale(2500)  # card tender: the reader waits
    assert till.flow.state is S.AWAITING_CARD
    till.enter_code(payer_code("00", "alipay"))
    drive(till, clock, lambda: till.flow.state is S.IDLE)
    assert sale.outcome == "APPROVED" and wallet_order(till, sale.txn_id)[0].channel == "alipay"


def test_no_code_in_time_cancels_and_records_why(till: EmulatedTill, clock: FakeClock) -> None:
    sale = till.sale(100, tender="qr")
    drive(till, clock, lambda: till.flow.state is S.IDLE)
    assert sale.outcome == "CANCELLED" and "no payment code" in (sale.cancel_reason or "")
    assert till.journal.cancellations()[-1]["at_state"] == "SCANNING"


def test_a_silent_wallet_leaves_the_order_pending_and_idle_resolves_it_later(till: EmulatedTill,
                                                                           clock: FakeClock) -> None:
    peer = till.emulators.wallet
    assert peer is not None
    peer.set_fault("error500", 1000)  # every answer a 500: never clear
    sale = pay(till, clock, 777, "00")
    assert sale.outcome == "PENDING"
    order, _ = wallet_order(till, sale.txn_id)
    assert order.status == "UNKNOWN" and till.journal.get(sale.txn_id).state == "SENT"  # type: ignore[union-attr]
    assert "待确认" in till.emulators.printer.pages[-1].text
    card = till.sale(100, tender="qr")  # an unknown QR order blocks nothing
    till.flow.cancel_sale("test")
    assert card.outcome == "CANCELLED"
    peer.clear_faults()
    drive(till, clock, lambda: not till.journal.qr_unresolved(), limit_s=300)
    order, at_wallet = wallet_order(till, sale.txn_id)
    state = till.journal.get(sale.txn_id).state  # type: ignore[union-attr]
    # Whatever the gateway had booked, the journal now says the same: one effect, never lost.
    assert (state == "APPROVED") == (at_wallet is not None and at_wallet.paid and not at_wallet.refunded_fen)
    assert net_fen(till, sale.txn_id) == (777 if state == "APPROVED" else 0)


def test_power_lost_while_the_customer_pays_is_resolved_at_the_next_boot(clock: FakeClock, var_dir: Path) -> None:
    with build_emulated_till(clock=clock, var_dir=var_dir) as till:
        peer = till.emulators.wallet
        assert peer is not None
        sale = till.sale(6000, tender="qr")
        till.flow.enter_code(payer_code("01"))  # password: USERPAYING, pays 10 s after the pay
        till.runtime.run_until(lambda: till.flow.state is S.QR_POLLING, io_wait=0.01)
        order_no = wallet_order(till, sale.txn_id)[0].order_no
        # power goes here; the gateway does not care
    clock.advance(20.0)
    peer.advance(20.0)
    with build_emulated_till(clock=clock, var_dir=var_dir, wallet_peer=peer) as again:
        drive(again, clock, lambda: not again.journal.qr_unresolved())
        record = again.journal.get(sale.txn_id)
        assert record is not None and record.state == "APPROVED"  # paid while the till was off
        ledger = peer.gateway.ledger
        assert ledger.get(order_no).amount_fen == 6000  # type: ignore[union-attr]
        assert [o.order_no for o in ledger.orders.values() if o.paid] == [order_no]  # never paid twice


def test_power_lost_before_the_pay_answer_leaves_no_charge_behind(clock: FakeClock, var_dir: Path) -> None:
    with build_emulated_till(clock=clock, var_dir=var_dir) as till:
        peer = till.emulators.wallet
        assert peer is not None
        sale = till.sale(900, tender="qr")
        till.flow.enter_code(payer_code("03"))  # never pays: the order waits at the gateway
        till.runtime.run_until(lambda: till.flow.state is S.QR_POLLING, io_wait=0.01)
    with build_emulated_till(clock=clock, var_dir=var_dir, wallet_peer=peer) as again:
        drive(again, clock, lambda: not again.journal.qr_unresolved())
        assert again.journal.get(sale.txn_id).state == "DECLINED"  # type: ignore[union-attr]
        assert not any(o.paid for o in peer.gateway.ledger.orders.values())


def test_merchant_presented_code_paid_by_the_customer(till: EmulatedTill, clock: FakeClock) -> None:
    sale = till.flow.begin_sale(5000, tender="qr-merchant")
    till.runtime.run_until(lambda: bool(till.flow.sale and till.flow.sale.qr_order
                                        and till.flow.sale.qr_order.code_url), io_wait=0.01)
    assert sale.qr_image is not None and sale.qr_image.read_bytes().startswith(b"\x89PNG")
    assert "扫码付款" in till.emulators.printer.pages[-1].text  # the code on a slip
    clock.advance(4.0)
    assert till.emulators.wallet.gateway.pay_order(sale.qr_order.order_no, "oUpF8uMuAJO_M2pxb1Q9zNjWeS6o") == "paid"  # type: ignore[union-attr]
    drive(till, clock, lambda: till.flow.state is S.IDLE)
    assert sale.outcome == "APPROVED" and net_fen(till, sale.txn_id) == 5000


def test_merchant_code_not_paid_in_time_is_closed(till: EmulatedTill, clock: FakeClock) -> None:
    started = clock.now()
    sale = till.flow.begin_sale(700, tender="qr-merchant")
    drive(till, clock, lambda: till.flow.state is S.IDLE)
    assert sale.outcome == "DECLINED" and wallet_order(till, sale.txn_id)[0].status == "CLOSED"
    assert clock.now() - started >= 18 * 3.0


def test_a_payment_after_the_close_is_refunded_by_the_gateway_never_lost(till: EmulatedTill,
                                                                       clock: FakeClock) -> None:
    sale = till.flow.begin_sale(800, tender="qr-merchant")
    till.runtime.run_until(lambda: till.flow.state is S.QR_SHOWING and bool(till.flow.sale.qr_order.code_url),  # type: ignore[union-attr]
                           io_wait=0.01)
    till.flow.cancel_sale("customer left", actor="cashier")
    drive(till, clock, lambda: till.flow.state is S.IDLE)
    assert sale.outcome == "DECLINED" and net_fen(till, sale.txn_id) == 0
    gateway = till.emulators.wallet.gateway  # type: ignore[union-attr]
    assert "refunded" in gateway.pay_order(sale.qr_order.order_no)  # type: ignore[union-attr]
    assert net_fen(till, sale.txn_id) == 0


def test_refund_and_void_of_qr_payments_go_to_the_wallet_once(till: EmulatedTill, clock: FakeClock) -> None:
    paid = pay(till, clock, 3000, "00")
    refund = till.refund(paid.txn_id, 1000, supervisor="supervisor-1", pin="8888", reason="goods back")
    drive(till, clock, lambda: till.flow.state is S.IDLE)
    assert refund.outcome == "APPROVED" and net_fen(till, paid.txn_id) == 2000
    with pytest.raises(InputError):
        till.void(paid.txn_id, supervisor="supervisor-1", pin="8888", reason="partly refunded")
    other = pay(till, clock, 450, "00", "alipay")
    void = till.void(other.txn_id, supervisor="supervisor-1", pin="8888", reason="wrong amount")
    drive(till, clock, lambda: till.flow.state is S.IDLE)
    assert void.outcome == "APPROVED" and net_fen(till, other.txn_id) == 0
    assert wallet_order(till, void.txn_id)[0].paid_order_no == wallet_order(till, other.txn_id)[0].order_no


def test_a_receipt_lookup_qr_finds_its_transaction(till: EmulatedTill, clock: FakeClock) -> None:
    sale = pay(till, clock, 1200, "00")
    url = str(till.terminal["receipts"]["lookup_url"]).format(terminal_id=till.terminal["terminal_id"],
                                                              txn_id=sale.txn_id)
    record = till.flow.lookup(url)
    assert record is not None and record.txn_id == sale.txn_id
    assert till.flow.lookup(f"{record.stan:06d}") == record
    assert till.flow.lookup("not a receipt") is None


def test_settlement_shows_both_channels_and_the_next_day_reconciles(till: EmulatedTill, clock: FakeClock) -> None:
    reader = till.emulators.card_reader
    reader.present("approved")
    card = till.sale(1000)
    assert card.outcome == "APPROVED"
    paid = pay(till, clock, 2000, "00")
    pay(till, clock, 300, "04")  # failed: in the success rate, not the money
    till.settle(supervisor="supervisor-1", pin="8888")
    drive(till, clock, lambda: till.flow.state is S.IDLE)
    slip = till.emulators.printer.pages[-1].text
    assert "结算单" in slip and "扫码支付 QR PAYMENTS" in slip and "微信支付" in slip and "50% of 2" in slip
    assert till.journal.qr_rows() == [] and till.journal.get(paid.txn_id) is None  # archived, off the journal
    clock.advance(86_400.0)  # the statement of the day is ready the next morning
    drive(till, clock, lambda: till.journal.qr_reconciled_through() > 0, limit_s=90_000)
    result = till.flow.last_reconciliation
    assert result is not None and result.matched == 1 and not result.problems  # found in the archive


def test_reconciliation_reports_what_only_one_side_has(till: EmulatedTill, clock: FakeClock) -> None:
    paid = pay(till, clock, 2000, "00")
    _, at_wallet = wallet_order(till, paid.txn_id)
    assert at_wallet is not None
    at_wallet.amount_fen = 2100  # the wallet's books disagree
    assert till.emulators.wallet is not None and paid.qr_order is not None
    gateway = till.emulators.wallet.gateway
    ghost = Order(order_no=paid.qr_order.order_no[:-6] + "999999", amount_fen=50, kind="micropay",
                  channel="wechat", terminal_id="", at=gateway.now)
    gateway.ledger.book(ghost).paid_at = gateway.now  # a payment the terminal never made
    clock.advance(86_400.0)
    drive(till, clock, lambda: till.journal.qr_reconciled_through() > 0, limit_s=90_000)
    result = till.flow.last_reconciliation
    assert result is not None and sorted(f.kind for f in result.problems) == ["amount_differs", "only_wallet"]
    kinds = [i["kind"] for i in till.journal.exception_report()]
    assert "reconcile_amount_differs" in kinds and "reconcile_only_wallet" in kinds


def test_a_terminal_without_a_wallet_refuses_qr_with_a_clear_message(clock: FakeClock, var_dir: Path) -> None:
    with build_emulated_till(clock=clock, var_dir=var_dir, overrides={"wallet.url": ""}) as till:
        with pytest.raises(InputError, match="扫码支付不可用"):
            till.sale(100, tender="qr")
        with pytest.raises(InputError, match="unknown tender"):
            till.sale(100, tender="cash")


def test_the_emulated_scanner_reads_the_customers_code(till: EmulatedTill, clock: FakeClock) -> None:
    scanner = till.emulators.scanner
    assert scanner is not None
    sale = till.sale(1888, tender="qr")
    assert scanner.scan(payer_code("00"), "qr")
    drive(till, clock, lambda: till.flow.state is S.IDLE)
    assert sale.outcome == "APPROVED" and net_fen(till, sale.txn_id) == 1888


def test_a_scanned_barcode_that_is_no_payment_code_is_shown_and_ignored(till: EmulatedTill,
                                                                         clock: FakeClock) -> None:
    scanner = till.emulators.scanner
    sale = till.sale(100, tender="qr")
    scanner.scan("6901234567892", "ean13")  # a product's EAN-13
    drive(till, clock, lambda: any("不是付款码" in m for m in sale.messages), limit_s=5)
    assert till.flow.state is S.SCANNING and till.journal.qr_rows() == []
    scanner.scan(payer_code("00"), "code128")  # a phone's code as a Code 128 barcode pays too
    drive(till, clock, lambda: till.flow.state is S.IDLE)
    assert sale.outcome == "APPROVED"


def test_the_scanner_reads_the_lookup_qr_off_a_printed_receipt(till: EmulatedTill, clock: FakeClock,
                                                               tmp_path: Path) -> None:
    sale = pay(till, clock, 1200, "00")
    png = tmp_path / "receipt.png"
    till.emulators.printer.pages[-1].save_png(png)  # the customer's copy, as a camera would see it
    found = till.emulators.scanner.scan_image(png)
    assert found, "the receipt's QR was decoded"
    drive(till, clock, lambda: till.flow.looked_up is not None, limit_s=5)
    assert till.flow.looked_up.txn_id == sale.txn_id  # type: ignore[union-attr]


def test_every_decided_qr_payment_has_an_e_receipt_with_its_slip_fields(till: EmulatedTill, clock: FakeClock,
                                                                        var_dir: Path) -> None:
    import json

    sale = pay(till, clock, 1234, "00")
    doc = json.loads((var_dir / "receipts" / f"{sale.txn_id}.json").read_text(encoding="utf-8"))
    order, _ = wallet_order(till, sale.txn_id)
    assert doc["order_no"] == order.order_no and doc["status"] == "PAID" and doc["amount_minor"] == 1234
    assert doc["wallet_order_no"] == order.wallet_order_no and doc["channel"] == "wechat"
    assert payer_code("00") not in json.dumps(doc)  # masked payer only
    assert doc["lookup"].endswith(sale.txn_id)


def test_an_answer_for_another_amount_decides_nothing(till: EmulatedTill, clock: FakeClock) -> None:
    from drivers.wallet.events import TradeState, WalletAnswer

    sale = till.sale(500, tender="qr")
    till.flow.enter_code(payer_code("03"))  # never pays: the terminal keeps asking
    till.runtime.run_until(lambda: till.flow.state is S.QR_POLLING, io_wait=0.01)
    order = sale.qr_order
    assert order is not None
    forged = WalletAnswer(op="query", order_no=order.order_no, state=TradeState.SUCCESS, amount_fen=5, channel="wechat")
    till.flow.handle(forged)  # signed, but for 0.05 of a 5.00 sale
    assert till.flow.state is S.QR_POLLING
    assert "qr_answer_refused" in [i["kind"] for i in till.journal.exception_report()]
    drive(till, clock, lambda: till.flow.state is S.IDLE)
    assert sale.outcome == "DECLINED" and net_fen(till, sale.txn_id) == 0


def test_qr_void_same_day_and_refund_within_30_days(till: EmulatedTill, clock: FakeClock) -> None:
    paid = pay(till, clock, 3000, "00")
    clock.advance(86_400.0)  # the next day
    with pytest.raises(InputError, match="same day"):
        till.void(paid.txn_id, supervisor="supervisor-1", pin="8888", reason="next day")
    clock.advance(30 * 86_400.0)
    with pytest.raises(InputError, match="30 days"):
        till.refund(paid.txn_id, 100, supervisor="supervisor-1", pin="8888", reason="too late")
