"""Issue 9, "approvals, operators and the audit trail": the misuse reproducers, on a whole till.

Each test is written against the till's public surface (Till.approve, the flow's privileged steps,
the journal on disk), so it ran, and failed, before the fix too."""

from __future__ import annotations

import os
import sqlite3
import stat
from pathlib import Path

import pytest

from drivers.acquirer.events import HostMessage
from drivers.record import field_names
from emulator.acquirer.simulator import AcquirerSimulator
from firmware_profiles import load_profile
from sim.wiring import EmulatedTill, build_emulated_till
from terminal.clock import FakeClock
from terminal.errors import InputError, TerminalError
from terminal.security.access import AccessDenied, Approval
from tests.system.conftest import SUPERVISOR

PAN = "6228480402564890018"  # 19 digits, Luhn-valid


def _approved(till: EmulatedTill, amount: int = 1000) -> str:
    assert till.emulators.card_reader is not None
    till.emulators.card_reader.present("approved")
    sale = till.sale(amount, io_wait=2.0)
    assert sale.outcome == "APPROVED"
    return sale.txn_id


def _hand_made(**values: object) -> Approval:
    """An Approval built outside the access control, whatever fields it has."""
    defaults: dict[str, object] = {"id": "f" * 32, "txn_id": None, "expires_at": 1e12, **values}
    return Approval(**{name: defaults[name] for name in field_names(Approval)})  # type: ignore[arg-type]


def test_a_hand_made_approval_voids_reprints_and_settles_nothing(till: EmulatedTill) -> None:
    txn = _approved(till)
    forged = {op: _hand_made(operation=op, approver="nobody", reason="x", txn_id=txn)
              for op in ("void", "reprint", "settle")}
    with pytest.raises(AccessDenied):
        till.flow.begin_credit("void", txn, 1000, approval=forged["void"])
    with pytest.raises(AccessDenied):
        till.flow.reprint(approval=forged["reprint"])
    with pytest.raises(AccessDenied):
        till.flow.start_settlement(approval=forged["settle"])
    assert [str(e["result"]).split(" ")[0] for e in till.audit.entries()] == ["refused"] * 3


def test_an_approval_for_one_sale_voids_no_other_and_only_once(till: EmulatedTill) -> None:
    a, b = _approved(till, 1000), _approved(till, 1000)
    approval = till.approve("void", operator_id="supervisor-1", pin="8888", reason="test", txn_id=a)
    with pytest.raises(AccessDenied):
        till.flow.begin_credit("void", b, 1000, approval=approval)
    approval = till.approve("void", operator_id="supervisor-1", pin="8888", reason="test", txn_id=a)
    till.flow.begin_credit("void", a, 1000, approval=approval)
    till.runtime.run_until(lambda: till.flow.state.name == "IDLE", io_wait=2.0)
    with pytest.raises(AccessDenied):
        till.flow.begin_credit("void", b, 1000, approval=approval)  # spent
    record = till.journal.get(b)
    assert record is not None and record.state == "APPROVED"


def test_many_wrong_pins_lock_the_supervisor_out(till: EmulatedTill) -> None:
    for _ in range(20):  # the issue tried 200; 20 is plenty past the lockout
        with pytest.raises(AccessDenied):
            till.approve("settle", operator_id="supervisor-1", pin="0000", reason="guess")
    with pytest.raises(AccessDenied):
        till.approve("settle", operator_id="supervisor-1", pin="8888", reason="the right PIN, locked out")


def test_operators_are_in_var_0600_not_in_the_shipped_profile(till: EmulatedTill, var_dir: Path) -> None:
    assert load_profile("terminal", "emulated-counter")["operators"] == []
    path = var_dir / "operators.json"
    assert stat.S_IMODE(os.stat(path).st_mode) == 0o600


def test_a_cashier_signs_in_where_the_profile_says_so(clock: FakeClock, var_dir: Path) -> None:
    with build_emulated_till(clock=clock, var_dir=var_dir, overrides={"cashier_sign_in": True}) as till:
        assert till.emulators.card_reader is not None
        with pytest.raises(AccessDenied):
            till.sale(1000, io_wait=2.0)
        till.sign_in("cashier-1", "1111")
        assert _approved(till)


