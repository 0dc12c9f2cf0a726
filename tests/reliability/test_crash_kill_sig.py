"""Crash-kill loop for 电签 (issue 12): SIGKILL a till whose card sales are signed on the pad.

One acquirer simulator outlives every child; it counts the signatures it *stores* (an 0820
answered 00, its answer delivered or lost), so a second effect for one sale shows. Each child
(tests/reliability/crash_child.py, `--signature-share`) boots on the same var dir and sells back
to back with the `signature-required` card: the host approves, the cardholder signs on a pad that
sends its pen packets at once and presses OK (now and then Cancel: the paper line), the slips
print, and the upload goes at the next idle round. Some children start with the host losing
(`silent`: stored, answer lost), ignoring or refusing (96) their first uploads. The parent kills
each at a seeded-random moment: with the sale on the wire, the signature half-taken, the
signature journalled but the slips unprinted, an 0820 in flight. After each kill, on the crashed
file:

1. `PRAGMA integrity_check` is ok;
2. every sale a child acknowledged signed (`SIGACK ... APPROVED 1`) has its strokes and a binding
   that verifies (none lost).

At the end a till boots on the var dir (recovery: a sale being signed when the power went gets the
fallback, paper line or reversal; owed uploads go) and the parent audits:

3. every APPROVED sale of the signature card has its signature with a binding that verifies, or a `signature_on_paper`
   incident (the fallback rule of this paper terminal), and no OWED mark is left;
4. every upload is DONE, the host holds exactly those signatures (none the journal lacks), and it
   stored each one once: one effect per original trace, however often it was sent;
5. the host's net effect of every row is its amount when APPROVED, else 0.

OPENTILL_CRASH_SIG_KILLS (10) sets the number of kills, OPENTILL_CRASH_SEED the schedule.
"""

from __future__ import annotations

import os
import random
import signal
import sqlite3
import time
from collections import Counter
from pathlib import Path

from drivers.acquirer.events import HostMessage
from emulator.acquirer.simulator import AcquirerSimulator
from emulator.card_reader.cards import get_card
from sim.wiring import build_emulated_till
from terminal.app import load_terminal_profile
from terminal.checkout.table import CheckoutState
from terminal.journal.signatures import binding_of
from tests.reliability.crash_child import SIGNATURE_CARD, overrides
from tests.reliability.test_crash_kill import START_WAIT_S, Child

KILLS = int(os.environ.get("OPENTILL_CRASH_SIG_KILLS", "10"))
SEED = int(os.environ.get("OPENTILL_CRASH_SEED", "20250505"))
KILL_WINDOW_S = 0.6  # a signed sale with its slips and upload takes ~50-300 ms: kills land anywhere in one
SIGNATURE_SHARE = "0.9"
UPLOAD_FAULT_CHILDREN = 0.3  # this share of the children meet a host that mishandles their first uploads
UPLOAD_FAULTS = ("silent", "ignore", "96")
DRAIN_ROUNDS = 6
SIGNATURE_CARD_LAST4 = get_card(SIGNATURE_CARD).pan[-4:]  # the journal keeps the last 4 only


class _CountingHost(AcquirerSimulator):
    """The simulator, counting what each 0820 did: `stored[(terminal, stan, rrn)]` is how many
    times a signature was stored for that sale (00), whether or not the answer got out."""

    def __init__(self) -> None:
        super().__init__()
        self.stored: Counter[tuple[str, str, str]] = Counter()
        self.sent: Counter[tuple[str, str, str]] = Counter()

    def _signature_upload(self, request: HostMessage) -> HostMessage:
        answer = super()._signature_upload(request)
        key = (request.terminal_id or "", request.stan or "", request.text("37") or "")
        self.sent[key] += 1
        if answer.response_code == "00":
            self.stored[key] += 1
        return answer


