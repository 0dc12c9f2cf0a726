"""`till scenario run FILE`: one seeded, replayable session across every device and the network.

A scenario (docs/scenarios.md, catalogue in sim/scenarios/) is a list of steps — sales with
any test card, card actions, host and printer faults, virtual time, power loss at a named point,
operator actions — and `expect` checks. The runner plays them on a FakeClock against the emulated
card reader and printer and an acquirer simulator it starts once (terminal/scenario_rig.py), then
checks the invariants of terminal/scenario_checks.py. Exit 0: every expectation and invariant
held; 1: one failed (each is printed); 2: the file or its arguments are bad (one line).

Randomness comes only from `--seed` (or the file's seed) and only where a step asks for it, and
the report names transactions by sale label and STAN, never by their random txn_id: the same
file and seed print the same report.
"""

from __future__ import annotations

import json
import logging
import random
import re
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any, TextIO

from sim.scenario.checks import Context, check, invariant_failures, invariants, totals_dict
from sim.scenario.format import Scenario, ScenarioError, Step, load_scenario
from sim.scenario.rig import Refused, Rig, Stuck
from sim.scenario.scratch import release_scratch_dir, scratch_dir
from sim.wiring import EmulatedTill
from terminal.checkout.flow import Sale
from terminal.checkout.table import CheckoutState
from terminal.errors import InputError
from terminal.money import format_amount
from terminal.receipts.layout import Copy
from terminal.security.access import Approval

__all__ = ["ScenarioError", "ScenarioRunner", "run_scenario"]
# A scan's bytes leave the emulated scanner at its baud, on virtual time: a scan step lets this
# much pass (a 30-character code at 9600 baud is ~35 ms) so the code reaches the terminal.
SCAN_LINE_S = 0.2
SIGNING_HOP_S, SIGNING_MAX_S = 0.25, 60.0  # a signature step lets time pass in these steps, at most this long

S = CheckoutState
_UUID = re.compile(r"[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}")
_LOST = "lost"  # rig.act's None: the power went during the action

SUPERVISOR = ("supervisor-1", "8888")  # the emulated terminal's test supervisor


def run_scenario(path: str | Path, *, seed: int | None = None, as_json: bool = False,
                 out: TextIO | None = None, err: TextIO | None = None) -> int:
    """The CLI entry. ScenarioError (exit 2) propagates for a bad file, before anything runs."""
    out, err = out or sys.stdout, err or sys.stderr
    scenario = load_scenario(path)
    if seed is not None and seed < 0:
        raise ScenarioError("--seed must be a non-negative integer")
    root = logging.getLogger()
    quiet = logging.NullHandler()  # the terminal's warnings are facts of the run, not output
    if not root.handlers:
        root.addHandler(quiet)
    try:
        report = ScenarioRunner(scenario, seed=scenario.seed if seed is None else seed).run()
    finally:
        root.removeHandler(quiet)
    if as_json:
        out.write(json.dumps(report, ensure_ascii=False) + "\n")
    else:
        _print_text(report, out)
    for failure in report["failures"]:
        err.write(f"till: scenario {scenario.name}: {failure}\n")
    return 0 if report["ok"] else 1


