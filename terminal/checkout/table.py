"""The checkout's rules, in one module: states, transitions, which fact goes to which step in
which state, which deadline belongs to which wait, and the limits and timeouts.

Everything here is data (h11's `_state.py`): `docs/checkout-states.md` is generated from it and a
test fails when the diagram is stale (`python -m terminal.checkout.table > docs/checkout-states.md`);
another test checks that every step named here is a method of `terminal.checkout.flow.SaleFlow`
and that `Triggers` lists exactly the triggers of TRANSITIONS. Effects (talking to devices, the
host, the journal) live in the phase modules beside this one.

Outcome unknown is a state: a request whose answer never came is neither approved nor declined,
and no new sale starts until its reversal is settled.
"""

from __future__ import annotations

import enum
from collections.abc import Callable
from typing import Any, NamedTuple

from transitions import Machine

from drivers.acquirer.events import HostMessage
from drivers.card_reader.events import (
    CardRead,
    CardRemoved,
    ChipCompleted,
    PinCancelled,
    PinEntered,
    PinTimeout,
    ReadFailed,
)
from drivers.events import DeviceFault
from drivers.printer.events import PrinterReady, PrintJobDone, PrintJobStopped
from drivers.record import Record
from drivers.scanner.events import Scanned
from drivers.signature_pad.events import InkAdded, PadKey
from drivers.wallet.events import WalletAnswer
from terminal.runtime import SourceFailed

__all__ = [
    "CANCELLABLE",
    "DEADLINES",
    "FAULTS",
    "HOUSEKEEPING",
    "LIMITS",
    "QR_WAITING",
    "RESTING",
    "ROUTES",
    "TRANSITIONS",
    "CheckoutState",
    "Limits",
    "Route",
    "Triggers",
    "build_machine",
    "mermaid",
]


class CheckoutState(enum.Enum):
    IDLE = "idle"
    AMOUNT_ENTRY = "amount_entry"
    AWAITING_CARD = "awaiting_card"
    READING_CARD = "reading_card"
    PIN_ENTRY = "pin_entry"
    AUTHORIZING = "authorizing"
    COMPLETING = "completing"  # chip: the card's second GENERATE AC with the issuer's answer
    APPROVED = "approved"
    DECLINED = "declined"
    SIGNATURE_REQUIRED = "signature_required"
    OUTCOME_UNKNOWN = "outcome_unknown"  # also where owed reversals are delivered
    PRINTING = "printing"
    PRINTER_PAUSED = "printer_paused"
    CANCELLED = "cancelled"
    SETTLE_REQUIRED = "settle_required"  # journal full: no sales until the batch is settled
    SETTLING = "settling"
    FORWARDING = "forwarding"  # stored offline sales (advices) going to the host
    SIGNING_ON = "signing_on"  # 签到: working keys from the host (at start, and after a MAC error)
    # QR payments (qr.py): the customer's code (被扫) and the merchant's code (主扫)
    SCANNING = "scanning"  # waiting for the customer's payment code
    QR_PAYING = "qr_paying"  # pay sent with the code, waiting for its answer
    QR_POLLING = "qr_polling"  # the customer is entering a password, or the answer was unclear: query
    QR_REVERSING = "qr_reversing"  # still unknown at the deadline: reverse (close, or refund if paid)
    QR_SHOWING = "qr_showing"  # merchant order created, its code shown, polling
    QR_CLOSING = "qr_closing"  # merchant order not paid in time, or cancelled: close it
    QR_REFUNDING = "qr_refunding"  # a void or refund of a QR payment at the wallet
    QR_RESOLVING = "qr_resolving"  # idle: orders whose outcome is unknown are queried (待确认)
    RECONCILING = "reconciling"  # 对账: a day's QR payments against the wallet's statement
    UPLOADING = "uploading"  # 电签: e-signatures going up to the acquirer (0820), while idle


S = CheckoutState

