"""Control lines of a running card-reader emulator: one line in, one `ok:`/`error:` line out."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from drivers.card_reader.codec import CardReaderCodec
from drivers.card_reader.events import CardRead, EntryMode, PinEntered, RequestPin, StartRead
from drivers.events import Role
from emulator.card_reader.control import COMMANDS
from emulator.card_reader.emulator import CardReaderEmulator
from emulator.control import apply as handle_line
from firmware_profiles import load_profile
from tests.support.depth import examples

PROFILE = load_profile("card_reader", "generic-pinpad")


@pytest.fixture
def emulator() -> CardReaderEmulator:
    return CardReaderEmulator(PROFILE)


def host_reads(emulator: CardReaderEmulator, host: CardReaderCodec) -> list[object]:
    host.receive_data(emulator.transmit())
    events: list[object] = []
    while (event := host.next_event()) is not None:
        events.append(event)
        emulator.receive(host.data_to_send())
    return events


@pytest.mark.parametrize(
    ("line", "reply"),
    [
        ("present approved chip", "ok: approved presented by chip"),
        ("present approved-swipe", "ok: approved-swipe presented by swipe"),
        ("remove", "ok: there was no card to remove"),
        ("pin 1234", "ok: PIN entered"),
        ("pin cancel", "ok: cancel pressed"),
        ("fault nak-storm", "ok: NAKing every frame until clear"),
        ("fault nak-storm 4", "ok: NAKing the next 4 frame(s)"),
        ("fault corrupt 2", "ok: the next 2 frame(s) from the reader will have a bad LRC"),
        ("fault silent", "ok: the reader answers nothing until clear"),
        ("fault disconnect", "ok: the reader is disconnected until clear"),
        ("clear", "ok: faults cleared"),
        ("advance 2.5", "ok: t=2.5s"),
        ("TICK 1", "ok: t=1s"),
    ],
)
def test_commands_reply_with_one_ok_line(emulator: CardReaderEmulator, line: str, reply: str) -> None:
    assert handle_line(emulator, line) == reply


@pytest.mark.parametrize(
    "line",
    [
        "", "   ", "fly away", "present", "present no-such-card", "present approved-swipe chip", "present a b c",
        "pin", "pin 12", "pin 12a4", "pin 1 2", "fault", "fault corrupt", "fault corrupt 0", "fault corrupt x",
        "fault nak-storm -1", "fault melt", "fault silent now", "advance", "advance soon", "advance -1",
        "advance 1e9", "advance nan",
    ],
)  # fmt: skip
def test_mistakes_are_error_replies(emulator: CardReaderEmulator, line: str) -> None:
    reply = handle_line(emulator, line)
    assert reply.startswith("error: ") and "\n" not in reply


@pytest.mark.parametrize("line", ["pin 98765", "9876", "pim 98765", "pin 98765 98765", "advance 98765x"])
def test_replies_never_echo_a_pin(emulator: CardReaderEmulator, line: str) -> None:
    assert "98765" not in handle_line(emulator, line) and "9876" not in handle_line(emulator, line)


def test_faults_show_in_status_and_clear(emulator: CardReaderEmulator) -> None:
    assert "faults=none" in handle_line(emulator, "status")
    handle_line(emulator, "fault corrupt 2")
    handle_line(emulator, "fault nak-storm")
    status = handle_line(emulator, "status")
    assert status.startswith("ok: ") and "corrupt 2" in status and "nak-storm" in status
    handle_line(emulator, "clear")
    assert "faults=none" in handle_line(emulator, "status")


def test_a_session_driven_by_control_lines(emulator: CardReaderEmulator) -> None:
    host = CardReaderCodec(Role.HOST)
    assert handle_line(emulator, "pin manual").startswith("ok: ")
    assert handle_line(emulator, "present pin-required chip") == "ok: pin-required presented by chip"
    emulator.receive(host.send(StartRead(amount_minor=1, currency="156", modes=frozenset(EntryMode), timeout_s=9)))
    assert [type(e).__name__ for e in host_reads(emulator, host)][-1] == CardRead.__name__
    assert "card=pin-required" in handle_line(emulator, "status")
    assert handle_line(emulator, "pin 1234") == "ok: PIN entered"  # typed ahead of the request
    assert handle_line(emulator, "display") == "ok: display: "
    assert handle_line(emulator, "remove") == "ok: card removed"
    cards = handle_line(emulator, "cards")
    assert "slow-card (chip)" in cards and "approved (chip/swipe/tap)" in cards
    assert "signature-tap (tap/chip)" in cards  # 免签 under the no-signature limit
    assert all(name in handle_line(emulator, "help") for name in COMMANDS)


def test_pin_line_answers_a_waiting_request(emulator: CardReaderEmulator) -> None:
    host = CardReaderCodec(Role.HOST)
    handle_line(emulator, "pin manual")
    handle_line(emulator, "present pin-required")
    emulator.receive(host.send(StartRead(amount_minor=1, currency="156", modes=frozenset(EntryMode), timeout_s=9)))
    host_reads(emulator, host)
    emulator.receive(host.send(RequestPin(amount_minor=1, currency="156", timeout_s=30)))
    assert not [e for e in host_reads(emulator, host) if isinstance(e, PinEntered)]
    assert "waiting=pin" in handle_line(emulator, "status")
    handle_line(emulator, "pin 1234")
    assert [e for e in host_reads(emulator, host) if isinstance(e, PinEntered)]


@settings(deadline=None, max_examples=examples(200))
@given(line=st.text(max_size=60))
def test_any_line_gets_one_line_and_never_raises(line: str) -> None:
    reply = handle_line(CardReaderEmulator(PROFILE), line)
    assert reply.startswith(("ok: ", "error: ")) and "\n" not in reply
