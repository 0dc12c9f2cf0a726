"""`till run` as its own process, its printer an emulator served on a pty by another process:
a payment through the API, the operator commands against the running service, a second service
on the same var/ refused, SIGKILL while the host has the request and a restart (the same order
id reads back its final state, and is never charged twice), and a clean SIGTERM."""

from __future__ import annotations

import json
import os
import signal
import socket
import ssl
import subprocess
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import IO, Any

import httpx

from terminal import i18n
from tests.support.certs import self_signed
from tests.support.processes import served

ROOT = Path(__file__).resolve().parents[2]


class TillRun:
    def __init__(self, proc: subprocess.Popen[str], url: str, var: Path, log: IO[str],
                 verify: ssl.SSLContext | bool = True) -> None:
        self.proc, self.url, self.var, self.log = proc, url, var, log
        token = (var / "api.token").read_text(encoding="ascii").strip()
        self.http = httpx.Client(base_url=url, headers={"Authorization": f"Bearer {token}"}, timeout=90, verify=verify)

    def control(self, slot: str, line: str) -> None:
        reply = self.http.post(f"/v1/emulators/{slot}", json={"line": line}).json()["reply"]
        assert reply.startswith("ok"), reply

    def wait_for(self, kind: str, after: int = 0, **data: Any) -> int:
        """Read the event stream (after event `after`) until an event of `kind` carries `data`;
        returns its id."""
        with self.http.stream("GET", "/v1/events", headers={"Last-Event-ID": str(after)}) as stream:
            event_id, event_kind = 0, ""
            for text in stream.iter_lines():
                if text.startswith("id: "):
                    event_id = int(text[4:])
                elif text.startswith("event: "):
                    event_kind = text[7:]
                elif text.startswith("data: ") and event_kind == kind:
                    got = json.loads(text[6:])
                    if all(got.get(k) == v for k, v in data.items()):
                        return event_id
        raise AssertionError(f"the stream ended before a {kind} event with {data}")

    def wait_for_display(self, line: str) -> None:
        self.wait_for("display", line=line)


@contextmanager
def till_run(var: Path, *args: str, env: dict[str, str] | None = None,
             verify: ssl.SSLContext | bool = True) -> Iterator[TillRun]:
    log = (var.parent / "till-run.log").open("a", encoding="utf-8")  # not a pipe: a full pipe would stop the till
    proc = subprocess.Popen([sys.executable, "-m", "terminal.cli", "run", "--var", str(var), "--listen",
                             "127.0.0.1:0", *args], stdout=subprocess.PIPE, stderr=log, text=True, cwd=ROOT,
                            env={**os.environ, "PYTHONPATH": str(ROOT), **(env or {})})
    run: TillRun | None = None
    try:
        assert proc.stdout is not None
        ready = proc.stdout.readline()
        assert "ready at http" in ready, (var.parent / "till-run.log").read_text(encoding="utf-8")[-3000:]
        run = TillRun(proc, ready.split("ready at ")[1].split()[0], var, log, verify)
        yield run
    finally:
        if run is not None:
            run.http.close()
        if proc.poll() is None:
            proc.kill()
            proc.wait()
        if proc.stdout is not None:
            proc.stdout.close()
        log.close()


def _cli(var: Path, *args: str, stdin: str = "") -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "terminal.cli", *args, "--var", str(var)], input=stdin,
                          capture_output=True, text=True, cwd=ROOT, env={**os.environ, "PYTHONPATH": str(ROOT)},
                          timeout=120, check=False)


def _sale_rows(var: Path) -> list[dict[str, Any]]:
    answer = _cli(var, "transactions", "--json")
    assert answer.returncode == 0, answer.stderr
    return [t for t in json.loads(answer.stdout)["transactions"] if t["kind"] == "sale"]