# Before AUTHORIZING nothing has left for the host, so a sale can simply be cancelled.
CANCELLABLE = [S.AMOUNT_ENTRY, S.AWAITING_CARD, S.READING_CARD, S.PIN_ENTRY, S.SCANNING]
# A QR payment that has left for the wallet is decided by the wallet: these ask it, never drop it.
QR_WAITING = [S.QR_PAYING, S.QR_POLLING, S.QR_REVERSING, S.QR_SHOWING, S.QR_CLOSING, S.QR_REFUNDING]

TRANSITIONS: list[dict[str, Any]] = [
    {"trigger": "start_sale", "source": S.IDLE, "dest": S.AMOUNT_ENTRY},
    {"trigger": "enter_amount", "source": S.AMOUNT_ENTRY, "dest": S.AWAITING_CARD},
    {"trigger": "retry_read", "source": S.AWAITING_CARD, "dest": S.AWAITING_CARD},  # fallback
    {"trigger": "detect_card", "source": S.AWAITING_CARD, "dest": S.READING_CARD},
    {"trigger": "start_credit", "source": S.IDLE, "dest": S.AUTHORIZING},  # void / refund of a sale
    {"trigger": "ask_pin", "source": S.READING_CARD, "dest": S.PIN_ENTRY},
    {"trigger": "accept_card", "source": S.READING_CARD, "dest": S.AUTHORIZING},
    {"trigger": "accept_pin", "source": S.PIN_ENTRY, "dest": S.AUTHORIZING},
    {"trigger": "retry_pin", "source": S.AUTHORIZING, "dest": S.PIN_ENTRY},  # issuer said 55
    {"trigger": "complete_chip", "source": S.AUTHORIZING, "dest": S.COMPLETING},
    {"trigger": "approve", "source": [S.AUTHORIZING, S.COMPLETING, *QR_WAITING], "dest": S.APPROVED},
    {"trigger": "decline", "source": [S.AUTHORIZING, S.COMPLETING, S.SIGNATURE_REQUIRED, *QR_WAITING],
     "dest": S.DECLINED},  # from SIGNATURE_REQUIRED: no signature, the profile says reverse
    {"trigger": "lose_host", "source": S.AUTHORIZING, "dest": S.OUTCOME_UNKNOWN},
    {"trigger": "ask_signature", "source": S.APPROVED, "dest": S.SIGNATURE_REQUIRED},
    {"trigger": "print_receipts", "source": [S.APPROVED, S.DECLINED, S.SIGNATURE_REQUIRED], "dest": S.PRINTING},
    {"trigger": "pause_printing", "source": S.PRINTING, "dest": S.PRINTER_PAUSED},
    {"trigger": "resume_printing", "source": S.PRINTER_PAUSED, "dest": S.PRINTING},
    {"trigger": "abandon_printing", "source": S.PRINTER_PAUSED, "dest": S.IDLE},
    {"trigger": "finish", "source": S.PRINTING, "dest": S.IDLE},
    {"trigger": "cancel", "source": CANCELLABLE, "dest": S.CANCELLED},
    {"trigger": "reset", "source": S.CANCELLED, "dest": S.IDLE},
    {"trigger": "resolve", "source": S.OUTCOME_UNKNOWN, "dest": S.IDLE},
    {"trigger": "recover", "source": S.IDLE, "dest": S.OUTCOME_UNKNOWN},
    {"trigger": "require_settlement", "source": S.IDLE, "dest": S.SETTLE_REQUIRED},
    {"trigger": "settle", "source": [S.IDLE, S.SETTLE_REQUIRED], "dest": S.SETTLING},
    {"trigger": "end_settlement", "source": S.SETTLING, "dest": S.IDLE},
    {"trigger": "sign_on", "source": S.IDLE, "dest": S.SIGNING_ON},
    {"trigger": "end_sign_on", "source": S.SIGNING_ON, "dest": S.IDLE},
    {"trigger": "forward", "source": S.IDLE, "dest": S.FORWARDING},
    {"trigger": "end_forwarding", "source": S.FORWARDING, "dest": S.IDLE},
    {"trigger": "await_code", "source": S.AMOUNT_ENTRY, "dest": S.SCANNING},
    {"trigger": "take_code", "source": [S.AWAITING_CARD, S.SCANNING], "dest": S.QR_PAYING},
    {"trigger": "poll_wallet", "source": S.QR_PAYING, "dest": S.QR_POLLING},
    {"trigger": "reverse_qr", "source": [S.QR_POLLING, S.QR_SHOWING, S.QR_CLOSING], "dest": S.QR_REVERSING},
    {"trigger": "leave_pending", "source": QR_WAITING, "dest": S.PRINTING},
    {"trigger": "show_code", "source": S.AMOUNT_ENTRY, "dest": S.QR_SHOWING},
    {"trigger": "close_order", "source": S.QR_SHOWING, "dest": S.QR_CLOSING},
    {"trigger": "start_qr_credit", "source": S.IDLE, "dest": S.QR_REFUNDING},
    {"trigger": "resolve_qr", "source": S.IDLE, "dest": S.QR_RESOLVING},
    {"trigger": "end_resolving", "source": S.QR_RESOLVING, "dest": S.IDLE},
    {"trigger": "upload_signatures", "source": S.IDLE, "dest": S.UPLOADING},
    {"trigger": "end_uploading", "source": S.UPLOADING, "dest": S.IDLE},
    {"trigger": "reconcile", "source": S.IDLE, "dest": S.RECONCILING},
    {"trigger": "end_reconciling", "source": S.RECONCILING, "dest": S.IDLE},
]


