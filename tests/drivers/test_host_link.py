"""The terminal's host client against the acquirer simulator on 127.0.0.1, plus the builders."""

from __future__ import annotations

import contextlib
import select
import socket
from collections.abc import Iterator
from datetime import datetime

import pytest

from drivers.acquirer.codec import AcquirerCodec
from drivers.acquirer.driver import AcquirerDriver, HostLinkError
from drivers.acquirer.events import HostMessage
from drivers.card_reader.events import EntryMode, StartRead
from drivers.errors import RemoteProtocolError
from drivers.events import DeviceFault, FaultKind, Role
from drivers.sensitive import Secret
from emulator.acquirer.simulator import AcquirerSimulator
from emulator.card_reader.cards import TestCard, get_card
from emulator.card_reader.emv import field_55, first_ac
from terminal.host.messages import parse_sale_response, sale_request

WAIT = 5.0  # an upper bound on I/O waits; a passing test never reaches it
TERMINAL = "TERM0001"
WHEN = datetime(2025, 1, 15, 14, 30, 15)
HOST_NOW = datetime(2025, 1, 15, 14, 30, 16)  # the simulator's clock, fixed for exact assertions


def _url(address: tuple[str, int]) -> str:
    return f"tcp://{address[0]}:{address[1]}"


def _icc(card: TestCard, amount: int, atc: int = 1) -> bytes:
    """Field 55 as the card would give it: a real ARQC the issuer can verify (each read its own ATC)."""
    read = StartRead(amount_minor=amount, currency="156", modes=frozenset({EntryMode.CHIP}), timeout_s=30)
    return field_55(first_ac(card, read, country="156", today=WHEN.date(), atc=atc), contactless=False)


def _sale(card: str = "approved", *, stan: int = 1, amount: int = 12500, mode: str = "chip") -> HostMessage:
    c = get_card(card)
    return sale_request(
        stan=stan,
        amount_minor=amount,
        pan=Secret(c.pan),
        entry_mode=mode,
        expiry=Secret(c.expiry),
        track2=Secret(c.track2) if mode == "swipe" else None,
        icc_data=Secret(_icc(c, amount, atc=stan)) if mode == "chip" else None,
        pan_sequence=c.pan_sequence,
        terminal_id=TERMINAL,
        merchant_id="MERCHANT0000001",
        currency="156",
        batch=1,
        when=WHEN,
    )


def _exchange(client: AcquirerDriver, request: HostMessage) -> HostMessage:
    client.send(request)
    for _ in range(100):  # bounded: each round either gets bytes or times out at WAIT
        assert client.wait_readable(WAIT), "the simulator did not answer"
        answers = client.receive_now()
        if answers:
            assert len(answers) == 1
            return answers[0]
    raise AssertionError("no complete answer")


@pytest.fixture
def simulator() -> Iterator[AcquirerSimulator]:
    with AcquirerSimulator(now=lambda: HOST_NOW) as sim:
        yield sim
    assert not sim.internal_errors


@pytest.fixture
def client(simulator: AcquirerSimulator) -> Iterator[AcquirerDriver]:
    with AcquirerDriver(_url(simulator.address), connect_timeout=WAIT) as c:
        yield c


def test_approved_card(simulator: AcquirerSimulator, client: AcquirerDriver) -> None:
    request = _sale()
    answer = _exchange(client, request)
    assert answer.mti == "0210" and answer.match_key == request.match_key
    assert "2" not in answer.fields and "35" not in answer.fields  # card data never comes back
    result = parse_sale_response(answer, sent_at=WHEN)
    assert result.approved and result.response_code == "00"
    assert result.auth_code is not None and len(result.auth_code) == 6
    assert result.rrn is not None and len(result.rrn) == 12
    assert result.host_time == HOST_NOW
    assert simulator.net_effect(TERMINAL, "000001") == 12500


def test_auth_codes_and_rrns_are_unique(client: AcquirerDriver) -> None:
    answers = [parse_sale_response(_exchange(client, _sale(stan=n))) for n in (1, 2, 3)]
    assert len({a.auth_code for a in answers}) == len({a.rrn for a in answers}) == 3


