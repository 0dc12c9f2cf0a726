"""Card reader codec: §7 link vectors and our message set, both directions, byte at a time.
Fuzzing (hypothesis) is in test_card_reader_fuzz.py."""

from __future__ import annotations

from typing import Any

import pytest

from drivers.card_reader.codec import ACK, EOT, NAK, CardReaderCodec, Link, LinkSettings, lrc
from drivers.card_reader.events import (
    CancelRead,
    CardRead,
    CardReaderCommand,
    CardRemoved,
    ChipCompleted,
    CompleteChip,
    Cvm,
    DeviceInfo,
    EntryMode,
    Event,
    FrameAcked,
    FrameNaked,
    FrameReceived,
    Message,
    PeerAborted,
    PinCancelled,
    PinEntered,
    PinTimeout,
    ReadCancelled,
    ReadFailed,
    RequestDeviceInfo,
    RequestPin,
    ShowMessage,
    StartRead,
)
from drivers.card_reader.messages import Command, decode_message, encode_message
from drivers.errors import FrameError, LocalProtocolError
from drivers.events import Role
from drivers.sensitive import Secret
from firmware_profiles import ProfileError, load_schema, validate_profile

PAN = "4761739001010010"


def link_profile(**link: Any) -> dict[str, Any]:
    """A card reader profile with these `[link]` keys, the schema's defaults for the rest."""
    return validate_profile("card_reader", {"schema": 1, "name": "test", "link": link}, source="<test>")
TRACK2 = PAN + "=2512201" + "0" * 13

# PROTOCOLS.md §7 "PIN pad / card": (length field, payload, frame).
P12 = bytes.fromhex("A0 01 00 00 00 01 25 00 31 32 33 34")
LINK_VECTORS = [
    ("none", b"00", "02 30 30 03 03"),
    ("none", b"Z2hello", "02 5A 32 68 65 6C 6C 6F 03 09"),
    ("bcd", P12, "02 00 12 A0 01 00 00 00 01 25 00 31 32 33 34 03 90"),
    ("binary", P12, "02 00 0C A0 01 00 00 00 01 25 00 31 32 33 34 03 8E"),
]

# Our application layer (docs/card-reader-protocol.md): message -> payload. The CompleteChip TLV
# is the §7 issuer response vector and the ShowMessage text the §7 GB18030 vector.
MESSAGES: list[tuple[Message, str]] = [
    (RequestDeviceInfo(), "10"),
    (
        StartRead(amount_minor=12500, currency="156", modes=frozenset({EntryMode.CHIP, EntryMode.TAP}), timeout_s=60),
        "20 00 00 00 01 25 00 01 56 05 3C",
    ),
    (CancelRead(), "21"),
    (
        CompleteChip(approved=True, response_code="00", issuer_data=bytes.fromhex("9E16BF16B1E390A23030")),
        "22 01 8A 02 30 30 91 0A 9E 16 BF 16 B1 E3 90 A2 30 30",
    ),
    (CompleteChip(approved=False, response_code="05"), "22 00 8A 02 30 35"),
    (ShowMessage(text="中文测试"), "30 D6 D0 CE C4 B2 E2 CA D4"),
    (DeviceInfo(model="PP-1", serial_number="S1", firmware="1.0"), "90 C1 04 50 50 2D 31 C2 02 53 31 C3 03 31 2E 30"),
    (
        CardRead(entry_mode=EntryMode.SWIPE, pan=Secret(PAN), expiry=Secret("2512"), track2=Secret(TRACK2)),
        "A0 02 C1 10" + PAN.encode().hex() + "C2 04 32 35 31 32 C3 25" + TRACK2.encode().hex(),
    ),
    (
        CardRead(
            entry_mode=EntryMode.CHIP,
            pan=Secret(PAN),
            expiry=Secret("2512"),
            icc_data=Secret(bytes.fromhex("9F270180")),
            pan_sequence="01",
        ),
        "A0 01 C1 10" + PAN.encode().hex() + "C2 04 32 35 31 32 C4 04 9F 27 01 80 C5 02 30 31",
    ),
    (ReadFailed(reason="chip error", fallback_allowed=True), "A1 01 63 68 69 70 20 65 72 72 6F 72"),
    (CardRemoved(), "A2"),
    (ChipCompleted(approved=False, icc_data=Secret(bytes.fromhex("9F270100"))), "A3 00 9F 27 01 00"),
    (ReadCancelled(), "A4"),
    (
        RequestPin(amount_minor=12500, currency="156", timeout_s=30),
        "40 00 00 00 01 25 00 01 56 04 0C 1E",
    ),
    (
        RequestPin(amount_minor=1, currency="840", timeout_s=255, min_length=6, max_length=6, prompt="密码 PIN"),
        "40 00 00 00 00 00 01 08 40 06 06 FF C3 DC C2 EB 20 50 49 4E",
    ),
    (
        PinEntered(pin_block=Secret(bytes.fromhex("0123456789ABCDEF")), key_id="TPK-1"),
        "C0 00 01 23 45 67 89 AB CD EF 54 50 4B 2D 31",
    ),
    (PinCancelled(reason="cancelled"), "C1 63 61 6E 63 65 6C 6C 65 64"),
    (PinTimeout(), "C2"),
    (
        CardRead(
            entry_mode=EntryMode.TAP, pan=Secret(PAN), expiry=Secret("2512"), pan_sequence="1", cvm=Cvm.ONLINE_PIN
        ),
        "A0 04 C1 10" + PAN.encode().hex() + "C2 04 32 35 31 32 C5 01 31 C6 01 01",
    ),
    (CardRead(entry_mode=EntryMode.SWIPE, pan=Secret(PAN), expiry=Secret("2512"), cvm=Cvm.SIGNATURE),
     "A0 02 C1 10" + PAN.encode().hex() + "C2 04 32 35 31 32 C6 01 02"),
    (CardRead(entry_mode=EntryMode.SWIPE, pan=Secret(PAN), expiry=Secret("2512"), cvm=Cvm.NONE),
     "A0 02 C1 10" + PAN.encode().hex() + "C2 04 32 35 31 32 C6 01 00"),
]  # fmt: skip

