"""`till wallet` (the wallet gateway simulator, a command read from the registry) and `till payers`."""

from __future__ import annotations

import pytest

from drivers.wallet.driver import WalletDriver
from drivers.wallet.events import CreateOrder, Pay, Query, TradeState
from emulator.wallet.payers import PAYERS, payment_code
from terminal.cli import main
from tests.drivers.test_wallet_driver import ask
from tests.support.processes import served


def test_payers_lists_every_test_payer(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["payers"]) == 0
    out = capsys.readouterr().out
    for suffix in PAYERS:
        assert payment_code(suffix) in out


def test_wallet_serves_http_with_control_lines_until_sigterm() -> None:
    with served("wallet", "--listen", "127.0.0.1:0") as child:
        assert child.endpoint.startswith("http://127.0.0.1:") and not child.endpoint.endswith(":0")
        driver = WalletDriver(child.endpoint, {"timeout_s": 10.0})
        try:
            assert ask(driver, Pay(order_no="T1", auth_code=payment_code("00"), amount_fen=100)).state \
                is TradeState.SUCCESS
            assert ask(driver, CreateOrder(order_no="M1", amount_fen=100)).state is TradeState.NOTPAY
            assert child.control("pay M1") == "ok: paid"
            assert ask(driver, Query(order_no="M1")).state is TradeState.SUCCESS
            assert child.control("fault unsigned").startswith("ok:")
            assert ask(driver, Query(order_no="M1")).state is TradeState.UNKNOWN
            assert child.control("pay NOSUCH").startswith("error:")
            assert "2 orders" in child.control("status")
        finally:
            driver.close()


def test_wallet_help_shows_the_control_vocabulary(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit):
        main(["wallet", "--help"])
    assert "pay ORDER [PAYER]" in capsys.readouterr().out


def test_wallet_is_in_the_command_list(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit):
        main(["--help"])
    out = capsys.readouterr().out
    assert "wallet" in out and "payers" in out
