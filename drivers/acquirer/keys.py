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

The ciphers are `cryptography`'s (3DES through `Cipher`, no backend object): imported on first
use, not at start-up, and without pyemv, whose import (with cryptography's OpenSSL backend module
under it) cost ~13 ms more of the first sign-on, i.e. of every start to ready for sale. pyemv stays
the emulated card's (its cryptograms), not the link's. Nothing here logs, and errors never quote a key.
"""

from __future__ import annotations

import functools
from typing import Any, Final

from drivers.errors import LocalProtocolError

__all__ = ["KEY_SIZE", "MAC_SIZE", "TEST_TMK", "decrypt_key", "encrypt_key", "kcv", "retail_mac"]

# TEST ONLY. The terminal master key of every emulated terminal and PIN pad (published).
TEST_TMK: Final = bytes.fromhex("C1D0F8FB4958670DBA40AB1F3752EF0D")
KEY_SIZE: Final = 16  # double-length 3DES
MAC_SIZE: Final = 8
KCV_SIZE: Final = 4
_BLOCK: Final = 8
_ZERO_IV: Final = bytes(_BLOCK)


def _cipher(key24: bytes, iv: bytes | None = None) -> Any:
    """3DES (EDE) under a 24-byte key, ECB or CBC from `iv`. K1K2K1 is two-key 3DES and K1K1K1 is
    single DES, both without the deprecation warning cryptography gives 8- and 16-byte keys."""
    from cryptography.hazmat.decrepit.ciphers.algorithms import TripleDES
    from cryptography.hazmat.primitives.ciphers import Cipher, modes

    return Cipher(TripleDES(key24), modes.ECB() if iv is None else modes.CBC(iv))


@functools.lru_cache(maxsize=8)
def _zero_iv_cipher(key24: bytes, cbc: bool) -> Any:
    """The cipher (not a context: each call makes its own, so threads never share one) of a key
    that serves many messages: the MAC's, one per session. Made once instead of once per MAC;
    a few keys at most, in memory only, as the keys themselves are."""
    return _cipher(key24, _ZERO_IV if cbc else None)


def _xor(a: bytes, b: bytes) -> bytes:
    return (int.from_bytes(a, "big") ^ int.from_bytes(b, "big")).to_bytes(len(a), "big")


def _tdes(key: bytes, data: bytes, *, decrypt: bool = False) -> bytes:
    """Two-key 3DES-ECB of whole blocks under the double-length `key`."""
    cipher = _cipher(key + key[:8])
    op = cipher.decryptor() if decrypt else cipher.encryptor()
    return bytes(op.update(data) + op.finalize())


def _check(key: bytes, what: str) -> None:
    if len(key) != KEY_SIZE:
        raise LocalProtocolError(f"{what} is a {KEY_SIZE}-byte double-length key")


def kcv(key: bytes) -> bytes:
    """Key check value: the first 4 bytes of 3DES-ECB(key, 8 zero bytes)."""
    _check(key, "a key")
    return _tdes(key, bytes(_BLOCK))[:KCV_SIZE]


def encrypt_key(tmk: bytes, key: bytes) -> bytes:
    """A working key as it travels: 3DES-ECB under the TMK (the host's side)."""
    _check(tmk, "the TMK")
    _check(key, "a working key")
    return _tdes(tmk, key)


def decrypt_key(tmk: bytes, wrapped: bytes) -> bytes:
    """The clear working key from its TMK-encrypted form (the terminal's and PIN pad's side)."""
    _check(tmk, "the TMK")
    _check(wrapped, "an encrypted key")
    return _tdes(tmk, wrapped, decrypt=True)


def retail_mac(key: bytes, data: bytes) -> bytes:
    """ANSI X9.19 / ISO 9797-1 algorithm 3 (zero padding) of `data` under the double-length `key`:
    single-DES CBC under K1 up to the last block, whose step is E(K1) D(K2) E(K1), i.e. one
    two-key 3DES-CBC block chained on the single-DES result. Two cipher calls in all."""
    _check(key, "a MAC key")
    k1 = key[:8]
    data = data + bytes(-len(data) % _BLOCK) if data else bytes(_BLOCK)  # padding method 1
    chained = _ZERO_IV
    if len(data) > _BLOCK:
        head = _zero_iv_cipher(k1 * 3, True).encryptor()
        chained = head.update(data[:-_BLOCK])[-_BLOCK:]
    # One block of 3DES-CBC chained on `chained` is 3DES-ECB of the block XOR `chained`: the
    # key's one ECB cipher serves every message.
    last = _zero_iv_cipher(key + k1, False).encryptor()
    return bytes(last.update(_xor(data[-_BLOCK:], chained)) + last.finalize())