def test_till_run_takes_payments_survives_sigkill_and_never_charges_twice(tmp_path: Path) -> None:
    var = tmp_path / "var"
    with served("emulate", "printer", "--pty") as printer, \
            till_run(var, "--device", f"printer={printer.endpoint}") as run:
        assert (var / "api.token").stat().st_mode & 0o777 == 0o600
        # One journal, one writer: a second service on this var/ is refused with a clear line.
        second = subprocess.run([sys.executable, "-m", "terminal.cli", "run", "--var", str(var), "--listen",
                                 "127.0.0.1:0"], capture_output=True, text=True, cwd=ROOT, timeout=60, check=False,
                                env={**os.environ, "PYTHONPATH": str(ROOT)})
        assert second.returncode == 2 and "another till is using" in second.stderr, second.stderr

        run.control("card_reader", "present approved chip")
        paid = run.http.post("/v1/payments?wait=60", json={"order_id": "POS-1", "amount": "8.80"}).json()
        assert paid["status"] == "approved", paid
        # The operator commands find the running service (and its supervisor PIN comes on stdin).
        assert [t["trace"] for t in _sale_rows(var)] == [paid["trace"]]
        status = _cli(var, "status", "--json")
        assert status.returncode == 0 and json.loads(status.stdout)["state"] == "IDLE", status.stderr
        refused = _cli(var, "void", paid["trace"], "--supervisor", "supervisor-1", stdin="0000\n")
        assert refused.returncode == 2 and "PIN" in refused.stderr

        # The host holds the answer; the till is killed while the request is out.
        run.control("host", "latency 30")
        run.control("card_reader", "present approved chip")
        started = run.http.post("/v1/payments", json={"order_id": "POS-2", "amount": "9.90"})
        assert started.status_code == 201
        run.wait_for_display(i18n.bilingual("processing"))
        run.proc.send_signal(signal.SIGKILL)
        run.proc.wait()

    with served("emulate", "printer", "--pty") as printer, \
            till_run(var, "--device", f"printer={printer.endpoint}") as run:
        after = run.http.get("/v1/payments/POS-2").json()
        assert after["status"] == "reversed" and after["outcome"] == "REVERSED", after  # decided at boot
        retried = run.http.post("/v1/payments", json={"order_id": "POS-2", "amount": "9.90"})
        assert retried.status_code == 200 and retried.json()["txn_id"] == after["txn_id"]  # the same payment
        assert run.http.get("/v1/payments/POS-1").json()["status"] == "approved"
        rows = _sale_rows(var)
        assert [(r["amount_minor"], r["state"]) for r in rows] == [(880, "APPROVED"), (990, "REVERSED")]
        # The emulated host kept its books across the kill: the batch settles in balance.
        settled = _cli(var, "settle", "--supervisor", "supervisor-1", "--json", stdin="8888\n")
        assert settled.returncode == 0, settled.stderr
        result = json.loads(settled.stdout)["settlement"]
        assert result["balanced"] and result["totals"]["sales_amount"] == 880, result
        run.proc.send_signal(signal.SIGTERM)
        assert run.proc.wait(timeout=60) == 0
        assert run.proc.stdout is not None and "stopped" in run.proc.stdout.read()
    assert not (var / "service.json").exists()