class Limits(Record):
    """Bounds and waits of the checkout that are rules, not settings (a profile sets the host
    timeout, the card wait, the journal's capacity and the offline floor limits)."""

    max_fallbacks: int = 2  # chip error -> swipe, tap refused -> insert: then give up
    max_pin_tries: int = 3
    wrong_pin_code: str = "55"  # the issuer's "incorrect PIN": ask again, up to max_pin_tries
    pin_timeout_s: int = 30  # the pad's own PIN timeout; the flow's backstop is 5 s later
    completion_timeout_s: float = 15.0  # the chip's second GENERATE AC
    sign_on_retry_s: float = 60.0  # after a failed sign-on, wait this long before the next try
    escalated_retry_s: float = 600.0  # an escalated reversal gets another round this long after (idle)
    printer_recheck_s: float = 2.0  # while paused, how often to ask the printer whether it is ready
    housekeeping_s: float = 60.0  # while idle, how often to look for what is owed to the host
    settlement_retry_s: float = 60.0  # a settlement without an outcome is tried again this often (idle)
    # Reversal backoff, per recovery round: attempt k of a round waits reversal_wait_s * 2**(k-1),
    # at most this long. Attempts of earlier rounds never grow it (docs/host-link.md).
    reversal_max_wait_s: float = 120.0
    min_amount_minor: int = 1  # a sale, void or refund moves at least one minor unit


LIMITS = Limits()

# Where the machine rests with nothing running: boot and the operator's actions wait for one of
# these (a full journal rests in SETTLE_REQUIRED: only settlement moves it on).
RESTING = frozenset({S.IDLE, S.SETTLE_REQUIRED})
# Housekeeping that must be over before a new transaction starts; each has its own deadline.
HOUSEKEEPING = frozenset({S.SIGNING_ON, S.OUTCOME_UNKNOWN, S.FORWARDING, S.SETTLING, S.QR_RESOLVING,
                          S.RECONCILING, S.UPLOADING})


class Route(NamedTuple):
    """A fact of type `event` goes to the flow's method `step` in `states` (None: any state)."""

    event: type
    states: frozenset[CheckoutState] | None
    step: str


def _in(*states: CheckoutState) -> frozenset[CheckoutState]:
    return frozenset(states)


