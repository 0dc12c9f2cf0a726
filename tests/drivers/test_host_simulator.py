"""The acquirer simulator's network faults over a real 127.0.0.1 socket, with the terminal's
AcquirerDriver: latency, lost answers, late answers, dropped connections, and the entry point.

No test asserts a duration: waits are bounded by WAIT and only ever end early; a "nothing
arrived" check uses a short I/O wait against an answer that is held, never one on a timer."""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterator
from datetime import datetime
from typing import TypedDict

import pytest

from drivers.acquirer.driver import AcquirerDriver, HostLinkError
from drivers.acquirer.events import HostMessage
from drivers.sensitive import Secret
from emulator.acquirer.simulator import AcquirerSimulator, parse_listen, serve_forever_main
from emulator.card_reader.cards import get_card
from terminal.host.messages import echo_request, match, reversal_request, sale_request

WAIT = 5.0  # an upper bound on I/O waits; a passing test never reaches it
TID = "TERM0001"


class _Money(TypedDict):
    terminal_id: str
    merchant_id: str
    currency: str
    batch: int


MONEY: _Money = {"terminal_id": TID, "merchant_id": "MERCHANT0000001", "currency": "156", "batch": 1}
WHEN = datetime(2025, 1, 15, 14, 30, 15)


def _url(address: tuple[str, int]) -> str:
    return f"tcp://{address[0]}:{address[1]}"


def _sale(stan: int, amount: int = 1000) -> HostMessage:
    card = get_card("approved")
    return sale_request(
        stan=stan, amount_minor=amount, pan=Secret(card.pan), entry_mode="swipe", expiry=None,
        track2=Secret(card.track2), icc_data=None, pan_sequence=None, when=WHEN, **MONEY,
    )


def _reversal(stan: int, amount: int = 1000) -> HostMessage:
    return reversal_request(stan=stan, amount_minor=amount, reason="98", original_when=WHEN, **MONEY)


def _receive(client: AcquirerDriver) -> HostMessage:
    for _ in range(100):  # bounded: each round either gets bytes or fails at WAIT
        assert client.wait_readable(WAIT), "the simulator did not answer"
        messages = client.receive_now()
        if messages:
            assert len(messages) == 1
            return messages[0]
    raise AssertionError("no complete answer")


def _exchange(client: AcquirerDriver, request: HostMessage) -> HostMessage:
    client.send(request)
    answer = _receive(client)
    assert match(request, answer)
    return answer


def _nothing_pending(client: AcquirerDriver) -> bool:
    # An I/O wait, not a timing assertion: the answer is held or lost, not on a timer.
    return not client.wait_readable(0.05) and client.receive_now() == []


def _closed_by_host(client: AcquirerDriver) -> None:
    assert client.wait_readable(WAIT)  # EOF is readable
    with pytest.raises(HostLinkError):
        client.receive_now()
    assert not client.connected


@pytest.fixture
def simulator() -> Iterator[AcquirerSimulator]:
    with AcquirerSimulator(now=lambda: datetime(2025, 1, 15, 14, 30, 16)) as sim:
        yield sim
    assert not sim.internal_errors


@pytest.fixture
def client(simulator: AcquirerSimulator) -> Iterator[AcquirerDriver]:
    with AcquirerDriver(_url(simulator.address), connect_timeout=WAIT) as c:
        yield c


def test_latency_delays_but_delivers(simulator: AcquirerSimulator, client: AcquirerDriver) -> None:
    simulator.latency = 0.05
    assert simulator.latency == 0.05
    assert _exchange(client, _sale(1)).response_code == "00"
    with pytest.raises(ValueError):
        simulator.latency = -1


def test_latency_beyond_the_wait_answers_nothing_yet(simulator: AcquirerSimulator, client: AcquirerDriver) -> None:
    simulator.latency = 3600.0  # a timer that never fires in this test; stop() discards it
    client.send(_sale(1))
    assert _nothing_pending(client)
    simulator.latency = 0
    assert _exchange(client, echo_request(stan=2, when=WHEN, terminal_id=TID, merchant_id="MERCHANT0000001"))
    assert simulator.net_effect(TID, "000001") == 1000  # decided and booked all the same


def test_dropped_answer_then_reversal_nets_to_zero(simulator: AcquirerSimulator, client: AcquirerDriver) -> None:
    simulator.drop_responses(1)
    client.send(_sale(1))
    assert _nothing_pending(client)
    assert simulator.net_effect(TID, "000001") == 1000  # the host booked it; the answer was lost
    assert _exchange(client, _reversal(1)).response_code == "00"
    assert simulator.net_effect(TID, "000001") == 0
    assert _exchange(client, _sale(2)).response_code == "00"  # only one answer was dropped


def test_hold_responses(simulator: AcquirerSimulator, client: AcquirerDriver) -> None:
    simulator.hold_responses = True
    assert simulator.hold_responses
    client.send(_sale(1))
    client.send(_sale(2))
    assert _nothing_pending(client)
    simulator.hold_responses = False
    assert _exchange(client, _sale(1)).response_code == "00"  # the retry: replayed, booked once
    assert len(simulator.ledger) == 2


