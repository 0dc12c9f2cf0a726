"""Working keys and the MAC of the acquirer link: the cryptography both ends share.

- **TMK** (terminal master key): injected into a real terminal and its PIN pad at key-loading
  time, never sent. Here it is `TEST_TMK`, a published TEST ONLY double-length 3DES key (also in
  docs/host-link.md), so nothing it protects is secret.
- **Working keys**: each sign-on (0810) delivers a PIN key and a MAC key in DE 62, each encrypted
  under the TMK (3DES ECB, two-key EDE) and followed by its KCV: the first 4 bytes of 3DES-ECB
  of eight zero bytes under the *clear* key. The receiver decrypts and checks the KCV, so a wrong
  TMK or a corrupted field is caught before the key is used.
- **MAC** (DE 64): ANSI X9.19 retail MAC = ISO 9797-1 MAC algorithm 3, padding method 1 (zeros),
  under the double-length working MAC key, over the message bytes from the MTI up to DE 64
  (bitmap included, with bit 64 set); DE 64 is the last field, so that is every byte but the
  last 8. See `mac_input` and docs/host-link.md "Keys and MAC".

pyemv (and cryptography under it) is imported on first use, not at start-up (its import costs
tens of milliseconds; the first sign-on pays it). Nothing here logs, and errors never quote a key.
"""

from __future__ import annotations

import functools
import warnings
from typing import Any, Final

from drivers.errors import LocalProtocolError

__all__ = ["KEY_SIZE", "MAC_SIZE", "TEST_TMK", "decrypt_key", "encrypt_key", "kcv", "retail_mac"]

# TEST ONLY. The terminal master key of every emulated terminal and PIN pad (published).
TEST_TMK: Final = bytes.fromhex("C1D0F8FB4958670DBA40AB1F3752EF0D")
KEY_SIZE: Final = 16  # double-length 3DES
MAC_SIZE: Final = 8
KCV_SIZE: Final = 4


@functools.cache
def _pyemv() -> tuple[Any, Any]:
    # pyemv 1.5 calls 3DES through cryptography's old path with two-key keys: cryptography >= 47
    # warns on each call. Not ours: silenced for pyemv's own frames (as emulator/card_reader/emv.py).
    from cryptography.utils import CryptographyDeprecationWarning
    from pyemv import mac, tools

    warnings.filterwarnings("ignore", category=CryptographyDeprecationWarning, module=r"pyemv\.")
    return mac, tools


def _tdes(key: bytes, data: bytes, *, decrypt: bool) -> bytes:
    # cryptography directly for the decryption pyemv lacks; K1K2K1 is two-key 3DES without the
    # deprecation warning cryptography gives 16-byte keys.
    from cryptography.hazmat.decrepit.ciphers.algorithms import TripleDES
    from cryptography.hazmat.primitives.ciphers import Cipher, modes

    cipher = Cipher(TripleDES(key + key[:8]), modes.ECB())
    op = cipher.decryptor() if decrypt else cipher.encryptor()
    return op.update(data) + op.finalize()


def _check(key: bytes, what: str) -> None:
    if len(key) != KEY_SIZE:
        raise LocalProtocolError(f"{what} is a {KEY_SIZE}-byte double-length key")


def kcv(key: bytes) -> bytes:
    """Key check value: the first 4 bytes of 3DES-ECB(key, 8 zero bytes)."""
    _check(key, "a key")
    return bytes(_pyemv()[1].key_check_digits(key, KCV_SIZE))


def encrypt_key(tmk: bytes, key: bytes) -> bytes:
    """A working key as it travels: 3DES-ECB under the TMK (the host's side)."""
    _check(tmk, "the TMK")
    _check(key, "a working key")
    return bytes(_pyemv()[1].encrypt_tdes_ecb(tmk, key))


def decrypt_key(tmk: bytes, wrapped: bytes) -> bytes:
    """The clear working key from its TMK-encrypted form (the terminal's and PIN pad's side)."""
    _check(tmk, "the TMK")
    _check(wrapped, "an encrypted key")
    return _tdes(tmk, wrapped, decrypt=True)


def retail_mac(key: bytes, data: bytes) -> bytes:
    """ANSI X9.19 / ISO 9797-1 algorithm 3 (zero padding) of `data` under the double-length `key`."""
    _check(key, "a MAC key")
    return bytes(_pyemv()[0].mac_iso9797_3(key[:8], key[8:], data, 1))