def _read(db_path: Path) -> dict[str, object]:
    """The journal file as it is: integrity, rows, signatures, uploads, marks, paper incidents."""
    db = sqlite3.connect(db_path)
    try:
        integrity = [str(r[0]) for r in db.execute("PRAGMA integrity_check")]
        if db.execute("SELECT 1 FROM sqlite_master WHERE name = 'signature_marks'").fetchone() is None:
            return {"integrity": integrity, "rows": {}, "signature_card": set(), "signatures": {}, "uploads": {},
                    "owed": set(), "paper": set()}
        return {
            "integrity": integrity,
            "rows": {t: (s, n, a, r or "") for t, s, n, a, r in db.execute(
                "SELECT txn_id, state, stan, amount_minor, rrn FROM transactions")},
            "signature_card": {t for (t,) in db.execute(
                "SELECT txn_id FROM transactions WHERE pan_last4 = ?", (SIGNATURE_CARD_LAST4,))},
            "signatures": {t: (f, bytes(k), b) for t, f, k, b in db.execute(
                "SELECT txn_id, feature_code, strokes, binding FROM signatures")},
            "uploads": dict(db.execute("SELECT txn_id, state FROM signature_uploads").fetchall()),
            "owed": {t for (t,) in db.execute("SELECT txn_id FROM signature_marks WHERE mark = 'OWED'")},
            "paper": {t for (t,) in db.execute("SELECT txn_id FROM incidents WHERE kind = 'signature_on_paper'")},
        }
    finally:
        db.close()


def _bound(journal: dict[str, object], txn_id: str) -> bool:
    rows, signatures = journal["rows"], journal["signatures"]
    assert isinstance(rows, dict) and isinstance(signatures, dict)
    if txn_id not in signatures or txn_id not in rows:
        return False
    feature, strokes, binding = signatures[txn_id]
    return bool(strokes) and binding_of(txn_id, rows[txn_id][2], feature, strokes) == binding


