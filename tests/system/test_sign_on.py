"""签到: the terminal signs on at start and again after the host refuses its MAC (A0)."""

from __future__ import annotations

import logging
from collections.abc import Iterator
from pathlib import Path
from typing import Any

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


def _clear_forms(keys: Any) -> dict[str, str]:
    """Every way a working key could show in clear: its hex (either case), a hex dump of the ASCII
    DE 62 carrying it, and its raw bytes as Python prints them."""
    forms: dict[str, str] = {}
    for name in ("pin_key", "mac_key"):
        key = getattr(keys, name).reveal()
        assert len(key) == 32 and bytes.fromhex(key), f"{name} is not 32 hex digits"  # a real key to look for
        raw = bytes.fromhex(key)
        forms |= {f"{name} hex": key, f"{name} hex lower": key.lower(), f"{name} ascii dump": key.encode().hex(),
                  f"{name} raw bytes": repr(raw)[2:-1]}
    return forms


def _assert_hidden(keys: Any, log_text: str) -> None:
    shown = {"repr": repr(keys), "str": str(keys), "format": f"{keys}",
             **{f"repr {n}": repr(getattr(keys, n)) for n in ("pin_key", "mac_key")},
             **{f"str {n}": str(getattr(keys, n)) for n in ("pin_key", "mac_key")}, "log": log_text}
    for form, needle in _clear_forms(keys).items():
        leaks = [where for where, text in shown.items() if needle in text]
        assert not leaks, f"the {form} shows in {leaks}"  # never print the key itself


def test_the_terminal_is_signed_on_when_ready_for_sale(till: EmulatedTill) -> None:
    assert till.flow.signed_on and till.flow.working_keys is not None
    assert _sell(till) == ("APPROVED", "00")


def test_working_keys_never_show_in_clear(
    clock: FakeClock, var_dir: Path, strict_host: AcquirerSimulator, caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.DEBUG)  # every logger, both sides of the link, from before the first sign-on
    url = f"tcp://{strict_host.address[0]}:{strict_host.address[1]}"
    with build_emulated_till(clock=clock, var_dir=var_dir, overrides={"host.url": url}) as till:
        first = till.flow.working_keys
        assert till.flow.signed_on and first is not None
        strict_host.refuse_mac(str(till.terminal["terminal_id"]))
        assert _sell(till) == ("DECLINED", "A0")  # ... and the idle terminal signs on again
        second = till.flow.working_keys
        assert till.flow.signed_on and second is not None and second != first
    sign_ons = [r for r in caplog.records if "0800" in r.getMessage()]
    assert len(sign_ons) >= 2, "the log did not capture the sign-ons"
    for keys in (first, second):
        _assert_hidden(keys, caplog.text)


def test_a_mac_error_declines_and_signs_on_again(till: EmulatedTill, strict_host: AcquirerSimulator) -> None:
    strict_host.refuse_mac(str(till.terminal["terminal_id"]))
    outcome, code = _sell(till)
    assert (outcome, code) == ("DECLINED", "A0")
    assert till.flow.completed[-1].reason is not None and "签到" in till.flow.completed[-1].reason
    assert till.flow.signed_on  # the idle terminal signed on again at once
    assert _sell(till) == ("APPROVED", "00")