# Which step a fact belongs to, first match wins. A fact that matches nothing is logged and ignored.
ROUTES: tuple[Route, ...] = (
    Route(CardRead, _in(S.AWAITING_CARD), "card_detected"),
    Route(ReadFailed, _in(S.AWAITING_CARD, S.READING_CARD), "card_read_failed"),
    Route(PinEntered, _in(S.PIN_ENTRY), "pin_entered"),
    Route(PinCancelled, _in(S.PIN_ENTRY), "pin_refused"),
    Route(PinTimeout, _in(S.PIN_ENTRY), "pin_refused"),
    Route(ChipCompleted, _in(S.COMPLETING), "chip_completed"),
    # A removal matters only while this sale holds a card; in AWAITING_CARD (or any other state)
    # it is the previous card's, late through the line, and is ignored (card.py checks the mode).
    Route(CardRemoved, _in(S.READING_CARD, S.PIN_ENTRY, S.COMPLETING), "card_event"),
    Route(DeviceFault, None, "device_fault"),  # then by device family: FAULTS
    Route(PrinterReady, _in(S.PRINTER_PAUSED), "printer_ready"),
    Route(PrintJobDone, None, "print_job_over"),  # a copy, a reprint or the settlement slip
    Route(PrintJobStopped, None, "print_job_over"),
    Route(HostMessage, _in(S.OUTCOME_UNKNOWN), "reversal_message"),
    Route(HostMessage, _in(S.SETTLING), "settlement_message"),
    Route(HostMessage, _in(S.FORWARDING), "advice_message"),
    Route(HostMessage, _in(S.SIGNING_ON), "sign_on_message"),
    Route(HostMessage, _in(S.UPLOADING), "upload_message"),
    Route(HostMessage, None, "host_message"),
    Route(SourceFailed, None, "source_failed"),
    Route(InkAdded, _in(S.SIGNATURE_REQUIRED), "ink_added"),
    Route(PadKey, _in(S.SIGNATURE_REQUIRED), "pad_key"),
    Route(Scanned, _in(S.AWAITING_CARD, S.SCANNING), "code_scanned"),
    Route(Scanned, _in(S.IDLE, S.SETTLE_REQUIRED), "lookup_scanned"),
    Route(Scanned, None, "scan_ignored"),
    Route(WalletAnswer, _in(*QR_WAITING, S.QR_RESOLVING, S.RECONCILING), "wallet_answer"),
    Route(WalletAnswer, None, "wallet_unmatched"),
)

# A DeviceFault goes to the step of its device's family; a family without a row is shown to the
# operator and logged (never dropped without a word).
FAULTS: dict[str, str] = {
    "card_reader": "card_event",
    "printer": "printer_fault",
    "acquirer": "host_fault",
    "wallet": "wallet_fault",
    "scanner": "scanner_fault",
    "signature_pad": "signature_pad_fault",
}

# Which step a deadline belongs to, by (deadline name, state). A deadline in any other state
# belongs to a wait that is over and is ignored.
DEADLINES: dict[tuple[str, CheckoutState], str] = {
    ("card_wait", S.AWAITING_CARD): "card_wait_over",
    ("pin", S.PIN_ENTRY): "pin_wait_over",
    ("host", S.AUTHORIZING): "lose_host",
    ("completion", S.COMPLETING): "completion_over",
    ("reversal", S.OUTCOME_UNKNOWN): "reversal_deadline",
    ("printer_check", S.PRINTER_PAUSED): "resume_printing_now",
    ("settlement", S.SETTLING): "settlement_deadline",
    ("statement", S.RECONCILING): "statement_deadline",
    ("advice", S.FORWARDING): "advice_deadline",
    ("sign_on", S.SIGNING_ON): "sign_on_deadline",
    ("housekeeping", S.IDLE): "idle_tick",
    ("signature", S.SIGNATURE_REQUIRED): "signature_deadline",
    ("upload", S.UPLOADING): "upload_deadline",
    ("upload", S.SETTLING): "upload_deadline",  # the upload rounds before the 0500
    ("code_wait", S.SCANNING): "code_wait_over",
    ("qr_answer", S.QR_PAYING): "qr_no_answer",
    ("qr_query", S.QR_POLLING): "qr_query_tick",
    ("qr_reverse", S.QR_REVERSING): "qr_reverse_tick",
    ("qr_poll", S.QR_SHOWING): "qr_poll_tick",
    ("qr_close", S.QR_CLOSING): "qr_close_over",
    ("qr_refund", S.QR_REFUNDING): "qr_refund_tick",
    ("qr_resolve", S.QR_RESOLVING): "qr_resolve_over",
}


