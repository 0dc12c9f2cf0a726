"""A full emulated sale over emu:// with the fsync'd journal, against the durable-commit floor.

Every device and the host are in-process synchronous peers (`host_transport="emu"`: the
acquirer's decisions behind emu://acquirer, no simulator thread), so what is measured is the
terminal's own work plus durability. The same sale over the TCP simulator is reported next to it
(`tcp_median_s`, `tcp_ratio`) for reference; the target is on the emu:// figure.

The floor is what durability alone costs: the sale's number of journal commits times the median
time of one WAL + synchronous=FULL commit on the same disk, measured in the same run.
"""

from __future__ import annotations

import sqlite3
import tempfile
import time
from pathlib import Path
from typing import Any, Literal

from bench.common import median

__all__ = ["bench_sale", "commit_floor"]


def commit_floor(folder: Path, reps: int) -> float:
    db = sqlite3.connect(folder / "floor.sqlite3", isolation_level=None)
    db.execute("PRAGMA journal_mode=WAL")
    db.execute("PRAGMA synchronous=FULL")
    db.execute("CREATE TABLE IF NOT EXISTS t (id INTEGER PRIMARY KEY, v TEXT)")
    times = []
    for i in range(max(reps * 4, 20)):
        start = time.perf_counter()
        db.execute("BEGIN IMMEDIATE")
        db.execute("INSERT INTO t (v) VALUES (?)", (str(i) * 20,))
        db.execute("COMMIT")
        times.append(time.perf_counter() - start)
    db.close()
    return median(times)


def _sales(folder: Path, reps: int, host_transport: Literal["tcp", "emu"]) -> tuple[list[float], list[int]]:
    from sim.wiring import build_emulated_till
    from terminal.clock import FakeClock

    till = build_emulated_till(var_dir=folder, clock=FakeClock(), host_transport=host_transport)
    try:
        assert till.emulators.card_reader is not None
        times, commits = [], []
        for _ in range(reps + 1):
            till.emulators.card_reader.present("approved")
            before = till.journal.commits
            start = time.perf_counter()
            sale = till.sale(1234)
            times.append(time.perf_counter() - start)
            commits.append(till.journal.commits - before)
            assert sale.outcome == "APPROVED", sale
    finally:
        till.close()
    return times[1:], commits[1:]  # the first sale warms imports (qrcode, codecs) once


def bench_sale(reps: int) -> dict[str, Any]:
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        floor = commit_floor(folder, reps)
        times, commits = _sales(folder / "emu", reps, "emu")
        tcp_times, _ = _sales(folder / "tcp", reps, "tcp")
        floor = median([floor, commit_floor(folder, reps)])  # before and after: the disk may drift
    per_sale = median(times)
    n_commits = int(median(commits))
    ratio = per_sale / (n_commits * floor)
    return {"name": "emulated_sale_vs_durable_commit_floor", "median_s": per_sale, "commits_per_sale": n_commits,
            "commit_median_s": floor, "baseline": "commits_per_sale x median synchronous=FULL commit",
            "ratio": ratio, "target_ratio": 3.0, "within_target": ratio <= 3.0, "host_transport": "emu",
            "tcp_median_s": median(tcp_times), "tcp_ratio": median(tcp_times) / (n_commits * floor)}