def test_late_approval_after_the_reversal(
    simulator: AcquirerSimulator, client: AcquirerDriver, caplog: pytest.LogCaptureFixture
) -> None:
    simulator.answer_late()  # held until released: the terminal gives up first
    sale = _sale(1)
    client.send(sale)
    assert _nothing_pending(client)
    reversal = _reversal(1)
    assert _exchange(client, reversal).mti == "0410"  # a later request is answered before the held one
    with caplog.at_level(logging.WARNING, logger="emulator.acquirer.simulator"):
        assert simulator.release_late() == 1
        late = _receive(client)
    assert match(sale, late) and not match(reversal, late) and late.response_code == "00"
    assert [(a.stan, a.mti) for a in simulator.late_approvals] == [("000001", "0210")]
    assert any("late approval" in r.getMessage() for r in caplog.records)
    assert simulator.net_effect(TID, "000001") == 0  # the reversal stands


def test_late_answer_after_a_delay(simulator: AcquirerSimulator, client: AcquirerDriver) -> None:
    simulator.answer_late(delay=0.05)
    assert _exchange(client, _sale(1)).response_code == "00"
    assert simulator.release_late() == 0 and simulator.late_approvals == ()


def test_a_late_answer_follows_the_terminal_to_its_new_connection(
    simulator: AcquirerSimulator, client: AcquirerDriver
) -> None:
    simulator.answer_late()
    client.send(_sale(1))
    assert _nothing_pending(client)
    assert simulator.drop_connections() == 1
    _closed_by_host(client)
    client.connect()
    _exchange(client, echo_request(stan=2, when=WHEN, terminal_id=TID, merchant_id="MERCHANT0000001"))
    simulator.release_late()
    assert _receive(client).stan == "000001"


def test_drop_connections_now(simulator: AcquirerSimulator, client: AcquirerDriver) -> None:
    _exchange(client, _sale(1))
    assert simulator.connection_count == 1
    assert simulator.drop_connections() == 1
    _closed_by_host(client)
    assert simulator.connection_count == 0
    client.connect()
    assert _exchange(client, _sale(1)).response_code == "00"  # the retry on a new link: replayed
    assert len(simulator.ledger) == 1


@pytest.mark.parametrize("processed", [True, False])
def test_drop_connection_on_next_request(simulator: AcquirerSimulator, client: AcquirerDriver, processed: bool) -> None:
    simulator.drop_connection_on_next_request(processed=processed)
    client.send(_sale(1))
    _closed_by_host(client)
    assert len(simulator.ledger) == (1 if processed else 0)
    client.connect()
    assert _exchange(client, _sale(1)).response_code == "00"
    assert len(simulator.ledger) == 1 and simulator.net_effect(TID, "000001") == 1000


def test_decline_while_serving(simulator: AcquirerSimulator, client: AcquirerDriver) -> None:
    simulator.decline_next("91")
    assert _exchange(client, _sale(1)).response_code == "91"
    simulator.refuse_mac()
    assert _exchange(client, _sale(2)).response_code == "A0"
    simulator.clear_faults()
    assert _exchange(client, _sale(2)).response_code == "00"


def test_controls_reject_bad_values(simulator: AcquirerSimulator) -> None:
    calls: list[Callable[[], None]] = [
        lambda: simulator.drop_responses(-1), lambda: simulator.answer_late(-1),
        lambda: simulator.answer_late(delay=-0.5),
    ]
    for call in calls:
        with pytest.raises(ValueError):
            call()


def test_controls_of_a_stopped_simulator_are_harmless() -> None:
    sim = AcquirerSimulator()
    assert (sim.drop_connections(), sim.release_late(), sim.connection_count) == (0, 0, 0)
    with pytest.raises(RuntimeError):
        _ = sim.address


def test_serve_forever_main(capsys: pytest.CaptureFixture[str]) -> None:
    sim = serve_forever_main("127.0.0.1:0")
    try:
        host, port = sim.address
        assert host == "127.0.0.1" and port > 0 and sim.url == f"tcp://127.0.0.1:{port}"
        with AcquirerDriver(_url(sim.address), connect_timeout=WAIT) as c:
            assert _exchange(c, _sale(1)).response_code == "00"
    finally:
        sim.stop()
    assert capsys.readouterr() == ("", "")


@pytest.mark.parametrize(
    ("listen", "expected"),
    [("127.0.0.1:8583", ("127.0.0.1", 8583)), ("[::1]:0", ("::1", 0)), ("localhost:1", ("localhost", 1))],
)
def test_parse_listen(listen: str, expected: tuple[str, int]) -> None:
    assert parse_listen(listen) == expected


@pytest.mark.parametrize("listen", ["8583", ":8583", "127.0.0.1:", "127.0.0.1:x", "127.0.0.1:70000"])
def test_parse_listen_rejects(listen: str) -> None:
    with pytest.raises(ValueError):
        parse_listen(listen)
