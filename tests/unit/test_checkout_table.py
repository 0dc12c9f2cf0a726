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


def test_every_step_the_tables_name_is_a_step_of_the_flow() -> None:
    from terminal.checkout.flow import SaleFlow
    from terminal.checkout.table import DEADLINES, FAULTS, ROUTES

    named = {r.step for r in ROUTES} | set(DEADLINES.values()) | set(FAULTS.values())
    missing = sorted(step for step in named if not callable(getattr(SaleFlow, step, None))
                     and step not in Triggers.__annotations__)
    assert not missing, f"the checkout table names steps SaleFlow does not have: {missing}"


def test_every_deadline_and_route_names_a_real_state() -> None:
    from terminal.checkout.table import DEADLINES, ROUTES

    assert all(isinstance(state, CheckoutState) for _, state in DEADLINES)
    assert all(r.states is None or r.states <= set(CheckoutState) for r in ROUTES)


def test_a_fault_of_a_family_without_a_step_is_shown_not_dropped() -> None:
    from drivers.events import DeviceFault, FaultKind
    from terminal.checkout.flow import SaleFlow

    shown: list[str] = []

    class Probe:
        state = CheckoutState.IDLE
        _show = staticmethod(lambda key, detail="": shown.append(f"{key}: {detail}"))

    SaleFlow.device_fault(Probe(), DeviceFault(device="cash_drawer", kind=FaultKind.DEVICE,  # type: ignore[arg-type]
                                               detail="jammed"))
    assert shown == ["device_fault: cash_drawer: jammed"]
