from __future__ import annotations

from pathlib import Path

import pytest
from transitions import MachineError

from terminal.checkout.table import TRANSITIONS, CheckoutState, Triggers, build_machine, render_doc

DOC = Path(__file__).resolve().parents[2] / "docs" / "checkout-states.md"


def test_state_diagram_is_generated_from_the_table() -> None:
    assert DOC.read_text(encoding="utf-8") == render_doc(), (
        "docs/checkout-states.md is stale: run `python -m terminal.checkout.table > docs/checkout-states.md`"
    )


def test_every_state_is_reachable_and_can_return_to_idle() -> None:
    edges: dict[CheckoutState, set[CheckoutState]] = {s: set() for s in CheckoutState}
    for row in TRANSITIONS:
        for src in row["source"] if isinstance(row["source"], list) else [row["source"]]:
            edges[src].add(row["dest"])

    def reach(start: CheckoutState) -> set[CheckoutState]:
        seen, todo = {start}, [start]
        while todo:
            for nxt in edges[todo.pop()] - seen:
                seen.add(nxt)
                todo.append(nxt)
        return seen

    assert reach(CheckoutState.IDLE) == set(CheckoutState)
    for state in CheckoutState:
        assert CheckoutState.IDLE in reach(state), f"{state.name} can never return to IDLE"


class _Model:
    state: CheckoutState


def test_no_cancel_once_the_request_may_have_left() -> None:
    for state in (CheckoutState.AUTHORIZING, CheckoutState.APPROVED, CheckoutState.OUTCOME_UNKNOWN):
        model = _Model()
        build_machine(model, initial=state)
        with pytest.raises(MachineError):
            model.cancel()  # type: ignore[attr-defined]


def test_no_new_sale_while_an_outcome_is_unknown() -> None:
    model = _Model()
    build_machine(model, initial=CheckoutState.OUTCOME_UNKNOWN)
    with pytest.raises(MachineError):
        model.start_sale()  # type: ignore[attr-defined]


def test_typed_trigger_names_match_the_table() -> None:
    declared = set(Triggers.__annotations__) - {"state"}
    assert declared == {row["trigger"] for row in TRANSITIONS}