# Whole frames with the generic-pinpad profile (BCD length).
FRAMES: list[tuple[Message, str]] = [
    (RequestDeviceInfo(), "02 00 01 10 03 12"),
    (CancelRead(), "02 00 01 21 03 23"),
    (
        StartRead(amount_minor=12500, currency="156", modes=frozenset({EntryMode.CHIP, EntryMode.TAP}), timeout_s=60),
        "02 00 11 20 00 00 00 01 25 00 01 56 05 3C 03 78",
    ),
    (
        StartRead(amount_minor=12500, currency="156", modes=frozenset({EntryMode.CHIP, EntryMode.TAP}), timeout_s=60,
                  unpredictable_number=bytes.fromhex("12345678")),
        "02 00 15 20 00 00 00 01 25 00 01 56 05 3C 12 34 56 78 03 74",
    ),
    (CardRemoved(), "02 00 01 A2 03 A0"),
    (ReadCancelled(), "02 00 01 A4 03 A6"),
    (PinTimeout(), "02 00 01 C2 03 C0"),
    (
        RequestPin(amount_minor=12500, currency="156", timeout_s=30),
        "02 00 12 40 00 00 00 01 25 00 01 56 04 0C 1E 03 34",
    ),
]


def sender_of(message: Message) -> Role:
    return Role.HOST if isinstance(message, CardReaderCommand) else Role.DEVICE


def drain(codec: CardReaderCodec | Link) -> tuple[list[Event], bytes, int]:
    """Every event the codec can produce now, what it owes the peer, and FrameErrors raised."""
    events: list[Event] = []
    sent, errors = b"", 0
    while True:
        try:
            event = codec.next_event()
        except FrameError:
            errors += 1
            sent += codec.data_to_send()
            continue
        sent += codec.data_to_send()
        if event is None:
            return events, sent, errors
        events.append(event)


# -- link layer: §7 vectors --------------------------------------------------------------------
@pytest.mark.parametrize(("length_field", "payload", "frame"), LINK_VECTORS)
def test_link_vector_encodes_to_exact_bytes(length_field: str, payload: bytes, frame: str) -> None:
    link = Link(LinkSettings(length_field=length_field))
    assert link.frame(payload) == bytes.fromhex(frame)
    assert link.send(payload) == bytes.fromhex(frame)
    assert link.awaiting_ack


