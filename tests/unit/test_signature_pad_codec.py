"""The signature pad codec (drivers/signature_pad/codec.py): docs/signature-pad.md's golden vectors
both ways, every table fed whole and one byte at a time, resynchronisation on a lost or a junk byte,
the ACK / NAK the device end owes, and hypothesis fuzzing of both roles of both profiles (a malformed
input raises RemoteProtocolError and nothing else)."""

from __future__ import annotations

from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from drivers.errors import FrameError, LocalProtocolError, RemoteProtocolError
from drivers.events import Role
from drivers.signature_pad import events as ev
from drivers.signature_pad.codec import SignaturePadCodec, SignaturePadSettings
from firmware_profiles import list_profiles, load_profile, validate_profile
from tests.support.codecs import drain_junk, feed, h
from tests.support.depth import examples

PROFILES = list_profiles("signature_pad")
LCD = load_profile("signature_pad", "topaz-lcd4x5")
SIGLITE = load_profile("signature_pad", "topaz-siglite")




def feed_lenient(codec: SignaturePadCodec, data: bytes) -> tuple[list[object], int]:
    """Events and the number of RemoteProtocolErrors, one byte at a time."""
    out: list[object] = []
    errors = 0
    for i in range(len(data)):
        codec.receive_data(data[i : i + 1])
        while True:
            try:
                event = codec.next_event()
            except RemoteProtocolError:
                errors += 1
                continue
            if event is None:
                break
            out.append(event)
    return out, errors


PAD_UNITS = [  # pad -> host (docs/signature-pad.md §2, §3)
    (ev.PenSample(x=1000, y=500), "C1 68 07 74 03"),
    (ev.PenSample(x=1000, y=500, down=False), "C0 68 07 74 03"),
    (ev.PenSample(x=0x0FFF, y=0x0FFF, down=False, proximity=False), "80 7F 1F 7F 1F"),
    (ev.PenSample(x=0, y=4095), "C1 00 00 7F 1F"),
    (ev.PadIdentity(model=0x15, serial=123456), "88 15 07 44 40"),
    (ev.PenPressure(pressure=300), "DD 2C 02 00 00"),
    (ev.PadKey(key="ok"), "02 4B 01 4F 05"),
    (ev.PadKey(key="clear"), "02 4B 01 43 09"),
    (ev.PadKey(key="cancel"), "02 4B 01 58 12"),
    (ev.PadAck(command=ord("T")), "02 41 01 54 14"),
    (ev.PadNak(command=ord("T"), cause="checksum"), "02 4E 02 54 43 5B"),
    (ev.PadNak(command=ord("Z"), cause="unknown"), "02 4E 02 5A 55 43"),
    (ev.PadNak(command=ord("T"), cause="argument"), "02 4E 02 54 4C 54"),
]
COMMANDS = [  # host -> LCD pad (§4)
    (ev.ShowText(line=1, text="金额 12.34"), "02 54 0B 01 BD F0 B6 EE 20 31 32 2E 33 34 41"),
    (ev.ShowText(line=4, text="Sign"), "02 54 05 04 53 69 67 6E 66"),
    (ev.ClearScreen(), "02 43 00 43"),
    (ev.ClearInk(), "02 49 00 49"),
    (ev.Beep(duration_ms=200), "02 42 01 14 57"),
    (ev.EnableKeys(), "02 45 01 07 43"),
    (ev.EnableKeys(keys=()), "02 45 01 00 44"),
    (ev.EnablePen(on=True), "02 50 01 01 50"),
    (ev.EnablePen(on=False), "02 50 01 00 51"),
    (ev.Identify(), "02 51 00 51"),
]


@pytest.mark.parametrize("one_by_one", [False, True])
@pytest.mark.parametrize(("event", "wire"), PAD_UNITS)
def test_pad_units_both_ways(event: Any, wire: str, one_by_one: bool) -> None:
    assert SignaturePadCodec(Role.DEVICE, LCD).send(event) == h(wire)
    assert feed(SignaturePadCodec(Role.HOST, LCD), h(wire), one_by_one=one_by_one) == [event]


@pytest.mark.parametrize("one_by_one", [False, True])
@pytest.mark.parametrize(("command", "wire"), COMMANDS)
def test_commands_both_ways_and_each_is_acked(command: Any, wire: str, one_by_one: bool) -> None:
    assert SignaturePadCodec(Role.HOST, LCD).send(command) == h(wire)
    device = SignaturePadCodec(Role.DEVICE, LCD)
    assert feed(device, h(wire), one_by_one=one_by_one) == [command]
    ack = SignaturePadCodec(Role.DEVICE, LCD).send(ev.PadAck(command=h(wire)[1]))
    assert device.data_to_send() == ack


def test_coordinate_types_one_and_four_are_coordinates_too() -> None:
    host = SignaturePadCodec(Role.HOST, SIGLITE)
    assert feed(host, h("C5 68 07 74 03 D1 68 07 74 03"), one_by_one=True) == [ev.PenSample(x=1000, y=500)] * 2


def test_a_lost_byte_costs_one_packet_and_the_next_decodes() -> None:
    host = SignaturePadCodec(Role.HOST, SIGLITE)
    events, errors = feed_lenient(host, h("C1 68 07 03") + h("C1 68 07 74 03"))
    assert events == [ev.PenSample(x=1000, y=500)] and errors == 1