class ScenarioRunner:
    def __init__(self, scenario: Scenario, *, seed: int) -> None:
        self.scenario, self.seed = scenario, seed
        self.random = random.Random(seed)
        self.failures: list[str] = []
        self._refused: tuple[int, str] | None = None  # a refusal the next step must expect

    def run(self) -> dict[str, Any]:
        tmp = scratch_dir()  # locked while the run lives; a killed run's is removed by the next
        try:
            rig = Rig(self.scenario, tmp / "var", seed=self.seed)
            try:
                rig.boot()
                rig.run()
                self.ctx = Context(rig=rig)
                boot = {"shown": list(rig.shown)}  # the first boot's display (the sign-on), before step 1
                steps = []
                for step in self.scenario.steps:
                    try:
                        steps.append(self._step(step))
                    except Stuck as exc:
                        self.failures.append(f"step {step.number}: {exc}; the run stops here")
                        break
                self._unclaimed_refusal()
                if (armed := rig.armed_cut()) is not None:
                    self.failures.append(f"the power loss armed at {armed} never happened")
                result = invariants(rig)
            finally:
                rig.close()
        finally:
            release_scratch_dir(tmp)
        self.failures += invariant_failures(result)
        return {"scenario": self.scenario.name, "description": self.scenario.description, "seed": self.seed,
                "boot": boot, "steps": steps, "invariants": result, "failures": self.failures, "ok": not self.failures}

    # -- one step ---------------------------------------------------------------------------------
    def _step(self, step: Step) -> dict[str, Any]:
        rig = self.ctx.rig
        if step.action != "expect" or "refused" not in step.arg:
            self._unclaimed_refusal()
        self._refused = None
        self._current = step
        cuts, shown = len(rig.cuts), len(rig.shown)
        outcome: dict[str, Any] = {"step": step.number, "action": step.action, "args": step.raw}
        if step.note:
            outcome["note"] = step.note
        result = getattr(self, f"_do_{step.action}")(step.arg)
        if isinstance(result, Refused):
            self._refused = (step.number, result.reason)
            self.ctx.refusal = outcome["refused"] = self._scrub(result.reason)
        elif step.action != "expect":
            self.ctx.refusal = None
        if isinstance(result, dict):
            outcome.update(result)
        if rig.till is not None and rig.till.flow.last_settlement is not None:
            self.ctx.settlement = rig.till.flow.last_settlement  # also one that ended as time passed
        if len(rig.cuts) > cuts:
            outcome["power_lost_at"] = rig.cuts[cuts:]
        outcome["state"] = rig.till.flow.state.name if rig.till else "OFF"
        outcome["time"] = rig.clock.wall().strftime("%H:%M:%S")
        outcome["shown"] = [self._scrub(line) for line in rig.shown[shown:]]  # what the display showed, in order
        return outcome

    def _unclaimed_refusal(self) -> None:
        if self._refused is not None:
            number, reason = self._refused
            self.failures.append(f"step {number}: the terminal refused ({self._scrub(reason)}) "
                                 f"and no expect.refused follows")
            self._refused = None

    def _scrub(self, text: str) -> str:
        labels = self.ctx.rig.txn_labels
        return _UUID.sub(lambda m: labels.get(m.group(0), "<txn>"), text)

    # -- actions ---------------------------------------------------------------------------------
    def _do_sale(self, arg: dict[str, Any]) -> dict[str, Any] | Refused:
        rig, ctx = self.ctx.rig, self.ctx
        spec = arg["amount"]
        amount = spec.minor if spec.minor is not None else self.random.randint(spec.low, spec.high)
        label = f"sale-{len(ctx.sales) + 1}"
        facts: dict[str, Any] = {"sale": label, "amount": format_amount(amount)}
        # As EmulatedTill.sale: reversals owed go out first, then the sale starts (or is refused).
        if rig.act(lambda t: t.flow.recover_if_needed()) is None:
            return facts
        cuts = len(rig.cuts)
        started = rig.act(lambda t: t.flow.begin_sale(amount, tender=arg["tender"]))
        if started is None and len(rig.cuts) == cuts:
            started = self._ended_at_once(amount)
        elif started is None and isinstance(rig.done_before_cut, Sale):
            started = rig.done_before_cut  # it started, then the power went (a merchant code on screen)
        if isinstance(started, Refused) or started is None:
            return started if isinstance(started, Refused) else facts
        ctx.sales[label], ctx.last_sale = started, label
        rig.sale_label, rig.sale = label, started  # nothing is journalled before a card is read
        if arg["card"] is not None:
            rig.act(lambda t: rig.card_reader().present(arg["card"], arg["mode"]))
        if arg["code"] and arg["tender"] == "qr":  # the customer shows the code at once
            rig.act(lambda t: rig.scanner().scan(arg["code"], "qr"))
            rig.advance(SCAN_LINE_S)
        elif arg["code"]:  # the customer pays the merchant-presented code from their phone
            rig.act(lambda t: self._pay_order(arg["code"]))
        rig.note_sale()
        return {**facts, **self._sale_facts(label)}

    def _pay_order(self, code: str) -> str:
        sale = self.ctx.rig.sale
        if sale is None or sale.qr_order is None or not sale.qr_order.code_url:
            raise InputError("no merchant-presented code is shown to pay")
        try:
            return str(self.ctx.rig.wallet_gateway().pay_order(sale.qr_order.order_no, code))
        except ValueError as exc:  # paid already, not a merchant order: the gateway says no
            raise InputError(f"the customer cannot pay it: {exc}") from None

    def _do_scan(self, arg: dict[str, Any]) -> dict[str, Any] | Refused | None:
        rig = self.ctx.rig
        result = rig.act(lambda t: rig.scanner().scan(arg["text"], arg["symbology"]))
        if isinstance(result, Refused):
            return result
        rig.advance(SCAN_LINE_S)
        return self._last_sale_facts()

    def _do_signature(self, arg: dict[str, Any]) -> dict[str, Any] | Refused | None:
        """The cardholder at the pad: a name written (its pen packets take their line time; then
        the pen is away long enough and the capture ends), or a key pressed."""
        from emulator.control import apply

        rig = self.ctx.rig

        def pad_line(till: EmulatedTill) -> str:
            pad = till.emulators.signature_pad
            if pad is None:
                raise InputError("this scenario's terminal has no emulated signature pad")
            reply = apply(pad, f"sign {arg['name']}" if "name" in arg else arg["key"])
            if not reply.startswith("ok"):
                raise InputError(f"the pad says {reply}")
            return reply

        result = rig.act(pad_line)
        if isinstance(result, Refused):
            return result
        for _ in range(int(SIGNING_MAX_S / SIGNING_HOP_S)):  # until the capture is over, at most a minute
            if rig.till is None or rig.till.flow.state is not CheckoutState.SIGNATURE_REQUIRED:
                break
            rig.advance(SIGNING_HOP_S)
        return {"pad": result, **self._last_sale_facts()}

    def _do_wallet(self, arg: dict[str, Any]) -> dict[str, Any] | Refused | None:
        rig, do = self.ctx.rig, arg["do"]
        if do == "pay-order":
            result = rig.act(lambda t: self._pay_order(arg["code"]))
            if isinstance(result, Refused):
                return result
            return {"paid": result, **self._last_sale_facts()}
        peer = rig.wallet
        if do == "normal":
            peer.clear_faults()
        else:
            peer.set_fault(do, count=arg["count"])
        rig.run()
        return {"wallet": peer.status(), **self._last_sale_facts()}

    def _ended_at_once(self, amount: int) -> Sale | None:
        """begin_sale returns the flow's sale, which is None when the sale already ended inside it
        (the card reader refused the read: a NAK storm, a silent reader). The journal's newest
        cancellation says which sale it was and why."""
        till = self.ctx.rig.on()
        cancelled = till.journal.cancellations()
        known = {sale.txn_id for sale in self.ctx.sales.values()}
        if not cancelled or str(cancelled[-1]["txn_id"]) in known:
            return None  # no new cancellation: not a sale that ended at once
        row = cancelled[-1]
        reason = str(row["reason"])
        return Sale(txn_id=str(row["txn_id"]), amount_minor=amount, outcome="CANCELLED", reason=reason,
                    cancel_reason=reason)

    def _sale_facts(self, label: str) -> dict[str, Any]:
        sale, rig = self.ctx.sales[label], self.ctx.rig
        record = sale.record
        journal_state = None
        if rig.till is not None and record is not None:
            row = rig.till.journal.get(sale.txn_id)
            journal_state = row.state if row else None
        qr = rig.till.journal.qr_order(sale.txn_id) if rig.till is not None and sale.qr_order else None
        extra = {"qr_status": qr.status} if qr is not None else {}
        return {**extra, "outcome": sale.outcome, "response_code": sale.response_code,
                "reason": self._scrub(sale.reason) if sale.reason else None,
                "stan": f"{record.stan:06d}" if record else None, "journal_state": journal_state,
                "printed": [c.copy.value + ("/reprint" if c.reprint else "") for c in sale.printed]}

    def _do_card(self, arg: dict[str, Any]) -> dict[str, Any] | Refused | None:
        rig = self.ctx.rig
        do = arg["do"]
        actions: dict[str, Callable[[EmulatedTill], Any]] = {
            "present": lambda t: rig.card_reader().present(arg["card"], arg["mode"]),
            "remove": lambda t: rig.card_reader().remove(),
            "pin": lambda t: rig.card_reader().enter_pin(arg["pin"]),
            "cancel-pin": lambda t: rig.card_reader().cancel_pin(),
            "link": lambda t: self._card_link(arg["fault"], arg["frames"]),
        }
        result = rig.act(actions[do])
        if isinstance(result, Refused):
            return result
        facts: dict[str, Any] = {"removed": bool(result)} if do == "remove" else {}
        if do == "link":
            facts = {"reader": result}
        return {**facts, **self._last_sale_facts()}

    def _card_link(self, fault: str, frames: int | None) -> str:
        reader = self.ctx.rig.card_reader()
        if fault == "link-ok":
            reader.clear_faults()
        else:
            reader.set_fault(fault, frames=frames)
        return str(reader.status())

    def _last_sale_facts(self) -> dict[str, Any]:
        label = self.ctx.last_sale
        return {"sale": label, **self._sale_facts(label)} if label else {}

    def _do_host(self, arg: dict[str, Any]) -> dict[str, Any]:
        rig = self.ctx.rig
        host, do, facts = rig.host, arg["do"], {}
        if do == "silent":
            host.hold_responses = True
        elif do == "normal":
            host.clear_faults()
            host.virtual_latency = 0.0  # answers already on their way still arrive when due
            if not rig.reachable:
                rig.set_reachable(True)
        elif do == "answer-late":
            host.answer_late(1)
        elif do == "answer_late":
            host.answer_late(arg["count"])
        elif do == "release-late":
            facts["released"] = host.release_late()
        elif do == "drop-connection":
            facts["dropped"] = host.drop_connections()
        elif do == "drop-on-next-request":
            host.drop_connection_on_next_request(processed=arg.get("processed", True))
        elif do == "out-of-balance-once":
            host.report_out_of_balance_once()
        elif do == "drop_responses":
            host.drop_responses(arg["count"])
        elif do == "decline_next":
            host.decline_next(arg["code"], arg["count"])
        elif do == "upload_fail":
            host.fail_uploads(arg["fault"], arg["count"])  # the next 0820s (电签 uploads)
        elif do == "latency":
            host.virtual_latency = arg["seconds"]
        else:  # unreachable / reachable
            rig.set_reachable(do == "reachable")
        rig.run()
        return {**facts, **self._last_sale_facts()}

    def _do_device(self, arg: dict[str, Any]) -> dict[str, Any] | Refused | None:
        from emulator.control import apply

        def control(till: EmulatedTill) -> str:
            # The rig plugs the printer in itself (it outlives the terminal's power cycles).
            peer = self.ctx.rig.printer() if arg["slot"] == "printer" else till.emulators.devices.get(arg["slot"])
            if peer is None:
                return f"error: {arg['slot']} is not emulated in this terminal"
            return apply(peer, arg["control"])

        reply = self.ctx.rig.act(control)
        if isinstance(reply, Refused) or reply is None:
            return reply
        return {"reply": reply, **self._last_sale_facts()}

    def _do_printer(self, arg: dict[str, Any]) -> dict[str, Any]:
        rig = self.ctx.rig
        printer, do = rig.printer(), arg["do"]
        if do == "paper-out-at":
            rig.arm_paper_out(arg["copy"])
        elif do in ("paper-out", "paper-near-end", "paper-loaded"):
            printer.set_paper({"paper-out": "out", "paper-near-end": "near-end", "paper-loaded": "ok"}[do])
        elif do == "cover-open":
            printer.open_cover()
        elif do == "cover-closed":
            printer.close_cover()
        elif do in ("cutter-jam", "cutter-error"):  # at the next cut, or now
            printer.set_fault("cutter", next_cut=do == "cutter-jam")
        elif do in ("offline", "online"):
            printer.set_offline(do == "offline")
        elif do in ("disconnect", "reconnect"):
            printer.disconnect(do == "disconnect")
        else:  # ok: fresh paper, cover shut, every fault gone
            printer.clear_faults()
        rig.run()
        return {"paper": str(printer.paper), "cover": "open" if printer.cover_open else "closed",
                "printer": printer.describe()}

    def _do_advance(self, seconds: float) -> dict[str, Any]:
        self.ctx.rig.advance(seconds)
        return self._last_sale_facts()

    def _do_power(self, arg: dict[str, Any]) -> dict[str, Any]:
        rig, do = self.ctx.rig, arg["do"]
        if do == "loss-at":
            rig.arm_cut(arg["at"])
            return {"armed": arg["at"]}
        if do == "loss":
            rig.power_cycle("loss")
        elif do == "off":
            rig.power_off()
        else:
            rig.boot()
        rig.run()
        return {}

    def _do_operator(self, arg: dict[str, Any]) -> dict[str, Any] | Refused | None:
        rig, do = self.ctx.rig, arg["do"]
        if do == "settle":
            return self._settle()
        if do == "reprint":
            return self._reprint(Copy(arg["copy"]))
        if do in ("void", "refund"):
            return self._credit(do, arg)
        actions: dict[str, Callable[[EmulatedTill], Any]] = {
            "resume-printing": lambda t: t.flow.resume_printing_now(),
            "cancel": lambda t: t.flow.cancel_sale(actor="operator"),
            "confirm-signature": lambda t: t.flow.confirm_signature(actor="operator"),
            "abandon-receipts": lambda t: t.flow.abandon_receipts(approval=_supervisor(t, "abandon_receipts")),
            "recover": lambda t: t.flow.recover_if_needed(),
        }
        result = rig.act(actions[do])
        if isinstance(result, Refused):
            return result
        facts = {"resumed": result} if do == "resume-printing" else {"started": result} if do == "recover" else {}
        return {**facts, **self._last_sale_facts()}

    def _credit(self, kind: str, arg: dict[str, Any]) -> dict[str, Any] | Refused | None:
        """A supervisor's void or refund of an earlier sale (its label); the credit is a sale of
        its own (`sale-N`) for the checks that follow."""
        rig, ctx = self.ctx.rig, self.ctx
        original = ctx.sales.get(arg["sale"])
        if original is None:
            return Refused(f"no sale {arg['sale']!r} to {kind}")
        spec = arg["amount"]
        amount = original.amount_minor if spec is None else spec.minor if spec.minor is not None else spec.low
        label = f"sale-{len(ctx.sales) + 1}"
        cuts = len(rig.cuts)
        credit = rig.act(lambda t: t.flow.begin_credit(
            kind, original.txn_id, amount, approval=t.approve(kind, operator_id=SUPERVISOR[0], pin=SUPERVISOR[1],
                                                              reason="scenario step", txn_id=original.txn_id)))
        if credit is None and len(rig.cuts) > cuts and isinstance(rig.done_before_cut, Sale):
            credit = rig.done_before_cut  # it left for the wallet, then the power went
        if isinstance(credit, Refused) or credit is None:
            return credit
        ctx.sales[label], ctx.last_sale = credit, label
        rig.sale_label, rig.sale = label, credit
        rig.note_sale()
        return {"sale": label, "amount": format_amount(amount), **self._sale_facts(label)}

    def _settle(self) -> dict[str, Any] | Refused:
        rig = self.ctx.rig
        before = rig.on().flow.last_settlement
        # As EmulatedTill.settle: owed reversals first, then stored offline sales, then the batch.
        rig.act(lambda t: t.flow.recover_if_needed())
        rig.act(lambda t: t.flow.forward() if t.journal.pending_advices() and t.flow.state is S.IDLE else None)
        started = rig.act(lambda t: t.flow.start_settlement(approval=_supervisor(t, "settle")))
        if isinstance(started, Refused):
            return started
        result = rig.till.flow.last_settlement if rig.till is not None else None
        if result is None or result is before:
            return {"settlement": None}
        return {"settlement": {"batch": result.batch, "balanced": result.balanced, "uploaded": result.uploaded,
                               "detail": result.detail, "totals": totals_dict(result.totals)}}

    def _reprint(self, copy: Copy) -> dict[str, Any] | Refused:
        # From the journal, so it works after a reboot.
        result = self.ctx.rig.act(lambda t: t.flow.reprint(copy, approval=_supervisor(t, "reprint")))
        if isinstance(result, Refused) or result is None:
            return result if isinstance(result, Refused) else {"from": "journal"}
        return {"from": "journal", "problems": list(result)}

    def _do_expect(self, arg: dict[str, Any]) -> dict[str, Any]:
        failures = check(arg, self.ctx)
        self.ctx.shown_from = len(self.ctx.rig.shown)
        failures = [self._scrub(f) for f in failures]
        self.failures += [f"step {self._current.number}: {f}" for f in failures]
        return {"ok": not failures, "failures": failures}


