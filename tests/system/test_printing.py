"""Receipts through a printer that fails the way real ones do: the sale stays approved, the
interrupted copy is printed again whole and marked, nothing is printed twice without the marker."""

from __future__ import annotations

from pathlib import Path

import pytest

from emulator.printer.emulator import PrinterEmulator
from firmware_profiles import load_profile
from sim.wiring import EmulatedTill, build_emulated_till
from terminal.checkout.table import LIMITS, CheckoutState
from terminal.clock import FakeClock
from terminal.receipts.layout import Copy
from tests.system.conftest import approve

S = CheckoutState


class PaperRunsOut:
    """A printer whose roll ends after `after` bytes of the next job (paper-out mid-receipt)."""

    def __init__(self, emulator: PrinterEmulator, after: int) -> None:
        self.emulator, self.after, self.seen = emulator, after, 0

    def receive(self, data: bytes) -> None:
        if self.after and data[:2] != b"\x10\x04":  # status requests do not use paper
            room = max(0, self.after - self.seen)
            self.seen += len(data)
            if self.seen > self.after:
                self.emulator.receive(data[:room])
                self.emulator.set_paper("out")
                self.after = 0
                data = data[room:]
        self.emulator.receive(data)

    def transmit(self) -> bytes:
        return self.emulator.transmit()

    def close(self) -> None:
        self.emulator.close()


@pytest.fixture
def printer() -> PrinterEmulator:
    return PrinterEmulator(load_profile("printer", "cn-80mm"))


def _state(till: EmulatedTill) -> CheckoutState:
    return till.flow.state  # a call, so mypy does not narrow the state across actions


def _all_text(printer: PrinterEmulator) -> str:
    return "".join(p.text for p in printer.pages) + printer.current_page().text


def test_paper_out_before_the_receipt_pauses_then_prints_unmarked(
    clock: FakeClock, var_dir: Path, printer: PrinterEmulator
) -> None:
    with build_emulated_till(clock=clock, var_dir=var_dir, peers={"printer": printer}) as till:
        assert till.emulators.card_reader is not None
        printer.set_paper("out")
        till.emulators.card_reader.present("approved")
        sale = till.sale(1500)
        assert _state(till) is S.PRINTER_PAUSED and sale.outcome == "APPROVED"
        record = till.journal.get(sale.txn_id)
        assert record is not None and record.state == "APPROVED"  # the money side is done
        assert printer.pages == [] and sale.printed == []

        clock.advance(LIMITS.printer_recheck_s)  # still out: stays paused, asks again later
        till.runtime.step()
        assert _state(till) is S.PRINTER_PAUSED

        printer.set_paper("ok")
        clock.advance(LIMITS.printer_recheck_s)
        assert till.runtime.run_until(lambda: till.flow.state is S.IDLE, io_wait=0.01)
        assert [(p.copy, p.reprint) for p in sale.printed] == [(Copy.MERCHANT, False), (Copy.CARDHOLDER, False)]
        assert "REPRINT" not in _all_text(printer)


def test_paper_out_mid_receipt_reprints_that_copy_whole_and_marked(clock: FakeClock, var_dir: Path) -> None:
    emulator = PrinterEmulator(load_profile("printer", "cn-80mm"))
    runs_out = PaperRunsOut(emulator, after=600)
    with build_emulated_till(clock=clock, var_dir=var_dir, peers={"printer": runs_out}) as till:
        assert till.emulators.card_reader is not None
        till.emulators.card_reader.present("approved")
        sale = till.sale(2500)
        assert _state(till) is S.PRINTER_PAUSED and sale.printed == []
        assert any("PRINTING PAUSED" in m for m in sale.messages)

        emulator.set_paper("ok")
        assert till.flow.resume_printing_now()
        assert till.runtime.run_until(lambda: till.flow.state is S.IDLE, io_wait=0.01)
        assert [(p.copy, p.reprint) for p in sale.printed] == [(Copy.MERCHANT, True), (Copy.CARDHOLDER, False)]
        text = _all_text(emulator)
        assert text.count("重打印 REPRINT") == 1
        assert text.count("CARDHOLDER COPY") == 1  # the copy that never failed is printed once
        prints = till.journal._db.execute("SELECT copy, reprint, outcome FROM prints ORDER BY id").fetchall()
        assert [(c, r) for c, r, _ in prints] == [("merchant", 0), ("merchant", 1), ("cardholder", 0)]
        assert "PaperOut" in prints[0][2]


def test_operator_can_abandon_receipts_and_reprint_later(
    clock: FakeClock, var_dir: Path, printer: PrinterEmulator
) -> None:
    with build_emulated_till(clock=clock, var_dir=var_dir, peers={"printer": printer}) as till:
        assert till.emulators.card_reader is not None
        printer.open_cover()
        till.emulators.card_reader.present("approved")
        sale = till.sale(800)
        assert _state(till) is S.PRINTER_PAUSED
        assert not till.flow.resume_printing_now()  # cover still open
        till.flow.abandon_receipts(approval=approve(till, "abandon_receipts", "printer broken"))
        assert _state(till) is S.IDLE and sale.outcome == "APPROVED"

        printer.close_cover()
        assert till.flow.reprint(Copy.CARDHOLDER, approval=approve(till, "reprint")) == []
        assert "重打印 REPRINT" in printer.pages[-1].text and "CARDHOLDER COPY" in printer.pages[-1].text
