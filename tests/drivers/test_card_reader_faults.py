"""Line faults between the real card reader driver and the real emulator over emu://: frames
corrupted either way, NAK storms, silence, disconnects, and the emulator's own fault switches
(what `fault ...` does on its control line)."""

from __future__ import annotations

from typing import Any

import pytest

from drivers.base import DeviceFault, FaultKind
from drivers.card_reader.codec import ACK, EOT, NAK, STX
from drivers.card_reader.driver import CardReaderDriver
from drivers.card_reader.events import CardRead, DeviceInfo, EntryMode
from drivers.transport import Peer
from emulator.card_reader.cards import get_card
from emulator.card_reader.emulator import CardReaderEmulator
from tests.drivers.card_rig import PROFILE, only

ALL_MODES = frozenset(EntryMode)


class FlipOnce:
    """A Peer wrapper that corrupts one byte of the first frame going one way (LRC then fails)."""

    def __init__(self, inner: Peer, *, to_host: bool) -> None:
        self.inner, self.to_host, self.flipped = inner, to_host, False

    def _maybe_flip(self, data: bytes) -> bytes:
        if self.flipped or STX not in data:
            return data
        self.flipped = True
        out = bytearray(data)
        out[data.index(STX) + 3] ^= 0xFF  # the command byte: framing intact, LRC wrong
        return bytes(out)

    def receive(self, data: bytes) -> None:
        self.inner.receive(data if self.to_host else self._maybe_flip(data))

    def transmit(self) -> bytes:
        data = self.inner.transmit()
        return self._maybe_flip(data) if self.to_host else data

    def close(self) -> None:
        self.inner.close()


class ScriptedPeer:
    """A device that never answers (silent) or NAKs every frame, and records what it got."""

    def __init__(self, answer: bytes = b"") -> None:
        self.answer, self.received, self._out = answer, bytearray(), bytearray()

    def receive(self, data: bytes) -> None:
        self.received += data
        if STX in data:
            self._out += self.answer

    def transmit(self) -> bytes:
        out, self._out = bytes(self._out), bytearray()
        return out

    def close(self) -> None:
        pass


def read_card(reader: CardReaderDriver) -> CardRead:
    assert reader.start_read(amount_minor=100, currency="156", modes=ALL_MODES, timeout_s=60) is None
    (read,) = reader.poll()
    assert isinstance(read, CardRead)
    return read


def test_corrupted_frame_from_the_reader_is_naked_and_resent(connect: Any, emulator: CardReaderEmulator) -> None:
    reader: CardReaderDriver = connect(FlipOnce(emulator, to_host=True))
    emulator.present("approved")
    assert reader.start_read(amount_minor=12500, currency="156", modes=ALL_MODES, timeout_s=60) is None
    events = reader.poll()
    faults = only(events, DeviceFault)
    assert [type(e) for e in events if not isinstance(e, DeviceFault)] == [CardRead]
    assert len(faults) == 1 and isinstance(faults[0], DeviceFault)
    assert faults[0].kind is FaultKind.PROTOCOL and not faults[0].blocking
    assert reader.link_stats.naks_sent == 1 and emulator.stats.resends == 1


def test_corrupted_frame_to_the_reader_is_naked_and_resent(connect: Any, emulator: CardReaderEmulator) -> None:
    reader: CardReaderDriver = connect(FlipOnce(emulator, to_host=False))
    assert isinstance(reader.device_info(), DeviceInfo)
    assert emulator.stats.naks_sent == 1 and reader.link_stats.resends == 1
    assert reader.poll() == []


def test_silent_reader_is_a_fault(connect: Any) -> None:
    peer = ScriptedPeer()
    reader: CardReaderDriver = connect(peer)
    fault = reader.device_info()
    assert isinstance(fault, DeviceFault) and fault.kind is FaultKind.NO_ANSWER and fault.device == "card_reader"
    frame = bytes.fromhex("02 00 01 10 03 12")
    assert bytes(peer.received) == frame * PROFILE["link"]["max_naks"] + bytes([EOT])


def test_reader_that_always_naks_gets_eot(connect: Any) -> None:
    peer = ScriptedPeer(answer=bytes([NAK]))
    reader: CardReaderDriver = connect(peer)
    fault = reader.show_message("hello")
    assert isinstance(fault, DeviceFault) and fault.kind is FaultKind.PROTOCOL
    assert bytes(peer.received).count(bytes([STX])) == PROFILE["link"]["max_naks"]
    assert bytes(peer.received).endswith(bytes([EOT]))
    assert reader.link_stats.naks_received == PROFILE["link"]["max_naks"]


