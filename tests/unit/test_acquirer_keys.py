"""Working keys under the TMK, their KCVs, and the DE 64 retail MAC: golden vectors, each checked
against a second implementation written here on `cryptography` alone (not pyemv)."""

from __future__ import annotations

from datetime import datetime

import pytest
from cryptography.hazmat.decrepit.ciphers.algorithms import TripleDES
from cryptography.hazmat.primitives.ciphers import Cipher, modes

from drivers.acquirer import mac
from drivers.acquirer.codec import encode_body
from drivers.acquirer.events import HostMessage
from drivers.acquirer.keys import TEST_TMK, decrypt_key, encrypt_key, kcv, retail_mac
from drivers.acquirer.spec import WorkingKeys, check_value
from drivers.errors import RemoteProtocolError
from drivers.sensitive import Secret
from terminal.host.messages import sale_request

KEY = bytes.fromhex("0123456789ABCDEFFEDCBA9876543210")


def _ecb(key: bytes, data: bytes, *, decrypt: bool = False) -> bytes:
    """3DES-ECB with a 24-byte key (a single DES key repeated three times is DES)."""
    cipher = Cipher(TripleDES(key), modes.ECB())
    op = cipher.decryptor() if decrypt else cipher.encryptor()
    return op.update(data) + op.finalize()


def _x9_19(key: bytes, data: bytes) -> bytes:
    """ANSI X9.19 by the book: zero-pad, single-DES CBC under K1, then D(K2), E(K1) on the last block."""
    k1, k2 = key[:8] * 3, key[8:] * 3
    data += bytes(-len(data) % 8)
    block = bytes(8)
    for i in range(0, len(data), 8):
        block = _ecb(k1, bytes(a ^ b for a, b in zip(block, data[i:i + 8], strict=True)))
    return _ecb(k1, _ecb(k2, block, decrypt=True))


def test_kcv_golden_vector() -> None:
    # Published: pyemv's docs give 08D7 as the first 2 bytes for this key.
    assert kcv(KEY).hex().upper() == "08D7B4FB"
    assert kcv(KEY) == _ecb(KEY + KEY[:8], bytes(8))[:4]
    assert check_value(KEY.hex().upper()) == "08D7B4FB"


def test_key_under_the_tmk_round_trips_and_matches_an_independent_3des() -> None:
    wrapped = encrypt_key(TEST_TMK, KEY)
    assert wrapped == _ecb(TEST_TMK + TEST_TMK[:8], KEY)
    assert wrapped.hex().upper() == "901CE083B354A0A4DC1D8B0B871DB222"
    assert decrypt_key(TEST_TMK, wrapped) == KEY


@pytest.mark.parametrize(
    ("data", "expected"),
    [
        (b"Now is the time for all ", "A1C72E74EA3FA9B6"),  # the published ANSI X9.19 example
        (bytes(range(21)), "C7557F8870C6A31B"),  # a partial last block: zero padding
    ],
)
def test_retail_mac_golden_vectors(data: bytes, expected: str) -> None:
    assert retail_mac(KEY, data) == _x9_19(KEY, data)
    assert retail_mac(KEY, data).hex().upper() == expected


def test_de62_carries_keys_under_the_tmk_with_kcvs() -> None:
    keys = WorkingKeys(pin_key=Secret(KEY.hex().upper()), mac_key=Secret("FFEEDDCCBBAA99887766554433221100"))
    field = keys.to_field()
    assert field[:40] == "901CE083B354A0A4DC1D8B0B871DB222" + "08D7B4FB"
    assert KEY.hex().upper() not in field  # the clear key never travels
    assert WorkingKeys.from_field(field) == keys
    with pytest.raises(RemoteProtocolError, match="check value"):
        WorkingKeys.from_field(field, tmk=bytes(16))  # another terminal's TMK
    with pytest.raises(RemoteProtocolError, match="check value"):
        WorkingKeys.from_field(field[:32] + "00000000" + field[40:])


def test_de64_is_the_mac_of_the_message_up_to_de64() -> None:
    request = sale_request(
        stan=1, amount_minor=12500, currency="156", terminal_id="TERM0001", merchant_id="MERCHANT0000001",
        batch=1, when=datetime(2025, 1, 15, 14, 30, 15), entry_mode="swipe", pan=Secret("4761739001010010"),
        expiry=None, track2=None, icc_data=None, pan_sequence=None,
    )
    signed = mac.sign(request, KEY)
    body = encode_body(signed)
    assert body[-8:] == signed.fields["64"] == _x9_19(KEY, body[:-8])
    # sign() keeps the body it MACed for the frame: the same bytes a fresh encoding makes
    assert body == encode_body(HostMessage(mti=signed.mti, fields=dict(signed.fields)))
    assert mac.verify(signed, KEY)
    assert not mac.verify(request, KEY)  # no DE 64
    assert not mac.verify(signed, bytes(16))  # another key
    tampered = HostMessage(mti=signed.mti, fields={**signed.fields, "4": "000000012600"})
    assert not mac.verify(tampered, KEY)
    assert mac.is_maced("0200") and mac.is_maced("0510") and not mac.is_maced("0800")
