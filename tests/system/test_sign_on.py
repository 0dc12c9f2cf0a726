"""签到: the terminal signs on at start and again after the host refuses its MAC (A0)."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from emulator.acquirer.simulator import AcquirerSimulator
from sim.wiring import EmulatedTill, build_emulated_till
from terminal.checkout.table import CheckoutState
from terminal.clock import FakeClock

S = CheckoutState


@pytest.fixture
def strict_host() -> Iterator[AcquirerSimulator]:
    sim = AcquirerSimulator(require_sign_on=True)  # A0 to anything before a sign-on
    sim.start()
    yield sim
    sim.stop()


@pytest.fixture
def till(clock: FakeClock, var_dir: Path, strict_host: AcquirerSimulator) -> Iterator[EmulatedTill]:
    url = f"tcp://{strict_host.address[0]}:{strict_host.address[1]}"
    with build_emulated_till(clock=clock, var_dir=var_dir, overrides={"host.url": url}) as t:
        yield t


def _sell(till: EmulatedTill) -> tuple[str | None, str | None]:
    assert till.emulators.card_reader is not None
    till.emulators.card_reader.present("approved")
    sale = till.sale(1500, io_wait=2.0)
    return sale.outcome, sale.response_code


def test_the_terminal_is_signed_on_when_ready_for_sale(till: EmulatedTill) -> None:
    assert till.flow.signed_on and till.flow.working_keys is not None
    assert "Secret" in repr(till.flow.working_keys) or "<redacted>" in repr(till.flow.working_keys)
    assert _sell(till) == ("APPROVED", "00")


def test_a_mac_error_declines_and_signs_on_again(till: EmulatedTill, strict_host: AcquirerSimulator) -> None:
    strict_host.refuse_mac(str(till.terminal["terminal_id"]))
    outcome, code = _sell(till)
    assert (outcome, code) == ("DECLINED", "A0")
    assert till.flow.completed[-1].reason is not None and "签到" in till.flow.completed[-1].reason
    assert till.flow.signed_on  # the idle terminal signed on again at once
    assert _sell(till) == ("APPROVED", "00")
