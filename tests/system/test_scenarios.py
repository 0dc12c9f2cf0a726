"""`till scenario run`: every catalogue scenario holds, bad files are one line and exit 2, a seed
replays exactly; and `till host` serves the acquirer simulator until told to stop."""

from __future__ import annotations

import io
import json
import socket
from pathlib import Path
from typing import Any

import pytest

from sim.scenario.runner import run_scenario
from terminal.cli import main
from tests.support.processes import served

CATALOGUE = Path(__file__).resolve().parents[2] / "sim" / "scenarios"
FILES = sorted(CATALOGUE.glob("*.toml"))
ROWS = {"00", "01", "02", "03", "04", "05", "08", "10", "11", "12", "13", "17",  # happy path + fault matrix rows
        "20", "21", "22", "23",  # QR payments: customer code, merchant code, power loss, gateway faults
        "24", "25"}  # 电签: sign, blank, cancel to paper, upload; every upload refused


def _run(path: Path, *, seed: int | None = None) -> tuple[int, dict[str, Any], str]:
    out, err = io.StringIO(), io.StringIO()
    code = run_scenario(path, seed=seed, as_json=True, out=out, err=err)
    return code, json.loads(out.getvalue()), err.getvalue()


def _write(tmp_path: Path, text: str, name: str = "s.toml") -> Path:
    path = tmp_path / name
    path.write_text(text, encoding="utf-8")
    return path


def test_the_catalogue_covers_the_fault_matrix_rows() -> None:
    assert {f.name[:2] for f in FILES} == ROWS


@pytest.mark.parametrize("path", FILES, ids=lambda p: p.stem)
def test_catalogue_scenario_holds(path: Path) -> None:
    code, report, err = _run(path)
    assert report["failures"] == [] and err == ""
    assert code == 0 and report["ok"] is True
    inv = report["invariants"]
    assert inv["ok"] and inv["journal_integrity"] == "ok" and inv["open_batch"]["ok"]
    assert inv["host_net"] or inv["wallet_net"], "every catalogue scenario sends at least one transaction"
    for txn in inv["host_net"]:
        assert txn["host"] in ("0.00", txn["amount"])  # never more than the sale
    for order in inv["wallet_net"]:  # one effect per QR order: what the journal says, never more than paid
        assert order["ok"] and float(order["wallet"]) <= float(order["amount"])
    expects = [s for s in report["steps"] if s["action"] == "expect"]
    assert expects and all(s["ok"] for s in expects)


def test_the_same_seed_replays_exactly_and_another_seed_differs() -> None:
    path = CATALOGUE / "00-happy-path.toml"
    first, again, other = _run(path, seed=11), _run(path, seed=11), _run(path, seed=12)
    assert first == again
    amounts = [[s.get("amount") for s in r[1]["steps"] if s["args"] == {"card": "approved-swipe", "amount": "random"}]
               for r in (first, other)]
    assert amounts[0] != amounts[1]  # the random step really draws from the seed


