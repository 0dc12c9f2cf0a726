"""Crash-kill loop for `till run` (issue 13): SIGKILL the service while a register pays through its API.

One var/ for the whole loop: the journal, and — emulator mode, the default profile — the emulated
host's books (var/emulated/acquirer/acquirer.jsonl), which are the truth about card money. Each
life starts `till run --listen 127.0.0.1:0`, and the test plays the cash register (ECR): every
payment a new `order_id`, a test card presented first (approved, declined, online PIN, a signature
signed on the pad), sometimes a slow host (`latency`) so the kill lands while the request is out.
A `threading.Timer` SIGKILLs the process at a seeded-random moment of the real clock — most of the
kills 0-KILL_WINDOW_S after it said ready, some in its start (boot recovery, sign-on) instead.

Then, as the register does after a crash: restart on the same var/, ask for the order that was in
flight (404: it never reached the journal — an order is committed before its sale starts, and a
refused start leaves none — so the register starts it again and gets 201; otherwise 200 and a
re-POST is 200 with the same txn_id), and read it until it is final.

The audit, at every kill (the process dead: the journal and the host's books as the kill left
them), after every restart and at the end:

1. `PRAGMA integrity_check` is ok; every order the API answered 201/200 for is in the journal,
   with the txn_id the register was told, and after a restart it is DONE (the API: final);
2. no order has two host transactions with money: every APPROVED sale row is the transaction of
   exactly one order (an order's txn_id is its last row), and no two orders share one;
3. the host's ledger nets exactly the amount for every approved order and 0 for every order the
   journal says is not charged (declined, reversed and acknowledged) — 0 lost, 0 double; every
   effective host entry is a journal row (no charge the terminal cannot see); a row the kill left
   owing a reversal is checked once the next life has delivered it, and nothing is owed at the end;
4. finally `till settle` (the supervisor's PIN on stdin) against the running service is balanced.

A share of the lives settles through the API first (the kill may land in it: the settlement is
owed and the next life finishes it by itself before a sale), which also keeps a long run under the
journal's capacity. OPENTILL_CRASH_SERVICE_KILLS (8) sets the number of kills, OPENTILL_CRASH_SEED
the schedule; the seed fixes when each kill is sent, not what the service was doing then.
"""

from __future__ import annotations

import contextlib
import json
import os
import random
import shutil
import signal
import sqlite3
import subprocess
import sys
import threading
import time
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, Any

import httpx

from emulator.acquirer.books import decode
from emulator.acquirer.core import BOOKS_FILE
from emulator.acquirer.ledger import Ledger
from emulator.books import BookFile
from terminal.app import load_terminal_profile

KILLS = int(os.environ.get("OPENTILL_CRASH_SERVICE_KILLS", "8"))
SEED = int(os.environ.get("OPENTILL_CRASH_SEED", "20250505"))
KILL_WINDOW_S = 1.2  # after ready: a payment or two, one of them maybe 1 s at the host
BOOT_KILLS = 0.15  # this share of the kills is timed from the process's start instead
BOOT_WINDOW_S = 1.2  # ~ what a start takes here: kills land in imports, boot recovery, sign-on
LATENCY_SHARE = 0.25  # payments whose host answers LATENCY_S late
LATENCY_S = 1
CARDS = ("approved",) * 5 + ("declined", "pin-required", "signature-required")
SUPERVISOR = {"supervisor": "supervisor-1", "pin": "8888"}  # the emulated terminal's test supervisor
SETTLE_SHARE = 0.1  # lives that settle through the API first, the host slow (the kill may land in it)
COVERAGE_KILLS = 50  # from this many kills on, the run must have hit the windows of a payment
START_WAIT_S = 60.0  # bounds on waits that end in well under a second when all is well
WAIT_S = 30  # ?wait= of a payment
FINAL = frozenset({"approved", "declined", "cancelled", "reversed", "voided", "refunded"})
CHARGED = ("APPROVED", "OFFLINE")
RESTING = ("IDLE", "SETTLE_REQUIRED")
OWED = ("SENT", "AUTHORIZED", "TIMEOUT")  # the next boot reverses these
REPO = Path(__file__).resolve().parents[2]
ENV = {**os.environ, "PYTHONPATH": str(REPO)}


