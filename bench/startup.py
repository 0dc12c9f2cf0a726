"""Start-up cost and memory: process start to ready-for-sale (the emulated world in process, and a
real till whose devices and host are other processes), `till --help`, a demo's peak RSS.

Next to each start to ready, its imports floor from the same run: a child that imports only the
standard-library and third-party modules that start had loaded (cryptography, transitions,
pyserial, iso8583, sqlite3, logging...) and runs none of our code. `imports_floor_ratio` is what
no change to our own code can go below; `over_floor_s` is ours (our modules, the boot's work and
its round trips to the devices and the host).

The real till's start also reports its stack floor: a child importing only the libraries any till
on this stack must have loaded before it can sell (STACK). `left_for_opentill_at_target_s` is
what the 3x target leaves for all of OpenTill's own modules, the journal, the devices' and the
host's round trips and the sign-on."""

from __future__ import annotations

import select
import subprocess
import tempfile
import time
from typing import Any

from bench.common import PYTHON, median, run_child, stop_child, time_child

__all__ = ["bench_demo_rss", "bench_help", "bench_ready", "bench_ready_real"]

# With a second argument the child also writes there the modules it loaded that are not the
# project's (the imports floor below).
_OUR_PACKAGES = ("terminal", "drivers", "emulator", "sim", "firmware_profiles", "bench", "tests")
_WRITE_FOREIGN = (
    "\nif len(sys.argv) > {n}:\n"
    "    open(sys.argv[{n}], 'w').write('\\n'.join(sorted(m for m in sys.modules if m != '__main__'"
    f" and m.split('.')[0] not in {_OUR_PACKAGES!r})))\n"
)
READY = (
    "import sys\nfrom sim.wiring import build_emulated_till as build_till\n"
    "t = build_till(var_dir=sys.argv[1]); t.close()" + _WRITE_FOREIGN.format(n=2)
)
# A child that imports the given modules and does nothing else: what the same start costs with
# none of our code run (the standard library and the third-party packages the till loads).
_IMPORT_ONLY = (
    "import importlib, sys\n"
    "for name in open(sys.argv[1]).read().split():\n"
    "    try:\n        importlib.import_module(name)\n    except Exception:\n        pass\n"
)


def _imports_floor(argv: list[str], reps: int, folder: str) -> float:
    """Median time of a child importing what `argv` (a READY child, run once more) had loaded
    besides our own packages."""
    listing = f"{folder}/foreign-modules.txt"
    subprocess.run([*argv, listing], check=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    return time_child([PYTHON, "-c", _IMPORT_ONLY, listing], reps)


def _floor_fields(floor: float, bare: float, ready: float) -> dict[str, Any]:
    return {"imports_floor_s": floor, "imports_floor_ratio": floor / bare,
            "imports_floor": "python importing only the stdlib and third-party modules the ready till had loaded",
            "over_floor_s": ready - floor}


# What a till on this stack must have imported before it can sell, whatever our code does: the
# checkout machine (transitions), the port (pyserial), the sign-on's ISO 8583 message (pyiso8583)
# and working-key check (cryptography's 3DES), the journal (sqlite3) and the host's socket.
# Their import alone is the part of the 3x target no change to OpenTill can reach.
STACK = ("transitions", "serial", "iso8583", "sqlite3", "socket", "cryptography.hazmat.primitives.ciphers",
         "cryptography.hazmat.decrepit.ciphers.algorithms")


def _stack_fields(reps: int, bare: float, target_ratio: float) -> dict[str, Any]:
    stack = time_child([PYTHON, "-c", "import " + ", ".join(STACK)], reps)
    return {"stack_floor_s": stack, "stack_floor_ratio": stack / bare, "stack": list(STACK),
            "stack_floor": "python importing only the libraries a till must have loaded to sell (no OpenTill code)",
            "left_for_opentill_at_target_s": target_ratio * bare - stack}


def bench_ready(reps: int) -> dict[str, Any]:
    with tempfile.TemporaryDirectory() as tmp, tempfile.TemporaryDirectory() as scratch:
        bare = time_child([PYTHON, "-c", "pass"], reps)
        ready = time_child([PYTHON, "-c", READY, tmp], reps)
        floor = _imports_floor([PYTHON, "-c", READY, tmp], reps, scratch)
    ratio = ready / bare
    return {"name": "start_to_ready_for_sale", "median_s": ready, "baseline": "python -c pass",
            "baseline_s": bare, "ratio": ratio, "target_ratio": 5.0, "within_target": ratio <= 5.0,
            **_floor_fields(floor, bare, ready)}


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
""" + _WRITE_FOREIGN.format(n=5)


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
            floor = 0.0 if error else _imports_floor([PYTHON, "-c", READY_REAL, tmp, *urls], reps, tmp)
    finally:
        for proc in servers:
            stop_child(proc)
    ready = median(times)
    ratio = ready / bare
    return {"name": "start_to_ready_for_sale_real_till", "median_s": ready, "baseline": "python -c pass",
            "baseline_s": bare, "ratio": ratio, "target_ratio": 3.0, "urls": urls,
            **({"error": error} if error else {}), "within_target": not error and ratio <= 3.0,
            **_floor_fields(floor, bare, ready), **_stack_fields(reps, bare, 3.0)}