def test_text_output_and_a_failed_expectation_exit_1(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    path = _write(tmp_path, """
[scenario]
name = "wrong-expectation"
[[step]]
sale = { card = "declined", amount = "5.00" }
[[step]]
expect = { outcome = "APPROVED", state = "IDLE" }
""")
    assert main(["scenario", "run", str(path)]) == 1
    out, err = capsys.readouterr()
    assert "FAILED" in out and "sale-1" in out
    assert err.strip() == ("till: scenario wrong-expectation: step 2: "
                           "outcome of sale-1: expected 'APPROVED', got 'DECLINED'")


def test_a_refusal_must_be_expected(tmp_path: Path) -> None:
    path = _write(tmp_path, """
[scenario]
name = "unexpected-refusal"
[[step]]
sale = { amount = "5.00" }
[[step]]
sale = { card = "approved", amount = "5.00" }
[[step]]
operator = "cancel"
[[step]]
power = { loss_at = "SETTLING" }
""")
    code, report, err = _run(path)
    assert code == 1
    assert report["steps"][1]["refused"].startswith("a sale can only start when idle")
    assert any("step 2: the terminal refused" in f for f in report["failures"])
    assert any("SETTLING never happened" in f for f in report["failures"])
    assert err.count("\n") == len(report["failures"])


def test_paper_out_at_the_cardholder_copy_and_power_off_on(tmp_path: Path) -> None:
    path = _write(tmp_path, """
[scenario]
name = "paper-and-power"
[[step]]
printer = { paper_out_at = "cardholder" }
[[step]]
sale = { card = "approved", amount = "25.00" }
[[step]]
expect = { state = "PRINTER_PAUSED", outcome = "APPROVED", printed = ["merchant"], shown = "PRINTING PAUSED" }
[[step]]
power = "off"
[[step]]
expect = { state = "OFF", journal = { APPROVED = 1 }, pages = 1 }
[[step]]
power = "on"
[[step]]
note = "the roll is still empty after the reboot"
operator = "reprint"
[[step]]
expect = { state = "IDLE", reprint_pages = 0, pages = 1 }
[[step]]
printer = "paper-loaded"
[[step]]
operator = "reprint"
[[step]]
expect = { reprint_pages = 1, pages = 2, host_net = "25.00" }
""")
    code, report, _ = _run(path)
    assert report["failures"] == [] and code == 0
    assert [s["state"] for s in report["steps"][3:6]] == ["OFF", "OFF", "IDLE"]
    no_paper, printed = report["steps"][6], report["steps"][9]
    assert no_paper["from"] == "journal" and no_paper["problems"]  # paper out: the reprint did not print
    assert printed["from"] == "journal" and printed["problems"] == []


def test_settle_forwards_stored_offline_sales_first(tmp_path: Path) -> None:
    path = _write(tmp_path, """
[scenario]
name = "settle-forwards-first"
[[step]]
host = "unreachable"
[[step]]
sale = { card = "approved-swipe", amount = "10.00" }
[[step]]
expect = { outcome = "APPROVED", response_code = "Y1", pending_advices = 1, host_net = "0.00" }
[[step]]
host = "reachable"
[[step]]
operator = "settle"
[[step]]
expect = { pending_advices = 0, settlement = { balanced = true, sales_count = 1, sales_amount = "10.00" } }
""")
    code, report, _ = _run(path)
    assert report["failures"] == [] and code == 0
    assert [t["host"] for t in report["invariants"]["host_net"]] == ["10.00"]


BAD = [
    ('[scenario]\nname = "x"\n[[step]]\nsael = { card = "approved", amount = "1.00" }\n',
     "step 1: unknown action 'sael'"),
    ('[scenario]\nname = "x"\n[[step]]\nadvance = 1\n[[step]]\nsale = { card = "nope", amount = "1.00" }\n',
     "step 2: sale: unknown test card 'nope'"),
    ('[scenario]\nname = "x"\n[[step]]\nsale = { card = "approved", amount = "1.234" }\n', "step 1: sale: amount"),
    ('[scenario]\nname = "x"\n[[step]]\nsale = { card = "approved", amount = "99999999" }\n', "limit"),
    ('[scenario]\nname = "x"\n[[step]]\nadvance = -3\n', "step 1: advance"),
    ('[scenario]\nname = "x"\n[[step]]\nhost = "sleepy"\n', "step 1: host: unknown host action 'sleepy'"),
    ('[scenario]\nname = "x"\n[[step]]\nhost = { drop_responses = 0 }\n', "step 1: host: drop_responses"),
    ('[scenario]\nname = "x"\n[[step]]\nprinter = { paper_out_at = "customer" }\n', "step 1: printer"),
    ('[scenario]\nname = "x"\n[[step]]\npower = { loss_at = "LUNCH" }\n', "step 1: power: loss_at"),
    ('[scenario]\nname = "x"\n[[step]]\npower = "off"\n[[step]]\noperator = "settle"\n',
     "step 2: operator: the terminal is off"),
    ('[scenario]\nname = "x"\n[[step]]\noperator = "void"\n', "step 1: operator"),
    ('[scenario]\nname = "x"\n[[step]]\nexpect = { state = "IDEL" }\n', "step 1: expect: state"),
    ('[scenario]\nname = "x"\n[[step]]\nexpect = { colour = "red" }\n', "step 1: expect: unknown check 'colour'"),
    ('[scenario]\nname = "x"\n[[step]]\nexpect = { sale = "sale-1" }\n', "step 1: expect: sale 'sale-1'"),
    ('[scenario]\nname = "x"\n[[step]]\nhost = "silent"\nadvance = 3\n', "step 1: one action per step"),
    ('[scenario]\nname = "x"\n[scenario.overrides]\n"limits.journal_capcity" = 3\n[[step]]\nadvance = 1\n',
     "unknown override 'limits.journal_capcity'"),
    ('[scenario]\nname = "x"\n[scenario.overrides]\n"limits.journal_capacity" = "abc"\n[[step]]\nadvance = 1\n',
     "override 'limits.journal_capacity'"),
    ('[scenario]\nname = "x"\n[scenario.overrides]\n"host.url" = "tcp://1.2.3.4:5"\n[[step]]\nadvance = 1\n',
     "set by the scenario runner"),
    ('[scenario]\nname = "x"\n', "no [[step]] entries"),
    ('[[step]]\nadvance = 1\n', "needs a [scenario] table"),
    ("this is [not toml\n", "not valid TOML"),
]


@pytest.mark.parametrize(("text", "needle"), BAD, ids=[n for _, n in BAD])
def test_bad_input_is_one_line_and_exit_2(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], text: str, needle: str
) -> None:
    path = _write(tmp_path, text)
    assert main(["scenario", "run", str(path), "--json"]) == 2
    out, err = capsys.readouterr()
    assert out == "" and err.count("\n") == 1 and needle in err and "Traceback" not in err