class Killed(Exception):
    """The service went away under the register (the kill)."""


class TillRun:
    """One `till run` life: started, maybe ready, then killed (or stopped at the end)."""

    def __init__(self, var: Path, log: IO[str]) -> None:
        self.var = var
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "terminal.cli", "run", "--var", str(var), "--listen", "127.0.0.1:0"],
            stdout=subprocess.PIPE, stderr=log, text=True, cwd=REPO, env=ENV)  # stderr a file: a full pipe stops it
        self.http: httpx.Client | None = None
        self.timers: list[threading.Timer] = []
        self.kill_in(START_WAIT_S, guard=True)  # a start that hangs fails the test instead of hanging it
        self.guard = self.timers[-1]

    def kill_in(self, seconds: float, *, guard: bool = False) -> None:
        timer = threading.Timer(seconds, self._kill)
        timer.daemon = guard
        self.timers.append(timer)
        timer.start()

    def _kill(self) -> None:
        with contextlib.suppress(ProcessLookupError):
            if self.proc.returncode is None:
                self.proc.send_signal(signal.SIGKILL)

    def ready(self) -> bool:
        """Its "ready at URL" line; False when it died first."""
        assert self.proc.stdout is not None
        line = self.proc.stdout.readline()
        self.guard.cancel()
        if "ready at http://" not in line:
            return False
        token = (self.var / "api.token").read_text(encoding="ascii").strip()
        self.http = httpx.Client(base_url=line.split("ready at ")[1].split()[0], timeout=WAIT_S + 30,
                                 headers={"Authorization": f"Bearer {token}"})
        return True

    def request(self, method: str, path: str, body: dict[str, Any] | None = None) -> httpx.Response:
        assert self.http is not None
        try:
            return self.http.request(method, path, json=body)
        except httpx.TransportError as exc:
            raise Killed(f"{method} {path}: {exc!r}") from exc

    def control(self, slot: str, line: str) -> None:
        answer = self.request("POST", f"/v1/emulators/{slot}", {"line": line})
        assert answer.status_code == 200 and answer.json()["reply"].startswith("ok"), (slot, line, answer.text)

    def state_after(self, order_id: str) -> str:
        """Follow the event stream from its start: "signature" once the order's sale asks for a
        signature, "done" once the order is decided."""
        assert self.http is not None
        mine, kind = False, ""
        try:
            with self.http.stream("GET", "/v1/events", headers={"Last-Event-ID": "0"}) as stream:
                for text in stream.iter_lines():
                    if text.startswith("event: "):
                        kind = text[7:]
                    elif text.startswith("data: "):
                        data = json.loads(text[6:])
                        if kind == "payment" and data.get("order_id") == order_id:
                            mine = True
                            if data.get("status") == "done":
                                return "done"
                        elif kind == "state" and mine and data.get("state") == "SIGNATURE_REQUIRED":
                            return "signature"
        except httpx.TransportError as exc:
            raise Killed(f"events: {exc!r}") from exc
        raise Killed("the event stream ended")

    def wait_resting(self) -> None:
        """Until the till is IDLE: housekeeping a crash left owed (a settlement cut off, a
        reversal) goes first, by itself. Each state change on the stream is a reason to look."""
        if self.request("GET", "/v1/status").json()["state"] in RESTING:
            return
        assert self.http is not None
        kind = ""
        try:
            with self.http.stream("GET", "/v1/events", headers={"Last-Event-ID": "0"}) as stream:
                for text in stream.iter_lines():
                    if text.startswith("event: "):
                        kind = text[7:]
                    elif (text.startswith("data: ") and kind == "state" and json.loads(text[6:])["state"] in RESTING
                          and self.request("GET", "/v1/status").json()["state"] in RESTING):
                        return
        except httpx.TransportError as exc:
            raise Killed(f"events: {exc!r}") from exc
        raise Killed("the event stream ended")

    def dead(self) -> int:
        """Reap it (it was killed); its exit status."""
        returncode = self.proc.wait(timeout=START_WAIT_S)
        self.close()
        return returncode

    def close(self) -> None:
        """Whatever state it is in: no process, timer, pipe or client left behind. Idempotent."""
        for timer in self.timers:
            timer.cancel()
            timer.join()
        if self.proc.poll() is None:
            self.proc.kill()
        self.proc.wait(timeout=START_WAIT_S)
        if self.proc.stdout is not None:
            self.proc.stdout.close()
        if self.http is not None:
            self.http.close()


