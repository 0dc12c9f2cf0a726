"""What a scenario checks: its `expect` steps, and the invariants every run ends with.

Invariants (RELIABILITY.md §4 and §7, "checks after every fault"):
- host net effect per transaction is 0 or the sale amount, never more — and once nothing is owed
  (no reversal unresolved, no advice pending) it agrees with the journal: APPROVED = the amount,
  anything else = 0;
- the open batch reconciles: the terminal's totals (terminal.host.settlement.batch_totals) plus what is
  still owed equal the host's; every settled batch's archive equals the host's books for it;
- the journal passes SQLite's integrity_check; the simulator hit no internal error.
Journal counts by state and the reversal and advice queues are reported alongside.
"""

from __future__ import annotations

import json
import sqlite3
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from drivers.acquirer.spec import BatchTotals
from drivers.record import as_dict, field_names
from sim.scenario.rig import Rig
from terminal.app import load_terminal_profile
from terminal.checkout.flow import Sale
from terminal.errors import JournalError
from terminal.host.settlement import SettlementResult, batch_totals
from terminal.journal import Journal
from terminal.money import format_amount, parse_amount

__all__ = ["Context", "check", "invariant_failures", "invariants", "totals_dict"]

_SALE_CHECKS = {"outcome", "response_code", "journal_state", "reversal", "reversal_attempts", "host_net", "printed",
                "qr_status", "wallet_net"}
_OWED_STATES = {"SENT", "TIMEOUT", "OFFLINE"}


@dataclass
class Context:
    """What the runner knows besides the rig: the scenario's sales and the last action's facts."""

    rig: Rig
    sales: dict[str, Sale] = field(default_factory=dict)  # "sale-1" -> the Sale its till worked on
    last_sale: str | None = None
    refusal: str | None = None  # why the terminal refused the previous action, if it did
    settlement: SettlementResult | None = None
    shown_from: int = 0  # `shown` looks at display lines from here (the previous expect) on


def _money(text: str) -> int:
    return 0 if text.strip() in ("0", "0.00") else parse_amount(text, max_minor=10**14)


def totals_dict(totals: BatchTotals) -> dict[str, Any]:
    return {n: format_amount(v) if n.endswith("_amount") else v
            for n in field_names(totals) if (v := getattr(totals, n)) is not None}


class _Books:
    """Every transaction of the session: the live journal and the archives of settled batches."""

    def __init__(self, rig: Rig, journal: Journal) -> None:
        self.rig, self.journal = rig, journal
        self.terminal_id = str(rig.on().terminal["terminal_id"]) if rig.till else _terminal_id(rig)
        # The batch archives only (not their -qr.json or -signatures.json companions).
        self.archives = sorted((rig.var_dir / "batches").glob("batch-[0-9][0-9][0-9][0-9][0-9][0-9].json"))
        rows: dict[str, dict[str, Any]] = {}
        for path in self.archives:
            rows.update({r["txn_id"]: r for r in json.loads(path.read_text(encoding="utf-8"))["transactions"]})
        for batch in range(1, journal.current_batch() + 1):
            rows.update({r.txn_id: as_dict(r) for r in journal.batch_records(batch)})
        self.rows = dict(sorted(rows.items(), key=lambda kv: (kv[1]["created_at"], kv[1]["stan"])))

    def net(self, txn_id: str) -> int:
        row = self.rows.get(txn_id)
        if row is None:
            return 0
        date = datetime.fromisoformat(row["created_at"]).strftime("%m%d")
        return self.rig.host.net_effect(self.terminal_id, f"{row['stan']:06d}", date)


def _terminal_id(rig: Rig) -> str:
    return str(load_terminal_profile(rig.scenario.profile)["terminal_id"])


def _journal(rig: Rig) -> tuple[Journal, bool]:
    """The running till's journal, or (power off) the file opened just to read it."""
    if rig.till is not None:
        return rig.till.journal, False
    return Journal(rig.var_dir / "journal.sqlite3"), True