def test_missing_file_and_bad_seed(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["scenario", "run", str(tmp_path / "nope.toml")]) == 2
    assert main(["scenario", "run", str(CATALOGUE / "00-happy-path.toml"), "--seed", "-1"]) == 2
    out, err = capsys.readouterr()
    assert out == "" and err.count("\n") == 2 and "no such scenario file" in err and "--seed" in err


def test_host_bad_address(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["host", "--listen", "nonsense"]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "HOST:PORT" in err


def test_host_serves_until_sigterm() -> None:
    with served("host", "--listen", "127.0.0.1:0") as child:
        url = child.endpoint
        assert url.startswith("tcp://127.0.0.1:") and not url.endswith(":0")
        host, _, port = url.removeprefix("tcp://").rpartition(":")
        with socket.create_connection((host, int(port)), timeout=5):
            pass  # it accepts terminals


def test_a_device_step_controls_any_registered_family(tmp_path: Path) -> None:
    path = _write(tmp_path, """
[scenario]
name = "device-step"
description = "a card arrives through the generic device step"
[[step]]
sale = { amount = "12.00" }
[[step]]
device = { family = "card-reader", control = "present approved chip" }
[[step]]
advance = 1
[[step]]
expect = { state = "IDLE", outcome = "APPROVED", response_code = "00" }
""")
    code, report, err = _run(path)
    assert code == 0, (report, err)
    assert report["steps"][1]["reply"].startswith("ok:")


def test_a_device_step_names_a_registered_family(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    path = _write(tmp_path, """
[scenario]
name = "bad-device"
description = "no such family"
[[step]]
device = { family = "cash-drawer", control = "open" }
""")
    assert main(["scenario", "run", str(path), "--json"]) == 2
    err = capsys.readouterr().err
    assert "unknown device family 'cash-drawer'" in err and "card-reader" in err
