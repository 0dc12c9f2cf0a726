"""Start-up cost and memory: process start to ready-for-sale, `till --help`, a demo's peak RSS."""

from __future__ import annotations

import tempfile
from typing import Any

from bench.common import PYTHON, run_child, time_child

__all__ = ["bench_demo_rss", "bench_help", "bench_ready"]

READY = (
    "import sys; from sim.wiring import build_emulated_till as build_till; "
    "t = build_till(var_dir=sys.argv[1]); t.close()"
)


def bench_ready(reps: int) -> dict[str, Any]:
    with tempfile.TemporaryDirectory() as tmp:
        bare = time_child([PYTHON, "-c", "pass"], reps)
        ready = time_child([PYTHON, "-c", READY, tmp], reps)
    ratio = ready / bare
    return {"name": "start_to_ready_for_sale", "median_s": ready, "baseline": "python -c pass",
            "baseline_s": bare, "ratio": ratio, "target_ratio": 5.0, "within_target": ratio <= 5.0}


def bench_help(reps: int) -> dict[str, Any]:
    bare = time_child([PYTHON, "-c", "pass"], reps)
    helped = time_child([PYTHON, "-m", "terminal.cli", "--help"], reps)
    ratio = helped / bare
    return {"name": "till_help", "median_s": helped, "baseline": "python -c pass", "baseline_s": bare,
            "ratio": ratio, "target_ratio": 3.0, "within_target": ratio <= 3.0}


def bench_demo_rss() -> dict[str, Any]:
    with tempfile.TemporaryDirectory() as tmp:
        status, rss_kib = run_child([PYTHON, "-m", "terminal.cli", "demo", "--json", "--var", tmp])
        _, bare_kib = run_child([PYTHON, "-c", "pass"])
    mb = rss_kib / 1024
    return {"name": "demo_sale_peak_rss", "peak_rss_mb": mb, "baseline": "python -c pass",
            "baseline_mb": bare_kib / 1024, "exit_status": status, "target_mb": 80,
            "within_target": status == 0 and mb < 80}