# -- expect ------------------------------------------------------------------------------------------
def check(expect: Mapping[str, Any], ctx: Context) -> list[str]:
    """The failed checks of one `expect` step, in words (empty: all held)."""
    rig = ctx.rig
    failures: list[str] = []

    def compare(key: str, want: Any, got: Any) -> None:
        if want != got:
            failures.append(f"{key}: expected {want!r}, got {got!r}")

    if "state" in expect:
        compare("state", str(expect["state"]).upper(), rig.till.flow.state.name if rig.till else "OFF")
    label = expect.get("sale", ctx.last_sale)
    sale = ctx.sales.get(label) if label else None
    if sale is None and _SALE_CHECKS & set(expect):
        failures.append("no sale has run yet to check")
    if "refused" in expect and (ctx.refusal is None or expect["refused"] not in ctx.refusal):
        failures.append(f"refused: expected a refusal saying {expect['refused']!r}, got {ctx.refusal!r}")
    if "shown" in expect:
        failures += _check_shown(expect["shown"], rig.shown[ctx.shown_from:])
    if "not_shown" in expect and (hits := [line for line in rig.shown[ctx.shown_from:] if expect["not_shown"] in line]):
        failures.append(f"not_shown: displayed since the last expect: {hits!r}")
    if "late_approvals" in expect:
        compare("late_approvals", expect["late_approvals"], len(rig.host.late_approvals))
    if "pages" in expect or "reprint_pages" in expect:
        pages = [p for printer in rig.printers for p in printer.pages]
        if "pages" in expect:
            compare("pages", expect["pages"], len(pages))
        if "reprint_pages" in expect:
            compare("reprint_pages", expect["reprint_pages"], sum("REPRINT" in p.text for p in pages))
    if "settlement" in expect:
        failures += _check_settlement(expect["settlement"], ctx.settlement)
    if expect.get("invariants"):
        failures += invariant_failures(invariants(rig))
    journal, opened = _journal(rig)
    try:
        if sale is not None:
            failures += _check_sale(expect, sale, _Books(rig, journal), label or "")
        _check_journal(expect, journal, compare)
        if "advices_forwarded" in expect:
            forwarded = advices_forwarded(rig, _Books(rig, journal))
            compare("advices_forwarded", list(expect["advices_forwarded"]), forwarded)
    finally:
        if opened:
            journal.close()
    return failures


def _check_shown(want: str, lines: list[str]) -> list[str]:
    """`shown = "TEXT"`: some line displayed since the previous expect contains it; `shown = ""`:
    nothing at all was displayed since then."""
    if want == "":
        return [] if not lines else [f"shown: expected nothing displayed since the last expect, got {lines!r}"]
    if any(want in line for line in lines):
        return []
    return [f"shown: nothing displayed since the last expect says {want!r} (displayed: {lines!r})"]


def advices_forwarded(rig: Rig, books: _Books) -> list[str]:
    """The stored offline sales the host received as advices (0220; a repeat 0221 once), in the
    order it got them, named by sale label ("stan-000004" for a transaction no sale step made)."""
    by_stan = {f"{row['stan']:06d}": txn_id for txn_id, row in books.rows.items()}
    out: list[str] = []
    for mti, stan in rig.host.arrivals:
        if mti not in ("0220", "0221"):
            continue
        txn_id = by_stan.get(stan)
        name = rig.txn_labels.get(txn_id, f"stan-{stan}") if txn_id else f"stan-{stan}"
        if name not in out:
            out.append(name)
    return out


def _check_sale(expect: Mapping[str, Any], sale: Sale, books: _Books, label: str) -> list[str]:
    failures: list[str] = []

    def compare(key: str, want: Any, got: Any) -> None:
        if want != got:
            failures.append(f"{key} of {label}: expected {want!r}, got {got!r}")

    if "outcome" in expect:
        compare("outcome", expect["outcome"].upper(), (sale.outcome or "none").upper())
    if "response_code" in expect:
        compare("response_code", expect["response_code"], sale.response_code or "none")
    if "journal_state" in expect:
        row = books.rows.get(sale.txn_id)
        record = books.journal.get(sale.txn_id) if row is None else None  # a QR row is in no card books
        compare("journal_state", expect["journal_state"].upper(),
                row["state"] if row else record.state if record else "NONE")
    if "reversal" in expect or "reversal_attempts" in expect:
        try:
            state, _, attempts = books.journal.reversal_info(sale.txn_id)
        except JournalError:
            state, attempts = "NONE", 0
        if "reversal" in expect:
            compare("reversal", expect["reversal"].upper(), state)
        if "reversal_attempts" in expect:
            compare("reversal_attempts", expect["reversal_attempts"], attempts)
    if "qr_status" in expect:
        order = books.journal.qr_order(sale.txn_id)
        compare("qr_status", expect["qr_status"].upper(), order.status if order else "NONE")
    if "wallet_net" in expect:
        order = books.journal.qr_order(sale.txn_id)
        got = _wallet_net(books.rig, order.order_no) if order else 0
        compare("wallet_net", format_amount(_money(expect["wallet_net"])), format_amount(got))
    if "host_net" in expect:
        txns = [t for t, lbl in books.rig.txn_labels.items() if lbl == label] or [sale.txn_id]
        compare("host_net", format_amount(_money(expect["host_net"])), format_amount(sum(books.net(t) for t in txns)))
    if "printed" in expect:
        compare("printed", list(expect["printed"]),
                [c.copy.value + ("/reprint" if c.reprint else "") for c in sale.printed])
    return failures