@dataclass
class Order:
    order_id: str
    amount_minor: int
    card: str
    answered: bool = False  # the API answered 201/200 for it: it must never be lost
    txn_id: str | None = None  # the host transaction the register was told about
    status: str = ""  # as last read through the API


@dataclass(frozen=True)
class Row:
    kind: str
    state: str
    stan: int
    amount_minor: int
    date: str  # MMDD of created_at: DE 13 of its request, part of the host's key


@dataclass
class Audit:
    var: Path
    scratch: Path
    terminal_id: str
    where: str = ""
    orders: dict[str, Order] = field(default_factory=dict)  # every order the register sent
    rows: dict[str, Row] = field(default_factory=dict)  # every journal row seen (settled rows leave the file)
    reversals: dict[str, str] = field(default_factory=dict)
    counted: set[str] = field(default_factory=set)  # rows whose kill window is in the stats
    stats: Counter[str] = field(default_factory=Counter)
    problems: list[str] = field(default_factory=list)

    def fail(self, what: str) -> None:
        self.problems.append(f"{self.where}: {what}")

    def look(self, *, after_restart: bool, final: bool = False) -> None:
        """Audit 1-2 on the journal as it is now (read-only), then 3 when the process is dead."""
        db = sqlite3.connect(f"file:{self.var / 'journal.sqlite3'}?mode=ro", uri=True)
        try:
            integrity = [str(r[0]) for r in db.execute("PRAGMA integrity_check")]
            if integrity != ["ok"]:
                self.fail(f"integrity_check says {integrity[:5]}")
            if db.execute("SELECT 1 FROM sqlite_master WHERE name = 'ecr_orders'").fetchone() is None:
                if self.orders:
                    self.fail("the journal has lost its tables")
                return
            journal = {str(o): (str(s), str(t)) for o, s, t in db.execute(
                "SELECT order_id, status, txn_id FROM ecr_orders")}
            for txn_id, kind, state, stan, amount, created in db.execute(
                    "SELECT txn_id, kind, state, stan, amount_minor, created_at FROM transactions"):
                self.rows[txn_id] = Row(kind, state, stan, amount, f"{created[5:7]}{created[8:10]}")
            self.reversals.update(dict(db.execute("SELECT txn_id, state FROM reversals").fetchall()))
        finally:
            db.close()
        for order in self.orders.values():
            status, txn_id = journal.get(order.order_id, ("MISSING", ""))
            if order.answered and status == "MISSING":
                self.fail(f"order {order.order_id} was answered by the API but is not in the journal (lost)")
            if after_restart and status == "OPEN":
                self.fail(f"order {order.order_id} is still OPEN after the restart")
            if order.txn_id and txn_id != order.txn_id:
                self.fail(f"order {order.order_id} was told txn {order.txn_id}, the journal says {txn_id!r}")
        of_txn: dict[str, str] = {}
        for order_id, (_, txn_id) in journal.items():
            if txn_id and of_txn.setdefault(txn_id, order_id) != order_id:
                self.fail(f"orders {of_txn[txn_id]} and {order_id} share the transaction {txn_id}")
        for txn_id, row in self.rows.items():
            if row.kind == "sale" and row.state in CHARGED and txn_id not in of_txn:
                self.fail(f"the approved sale {txn_id} is no order's transaction (a second charge?)")
        if self.var.joinpath("emulated", "acquirer", BOOKS_FILE).exists() and (final or not after_restart):
            self._host(journal, of_txn, final=final)

    def _charged(self, txn_id: str) -> bool | None:
        """Is this row's money the customer's charge (True), nothing (False), or still owed a reversal (None)?"""
        row, reversal = self.rows[txn_id], self.reversals.get(txn_id)
        if row.state in OWED or reversal in ("PENDING", "FAILED"):
            return None
        return row.state in CHARGED and reversal is None

    def _host(self, journal: dict[str, tuple[str, str]], of_txn: dict[str, str], *, final: bool) -> None:
        """Audit 3: the host's books (a copy, read through the acquirer's own loader) against the journal."""
        copy = self.scratch / BOOKS_FILE
        shutil.copyfile(self.var / "emulated" / "acquirer" / BOOKS_FILE, copy)
        restored = BookFile(copy, kind="acquirer").load(lambda tables: decode(tables, str(copy)))
        ledger = Ledger()
        ledger.restore(entries=restored.entries, tombstones=restored.tombstones, uploads=restored.uploads,
                       settled=restored.settled, signatures=restored.signatures)
        by_key = {(f"{r.stan:06d}", r.date): t for t, r in self.rows.items()}
        if not final:  # where the kill landed: with a request at the host, booked there or not yet
            for txn_id, row in self.rows.items():
                if row.state in ("SENT", "AUTHORIZED") and txn_id not in self.counted:
                    self.counted.add(txn_id)
                    booked = ledger.get((self.terminal_id, f"{row.stan:06d}", row.date)) is not None
                    self.stats[f"killed with a sale {row.state}, host {'had' if booked else 'had not'} booked it"] += 1
        lost = double = owed = 0
        for entry in ledger:
            if entry.terminal_id != self.terminal_id or not entry.effective:
                continue
            ours = by_key.get((entry.stan, entry.date))
            if ours is None:
                self.fail(f"the host charged {entry.stan}/{entry.date} ({entry.amount_minor}): not in the journal")
                double += 1
            elif (charged := self._charged(ours)) is None:
                owed += 1
            elif not charged:
                self.fail(f"{ours} is {self.rows[ours].state} in the journal, but the host charged it")
                double += 1
        for txn_id, row in self.rows.items():
            charged = self._charged(txn_id)
            if row.kind != "sale" or charged is None:
                continue
            want = row.amount_minor if charged else 0
            net = ledger.net_effect(self.terminal_id, f"{row.stan:06d}", row.date)
            if net != want:
                order = of_txn.get(txn_id, "no order")
                self.fail(f"{txn_id} ({order}) is {row.state} for {row.amount_minor}, the host nets {net}")
                lost += net < want
                double += net > want
        self.stats["lost"] += lost
        self.stats["double"] += double
        if owed:
            self.stats["kills leaving a reversal owed"] += 1
        if final and owed:
            self.fail(f"{owed} host charges still owe their reversal at the end")
        if final:
            open_orders = [o for o, (status, _) in journal.items() if status == "OPEN"]
            if open_orders:
                self.fail(f"orders still OPEN at the end: {open_orders[:5]}")