def test_junk_where_a_sync_is_expected_is_skipped() -> None:
    host = SignaturePadCodec(Role.HOST, SIGLITE)
    events, errors = feed_lenient(host, h("5A 11") + h("C1 68 07 74 03"))
    assert events == [ev.PenSample(x=1000, y=500)] and errors == 2


def test_unknown_packet_types_and_bad_pad_frames_raise() -> None:
    host = SignaturePadCodec(Role.HOST, LCD)
    host.receive_data(h("8C 00 00 00 00"))  # type 3
    with pytest.raises(RemoteProtocolError):
        host.next_event()
    host.receive_data(h("02 4B 01 4F 06"))  # bad check byte
    with pytest.raises(FrameError):
        host.next_event()
    for _ in range(8):  # the rest of the bad frame is junk, a byte at a time
        try:
            assert host.next_event() is None
            break
        except RemoteProtocolError:
            pass
    assert host.buffered == 0
    host.receive_data(h("02 4B 01 C1 68 07 74 03"))  # a frame cut by a pen packet
    with pytest.raises(FrameError):
        host.next_event()
    assert host.next_event() == ev.PenSample(x=1000, y=500)


def test_bad_commands_are_naked() -> None:
    device = SignaturePadCodec(Role.DEVICE, LCD)
    naks = SignaturePadCodec(Role.DEVICE, LCD)
    device.receive_data(h("02 43 00 44"))  # bad LRC
    with pytest.raises(FrameError):
        device.next_event()
    device.receive_data(b"\x00")  # the rest of the bad frame is skipped byte by byte
    for _ in range(4):
        try:
            if device.next_event() is None:
                break
        except RemoteProtocolError:
            pass
    assert device.data_to_send() == naks.send(ev.PadNak(command=0x43, cause="checksum"))
    device.receive_data(h("02 5A 00 5A"))  # unknown command
    with pytest.raises(RemoteProtocolError):
        device.next_event()
    assert device.data_to_send() == naks.send(ev.PadNak(command=0x5A, cause="unknown"))
    device.receive_data(h("02 54 02 09 41 1E"))  # line 9 of 4
    with pytest.raises(RemoteProtocolError):
        device.next_event()
    assert device.data_to_send() == naks.send(ev.PadNak(command=0x54, cause="argument"))


def test_what_a_role_or_a_model_may_not_send() -> None:
    with pytest.raises(LocalProtocolError):
        SignaturePadCodec(Role.HOST, SIGLITE).send(ev.ClearScreen())  # no LCD
    with pytest.raises(LocalProtocolError):
        SignaturePadCodec(Role.DEVICE, SIGLITE).send(ev.PadKey(key="ok"))
    with pytest.raises(LocalProtocolError):
        SignaturePadCodec(Role.HOST, LCD).send(ev.PenSample(x=1, y=1))
    with pytest.raises(LocalProtocolError):
        SignaturePadCodec(Role.DEVICE, LCD).send(ev.ClearInk())
    with pytest.raises(LocalProtocolError):
        SignaturePadCodec(Role.HOST, LCD).send(ev.ShowText(line=5, text="x"))
    with pytest.raises(LocalProtocolError):
        SignaturePadCodec(Role.HOST, LCD).send(ev.ShowText(line=1, text="x" * 33))
    with pytest.raises(LocalProtocolError):
        SignaturePadCodec(Role.DEVICE, LCD).send(ev.PenSample(x=4096, y=0))


def test_settings_defaults_are_the_schemas() -> None:
    minimal = validate_profile("signature_pad", {"schema": 1, "name": "minimal"})
    assert SignaturePadSettings.from_profile(minimal) == SignaturePadSettings()


@settings(max_examples=examples(100), deadline=None)
@given(samples=st.lists(st.tuples(st.integers(0, 4095), st.integers(0, 4095), st.booleans(), st.booleans()),
                        min_size=1, max_size=30), split=st.integers(1, 7))
def test_any_pen_stream_round_trips(samples: list[tuple[int, int, bool, bool]], split: int) -> None:
    sent = [ev.PenSample(x=x, y=y, down=d, proximity=p) for x, y, d, p in samples]
    device = SignaturePadCodec(Role.DEVICE, SIGLITE)
    wire = b"".join(device.send(s) for s in sent)
    host = SignaturePadCodec(Role.HOST, SIGLITE)
    got: list[object] = []
    for i in range(0, len(wire), split):
        host.receive_data(wire[i : i + split])
        while (event := host.next_event()) is not None:
            got.append(event)
    assert got == sent


@settings(max_examples=examples(60), deadline=None)
@given(text=st.text(st.characters(codec="gb18030", exclude_categories=("Cc", "Cs")), min_size=0, max_size=10),
       line=st.integers(1, 4))
def test_any_text_line_round_trips(text: str, line: int) -> None:
    command = ev.ShowText(line=line, text=text)
    try:
        wire = SignaturePadCodec(Role.HOST, LCD).send(command)
    except LocalProtocolError:
        return  # longer than lcd.columns bytes
    assert feed(SignaturePadCodec(Role.DEVICE, LCD), wire, one_by_one=True) == [command]


@settings(max_examples=examples(300), deadline=None)
@given(name=st.sampled_from(PROFILES), role=st.sampled_from(list(Role)),
       chunks=st.lists(st.binary(min_size=1, max_size=40), max_size=12))
def test_junk_raises_only_remote_protocol_errors(name: str, role: Role, chunks: list[bytes]) -> None:
    codec = SignaturePadCodec(role, load_profile("signature_pad", name))
    drain_junk(codec, chunks)
