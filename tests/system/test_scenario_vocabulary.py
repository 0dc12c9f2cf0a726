"""Issue 10's scenario vocabulary: card-link and printer faults, host latency in virtual time,
the display lines of every step, `shown = ""`, `not_shown`, the order advices were forwarded, and
the documented 90 % journal warning."""

from __future__ import annotations

import io
import json
import re
from pathlib import Path
from typing import Any

import pytest

from sim.scenario.format import ScenarioError, parse_scenario
from sim.scenario.runner import run_scenario
from terminal import i18n

ROOT = Path(__file__).resolve().parents[2]


def _run(tmp_path: Path, text: str, *, as_json: bool = True) -> tuple[int, Any, str]:
    path = tmp_path / "s.toml"
    path.write_text('[scenario]\nname = "vocab"\n' + text, encoding="utf-8")
    out, err = io.StringIO(), io.StringIO()
    code = run_scenario(path, as_json=as_json, out=out, err=err)
    return code, json.loads(out.getvalue()) if as_json else out.getvalue(), err.getvalue()


def _steps(text: str) -> Any:
    import tomllib

    return parse_scenario({"scenario": {"name": "p"}, **tomllib.loads(text)}).steps


# -- the words parse -----------------------------------------------------------------------------
@pytest.mark.parametrize("line", [
    'card = "nak-storm"', 'card = { nak_storm = 3 }', 'card = "silent"', 'card = "disconnect"', 'card = "link-ok"',
    'printer = "cutter-jam"', 'printer = "cutter-error"', 'printer = "offline"', 'printer = "online"',
    'printer = "disconnect"', 'printer = "reconnect"', 'host = { latency = 2.5 }', 'host = { latency = 0 }',
    'expect = { shown = "" }', 'expect = { not_shown = "NEARLY FULL" }',
    'expect = { advices_forwarded = ["sale-1", "stan-000004"] }',
    'host = { upload_fail = "silent" }', 'host = { upload_fail = "ignore", count = 3 }',
    'host = { upload_fail = "96", count = 10 }',
])
def test_the_new_words_are_accepted(line: str) -> None:
    assert len(_steps(f"[[step]]\n{line}\n")) == 1


@pytest.mark.parametrize(("line", "needle"), [
    ('card = { nak_storm = 0 }', "nak_storm is a number of frames"),
    ('card = { nak_storm = 2, extra = 1 }', "unknown key(s) extra"),
    ('card = "unplugged"', "link-ok"),
    ('host = { latency = -1 }', "latency is seconds of virtual time"),
    ('host = { latency = 99999 }', "latency is seconds of virtual time"),
    ('host = { latency = true }', "latency is seconds of virtual time"),
    ('printer = "jammed"', "cutter-jam"),
    ('host = { upload_fail = "94" }', 'upload_fail is "silent"'),
    ('host = { upload_fail = "lost" }', 'upload_fail is "silent"'),
    ('host = { upload_fail = "96", count = 0 }', "count is 1-100"),
    ('host = { latency = 1, count = 2 }', "count goes with decline_next and upload_fail only"),
    ('expect = { not_shown = "" }', "not_shown must be"),
    ('expect = { advices_forwarded = "sale-1" }', "advices_forwarded must be"),
])
def test_bad_new_words_are_one_clear_line(line: str, needle: str) -> None:
    with pytest.raises(ScenarioError, match=re.escape(needle)):
        _steps(f"[[step]]\n{line}\n")


# -- what they do --------------------------------------------------------------------------------
def test_shown_empty_means_nothing_was_displayed(tmp_path: Path) -> None:
    code, report, _ = _run(tmp_path, """
[[step]]
expect = { shown = "签到成功 / SIGNED ON" }
[[step]]
advance = 1
[[step]]
expect = { shown = "" }
[[step]]
sale = { card = "approved", amount = "3.00" }
[[step]]
expect = { shown = "" }
""")
    assert code == 1
    assert [s["ok"] for s in report["steps"] if s["action"] == "expect"] == [True, True, False]
    assert "shown: expected nothing displayed since the last expect, got ['请输入金额" in report["failures"][0]


def test_not_shown_fails_when_the_text_was_displayed(tmp_path: Path) -> None:
    code, report, _ = _run(tmp_path, """
[[step]]
sale = { card = "approved", amount = "3.00" }
[[step]]
expect = { not_shown = "NEARLY FULL" }
[[step]]
sale = { card = "approved", amount = "4.00" }
[[step]]
expect = { not_shown = "APPROVED" }
""")
    assert code == 1 and len(report["failures"]) == 1
    assert report["failures"][0].startswith("step 4: not_shown: displayed since the last expect: ['交易成功 / APPROVED")


