"""One writer per journal: an exclusive lock on `journal.lock` next to it, held while it is open.

Two tills on one var dir would each reverse the other's sale in flight at boot (a row SENT by
the living till looks like one lost to a power cut). `flock` is held by the open file, so the
kernel lets it go when the process dies, however it dies: no stale lock to clean up after a
crash. The holder writes its pid into the file, so the second one can name it.
"""

from __future__ import annotations

import fcntl
import os
from pathlib import Path

from terminal.errors import JournalError

__all__ = ["JournalLock", "JournalLocked"]


class JournalLocked(JournalError):
    """Another process has this journal open."""


class JournalLock:
    def __init__(self, path: Path) -> None:
        self.path = path
        fd = os.open(path, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o600)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            holder = _holder(fd)
            os.close(fd)
            pid = f" (pid {holder})" if holder else ""
            raise JournalLocked(
                f"另一个收银程序正在使用 {path.parent}{pid}，请先关闭它 / another till is using {path.parent}{pid}:"
                " stop it first (one journal, one writer)") from None
        except BaseException:
            os.close(fd)
            raise
        # Ours now: say who holds it (read by the next one that tries).
        os.ftruncate(fd, 0)
        os.pwrite(fd, f"{os.getpid()}\n".encode(), 0)
        self._fd: int | None = fd

    def release(self) -> None:
        if self._fd is not None:
            os.close(self._fd)  # closing the descriptor drops the lock
            self._fd = None


def _holder(fd: int) -> int | None:
    try:
        text = os.pread(fd, 32, 0).decode("ascii").strip()
        return int(text) if text else None
    except (OSError, ValueError):
        return None
