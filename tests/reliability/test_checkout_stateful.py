"""The checkout and the host as a Hypothesis state machine (RELIABILITY.md §4), on a FakeClock.

Rules are outside facts: a cashier, a cardholder, the clock, the printer, the network and the
power. After each rule the till runs until it is quiet — every request it sent has reached the
acquirer simulator and every answer the simulator sent has been read — so a small pure model
(`Model`, which never looks at the till) can say exactly where the checkout must be. The
invariants compare the till, its journal, the host's ledger and the var dir's bytes with that
model and with each other. The simulator outlives every power cycle: its ledger is the bank.
"""

from __future__ import annotations

import array
import fcntl
import os
import select
import shutil
import tempfile
import termios
import threading
import time
from collections.abc import Callable
from contextlib import ExitStack
from dataclasses import dataclass, field
from pathlib import Path

import pytest
from hypothesis import HealthCheck, settings
from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, invariant, precondition, rule

from drivers.acquirer.codec import AcquirerCodec
from drivers.acquirer.driver import AcquirerDriver
from drivers.acquirer.events import HostMessage
from drivers.events import DeviceFault, Role
from drivers.transport import attach_peer, detach_peer
from emulator.acquirer.simulator import AcquirerSimulator
from emulator.card_reader.cards import get_card
from emulator.printer.emulator import PrinterEmulator
from firmware_profiles import load_profile
from sim.wiring import EmulatedTill, build_emulated_till
from terminal.app import SETTLED_STATES
from terminal.checkout.table import LIMITS, CheckoutState
from terminal.clock import FakeClock
from terminal.errors import TerminalError

__all__: list[str] = []

S = CheckoutState
CARDS = ("approved", "declined", "approved-swipe", "insufficient-funds")
APPROVING = frozenset({"approved", "approved-swipe"})
FAULTS = ("hold", "drop answers", "answer late", "decline", "drop link on next request", "drop links", "stop holding",
          "clear")
QUIET_S = 5.0  # real seconds a message may take on loopback before the harness stops waiting for it


# -- the harness: a simulator and a host link that count, so the test knows when all is quiet -------

@dataclass
class Tally:
    sent: int = 0  # requests the tills wrote, over every boot
    received: int = 0  # answers the tills read
    lost: int = 0  # answers the host wrote on a link that was gone before they were read


class CountingDriver(AcquirerDriver):
    """The real link driver, counting what crosses it (a part given to build_till)."""

    def __init__(self, url: str, tally: Tally) -> None:
        super().__init__(url, connect_timeout=10.0)
        self.tally = tally

    def send(self, msg: HostMessage) -> DeviceFault | None:
        fault = super().send(msg)
        if fault is None:
            self.tally.sent += 1
        return fault

    def poll(self) -> list[HostMessage | DeviceFault]:
        events = super().poll()
        self.tally.received += sum(isinstance(e, HostMessage) for e in events)
        return events


class CountingHost(AcquirerSimulator):
    """The simulator, counting requests read and answers written (its public hooks)."""

    def __init__(self) -> None:
        super().__init__()
        self._cv = threading.Condition()
        self.seen = 0
        self.delivered = 0  # written on the loop thread; read after `barrier()`
        self.bytes_delivered = 0

    def respond(self, request: HostMessage) -> HostMessage | None:
        answer = super().respond(request)
        with self._cv:
            self.seen += 1
            self._cv.notify_all()
        return answer

    def note_delivery(self, request: HostMessage, answer: HostMessage) -> None:
        super().note_delivery(request, answer)
        self.delivered += 1
        self.bytes_delivered += len(AcquirerCodec(Role.DEVICE).send(answer))  # framing is stateless

    def wait_seen(self, count: int) -> bool:
        with self._cv:
            return self._cv.wait_for(lambda: self.seen >= count, QUIET_S)

    def barrier(self) -> int:
        """A call through the loop thread: what it was handling before is done (and written)."""
        return self.connection_count


# -- the model ------------------------------------------------------------------------------------

@dataclass
class Timer:
    name: str
    due: float


