"""What protects card data on the terminal: the PAN token and the key it is made with.

The journal keeps only the last 4 digits plus `pan_token(pan)`, an HMAC-SHA256 under a terminal
key (PCI DSS 3.5.1: keyed hash; the last 4 cannot be correlated with the hash without the key).
The key is 32 random bytes in a file readable only by the till's user.
"""

from __future__ import annotations

import contextlib
import os
from pathlib import Path

from drivers.sensitive import Secret
from terminal.errors import ConfigError

__all__ = ["KeyFileError", "PanTokenizer", "load_or_create_key"]

KEY_BYTES = 32
MAX_KEY_FILE = 4096  # a key file is 32 bytes; more than this is not a key (and is not read whole)


class KeyFileError(ConfigError, ValueError):
    """A key file under var/keys/ that is not a usable key (short, a folder, unreadable)."""


def load_or_create_key(path: Path) -> bytes:
    """The key in `path` (var/keys/pan.key, var/keys/audit.key...), created on first use. Errors
    name the file and what is wrong with it, never the key."""
    try:
        with path.open("rb") as f:
            key = f.read(MAX_KEY_FILE + 1)
    except FileNotFoundError:
        try:
            key = _create_key(path)
        except OSError as exc:
            raise KeyFileError(f"key file {path} cannot be created: {exc.strerror or exc}") from None
    except OSError as exc:
        raise KeyFileError(f"key file {path} cannot be read: {exc.strerror or exc}") from None
    if not KEY_BYTES <= len(key) <= MAX_KEY_FILE:
        size = f"{len(key)} bytes" if len(key) <= MAX_KEY_FILE else f"more than {MAX_KEY_FILE} bytes"
        raise KeyFileError(f"key file {path} is {size}, a key is {KEY_BYTES} random bytes: the file is damaged "
                           "or not a key; restore it from the backup (a new key cannot read what the old one made)")
    return key


def _create_key(path: Path) -> bytes:
    """Write a new key whole or not at all: a temp file, fsynced, then linked into place. A kill
    mid-write leaves only a stray temp file (never a short key), and of two processes starting
    at once the second to link reads the first one's key."""
    path.parent.mkdir(parents=True, exist_ok=True)
    key = os.urandom(32)
    import tempfile  # lazy: only a first start writes a key (tempfile pulls shutil, random: ~9 ms)

    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.")
    try:
        os.fchmod(fd, 0o600)
        os.write(fd, key)
        os.fsync(fd)
        os.close(fd)
        try:
            os.link(tmp, path)
        except FileExistsError:
            return path.read_bytes()
        dir_fd = os.open(path.parent, os.O_RDONLY)
        try:
            os.fsync(dir_fd)  # the new name survives a power cut too
        finally:
            os.close(dir_fd)
        return key
    finally:
        with contextlib.suppress(OSError):
            os.unlink(tmp)


class PanTokenizer:
    def __init__(self, key: bytes) -> None:
        if len(key) < 32:
            raise ValueError("a PAN key needs at least 256 bits")
        self._key = key

    def token(self, pan: Secret[str]) -> str:
        import hashlib  # lazy: not needed to start (hashlib loads OpenSSL)
        import hmac

        return hmac.new(self._key, pan.reveal().encode("ascii"), hashlib.sha256).hexdigest()

    @staticmethod
    def last4(pan: Secret[str]) -> str:
        return pan.reveal()[-4:]
