"""Files an emulator keeps in its folder (printed pages, a card's counters), written whole or not at all."""

from __future__ import annotations

import contextlib
import os
import tempfile
from pathlib import Path

__all__ = ["write_atomic"]


def write_atomic(path: Path, data: bytes, *, durable: bool = True) -> None:
    """Replace `path` with `data`: a temp file beside it, fsynced, renamed. A kill at any point
    leaves the old file or the new one, never half of one. `durable=False` skips the fsync: the
    rename alone is whole against a killed process (the page cache outlives it), not against a
    power cut of the machine (the emulated card's ATC, written before every cryptogram, where an
    fsync would be most of the emulator's cost of a sale)."""
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.")
    try:
        with os.fdopen(fd, "wb") as fh:
            fh.write(data)
            fh.flush()
            if durable:
                os.fsync(fh.fileno())
        os.replace(tmp, path)
    finally:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(tmp)
