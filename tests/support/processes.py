"""A `till` command served in a child process, for the tests that need a real one: its first
stdout line is where it serves, control lines go to its stdin, and it must stop cleanly."""

from __future__ import annotations

import signal
import subprocess
import sys
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

__all__ = ["Served", "served"]


@dataclass
class Served:
    proc: subprocess.Popen[str]
    endpoint: str  # the first line it printed: a pty path, a socket:// or tcp:// URL

    def control(self, line: str) -> str:
        """One control line in, its one reply line out."""
        assert self.proc.stdin is not None and self.proc.stdout is not None
        self.proc.stdin.write(line + "\n")
        self.proc.stdin.flush()
        return self.proc.stdout.readline().strip()


@contextmanager
def served(*args: str, env: Mapping[str, str] | None = None, cwd: Path | None = None,
           expect_clean_exit: bool = True) -> Iterator[Served]:
    """`python -m terminal.cli ARGS...` until the block ends; then SIGTERM, and (by default) it
    must exit 0. Nothing is left behind, whatever the block raised."""
    proc = subprocess.Popen([sys.executable, "-m", "terminal.cli", *args], env=env, cwd=cwd,
                            stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        assert proc.stdout is not None
        endpoint = proc.stdout.readline().strip()
        assert endpoint, proc.stderr.read() if proc.stderr else "the child printed no endpoint"
        yield Served(proc, endpoint)
        proc.send_signal(signal.SIGTERM)
        code = proc.wait(timeout=10)
        if expect_clean_exit:
            assert code == 0, proc.stderr.read() if proc.stderr else f"exit {code}"
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
        for stream in (proc.stdin, proc.stdout, proc.stderr):
            if stream is not None:
                stream.close()