def test_declined_card(simulator: AcquirerSimulator, client: AcquirerDriver) -> None:
    result = parse_sale_response(_exchange(client, _sale("declined")))
    assert (result.approved, result.response_code, result.auth_code) == (False, "05", None)
    assert simulator.net_effect(TERMINAL, "000001") == 0
    assert [e.response_code for e in simulator.ledger] == ["05"]


def test_duplicate_is_replayed_and_booked_once(simulator: AcquirerSimulator, client: AcquirerDriver) -> None:
    first = _exchange(client, _sale(stan=7))
    again = _exchange(client, _sale(stan=7))
    assert again == first
    assert len(simulator.ledger) == 1
    assert simulator.net_effect(TERMINAL, "000007") == 12500


def test_held_response_then_retry(simulator: AcquirerSimulator, client: AcquirerDriver) -> None:
    simulator.hold_responses = True
    client.send(_sale(stan=9))
    assert client.receive_now() == []
    assert not client.wait_readable(0.05)  # an I/O wait, not a timing assertion
    simulator.hold_responses = False
    # Same connection, so the simulator handled the held request first: the retry is a duplicate.
    answer = _exchange(client, _sale(stan=9))
    assert answer.response_code == "00"
    assert len(simulator.ledger) == 1
    assert simulator.net_effect(TERMINAL, "000009") == 12500


@pytest.mark.parametrize("garbage", [b"\x00\x05hello", b"\xff\xff" + b"x" * 32], ids=["undecodable", "oversize"])
def test_garbage_drops_that_connection_only(
    simulator: AcquirerSimulator, client: AcquirerDriver, garbage: bytes
) -> None:
    with socket.create_connection(simulator.address, timeout=WAIT) as rogue:
        rogue.sendall(garbage)
        readable, _, _ = select.select([rogue], [], [], WAIT)
        assert readable
        with contextlib.suppress(ConnectionResetError):  # closed by the simulator, either way
            assert rogue.recv(64) == b""
    assert _exchange(client, _sale()).response_code == "00"


def test_host_going_away_is_a_link_error(simulator: AcquirerSimulator, client: AcquirerDriver) -> None:
    simulator.stop()
    assert client.wait_readable(WAIT)  # EOF is readable
    [fault] = client.poll()  # a fault is a fact the runtime routes, never an exception
    assert isinstance(fault, DeviceFault) and fault.device == "acquirer" and fault.kind is FaultKind.DISCONNECTED
    assert not client.connected and client.fileno() is None
    assert client.poll() == []  # reported once; a closed link has nothing to deliver
    refused = client.send(_sale())  # sending connects again: to a host that is gone
    assert isinstance(refused, DeviceFault) and "cannot connect" in refused.detail
    with pytest.raises(HostLinkError):
        client.wait_readable(0)  # waiting on a link that is not there is the caller's bug


def test_connect_refused_is_a_link_error() -> None:
    with socket.socket() as unused:
        unused.bind(("127.0.0.1", 0))  # bound, not listening: connections are refused
        client = AcquirerDriver(_url(unused.getsockname()), connect_timeout=WAIT)
        fault = client.connect()
    assert not client.connected
    assert isinstance(fault, DeviceFault) and fault.kind is FaultKind.DISCONNECTED and "refused" in fault.detail.lower()


def test_garbage_from_the_host_is_a_link_error() -> None:
    with socket.create_server(("127.0.0.1", 0)) as server:
        client = AcquirerDriver(_url(server.getsockname()), connect_timeout=WAIT)
        client.connect()
        peer, _ = server.accept()
        with peer:
            approval = AcquirerCodec(Role.DEVICE).send(HostMessage(mti="0810", fields={"39": "00"}))
            peer.sendall(approval + b"\xff\xff")
            assert client.wait_readable(WAIT)
            messages = client.receive_now()
            while not messages:  # the two writes may arrive apart
                assert client.wait_readable(WAIT)
                messages = client.receive_now()
            assert [m.mti for m in messages] == ["0810"]  # delivered before the failure
            [fault] = client.poll()
            assert isinstance(fault, DeviceFault) and "protocol violation" in fault.detail
        assert not client.connected