def test_ack_without_answer_is_a_fault(connect: Any) -> None:
    reader: CardReaderDriver = connect(ScriptedPeer(answer=bytes([ACK])))
    fault = reader.device_info()
    assert isinstance(fault, DeviceFault) and fault.kind is FaultKind.NO_ANSWER


# -- the emulator's own faults (what `fault ...` does on the control line) ------------------------
def test_fault_corrupt_one_frame_is_naked_and_resent(reader: CardReaderDriver, emulator: CardReaderEmulator) -> None:
    emulator.present("approved")
    emulator.corrupt_frames(1)
    assert reader.start_read(amount_minor=100, currency="156", modes=ALL_MODES, timeout_s=60) is None
    events = reader.poll()
    assert [type(e) for e in events] == [DeviceFault, CardRead]
    fault = events[0]
    assert isinstance(fault, DeviceFault) and fault.kind is FaultKind.PROTOCOL and not fault.blocking
    assert get_card("approved").pan not in fault.detail
    assert reader.link_stats.naks_sent == 1 and emulator.stats.resends == 1 and emulator.corrupt_left == 0


def test_fault_corrupt_max_naks_frames_loses_the_event(reader: CardReaderDriver, emulator: CardReaderEmulator) -> None:
    emulator.present("approved")
    emulator.corrupt_frames(PROFILE["link"]["max_naks"])
    assert reader.start_read(amount_minor=100, currency="156", modes=ALL_MODES, timeout_s=60) is None
    events = reader.poll()
    assert not only(events, CardRead) and all(isinstance(e, DeviceFault) and not e.blocking for e in events)
    assert any("EOT" in e.detail for e in events if isinstance(e, DeviceFault))
    assert emulator.stats.eots_sent == 1
    emulator.present("approved")  # the line is healthy again: the next read works
    read_card(reader)


@pytest.mark.parametrize("storm", [None, 5])
def test_fault_nak_storm_fails_the_command(
    reader: CardReaderDriver, emulator: CardReaderEmulator, storm: int | None
) -> None:
    emulator.nak_storm(storm)
    fault = reader.show_message("hello")
    assert isinstance(fault, DeviceFault) and fault.kind is FaultKind.PROTOCOL
    assert reader.link_stats.naks_received == PROFILE["link"]["max_naks"] and emulator.display == ""
    emulator.clear_faults()
    assert reader.show_message("hello") is None and emulator.display == "hello"


def test_fault_short_nak_storm_is_ridden_out(reader: CardReaderDriver, emulator: CardReaderEmulator) -> None:
    emulator.nak_storm(PROFILE["link"]["max_naks"] - 1)
    assert reader.show_message("hello") is None
    assert emulator.display == "hello" and reader.link_stats.resends == PROFILE["link"]["max_naks"] - 1
    assert emulator.nak_left == 0


def test_fault_silent_reader_then_clear(reader: CardReaderDriver, emulator: CardReaderEmulator) -> None:
    emulator.go_silent()
    fault = reader.device_info()
    assert isinstance(fault, DeviceFault) and fault.kind is FaultKind.NO_ANSWER
    assert emulator.commands == []
    emulator.clear_faults()
    assert isinstance(reader.device_info(), DeviceInfo)


def test_fault_soft_disconnect_is_no_answer(reader: CardReaderDriver, emulator: CardReaderEmulator) -> None:
    emulator.present("approved")
    emulator.disconnect()
    fault = reader.start_read(amount_minor=100, currency="156", modes=ALL_MODES, timeout_s=60)
    assert isinstance(fault, DeviceFault) and fault.kind is FaultKind.NO_ANSWER
    assert emulator.commands == [] and "disconnected (soft)" in emulator.status()
    emulator.clear_faults()
    read_card(reader)  # plugged back in: the card is still there


def test_fault_hard_disconnect_then_reconnect(reader: CardReaderDriver, emulator: CardReaderEmulator) -> None:
    emulator.disconnect(hard=True)
    fault = reader.start_read(amount_minor=100, currency="156", modes=ALL_MODES, timeout_s=60)
    assert isinstance(fault, DeviceFault) and fault.kind is FaultKind.DISCONNECTED and fault.blocking
    (polled,) = reader.poll()
    assert isinstance(polled, DeviceFault) and polled.kind is FaultKind.DISCONNECTED
    emulator.clear_faults()
    assert isinstance(reader.device_info(), DeviceInfo)


def test_status_line_reports_faults(emulator: CardReaderEmulator) -> None:
    assert "faults=none" in emulator.status()
    emulator.corrupt_frames(2)
    emulator.nak_storm()
    emulator.go_silent()
    line = emulator.status()
    assert "corrupt 2" in line and "nak-storm" in line and "silent" in line and "\n" not in line