def _supervisor(till: EmulatedTill, operation: str) -> Approval:
    """Scenarios act as the emulated terminal's test supervisor (docs/access.md); audited as usual."""
    return till.approve(operation, operator_id=SUPERVISOR[0], pin=SUPERVISOR[1], reason="scenario step")


def _print_text(report: dict[str, Any], out: TextIO) -> None:
    out.write(f"scenario {report['scenario']} (seed {report['seed']})\n")
    out.writelines(f"      display: {line}\n" for line in report["boot"]["shown"])
    for step in report["steps"]:
        args = json.dumps(step["args"], ensure_ascii=False)
        facts = {k: v for k, v in step.items()
                 if k not in ("step", "action", "args", "note", "shown") and v not in (None, [])}
        if step["action"] == "expect":
            facts = {"ok": step["ok"]} if step["ok"] else {"FAILED": "; ".join(step["failures"])}
        shown = ", ".join(f"{k}={json.dumps(v, ensure_ascii=False)}" for k, v in facts.items())
        out.write(f"{step['step']:>3} {step['action']:<8} {args}\n      -> {shown}\n")
        out.writelines(f"      display: {line}\n" for line in step.get("shown", ()))
    inv = report["invariants"]
    out.write(f"journal: {inv['journal_counts']}  pending reversals: {inv['pending_reversals']}  "
              f"unresolved: {inv['unresolved_reversals']}  advices: {inv['pending_advices']}\n")
    for txn in inv["host_net"]:
        out.write(f"  {txn['txn']:<11} STAN {txn['stan']} {txn['amount']:>10}  journal {txn['journal']:<9} "
                  f"host {txn['host']:>10}  {'ok' if txn['ok'] else 'BROKEN'}\n")
    batch = inv["open_batch"]
    out.write(f"open batch {batch['batch']}: {'reconciles' if batch['ok'] else 'DOES NOT RECONCILE'}; "
              f"settled batches: {len(inv['settled_batches'])}; journal integrity: {inv['journal_integrity']}\n")
    out.write("ok\n" if report["ok"] else f"FAILED ({len(report['failures'])})\n")