class Register:
    """The ECR: one payment after another, each a new order; after a crash it asks again."""

    def __init__(self, audit: Audit, rng: random.Random) -> None:
        self.audit, self.rng = audit, rng
        self.number = 0
        self.in_flight: Order | None = None

    def new_order(self) -> Order:
        self.number += 1
        order = Order(f"ECR-{SEED}-{self.number:05d}", self.rng.randint(100, 99_999), self.rng.choice(CARDS))
        self.audit.orders[order.order_id] = order
        return order

    def pay(self, till: TillRun, order: Order) -> None:
        """Present the card, start the payment, sign if asked, read it until it is final."""
        self.in_flight = order
        latency = LATENCY_S if self.rng.random() < LATENCY_SHARE else 0
        till.control("host", f"latency {latency}")
        till.control("card_reader", f"present {order.card}")
        signs = order.card == "signature-required"
        body = {"order_id": order.order_id, "amount_minor": order.amount_minor, "tender": "card"}
        answer = till.request("POST", "/v1/payments" + ("" if signs else f"?wait={WAIT_S}"), body)
        assert answer.status_code == 201, f"{self.audit.where}: {order.order_id}: {answer.status_code} {answer.text}"
        self._answered(order, answer.json())
        if signs and till.state_after(order.order_id) == "signature":
            till.control("signature_pad", "sign J. SMITH")
            till.control("signature_pad", "advance 10")  # the pen packets at the pad's line rate, at once
        self._final(till, order)
        self.in_flight = None

    def _answered(self, order: Order, view: dict[str, Any]) -> None:
        order.answered = True
        if view["txn_id"] and order.txn_id and view["txn_id"] != order.txn_id:
            self.audit.fail(f"order {order.order_id} was txn {order.txn_id}, now {view['txn_id']}")
        order.txn_id = view["txn_id"] or order.txn_id
        if order.status in FINAL and view["status"] != order.status:
            self.audit.fail(f"order {order.order_id} was {order.status}, now reads {view['status']}")
        order.status = view["status"]

    def _final(self, till: TillRun, order: Order) -> None:
        while order.status not in FINAL:
            answer = till.request("GET", f"/v1/payments/{order.order_id}?wait={WAIT_S}")
            assert answer.status_code == 200, f"{self.audit.where}: {order.order_id}: {answer.text}"
            self._answered(order, answer.json())
            if order.status == "in_progress" and order.card != "signature-required":
                self.audit.fail(f"order {order.order_id} is still in progress after {WAIT_S} s")
                return
            if order.status == "in_progress":  # a signature asked after a restart: sign it
                till.control("signature_pad", "sign J. SMITH")
                till.control("signature_pad", "advance 10")

    def after_restart(self, till: TillRun) -> None:
        """The order the crash cut off, as the register asks again for it."""
        till.wait_resting()
        order = self.in_flight
        if order is None:
            return
        answer = till.request("GET", f"/v1/payments/{order.order_id}")
        if answer.status_code == 404:  # never committed: nothing was started, so it starts now
            if order.answered:
                self.audit.fail(f"order {order.order_id} was answered before the kill; now it is unknown")
            self.audit.stats["orders the kill stopped before the journal"] += 1
            self.pay(till, order)
            return
        assert answer.status_code == 200, answer.text
        seen = answer.json()
        body = {"order_id": order.order_id, "amount_minor": order.amount_minor, "tender": "card"}
        again = till.request("POST", "/v1/payments", body)
        if again.status_code != 200 or again.json()["txn_id"] != seen["txn_id"]:
            self.audit.fail(f"re-POST of {order.order_id}: {again.status_code} {again.text[:300]} (GET: {seen})")
        self.audit.stats[f"re-POST after the kill: {seen['status']}"] += 1
        self._answered(order, seen)
        self._final(till, order)
        self.in_flight = None

    def check_all(self, till: TillRun, *, every: bool) -> None:
        """Audit 1 through the API: each order answered (`every`: all, else a sample) reads back as
        the register was last told (final: nothing decided ever changes)."""
        answered = [o for o in self.audit.orders.values() if o.answered]
        for order in answered if every else self.rng.sample(answered, min(len(answered), 8)):
            answer = till.request("GET", f"/v1/payments/{order.order_id}")
            view = answer.json() if answer.status_code == 200 else {}
            if view.get("status") != order.status or (order.txn_id and view.get("txn_id") != order.txn_id):
                self.audit.fail(f"order {order.order_id} reads back as {answer.status_code} {answer.text[:300]}")


