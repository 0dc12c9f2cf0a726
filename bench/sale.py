"""A full emulated sale over emu:// with the fsync'd journal, against the durable-commit floor.

Every device and the host are in-process synchronous peers (`host_transport="emu"`: the
acquirer's decisions behind emu://acquirer, no simulator thread), so what is measured is the
terminal's own work plus durability. The same sale over the TCP simulator is reported next to it
(`tcp_median_s`, `tcp_ratio`) for reference; the target is on the emu:// figure.

The floor is what durability alone costs, every sync the design requires of a sale, measured on
the same disk in the same run: the sale's journal commits times the median WAL + synchronous=FULL
commit, plus the journal witness's syncs times the median fdatasync of a small file. The witness
(terminal/journal/witness.py, docs/reliability.md "Journal witness") is part of the journal's
durability, not extra work: the STAN is made durable outside the database before a request
leaves, and the sale's final state is witnessed, one slot write and one fdatasync each (2 per
chip sale). Both counts are taken from the sales themselves (`Journal.commits`,
`Journal.witness_syncs`), not assumed. `commits_only_ratio` is the ratio against the commits
alone, the floor this bench used before the witness was counted.
"""

from __future__ import annotations

import os
import sqlite3
import tempfile
import time
from pathlib import Path
from typing import Any, Literal

from bench.common import median

__all__ = ["bench_sale", "commit_floor", "fdatasync_floor"]


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


def fdatasync_floor(folder: Path, reps: int) -> float:
    """Median time of one witness-sized update: a 512-byte pwrite into one of two slots of a small
    file, then fdatasync (what WitnessFile.write does)."""
    fd = os.open(folder / "floor.witness", os.O_RDWR | os.O_CREAT, 0o600)
    try:
        os.pwrite(fd, bytes(1024), 0)
        os.fsync(fd)
        times = []
        for i in range(max(reps * 4, 20)):
            start = time.perf_counter()
            os.pwrite(fd, bytes([i % 256]) * 512, (i % 2) * 512)
            os.fdatasync(fd)
            times.append(time.perf_counter() - start)
    finally:
        os.close(fd)
    return median(times)


def _sales(folder: Path, reps: int, host_transport: Literal["tcp", "emu"]) -> tuple[list[float], list[int], list[int]]:
    from sim.wiring import build_emulated_till
    from terminal.clock import FakeClock

    till = build_emulated_till(var_dir=folder, clock=FakeClock(), host_transport=host_transport)
    try:
        assert till.emulators.card_reader is not None
        times, commits, syncs = [], [], []
        for _ in range(reps + 1):
            till.emulators.card_reader.present("approved")
            before, synced = till.journal.commits, till.journal.witness_syncs
            start = time.perf_counter()
            sale = till.sale(1234)
            times.append(time.perf_counter() - start)
            commits.append(till.journal.commits - before)
            syncs.append(till.journal.witness_syncs - synced)
            assert sale.outcome == "APPROVED", sale
    finally:
        till.close()
    return times[1:], commits[1:], syncs[1:]  # the first sale warms imports (qrcode, codecs) once


def bench_sale(reps: int) -> dict[str, Any]:
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        commit, sync = commit_floor(folder, reps), fdatasync_floor(folder, reps)
        times, commits, syncs = _sales(folder / "emu", reps, "emu")
        tcp_times, _, _ = _sales(folder / "tcp", reps, "tcp")
        # before and after: the disk may drift
        commit = median([commit, commit_floor(folder, reps)])
        sync = median([sync, fdatasync_floor(folder, reps)])
    per_sale = median(times)
    n_commits, n_syncs = int(median(commits)), int(median(syncs))
    floor = n_commits * commit + n_syncs * sync
    ratio = per_sale / floor
    return {"name": "emulated_sale_vs_durable_commit_floor", "median_s": per_sale, "commits_per_sale": n_commits,
            "commit_median_s": commit, "witness_syncs_per_sale": n_syncs, "fdatasync_median_s": sync,
            "floor_s": floor,
            "baseline": "commits_per_sale x median synchronous=FULL commit + witness_syncs_per_sale x median"
                        " fdatasync of a small file (every sync durability requires of a sale, same disk, same run)",
            "ratio": ratio, "target_ratio": 3.0, "within_target": ratio <= 3.0, "host_transport": "emu",
            "commits_only_ratio": per_sale / (n_commits * commit),
            "tcp_median_s": median(tcp_times), "tcp_ratio": median(tcp_times) / floor}
