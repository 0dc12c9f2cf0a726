"""A paperless terminal (电签: no printer fitted, `devices.printer.url = "none"`): every slip it
would print is an e-receipt under var/receipts/ — a PNG drawn as the roll would show it and a
JSON of its lines and fields — with the same journal, print rows and reprints as on paper."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import pytest

from emulator.wallet.payers import payment_code
from sim.wiring import EmulatedTill, build_emulated_till
from terminal.checkout.table import CheckoutState
from terminal.clock import FakeClock
from tests.system.conftest import approve

PAPERLESS = {"devices.printer": {"profile": "cn-80mm", "url": "none"}}


@pytest.fixture
def till(clock: FakeClock, var_dir: Path) -> Iterator[EmulatedTill]:
    with build_emulated_till(clock=clock, var_dir=var_dir, overrides=PAPERLESS) as t:
        yield t


def _doc(var_dir: Path, name: str) -> dict[str, object]:
    doc: dict[str, object] = json.loads((var_dir / "receipts" / f"{name}.json").read_text(encoding="utf-8"))
    assert (var_dir / "receipts" / f"{name}.png").read_bytes().startswith(b"\x89PNG")
    return doc


def test_no_printer_is_opened_and_a_sale_writes_both_copies_as_e_receipts(till: EmulatedTill, var_dir: Path) -> None:
    assert "printer" not in till.devices and till.emulators.printer is None
    till.emulators.card_reader.present("approved")
    sale = till.sale(1234)
    assert sale.outcome == "APPROVED" and [c.copy.value for c in sale.printed] == ["merchant", "cardholder"]
    merchant = _doc(var_dir, f"{sale.txn_id}-merchant")
    assert merchant["state"] == "APPROVED" and merchant["amount_minor"] == 1234 and merchant["copy"] == "merchant"
    texts = json.dumps(merchant["lines"], ensure_ascii=False)
    assert "商户存根" in texts and "**** **** **** " in texts
    assert till.journal.receipts_owed() == []  # written counts as printed: nothing owed at the next boot


def test_a_reprint_and_the_settlement_slip_are_e_receipts_too(till: EmulatedTill, var_dir: Path) -> None:
    till.emulators.card_reader.present("approved")
    sale = till.sale(500)
    till.flow.reprint(approval=approve(till, "reprint", txn_id=sale.txn_id))
    reprints = sorted((var_dir / "receipts").glob(f"{sale.txn_id}-cardholder-reprint-*.json"))
    assert len(reprints) == 1 and json.loads(reprints[0].read_text(encoding="utf-8"))["reprint"] is True
    assert "重打印" in reprints[0].read_text(encoding="utf-8")
    result = till.settle(supervisor="supervisor-1", pin="8888")
    assert result.balanced
    slip = _doc(var_dir, "settlement-000001")
    assert "结算单" in json.dumps(slip["lines"], ensure_ascii=False)


def test_qr_payments_on_a_paperless_terminal(till: EmulatedTill, clock: FakeClock, var_dir: Path) -> None:
    sale = till.sale(800, tender="qr")
    till.enter_code(payment_code("00"))
    till.runtime.run_until(lambda: till.flow.state is CheckoutState.IDLE, io_wait=0.01)
    assert sale.outcome == "APPROVED"
    assert "扫码支付凭证" in json.dumps(_doc(var_dir, f"{sale.txn_id}-cardholder")["lines"], ensure_ascii=False)