def _settle_cli(var: Path) -> dict[str, Any]:
    done = subprocess.run([sys.executable, "-m", "terminal.cli", "settle", "--var", str(var), "--supervisor",
                           SUPERVISOR["supervisor"], "--json"], input=SUPERVISOR["pin"] + "\n", capture_output=True,
                          text=True, cwd=REPO, env=ENV, timeout=START_WAIT_S, check=False)
    assert done.returncode == 0, done.stderr
    settlement: dict[str, Any] = json.loads(done.stdout)["settlement"]
    return settlement


def test_sigkill_of_till_run_at_random_moments_loses_no_payment_and_charges_once(tmp_path: Path) -> None:
    rng = random.Random(SEED)  # the kills' schedule; the register's choices have their own
    var, scratch = tmp_path / "var", tmp_path / "scratch"
    scratch.mkdir()
    log_path = tmp_path / "till-run.log"
    rerun = (f"seed={SEED} kills={KILLS} (rerun: OPENTILL_CRASH_SEED={SEED} OPENTILL_CRASH_SERVICE_KILLS={KILLS}),"
             f" the services' log in {log_path}")
    terminal_id = str(load_terminal_profile("emulated-counter")["terminal_id"])
    audit = Audit(var=var, scratch=scratch, terminal_id=terminal_id)
    register = Register(audit, random.Random(SEED + 1))
    started = time.monotonic()
    with log_path.open("a", encoding="utf-8") as log:
        for kill in range(1, KILLS + 2):
            audit.where = f"life {kill}/{KILLS + 1}, {rerun}"
            last = kill == KILLS + 1
            till = TillRun(var, log)
            # Drawn before anything runs, so the schedule is the seed's whatever the timing.
            in_boot = not last and rng.random() < BOOT_KILLS
            delay = rng.uniform(0.0, BOOT_WINDOW_S if in_boot else KILL_WINDOW_S)
            settles = rng.random() < SETTLE_SHARE
            try:
                if in_boot:
                    till.kill_in(delay)
                if not till.ready():
                    assert in_boot and till.dead() == -signal.SIGKILL, f"{audit.where}: the service never started"
                    audit.stats["kills"] += 1
                    audit.stats["killed in the start"] += 1
                    audit.look(after_restart=False)
                    assert not audit.problems, "\n  ".join(audit.problems[:20])
                    continue
                if not last and not in_boot:
                    till.kill_in(delay)
                try:
                    register.after_restart(till)
                    audit.look(after_restart=True)
                    register.check_all(till, every=last)
                    if last:
                        break
                    assert not audit.problems, "\n  ".join(audit.problems[:20])
                    if settles:
                        audit.look(after_restart=True)  # the rows, before they leave the journal
                        audit.stats["killed in a settlement"] += 1  # taken back below if it ends first
                        till.control("host", f"latency {LATENCY_S}")  # so the kill may land while the host has it
                        settled = till.request("POST", "/v1/settlement", {**SUPERVISOR, "reason": "crash-kill loop"})
                        assert settled.status_code == 200, settled.text
                        if not settled.json()["settlement"]["balanced"]:
                            audit.fail(f"a settlement on the way is out of balance: {settled.text[:500]}")
                        audit.stats["settlements on the way"] += 1
                        audit.stats["killed in a settlement"] -= 1
                    while True:
                        register.pay(till, register.new_order())
                except Killed:
                    pass
                assert till.dead() == -signal.SIGKILL, f"{audit.where}: the service ended by itself; see the log"
                audit.stats["kills"] += 1
                audit.stats["killed with an order in flight"] += register.in_flight is not None
                audit.look(after_restart=False)
                assert not audit.problems, "\n  ".join(audit.problems[:20])
            finally:
                if last and till.http is not None and not audit.problems:
                    audit.look(after_restart=True)  # every row, before settlement takes them out
                    settlement = _settle_cli(var)  # against the running service
                    if not settlement["balanced"]:
                        audit.fail(f"the settlement is out of balance: {settlement}")
                    till.proc.send_signal(signal.SIGTERM)
                    assert till.proc.wait(timeout=START_WAIT_S) == 0, "the service did not stop cleanly"
                till.close()
    audit.where = f"the end, {rerun}"
    audit.look(after_restart=True, final=True)
    orders = [o for o in audit.orders.values() if o.answered]
    count = Counter(o.status for o in orders)
    audit.stats.update(f"{o.card}: {o.status}" for o in orders)
    print(f"crash-kill service: {rerun}: {time.monotonic() - started:.1f}s, kills={audit.stats['kills']}, "
          f"orders={len(orders)}, approved={count['approved']}, declined={count['declined']}, "
          f"reversed={count['reversed']}, cancelled={count['cancelled']}, lost={audit.stats['lost']}, "
          f"double={audit.stats['double']}, {dict(audit.stats)}")
    assert not audit.problems, "\n  ".join(audit.problems[:20])
    assert audit.stats["lost"] == audit.stats["double"] == 0
    assert orders and count["approved"], f"{rerun}: no payment went through: {dict(audit.stats)}"
    if KILLS >= COVERAGE_KILLS:  # the loop proves something only if kills hit the windows that matter
        assert audit.stats["kills leaving a reversal owed"] and count["reversed"] and audit.stats[
            "orders the kill stopped before the journal"], f"{rerun}: the kills missed the windows: {dict(audit.stats)}"
