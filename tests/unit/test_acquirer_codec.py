"""Acquirer link codec: golden frames both ways, byte-at-a-time, bounds, roles, and fuzzing."""

from __future__ import annotations

from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

from drivers.acquirer.codec import MAX_MESSAGE, AcquirerCodec
from drivers.acquirer.events import HostMessage
from drivers.acquirer.spec import FIELDS, FieldFormat
from drivers.base import Role
from drivers.errors import FrameError, LocalProtocolError, RemoteProtocolError

PAN = "4761739001010010"  # public test PAN (emulator/card_reader/cards.toml "approved")

SALE = HostMessage(
    mti="0200",
    fields={
        "2": PAN,
        "3": "000000",
        "4": "000000012500",
        "11": "000123",
        "12": "143015",
        "13": "0115",
        "14": "2512",
        "22": "051",
        "23": "001",
        "25": "00",
        "41": "TERM0001",
        "42": "MERCHANT0000001",
        "49": "156",
        "52": bytes.fromhex("123456789ABCDEF0"),
        "55": bytes.fromhex("9F270180"),
        "60": "000001",
    },
)

# Written by hand from docs/host-link.md: ASCII text, ASCII LL/LLL lengths, binary bitmap/52/55.
SALE_FRAME = bytes.fromhex(
    "00 7E"  # length 126 = 4 + 8 + 18 + 6 + 12 + 6 + 6 + 4 + 4 + 3 + 3 + 2 + 8 + 15 + 3 + 8 + 7 + 9
    "30 32 30 30"  # MTI 0200
    "70 3C 06 80 00 C0 92 10"  # bitmap: 2 3 4 | 11 12 13 14 | 22 23 | 25 | - | 41 42 | 49 52 55 | 60
    "31 36 34 37 36 31 37 33 39 30 30 31 30 31 30 30 31 30"  # DE 2: LL "16" + PAN
    "30 30 30 30 30 30"  # DE 3 "000000"
    "30 30 30 30 30 30 30 31 32 35 30 30"  # DE 4 "000000012500"
    "30 30 30 31 32 33"  # DE 11 "000123"
    "31 34 33 30 31 35"  # DE 12 "143015"
    "30 31 31 35"  # DE 13 "0115"
    "32 35 31 32"  # DE 14 "2512"
    "30 35 31"  # DE 22 "051" chip
    "30 30 31"  # DE 23 "001"
    "30 30"  # DE 25 "00"
    "54 45 52 4D 30 30 30 31"  # DE 41 "TERM0001"
    "4D 45 52 43 48 41 4E 54 30 30 30 30 30 30 31"  # DE 42 "MERCHANT0000001"
    "31 35 36"  # DE 49 "156"
    "12 34 56 78 9A BC DE F0"  # DE 52 PIN block, 8 bytes binary
    "30 30 34 9F 27 01 80"  # DE 55: LLL "004" + TLV 9F27 = 80 (ARQC)
    "30 30 36 30 30 30 30 30 31"  # DE 60: LLL "006" + "000001"
)

APPROVAL = HostMessage(
    mti="0210",
    fields={
        "3": "000000",
        "4": "000000012500",
        "11": "000123",
        "12": "143016",
        "13": "0115",
        "37": "000000000001",
        "38": "000001",
        "39": "00",
        "41": "TERM0001",
        "42": "MERCHANT0000001",
        "49": "156",
        "60": "000001",
    },
)

APPROVAL_FRAME = bytes.fromhex(
    "00 65"  # length 101 = 4 + 8 + 6 + 12 + 6 + 6 + 4 + 12 + 6 + 2 + 8 + 15 + 3 + 9
    "30 32 31 30"  # MTI 0210
    "30 38 00 00 0E C0 80 10"  # bitmap: 3 4 | 11 12 13 | - | - | 37 38 39 | 41 42 | 49 | 60
    "30 30 30 30 30 30"  # DE 3
    "30 30 30 30 30 30 30 31 32 35 30 30"  # DE 4
    "30 30 30 31 32 33"  # DE 11
    "31 34 33 30 31 36"  # DE 12 "143016"
    "30 31 31 35"  # DE 13
    "30 30 30 30 30 30 30 30 30 30 30 31"  # DE 37 RRN "000000000001"
    "30 30 30 30 30 31"  # DE 38 auth code "000001"
    "30 30"  # DE 39 "00"
    "54 45 52 4D 30 30 30 31"  # DE 41
    "4D 45 52 43 48 41 4E 54 30 30 30 30 30 30 31"  # DE 42
    "31 35 36"  # DE 49
    "30 30 36 30 30 30 30 30 31"  # DE 60
)

GOLDEN = [(Role.HOST, SALE, SALE_FRAME), (Role.DEVICE, APPROVAL, APPROVAL_FRAME)]


def _peer(role: Role) -> Role:
    return Role.DEVICE if role is Role.HOST else Role.HOST


def _frame(body: bytes) -> bytes:
    return len(body).to_bytes(2, "big") + body


