"""Crash-kill loop for QR payments (issue 11): SIGKILL a till selling by QR code and by card.

One wallet gateway simulator (emulator/wallet/server.py, HTTP on loopback) and one acquirer
simulator outlive every child: the gateway's ledger is the truth about QR money. Each child
(tests/reliability/crash_child.py, `--qr-share`) boots on the same var dir and sells back to back,
most sales by a test payment code whose payer pays at once, declines, loses the pay's answer,
answers a system error though paid, never pays (reversed) or pays at the reverse (refunded), on
fast timings; the parent kills it at a seeded-random moment — with a pay on the wire, a query or
a reverse unanswered, a decision half-written. Then the parent boots a till itself, which asks
the gateway about every order still open (idle housekeeping, QR_RESOLVING), and audits:

1. `PRAGMA integrity_check` is ok;
2. every QR sale a child acknowledged APPROVED is in the journal APPROVED, and the gateway
   holds its amount (none lost);
3. once nothing is open, the gateway's net effect of every order (paid less refunded) is the
   row's amount when APPROVED, else 0 — never more, never twice (one effect per order);
4. every order the gateway booked is a row of the journal (no charge the terminal cannot see),
   and no order number is in the journal twice.

OPENTILL_CRASH_QR_KILLS (15) sets the number of kills, OPENTILL_CRASH_SEED the schedule.
"""

from __future__ import annotations

import os
import random
import signal
import sqlite3
import time
from collections import Counter
from pathlib import Path

from emulator.acquirer.simulator import AcquirerSimulator
from emulator.wallet.server import WalletServer
from sim.wiring import build_emulated_till
from terminal.checkout.table import CheckoutState
from tests.reliability.crash_child import overrides
from tests.reliability.test_crash_kill import START_WAIT_S, Child

KILLS = int(os.environ.get("OPENTILL_CRASH_QR_KILLS", "15"))
SEED = int(os.environ.get("OPENTILL_CRASH_SEED", "20250505"))
KILL_WINDOW_S = 1.5  # a QR sale takes 10 ms to 1.5 s on these timings: kills land anywhere in one
QR_SHARE = "0.8"
HOLD_S = 0.3  # the gateway holds a lost answer's connection this long, then drops it
RESOLVE_ROUNDS = 5


def _journal_rows(db_path: Path) -> tuple[list[str], dict[str, tuple[str, int, str]]]:
    """(integrity_check lines, order number -> (row state, amount, kind)) of the journal file."""
    db = sqlite3.connect(db_path)
    try:
        integrity = [str(r[0]) for r in db.execute("PRAGMA integrity_check")]
        if db.execute("SELECT 1 FROM sqlite_master WHERE name = 'qr_orders'").fetchone() is None:
            return integrity, {}
        rows = db.execute("SELECT q.order_no, t.state, t.amount_minor, t.kind FROM qr_orders q"
                          " JOIN transactions t USING (txn_id)").fetchall()
        return integrity, {str(o): (str(s), int(a), str(k)) for o, s, a, k in rows}
    finally:
        db.close()


def _net(server: WalletServer) -> dict[str, int]:
    def books(gateway):  # type: ignore[no-untyped-def]
        return {o.order_no: (o.amount_fen - o.refunded_fen) if o.paid else 0 for o in gateway.ledger.orders.values()}

    return server.control(books)


def test_sigkill_during_qr_payments_loses_nothing_and_charges_once(tmp_path: Path) -> None:
    rng = random.Random(SEED)
    var_dir, stderr_path = tmp_path / "var", tmp_path / "children.stderr"
    rerun = f"seed={SEED} kills={KILLS} (rerun: OPENTILL_CRASH_SEED={SEED} OPENTILL_CRASH_QR_KILLS={KILLS})"
    stats: Counter[str] = Counter()
    acked: dict[str, int] = {}  # order number -> amount, acknowledged APPROVED
    with AcquirerSimulator() as sim, WalletServer(hold_s=HOLD_S) as wallet, stderr_path.open("wb") as stderr:
        port = sim.address[1]
        extra = ("--wallet-url", wallet.url, "--qr-share", QR_SHARE)
        for kill in range(1, KILLS + 1):
            where = f"kill {kill}/{KILLS}, {rerun}, children's stderr in {stderr_path}"
            child = Child(var_dir, port, rng.getrandbits(32), stderr, extra=extra)
            try:
                assert child.go() and child.wait_for("READY", START_WAIT_S), f"{where}: no READY: {child.lines}"
                child.read_until(time.monotonic() + rng.uniform(0.0, KILL_WINDOW_S))
                assert child.kill() == -signal.SIGKILL, f"{where}: the child ended by itself; see its stderr"
            finally:
                child.close()
            stats["kills"] += 1
            for line in child.lines:
                if line.startswith("QRACK "):
                    _, _, amount_text, outcome, order_no, payer = line.split()
                    stats[f"payer {payer}: {outcome}"] += 1
                    if outcome == "APPROVED":
                        acked[order_no] = int(amount_text)
            integrity, rows = _journal_rows(var_dir / "journal.sqlite3")
            assert integrity == ["ok"], f"{where}: integrity_check says {integrity[:5]}"
            stats["killed with a QR order open"] += sum(state == "SENT" for state, _, _ in rows.values())

        # Recovery: a till on the same var dir asks the gateway about every order still open.
        with build_emulated_till(var_dir=var_dir, overrides=overrides(port, wallet.url)) as till:
            for _ in range(RESOLVE_ROUNDS):
                if not till.journal.qr_unresolved():
                    break
                till.flow._qr_resolve_at = 0.0  # this round now, not after resolve_every_s
                till.flow.idle_tick()
                till.runtime.run_until(lambda: till.flow.state is CheckoutState.IDLE, io_wait=5.0)
            unresolved = [o.order_no for o in till.journal.qr_unresolved()]
        integrity, rows = _journal_rows(var_dir / "journal.sqlite3")
        net = _net(wallet)

    problems = [] if integrity == ["ok"] else [f"integrity_check says {integrity[:5]}"]
    problems += [f"order {o} still open after {RESOLVE_ROUNDS} rounds with a healthy gateway" for o in unresolved]
    for order_no, acked_fen in acked.items():
        state = rows.get(order_no, ("MISSING", 0, ""))[0]
        if state != "APPROVED" or net.get(order_no) != acked_fen:
            problems.append(f"acknowledged {order_no} ({acked_fen}): journal {state}, wallet nets {net.get(order_no)}")
    for order_no, (row_state, row_fen, kind) in rows.items():
        if kind != "sale":
            continue
        want = row_fen if row_state == "APPROVED" else 0
        if net.get(order_no, 0) != want:
            problems.append(f"order {order_no}: journal {row_state} {row_fen}, wallet nets {net.get(order_no, 0)}")
    problems += [f"order {o} booked at the gateway is not in the journal (nets {n})"
                 for o, n in net.items() if o not in rows and n]
    print(f"crash-kill QR: {rerun}: {dict(stats)}, {len(acked)} acknowledged, {len(rows)} journal orders")
    assert not problems, "\n  ".join([rerun, *problems[:20]])
    assert acked and stats["killed with a QR order open"], f"{rerun}: the kills missed the QR windows: {dict(stats)}"
