"""Small shared helpers: medians and child-process timing."""

from __future__ import annotations

import os
import statistics
import subprocess
import sys
import time
from collections.abc import Sequence

__all__ = ["PYTHON", "median", "run_child", "stop_child", "time_child"]

PYTHON = sys.executable


def median(values: Sequence[float]) -> float:
    return float(statistics.median(values))


def time_child(argv: Sequence[str], reps: int) -> float:
    """Median wall time of running argv to completion."""
    times = []
    for _ in range(reps):
        start = time.perf_counter()
        subprocess.run(argv, check=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        times.append(time.perf_counter() - start)
    return median(times)


def run_child(argv: Sequence[str]) -> tuple[int, int]:
    """Run argv; return (exit status, peak RSS in KiB) of that child alone (wait4)."""
    proc = subprocess.Popen(argv, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    _, status, usage = os.wait4(proc.pid, 0)
    proc.returncode = os.waitstatus_to_exitcode(status)
    return proc.returncode, int(usage.ru_maxrss)


def stop_child(proc: subprocess.Popen[str], timeout: float = 10.0) -> None:
    """SIGTERM, then SIGKILL if it has not gone within `timeout`."""
    import signal

    proc.send_signal(signal.SIGTERM)
    try:
        proc.wait(timeout)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait()
