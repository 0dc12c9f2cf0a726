"""Store and forward: with the host unreachable, small sales are approved offline within the floor
limits and forwarded in order when it is back; over a limit the sale is declined with the reason."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from emulator.acquirer.simulator import AcquirerSimulator
from sim.wiring import EmulatedTill, build_emulated_till
from terminal.checkout.table import LIMITS, CheckoutState
from terminal.clock import FakeClock
from tests.system.conftest import SUPERVISOR

S = CheckoutState


@pytest.fixture
def host() -> Iterator[AcquirerSimulator]:
    sim = AcquirerSimulator()
    sim.start()
    yield sim
    sim.stop()


@pytest.fixture
def till(clock: FakeClock, var_dir: Path, host: AcquirerSimulator) -> Iterator[EmulatedTill]:
    url = f"tcp://{host.address[0]}:{host.address[1]}"
    with build_emulated_till(clock=clock, var_dir=var_dir, overrides={"host.url": url}) as t:
        yield t


def _sell(till: EmulatedTill, card: str, amount: int) -> tuple[str | None, str | None, str | None]:
    assert till.emulators.card_reader is not None
    till.emulators.card_reader.present(card)
    sale = till.sale(amount, io_wait=2.0)
    return sale.outcome, sale.response_code, sale.reason


def _host_goes_away(till: EmulatedTill, host: AcquirerSimulator) -> int:
    port = host.address[1]
    host.stop()
    till.runtime.run_until(lambda: not till.host.connected, io_wait=2.0)  # the link notices
    return port


def test_offline_within_limits_then_forwarded_in_order(
    till: EmulatedTill, host: AcquirerSimulator, clock: FakeClock
) -> None:
    port = _host_goes_away(till, host)
    assert _sell(till, "approved-swipe", 10000)[:2] == ("APPROVED", "Y1")
    assert _sell(till, "approved", 5000)[:2] == ("APPROVED", "Y1")  # chip: the card agrees offline (Y3)
    assert till.journal.count_by_state() == {"OFFLINE": 2}
    assert len(till.journal.pending_advices()) == 2

    outcome, _, reason = _sell(till, "approved-swipe", 40000)  # over the 300.00 floor limit
    assert outcome == "DECLINED" and reason is not None and "floor limit" in reason
    outcome, _, reason = _sell(till, "pin-required", 1000)
    assert outcome == "DECLINED" and reason is not None and "online PIN" in reason

    back = AcquirerSimulator(port=port)  # the host comes back on the same address
    back.start()
    try:
        clock.advance(LIMITS.housekeeping_s)  # the idle terminal looks for what it owes
        assert till.runtime.run_until(lambda: not till.journal.pending_advices() and till.flow.state is S.IDLE,
                                      io_wait=2.0)
        assert till.journal.count_by_state() == {"APPROVED": 2}
        tid = str(till.terminal["terminal_id"])
        assert [e.amount_minor for e in back.ledger if e.terminal_id == tid] == [10000, 5000]  # in order
        result = till.settle(**SUPERVISOR, io_wait=2.0)
        assert result is not None and result.balanced and result.totals.sales_amount == 15000
    finally:
        back.stop()


def test_the_offline_count_limit_is_enforced(till: EmulatedTill, host: AcquirerSimulator) -> None:
    _host_goes_away(till, host)
    limit = int(till.terminal["offline"]["max_count"])
    for _ in range(limit):
        assert _sell(till, "approved-swipe", 100)[0] == "APPROVED"
    outcome, _, reason = _sell(till, "approved-swipe", 100)
    assert outcome == "DECLINED" and reason is not None and "waiting to be forwarded" in reason


def test_an_advice_the_host_refuses_is_an_exception_and_settlement_closes(
    till: EmulatedTill, host: AcquirerSimulator, clock: FakeClock
) -> None:
    """The host will not pay an offline sale: it leaves both sides' totals, goes on the exception
    report and the settlement slip, is never sent again, and the batch closes on both sides."""
    assert _sell(till, "approved-swipe", 2000)[:2] == ("APPROVED", "00")
    port = _host_goes_away(till, host)
    assert _sell(till, "approved-swipe", 10000)[:2] == ("APPROVED", "Y1")
    refused = till.journal.pending_advices()[0]
    back = AcquirerSimulator(port=port)
    back.refuse_advices("05")
    back.start()
    try:
        clock.advance(LIMITS.housekeeping_s)
        assert till.runtime.run_until(lambda: not till.journal.pending_advices() and till.flow.state is S.IDLE,
                                      io_wait=2.0)
        record = till.journal.get(refused)
        assert record is not None and record.state == "DECLINED" and record.response_code == "05"
        assert any(i["kind"] == "advice_refused" and i["txn_id"] == refused for i in till.journal.exception_report())
        tid = str(till.terminal["terminal_id"])
        batch = till.journal.current_batch()
        result = till.settle(**SUPERVISOR, io_wait=2.0)
        assert result is not None and result.balanced and result.definitive, result
        assert result.totals.sales_amount == 2000  # the host's totals and the terminal's: the refused sale in neither
        assert [r.txn_id for r in result.refused] == [refused]
        assert till.journal.settlement_owed() is None
        assert till.journal.current_batch() == batch + 1 == back.current_batch(tid)
        assert till.emulators.printer is not None
        slip = till.emulators.printer.pages[-1].text
        assert "ADVICE REFUSED" in slip and "100.00" in slip
        clock.advance(LIMITS.housekeeping_s)  # nothing is owed any more: the next sale runs
        assert _sell(till, "approved-swipe", 3000)[:2] == ("APPROVED", "00")
        assert len([e for e in back.ledger if e.terminal_id == tid]) == 1
    finally:
        back.stop()


def test_a_mac_error_on_an_advice_is_no_refusal_it_stays_owed_and_goes_after_a_sign_on(
    till: EmulatedTill, host: AcquirerSimulator, clock: FakeClock, caplog: pytest.LogCaptureFixture
) -> None:
    """A0 says the host cannot check our keys, not that it will not pay: sign on, send it again."""
    port = _host_goes_away(till, host)
    assert _sell(till, "approved-swipe", 10000)[:2] == ("APPROVED", "Y1")
    owed = till.journal.pending_advices()[0]
    tid = str(till.terminal["terminal_id"])
    back = AcquirerSimulator(port=port)
    back.refuse_mac(tid)
    back.start()
    try:
        clock.advance(LIMITS.housekeeping_s)
        assert till.runtime.run_until(lambda: "answered A0" in caplog.text and till.flow.state is S.IDLE,
                                      io_wait=2.0)
        record = till.journal.get(owed)
        # Not refused, not dropped: still owed, or already repeated after the new sign-on.
        assert record is not None and record.state in ("OFFLINE", "APPROVED"), record
        assert till.runtime.run_until(lambda: till.flow.signed_on, io_wait=2.0)  # new keys at once
        for _ in range(3):  # sign on, then the next round (after the retry wait)
            clock.advance(LIMITS.housekeeping_s + 60)
            till.runtime.run_until(lambda: not till.journal.pending_advices() and till.flow.state is S.IDLE,
                                   io_wait=2.0)
        record = till.journal.get(owed)
        assert record is not None and record.state == "APPROVED", record
        assert [e.amount_minor for e in back.ledger if e.terminal_id == tid] == [10000]
    finally:
        back.stop()