def test_sigkill_during_signature_sales_loses_no_signature_and_uploads_once(tmp_path: Path) -> None:
    rng = random.Random(SEED)
    var_dir, stderr_path = tmp_path / "var", tmp_path / "children.stderr"
    db_path = var_dir / "journal.sqlite3"
    rerun = f"seed={SEED} kills={KILLS} (rerun: OPENTILL_CRASH_SEED={SEED} OPENTILL_CRASH_SIG_KILLS={KILLS})"
    terminal_id = str(load_terminal_profile("emulated-counter")["terminal_id"])
    stats: Counter[str] = Counter()
    signed: dict[str, int] = {}  # txn_id -> amount, acknowledged APPROVED and signed on the pad
    problems: list[str] = []
    started = time.monotonic()
    sim = _CountingHost()
    with sim, stderr_path.open("wb") as stderr:
        port = sim.address[1]

        def next_child() -> Child:
            return Child(var_dir, port, rng.getrandbits(32), stderr, extra=("--signature-share", SIGNATURE_SHARE))

        child: Child | None = next_child()
        spare: Child | None = None
        try:
            for kill in range(1, KILLS + 1):
                where = f"kill {kill}/{KILLS}, {rerun}, children's stderr in {stderr_path}"
                if rng.random() < UPLOAD_FAULT_CHILDREN:
                    fault = rng.choice(UPLOAD_FAULTS)
                    sim.fail_uploads(fault, rng.randint(1, 2))
                    stats[f"children meeting upload fault {fault}"] += 1
                else:
                    sim.fail_uploads("silent", 0)
                assert child is not None
                assert child.go() and child.wait_for("READY", START_WAIT_S), f"{where}: no READY: {child.lines}"
                if kill < KILLS:  # the next child imports (and loads its signers' fonts) while this one sells
                    spare = next_child()
                child.read_until(time.monotonic() + rng.uniform(0.0, KILL_WINDOW_S))
                assert child.kill() == -signal.SIGKILL, f"{where}: the child ended by itself; see its stderr"
                child.close()
                stats["kills"] += 1
                for line in child.lines:
                    if line.startswith("SIGACK "):
                        _, txn_id, amount, outcome, was_signed = line.split()
                        stats[f"signature sales {outcome}{' signed' if was_signed == '1' else ''}"] += 1
                        if outcome == "APPROVED" and was_signed == "1":
                            signed[txn_id] = int(amount)
                child, spare = spare, None
                if not db_path.exists():
                    continue
                crashed = _read(db_path)
                if crashed["integrity"] != ["ok"]:
                    problems.append(f"{where}: integrity_check says {crashed['integrity']}")
                problems += [f"{where}: acknowledged signed sale {t} has lost its signature"
                             for t in signed if not _bound(crashed, t)]
                owed, uploads = crashed["owed"], crashed["uploads"]
                assert isinstance(owed, set) and isinstance(uploads, dict)
                stats["killed while a signature was owed"] += bool(owed)
                stats["killed with an upload pending"] += any(s == "PENDING" for s in uploads.values())
                assert not problems, "\n  ".join(problems[:20])
        finally:
            for left in (child, spare):
                if left is not None:
                    left.close()

        # Recovery: a till on the same var dir applies the fallbacks and uploads what is owed.
        sim.fail_uploads("silent", 0)
        with build_emulated_till(var_dir=var_dir, overrides=overrides(port, signature=True)) as till:
            for _ in range(DRAIN_ROUNDS):
                till.runtime.run_until(lambda: till.flow.state is CheckoutState.IDLE, io_wait=5.0)
                if not till.journal.pending_uploads():
                    break
                till.flow._upload_at = 0.0  # this round now, not after housekeeping_s
                till.flow.housekeeping()
                till.runtime.run_until(lambda: till.flow.state is CheckoutState.IDLE, io_wait=5.0)
        final = _read(db_path)
        stored, sent = dict(sim.stored), dict(sim.sent)
        final_rows = final["rows"]
        assert isinstance(final_rows, dict)
        nets = {t: sim.net_effect(terminal_id, f"{stan:06d}") for t, (_, stan, _, _) in final_rows.items()}
        host_has = {(u.terminal_id, u.stan, u.rrn) for u in sim.signature_uploads}
        internal = list(sim.internal_errors)

    rows, signatures, uploads = final["rows"], final["signatures"], final["uploads"]
    assert isinstance(rows, dict) and isinstance(signatures, dict) and isinstance(uploads, dict)
    assert isinstance(final["paper"], set) and isinstance(final["owed"], set)
    if final["integrity"] != ["ok"]:
        problems.append(f"integrity_check says {final['integrity']}")
    problems += [f"OWED mark of {t} left after recovery" for t in final["owed"]]
    problems += [f"acknowledged signed sale {t} lost its signature" for t in signed if not _bound(final, t)]
    assert isinstance(final["signature_card"], set)
    lost = [t for t, (state, _, _, _) in rows.items() if t in final["signature_card"]
            and state == "APPROVED" and not _bound(final, t) and t not in final["paper"]]
    problems += [f"approved sale {t} has neither a bound signature nor the paper line" for t in lost]
    keys = {}
    for txn_id in signatures:
        _, stan, _, rrn = rows[txn_id]
        keys[txn_id] = (terminal_id, f"{stan:06d}", rrn)
        if uploads.get(txn_id) != "DONE":
            problems.append(f"the upload of {txn_id} is {uploads.get(txn_id)} after recovery with a healthy host")
        if keys[txn_id] not in host_has:
            problems.append(f"the host does not hold the signature of {txn_id}")
    problems += [f"the host stored the signature of {k} {n} times (sent {sent.get(k)})"
                 for k, n in stored.items() if n > 1]
    problems += [f"the host holds a signature {k} the journal has none for"
                 for k in host_has - set(keys.values())]
    for txn_id, (state, _, amount, _) in rows.items():
        want = amount if state == "APPROVED" else 0
        if nets[txn_id] != want:
            problems.append(f"{txn_id} is {state} for {amount} but the host nets {nets[txn_id]}")
    problems += [f"the simulator raised {e!r}" for e in internal]
    stats["double effects"] = sum(n > 1 for n in stored.values())
    stats["resent uploads"] = sum(n > 1 for n in sent.values())
    stats["lost signatures"] = len(lost) + sum(not _bound(final, t) for t in signed)
    stats["paper fallbacks"] = len(final["paper"])
    print(f"crash-kill 电签: {rerun}: {time.monotonic() - started:.1f}s, {dict(stats)}, {len(signed)} acknowledged"
          f" signed, {len(signatures)} signatures, {len(host_has)} at the host")
    assert not problems, "\n  ".join([rerun, *problems[:20]])
    assert signed, f"{rerun}: no signed sale was acknowledged: {dict(stats)}"