def _check_journal(expect: Mapping[str, Any], journal: Journal, compare: Any) -> None:
    if "journal" in expect:
        counts = journal.count_by_state()
        compare("journal", {k.upper(): n for k, n in expect["journal"].items()},
                {k.upper(): counts.get(k.upper(), 0) for k in expect["journal"]})
    if "pending_reversals" in expect:
        compare("pending_reversals", expect["pending_reversals"], len(journal.pending_reversals()))
    if "unresolved_reversals" in expect:
        compare("unresolved_reversals", expect["unresolved_reversals"], len(journal.unresolved_reversals()))
    if "pending_advices" in expect:
        compare("pending_advices", expect["pending_advices"], len(journal.pending_advices()))
    if "exceptions" in expect:
        compare("exceptions", list(expect["exceptions"]), [str(r["kind"]) for r in journal.exception_report()])
    if "batch" in expect:
        compare("batch", expect["batch"], journal.current_batch())
    if "qr_unresolved" in expect:
        compare("qr_unresolved", expect["qr_unresolved"], len(journal.qr_unresolved()))


def _check_settlement(want: Mapping[str, Any], got: SettlementResult | None) -> list[str]:
    if got is None:
        return ["settlement: no settlement has run"]
    actual = {"balanced": got.balanced, "uploaded": got.uploaded, "sales_count": got.totals.sales_count,
              "sales_amount": format_amount(got.totals.sales_amount)}
    wanted = {k: format_amount(_money(v)) if k == "sales_amount" else v for k, v in want.items()}
    return [f"settlement {k}: expected {v!r}, got {actual[k]!r} ({got.detail})"
            for k, v in wanted.items() if actual[k] != v]


# -- invariants ----------------------------------------------------------------------------------------
def invariants(rig: Rig) -> dict[str, Any]:
    journal, opened = _journal(rig)
    try:
        return _invariants(rig, journal)
    finally:
        if opened:
            journal.close()


def _invariants(rig: Rig, journal: Journal) -> dict[str, Any]:
    books = _Books(rig, journal)
    owed = set(journal.unresolved_reversals()) | set(journal.pending_advices())
    per_txn, open_owed = [], BatchTotals()
    current = journal.current_batch()
    for txn_id, row in books.rows.items():
        net, amount, state = books.net(txn_id), int(row["amount_minor"]), str(row["state"])
        pending = txn_id in owed or state in _OWED_STATES
        agrees = pending or net == (amount if state == "APPROVED" else 0)
        per_txn.append({"txn": rig.txn_labels.get(txn_id, f"stan-{row['stan']:06d}"), "stan": f"{row['stan']:06d}",
                        "amount": format_amount(amount), "journal": state, "host": format_amount(net),
                        "owed": pending, "ok": net in (0, amount) and agrees})
        if pending and net and row["batch"] == current:
            open_owed = open_owed.plus(str(row["kind"]), net)
    terminal = batch_totals(journal.batch_records(current))
    host = rig.host.batch_totals(books.terminal_id, current)
    # The host still counts what the terminal is owed back (a reversal not yet through).
    expected_host = BatchTotals(**{n: getattr(terminal, n) + getattr(open_owed, n) for n in field_names(terminal)})
    batch = {"batch": current, "terminal": totals_dict(terminal), "owed": totals_dict(open_owed),
             "host": totals_dict(host), "ok": expected_host == host}
    settled = []
    for path in books.archives:
        doc = json.loads(path.read_text(encoding="utf-8"))
        archived = BatchTotals(**doc["totals"])
        host_books = rig.host.batch_totals(books.terminal_id, int(doc["batch"]))
        settled.append({"batch": int(doc["batch"]), "archive": totals_dict(archived),
                        "host": totals_dict(host_books), "ok": archived == host_books})
    integrity = _integrity(rig)
    wallet = _wallet_books(rig, journal)
    result: dict[str, Any] = {
        "host_net": per_txn,
        "wallet_net": wallet,
        "journal_counts": dict(sorted(journal.count_by_state().items())),
        "open_batch": batch,
        "settled_batches": settled,
        "pending_reversals": len(journal.pending_reversals()),
        "unresolved_reversals": len(journal.unresolved_reversals()),
        "pending_advices": len(journal.pending_advices()),
        "journal_integrity": integrity,
        "host_internal_errors": len(rig.host.internal_errors),
    }
    result["ok"] = (all(t["ok"] for t in per_txn) and all(w["ok"] for w in wallet) and batch["ok"]
                    and all(s["ok"] for s in settled)
                    and integrity == "ok" and not rig.host.internal_errors)
    return result