@pytest.mark.parametrize("damage", ["DELETE FROM audit WHERE seq > 1", "DELETE FROM audit", "DROP TABLE audit"])
def test_a_truncated_audit_trail_is_caught_at_boot_and_blocks_settlement(
    clock: FakeClock, var_dir: Path, damage: str,
) -> None:
    with build_emulated_till(clock=clock, var_dir=var_dir) as till:
        _approved(till)
        for _ in range(2):  # audited: granted, used
            till.flow.reprint(approval=till.approve("reprint", operator_id="supervisor-1", pin="8888",
                                                         reason="test"))
            till.runtime.run_until(lambda: not till.flow.spool.busy, io_wait=2.0)
    db = sqlite3.connect(var_dir / "journal.sqlite3")
    db.execute(damage)
    db.commit()
    db.close()
    with build_emulated_till(clock=clock, var_dir=var_dir) as till, \
            pytest.raises(TerminalError, match="audit trail broken"):
        till.settle(**SUPERVISOR, io_wait=2.0)


def test_card_numbers_are_masked_in_any_logged_field() -> None:
    msg = HostMessage(mti="0200", fields={"11": "000123", "48": f"ref {PAN} x", "60": f"{PAN}=2512201",
                                          "63": f"AB{PAN[:16]}CD"})
    shown = repr(msg)
    assert PAN not in shown and PAN[:16] not in shown and "2512201" not in shown
    assert "000123" in shown and PAN[-4:] in shown


def test_the_settlement_slip_prints_the_audit_head_and_count(till: EmulatedTill) -> None:
    _approved(till)
    result = till.settle(**SUPERVISOR, io_wait=2.0)
    assert result is not None and result.balanced
    count, head = till.audit.head()
    assert till.emulators.printer is not None
    slip = till.emulators.printer.pages[-1].text
    assert "AUDIT ENTRIES" in slip and str(count) in slip and head[:32] in slip and head[32:] in slip


def test_a_supervisor_acknowledges_a_broken_trail_and_money_moves_again(clock: FakeClock, var_dir: Path) -> None:
    with build_emulated_till(clock=clock, var_dir=var_dir) as till:
        _approved(till)
        till.flow.reprint(approval=till.approve("reprint", operator_id="supervisor-1", pin="8888", reason="t"))
        till.runtime.run_until(lambda: not till.flow.spool.busy, io_wait=2.0)
    db = sqlite3.connect(var_dir / "journal.sqlite3")
    db.execute("DELETE FROM audit WHERE seq = (SELECT MAX(seq) FROM audit)")
    db.commit()
    db.close()
    with build_emulated_till(clock=clock, var_dir=var_dir) as till:
        with pytest.raises(AccessDenied, match="audit trail broken"):
            till.sale(1000, io_wait=2.0)
        assert "missing" in till.acknowledge_audit(**SUPERVISOR, reason="checked with the merchant")
        _approved(till)
        assert till.settle(**SUPERVISOR, io_wait=2.0).balanced
    with build_emulated_till(clock=clock, var_dir=var_dir) as till:  # and it stays healed
        assert till.audit.broken == ""
        with pytest.raises(InputError, match="nothing to acknowledge"):
            till.acknowledge_audit(**SUPERVISOR, reason="again")


def test_the_host_keeps_the_audit_anchor_and_sees_a_trail_that_lost_entries(
    clock: FakeClock, var_dir: Path,
) -> None:
    host = AcquirerSimulator()
    host.start()
    try:
        overrides = {"host.url": host.url}
        with build_emulated_till(clock=clock, var_dir=var_dir, overrides=overrides) as till:
            _approved(till)
            for _ in range(3):
                till.approve("reprint", operator_id="supervisor-1", pin="8888", reason="t")
            assert till.settle(**SUPERVISOR, io_wait=2.0).balanced
            assert host.settlements[-1].audit == till.audit.head()
        # The whole trail and its anchor file deleted: to the till that is a new one...
        db = sqlite3.connect(var_dir / "journal.sqlite3")
        db.execute("DELETE FROM audit")
        db.commit()
        db.close()
        (var_dir / "audit.head").unlink()
        with build_emulated_till(clock=clock, var_dir=var_dir, overrides=overrides) as till:
            # Another amount: a new card emulator restarts its ATC, and the same ATC, amount and
            # date make the first sale's ARQC again, which the host refuses as replayed.
            _approved(till, 2000)
            assert till.settle(**SUPERVISOR, io_wait=2.0).balanced
        # ...but not to the host, which kept the count of the last settlement.
        assert [(r[2], r[3]) for r in host.audit_regressions] == [(5, 2)]
    finally:
        host.stop()
