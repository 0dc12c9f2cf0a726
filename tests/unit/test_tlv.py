"""EMV BER-TLV and the EMV numeric formats: PROTOCOLS.md §7 vectors, both directions, plus fuzzing."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from drivers.emv import tlv
from drivers.errors import LocalProtocolError, RemoteProtocolError

# §7: the 110-byte field 55 of an ARQC for PAN 4761739001010010.
FIELD_55 = bytes.fromhex(
    "5A08476173900101001057134761739001010010D2512201000000000000005F34010182021800950500000000"
    "009A032401019C01009F02060000000012505F2A0201569F1A0201569F360200019F3704123456789F26083750"
    "607C4D5B7D8D9F2701809F100706010A03A00000"
)
FIELD_55_ITEMS = [
    ("5A", "4761739001010010"),
    ("57", "4761739001010010D251220100000000000000"),
    ("5F34", "01"),
    ("82", "1800"),
    ("95", "0000000000"),
    ("9A", "240101"),
    ("9C", "00"),
    ("9F02", "000000001250"),
    ("5F2A", "0156"),
    ("9F1A", "0156"),
    ("9F36", "0001"),
    ("9F37", "12345678"),
    ("9F26", "3750607C4D5B7D8D"),
    ("9F27", "80"),
    ("9F10", "06010A03A00000"),
]
ISSUER_RESPONSE = bytes.fromhex("8A023030910A9E16BF16B1E390A23030")  # §7: ARC "00" + ARPC
SELECT_RESPONSE = bytes.fromhex("6F1D8407A0000000038002A5125008424152434C415953870100" + "5F2D02656E")


def test_field_55_vector_decodes_to_exact_items() -> None:
    assert len(FIELD_55) == 110
    decoded = [(item.tag, item.value.hex().upper()) for item in tlv.decode(FIELD_55)]
    assert decoded == FIELD_55_ITEMS


def test_field_55_vector_encodes_to_exact_bytes() -> None:
    assert tlv.encode([(tag, bytes.fromhex(value)) for tag, value in FIELD_55_ITEMS]) == FIELD_55


def test_issuer_response_vector() -> None:
    assert tlv.decode_dict(ISSUER_RESPONSE) == {"8A": b"00", "91": bytes.fromhex("9E16BF16B1E390A23030")}
    assert tlv.encode({"8A": b"00", "91": bytes.fromhex("9E16BF16B1E390A23030")}) == ISSUER_RESPONSE


def test_constructed_templates_nest() -> None:
    (fci,) = tlv.decode(SELECT_RESPONSE)
    assert fci.tag == "6F" and fci.constructed
    children = fci.children()
    assert [c.tag for c in children] == ["84", "A5"]
    assert children[0].value == bytes.fromhex("A0000000038002")
    assert [c.tag for c in children[1].children()] == ["50", "87", "5F2D"]
    assert tlv.find(SELECT_RESPONSE, "50") == b"BARCLAYS"
    assert tlv.find(SELECT_RESPONSE, "5f2d") == b"en"
    assert tlv.find(SELECT_RESPONSE, "9F38") is None
    with pytest.raises(tlv.TLVError):
        children[0].children()  # 84 is primitive


def test_repr_never_shows_the_value() -> None:
    item = tlv.decode(FIELD_55)[0]
    assert "4761739001010010" not in repr(item) and "476173" not in repr(item).replace(" ", "")
    assert repr(item) == "TLV(tag='5A', length=8)"


@pytest.mark.parametrize(
    ("length", "encoded"),
    [(0, "00"), (0x7F, "7F"), (0x80, "8180"), (0xFF, "81FF"), (0x100, "820100"), (0xFFFF, "82FFFF")],
)
def test_length_forms(length: int, encoded: str) -> None:
    assert tlv.encode_length(length) == bytes.fromhex(encoded)
    value = bytes(length)
    assert tlv.decode(bytes.fromhex("C1" + encoded) + value) == [tlv.TLV(tag="C1", value=value)]


@pytest.mark.parametrize("tag", ["9F02", "5F2A", "DF8101", "C1", "70"])
def test_multi_byte_and_private_tags_round_trip(tag: str) -> None:
    data = tlv.encode([(tag, b"\x12\x34")])
    assert data == bytes.fromhex(tag) + b"\x02\x12\x34"
    assert tlv.decode_dict(data) == {tag: b"\x12\x34"}


@pytest.mark.parametrize("tag", ["", "9", "1F", "9F82", "9F8282", "00", "G1", "9F828201"])
def test_malformed_tags_are_refused_on_encode(tag: str) -> None:
    with pytest.raises(LocalProtocolError):
        tlv.encode_tag(tag)


def test_zero_padding_between_objects_is_skipped() -> None:
    assert tlv.decode_dict(b"\x00\x00\x9c\x01\x00\x00\x82\x02\x18\x00\x00") == {"9C": b"\x00", "82": b"\x18\x00"}


@pytest.mark.parametrize(
    "data",
    ["9F", "9F02", "9F0206000000", "5A80", "5A84000000000000", "8281", "5F2A8201", "DF818181810101"],
)
def test_truncated_or_unsupported_input_raises_tlv_error(data: str) -> None:
    with pytest.raises(tlv.TLVError):
        tlv.decode(bytes.fromhex(data))


def test_repeated_tag_is_an_error_for_decode_dict_only() -> None:
    data = b"\x9c\x01\x00\x9c\x01\x20"
    assert [item.value for item in tlv.decode(data)] == [b"\x00", b"\x20"]
    with pytest.raises(tlv.TLVError):
        tlv.decode_dict(data)


def test_numeric_formats() -> None:
    assert tlv.encode_n(12500, 6) == bytes.fromhex("000000012500")
    assert tlv.encode_n("156", 2) == bytes.fromhex("0156")
    assert tlv.decode_n(bytes.fromhex("000000012500")) == "000000012500"
    assert tlv.encode_cn("4761739001010010") == bytes.fromhex("4761739001010010")
    assert tlv.encode_cn("6228480402564890018") == bytes.fromhex("6228480402564890018F")
    assert tlv.decode_cn(bytes.fromhex("6228480402564890018F")) == "6228480402564890018"
    with pytest.raises(LocalProtocolError):
        tlv.encode_n(1_000_000_000_000, 6)  # 13 digits do not fit n12
    with pytest.raises(LocalProtocolError):
        tlv.encode_n("-1", 2)
    with pytest.raises(tlv.TLVError):
        tlv.decode_n(b"\x0a")


def test_track2_equivalent_matches_the_vector() -> None:
    raw = bytes.fromhex(dict(FIELD_55_ITEMS)["57"])
    text = tlv.decode_track2(raw)
    assert text == "4761739001010010=251220100000000000000"
    assert tlv.encode_track2(text) == raw
    assert tlv.encode_track2("4761739001010010=2512201" + "0" * 13).hex().upper().endswith("0F")
    with pytest.raises(LocalProtocolError):
        tlv.encode_track2("4761739001010010")
    with pytest.raises(tlv.TLVError):
        tlv.decode_track2(bytes.fromhex("4761"))


def test_tlv_error_is_a_remote_protocol_error() -> None:
    assert issubclass(tlv.TLVError, RemoteProtocolError)


_tags = st.sampled_from(["5A", "57", "82", "95", "9A", "9C", "9F02", "5F2A", "9F26", "9F10", "DF8101", "C3"])


@settings(deadline=None)
@given(st.lists(st.tuples(_tags, st.binary(max_size=300)), max_size=8))
def test_encode_decode_round_trip(items: list[tuple[str, bytes]]) -> None:
    decoded = tlv.decode(tlv.encode(items))
    # Leading 00 bytes of a value are never mistaken for padding: only between objects.
    assert [(item.tag, item.value) for item in decoded] == items


@settings(deadline=None)
@given(st.binary(max_size=200))
def test_random_bytes_only_raise_tlv_error(data: bytes) -> None:
    try:
        items = tlv.decode(data)
    except tlv.TLVError:
        return
    assert sum(len(item.value) for item in items) <= len(data)
