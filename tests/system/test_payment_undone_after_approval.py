"""A sale the host approved and the terminal then undid (signature.fallback = "void": no
signature, the approval is reversed) is not the register's "approved", not even while its
reversal is still owed — the row stays APPROVED until the host acknowledges the reversal, and a
register that read "approved" there hands over the goods for money that is being given back.
The same after a crash: an order left open with such a row is decided REVERSED, not APPROVED."""

from __future__ import annotations

from pathlib import Path

from sim.wiring import EmulatedTill, build_emulated_till
from terminal.service.loop import Service
from terminal.service.payments import JournalReader, payment_view


def _approved_then_undone(till: EmulatedTill, order_id: str) -> None:
    """The journal as the signature fallback leaves it: approved, its reversal queued, unsent."""
    journal, at = till.journal, till.clock.wall()
    journal.open_order(order_id=order_id, amount_minor=500, currency="156", tender="card", at=at)
    journal.bind_order(order_id)
    journal.record_sent(txn_id=f"t-{order_id}", amount_minor=500, currency="156", entry_mode="chip",
                        pan_last4="0085", pan_token="t" * 64, at=at)
    journal.record_answer(f"t-{order_id}", approved=True, response_code="00", auth_code="000001", rrn="1", at=at)
    journal.queue_reversal(f"t-{order_id}", reason="no signature, reversed / 未签名,已冲正", reason_code="06", at=at)
    journal.bind_order(None)


def _status(till: EmulatedTill, order_id: str) -> tuple[str, str | None, str | None]:
    order = till.journal.order(order_id)
    assert order is not None
    reader = JournalReader(till.journal.path)
    try:
        view = payment_view(order, reader)
    finally:
        reader.close()
    return view["status"], view["outcome"], view.get("reversal")


def test_an_approval_the_terminal_undid_reads_reversed_while_its_reversal_is_owed(var_dir: Path) -> None:
    with build_emulated_till(var_dir=var_dir, host_transport="emu") as till:
        _approved_then_undone(till, "ECR-VOID")
        till.journal.finish_order("ECR-VOID", outcome="DECLINED", reason="no signature", at=till.clock.wall())
        assert _status(till, "ECR-VOID") == ("reversed", "DECLINED", "pending")


def test_an_order_open_at_a_crash_with_an_undone_approval_is_decided_reversed(var_dir: Path) -> None:
    with build_emulated_till(var_dir=var_dir, host_transport="emu") as till:
        _approved_then_undone(till, "ECR-CUT")  # the power goes before the order is finished
        Service(till).close()  # the service decides the open order; the reversal is still owed
        assert _status(till, "ECR-CUT") == ("reversed", "REVERSED", "pending")