def _decode_one(role: Role, frame: bytes) -> HostMessage:
    codec = AcquirerCodec(role)
    codec.receive_data(frame)
    message = codec.next_event()
    assert message is not None
    assert codec.next_event() is None
    return message


@pytest.mark.parametrize(("sender", "message", "frame"), GOLDEN)
def test_golden_encode(sender: Role, message: HostMessage, frame: bytes) -> None:
    assert AcquirerCodec(sender).send(message) == frame


@pytest.mark.parametrize(("sender", "message", "frame"), GOLDEN)
def test_golden_decode(sender: Role, message: HostMessage, frame: bytes) -> None:
    assert _decode_one(_peer(sender), frame) == message


@pytest.mark.parametrize(("sender", "message", "frame"), GOLDEN)
def test_golden_byte_at_a_time(sender: Role, message: HostMessage, frame: bytes) -> None:
    codec = AcquirerCodec(_peer(sender))
    for byte in frame[:-1]:
        codec.receive_data(bytes([byte]))
        assert codec.next_event() is None
    codec.receive_data(frame[-1:])
    assert codec.next_event() == message


def test_two_frames_in_one_read() -> None:
    codec = AcquirerCodec(Role.HOST)
    codec.receive_data(APPROVAL_FRAME + APPROVAL_FRAME[:5])
    assert codec.next_event() == APPROVAL
    assert codec.next_event() is None
    codec.receive_data(APPROVAL_FRAME[5:])
    assert codec.next_event() == APPROVAL


def test_oversize_header_is_a_frame_error_and_drops_the_buffer() -> None:
    codec = AcquirerCodec(Role.DEVICE)
    codec.receive_data((MAX_MESSAGE + 1).to_bytes(2, "big") + SALE_FRAME)
    with pytest.raises(FrameError):
        codec.next_event()
    codec.receive_data(SALE_FRAME)  # framing is lost for good: the connection must go
    with pytest.raises(FrameError):
        codec.next_event()


def test_largest_allowed_header_waits_for_its_body() -> None:
    codec = AcquirerCodec(Role.DEVICE)
    codec.receive_data(MAX_MESSAGE.to_bytes(2, "big") + b"0200")
    assert codec.next_event() is None


def test_an_undecodable_frame_keeps_framing_in_sync() -> None:
    codec = AcquirerCodec(Role.DEVICE)
    codec.receive_data(_frame(b"hello") + SALE_FRAME)
    with pytest.raises(RemoteProtocolError) as info:
        codec.next_event()
    assert not isinstance(info.value, FrameError)
    assert codec.next_event() == SALE


@pytest.mark.parametrize(
    "body",
    [
        b"0200" + bytes.fromhex("0800000000000000") + b"x",  # field 5: not in our spec
        b"0200" + bytes.fromhex("8000000000000000") + bytes.fromhex("0400000000000000"),  # DE 70
        b"02X0" + bytes(8),  # MTI not numeric
        b"0200" + bytes.fromhex("4000000000000000") + b"16476173900101001A",  # letter in a PAN
    ],
)
def test_bodies_we_cannot_accept(body: bytes) -> None:
    codec = AcquirerCodec(Role.DEVICE)
    codec.receive_data(_frame(body))
    with pytest.raises(RemoteProtocolError):
        codec.next_event()


def test_errors_never_quote_card_data() -> None:
    truncated = SALE_FRAME[2:40]  # the PAN is complete, DE 4 is cut short
    codec = AcquirerCodec(Role.DEVICE)
    codec.receive_data(_frame(truncated))
    with pytest.raises(RemoteProtocolError) as info:
        codec.next_event()
    assert PAN not in str(info.value)
    assert info.value.__cause__ is None  # pyiso8583's error holds the raw bytes: not chained


def test_roles() -> None:
    with pytest.raises(LocalProtocolError):
        AcquirerCodec(Role.HOST).send(APPROVAL)
    with pytest.raises(LocalProtocolError):
        AcquirerCodec(Role.DEVICE).send(SALE)
    with pytest.raises(RemoteProtocolError):
        _decode_one(Role.HOST, SALE_FRAME)  # a request arriving at the terminal
    echo = HostMessage(mti="0800", fields={"11": "000001", "41": "TERM0001"})
    for role in Role:  # network management goes either way
        assert _decode_one(_peer(role), AcquirerCodec(role).send(echo)) == echo


@pytest.mark.parametrize(
    ("key", "value"),
    [
        ("2", "47617390010100X0"),  # not digits
        ("2", "4" * 20),  # longer than n..19
        ("4", "12500"),  # fixed length n12
        ("55", "9F270180"),  # binary field given text
        ("3", b"\x00" * 6),  # text field given bytes
        ("70", "301"),  # not in the spec
    ],
)
def test_send_rejects_bad_fields_without_quoting_them(key: str, value: str | bytes) -> None:
    message = HostMessage(mti="0200", fields={**SALE.fields, key: value})
    with pytest.raises(LocalProtocolError) as info:
        AcquirerCodec(Role.HOST).send(message)
    assert PAN not in str(info.value)
    if isinstance(value, str):
        assert value not in str(info.value)


