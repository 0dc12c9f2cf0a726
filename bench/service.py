"""`till run` as a register meets it: start to ready-for-payment, resident memory, and what the
payment API adds to a status call and to a card payment.

Everything runs `till run` in emulator mode (the default profile: every device, the host and the
wallet emulated in the service's own process) as its own process, driven over loopback HTTP
with one keep-alive connection, as a register's HTTP client would. Baselines from the same run:

- start: `python -c pass`; the child is timed from spawn to its "ready at" line (signed on, the
  API serving), restarts on the same var/ (the first start, which makes var/, is reported apart).
  Next to it the in-process emulated till's start to ready (bench/startup.py's child), so
  `service_over_in_process_s` is what the service adds (its API server, the host simulator's
  thread and sign-on over TCP, the token, the run loop);
- memory: VmRSS of /proc/PID/status after ready and after the payments, over a bare
  interpreter's VmRSS read the same way (the goal of issue 13: < 60 MB on this machine);
- a payment: the register's wall time for a card payment (the card presented through
  `POST /v1/emulators/card_reader`, then `POST /v1/payments?wait=60`) over the same sale's own
  time inside the service (its order's created_at to updated_at: opened to decided). For
  reference, `Till.sale` of the same emulated world in this process (`in_process_sale_s`);
- a status call: `GET /v1/status`, the median of ~200 round trips, in ms and over the payment's
  own time.

`python -m bench.service [--quick]` runs this bench alone.
"""

from __future__ import annotations

import contextlib
import http.client
import json
import os
import select
import signal
import subprocess
import tempfile
import time
from collections.abc import Iterator
from datetime import datetime
from pathlib import Path
from typing import IO, Any

from bench.common import PYTHON, median, time_child
from bench.startup import READY

__all__ = ["bench_service"]

ROOT = Path(__file__).resolve().parents[1]
READY_TIMEOUT_S = 60.0
START_TARGET_RATIO = 10.0  # till run's start over a bare interpreter's (the in-process till's is 5)
RSS_TARGET_MB = 60.0  # issue 13
PAYMENT_TARGET_RATIO = 1.5  # the register's payment over the sale's own time: the API adds at most half
STATUS_TARGET_RATIO = 0.1  # a status call costs at most a tenth of a payment's own time
_BARE_RSS = "print(open('/proc/self/status').read())"


class _Till:
    """One `till run` child: its pid, its API (one keep-alive connection) and its log."""

    def __init__(self, proc: subprocess.Popen[str], url: str, token: str) -> None:
        self.proc = proc
        host, _, port = url.removeprefix("http://").rpartition(":")
        self.http = http.client.HTTPConnection(host, int(port), timeout=90)
        self._headers = {"Authorization": f"Bearer {token}", "Content-Type": "application/json"}

    def ask(self, method: str, path: str, body: dict[str, Any] | None = None) -> tuple[int, Any]:
        data = None if body is None else json.dumps(body).encode()
        self.http.request(method, path, body=data, headers=self._headers)
        answer = self.http.getresponse()
        return answer.status, json.loads(answer.read())

    def rss_mb(self) -> tuple[float, float]:
        """(VmRSS, VmHWM) of the child, in MB."""
        return _vm(Path(f"/proc/{self.proc.pid}/status").read_text(encoding="ascii"))


def _vm(status: str) -> tuple[float, float]:
    fields = dict(line.split(":", 1) for line in status.splitlines() if ":" in line)
    return int(fields["VmRSS"].split()[0]) / 1024, int(fields["VmHWM"].split()[0]) / 1024


def _env() -> dict[str, str]:
    return {**os.environ, "PYTHONPATH": str(ROOT)}