class Triggers:
    """The trigger methods transitions adds to a model, typed for mypy.

    Annotations only (no values), so transitions still installs the real methods; a test checks
    that these names are exactly the triggers of TRANSITIONS.
    """

    state: CheckoutState
    start_sale: Callable[..., bool]
    enter_amount: Callable[..., bool]
    retry_read: Callable[..., bool]
    detect_card: Callable[..., bool]
    start_credit: Callable[..., bool]
    ask_pin: Callable[..., bool]
    accept_card: Callable[..., bool]
    accept_pin: Callable[..., bool]
    retry_pin: Callable[..., bool]
    complete_chip: Callable[..., bool]
    approve: Callable[..., bool]
    decline: Callable[..., bool]
    lose_host: Callable[..., bool]
    ask_signature: Callable[..., bool]
    print_receipts: Callable[..., bool]
    pause_printing: Callable[..., bool]
    resume_printing: Callable[..., bool]
    abandon_printing: Callable[..., bool]
    finish: Callable[..., bool]
    cancel: Callable[..., bool]
    reset: Callable[..., bool]
    resolve: Callable[..., bool]
    recover: Callable[..., bool]
    require_settlement: Callable[..., bool]
    settle: Callable[..., bool]
    end_settlement: Callable[..., bool]
    sign_on: Callable[..., bool]
    end_sign_on: Callable[..., bool]
    forward: Callable[..., bool]
    end_forwarding: Callable[..., bool]
    await_code: Callable[..., bool]
    take_code: Callable[..., bool]
    poll_wallet: Callable[..., bool]
    reverse_qr: Callable[..., bool]
    leave_pending: Callable[..., bool]
    show_code: Callable[..., bool]
    close_order: Callable[..., bool]
    start_qr_credit: Callable[..., bool]
    resolve_qr: Callable[..., bool]
    end_resolving: Callable[..., bool]
    upload_signatures: Callable[..., bool]
    end_uploading: Callable[..., bool]
    reconcile: Callable[..., bool]
    end_reconciling: Callable[..., bool]


def build_machine(model: object, initial: CheckoutState = S.IDLE) -> Machine:
    """Bind the table to a model. Callbacks are the model's `on_enter_<STATE>` methods."""
    return Machine(
        model=model,
        states=CheckoutState,
        transitions=TRANSITIONS,
        initial=initial,
        auto_transitions=False,
        queued=True,  # a callback that fires a trigger runs it after the current transition
        send_event=True,
        ignore_invalid_triggers=False,
    )


def mermaid() -> str:
    """The state diagram as a mermaid block, generated from TRANSITIONS."""
    lines = ["```mermaid", "stateDiagram-v2", f"    [*] --> {S.IDLE.name}"]
    for row in TRANSITIONS:
        sources = row["source"] if isinstance(row["source"], list) else [row["source"]]
        lines += [f"    {src.name} --> {row['dest'].name}: {row['trigger']}" for src in sources]
    lines.append("```")
    return "\n".join(lines) + "\n"


def render_doc() -> str:
    return (
        "# Checkout states\n\n"
        "Generated from `terminal/checkout/table.py` by `python -m terminal.checkout.table`; "
        "a test fails when this file is stale.\n\n" + mermaid()
    )


if __name__ == "__main__":
    print(render_doc(), end="")