@dataclass
class Model:
    """Where the checkout must be, from the outside facts alone."""

    host_timeout: float
    card_wait: float
    reversal_wait: float
    reversal_attempts: int
    state: S = S.IDLE
    now: float = 0.0
    timer: Timer | None = None  # the flow's one armed wait
    sale: str | None = None  # txn_id of the sale in progress
    rows: dict[str, str] = field(default_factory=dict)  # txn_id -> journal state
    revs: dict[str, str] = field(default_factory=dict)  # txn_id -> reversal state
    queue: list[str] = field(default_factory=list)  # unresolved reversals, oldest first
    attempts: dict[str, int] = field(default_factory=dict)
    cancelled: set[str] = field(default_factory=set)
    owed_receipts: set[str] = field(default_factory=set)  # approved, receipts not printed whole yet
    incidents: list[tuple[str, str]] = field(default_factory=list)  # the exception report: (kind, txn_id)
    # What the running flow remembers; a power cut forgets it.
    current: str | None = None  # the reversal in hand
    given_up: set[str] = field(default_factory=set)  # escalated this round
    retry_at: float = 0.0  # when an idle till gives escalated reversals another round
    signed_on: bool = False
    sign_on_at: float = 0.0
    sign_ons: int = 0  # sign-on attempts: a late 0810 matches only the latest
    # The host's faults and the link.
    hold: bool = False
    drop_left: int = 0
    late_left: int = 0
    decline_left: int = 0
    drop_next: bool = False
    held: list[tuple[str, str, bool]] = field(default_factory=list)  # answers held back: (MTI, about, approved)
    conn: str = "none"  # "none"; "fresh": open, no request yet (the host cannot route to it); "tagged"
    paper_ok: bool = True
    cover_open: bool = False

    # -- time ---------------------------------------------------------------------------------
    def arm(self, name: str, seconds: float) -> None:
        self.timer = Timer(name, self.now + seconds)

    def advance(self, seconds: float, *, released: bool = False) -> None:
        timer = self.timer  # a step pops what is due before it handles what came in
        self.now += seconds
        if released:
            self.release()
        if timer is not None and timer.due <= self.now and self.timer is timer:
            self.timer = None
            route: dict[tuple[str, S], Callable[[], object]] = {
                ("card_wait", S.AWAITING_CARD): self.cancel, ("host", S.AUTHORIZING): self.lose_host,
                ("printer_check", S.PRINTER_PAUSED): self.resume, ("reversal", S.OUTCOME_UNKNOWN): self.reversal_due,
                ("sign_on", S.SIGNING_ON): self.sign_on_failed, ("housekeeping", S.IDLE): self.housekeeping,
            }
            route.get((timer.name, self.state), lambda: None)()

    # -- the host -------------------------------------------------------------------------------
    def request(self) -> str:
        """A request reaches the host: its answer comes "now", is "lost" or "held", or the link is "dropped"."""
        self.conn = "tagged"
        if self.drop_next:
            self.drop_next, self.conn = False, "none"
            return "dropped"
        if self.hold or self.drop_left:
            self.drop_left -= 0 if self.hold else 1
            return "lost"
        if self.late_left:
            self.late_left -= 1
            return "held"
        return "now"

    def release(self) -> None:
        held, self.held = self.held, []
        for mti, about, approved in held if self.conn == "tagged" else []:
            if mti == "0210" and self.state is S.AUTHORIZING and self.sale == about:
                self.answer(approved)
            elif mti == "0410" and self.state is S.OUTCOME_UNKNOWN and self.current == about:
                self.reversed(about)
            elif mti == "0810" and self.state is S.SIGNING_ON and str(self.sign_ons) == about:
                self.signed_on, self.timer = True, None
                self.idle()
            elif mti == "0210":  # a stray answer: logged, and the reversal stands
                self.incidents.append(("late_response", about))

    # -- power and idle -------------------------------------------------------------------------
    def boot(self) -> None:
        if self.state is S.AUTHORIZING:
            assert self.sale is not None
            self.owe(self.sale)  # every row still SENT gets its reversal
        self.idle(enter=False)
        self.timer, self.current, self.conn, self.retry_at = None, None, "fresh", 0.0
        self.signed_on, self.sign_on_at = False, 0.0
        if self.paper_ok and not self.cover_open:
            self.owed_receipts.clear()  # printed at boot, marked REPRINT (row 4 of the fault matrix)
        self.housekeeping()

    def idle(self, *, enter: bool = True) -> None:
        self.state, self.sale = S.IDLE, None
        if enter:  # entering IDLE (not the machine's first state) looks for work owed the host
            self.housekeeping()

    def housekeeping(self) -> None:
        if not self.signed_on and self.now >= self.sign_on_at:
            self.sign_on()
        elif any(self.revs[t] == "PENDING" for t in self.queue):
            self.recover()
        elif self.queue and self.now >= self.retry_at:
            self.retry_at = self.now + LIMITS.escalated_retry_s
            self.recover()
        else:
            self.arm("housekeeping", LIMITS.housekeeping_s)

    def sign_on(self) -> None:
        self.state, self.sign_ons = S.SIGNING_ON, self.sign_ons + 1
        self.arm("sign_on", self.host_timeout)
        fate = self.request()
        if fate == "now":
            self.signed_on, self.timer = True, None
            self.idle()
        elif fate == "held":
            self.held.append(("0810", str(self.sign_ons), True))

    def sign_on_failed(self) -> None:
        self.sign_on_at = self.now + LIMITS.sign_on_retry_s  # counted from the failure
        self.idle()

    # -- a sale ---------------------------------------------------------------------------------
    def begin(self, txn_id: str) -> None:
        self.state, self.sale = S.AWAITING_CARD, txn_id
        self.arm("card_wait", self.card_wait)

    def present(self, card: str) -> None:
        assert self.sale is not None
        self.state, self.rows[self.sale] = S.AUTHORIZING, "SENT"
        self.arm("host", self.host_timeout)
        approved = card in APPROVING and not self.decline_left
        self.decline_left = max(0, self.decline_left - 1)
        fate = self.request()
        if fate == "now":
            self.answer(approved)
        elif fate == "held":
            self.held.append(("0210", self.sale, approved))
        elif fate == "dropped":
            self.lose_host()  # the answer went with the link

    def answer(self, approved: bool) -> None:
        assert self.sale is not None
        self.rows[self.sale], self.timer = "APPROVED" if approved else "DECLINED", None
        if approved:
            self.owed_receipts.add(self.sale)
        if self.paper_ok and not self.cover_open:
            self.resume()
        else:
            self.state = S.PRINTER_PAUSED
            self.arm("printer_check", LIMITS.printer_recheck_s)

    def resume(self) -> bool:
        if not self.paper_ok or self.cover_open:
            self.arm("printer_check", LIMITS.printer_recheck_s)
            return False
        self.owed_receipts.discard(self.sale or "")
        self.idle()
        return True

    def cancel(self) -> None:
        assert self.sale is not None
        self.cancelled.add(self.sale)
        self.timer = None
        self.idle()

    # -- outcome unknown and reversals ----------------------------------------------------------
    def lose_host(self) -> None:
        assert self.sale is not None
        self.owe(self.sale)
        self.recover()

    def owe(self, txn_id: str) -> None:
        self.rows[txn_id], self.revs[txn_id], self.attempts[txn_id] = "TIMEOUT", "PENDING", 0
        self.queue.append(txn_id)

    def recover(self) -> None:
        self.state = S.OUTCOME_UNKNOWN
        self.given_up.clear()
        self.next_reversal()

    def next_reversal(self) -> None:
        todo = [t for t in self.queue if t not in self.given_up]
        self.current = todo[0] if todo else None
        if self.current is None:
            self.timer = None
            self.idle()
        else:
            self.send_reversal()

    def send_reversal(self) -> None:
        txn_id = self.current
        assert txn_id is not None
        self.attempts[txn_id] += 1
        self.arm("reversal", self.reversal_wait * 2 ** (self.attempts[txn_id] - 1))
        fate = self.request()
        if fate == "now":
            self.reversed(txn_id)
        elif fate == "held":
            self.held.append(("0410", txn_id, True))
        # lost or dropped: the deadline repeats it (as 0401)

    def reversal_due(self) -> None:
        assert self.current is not None
        if self.attempts[self.current] < self.reversal_attempts:
            self.send_reversal()
            return
        self.given_up.add(self.current)
        self.revs[self.current] = "FAILED"
        self.incidents.append(("reversal_failed", self.current))
        self.retry_at = self.now + LIMITS.escalated_retry_s
        self.next_reversal()

    def reversed(self, txn_id: str) -> None:
        self.queue.remove(txn_id)
        self.revs[txn_id], self.rows[txn_id] = "DONE", "REVERSED"
        self.next_reversal()