@contextlib.contextmanager
def _till_run(var: Path, log: IO[str]) -> Iterator[tuple[_Till, float]]:
    """A `till run` child on `var`, with the seconds from spawn to its ready line; stopped by
    SIGTERM at the end (killed if it does not stop)."""
    start = time.perf_counter()
    proc = subprocess.Popen([PYTHON, "-m", "terminal.cli", "run", "--var", str(var), "--listen", "127.0.0.1:0"],
                            stdout=subprocess.PIPE, stderr=log, text=True, cwd=ROOT, env=_env())
    till: _Till | None = None
    try:
        assert proc.stdout is not None
        readable, _, _ = select.select([proc.stdout], [], [], READY_TIMEOUT_S)
        line = proc.stdout.readline() if readable else ""
        ready_s = time.perf_counter() - start
        if "ready at http://" not in line:
            raise RuntimeError(f"till run did not get ready: {line.strip() or 'no ready line'} (log: {log.name})")
        token = (var / "api.token").read_text(encoding="ascii").strip()
        till = _Till(proc, line.split("ready at ")[1].split()[0], token)
        yield till, ready_s
    finally:
        if till is not None:
            till.http.close()
        if proc.poll() is None:
            proc.send_signal(signal.SIGTERM)
            try:
                proc.wait(30)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()
        if proc.stdout is not None:
            proc.stdout.close()


def _bare_rss_mb() -> float:
    out = subprocess.run([PYTHON, "-c", _BARE_RSS], check=True, capture_output=True, text=True).stdout
    return _vm(out)[0]


def _starts(var: Path, log: IO[str], reps: int) -> tuple[float, list[float], list[float]]:
    """(first start, restarts, stops) in seconds: a stop is SIGTERM to exit, at rest."""
    first, restarts, stops = 0.0, [], []
    for i in range(reps + 1):
        with _till_run(var, log) as (till, ready_s):
            if i == 0:
                first = ready_s
            else:
                restarts.append(ready_s)
            stopped = time.perf_counter()
            till.proc.send_signal(signal.SIGTERM)
            till.proc.wait(30)
            stops.append(time.perf_counter() - stopped)
    return first, restarts, stops


def _stamp(text: str) -> float:
    return datetime.fromisoformat(text).timestamp()


def _session(var: Path, log: IO[str], payments: int, status_calls: int) -> dict[str, Any]:
    """One service: memory at ready, status round trips, card payments, memory after them."""
    with _till_run(var, log) as (till, _):
        rss_ready, _ = till.rss_mb()
        for _ in range(3):  # the first calls make the connection and warm the handler's code
            till.ask("GET", "/v1/status")
        times = []
        for _ in range(status_calls):
            start = time.perf_counter()
            code, _ = till.ask("GET", "/v1/status")
            times.append(time.perf_counter() - start)
            assert code == 200, code
        status_s = median(times)
        walls, posts, own = [], [], []
        for i in range(payments + 1):
            start = time.perf_counter()
            _, reply = till.ask("POST", "/v1/emulators/card_reader", {"line": "present approved chip"})
            assert str(reply.get("reply", "")).startswith("ok"), reply
            posted = time.perf_counter()
            code, view = till.ask("POST", "/v1/payments?wait=60", {"order_id": f"BENCH-{time.time_ns()}-{i}",
                                                                  "amount": "8.80"})
            done = time.perf_counter()
            assert code == 201 and view.get("status") == "approved", view
            if i:  # the first payment warms the sale's imports (receipts, QR) once
                walls.append(done - start)
                posts.append(done - posted)
                own.append(_stamp(view["updated_at"]) - _stamp(view["created_at"]))
        rss_after, hwm = till.rss_mb()
    return {"rss_ready_mb": rss_ready, "rss_after_mb": rss_after, "hwm_mb": hwm, "status_s": status_s,
            "payment_s": median(walls), "payment_post_s": median(posts), "own_s": median(own)}