def test_message_repr_masks_card_data() -> None:
    track2 = f"{PAN}=25122011000000000000"
    message = HostMessage(mti="0200", fields={**SALE.fields, "35": track2})
    shown = repr(message)
    assert PAN not in shown and "0010" in shown
    for hidden in ("2512", "123456789ABCDEF0", "9F270180", "\\x9f", "\\xde\\xf0", "=2512"):
        assert hidden not in shown
    assert str(message) == shown


def test_message_helpers_and_match_key() -> None:
    assert (SALE.stan, SALE.terminal_id, SALE.response_code) == ("000123", "TERM0001", None)
    assert APPROVAL.response_code == "00"
    assert SALE.match_key == APPROVAL.match_key == ("0210", "TERM0001", "000123")
    other = HostMessage(mti="0210", fields={**APPROVAL.fields, "11": "000124"})
    assert other.match_key != SALE.match_key
    assert HostMessage(mti="0401", fields={}).match_key[0] == "0410"
    assert hash(SALE) == hash(_decode_one(Role.DEVICE, SALE_FRAME))


def test_message_is_frozen_and_validated() -> None:
    source = {"11": "000001"}
    message = HostMessage(mti="0800", fields=source)
    source["11"] = "999999"
    assert message.stan == "000001"
    with pytest.raises(TypeError):
        message.fields["11"] = "x"  # type: ignore[index]
    for mti, fields in (("200", {}), ("02a0", {}), ("0200", {"t": "0200"}), ("0200", {"1": "x"})):
        with pytest.raises(LocalProtocolError):
            HostMessage(mti=mti, fields=fields)


def test_docs_table_matches_the_spec() -> None:
    docs = (Path(__file__).parents[2] / "docs" / "host-link.md").read_text(encoding="utf-8")
    for key, fmt in FIELDS.items():
        size = f"{fmt.content}{'..' if fmt.var else ''}{fmt.length}"
        length = {0: "fixed", 2: "LLVAR", 3: "LLLVAR"}[fmt.var]
        encoding = "binary" if fmt.content == "b" else "ASCII"
        assert f"| {key} | {size} | {length} | {encoding} | {fmt.desc} |" in docs


# -- property tests -----------------------------------------------------------------------------
_ALPHABETS = {"n": "0123456789", "an": "ABCZ0189 ", "ans": "Az09 -=/#~", "z": "0123456789=D"}


def _value(fmt: FieldFormat) -> st.SearchStrategy[str | bytes]:
    low = 0 if fmt.var else fmt.length  # an empty LLVAR is legal and round-trips
    if fmt.content == "b":
        return st.binary(min_size=low, max_size=fmt.length)
    return st.text(_ALPHABETS[fmt.content], min_size=low, max_size=fmt.length)


_messages = st.builds(
    lambda mti, fields: HostMessage(mti=mti, fields=fields),
    st.sampled_from(["0200", "0220", "0400", "0401", "0500", "0320", "0800"]),
    st.dictionaries(st.sampled_from(sorted(FIELDS)), st.none()).flatmap(
        lambda keys: st.fixed_dictionaries({k: _value(FIELDS[k]) for k in keys})
    ),
)


@given(_messages)
def test_round_trip_any_message(message: HostMessage) -> None:
    assert _decode_one(Role.DEVICE, AcquirerCodec(Role.HOST).send(message)) == message


@given(st.lists(st.binary(max_size=64), max_size=20))
def test_random_bytes_raise_only_documented_errors(chunks: list[bytes]) -> None:
    codec = AcquirerCodec(Role.DEVICE)
    for chunk in chunks:
        codec.receive_data(chunk)
        for _ in range(len(chunk) + 1):  # each event consumes at least its 2-byte header
            try:
                if codec.next_event() is None:
                    break
            except FrameError:
                return
            except RemoteProtocolError:
                continue


@given(st.binary(max_size=300))
def test_random_bodies_raise_only_remote_protocol_error(body: bytes) -> None:
    codec = AcquirerCodec(Role.HOST)
    codec.receive_data(_frame(body))
    try:
        assert isinstance(codec.next_event(), HostMessage)
    except RemoteProtocolError as exc:
        assert not isinstance(exc, FrameError)
    assert codec.next_event() is None  # exactly one frame consumed either way


@given(st.integers(min_value=0, max_value=len(SALE_FRAME) - 3), st.integers(0, 255))
def test_corrupted_sale_never_leaks_the_pan(position: int, byte: int) -> None:
    body = bytearray(SALE_FRAME[2:])
    body[position] = byte
    codec = AcquirerCodec(Role.DEVICE)
    codec.receive_data(_frame(bytes(body)))
    try:
        codec.next_event()
    except RemoteProtocolError as exc:
        assert PAN not in str(exc) and exc.__cause__ is None