@pytest.mark.parametrize("byte_at_a_time", [False, True])
@pytest.mark.parametrize(("length_field", "payload", "frame"), LINK_VECTORS)
def test_link_vector_decodes_and_is_acked(length_field: str, payload: bytes, frame: str, byte_at_a_time: bool) -> None:
    link = Link(LinkSettings(length_field=length_field))
    data = bytes.fromhex(frame)
    events: list[Event] = []
    sent = b""
    for chunk in [data[i : i + 1] for i in range(len(data))] if byte_at_a_time else [data]:
        link.receive_data(chunk)
        new, out, errors = drain(link)
        events += new
        sent += out
        assert errors == 0
    assert events == [FrameReceived(payload=payload)]
    assert sent == bytes([ACK])
    assert link.buffered == 0 and link.stats.frames_received == 1


def test_ack_nak_and_eot_after_max_naks() -> None:
    link = Link(LinkSettings(length_field="bcd", max_naks=3))
    frame = link.send(b"\x10")
    for _ in range(2):
        link.receive_data(bytes([NAK]))
        assert drain(link) == ([FrameNaked(resent=True)], frame, 0)
    link.receive_data(bytes([NAK]))  # the third NAK in a row: give up
    assert drain(link) == ([FrameNaked(resent=False)], bytes([EOT]), 0)
    assert not link.awaiting_ack and link.stats.eots_sent == 1 and link.stats.resends == 2


def test_ack_clears_the_frame_and_resets_the_nak_count() -> None:
    link = Link(LinkSettings(max_naks=2))
    link.send(b"\x10")
    link.receive_data(bytes([NAK, ACK]))
    assert drain(link)[0] == [FrameNaked(resent=True), FrameAcked()]
    link.send(b"\x21")
    link.receive_data(bytes([NAK]))  # a fresh frame starts counting again
    assert drain(link)[0] == [FrameNaked(resent=True)]
    link.receive_data(bytes([ACK, ACK]))  # the second ACK is stray: ignored
    assert drain(link)[0] == [FrameAcked()]


def test_ack_timeout_resends_then_gives_up_with_eot() -> None:
    link = Link(LinkSettings(max_naks=3))
    frame = link.send(b"\x10")
    assert link.ack_timed_out() and link.data_to_send() == frame
    assert link.ack_timed_out() and link.data_to_send() == frame
    assert not link.ack_timed_out() and link.data_to_send() == bytes([EOT])
    with pytest.raises(LocalProtocolError):
        link.ack_timed_out()


def test_peer_eot_is_reported_and_one_frame_at_a_time() -> None:
    link = Link()
    link.receive_data(bytes([EOT]))
    assert drain(link)[0] == [PeerAborted()]
    link.send(b"\x10")
    with pytest.raises(LocalProtocolError):
        link.send(b"\x21")


def test_garbage_is_skipped_and_a_bad_lrc_is_naked() -> None:
    link = Link()
    good = bytes.fromhex("02 00 01 A2 03 A0")
    link.receive_data(b"\xff\x00\x30noise" + good[:-1] + b"\xa1" + good)
    assert drain(link) == ([FrameReceived(payload=b"\xa2")], bytes([NAK, ACK]), 1)
    assert link.stats.garbage_bytes == 8 and link.stats.naks_sent == 1


@pytest.mark.parametrize(
    ("length_field", "max_frame", "noise"),
    [
        ("binary", 32, "02 00 40" + " 00" * 10),  # over max_frame: FrameError, resync
        ("none", 16, "02" + " 41" * 20),  # no ETX within max_frame
        ("none", 4096, "02 41 42"),  # STX before ETX: the frame is abandoned
        # "02 00 03" claims 3 bytes but no ETX follows them: a false start, and the real frame
        # that starts inside it must still be found.
        ("bcd", 4096, "02 00 03 55"),
    ],
)
def test_malformed_frame_is_one_frame_error_then_resync(length_field: str, max_frame: int, noise: str) -> None:
    link = Link(LinkSettings(length_field=length_field, max_frame=max_frame))
    good = Link(link.settings).frame(b"\xa2")
    link.receive_data(bytes.fromhex(noise) + good)
    assert drain(link) == ([FrameReceived(payload=b"\xa2")], bytes([ACK]), 1)


def test_line_idle_abandons_a_stalled_false_frame() -> None:
    link = Link()
    link.receive_data(bytes.fromhex("02 00 40") + bytes.fromhex("02 00 01 A2 03 A0"))
    assert drain(link) == ([], b"", 0) and link.in_frame  # waiting for 40 bytes that never come
    assert link.line_idle()
    assert drain(link) == ([FrameReceived(payload=b"\xa2")], bytes([ACK]), 0)
    assert not link.line_idle()


