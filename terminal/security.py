"""What protects card data on the terminal: the PAN token and the key it is made with.

The journal keeps only the last 4 digits plus `pan_token(pan)`, an HMAC-SHA256 under a terminal
key (PCI DSS 3.5.1: keyed hash; the last 4 cannot be correlated with the hash without the key).
The key is 32 random bytes in a file readable only by the till's user.
"""

from __future__ import annotations

import hashlib
import hmac
import os
from pathlib import Path

from drivers.sensitive import Secret

__all__ = ["PanTokenizer", "load_or_create_key"]


def load_or_create_key(path: Path) -> bytes:
    try:
        key = path.read_bytes()
    except FileNotFoundError:
        path.parent.mkdir(parents=True, exist_ok=True)
        key = os.urandom(32)
        # O_EXCL: two processes starting at once must not end up with two keys.
        try:
            fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        except FileExistsError:
            return path.read_bytes()
        with os.fdopen(fd, "wb") as fh:
            fh.write(key)
            fh.flush()
            os.fsync(fh.fileno())
    if len(key) < 32:
        raise ValueError(f"PAN key {path} is shorter than 32 bytes")
    return key


class PanTokenizer:
    def __init__(self, key: bytes) -> None:
        if len(key) < 32:
            raise ValueError("a PAN key needs at least 256 bits")
        self._key = key

    def token(self, pan: Secret[str]) -> str:
        return hmac.new(self._key, pan.reveal().encode("ascii"), hashlib.sha256).hexdigest()

    @staticmethod
    def last4(pan: Secret[str]) -> str:
        return pan.reveal()[-4:]
