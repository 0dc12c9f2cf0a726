"""Card reader codec under hypothesis: random bytes raise only FrameError, buffers stay bounded,
the link resynchronises after garbage, and every message round-trips through both roles."""

from __future__ import annotations

from hypothesis import given, settings
from hypothesis import strategies as st

from drivers.card_reader.codec import ACK, NAK, CardReaderCodec, Link, LinkSettings
from drivers.card_reader.events import (
    CancelRead,
    CardReaderCommand,
    CardReaderEvent,
    CardRemoved,
    CompleteChip,
    DeviceInfo,
    EntryMode,
    Event,
    FrameAcked,
    LinkEvent,
    Message,
    PinCancelled,
    PinEntered,
    ReadFailed,
    RequestPin,
    ShowMessage,
    StartRead,
)
from drivers.card_reader.messages import decode_message, encode_message
from drivers.errors import FrameError
from drivers.events import Role
from drivers.sensitive import Secret
from tests.unit.test_card_reader_codec import drain, link_profile, sender_of

KNOWN = (LinkEvent, CardReaderCommand, CardReaderEvent)
length_fields = st.sampled_from(["bcd", "binary", "none"])


@settings(deadline=None)
@given(
    length_field=length_fields,
    role=st.sampled_from([Role.HOST, Role.DEVICE]),
    chunks=st.lists(st.tuples(st.binary(max_size=80), st.booleans()), max_size=12),
    send_first=st.booleans(),
)
def test_random_bytes_only_raise_frame_error(
    length_field: str, role: Role, chunks: list[tuple[bytes, bool]], send_first: bool
) -> None:
    codec = CardReaderCodec(role, link_profile(length_field=length_field, max_frame=64))
    settings_ = codec.settings
    if send_first:
        codec.send(CancelRead() if role is Role.HOST else CardRemoved())
    for chunk, idle in chunks:
        codec.receive_data(chunk)
        events, _, _ = drain(codec)
        assert all(isinstance(event, KNOWN) for event in events)
        if idle:
            codec.line_idle()
            assert all(isinstance(event, KNOWN) for event in drain(codec)[0])
        assert codec.link.buffered <= settings_.max_frame


@settings(deadline=None)
@given(length_field=length_fields, garbage=st.binary(max_size=120), split=st.integers(0, 40))
def test_valid_frame_after_garbage_is_still_decoded(length_field: str, garbage: bytes, split: int) -> None:
    codec = CardReaderCodec(Role.HOST, link_profile(length_field=length_field))
    frame = Link(LinkSettings(length_field=length_field)).frame(encode_message(CardRemoved()))

    def deliver(data: bytes) -> tuple[list[Event], bytes]:
        events: list[Event] = []
        sent = b""
        for part in (data[:split], data[split:]):
            codec.receive_data(part)
            new, out, _ = drain(codec)
            events, sent = events + new, sent + out
        while codec.in_frame:  # the line goes quiet: stalled (false) frames are abandoned
            codec.line_idle()
            new, out, _ = drain(codec)
            events, sent = events + new, sent + out
        return events, sent

    deliver(garbage)
    events, sent = deliver(frame)
    if CardRemoved() not in events:
        # Garbage plus the frame's head made up a frame of their own, which the link answered:
        # a NAK (the sender resends) or an ACK (as on any unsequenced link). Never silence.
        assert NAK in sent or ACK in sent
        events, sent = deliver(frame)  # the resend
    assert CardRemoved() in events
    assert codec.link.buffered == 0


messages = st.one_of(
    st.builds(
        StartRead,
        amount_minor=st.integers(0, 10**12 - 1),
        currency=st.from_regex(r"\A[0-9]{3}\Z"),
        modes=st.frozensets(st.sampled_from(EntryMode), min_size=1),
        timeout_s=st.integers(1, 255),
    ),
    st.builds(ShowMessage, text=st.text(max_size=40)),
    st.builds(ReadFailed, reason=st.text(max_size=40), fallback_allowed=st.booleans()),
    st.builds(
        CompleteChip,
        approved=st.booleans(),
        response_code=st.from_regex(r"\A[0-9A-Z]{2}\Z"),
        issuer_data=st.binary(min_size=1, max_size=16),
    ),
    st.builds(
        DeviceInfo, model=st.text(max_size=30), serial_number=st.text(max_size=20), firmware=st.text(max_size=10)
    ),
    st.integers(4, 12).flatmap(
        lambda low: st.builds(
            RequestPin,
            amount_minor=st.integers(0, 10**12 - 1),
            currency=st.from_regex(r"\A[0-9]{3}\Z"),
            timeout_s=st.integers(1, 255),
            min_length=st.just(low),
            max_length=st.integers(low, 12),
            prompt=st.text(max_size=30),
        )
    ),
    st.builds(
        PinEntered,
        pin_block=st.binary(min_size=8, max_size=8).map(Secret),
        key_id=st.from_regex(r"\A[ -~]{1,32}\Z"),
    ),
    st.builds(PinCancelled, reason=st.text(max_size=40)),
)


@settings(deadline=None)
@given(message=messages, length_field=st.sampled_from(["bcd", "binary"]))
def test_messages_round_trip_through_both_codecs(message: Message, length_field: str) -> None:
    link = link_profile(length_field=length_field)
    sender = CardReaderCodec(sender_of(message), link)
    receiver = CardReaderCodec(Role.DEVICE if sender.role is Role.HOST else Role.HOST, link)
    receiver.receive_data(sender.send(message))
    events, sent, errors = drain(receiver)
    assert (events, errors) == ([message], 0)
    sender.receive_data(sent)
    assert drain(sender)[0] == [FrameAcked()]


@settings(deadline=None)
@given(payload=st.binary(max_size=120), sender=st.sampled_from([Role.HOST, Role.DEVICE]))
def test_random_payloads_only_raise_frame_error(payload: bytes, sender: Role) -> None:
    try:
        message = decode_message(payload, sender=sender)
    except FrameError:
        return
    # Whatever decodes is a message of the sender's direction and encodes back to a payload that
    # decodes to the same message (unknown TLV tags and padding may be dropped on the way).
    assert isinstance(message, CardReaderCommand if sender is Role.HOST else CardReaderEvent)
    assert decode_message(encode_message(message), sender=sender) == message


@settings(deadline=None)
@given(
    length_field=st.sampled_from(["bcd", "binary"]),
    garbage=st.lists(st.binary(max_size=30), max_size=4),
    message=messages,
)
def test_frames_interleaved_with_garbage_resync(length_field: str, garbage: list[bytes], message: Message) -> None:
    """Garbage before and after a real frame never costs more than one resend of it."""
    profile = link_profile(length_field=length_field, max_frame=512)
    sender = CardReaderCodec(sender_of(message), profile)
    receiver = CardReaderCodec(Role.DEVICE if sender.role is Role.HOST else Role.HOST, profile)
    frame = sender.send(message)
    got: list[Event] = []
    for attempt in range(2):
        receiver.receive_data((b"".join(garbage) if attempt == 0 else b"") + frame)  # the resend: a clean line
        got += drain(receiver)[0]
        while receiver.in_frame:
            receiver.line_idle()
            got += drain(receiver)[0]
        assert receiver.link.buffered <= receiver.settings.max_frame
        if message in got:
            break
        assert attempt == 0
    assert message in got