def _wallet_net(rig: Rig, order_no: str) -> int:
    """What the wallet kept of one payment order: paid less refunded (0 when never paid)."""
    order = rig.wallet.gateway.ledger.get(order_no)
    return 0 if order is None or not order.paid else order.amount_fen - order.refunded_fen


def _wallet_books(rig: Rig, journal: Journal) -> list[dict[str, Any]]:
    """The wallet's net effect per QR payment order against the journal: an APPROVED payment
    nets its amount less the credits approved against it; anything else nets 0; an order the
    wallet has not decided yet (SENT) may net either, never more."""
    payments: dict[str, dict[str, Any]] = {}
    credits: dict[str, int] = {}
    rows = [(r.kind, r.state, r.amount_minor, o.order_no, o.paid_order_no) for r, o in journal.qr_rows()]
    for path in sorted((rig.var_dir / "batches").glob("batch-*-qr.json")):
        for o in json.loads(path.read_text(encoding="utf-8"))["orders"]:
            rows.append((o["kind"], o["state"], int(o["amount_minor"]), o["order_no"], o.get("paid_order_no", "")))
    for kind, state, amount, order_no, paid_order_no in rows:
        if kind == "sale":
            payments[order_no] = {"state": state, "amount": amount}
        elif state == "APPROVED":
            credits[paid_order_no] = credits.get(paid_order_no, 0) + amount
    out = []
    for order_no, row in payments.items():
        net, amount, state = _wallet_net(rig, order_no), row["amount"], row["state"]
        expected = amount - credits.get(order_no, 0) if state == "APPROVED" else 0
        ok = net in (0, amount) if state == "SENT" else net == expected
        out.append({"order": order_no, "amount": format_amount(amount), "journal": state,
                    "wallet": format_amount(net), "expected": format_amount(expected), "ok": ok})
    return out


def _integrity(rig: Rig) -> str:
    db = sqlite3.connect(str(rig.var_dir / "journal.sqlite3"))
    try:
        return "; ".join(str(r[0]) for r in db.execute("PRAGMA integrity_check"))
    finally:
        db.close()


def invariant_failures(result: Mapping[str, Any]) -> list[str]:
    """The broken invariants of `invariants()`, in words."""
    out = [f"invariant: {t['txn']} (STAN {t['stan']}, {t['amount']}) nets {t['host']} at the host, journal "
           f"says {t['journal']}" for t in result["host_net"] if not t["ok"]]
    out += [f"invariant: QR order {w['order']} ({w['amount']}) nets {w['wallet']} at the wallet, the journal "
            f"says {w['journal']} (expected {w['expected']})" for w in result.get("wallet_net", []) if not w["ok"]]
    batch = result["open_batch"]
    if not batch["ok"]:
        out.append(f"invariant: open batch {batch['batch']} does not reconcile: terminal {batch['terminal']} "
                   f"+ owed {batch['owed']} != host {batch['host']}")
    out += [f"invariant: settled batch {s['batch']} archive {s['archive']} != host {s['host']}"
            for s in result["settled_batches"] if not s["ok"]]
    if result["journal_integrity"] != "ok":
        out.append(f"invariant: journal integrity_check says {result['journal_integrity']}")
    if result["host_internal_errors"]:
        out.append(f"invariant: the host simulator hit {result['host_internal_errors']} internal error(s)")
    return out
