"""Files an emulator keeps in its folder (printed pages, a card's counters), written whole or not at all."""

from __future__ import annotations

import contextlib
import os
from pathlib import Path

__all__ = ["rewrite_in_place", "write_atomic"]


def write_atomic(path: Path, data: bytes, *, durable: bool = True) -> None:
    """Replace `path` with `data`: a temp file beside it, fsynced, renamed. A kill at any point
    leaves the old file or the new one, never half of one. `durable=False` skips the fsync: the
    rename alone is whole against a killed process (the page cache outlives it), not against a
    power cut of the machine (the emulated card's ATC, written before every cryptogram, where an
    fsync would be most of the emulator's cost of a sale)."""
    import tempfile  # the first write, not every start of the emulated world (tempfile brings shutil, random)

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


_PAGE = 4096  # the smallest page size Linux uses: a write within one page is copied whole or not at all


def rewrite_in_place(path: Path, data: bytes) -> None:
    """Overwrite a small file that only grows or stays the same length (a card's ATCs: names are
    only added, counters only rise) with one pwrite at offset 0, padded with spaces to the
    length it had, no truncation: whole against a killed process as write_atomic(durable=False)
    is (Linux checks for a fatal signal between the pages of a write, and this one is a single
    page), without creating and renaming a file each time (two metadata updates of the folder,
    most of an emulated chip read's disk cost). A file that does not exist yet, or would not fit
    one page, goes through write_atomic(durable=False). Text formats that allow trailing
    whitespace (JSON) read the padding as nothing."""
    if len(data) > _PAGE:
        write_atomic(path, data, durable=False)
        return
    try:
        fd = os.open(path, os.O_WRONLY | os.O_CLOEXEC)
    except FileNotFoundError:
        write_atomic(path, data, durable=False)
        return
    try:
        size = os.fstat(fd).st_size
        if size > _PAGE:
            os.close(fd)
            fd = -1
            write_atomic(path, data, durable=False)
            return
        os.pwrite(fd, data.ljust(size), 0)
    finally:
        if fd >= 0:
            os.close(fd)
