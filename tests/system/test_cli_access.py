"""`till operator add|list|remove|set-pin` and `till audit verify`, as a user runs them."""

from __future__ import annotations

import sqlite3
from pathlib import Path

import pytest

from tests.system.conftest import run_cli as _run


def test_operators_are_added_listed_re_pinned_and_removed(capsys: pytest.CaptureFixture[str],
                                                          monkeypatch: pytest.MonkeyPatch, var_dir: Path) -> None:
    var = ["--var", str(var_dir)]
    assert _run(capsys, monkeypatch, "operator", "add", "sup-7", "--role", "supervisor", *var, stdin="482913\n")[0] == 0
    assert "482913" not in (var_dir / "operators.json").read_text()
    code, out, _ = _run(capsys, monkeypatch, "operator", "list", *var)
    assert code == 0 and out.split() == ["sup-7", "supervisor", "ok"]
    assert _run(capsys, monkeypatch, "operator", "set-pin", "sup-7", *var, stdin="739102\n")[0] == 0
    assert _run(capsys, monkeypatch, "operator", "remove", "sup-7", *var)[0] == 0
    assert _run(capsys, monkeypatch, "operator", "list", *var)[1] == ""


@pytest.mark.parametrize(("args", "stdin", "needle"), [
    (["add", "x", "--role", "cashier"], "12\n", "4 to 12 digits"),
    (["add", "x", "--role", "cashier"], "12ab\n", "4 to 12 digits"),
    (["remove", "nobody"], "", "no operator nobody"),
    (["set-pin", "nobody"], "1234\n", "no operator nobody"),
])
def test_bad_operator_commands_get_one_line_and_exit_2(capsys: pytest.CaptureFixture[str],
                                                       monkeypatch: pytest.MonkeyPatch, var_dir: Path,
                                                       args: list[str], stdin: str, needle: str) -> None:
    assert _run(capsys, monkeypatch, "operator", "add", "keeper", "--role", "cashier", "--var", str(var_dir),
                stdin="4321\n")[0] == 0
    code, _, err = _run(capsys, monkeypatch, "operator", *args, "--var", str(var_dir), stdin=stdin)
    assert code == 2 and needle in err and len(err.splitlines()) == 1


def test_audit_verify_says_ok_then_broken_with_the_reason(capsys: pytest.CaptureFixture[str],
                                                          monkeypatch: pytest.MonkeyPatch, var_dir: Path) -> None:
    assert _run(capsys, monkeypatch, "audit", "verify", "--var", str(var_dir))[0] == 2  # no journal yet
    assert _run(capsys, monkeypatch, "demo", "--var", str(var_dir))[0] == 0
    from sim.wiring import build_emulated_till  # a few audited decisions on that var/
    from terminal.clock import FakeClock

    with build_emulated_till(clock=FakeClock(), var_dir=var_dir) as till:
        for _ in range(3):
            till.approve("reprint", operator_id="supervisor-1", pin="8888", reason="t")
    code, out, _ = _run(capsys, monkeypatch, "audit", "verify", "--var", str(var_dir))
    assert code == 0 and out.startswith("audit trail ok: 3 entries")
    db = sqlite3.connect(var_dir / "journal.sqlite3")
    db.execute("DELETE FROM audit WHERE seq = 3")
    db.commit()
    db.close()
    code, out, _ = _run(capsys, monkeypatch, "audit", "verify", "--var", str(var_dir))
    assert code == 1 and "BROKEN: 1 of 3 anchored entries are missing" in out


def test_operator_commands_on_a_var_without_operators_say_so(capsys: pytest.CaptureFixture[str],
                                                              monkeypatch: pytest.MonkeyPatch, var_dir: Path) -> None:
    code, _, err = _run(capsys, monkeypatch, "operator", "list", "--var", str(var_dir / "none"))
    assert code == 2 and "till operator add" in err and not (var_dir / "none").exists()