# -- decisions without sockets ------------------------------------------------------------------
def test_respond_unknown_pan_and_track2_only() -> None:
    sim = AcquirerSimulator()
    unknown = _sale()
    unknown = HostMessage(mti="0200", fields={**unknown.fields, "2": "4000000000000002"})
    assert (answer := sim.respond(unknown)) is not None and answer.response_code == "05"
    card = get_card("insufficient-funds")
    swipe = {k: v for k, v in _sale(stan=2).fields.items() if k not in ("2", "55")}
    swipe.update({"35": card.track2, "22": "021"})
    assert (answer := sim.respond(HostMessage(mti="0200", fields=swipe))) is not None
    assert answer.response_code == "30"  # DE 2 is mandatory in a sale, even beside track 2
    swipe["2"] = card.pan
    assert (answer := sim.respond(HostMessage(mti="0200", fields=swipe))) is not None
    assert answer.response_code == "51"
    bare = {k: _sale().fields[k] for k in ("11", "12", "13", "41", "42")}
    assert (echo := sim.respond(HostMessage(mti="0800", fields=bare))) is not None
    assert echo.mti == "0810" and echo.response_code == "00"  # no DE 3: an echo test
    assert sim.respond(HostMessage(mti="0800", fields={"11": "000003"})) is None  # no DE 41: unmatchable
    assert sim.respond(HostMessage(mti="0210", fields={})) is None


# -- builders -----------------------------------------------------------------------------------
@pytest.mark.parametrize(("mode", "de22"), [("chip", "051"), ("swipe", "021"), ("tap", "071")])
def test_sale_request_fields(mode: str, de22: str) -> None:
    request = _sale(mode=mode, stan=42, amount=99)
    assert request.mti == "0200"
    assert request.fields["3"] == "000000" and request.fields["22"] == de22
    assert (request.fields["4"], request.stan, request.fields["60"]) == ("000000000099", "000042", "000001")
    assert (request.fields["12"], request.fields["13"], request.fields["23"]) == ("143015", "0115", "001")
    assert ("35" in request.fields) == (mode == "swipe") and ("55" in request.fields) == (mode == "chip")
    assert get_card("approved").pan not in repr(request)


@pytest.mark.parametrize(
    "change",
    [{"stan": 0}, {"stan": 10**6}, {"amount_minor": 0}, {"entry_mode": "nfc"}, {"pan": Secret("4761x")}],
)
def test_sale_request_rejects_bad_input(change: dict[str, object]) -> None:
    args: dict[str, object] = {
        "stan": 1,
        "amount_minor": 100,
        "pan": Secret("4761739001010010"),
        "entry_mode": "tap",
        "expiry": None,
        "track2": None,
        "icc_data": None,
        "pan_sequence": None,
        "terminal_id": TERMINAL,
        "merchant_id": "MERCHANT0000001",
        "currency": "156",
        "batch": 1,
        "when": WHEN,
        **change,
    }
    with pytest.raises(ValueError) as info:
        sale_request(**args)  # type: ignore[arg-type]
    assert "4761" not in str(info.value)


def test_host_time_crosses_new_year() -> None:
    answer = HostMessage(mti="0210", fields={"39": "00", "12": "000005", "13": "0101"})
    result = parse_sale_response(answer, sent_at=datetime(2025, 12, 31, 23, 59, 58))
    assert result.host_time == datetime(2026, 1, 1, 0, 0, 5)
    assert parse_sale_response(answer).host_time is None
    bad_date = HostMessage(mti="0210", fields={"39": "00", "12": "000005", "13": "1345"})
    with pytest.raises(RemoteProtocolError):
        parse_sale_response(bad_date, sent_at=datetime(2025, 12, 31))
    with pytest.raises(RemoteProtocolError):
        parse_sale_response(HostMessage(mti="0210", fields={}))
    with pytest.raises(RemoteProtocolError):
        parse_sale_response(HostMessage(mti="0410", fields={"39": "00"}))
