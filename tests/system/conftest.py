from __future__ import annotations

import io
from collections.abc import Iterator
from pathlib import Path

import pytest

from sim.wiring import EmulatedTill, build_emulated_till
from terminal.cli import main
from terminal.clock import FakeClock
from terminal.security.access import Approval

SUPERVISOR = {"supervisor": "supervisor-1", "pin": "8888"}  # the emulated terminal's test supervisor


def approve(till: EmulatedTill, operation: str, reason: str = "test", txn_id: str | None = None) -> Approval:
    """The test supervisor's approval of one operation (a void or refund names its original)."""
    return till.approve(operation, operator_id="supervisor-1", pin="8888", reason=reason, txn_id=txn_id)


@pytest.fixture
def till(clock: FakeClock, var_dir: Path) -> Iterator[EmulatedTill]:
    with build_emulated_till(clock=clock, var_dir=var_dir) as t:
        yield t


def run_cli(capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch, *args: str,
            stdin: str = "") -> tuple[int, str, str]:
    """`till ARGS` in process: (exit status, stdout, stderr); stdin is not a terminal, so a PIN
    is read as one line of it."""
    monkeypatch.setattr("sys.stdin", io.StringIO(stdin))
    code = main(list(args))
    out, err = capsys.readouterr()
    return code, out, err


def sign_on_pad(till: EmulatedTill, clock: FakeClock, name: str = "J. SMITH", *, limit_s: float = 60.0) -> None:
    """The cardholder signs `name` on the emulated pad (电签); virtual time passes in small steps
    while the pen packets go at the pad's line rate, until the capture is over (the pen away)."""
    from emulator.control import apply
    from terminal.checkout.table import CheckoutState

    pad = till.emulators.signature_pad
    assert pad is not None, "the till has an emulated signature pad"
    assert apply(pad, f"sign {name}").startswith("ok:")
    waited = 0.0  # then the slips print, at the printer's line rate too once time has moved
    while till.flow.state not in (CheckoutState.IDLE, CheckoutState.PRINTER_PAUSED) and waited < limit_s:
        clock.advance(0.1)
        waited += 0.1
        till.runtime.run_until(lambda: till.flow.state is CheckoutState.IDLE, io_wait=0.0)
