"""emulator/emv.py: the §7 cryptogram vectors, the card's second GENERATE AC, and PIN blocks.

PIN blocks are decrypted here, in the test only, with cryptography directly: production code
never recovers a clear PIN (the issuer side re-encrypts and compares).
"""

from __future__ import annotations

import datetime

import pytest
from cryptography.hazmat.decrepit.ciphers.algorithms import TripleDES
from cryptography.hazmat.primitives.ciphers import Cipher, modes
from hypothesis import given, settings
from hypothesis import strategies as st

from drivers.card_reader.events import EntryMode, StartRead
from drivers.emv import tlv
from emulator.card_reader import emv
from emulator.card_reader.cards import get_card, load_catalogue
from tests.support.depth import examples

# PROTOCOLS.md §7: the field 55 of an ARQC, and the issuer's answer to it.
FIELD_55 = bytes.fromhex(
    "5A08476173900101001057134761739001010010D2512201000000000000005F34010182021800950500000000"
    "009A032401019C01009F02060000000012505F2A0201569F1A0201569F360200019F3704123456789F26083750"
    "607C4D5B7D8D9F2701809F100706010A03A00000"
)
ARQC = bytes.fromhex("3750607C4D5B7D8D")
ISSUER_RESPONSE = bytes.fromhex("8A 02 30 30 91 0A 9E 16 BF 16 B1 E3 90 A2 30 30")
PAN, PSN = "4761739001010010", "01"


def decrypt(block: bytes, key: bytes = emv.TEST_PIN_KEY) -> bytes:
    """Test-only 3DES decryption (a 16-byte key K1K2 is the 24-byte K1K2K1)."""
    decryptor = Cipher(TripleDES(key + key[:8]), modes.ECB()).decryptor()
    return decryptor.update(block) + decryptor.finalize()


def pin_of(clear_block: bytes, pan: str) -> str:
    pan_field = bytes.fromhex("0000" + pan[:-1][-12:])
    text = bytes(a ^ b for a, b in zip(clear_block, pan_field, strict=True)).hex().upper()
    assert text[0] == "0", "format 0"
    return text[2 : 2 + int(text[1], 16)]


# -- §7 golden vectors -------------------------------------------------------------------------
def test_arqc_vector() -> None:
    data = tlv.decode_dict(FIELD_55)
    cvr = data["9F10"][3:]
    assert cvr == bytes.fromhex("03A00000")
    assert emv.generate_ac(data, cvr, pan=PAN, psn=PSN) == ARQC == data["9F26"]


def test_issuer_response_vector() -> None:
    issuer_data = emv.make_arpc(ARQC, "00", pan=PAN, psn=PSN)
    assert issuer_data == bytes.fromhex("9E16BF16B1E390A2 3030")
    assert emv.make_arpc(ARQC, b"00", pan=PAN, psn=PSN) == issuer_data
    assert tlv.encode([("8A", b"00"), ("91", issuer_data)]) == ISSUER_RESPONSE


def test_verify_arqc_accepts_the_vector() -> None:
    assert emv.verify_arqc(FIELD_55, PAN, PSN)
    assert emv.verify_arqc(FIELD_55, PAN, "1")  # PSN "1" and "01" are the same number


@pytest.mark.parametrize(
    ("tag", "value"),
    [
        ("9F02", "000000001251"),  # the amount the ARQC covers was changed
        ("9F26", "3750607C4D5B7D8E"),  # the cryptogram itself
        ("9F37", "12345679"),
        ("9F36", "0002"),
        ("9F10", "06010A03A00001"),  # the CVR
    ],
)
def test_verify_arqc_refuses_tampered_data(tag: str, value: str) -> None:
    items = [(item.tag, bytes.fromhex(value) if item.tag == tag else item.value) for item in tlv.decode(FIELD_55)]
    assert not emv.verify_arqc(tlv.encode(items), PAN, PSN)


@pytest.mark.parametrize(
    ("icc", "pan", "psn"),
    [
        (FIELD_55, "4761739001010028", PSN),  # another card's key
        (FIELD_55, PAN, "02"),
        (FIELD_55.replace(bytes.fromhex("9F3602 0001"), b""), PAN, PSN),  # ATC missing
        (FIELD_55.replace(bytes.fromhex("9F100706010A03A00000"), bytes.fromhex("9F100706011203A00000")), PAN, PSN),
        (b"\x9f\x26", PAN, PSN),  # not TLV
        (b"", PAN, PSN),
    ],
)
def test_verify_arqc_refuses_other_keys_and_broken_data(icc: bytes, pan: str, psn: str) -> None:
    assert not emv.verify_arqc(icc, pan, psn)


def test_make_arpc_refuses_a_bad_arc() -> None:
    with pytest.raises(ValueError):
        emv.make_arpc(ARQC, "000", pan=PAN, psn=PSN)


# -- the card ----------------------------------------------------------------------------------
def _session(card: str = "approved", amount: int = 12500) -> emv.ChipSession:
    read = StartRead(amount_minor=amount, currency="156", modes=frozenset({EntryMode.CHIP}), timeout_s=60)
    return emv.first_ac(get_card(card), read, country="156", today=datetime.date(2026, 11, 22), atc=7)