def _in_process_sales(folder: Path, reps: int) -> float:
    """Median `Till.sale` of the same emulated world (host over loopback TCP, as in `till run`)."""
    from sim.wiring import build_emulated_till

    till = build_emulated_till(var_dir=folder, host_transport="tcp")
    try:
        assert till.emulators.card_reader is not None
        times = []
        for _ in range(reps + 1):
            till.emulators.card_reader.present("approved", "chip")
            start = time.perf_counter()
            sale = till.sale(880)
            times.append(time.perf_counter() - start)
            assert sale.outcome == "APPROVED", sale
    finally:
        till.close()
    return median(times[1:])


def bench_service(reps: int) -> list[dict[str, Any]]:
    starts = max(3, min(reps, 7))  # a start and a stop are ~0.3 s each here: the bench is ~20 s in all
    payments = max(5, min(reps, 20))
    status_calls = 50 if reps < 5 else 200
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        with (folder / "till-run.log").open("a", encoding="utf-8") as log:  # not a pipe: a full pipe stops the till
            bare = time_child([PYTHON, "-c", "pass"], max(reps, 5))
            in_process_ready = time_child([PYTHON, "-c", READY, str(folder / "ready")], starts)
            first, restarts, stops = _starts(folder / "var", log, starts)
            session = _session(folder / "var", log, payments, status_calls)
        bare_rss = _bare_rss_mb()
        in_process = _in_process_sales(folder / "in-process", payments)
    ready = median(restarts)
    start_ratio = ready / bare
    start = {"name": "till_run_start_to_ready_for_payment", "median_s": ready, "first_start_s": first,
             "stop_median_s": median(stops), "starts": starts,
             "in_process_ready_s": in_process_ready, "service_over_in_process_s": ready - in_process_ready,
             "baseline": "python -c pass", "baseline_s": bare,
             "ratio": start_ratio, "target_ratio": START_TARGET_RATIO,
             "within_target": start_ratio <= START_TARGET_RATIO}
    rss_after = session["rss_after_mb"]
    memory = {"name": "till_run_resident_memory", "rss_ready_mb": session["rss_ready_mb"],
              "rss_after_payments_mb": rss_after, "payments": payments + 1, "status_calls": status_calls + 3,
              "peak_rss_mb": session["hwm_mb"], "baseline": "VmRSS of python -c (a bare interpreter)",
              "baseline_mb": bare_rss, "ratio_ready": session["rss_ready_mb"] / bare_rss,
              "ratio_after_payments": rss_after / bare_rss, "target_mb": RSS_TARGET_MB,
              "within_target": max(session["rss_ready_mb"], rss_after) < RSS_TARGET_MB}
    own, status_s = session["own_s"], session["status_s"]
    payment_ratio, status_ratio = session["payment_s"] / own, status_s / own
    api = {"name": "till_run_api_overhead", "payment_median_s": session["payment_s"],
           "payment_post_median_s": session["payment_post_s"], "payments": payments,
           "baseline": "the same sale's own time in the service (order created_at to updated_at)",
           "baseline_s": own, "payment_ratio": payment_ratio, "payment_target_ratio": PAYMENT_TARGET_RATIO,
           "in_process_sale_s": in_process, "payment_over_in_process_ratio": session["payment_s"] / in_process,
           "status_median_ms": status_s * 1000, "status_calls": status_calls, "status_ratio": status_ratio,
           "status_target_ratio": STATUS_TARGET_RATIO,
           "within_target": payment_ratio <= PAYMENT_TARGET_RATIO and status_ratio <= STATUS_TARGET_RATIO}
    return [start, memory, api]


if __name__ == "__main__":
    import argparse
    import compileall
    import sys

    parser = argparse.ArgumentParser(prog="python -m bench.service")
    parser.add_argument("--quick", action="store_true", help="fewer repetitions (smoke run)")
    quick = parser.parse_args().quick
    for package in ("terminal", "drivers", "emulator", "sim", "firmware_profiles", "bench"):
        compileall.compile_dir(str(ROOT / package), quiet=1)  # as `python -m bench` does: starts read .pyc
    json.dump(bench_service(3 if quick else 15), sys.stdout, indent=2)
    sys.stdout.write("\n")
