"""The acquirer link over `emu://acquirer`: the AcquirerDriver on an in-process synchronous peer
(emulator/acquirer/peer.py) that answers with the Acquirer's decisions, no socket, no thread."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import datetime
from pathlib import Path

import pytest

from drivers.acquirer.driver import AcquirerDriver
from drivers.acquirer.events import HostMessage
from drivers.events import DeviceFault
from drivers.transport import attach_peer, detach_peer
from emulator.acquirer.core import Acquirer
from emulator.acquirer.peer import AcquirerPeer
from sim.wiring import build_emulated_till
from terminal.checkout.table import CheckoutState
from terminal.clock import FakeClock
from tests.drivers.test_host_link import TERMINAL, _sale
from tests.system.conftest import SUPERVISOR

HOST_NOW = datetime(2025, 1, 15, 14, 30, 16)


@pytest.fixture
def acquirer() -> Iterator[Acquirer]:
    host = Acquirer(now=lambda: HOST_NOW)
    yield host
    assert not host.internal_errors


@pytest.fixture
def link(acquirer: Acquirer) -> Iterator[AcquirerDriver]:
    url = attach_peer("acquirer", AcquirerPeer(acquirer))
    driver = AcquirerDriver(url)
    assert driver.connect() is None
    yield driver
    driver.close()
    detach_peer(url)


def _exchange(link: AcquirerDriver, request: HostMessage) -> HostMessage:
    assert link.send(request) is None
    assert link.expecting() and link.fileno() is None  # synchronous: nothing to select on
    assert link.wait_readable(0.0)  # ...and the answer is already there
    (answer,) = link.poll()
    assert isinstance(answer, HostMessage)
    assert not link.expecting()
    return answer


def test_a_sale_is_approved_through_the_in_process_peer(link: AcquirerDriver, acquirer: Acquirer) -> None:
    answer = _exchange(link, _sale("approved", stan=7, amount=12500))
    assert (answer.mti, answer.response_code, answer.stan, answer.terminal_id) == ("0210", "00", "000007", TERMINAL)
    assert answer.text("38") and answer.text("37")  # approval code and RRN
    assert acquirer.net_effect(TERMINAL, "000007") == 12500
    assert link.poll() == []  # nothing more


def test_a_resent_request_replays_its_answer_and_a_changed_one_is_a_duplicate(
    link: AcquirerDriver, acquirer: Acquirer
) -> None:
    first = _exchange(link, _sale("approved", stan=3, amount=500))
    again = _exchange(link, _sale("approved", stan=3, amount=500))
    assert again.response_code == first.response_code == "00" and again.text("38") == first.text("38")
    assert acquirer.net_effect(TERMINAL, "000003") == 500  # booked once
    other = _exchange(link, _sale("approved", stan=3, amount=700))
    assert other.response_code == "94"
    assert len(acquirer.ledger) == 1


def test_a_declining_host_and_a_reconnect_keep_the_same_books(link: AcquirerDriver, acquirer: Acquirer) -> None:
    acquirer.decline_next("51")
    assert _exchange(link, _sale("approved", stan=1)).response_code == "51"
    link.close()
    assert not link.connected
    assert _exchange(link, _sale("approved", stan=2)).response_code == "00"  # send() connects again
    assert [e.response_code for e in acquirer.ledger] == ["51", "00"]


def test_garbage_on_the_stream_loses_the_answer_not_the_link(acquirer: Acquirer) -> None:
    peer = AcquirerPeer(acquirer)
    url = attach_peer("acquirer", peer)
    try:
        link = AcquirerDriver(url)
        assert link.connect() is None
        peer.receive(b"\x00\x03abc")  # an undecodable body: the host drops that stream
        assert link.poll() == [] and peer.transmit() == b""
        assert _exchange(link, _sale("approved", stan=9)).response_code == "00"
        link.close()
    finally:
        detach_peer(url)


def test_an_unknown_emu_url_is_a_fault_not_a_crash() -> None:
    link = AcquirerDriver("emu://acquirer?instance=nobody")
    fault = link.connect()
    assert isinstance(fault, DeviceFault) and fault.device == "acquirer"
    assert isinstance(link.send(_sale()), DeviceFault)
    assert not link.connected


def test_an_emulated_till_over_emu_sells_and_settles(var_dir: Path) -> None:
    clock = FakeClock()
    with build_emulated_till(clock=clock, var_dir=var_dir, host_transport="emu") as till:
        assert till.emulators.host is None  # no TCP simulator, no thread
        host, reader = till.emulators.acquirer, till.emulators.card_reader
        assert host is not None and reader is not None and till.host.fileno() is None
        outcomes = []
        for card, amount in (("approved", 1000), ("declined", 500), ("approved-swipe", 250)):
            reader.present(card)
            outcomes.append(till.sale(amount, io_wait=2.0).outcome)
        assert outcomes == ["APPROVED", "DECLINED", "APPROVED"]
        assert till.flow.state is CheckoutState.IDLE
        tid = str(till.terminal["terminal_id"])
        assert host.batch_totals(tid, 1).sales_amount == 1250
        result = till.settle(**SUPERVISOR, io_wait=2.0)
        assert result is not None and result.balanced
        assert (result.totals.sales_count, result.totals.sales_amount) == (2, 1250)
        assert till.journal.current_batch() == 2
        assert len(host.settlements) == 1 and not host.internal_errors


def test_the_profile_can_name_the_in_process_host(var_dir: Path) -> None:
    with build_emulated_till(clock=FakeClock(), var_dir=var_dir, overrides={"host.url": "emu://acquirer"}) as till:
        assert till.emulators.host is None and till.emulators.acquirer is not None
        assert till.emulators.card_reader is not None
        till.emulators.card_reader.present("approved")
        assert till.sale(1234, io_wait=2.0).outcome == "APPROVED"
