"""Start-up cost and memory: process start to ready-for-sale (the emulated world in process, and a
real till whose devices and host are other processes), `till --help`, a demo's peak RSS."""

from __future__ import annotations

import select
import signal
import subprocess
import tempfile
import time
from typing import Any

from bench.common import PYTHON, median, run_child, time_child

__all__ = ["bench_demo_rss", "bench_help", "bench_ready", "bench_ready_real"]

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


# The till of a real counter: terminal.app (never sim/), devices on ptys served by emulators in
# other processes, the host in another process. It must not have loaded the emulated world.
READY_REAL = """
import sys
from terminal.app import build_till
var, printer, reader, host = sys.argv[1:5]
till = build_till("emulated-counter", var_dir=var, device_urls={"printer": printer, "card_reader": reader},
                  overrides={"host.url": host})
loaded = sorted(m for m in sys.modules if m.split(".")[0] in ("emulator", "sim"))
till.close()
if loaded:
    sys.exit("the till imported the emulated world: " + ", ".join(loaded))
"""


def _serve(argv: list[str]) -> tuple[subprocess.Popen[str], str]:
    """Start a server process; its first stdout line is where it serves."""
    proc = subprocess.Popen(argv, stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL,
                            text=True)
    assert proc.stdout is not None
    ready, _, _ = select.select([proc.stdout], [], [], 30.0)
    line = proc.stdout.readline().strip() if ready else ""
    if not line:
        proc.kill()
        proc.wait()
        raise RuntimeError(f"{' '.join(argv)} did not say where it serves")
    return proc, line


def _stop(proc: subprocess.Popen[str]) -> None:
    proc.send_signal(signal.SIGTERM)
    try:
        proc.wait(10)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait()


def bench_ready_real(reps: int) -> dict[str, Any]:
    cli = [PYTHON, "-m", "terminal.cli"]
    servers: list[subprocess.Popen[str]] = []
    error = ""
    try:
        urls = []
        for argv in (["emulate", "printer", "--pty"], ["emulate", "card-reader", "--pty"],
                     ["host", "--listen", "127.0.0.1:0"]):
            proc, url = _serve([*cli, *argv])
            servers.append(proc)
            urls.append(url)
        with tempfile.TemporaryDirectory() as tmp:
            bare = time_child([PYTHON, "-c", "pass"], reps)
            times = []
            for _ in range(reps):
                start = time.perf_counter()
                done = subprocess.run([PYTHON, "-c", READY_REAL, tmp, *urls], stdout=subprocess.DEVNULL,
                                      stderr=subprocess.PIPE, text=True)
                times.append(time.perf_counter() - start)
                if done.returncode != 0:
                    error = done.stderr.strip().splitlines()[-1] if done.stderr.strip() else f"exit {done.returncode}"
                    break
    finally:
        for proc in servers:
            _stop(proc)
    ready = median(times)
    ratio = ready / bare
    return {"name": "start_to_ready_for_sale_real_till", "median_s": ready, "baseline": "python -c pass",
            "baseline_s": bare, "ratio": ratio, "target_ratio": 3.0, "urls": urls,
            **({"error": error} if error else {}), "within_target": not error and ratio <= 3.0}
