"""The card reader contract, on every transport: emu://, a pty, socket://, a `till emulate` process
and (with --hil card-reader=URL) a real PIN pad.

The peer is touched only through the wire (CardReaderDriver) and control lines (`present`, `fault`,
`advance`, `clear`, `status`, `display`); on real hardware a control line skips the test, where a
person or a jig would have to present the card. What a test card holds (its PAN, keys, PIN) comes
from the card catalogue, as a real test card's data sheet would."""

from __future__ import annotations

import time
from typing import Any

import pytest

from drivers.base import DeviceEvent, DeviceFault, FaultKind
from drivers.card_reader.driver import CardReaderDriver
from drivers.card_reader.events import (
    CardRead,
    ChipCompleted,
    DeviceInfo,
    EntryMode,
    PinEntered,
    ReadCancelled,
)
from drivers.emv import tlv
from emulator.card_reader import emv
from emulator.card_reader.cards import get_card
from tests.contract.conftest import Control, Rig, Serve, wait_for_events

FAMILY = "card_reader"
ALL = frozenset(EntryMode)


def open_driver(rig: Rig, profile: dict[str, Any] | None = None) -> CardReaderDriver:
    return CardReaderDriver(rig.url, profile or rig.profile, timeout=5)


def status_of(control: Control) -> dict[str, str]:
    """`status` -> "ok: card=none ... resends=2" as {"card": "none", ..., "resends": "2"}."""
    words = control.send("status").removeprefix("ok:").split()
    return dict(w.split("=", 1) for w in words if "=" in w)


def collect(driver: CardReaderDriver, kind: type[DeviceEvent], timeout: float = 5.0) -> list[DeviceEvent]:
    """Every event up to and including the first `kind` (none if it never comes)."""
    seen: list[DeviceEvent] = []
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        batch = wait_for_events(driver, max(0.0, end - time.monotonic()))
        seen += batch
        if any(isinstance(e, kind) for e in seen) or (not batch and driver.fileno() is None):
            break
    return seen


def first(events: list[DeviceEvent], kind: type[DeviceEvent]) -> Any:
    matches = [e for e in events if isinstance(e, kind)]
    assert matches, f"no {kind.__name__} in {[type(e).__name__ for e in events]}"
    return matches[0]


@pytest.mark.parametrize("profile_name", ["generic-pinpad", "cn-mispos-binary"])
def test_reader_identifies_itself(contract: Serve, profile_name: str) -> None:
    with open_driver(contract(profile_name)) as reader:
        info = reader.device_info()
    assert isinstance(info, DeviceInfo) and info.model and info.firmware


def test_a_read_can_be_cancelled(contract: Serve) -> None:
    with open_driver(contract()) as reader:
        assert reader.start_read(amount_minor=100, currency="156", modes=ALL, timeout_s=60) is None
        assert reader.cancel() is None
        assert ReadCancelled() in collect(reader, ReadCancelled)


@pytest.mark.parametrize("profile_name", ["generic-pinpad", "cn-mispos-binary"])
def test_chip_read_then_second_generate_ac(contract: Serve, profile_name: str) -> None:
    rig = contract(profile_name)
    rig.control.send("present approved chip")
    card = get_card("approved")
    with open_driver(rig) as reader:
        assert reader.start_read(amount_minor=12500, currency="156", modes=ALL, timeout_s=60) is None
        read = first(collect(reader, CardRead), CardRead)
        assert read.entry_mode is EntryMode.CHIP and read.icc_data is not None
        assert emv.verify_arqc(read.icc_data.reveal(), card.pan, card.pan_sequence)
        arqc = tlv.decode_dict(read.icc_data.reveal())["9F26"]
        arpc = emv.make_arpc(arqc, "00", pan=card.pan, psn=card.pan_sequence)
        assert reader.complete(approved=True, response_code="00", issuer_data=arpc) is None
        done = first(collect(reader, ChipCompleted), ChipCompleted)
    assert done.approved


def test_pin_entry_returns_an_encrypted_block(contract: Serve) -> None:
    rig = contract()
    rig.control.send("present pin-required swipe")
    card = get_card("pin-required")
    with open_driver(rig) as reader:
        assert reader.start_read(amount_minor=500, currency="156", modes=ALL, timeout_s=60) is None
        assert first(collect(reader, CardRead), CardRead).entry_mode is EntryMode.SWIPE
        assert reader.request_pin(amount_minor=500, currency="156", timeout_s=30) is None
        entered = first(collect(reader, PinEntered), PinEntered)
    assert emv.verify_pin_block(entered.pin_block.reveal(), card.pan, card.pin)


def test_slow_card_answers_after_the_emulator_clock_moves(contract: Serve) -> None:
    rig = contract()
    rig.control.send("present slow-card")
    slow = get_card("slow-card")
    with open_driver(rig) as reader:
        assert reader.start_read(amount_minor=500, currency="156", modes=ALL, timeout_s=60) is None
        assert not [e for e in reader.poll() if isinstance(e, CardRead)]
        rig.control.send(f"advance {slow.delay_s:g}")
        assert first(collect(reader, CardRead), CardRead).pan_last4 == slow.pan[-4:]


def test_a_corrupted_frame_is_naked_and_resent(contract: Serve) -> None:
    rig = contract()
    rig.control.send("fault corrupt 2")
    rig.control.send("present approved")
    with open_driver(rig) as reader:
        assert reader.start_read(amount_minor=500, currency="156", modes=ALL, timeout_s=60) is None
        events = collect(reader, CardRead)
        assert first(events, CardRead).pan_last4 == get_card("approved").pan[-4:]
        faults = [e for e in events if isinstance(e, DeviceFault)]
        assert faults and all(f.kind is FaultKind.PROTOCOL and not f.blocking for f in faults)
        assert reader.link_stats.naks_sent == 2
    assert status_of(rig.control)["resends"] == "2"


def test_a_nak_storm_fails_the_command_then_passes(contract: Serve) -> None:
    rig = contract()
    rig.control.send("fault nak-storm")
    with open_driver(rig) as reader:
        fault = reader.show_message("NAK storm")
        assert isinstance(fault, DeviceFault) and fault.kind is FaultKind.PROTOCOL
        rig.control.send("clear")
        assert reader.show_message("请插卡 Insert card") is None
    assert rig.control.send("display") == "ok: display: 请插卡 Insert card"


def test_a_silent_reader_is_no_answer(contract: Serve) -> None:
    rig = contract()
    rig.control.send("fault silent")
    hurried = {**rig.profile, "link": {**rig.profile["link"], "ack_timeout_s": 0.2}}  # 3 short ACK waits, not 3 x 5 s
    with open_driver(rig, hurried) as reader:
        fault = reader.device_info()
        assert isinstance(fault, DeviceFault) and fault.kind is FaultKind.NO_ANSWER
        assert reader.link_stats.resends == rig.profile["link"]["max_naks"] - 1 and reader.link_stats.eots_sent == 1
        rig.control.send("clear")
        assert isinstance(reader.device_info(), DeviceInfo)
