"""Issue 9, "One writer, damaged storage, full disks", at the level of a whole till: one writer per
var dir, a journal found damaged at boot, and a full disk that never changes the money outcome."""

from __future__ import annotations

import errno
import os
import sqlite3
import subprocess
import sys
from pathlib import Path

import pytest

from sim.wiring import EmulatedTill, build_emulated_till
from terminal.checkout.table import CheckoutState
from terminal.clock import FakeClock
from terminal.errors import JournalError
from terminal.journal import DISK_FULL_MESSAGE, JournalDamaged, JournalLocked
from tests.support.full_disk import FullDisk

S = CheckoutState
REPO = Path(__file__).resolve().parents[2]


def _host_net(till: EmulatedTill, stan: int) -> int:
    host = till.emulators.host
    assert host is not None
    return int(host.net_effect(str(till.terminal["terminal_id"]), f"{stan:06d}"))


# -- one writer -------------------------------------------------------------------------------------
def test_a_second_till_on_the_same_var_is_refused_and_the_first_sale_in_flight_goes_on(
    clock: FakeClock, var_dir: Path,
) -> None:
    with build_emulated_till(clock=clock, var_dir=var_dir) as first:
        assert first.emulators.card_reader is not None
        first.emulators.card_reader.present("approved-swipe")
        first.flow.begin_sale(1500)
        first.runtime.run_until(lambda: first.flow.state is S.AUTHORIZING)  # a request on the wire
        # A real second process: `till demo` on the same var dir gets one line and exit 2.
        second = subprocess.run(
            [sys.executable, "-m", "terminal.cli", "demo", "--var", str(var_dir)], cwd=REPO,
            env={**os.environ, "PYTHONPATH": str(REPO)}, capture_output=True, text=True, timeout=120)
        assert second.returncode == 2, second.stderr
        lines = second.stderr.strip().splitlines()
        assert len(lines) == 1 and "another till" in lines[0] and str(var_dir) in lines[0], second.stderr
        assert f"pid {os.getpid()}" in lines[0]
        with pytest.raises(JournalLocked):  # and in-process, before it touched a device or the host
            build_emulated_till(clock=clock, var_dir=var_dir)
        first.runtime.run_until(lambda: first.flow.state in (S.IDLE, S.SIGNATURE_REQUIRED, S.PRINTER_PAUSED))
        sale = first.flow.completed[-1]
        assert sale.outcome == "APPROVED"
        record = first.journal.get(sale.txn_id)
        assert record is not None and record.state == "APPROVED" and _host_net(first, record.stan) == 1500


# -- damage -----------------------------------------------------------------------------------------
def test_a_journal_with_an_undecodable_byte_refuses_to_boot_with_what_to_do(clock: FakeClock, var_dir: Path) -> None:
    with build_emulated_till(clock=clock, var_dir=var_dir) as till:
        assert till.emulators.card_reader is not None
        till.emulators.card_reader.present("approved")
        assert till.sale(700).outcome == "APPROVED"
    db = sqlite3.connect(var_dir / "journal.sqlite3")
    db.execute("UPDATE transactions SET pan_last4 = CAST(x'30ff3130' AS TEXT)")
    db.commit()
    db.close()
    with pytest.raises(JournalDamaged, match="call support"):
        build_emulated_till(clock=clock, var_dir=var_dir)


# -- full disks -------------------------------------------------------------------------------------
def test_below_the_disk_reserve_a_new_sale_is_refused_at_once(till: EmulatedTill) -> None:
    till.journal.free_bytes = lambda: 3_000_000  # the profile keeps 20 MB
    host = till.emulators.host
    assert host is not None
    booked = len(host.ledger)
    with pytest.raises(JournalError, match="disk nearly full") as refused:
        till.sale(1200)
    assert "磁盘空间不足" in str(refused.value) and DISK_FULL_MESSAGE in str(refused.value)
    assert till.flow.state is S.IDLE and len(host.ledger) == booked  # nothing went to the host
    till.journal.free_bytes = lambda: 10**12
    assert till.emulators.card_reader is not None
    till.emulators.card_reader.present("approved")
    assert till.sale(1200).outcome == "APPROVED"


@pytest.mark.parametrize("card", ["approved-swipe", "approved"])
def test_an_approval_the_journal_cannot_take_is_reversed_at_once_and_again_at_boot(
    clock: FakeClock, var_dir: Path, card: str,
) -> None:
    """The disk fills as the host's approval arrives (swipe: the answer's write; chip: the card's
    confirmation). Not on disk is not approved: the cashier is not told APPROVED, the reversal goes
    out from memory at once, and the row still SENT or AUTHORIZED on disk is reversed again at boot."""
    with build_emulated_till(clock=clock, var_dir=var_dir) as till:
        assert till.emulators.card_reader is not None
        till.emulators.card_reader.present(card)
        disk = FullDisk(till.journal, full_from="SET state = 'APPROVED'" if card == "approved" else
                        "UPDATE transactions SET state = ?, response_code")
        sale = till.sale(2500)
        assert sale.outcome != "APPROVED" and sale.reason, sale
        assert till.flow.state is S.IDLE and not till.journal.unresolved_reversals()
        stan = sale.record.stan if sale.record is not None else None
        assert stan is not None and disk.refused
        assert _host_net(till, stan) == 0  # reversed at once, not at the next boot
        disk.free()
        on_disk = till.journal.get(sale.txn_id)
        assert on_disk is not None and on_disk.state in ("SENT", "AUTHORIZED")  # the approval never reached disk
    with build_emulated_till(clock=clock, var_dir=var_dir) as again:
        record = again.journal.get(sale.txn_id)
        assert record is not None and record.state == "REVERSED" and not again.journal.unresolved_reversals()


def test_a_receipt_the_journal_cannot_record_does_not_change_an_approval(clock: FakeClock, var_dir: Path) -> None:
    with build_emulated_till(clock=clock, var_dir=var_dir) as till:
        assert till.emulators.card_reader is not None
        till.emulators.card_reader.present("approved")
        disk = FullDisk(till.journal, full_from="INSERT INTO prints")
        sale = till.sale(900)
        assert sale.outcome == "APPROVED" and till.flow.state is S.IDLE and disk.refused
        disk.free()
        record = till.journal.get(sale.txn_id)
        assert record is not None and record.state == "APPROVED" and _host_net(till, record.stan) == 900
    with build_emulated_till(clock=clock, var_dir=var_dir) as again:  # the copies are owed, and printed
        assert not again.journal.receipts_owed()


def test_the_demo_survives_a_receipt_picture_it_cannot_write(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    """A full disk when the receipt pictures are saved: the sale is decided and printed already,
    so the demo says the picture is missing and still reports the approval (exit 0)."""
    from emulator.printer.render import RenderedPage
    from sim.demo import run_demo

    def disk_full(self: RenderedPage, path: object) -> None:
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(RenderedPage, "save_png", disk_full)
    status = run_demo(card="approved", amount=None, as_json=True, profile="emulated-counter",
                      var_dir=tmp_path / "var")
    out = capsys.readouterr().out
    assert status == 0
    assert '"outcome": "APPROVED"' in out and "picture not saved" in out