def test_settings_from_profile_and_validation() -> None:
    settings = LinkSettings.from_profile(link_profile(length_field="binary", max_naks=2, max_frame=64))
    assert (settings.length_field, settings.max_naks, settings.max_frame) == ("binary", 2, 64)
    with pytest.raises(ValueError):
        LinkSettings(length_field="ascii")
    with pytest.raises(ProfileError):
        link_profile(lrc="crc16")  # the schema refuses it first
    defaults = link_profile()
    with pytest.raises(ValueError):
        LinkSettings.from_profile({**defaults, "link": {**defaults["link"], "lrc": "crc16"}})
    with pytest.raises(LocalProtocolError):
        Link(LinkSettings(length_field="none")).frame(b"\x20\x03")  # nothing would mark its end


def test_settings_without_a_profile_are_the_schema_defaults() -> None:
    """A codec made without a profile (settings=None) uses LinkSettings' own defaults: the codec
    reads no files, so they repeat the schema's, and must never drift from them."""
    schema = load_schema("card_reader").keys
    fields = ("length_field", "max_frame", "max_naks", "ack_timeout_s", "inter_char_timeout_s")
    assert {f: getattr(LinkSettings(), f) for f in fields} == {f: schema[f"link.{f}"].default for f in fields}
    assert {k for k in schema if k.startswith("link.")} == {f"link.{f}" for f in (*fields, "lrc")}
    assert CardReaderCodec(Role.HOST).settings == LinkSettings.from_profile(link_profile())


# -- application layer: our message set --------------------------------------------------------
@pytest.mark.parametrize(("message", "payload"), MESSAGES)
def test_message_payloads_both_directions(message: Message, payload: str) -> None:
    assert encode_message(message) == bytes.fromhex(payload)
    assert decode_message(bytes.fromhex(payload), sender=sender_of(message)) == message


@pytest.mark.parametrize(("message", "frame"), FRAMES)
def test_message_frames_both_directions_byte_at_a_time(message: Message, frame: str) -> None:
    sender = CardReaderCodec(sender_of(message), link_profile(length_field="bcd"))
    assert sender.send(message) == bytes.fromhex(frame)
    receiver = CardReaderCodec(Role.DEVICE if sender.role is Role.HOST else Role.HOST)
    events: list[Event] = []
    for byte in bytes.fromhex(frame):
        receiver.receive_data(bytes([byte]))
        events += drain(receiver)[0]
    assert events == [message]


def test_roles_refuse_the_other_direction() -> None:
    with pytest.raises(LocalProtocolError):
        CardReaderCodec(Role.HOST).send(CardRemoved())
    with pytest.raises(LocalProtocolError):
        CardReaderCodec(Role.DEVICE).send(CancelRead())
    host = CardReaderCodec(Role.HOST)
    host.receive_data(bytes.fromhex("02 00 01 21 03 23"))  # CancelRead, a host command
    assert drain(host) == ([], bytes([ACK]), 1)  # intact frame: ACKed, then refused


@pytest.mark.parametrize(
    "payload",
    [
        "",
        "7F",
        "40",
        "C0",
        "4F",
        "CF",
        "C2 00",
        "40 00 00 00 00 00 01 01 56 03 0C 1E",
        "40 00 00 00 00 00 01 01 56 08 06 1E",
        "40 00 00 00 00 00 01 01 56 04 0D 1E",
        "40 00 00 00 00 00 01 01 56 04 0C 00",
        "40 00 00 00 00 00 01 01 56 04 0C",
        "C0 01 01 23 45 67 89 AB CD EF 31",
        "C0 00 01 23 45 67 89 AB CD EF",
        "C0 00 01 23 45 67 89 AB CD EF 0A",
        "C0 00 01 23 45",
        "A0 02 C1 10" + PAN.encode().hex() + "C2 04 32 35 31 32 C6 01 03",
        "10 00",
        "20 00",
        "20 00 00 00 01 25 00 01 56 00 3C",
        "20 00 00 00 01 25 00 11 56 01 3C",
        "A1 02",
        "A0 09 C1 01 31",
        "A0 01 C2 04 32 35 31 32",
        "A0 01 C1 02 34 37 C2 04 32 35 31 32",
        "90 C1 01",
        "22 01 8A 01 30",
        "30 FF",
    ],
)
def test_malformed_payloads_raise_frame_error(payload: str) -> None:
    sender = Role.DEVICE if payload[:1] in "89ABCDEF" and payload else Role.HOST
    with pytest.raises(FrameError):
        decode_message(bytes.fromhex(payload), sender=sender)


