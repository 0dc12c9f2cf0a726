"""`till operators add|list|disable|enable|reset-pin` (issue 13), in process: a disabled operator is
kept in var/operators.json for the audit trail, can no longer sign in or approve (refused and
audited as denied), and the last enabled supervisor cannot be disabled."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from sim.wiring import EmulatedTill
from terminal.security.access import NOT_ACCEPTED, AccessDenied
from tests.system.conftest import run_cli


def _operators(var: Path) -> dict[str, dict[str, object]]:
    return {str(o["id"]): o for o in json.loads((var / "operators.json").read_text())["operators"]}


def test_operators_are_disabled_kept_listed_re_enabled_and_re_pinned(capsys: pytest.CaptureFixture[str],
                                                                      monkeypatch: pytest.MonkeyPatch,
                                                                      var_dir: Path) -> None:
    var = ["--var", str(var_dir)]
    for op, role in (("sup-1", "supervisor"), ("sup-2", "supervisor"), ("cash-1", "cashier")):
        assert run_cli(capsys, monkeypatch, "operators", "add", op, "--role", role, *var, stdin="482913\n")[0] == 0
    code, out, err = run_cli(capsys, monkeypatch, "operators", "disable", "sup-2", *var)
    assert code == 0 and "disabled sup-2" in out, err
    assert _operators(var_dir)["sup-2"]["disabled"] is True and _operators(var_dir)["sup-1"]["disabled"] is False
    code, out, _ = run_cli(capsys, monkeypatch, "operators", "list", *var)
    assert code == 0 and [line.split() for line in out.splitlines()] == [
        ["sup-1", "supervisor", "ok"], ["sup-2", "supervisor", "disabled"], ["cash-1", "cashier", "ok"]]
    # A new PIN does not bring a disabled operator back; `operator set-pin` is the same command.
    assert run_cli(capsys, monkeypatch, "operators", "reset-pin", "sup-2", *var, stdin="739102\n")[0] == 0
    assert run_cli(capsys, monkeypatch, "operator", "set-pin", "sup-2", *var, stdin="739103\n")[0] == 0
    assert _operators(var_dir)["sup-2"]["disabled"] is True
    assert run_cli(capsys, monkeypatch, "operators", "enable", "sup-2", *var)[0] == 0
    assert _operators(var_dir)["sup-2"]["disabled"] is False


def test_the_last_enabled_supervisor_cannot_be_disabled(capsys: pytest.CaptureFixture[str],
                                                         monkeypatch: pytest.MonkeyPatch, var_dir: Path) -> None:
    var = ["--var", str(var_dir)]
    for op, role in (("sup-1", "supervisor"), ("sup-2", "supervisor"), ("cash-1", "cashier")):
        assert run_cli(capsys, monkeypatch, "operator", "add", op, "--role", role, *var, stdin="4321\n")[0] == 0
    assert run_cli(capsys, monkeypatch, "operators", "disable", "sup-1", *var)[0] == 0
    before = (var_dir / "operators.json").read_bytes()
    code, _, err = run_cli(capsys, monkeypatch, "operators", "disable", "sup-2", *var)  # sup-1 is disabled already
    assert code == 2 and len(err.splitlines()) == 1
    assert "不能停用最后一名主管" in err and "last enabled supervisor" in err and "settle" in err
    assert (var_dir / "operators.json").read_bytes() == before
    assert run_cli(capsys, monkeypatch, "operators", "disable", "cash-1", *var)[0] == 0  # cashiers: any of them


@pytest.mark.parametrize(("args", "needle"), [
    (["disable", "nobody"], "no operator nobody"),
    (["enable", "nobody"], "no operator nobody"),
    (["enable", "keeper"], "is not disabled"),
    (["reset-pin", "nobody"], "no operator nobody"),
])
def test_bad_operators_commands_get_one_line_and_exit_2(capsys: pytest.CaptureFixture[str],
                                                        monkeypatch: pytest.MonkeyPatch, var_dir: Path,
                                                        args: list[str], needle: str) -> None:
    var = ["--var", str(var_dir)]
    assert run_cli(capsys, monkeypatch, "operators", "add", "keeper", "--role", "cashier", *var, stdin="4321\n")[0] == 0
    code, _, err = run_cli(capsys, monkeypatch, "operators", *args, *var, stdin="1234\n")
    assert code == 2 and needle in err and len(err.splitlines()) == 1


def test_a_damaged_disabled_flag_is_a_damaged_file_not_an_enabled_operator(capsys: pytest.CaptureFixture[str],
                                                                           monkeypatch: pytest.MonkeyPatch,
                                                                           var_dir: Path) -> None:
    var = ["--var", str(var_dir)]
    assert run_cli(capsys, monkeypatch, "operators", "add", "sup-1", "--role", "supervisor", *var,
                   stdin="4321\n")[0] == 0
    path = var_dir / "operators.json"
    path.write_text(path.read_text().replace('"disabled": false', '"disabled": "no"'))
    code, _, err = run_cli(capsys, monkeypatch, "operators", "list", *var)
    assert code == 2 and "cannot be read" in err


def test_a_disabled_supervisor_is_refused_at_once_by_a_running_till_and_audited(
    till: EmulatedTill, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch, var_dir: Path,
) -> None:
    # The emulated var/ has supervisor-1 (8888) and supervisor-2 (7777); the till reads the file on every check.
    assert run_cli(capsys, monkeypatch, "operators", "disable", "supervisor-2", "--var", str(var_dir))[0] == 0
    with pytest.raises(AccessDenied, match="操作员已停用 / operator supervisor-2 is disabled"):
        till.approve("settle", operator_id="supervisor-2", pin="7777", reason="end of day")
    with pytest.raises(AccessDenied) as wrong:  # a wrong PIN learns nothing: the answer of an unknown id
        till.approve("settle", operator_id="supervisor-2", pin="0000", reason="end of day")
    assert NOT_ACCEPTED in str(wrong.value) and "disabled" not in str(wrong.value)
    with pytest.raises(AccessDenied, match="is disabled"):
        till.sign_in("supervisor-2", "7777")
    granted = till.approve("settle", operator_id="supervisor-1", pin="8888", reason="end of day")
    assert granted.approver == "supervisor-1"
    results = [(e["operation"], e["approver"], e["result"]) for e in till.audit.entries()]
    assert results[:3] == [("settle", "supervisor-2", "denied: operator disabled"),
                           ("settle", "supervisor-2", "denied: wrong PIN"),
                           ("sign_in", "supervisor-2", "denied: operator disabled")]
    assert str(results[3][2]).startswith("granted")