def test_a_printer_unplugged_pauses_receipts_not_payments_and_is_found_again(tmp_path: Path) -> None:
    var, port, roll = tmp_path / "var", tmp_path / "opentill-printer", tmp_path / "roll"
    with served("emulate", "printer", "--pty") as first:
        port.symlink_to(first.endpoint)  # a stable name, as udev gives one
        with till_run(var, "--device", f"printer={port}") as run:
            first.proc.send_signal(signal.SIGTERM)  # the cable is pulled
            first.proc.wait(timeout=30)
            gone = run.wait_for("device", slot="printer", condition="disconnected")
            assert run.http.get("/v1/status").json()["devices"]["printer"]["condition"] == "disconnected"
            for order in ("U-1", "U-2"):  # the next customer pays while the first one's copies wait
                run.control("card_reader", "present approved chip")
                paid = run.http.post("/v1/payments?wait=60", json={"order_id": order, "amount": "4.00"}).json()
                assert paid.get("status") == "approved", paid
            incidents = run.http.get("/v1/reports/exceptions").json()["incidents"]
            assert [i["kind"] for i in incidents].count("receipts_owed") == 1
            with served("emulate", "printer", "--pty", "--out", str(roll)) as second:  # plugged in again
                fresh = tmp_path / "fresh-link"
                fresh.symlink_to(second.endpoint)
                fresh.replace(port)
                back = run.wait_for("device", after=gone, slot="printer", condition="ok")
                assert run.http.get("/v1/status").json()["devices"]["printer"]["condition"] == "ok"
                run.wait_for("receipts", after=back, owed=2, printed=2)  # U-1's two copies, after U-2's
                pages = sorted(roll.glob("page-*.txt"))
                assert len(pages) == 4 and all("重打印" in p.read_text(encoding="utf-8") for p in pages[2:])


def test_a_card_reader_missing_at_start_leaves_qr_payments_and_is_opened_when_it_comes(tmp_path: Path) -> None:
    from emulator.wallet.payers import payment_code

    var, port = tmp_path / "var", tmp_path / "opentill-card-reader"  # nothing there yet
    systemd = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)  # as systemd listens for a Type=notify unit
    systemd.bind(str(tmp_path / "notify"))
    systemd.settimeout(30)
    env = {"NOTIFY_SOCKET": str(tmp_path / "notify"), "WATCHDOG_USEC": "2000000"}
    with systemd, till_run(var, "--device", f"card_reader={port}", env=env) as run:
        assert b"READY=1" in systemd.recv(4096).split(b"\n")  # once it has signed on and serves
        assert systemd.recv(4096) == b"WATCHDOG=1"  # pinged from the loop, every half of WatchdogSec
        assert run.http.get("/v1/status").json()["devices"]["card_reader"]["condition"] == "disconnected"
        refused = run.http.post("/v1/payments", json={"order_id": "M-1", "amount": "2.00"})
        assert refused.status_code == 409 and "card reader is not connected" in refused.json()["error"]["message"]
        assert run.http.get("/v1/payments/M-1").status_code == 404  # refused at once: no order left behind
        qr = run.http.post("/v1/payments", json={"order_id": "M-2", "amount": "2.00", "tender": "qr"})
        assert qr.status_code == 201
        run.control("scanner", f"scan {payment_code('00')}")  # the customer's 付款码: QR payments go on
        assert run.http.get("/v1/payments/M-2?wait=60").json()["status"] == "approved"
        with served("emulate", "card-reader", "--pty") as reader:  # the reader is plugged in
            port.symlink_to(reader.endpoint)
            run.wait_for("device", slot="card_reader", condition="ok")
            assert reader.control("present approved chip").startswith("ok")
            paid = run.http.post("/v1/payments?wait=60", json={"order_id": "M-3", "amount": "3.00"}).json()
            assert paid.get("status") == "approved", paid


def test_till_run_over_https_answers_the_operator_commands_through_its_pinned_certificate(tmp_path: Path) -> None:
    var = tmp_path / "var"
    cert, key = self_signed(tmp_path, "till.local")
    trusting = ssl.create_default_context(cafile=str(cert))
    trusting.check_hostname = False  # reached as 127.0.0.1; the certificate names till.local
    with till_run(var, "--cert", str(cert), "--key", str(key), verify=trusting) as run:
        assert run.url.startswith("https://")
        paid = run.http.post("/v1/payments", json={"order_id": "T-1", "amount": "1.00", "tender": "qr"})
        assert paid.status_code == 201
        status = _cli(var, "status", "--json")  # finds the service in var/, trusts its certificate only
        assert status.returncode == 0, status.stderr
        assert json.loads(status.stdout)["state"] in ("SCANNING", "IDLE")
