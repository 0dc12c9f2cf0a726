"""The `till` command as a user runs it: outputs, exit codes, one clear line for bad input."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from drivers.transport import open_port
from terminal.cli import main
from tests.support.processes import served


def _demo(capsys: pytest.CaptureFixture[str], var_dir: Path, *args: str) -> tuple[int, str, str]:
    code = main(["demo", "--var", str(var_dir), *args])
    out, err = capsys.readouterr()
    return code, out, err


def test_demo_json_is_one_object_with_both_receipts(capsys: pytest.CaptureFixture[str], var_dir: Path) -> None:
    code, out, err = _demo(capsys, var_dir, "--json", "--amount", "12.34")
    assert code == 0, err
    result = json.loads(out)  # exactly one JSON document, nothing else on stdout
    assert result["outcome"] == "APPROVED" and result["amount"] == "12.34" and result["response_code"] == "00"
    assert [r["copy"] for r in result["receipts"]] == ["merchant", "cardholder"]
    for receipt in result["receipts"]:
        assert Path(receipt["png"]).is_file() and receipt["png"].endswith(".png")
        assert isinstance(receipt["bytes"], int) and receipt["bytes"] > 200
        assert "￥12.34" in receipt["text"]
    assert Path(result["journal_path"]).is_file()


def test_demo_decline_is_a_correct_outcome(capsys: pytest.CaptureFixture[str], var_dir: Path) -> None:
    code, out, _ = _demo(capsys, var_dir, "--json", "--card", "declined")
    assert code == 0
    assert json.loads(out)["outcome"] == "DECLINED"


def test_demo_text_shows_outcome_and_receipts(capsys: pytest.CaptureFixture[str], var_dir: Path) -> None:
    code, out, _ = _demo(capsys, var_dir)
    assert code == 0
    assert "outcome: APPROVED" in out and "merchant copy" in out and "持卡人存根" in out


@pytest.mark.parametrize(
    ("args", "needle"),
    [
        (["--card", "no-such-card"], "unknown test card"),
        (["--amount", "abc"], "amount"),
        (["--amount", "-1"], "amount"),
        (["--amount", "0"], "amount"),
        (["--amount", "1.234"], "amount"),
        (["--amount", "99999999"], "limit"),
        (["--profile", "nope"], "unknown terminal profile"),
    ],
)
def test_bad_input_is_one_line_and_exit_2(
    capsys: pytest.CaptureFixture[str], var_dir: Path, args: list[str], needle: str
) -> None:
    code, out, err = _demo(capsys, var_dir, *args)
    assert code == 2 and out == ""
    assert err.count("\n") == 1 and needle in err and "Traceback" not in err


def test_cards_lists_the_catalogue(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["cards"]) == 0
    names = [line.split()[0] for line in capsys.readouterr().out.splitlines()]
    assert {"approved", "declined"} <= set(names)


def test_emulate_bad_profile_or_address(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["emulate", "printer", "--pty", "--profile", "nope"]) == 2
    assert main(["emulate", "printer", "--listen", "nonsense"]) == 2
    err = capsys.readouterr().err
    assert "unknown printer profile" in err and "HOST:PORT" in err


@pytest.mark.parametrize("where", [["--pty"], ["--listen", "127.0.0.1:0"]])
def test_emulate_serves_until_sigterm(where: list[str]) -> None:
    with served("emulate", "printer", *where) as child:
        endpoint = child.endpoint
        assert endpoint.startswith("/dev/pts/") or endpoint.startswith("socket://127.0.0.1:")
        if endpoint.endswith(":0"):
            pytest.fail("the listener should report its real port")
        port = open_port(endpoint, timeout=5)
        try:
            port.write(b"\x10\x04\x01")  # DLE EOT 1: is the printer online?
            assert port.read(1) == b"\x12"
        finally:
            port.close()


@pytest.mark.parametrize("card", ["approved-tap", "wrong-pin", "signature-required", "removed-before-second-ac",
                                  "tap-over-limit", "removed-during-read"])
def test_demo_gives_each_cards_outcome(capsys: pytest.CaptureFixture[str], var_dir: Path, card: str) -> None:
    from tests.system.test_cards import EXPECTED

    code, out, err = _demo(capsys, var_dir, "--json", "--card", card)
    assert code == 0, err
    result = json.loads(out)
    assert (result["outcome"], result["response_code"]) == EXPECTED[card][:2]