@pytest.mark.parametrize(
    "message",
    [
        StartRead(amount_minor=-1, currency="156", modes=frozenset({EntryMode.CHIP}), timeout_s=60),
        StartRead(amount_minor=10**12, currency="156", modes=frozenset({EntryMode.CHIP}), timeout_s=60),
        StartRead(amount_minor=1, currency="CNY", modes=frozenset({EntryMode.CHIP}), timeout_s=60),
        StartRead(amount_minor=1, currency="156", modes=frozenset(), timeout_s=60),
        StartRead(amount_minor=1, currency="156", modes=frozenset({EntryMode.TAP}), timeout_s=0),
        CompleteChip(approved=True, response_code="000"),
        ShowMessage(text="\ud800"),
        CardRead(entry_mode=EntryMode.SWIPE, pan=Secret("47617390"), expiry=Secret("2512")),
        RequestPin(amount_minor=1, currency="156", timeout_s=30, min_length=3),
        RequestPin(amount_minor=1, currency="156", timeout_s=30, min_length=8, max_length=6),
        RequestPin(amount_minor=1, currency="156", timeout_s=30, max_length=13),
        RequestPin(amount_minor=1, currency="156", timeout_s=256),
        RequestPin(amount_minor=1, currency="156", timeout_s=30, prompt="\ud800"),
        PinEntered(pin_block=Secret(bytes(7)), key_id="K"),
        PinEntered(pin_block=Secret(bytes(8)), key_id=""),
        PinEntered(pin_block=Secret(bytes(8)), key_id="键"),
        PinEntered(pin_block=Secret(bytes(8)), key_id="K" * 33),
    ],
)
def test_misuse_raises_local_protocol_error(message: Message) -> None:
    with pytest.raises(LocalProtocolError):
        encode_message(message)


def test_card_data_never_reaches_reprs_or_errors() -> None:
    read = CardRead(entry_mode=EntryMode.CHIP, pan=Secret(PAN), expiry=Secret("2512"), track2=Secret(TRACK2))
    assert PAN not in repr(read) and "2512" not in repr(read)
    assert read.pan_last4 == "0010"
    payload = encode_message(read)
    assert PAN not in repr(FrameReceived(payload=payload))
    with pytest.raises(FrameError) as caught:  # expiry one byte short: the TLV after it misparses
        decode_message(payload.replace(b"\xc2\x04", b"\xc2\x03"), sender=Role.DEVICE)
    assert PAN not in str(caught.value) and PAN.encode().hex() not in str(caught.value)
    with pytest.raises(LocalProtocolError) as misuse:
        encode_message(CardRead(entry_mode=EntryMode.SWIPE, pan=Secret(PAN + "X"), expiry=Secret("2512")))
    assert PAN not in str(misuse.value)


def test_pin_block_never_reaches_reprs_or_errors() -> None:
    block = bytes.fromhex("A1B2C3D4E5F60718")
    entered = PinEntered(pin_block=Secret(block), key_id="TPK-1")
    for text in (repr(entered), str(entered), f"{entered}"):
        assert block.hex() not in text.lower() and "a1b2" not in text.lower() and repr(block) not in text
    payload = encode_message(entered)
    with pytest.raises(FrameError) as caught:
        decode_message(payload[:-5] + b"\x0a", sender=Role.DEVICE)  # a key id with a control char
    assert block.hex() not in str(caught.value).lower()
    with pytest.raises(LocalProtocolError) as misuse:
        encode_message(PinEntered(pin_block=Secret(block + b"\x00"), key_id="TPK-1"))
    assert block.hex() not in str(misuse.value).lower()


def test_every_command_byte_has_a_message() -> None:
    for command in Command:
        sender = Role.DEVICE if command & 0x80 else Role.HOST
        with pytest.raises(FrameError) as caught:
            decode_message(bytes([command]) + b"\xff" * 40, sender=sender)
        assert "unknown command" not in str(caught.value)


@pytest.mark.parametrize("size", [0, 1, 2, 3, 7, 8, 9, 63, 64, 65, 255, 1000])
def test_lrc_is_the_xor_of_every_byte(size: int) -> None:
    data = bytes((i * 37 + 11) % 256 for i in range(size))
    expected = 0
    for b in data:
        expected ^= b
    assert lrc(data) == lrc(bytearray(data)) == expected
