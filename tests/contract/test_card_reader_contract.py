"""The card reader contract, on every transport: emu://, a pty, socket:// and (with --hil-port) a
real PIN pad. Tests that need a card presented or a fault injected use the emulator's control and
skip on hardware, where a person or a jig would have to do it."""

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
from emulator.card_reader.emulator import CardReaderEmulator
from firmware_profiles import load_profile
from tests.contract.conftest import Control, Serve, wait_for_events

ALL = frozenset(EntryMode)


def _profile(request: pytest.FixtureRequest, default: str = "generic-pinpad") -> dict[str, Any]:
    return load_profile("card_reader", request.config.getoption("--hil-profile") or default)


def _needs(control: Control | None) -> Control:
    if control is None:
        pytest.skip("needs the emulator's control (present a card, inject a fault)")
    return control


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
def test_reader_identifies_itself(serve: Serve, request: pytest.FixtureRequest, profile_name: str) -> None:
    profile = _profile(request, profile_name)
    url, _ = serve("card_reader", CardReaderEmulator(profile))
    with CardReaderDriver(url, profile, timeout=5) as reader:
        info = reader.device_info()
    assert isinstance(info, DeviceInfo) and info.model and info.firmware


def test_a_read_can_be_cancelled(serve: Serve, request: pytest.FixtureRequest) -> None:
    profile = _profile(request)
    url, _ = serve("card_reader", CardReaderEmulator(profile))
    with CardReaderDriver(url, profile, timeout=5) as reader:
        assert reader.start_read(amount_minor=100, currency="156", modes=ALL, timeout_s=60) is None
        assert reader.cancel() is None
        assert ReadCancelled() in collect(reader, ReadCancelled)


@pytest.mark.parametrize("profile_name", ["generic-pinpad", "cn-mispos-binary"])
def test_chip_read_then_second_generate_ac(serve: Serve, request: pytest.FixtureRequest, profile_name: str) -> None:
    profile = _profile(request, profile_name)
    url, control = serve("card_reader", CardReaderEmulator(profile))
    _needs(control)(lambda peer: peer.present("approved", "chip"))
    card = get_card("approved")
    with CardReaderDriver(url, profile, timeout=5) as reader:
        assert reader.start_read(amount_minor=12500, currency="156", modes=ALL, timeout_s=60) is None
        read = first(collect(reader, CardRead), CardRead)
        assert read.entry_mode is EntryMode.CHIP and read.icc_data is not None
        assert emv.verify_arqc(read.icc_data.reveal(), card.pan, card.pan_sequence)
        arqc = tlv.decode_dict(read.icc_data.reveal())["9F26"]
        arpc = emv.make_arpc(arqc, "00", pan=card.pan, psn=card.pan_sequence)
        assert reader.complete(approved=True, response_code="00", issuer_data=arpc) is None
        done = first(collect(reader, ChipCompleted), ChipCompleted)
    assert done.approved


def test_pin_entry_returns_an_encrypted_block(serve: Serve, request: pytest.FixtureRequest) -> None:
    profile = _profile(request)
    url, control = serve("card_reader", CardReaderEmulator(profile))
    _needs(control)(lambda peer: peer.present("pin-required", "swipe"))
    card = get_card("pin-required")
    with CardReaderDriver(url, profile, timeout=5) as reader:
        assert reader.start_read(amount_minor=500, currency="156", modes=ALL, timeout_s=60) is None
        assert first(collect(reader, CardRead), CardRead).entry_mode is EntryMode.SWIPE
        assert reader.request_pin(amount_minor=500, currency="156", timeout_s=30) is None
        entered = first(collect(reader, PinEntered), PinEntered)
    assert emv.verify_pin_block(entered.pin_block.reveal(), card.pan, card.pin)


def test_slow_card_answers_after_the_emulator_clock_moves(serve: Serve, request: pytest.FixtureRequest) -> None:
    profile = _profile(request)
    url, control = serve("card_reader", CardReaderEmulator(profile))
    act = _needs(control)
    act(lambda peer: peer.present("slow-card"))
    with CardReaderDriver(url, profile, timeout=5) as reader:
        assert reader.start_read(amount_minor=500, currency="156", modes=ALL, timeout_s=60) is None
        assert not [e for e in reader.poll() if isinstance(e, CardRead)]
        act(lambda peer: peer.advance(get_card("slow-card").delay_s))
        assert first(collect(reader, CardRead), CardRead).pan_last4 == get_card("slow-card").pan[-4:]


def test_a_corrupted_frame_is_naked_and_resent(serve: Serve, request: pytest.FixtureRequest) -> None:
    profile = _profile(request)
    url, control = serve("card_reader", CardReaderEmulator(profile))
    act = _needs(control)
    act(lambda peer: (peer.corrupt_frames(2), peer.present("approved")))
    with CardReaderDriver(url, profile, timeout=5) as reader:
        assert reader.start_read(amount_minor=500, currency="156", modes=ALL, timeout_s=60) is None
        events = collect(reader, CardRead)
        assert first(events, CardRead).pan_last4 == "0010"
        faults = [e for e in events if isinstance(e, DeviceFault)]
        assert faults and all(f.kind is FaultKind.PROTOCOL and not f.blocking for f in faults)
        assert reader.link_stats.naks_sent == 2
    assert act(lambda peer: peer.stats.resends) == 2


def test_a_nak_storm_fails_the_command_then_passes(serve: Serve, request: pytest.FixtureRequest) -> None:
    profile = _profile(request)
    url, control = serve("card_reader", CardReaderEmulator(profile))
    act = _needs(control)
    act(lambda peer: peer.nak_storm())
    with CardReaderDriver(url, profile, timeout=5) as reader:
        fault = reader.show_message("NAK storm")
        assert isinstance(fault, DeviceFault) and fault.kind is FaultKind.PROTOCOL
        act(lambda peer: peer.clear_faults())
        assert reader.show_message("请插卡 Insert card") is None
    assert act(lambda peer: peer.display) == "请插卡 Insert card"


def test_a_silent_reader_is_no_answer(serve: Serve, request: pytest.FixtureRequest) -> None:
    profile = _profile(request)
    url, control = serve("card_reader", CardReaderEmulator(profile))
    act = _needs(control)
    act(lambda peer: peer.go_silent())
    hurried = {**profile, "link": {**profile["link"], "ack_timeout_s": 0.2}}  # 3 short ACK waits, not 3 x 5 s
    with CardReaderDriver(url, hurried, timeout=5) as reader:
        fault = reader.device_info()
        assert isinstance(fault, DeviceFault) and fault.kind is FaultKind.NO_ANSWER
        assert reader.link_stats.resends == profile["link"]["max_naks"] - 1 and reader.link_stats.eots_sent == 1
        act(lambda peer: peer.clear_faults())
        assert isinstance(reader.device_info(), DeviceInfo)
