"""A pure model of the checkout and its host, for the stateful test (RELIABILITY.md §4).

`Model` never looks at a till: from the outside facts alone (a cashier, a cardholder, the clock,
the printer, the host's faults and the power) it says where the checkout must be, which journal
rows and reversals exist, and what the exception report holds. tests/reliability/
test_checkout_stateful.py drives it side by side with a real till and compares the two.

QR payments (docs/qr-payments.md) are modelled exactly up to the point the order leaves for the
wallet (SCANNING, its cancel and its timeout; the row committed SENT), and from there as a set:
while the wallet decides, the model says only "somewhere in the QR wait" (`qr_flight`) and which
outcomes the payer and the faults allow (`QrCase.allowed`). When that payment polls, reverses and
ends depends on the wallet's and the till's timers meeting (a clock jump past `give_up_s` reverses
a payer who paid meanwhile; a query one tick earlier finds the payment): not worth a second copy
of qr.py here. So the test tells the model which allowed outcome the till reached (`qr_done`,
`qr_decided`) and the model checks it is allowed and carries on exactly (printing, IDLE, the
housekeeping timer). The money is checked without the model: wallet ledger against the journal.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field

from drivers.acquirer.spec import BatchTotals
from emulator.wallet.payers import BIG_PAYMENT_FEN
from terminal.checkout.table import LIMITS, CheckoutState

__all__ = ["APPROVING", "PAYERS", "QR_END", "Model", "QrCase", "Timer"]

S = CheckoutState
# Test cards the issuer approves (pin-required: the emulated cardholder types the right PIN at once).
APPROVING = frozenset({"approved", "approved-swipe", "pin-required", "removed-before-second-ac"})
PULLED_BEFORE_SECOND_AC = "removed-before-second-ac"  # approved online, then the card leaves: reversed
PULLED_DURING_READ = "removed-during-read"  # the read fails (no fallback): the sale is cancelled

# What a QR payment may end as in the journal: APPROVED (paid), DECLINED (nothing taken), REVERSED
# (paid, the reverse refunded it) or SENT (待确认: unknown, resolved later by a query).
QR_END = frozenset({"APPROVED", "DECLINED", "REVERSED", "SENT"})
_PAYS_LATE = frozenset({"APPROVED", "REVERSED"})  # paid; a clock jump past give_up_s reverses it
# The wallet simulator's test payers (emulator/wallet/payers.py, by the code's last two digits) and
# what each may end as with a healthy wallet and no power cut.
PAYERS: dict[str, frozenset[str]] = {
    "00": frozenset({"APPROVED"}),  # pays at once (over 1000.00: a password, 10 s: as "01")
    "01": _PAYS_LATE,  # password, pays after 10 s
    "02": _PAYS_LATE,  # slow password, 25 s
    "03": frozenset({"DECLINED"}),  # never pays: reversed, closed
    "04": frozenset({"DECLINED"}),  # not enough balance
    "05": frozenset({"DECLINED"}),  # code expired
    "06": _PAYS_LATE,  # paid, the pay's answer lost: found by a query
    "07": frozenset({"REVERSED"}),  # pays just as the reverse lands: the reverse refunds it
    "08": frozenset({"DECLINED"}),  # never pays, two reverses answered recall=Y
    "09": _PAYS_LATE,  # HTTP 202 in progress, pays after 10 s
    "10": _PAYS_LATE,  # SYSTEMERROR though paid at once
}
NEVER_PAYS = frozenset({"03", "04", "05", "08"})


@dataclass
class Timer:
    name: str
    due: float


@dataclass
class QrCase:
    """A QR row: a payment by the customer's code ("customer"), the merchant's ("merchant") or a
    void/refund of one ("refund"); `allowed` is what its journal row may end as."""

    mode: str
    allowed: frozenset[str]
    may_pay: bool  # the wallet may take money for it (a payer who pays, or a refund that refunds)


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
    rows: dict[str, str] = field(default_factory=dict)  # txn_id -> journal state (the open batch and carried rows)
    amounts: dict[str, int] = field(default_factory=dict)  # txn_id -> amount (minor units)
    kinds: dict[str, str] = field(default_factory=dict)  # txn_id -> "sale", "void" or "refund"
    originals: dict[str, str] = field(default_factory=dict)  # a credit's txn_id -> the sale it credits
    refusing: set[str] = field(default_factory=set)  # sales whose card leaves before the 2nd GENERATE AC
    batch: int = 1  # the open batch: a new var dir starts at 1, each balanced settlement adds one
    # Store and forward: the offline floor limits (profile [offline]) and the advices owed, in order.
    floor_limit: int = 0
    offline_count: int = 0
    offline_total: int = 0
    advices: list[str] = field(default_factory=list)
    advice_at: float = 0.0  # after a round the host did not answer, the next one waits a minute
    down: bool = False  # the network between till and host is down: nothing connects
    revs: dict[str, str] = field(default_factory=dict)  # txn_id -> reversal state
    queue: list[str] = field(default_factory=list)  # unresolved reversals, oldest first
    attempts: dict[str, int] = field(default_factory=dict)
    cancelled: set[str] = field(default_factory=set)
    owed_receipts: set[str] = field(default_factory=set)  # approved, receipts not printed whole yet
    incidents: list[tuple[str, str]] = field(default_factory=list)  # the exception report: (kind, txn_id)
    # What the running flow remembers; a power cut forgets it.
    current: str | None = None  # the reversal in hand
    given_up: set[str] = field(default_factory=set)  # escalated this round
    round_attempts: dict[str, int] = field(default_factory=dict)  # sends this round: the backoff is per round
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
    # QR payments. `qr_flight`: the sale's order is with the wallet (the till is in one of
    # table.QR_WAITING, which one is not modelled); `state` is then QR_PAYING as a placeholder.
    qr: dict[str, QrCase] = field(default_factory=dict)  # txn_id -> its case, while its row is live
    qr_flight: bool = False
    wallet_faulty: bool = False  # wallet faults set and maybe not all used up
    decided_later: set[str] = field(default_factory=set)  # QR rows the idle resolver decided (no slip printed then)

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
                ("card_wait", S.AWAITING_CARD): self.cancel, ("code_wait", S.SCANNING): self.cancel,
                ("host", S.AUTHORIZING): self.lose_host,
                ("printer_check", S.PRINTER_PAUSED): self.resume, ("reversal", S.OUTCOME_UNKNOWN): self.reversal_due,
                ("sign_on", S.SIGNING_ON): self.sign_on_failed, ("housekeeping", S.IDLE): self.housekeeping,
                ("advice", S.FORWARDING): self.advice_round_over,
            }
            route.get((timer.name, self.state), lambda: None)()

    # -- the host -------------------------------------------------------------------------------
    def request(self) -> str:
        """A request reaches the host: its answer comes "now", is "lost" or "held", or the link is
        "dropped"; or the network is down and it never leaves ("unreachable")."""
        if self.down:
            return "unreachable"
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
            elif mti == "0230" and self.state is S.FORWARDING and self.advices[:1] == [about]:
                self.advised()
            elif mti == "0210":  # a stray answer: logged, and the reversal stands
                self.incidents.append(("late_response", about))

    # -- power and idle -------------------------------------------------------------------------
    def boot(self) -> None:
        if self.state is S.AUTHORIZING:
            assert self.sale is not None
            self.owe(self.sale)  # every row still SENT gets its reversal
        if self.qr_flight:  # the order stays SENT (unknown); the resolver asks the wallet after the boot
            assert self.sale is not None
            self.widen(self.sale)
            self.qr_flight = False
        self.idle(enter=False)
        self.timer, self.current, self.conn, self.retry_at = None, None, "none" if self.down else "fresh", 0.0
        self.signed_on, self.sign_on_at, self.advice_at = False, 0.0, 0.0
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
        elif self.advices and self.now >= self.advice_at:
            self.forward()
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
        elif fate == "unreachable":
            self.timer = None
            self.sign_on_failed()

    def sign_on_failed(self) -> None:
        self.sign_on_at = self.now + LIMITS.sign_on_retry_s  # counted from the failure
        self.idle()

    # -- a sale ---------------------------------------------------------------------------------
    def begin(self, txn_id: str, amount: int) -> None:
        self.state, self.sale = S.AWAITING_CARD, txn_id
        self.amounts[txn_id], self.kinds[txn_id] = amount, "sale"
        self.arm("card_wait", self.card_wait)

    def present(self, card: str) -> None:
        assert self.sale is not None
        if card == PULLED_DURING_READ:
            self.cancel()
            return
        if card == PULLED_BEFORE_SECOND_AC:
            self.refusing.add(self.sale)
        self.authorize(card in APPROVING, card)

    def credit(self, txn_id: str, kind: str, original: str, amount: int) -> None:
        """A void or refund: no card, straight to the host (the host approves what the terminal
        lets through: the original is approved, and the terminal counts every credit the host may
        have booked, so it never asks for more than is left)."""
        self.sale, self.amounts[txn_id], self.kinds[txn_id] = txn_id, amount, kind
        self.originals[txn_id] = original
        self.authorize(True)

    def creditable(self, kind: str) -> list[tuple[str, int]]:
        """(sale, what may still be credited) for every sale a void or refund may name now."""
        out = []
        for txn_id, state in self.rows.items():
            if state != "APPROVED" or self.kinds[txn_id] != "sale":
                continue
            credits = [c for c, o in self.originals.items()
                       if o == txn_id and self.rows.get(c) in ("SENT", "APPROVED", "TIMEOUT")]
            if any(self.kinds[c] == "void" for c in credits) or (kind == "void" and credits):
                continue
            left = self.amounts[txn_id] - sum(self.amounts[c] for c in credits)
            if left > 0:
                out.append((txn_id, left))
        return out

    def authorize(self, approved: bool, card: str | None = None) -> None:
        assert self.sale is not None
        if self.down:
            self.offline(card)
            return
        self.state, self.rows[self.sale] = S.AUTHORIZING, "SENT"
        self.arm("host", self.host_timeout)
        approved = approved and not self.decline_left
        self.decline_left = max(0, self.decline_left - 1)
        fate = self.request()
        if fate == "now":
            self.answer(approved)
        elif fate == "held":
            self.held.append(("0210", self.sale, approved))
        elif fate == "dropped":
            self.lose_host()  # the answer went with the link

    def offline(self, card: str | None) -> None:
        """Nothing can leave for the host: a sale within the floor limits is approved by the
        terminal (a chip card agrees with Y3 unless it needs an online PIN) and owed as an advice;
        a credit, an online-PIN card or a sale over a limit is declined with no journal row (and
        no slip)."""
        sale = self.sale
        assert sale is not None
        amount = self.amounts[sale]
        total = sum(self.amounts[t] for t in self.advices)
        if (card is None or card == "pin-required" or amount > self.floor_limit
                or len(self.advices) + 1 > self.offline_count or total + amount > self.offline_total):
            self.timer = None  # no row, so no slip: nothing reached the host
            self.idle()
        elif card == PULLED_BEFORE_SECOND_AC:  # the card left before agreeing: void, no advice
            self.rows[sale] = "DECLINED"
            self.incidents.append(("offline_sale_refused_by_card", sale))
            self.printed(approved=False)
        else:
            self.rows[sale] = "OFFLINE"
            self.advices.append(sale)
            self.printed(approved=True)

    def answer(self, approved: bool) -> None:
        assert self.sale is not None
        self.timer = None
        if approved and self.sale in self.refusing:  # the card is gone: AUTHORIZED, reversed (06)
            self.rows[self.sale], self.revs[self.sale], self.attempts[self.sale] = "AUTHORIZED", "PENDING", 0
            self.queue.append(self.sale)
            approved = False  # the cardholder's slip is a decline
        else:
            self.rows[self.sale] = "APPROVED" if approved else "DECLINED"
        self.printed(approved=approved)

    def printed(self, *, approved: bool) -> None:
        """The sale is decided: its receipts (or the decline slip) print, or wait for the printer."""
        assert self.sale is not None
        self.timer = None
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

    # -- store and forward ------------------------------------------------------------------------
    def forward(self) -> None:
        self.state = S.FORWARDING
        self.next_advice()

    def next_advice(self) -> None:
        if not self.advices:
            self.timer = None
            self.idle()
            return
        fate = self.request()
        if fate == "unreachable":
            self.advice_round_over()
            return
        self.arm("advice", self.host_timeout)
        if fate == "now":
            self.advised()
        elif fate == "held":
            self.held.append(("0230", self.advices[0], True))
        # lost or dropped: the deadline ends the round; the next round repeats it (0221)

    def advised(self) -> None:
        self.rows[self.advices.pop(0)] = "APPROVED"
        self.next_advice()

    def advice_round_over(self) -> None:
        self.advice_at = self.now + 60.0  # terminal.host.advice.RETRY_AFTER_S
        self.timer = None
        self.idle()

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
        self.round_attempts.clear()
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
        n = self.round_attempts[txn_id] = self.round_attempts.get(txn_id, 0) + 1
        cap = max(LIMITS.reversal_max_wait_s, self.reversal_wait)
        self.arm("reversal", min(self.reversal_wait * 2 ** (n - 1), cap))
        fate = self.request()
        if fate == "now":
            self.reversed(txn_id)
        elif fate == "held":
            self.held.append(("0410", txn_id, True))
        # lost or dropped: the deadline repeats it (as 0401)

    def reversal_due(self) -> None:
        assert self.current is not None
        if self.round_attempts[self.current] < self.reversal_attempts:
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

    # -- settlement -----------------------------------------------------------------------------
    def may_settle(self) -> bool:
        """Settlement starts from IDLE once no reversal is pending (escalated ones are carried)."""
        return not any(self.revs[t] == "PENDING" for t in self.queue) and not self.advices

    def settle(self) -> None:
        """Settle with a healthy host and a printer that prints (the rule's precondition): every
        message is answered at once, the batch balances (after a batch upload if the host's books
        differ, e.g. by a reversal it never got), the slip prints, and the open batch leaves the
        journal but for the rows whose reversal is unresolved: they are carried into the next
        batch with an incident each. Which messages went (0500, 0320s, 0500) is not modelled,
        only that the host and the terminal close the same batch with the same money."""
        for _ in range(2):  # 0500 (and 0320s and the 0500 after them): all answered "now"
            assert self.request() == "now", "settle is modelled with a healthy host only"
        carried = [t for t in self.rows if t in self.queue or (t in self.qr and self.rows[t] == "SENT")]
        self.incidents += [("carried_over", t) for t in carried] + [("batch_settled", "None")]
        gone = [t for t in self.rows if t not in carried]
        for t in gone:
            del self.rows[t]
            self.qr.pop(t, None)
            self.revs.pop(t, None)
            self.attempts.pop(t, None)
        self.owed_receipts -= set(gone)  # copies a supervisor abandoned leave with their batch
        for t in carried:
            self.originals.pop(t, None)  # a carried credit no longer points at its sale
        # A late answer for a row that left the journal names no transaction on the report.
        self.held = [(mti, "None" if about in gone else about, ok) for mti, about, ok in self.held]
        self.batch += 1
        self.timer = None
        self.idle()

    def totals(self) -> BatchTotals:
        """What the journal's open batch must hold: approved sales (offline ones too), voids and refunds."""
        totals = BatchTotals()
        for txn_id, state in self.rows.items():
            if state in ("APPROVED", "OFFLINE") and txn_id not in self.qr:  # the card batch: the wallet settles QR
                totals = totals.plus(self.kinds[txn_id], self.amounts[txn_id])
        return totals

    # -- QR payments ------------------------------------------------------------------------------
    def begin_qr(self, txn_id: str, amount: int, *, merchant: bool) -> None:
        """tender "qr": SCANNING waits for the customer's code (as long as for a card); "qr-merchant":
        the order is created (row SENT) and its code shown at once."""
        self.sale, self.amounts[txn_id], self.kinds[txn_id] = txn_id, amount, "sale"
        if merchant:
            # Paid or not is the customer's choice (the test's `pay` of the wallet): any outcome.
            self.fly(txn_id, QrCase("merchant", frozenset({"APPROVED", "DECLINED", "REVERSED", "SENT"}), True))
        else:
            self.state = S.SCANNING
            self.arm("code_wait", self.card_wait)

    def qr_code(self, suffix: str) -> None:
        """A payment code reached the till (SCANNING, or AWAITING_CARD: the card read is cancelled)."""
        assert self.sale is not None and self.state in (S.SCANNING, S.AWAITING_CARD)
        allowed = PAYERS.get(suffix, PAYERS["00"])
        if allowed is PAYERS["00"] and self.amounts[self.sale] > BIG_PAYMENT_FEN:
            allowed = _PAYS_LATE  # over 1000.00 even this payer types a password (10 s), as "01"
        self.fly(self.sale, QrCase("customer", allowed, suffix not in NEVER_PAYS))

    def qr_credit(self, txn_id: str, kind: str, original: str, amount: int) -> None:
        """A void or refund of a QR payment: a wallet refund (QR_REFUNDING), no host message. It is
        refunded (APPROVED), refused (DECLINED) or left unknown (SENT, retried later)."""
        self.amounts[txn_id], self.kinds[txn_id], self.originals[txn_id] = amount, kind, original
        self.sale = txn_id
        allowed = frozenset({"APPROVED"}) if not self.wallet_faulty else frozenset({"APPROVED", "DECLINED", "SENT"})
        self.fly(txn_id, QrCase("refund", allowed, True))

    def fly(self, txn_id: str, case: QrCase) -> None:
        self.rows[txn_id], self.qr[txn_id] = "SENT", case
        self.state, self.qr_flight, self.timer = S.QR_PAYING, True, None  # the QR states arm their own waits
        if self.wallet_faulty:
            self.widen(txn_id)

    def widen(self, txn_id: str) -> None:
        """A wallet fault or a power cut while the order is open: any outcome the money allows (a
        payer who never pays is never APPROVED nor REVERSED)."""
        case = self.qr[txn_id]
        if case.mode == "refund":
            case.allowed = frozenset({"APPROVED", "DECLINED", "SENT"})
        else:
            case.allowed = QR_END if case.may_pay else frozenset({"DECLINED", "SENT"})

    def wallet_fault(self, on: bool) -> None:
        self.wallet_faulty = on
        if on:
            for txn_id, case in self.qr.items():
                if self.rows.get(txn_id) == "SENT" and case.allowed != QR_END:
                    self.widen(txn_id)

    def qr_done(self, state: str) -> str | None:
        """The till left the QR wait with the row in `state`: None when that is allowed (the model
        goes on from there exactly as the till must), else why not."""
        sale = self.sale
        assert self.qr_flight and sale is not None
        case = self.qr[sale]
        if state not in case.allowed:
            return f"QR {case.mode} {sale} ended {state}, allowed {sorted(case.allowed)}"
        self.qr_flight, self.rows[sale] = False, state
        if state == "SENT":  # 待确认: the order stays unknown; the resolver decides it later
            self.widen(sale)
        if state == "DECLINED":  # definitely failed: shown, not printed
            self.idle()
        else:  # paid; refunded by the reverse (已退款); or pending (待确认): a slip each
            self.printed(approved=state == "APPROVED")
        return None

    def qr_decided(self, txn_id: str, state: str) -> str | None:
        """A row left SENT (unknown) later, by the idle resolver (a query, a reverse or a refund
        sent again): None when allowed."""
        case = self.qr[txn_id]
        if self.rows[txn_id] != "SENT" or state not in case.allowed - {"SENT"}:
            return f"QR {case.mode} {txn_id}: {self.rows[txn_id]} -> {state}, allowed {sorted(case.allowed)}"
        self.rows[txn_id] = state
        self.decided_later.add(txn_id)
        if state == "APPROVED":
            self.owed_receipts.add(txn_id)  # owed: printed at the next boot (as REPRINT)
        return None

    def qr_unresolved(self) -> list[str]:
        return [t for t, c in self.qr.items() if self.rows.get(t) == "SENT"]
