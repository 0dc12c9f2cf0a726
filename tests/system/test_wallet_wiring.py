"""The emulated world starts the wallet gateway simulator for `[wallet] url = "emulated"` (or
"emu://wallet"), points the profile at it, and moves its time on the till's clock."""

from __future__ import annotations

from pathlib import Path

import pytest

from drivers.wallet.driver import WalletDriver
from drivers.wallet.events import Pay, Query, TradeState
from emulator.wallet.payers import payment_code
from sim.wiring import build_emulated_till
from terminal.clock import FakeClock
from tests.drivers.test_wallet_driver import ask


@pytest.mark.parametrize("url", ["emulated", "emu://wallet"])
def test_the_gateway_is_started_and_follows_the_till_clock(clock: FakeClock, var_dir: Path, url: str) -> None:
    with build_emulated_till(clock=clock, var_dir=var_dir, host_transport="emu",
                             overrides={"wallet.url": url}) as till:
        gateway = till.emulators.wallet
        assert gateway is not None
        wallet_url = till.terminal["wallet"]["url"]
        assert wallet_url.startswith("emu://wallet?instance=")
        driver = WalletDriver(wallet_url, till.terminal)
        try:
            assert ask(driver, Pay(order_no="T1", auth_code=payment_code("01"), amount_fen=100)).state \
                is TradeState.USERPAYING
            clock.advance(10)
            till.runtime.step()  # the till's sources run: the gateway's time moves with the clock
            assert ask(driver, Query(order_no="T1")).state is TradeState.SUCCESS
        finally:
            driver.close()


def test_no_wallet_url_no_gateway(clock: FakeClock, var_dir: Path) -> None:
    with build_emulated_till(clock=clock, var_dir=var_dir, host_transport="emu", overrides={"wallet.url": ""}) as till:
        assert till.emulators.wallet is None


def test_emu_wallet_without_an_instance_builds_a_gateway_of_its_own() -> None:
    from sim.wiring import register_emulator_factories

    register_emulator_factories()
    driver = WalletDriver("emu://wallet")
    try:
        assert ask(driver, Pay(order_no="T1", auth_code=payment_code("00"), amount_fen=100)).state is TradeState.SUCCESS
    finally:
        driver.close()
