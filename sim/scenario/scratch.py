"""The scratch folder a scenario run works in (`till-scenario-*` in the temp directory), and the
removal of those a killed run left behind.

A run holds an exclusive flock on `.owner.lock` inside its folder for as long as it lives; the
kernel drops the lock however the process ends (kill -9 included). So the next run can tell a
dead run's folder from a live one without trusting pids (reused, or another pid namespace): a
folder whose lock it can take has no owner, and is removed. Only folders of our own user, never
through a symlink. The lock file appears under its name already locked (locked, then renamed),
so a run that is just starting is never taken for a dead one.
"""

from __future__ import annotations

import contextlib
import fcntl
import os
import shutil
import stat
import tempfile
from pathlib import Path

__all__ = ["PREFIX", "release_scratch_dir", "remove_stale", "scratch_dir"]

PREFIX = "till-scenario-"
LOCK = ".owner.lock"
_held: dict[Path, int] = {}  # folder -> the fd that holds its lock


def scratch_dir(root: Path | None = None) -> Path:
    """A new scratch folder, locked by this process; stale ones in `root` are removed first."""
    base = Path(root) if root is not None else Path(tempfile.gettempdir())
    remove_stale(base)
    path = Path(tempfile.mkdtemp(prefix=PREFIX, dir=base))
    fd = os.open(path / f"{LOCK}.new", os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_CLOEXEC, 0o600)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX)
        os.rename(path / f"{LOCK}.new", path / LOCK)
    except BaseException:
        os.close(fd)
        shutil.rmtree(path, ignore_errors=True)
        raise
    _held[path] = fd
    return path


def release_scratch_dir(path: Path) -> None:
    """Remove the folder, then let go of its lock."""
    try:
        shutil.rmtree(path, ignore_errors=True)
    finally:
        fd = _held.pop(path, None)
        if fd is not None:
            os.close(fd)


def remove_stale(root: Path) -> list[Path]:
    """Remove the scratch folders in `root` whose run is gone; returns them. A folder without a
    lock file (a run from before the locks) is left alone."""
    removed: list[Path] = []
    try:
        entries = [e for e in os.scandir(root) if e.name.startswith(PREFIX)]
    except OSError:
        return removed
    uid = os.getuid()
    for entry in entries:
        try:
            info = entry.stat(follow_symlinks=False)
            if not stat.S_ISDIR(info.st_mode) or info.st_uid != uid:
                continue
            fd = os.open(os.path.join(entry.path, LOCK), os.O_RDONLY | os.O_NOFOLLOW | os.O_CLOEXEC)
        except OSError:
            continue
        try:
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except OSError:
                continue  # its run is alive
            shutil.rmtree(entry.path, ignore_errors=True)
            removed.append(Path(entry.path))
        finally:
            with contextlib.suppress(OSError):
                os.close(fd)
    return removed