# -- the machine ----------------------------------------------------------------------------------

class CheckoutMachine(RuleBasedStateMachine):
    def __init__(self) -> None:
        super().__init__()
        self.dir = Path(tempfile.mkdtemp(prefix="opentill-stateful-"))
        self.tally = Tally()
        self.patches = ExitStack()
        self.host = CountingHost()
        self.host.start()
        self.printer = PrinterEmulator(load_profile("printer", "cn-80mm"))  # its roll outlives a reboot
        self.printer_url = attach_peer("printer", self.printer)
        # One clock for every boot, as tests/system/test_reversal.py restarts: the dead till's
        # timers stay on it and must never fire into the next one (deadline tokens are unique).
        self.clock = FakeClock()
        self.till: EmulatedTill | None = None
        try:
            self.boot()
        except BaseException:
            self.teardown()
            raise
        host, limits = self.t.terminal["host"], self.t.terminal["limits"]
        self.model = Model(
            host_timeout=float(host["timeout_s"]), card_wait=float(limits["card_wait_timeout_s"]),
            reversal_wait=float(host.get("reversal_wait_s", 30.0)),
            reversal_attempts=int(host.get("reversal_max_attempts", 3)),
        )
        self.model.boot()
        self.terminal_id = str(self.t.terminal["terminal_id"])
        secrets = [(get_card(c).pan, get_card(c).track2) for c in CARDS]
        self.canaries = {s.encode() for pan, t2 in secrets for s in (pan, t2, t2.replace("=", "D"))}
        self.canaries |= {bytes.fromhex(pan) for pan, _ in secrets if len(pan) % 2 == 0}  # packed BCD

    @property
    def t(self) -> EmulatedTill:
        assert self.till is not None
        return self.till

    @property
    def state(self) -> S:
        return self.t.flow.state

    def boot(self) -> None:
        # The boot waits in real seconds for a host that may be silent here; `settle` does it instead.
        self.till = build_emulated_till(clock=self.clock, var_dir=self.dir, device_urls={"printer": self.printer_url},
                                        host=CountingDriver(self.host.url, self.tally), boot_io_wait=0.0)
        self.settle()

    def wait_unread(self, count: int) -> None:
        """Until `count` bytes wait unread on the till's host link (they may come in several segments)."""
        fd, unread = self.t.host.fileno(), array.array("i", [0])
        give_up = time.monotonic() + QUIET_S
        while fd is not None and count and time.monotonic() < give_up:
            select.select([fd], [], [], QUIET_S)
            fcntl.ioctl(fd, termios.FIONREAD, unread)
            if unread[0] >= count:
                return
        assert not count or fd is None, f"{count} bytes the host wrote never arrived"

    def drain(self) -> bool:
        for steps in range(1000):
            if not self.t.runtime.step():
                return steps > 0
        raise AssertionError("the runtime never went quiet")

    def settle(self) -> None:
        """Run the till until nothing more happens without an outside fact."""
        tally = self.tally
        for _ in range(100):
            busy = self.drain()
            assert self.host.wait_seen(tally.sent), f"the host read {self.host.seen} of {tally.sent} requests"
            open_links, fd = self.host.barrier(), self.t.host.fileno()
            if not open_links and fd is not None:  # the host hung up: the till sees it before anything else
                assert select.select([fd], [], [], QUIET_S)[0], "the host's hang-up never reached the till"
                busy = self.drain() or busy
            while self.host.delivered > tally.received + tally.lost:
                fd = self.t.host.fileno()
                if fd is None or not select.select([fd], [], [], QUIET_S)[0]:
                    tally.lost = self.host.delivered - tally.received  # written on a link that closed meanwhile
                    break
                busy = self.drain() or busy
            if not busy and not self.drain():
                return
        raise AssertionError("the till never settled")

    # -- a cashier and a cardholder -------------------------------------------------------------
    @precondition(lambda self: self.model.state is S.IDLE)
    @rule(amount=st.integers(1, 99_999), card=st.sampled_from(CARDS), fault=st.none() | st.sampled_from(FAULTS[:5]))
    def sale_with_card(self, amount: int, card: str, fault: str | None) -> None:
        if fault is not None:  # a fault for this very sale: the paths worth exploring come sooner
            self.set_fault(fault, 1, "05")
        self.start(amount, card)

    @precondition(lambda self: self.model.state is S.IDLE)
    @rule(amount=st.integers(1, 99_999))
    def sale_card_not_presented(self, amount: int) -> None:
        self.start(amount, None)

    def start(self, amount: int, card: str | None) -> None:
        # As EmulatedTill.sale: reversals owed go out first; a sale starts only once none is pending.
        owed = bool(self.model.queue)
        assert self.t.flow.recover_if_needed() == owed, f"recovery at a sale with owed={owed}"
        if owed:
            self.model.recover()
            self.settle()
        if self.model.state is not S.IDLE:
            return
        full = len(self.model.queue) >= int(self.t.terminal["limits"].get("unresolved_capacity", 10))
        try:
            sale = self.t.flow.begin_sale(amount)
        except TerminalError as exc:
            assert full, f"a sale was refused: {exc}"
            return
        assert not full, "a sale started with the list of unresolved reversals full"
        self.model.begin(sale.txn_id)
        if card is not None:
            self.present(card)
        self.settle()

    @precondition(lambda self: self.model.state is S.AWAITING_CARD)
    @rule(card=st.sampled_from(CARDS))
    def present_card(self, card: str) -> None:
        self.present(card)
        self.settle()

    def present(self, card: str) -> None:
        assert self.t.emulators.card_reader is not None
        self.t.emulators.card_reader.present(card)
        self.model.present(card)

    @precondition(lambda self: self.model.state is S.AWAITING_CARD)
    @rule()
    def cancel_sale(self) -> None:
        self.t.flow.cancel_sale()
        self.model.cancel()
        self.settle()

    @precondition(lambda self: self.model.state is S.PRINTER_PAUSED)
    @rule()
    def resume_printing(self) -> None:
        assert self.t.flow.resume_printing_now() == self.model.resume()
        self.settle()

    @precondition(lambda self: self.model.state is S.PRINTER_PAUSED)
    @rule()
    def abandon_receipts(self) -> None:
        assert self.model.sale is not None
        approval = self.t.approve("abandon_receipts", operator_id="supervisor-1", pin="8888", reason="printer broken")
        self.t.flow.abandon_receipts(approval=approval)
        self.model.incidents.append(("receipts_abandoned", self.model.sale))
        self.model.idle()
        self.settle()

    @rule(action=st.sampled_from(["sale", "cancel", "resume"]))
    def out_of_turn(self, action: str) -> None:
        """What the state does not allow is refused, and changes nothing."""
        flow, state = self.t.flow, self.model.state
        if state is {"sale": S.IDLE, "cancel": S.AWAITING_CARD, "resume": S.PRINTER_PAUSED}[action]:
            return  # allowed: the rules above do it
        rows = self.rows()
        act: dict[str, Callable[[], object]] = {
            "sale": lambda: flow.begin_sale(100), "cancel": flow.cancel_sale, "resume": flow.resume_printing_now}
        with pytest.raises(TerminalError):
            act[action]()
        assert (self.state, self.rows()) == (state, rows)

    # -- time, the printer, the power -----------------------------------------------------------
    @rule(seconds=st.sampled_from([0.5, 2.0, 29.5, 30.0, 60.0, 61.0, 120.0, 240.0, 600.0]))
    def advance_clock(self, seconds: float) -> None:
        self.clock.advance(seconds)
        self.model.advance(seconds)
        self.settle()

    @rule(action=st.sampled_from(["paper out", "paper back", "cover open", "cover closed"]))
    def printer_action(self, action: str) -> None:
        m = self.model
        if action.startswith("paper"):
            m.paper_ok = action == "paper back"
            self.printer.set_paper("ok" if m.paper_ok else "out")
        else:
            m.cover_open = action == "cover open"
            self.printer.open_cover() if m.cover_open else self.printer.close_cover()
        self.settle()

    @rule()
    def power_cycle(self) -> None:
        self.t.close()
        self.till = None
        give_up = time.monotonic() + QUIET_S
        while self.host.barrier():  # the host notices the dead link before anything else happens
            assert time.monotonic() < give_up, "the host never noticed the closed link"
        self.model.boot()
        self.boot()

    @rule()
    def run_runtime(self) -> None:
        self.t.runtime.run_until(lambda: self.state in SETTLED_STATES, io_wait=0.01)
        self.settle()  # quiet already: nothing may change without an outside fact

    # -- the host and the network -----------------------------------------------------------------
    @rule(fault=st.sampled_from(FAULTS), count=st.integers(1, 3), code=st.sampled_from(["05", "51", "55", "91"]))
    def host_fault(self, fault: str, count: int, code: str) -> None:
        self.set_fault(fault, count, code)

    def set_fault(self, fault: str, count: int, code: str) -> None:
        host, m = self.host, self.model
        if fault in ("hold", "stop holding"):
            host.hold_responses = m.hold = fault == "hold"
        elif fault == "drop answers":
            host.drop_responses(count)
            m.drop_left = count
        elif fault == "answer late":
            host.answer_late(count)  # held until released
            m.late_left = count
        elif fault == "decline":
            host.decline_next(code, count)
            m.decline_left = count
        elif fault == "drop link on next request":
            host.drop_connection_on_next_request(processed=True)  # decided and booked, then the link goes
            m.drop_next = True
        elif fault == "drop links":
            host.drop_connections()
            if m.conn != "none":
                m.conn = "none"
                if m.state is S.AUTHORIZING:
                    m.lose_host()  # the answer cannot come on a link that is gone
            self.settle()
        else:
            host.clear_faults()
            m.hold, m.drop_left, m.late_left, m.decline_left, m.drop_next = False, 0, 0, 0, False

    @precondition(lambda self: bool(self.model.held))
    @rule(then_advance=st.sampled_from([0.0, 30.0, 60.0]))
    def host_release_late(self, then_advance: float) -> None:
        # With then_advance, the late answers and a deadline meet in one step of the runtime.
        before = self.host.bytes_delivered
        self.host.release_late()
        self.wait_unread(self.host.bytes_delivered - before)
        self.clock.advance(then_advance)
        self.model.advance(then_advance, released=True)
        self.settle()

    # -- invariants ---------------------------------------------------------------------------------
    def rows(self) -> dict[str, tuple[str, int, int]]:
        """txn_id -> (state, STAN, amount) of every journal row."""
        return {t: (s, stan, amount) for t, s, stan, amount in self.t.journal._db.execute(
            "SELECT txn_id, state, stan, amount_minor FROM transactions")}

    def net(self, stan: int) -> int:
        return self.host.net_effect(self.terminal_id, f"{stan:06d}")

    @invariant()
    def state_agrees_with_the_model(self) -> None:
        journal, m = self.t.journal, self.model
        assert isinstance(self.state, CheckoutState)
        assert self.state is m.state, f"till in {self.state.name}, model in {m.state.name}"
        if m.sale is not None:
            assert self.t.flow.sale is not None and self.t.flow.sale.txn_id == m.sale
        rows = self.rows()
        assert {t: r[0] for t, r in rows.items()} == m.rows, "journal rows differ from the model"
        assert journal.unresolved_reversals() == m.queue, "unresolved reversals differ from the model"
        assert {t: journal.reversal_info(t)[0] for t in m.revs} == m.revs
        # A sale that never reached AUTHORIZING has no row; a cancelled one has its cancellation.
        cancelled = {str(c["txn_id"]) for c in journal.cancellations()}
        assert m.cancelled <= cancelled and not cancelled & rows.keys()
        if m.state is S.OUTCOME_UNKNOWN:
            assert journal.unresolved_reversals(), "OUTCOME_UNKNOWN with no reversal owed"
        incidents = [(str(i["kind"]), str(i["txn_id"])) for i in journal.exception_report()]
        assert incidents == m.incidents, "the exception report differs from the model"
        assert {r.txn_id for r, _ in journal.receipts_owed()} == m.owed_receipts, "receipts owed differ"

    @invariant()
    def every_host_debit_is_approved_or_being_reversed(self) -> None:
        journal, flow = self.t.journal, self.t.flow
        for entry in self.host.ledger:
            if entry.terminal_id != self.terminal_id or self.net(int(entry.stan)) <= 0:
                continue
            txn_id = journal.txn_id_for_stan(int(entry.stan))
            record = journal.get(txn_id) if txn_id is not None else None
            assert txn_id is not None and record is not None, f"host debit at STAN {entry.stan} with no journal row"
            deciding = flow.sale is not None and flow.sale.txn_id == txn_id and (
                (record.state == "SENT" and flow.state is S.AUTHORIZING)
                or (record.state == "AUTHORIZED" and flow.state is S.COMPLETING))
            reversing = txn_id in journal.unresolved_reversals()
            assert record.state == "APPROVED" or reversing or deciding, \
                f"host debit at STAN {entry.stan}: journal says {record.state}, no reversal owed"

    @invariant()
    def host_net_effect_is_zero_or_the_amount(self) -> None:
        ledger = [e for e in self.host.ledger if e.terminal_id == self.terminal_id]
        for txn_id, (state, stan, amount) in self.rows().items():
            booked = [e for e in ledger if int(e.stan) == stan and e.effective]
            assert len(booked) <= 1, f"{txn_id}: {len(booked)} effects at the host"
            net = self.net(stan)
            assert net in (0, amount), f"{txn_id}: host net effect {net} for a sale of {amount}"
            if state in ("DECLINED", "REVERSED"):
                assert net == 0, f"{txn_id} is {state} in the journal, the host keeps {net}"
            if state == "APPROVED":
                assert net == amount, f"{txn_id} is APPROVED in the journal, the host nets {net}"

    @invariant()
    def no_card_data_on_disk(self) -> None:
        for path in self.dir.rglob("*"):
            if path.is_file():
                data = path.read_bytes()
                hits = sum(c in data for c in self.canaries)
                assert not hits, f"{hits} card secret(s) in {path.name}"  # never print them

    @invariant()
    def every_approved_sale_tried_its_receipt(self) -> None:
        flow = self.t.flow
        tried = {t for (t,) in self.t.journal._db.execute("SELECT DISTINCT txn_id FROM prints")}
        abandoned = {t for kind, t in self.model.incidents if kind == "receipts_abandoned"}
        for txn_id, (state, _, _) in self.rows().items():
            printing = flow.state in (S.PRINTING, S.PRINTER_PAUSED) and flow.sale is not None \
                and flow.sale.txn_id == txn_id
            assert state != "APPROVED" or txn_id in tried | abandoned or printing, f"{txn_id}: no receipt tried"

    @invariant()
    def journal_and_audit_chain_are_whole(self) -> None:
        assert self.t.journal._db.execute("PRAGMA integrity_check").fetchone()[0] == "ok"
        assert self.t.audit.verify() is None, "the audit chain does not verify"

    def teardown(self) -> None:
        try:
            if self.till is not None:
                self.till.close()
                self.till = None
        finally:
            detach_peer(self.printer_url)
            self.host.stop()
            self.patches.close()
            shutil.rmtree(self.dir, ignore_errors=True)
        assert not self.host.internal_errors, self.host.internal_errors


# Bounded and repeatable for CI; OPENTILL_STATEFUL_EXAMPLES=1000 explores further (still repeatable).
CheckoutMachine.TestCase.settings = settings(
    max_examples=int(os.environ.get("OPENTILL_STATEFUL_EXAMPLES", "40")), stateful_step_count=30, deadline=None,
    derandomize=True, database=None, suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)
TestCheckoutStateful = CheckoutMachine.TestCase


def test_a_silent_host_leaves_room_for_a_sale_between_sign_ons(clock: FakeClock, var_dir: Path) -> None:
    with CountingHost() as host:
        host.hold_responses = True
        with build_emulated_till(clock=clock, var_dir=var_dir, overrides={"host.url": host.url},
                                 boot_io_wait=0.0) as till:
            assert till.flow.is_state(S.SIGNING_ON)
            clock.advance(float(till.terminal["host"]["timeout_s"]))  # the sign-on failed
            till.runtime.step()
            assert till.flow.is_state(S.IDLE), "a failed sign-on waits LIMITS.sign_on_retry_s before the next"
