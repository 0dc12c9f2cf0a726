"""Printing never blocks the machine: while a receipt is at the printer, the runtime still
delivers every other source's facts (here a FakeClock deadline) to the checkout."""

from __future__ import annotations

from pathlib import Path

from emulator.printer.emulator import PrinterEmulator
from firmware_profiles import load_profile
from sim.wiring import EmulatedTill, build_emulated_till
from terminal.checkout.table import CheckoutState
from terminal.clock import Deadline, FakeClock
from terminal.receipts.layout import Copy

S = CheckoutState
XOFF, XON = b"\x13", b"\x11"


class BusyPrinter:
    """A printer that, once job bytes arrive, keeps saying XOFF (busy) until the test lets it go."""

    def __init__(self) -> None:
        self.emulator = PrinterEmulator(load_profile("printer", "cn-80mm"))
        self.holding = False
        self.released = False
        self._xon = False

    def receive(self, data: bytes) -> None:
        if not self.released and data[:2] != b"\x10\x04":  # a status request is not the job
            self.holding = True
        self.emulator.receive(data)

    def transmit(self) -> bytes:
        out = self.emulator.transmit()
        if self.holding:
            return out + XOFF
        if self._xon:
            self._xon = False
            return out + XON
        return out

    def release(self) -> None:
        self.holding, self.released, self._xon = False, True, True

    def close(self) -> None:
        self.emulator.close()


class Recorder:
    """The runtime's handler, recording what it delivers and in which state."""

    def __init__(self, till: EmulatedTill) -> None:
        self.till, self.seen = till, list[tuple[object, CheckoutState]]()

    def handle(self, event: object) -> None:
        self.seen.append((event, self.till.flow.state))
        self.till.flow.handle(event)


def _state(till: EmulatedTill) -> CheckoutState:
    return till.flow.state


def test_a_deadline_is_delivered_while_a_receipt_prints(clock: FakeClock, var_dir: Path) -> None:
    peer = BusyPrinter()
    with build_emulated_till(clock=clock, var_dir=var_dir, peers={"printer": peer}) as till:
        recorder = Recorder(till)
        till.runtime.handler = recorder
        assert till.emulators.card_reader is not None
        till.emulators.card_reader.present("approved")
        sale = till.sale(1200)  # returns once nothing more happens: the printer is busy
        assert _state(till) is S.PRINTING and sale.outcome == "APPROVED" and peer.holding
        assert sale.printed == []

        marker = Deadline(name="test-marker", token=-1)
        clock.call_later(5.0, marker)
        clock.advance(5.0)
        assert till.runtime.step()  # the machine is not stuck inside the print job
        assert (marker, S.PRINTING) in recorder.seen

        peer.release()
        assert till.runtime.run_until(lambda: till.flow.state is S.IDLE, io_wait=0.01)
        assert [(p.copy, p.reprint) for p in sale.printed] == [(Copy.MERCHANT, False), (Copy.CARDHOLDER, False)]
        assert len(peer.emulator.pages) == 2