def test_every_step_reports_the_display_lines_it_caused(tmp_path: Path) -> None:
    text = """
[[step]]
sale = { card = "approved", amount = "3.00" }
[[step]]
advance = 1
"""
    code, report, _ = _run(tmp_path, text)
    assert code == 0
    assert report["boot"] == {"shown": ["签到成功 / SIGNED ON"]}  # before step 1
    sale, advance = report["steps"]
    assert sale["shown"][0] == "请输入金额 / ENTER AMOUNT" and "交易成功 / APPROVED: 00" in sale["shown"]
    assert advance["shown"] == []
    code, out, _ = _run(tmp_path, text, as_json=False)
    assert "      display: 请输入金额 / ENTER AMOUNT\n" in out and "      display: 交易成功 / APPROVED: 00\n" in out


def test_advices_forwarded_names_the_stored_sales_in_the_order_the_host_got_them(tmp_path: Path) -> None:
    steps = """
[[step]]
host = "unreachable"
[[step]]
sale = { card = "approved-swipe", amount = "10.00" }
[[step]]
sale = { card = "approved-swipe", amount = "20.00" }
[[step]]
expect = { advices_forwarded = [] }
[[step]]
host = "reachable"
[[step]]
operator = "settle"
[[step]]
expect = { advices_forwarded = ORDER, pending_advices = 0 }
"""
    code, report, _ = _run(tmp_path, steps.replace("ORDER", '["sale-1", "sale-2"]'))
    assert code == 0, report["failures"]
    code, report, _ = _run(tmp_path, steps.replace("ORDER", '["sale-2", "sale-1"]'))
    assert code == 1
    assert report["failures"] == ["step 7: advices_forwarded: expected ['sale-2', 'sale-1'], got ['sale-1', 'sale-2']"]


def test_host_latency_is_virtual_time(tmp_path: Path) -> None:
    code, report, _ = _run(tmp_path, """
[[step]]
host = { latency = 5 }
[[step]]
sale = { card = "approved", amount = "3.00" }
[[step]]
advance = 4.5
[[step]]
expect = { state = "AUTHORIZING", outcome = "none" }
[[step]]
advance = 0.5
[[step]]
expect = { state = "IDLE", outcome = "APPROVED", host_net = "3.00" }
[[step]]
host = "normal"
[[step]]
sale = { card = "approved", amount = "4.00" }
[[step]]
expect = { state = "IDLE", outcome = "APPROVED" }
""")
    assert code == 0, report["failures"]
    assert report["steps"][5]["time"] == "09:30:05"  # approved exactly 5 s of virtual time later


def test_a_card_link_fault_cancels_the_sale_and_names_it(tmp_path: Path) -> None:
    code, report, _ = _run(tmp_path, """
[[step]]
card = "silent"
[[step]]
sale = { card = "approved", amount = "3.00" }
[[step]]
expect = { state = "IDLE", outcome = "CANCELLED", host_net = "0.00", journal = { SENT = 0 } }
""")
    assert code == 0, report["failures"]
    sale = report["steps"][1]
    assert sale["sale"] == "sale-1" and sale["outcome"] == "CANCELLED" and "no ACK" in sale["reason"]
    assert "faults=silent" in report["steps"][0]["reader"]


def test_printer_faults_pause_printing_and_a_device_step_reaches_the_printer(tmp_path: Path) -> None:
    code, report, _ = _run(tmp_path, """
[[step]]
device = { family = "printer", control = "fault offline" }
[[step]]
sale = { card = "approved", amount = "3.00" }
[[step]]
expect = { state = "PRINTER_PAUSED", outcome = "APPROVED", shown = "PrinterOffline" }
[[step]]
printer = "ok"
[[step]]
advance = 30
[[step]]
expect = { state = "IDLE", printed = ["merchant", "cardholder"], pages = 2 }
""")
    assert code == 0, report["failures"]
    assert report["steps"][0]["reply"].startswith("ok: offline")
    assert "online" in report["steps"][3]["printer"]


# -- the 90 % journal warning is documented as the terminal shows it --------------------------------
def test_the_journal_warning_is_documented_with_its_text_and_timing() -> None:
    doc = (ROOT / "docs" / "scenarios.md").read_text(encoding="utf-8")
    zh, en = i18n.TEXTS["journal_warn"]
    assert f"{zh} / {en}: USED/CAPACITY" in doc
    assert "limits.journal_warn_ratio" in doc and "every sale" in doc
    assert (ROOT / "sim" / "scenarios" / "10-journal-warning.toml").is_file()


@pytest.mark.parametrize("name", ["02-host-latency", "08-card-link-faults"])
def test_the_fault_scenarios_replay_byte_for_byte(name: str) -> None:
    path = ROOT / "sim" / "scenarios" / f"{name}.toml"
    outs = []
    for _ in range(2):
        out = io.StringIO()
        assert run_scenario(path, as_json=True, out=out, err=io.StringIO()) == 0
        outs.append(out.getvalue())
    assert outs[0] == outs[1]