@pytest.mark.parametrize("name", sorted(n for n, c in load_catalogue().items() if c.pan_sequence))
def test_every_chip_card_makes_an_arqc_the_issuer_verifies(name: str) -> None:
    card = get_card(name)
    session = _session(name)
    for contactless in (False, True):
        icc = emv.field_55(session, contactless=contactless)
        assert emv.verify_arqc(icc, card.pan, card.pan_sequence)
        assert not emv.verify_arqc(icc, "4761739001010010" if card.pan.endswith("8") else "4761739001010028", "01")
    items = tlv.decode_dict(emv.field_55(session, contactless=False))
    assert items["9F02"] == bytes.fromhex("000000012500") and items["9F36"] == b"\x00\x07"
    assert items["9A"] == bytes.fromhex("261122") and items["9F27"] == b"\x80"


def test_the_arqc_covers_the_amount() -> None:
    assert _session(amount=100).values["9F26"] != _session(amount=101).values["9F26"]


def _second(
    session: emv.ChipSession, *, approved: bool = True, arc: str = "00", issuer_data: bytes | None = None
) -> emv.SecondAc:
    card = session.card
    if issuer_data is None:
        issuer_data = emv.make_arpc(session.values["9F26"], arc, pan=card.pan, psn=card.pan_sequence)
    return emv.second_ac(session, host_approved=approved, arc=arc, issuer_data=issuer_data)


def test_second_ac_gives_a_tc_when_the_arpc_verifies() -> None:
    session = _session()
    result = _second(session)
    assert result.approved and result.issuer_authenticated
    items = tlv.decode_dict(result.icc_data)
    assert items["9F27"] == b"\x40" and items["8A"] == b"00" and items["9F36"] == session.atc
    assert items["95"] == bytes(5) and items["9F10"] == bytes.fromhex("06010A03600000")
    # The TC is a real cryptogram over the transaction with the TC's CVR (computed independently).
    data = {**session.values, "95": items["95"]}
    card = session.card
    assert items["9F26"] == emv.generate_ac(data, bytes.fromhex("03600000"), pan=card.pan, psn=card.pan_sequence)
    assert items["9F26"] != session.values["9F26"]


@pytest.mark.parametrize(
    ("approved", "arc", "issuer_data", "authenticated"),
    [
        (False, "05", None, True),  # the issuer declined (a valid ARPC for ARC 05)
        (True, "05", None, True),  # ARC says no, whatever the flag says
        (True, "00", b"", False),  # no issuer authentication data (host unreachable)
        (True, "00", bytes.fromhex("9E16BF16B1E390A23030"), False),  # §7's ARPC: another ARQC's
        (True, "00", bytes(10), False),
    ],
)
def test_second_ac_gives_an_aac_otherwise(
    approved: bool, arc: str, issuer_data: bytes | None, authenticated: bool
) -> None:
    result = _second(_session(), approved=approved, arc=arc, issuer_data=issuer_data)
    assert not result.approved and result.issuer_authenticated is authenticated
    items = tlv.decode_dict(result.icc_data)
    assert items["9F27"] == b"\x00" and items["8A"] == arc.encode()
    failed = bool(issuer_data) and not authenticated
    assert items["9F10"][4] == (0x20 | (0x08 if failed else 0))
    assert items["95"] == (bytes.fromhex("0000000040") if failed else bytes(5))


def test_session_repr_holds_no_card_data() -> None:
    session = _session()
    assert get_card("approved").pan not in repr(session) and "approved" in repr(session)


# -- PIN blocks --------------------------------------------------------------------------------
def test_format0_vector() -> None:
    # The classic ISO 9564 format-0 example: PIN 1234, PAN 43219876543210987.
    assert emv.pin_block_format0("1234", "43219876543210987") == bytes.fromhex("0412AC89ABCDEF67")


@pytest.mark.parametrize(
    ("pin", "pan"), [("123", PAN), ("1234567890123", PAN), ("12a4", PAN), ("1234", "476173900101")]
)
def test_format0_refuses_bad_input_without_echoing_it(pin: str, pan: str) -> None:
    with pytest.raises(ValueError) as caught:
        emv.pin_block_format0(pin, pan)
    assert pin not in str(caught.value) and pan not in str(caught.value)


@settings(deadline=None, max_examples=examples(50))
@given(pin=st.from_regex(r"\A[0-9]{4,12}\Z"), card=st.sampled_from(sorted(load_catalogue())))
def test_pin_block_round_trip(pin: str, card: str) -> None:
    pan = get_card(card).pan
    block = emv.encrypt_pin_block(pin, pan)
    assert len(block) == 8 and block != emv.pin_block_format0(pin, pan)
    assert decrypt(block) == emv.pin_block_format0(pin, pan)
    assert pin_of(decrypt(block), pan) == pin
    assert emv.verify_pin_block(block, pan, pin)
    assert not emv.verify_pin_block(block, pan, pin[:-1] + str((int(pin[-1]) + 1) % 10))
    assert not emv.verify_pin_block(block, pan, "12")  # not a PIN: False, not an error


def test_pin_block_depends_on_key_and_pan() -> None:
    block = emv.encrypt_pin_block("1234", PAN)
    assert block != emv.encrypt_pin_block("1234", "4761739001010028")
    assert block != emv.encrypt_pin_block("1234", PAN, key=emv.ISSUER_MASTER_KEY)
    assert not emv.verify_pin_block(block, PAN, "1234", key=emv.ISSUER_MASTER_KEY)
