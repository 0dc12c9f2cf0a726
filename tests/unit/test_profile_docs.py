"""docs/firmware-profiles.md is rendered from the schemas: fail when the committed file is stale."""

from __future__ import annotations

import difflib
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from firmware_profiles import KINDS, PROFILE_PATH_ENV, load_schema
from firmware_profiles.docs import REGENERATE, render_docs, render_keys
from firmware_profiles.schema import Fields

ROOT = Path(__file__).resolve().parents[2]
DOC = ROOT / "docs" / "firmware-profiles.md"


def _rows(fields: Fields, prefix: str = "") -> list[str]:
    """The first cell of every row a schema's table must have."""
    names = []
    for path, key in fields.keys.items():
        names.append(f"| `{prefix}{path}` |")
        if key.item is not None:
            below = f"{prefix}{path}.<{key.item_name}>." if key.type == "map" else f"{prefix}{path}[]."
            names += _rows(key.item, below)
    return names


def test_the_committed_doc_is_current() -> None:
    committed, rendered = DOC.read_text(encoding="utf-8"), render_docs()
    diff = list(difflib.unified_diff(committed.splitlines(), rendered.splitlines(), "committed", "rendered",
                                     lineterm="", n=0))
    assert not diff, (f"docs/firmware-profiles.md is stale: regenerate it with `{REGENERATE}`\n"
                      + "\n".join(diff[:20]))


@pytest.mark.parametrize("kind", sorted(KINDS))
def test_every_declared_key_has_a_row(kind: str) -> None:
    table = render_keys(load_schema(kind))
    for row in _rows(load_schema(kind).fields):
        assert row in table, f"{kind}: no row for {row}"
    assert table.count("\n| `") == len(_rows(load_schema(kind).fields))  # and no other rows


def test_a_row_shows_type_range_default_and_choices() -> None:
    printer = render_keys(load_schema("printer"))
    assert "| `serial.baud` | int 50–4000000 | `9600` | Line rate;" in printer
    assert "| `serial.xoff_free` | int ≥ 0 | min(128, `serial.receive_buffer` // 4) |" in printer
    assert "| `fonts.a.columns` | int ≥ 1 | `media.dots` // 12 |" in printer
    reader = render_keys(load_schema("card_reader"))
    assert "| `reader.entry_modes` | list[str] | `[\"chip\", \"swipe\", \"tap\"]` |" in reader
    assert "one of `bcd`, `binary`, `none`" in reader
    terminal = render_keys(load_schema("terminal"))
    assert "| `merchant_id` | str | *required* |" in terminal
    assert "| `operators[].role` | str | *required* |" in terminal


def test_the_doc_ignores_the_profile_path(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    before = render_docs()
    (tmp_path / "printers").mkdir()
    (tmp_path / "printers" / "cn-80mm.toml").write_text('schema = 1\nname = "cn-80mm"\nmodel = "site"\n',
                                                        encoding="utf-8")
    (tmp_path / "printers" / "extra.toml").write_text('schema = 1\nname = "extra"\n', encoding="utf-8")
    monkeypatch.setenv(PROFILE_PATH_ENV, str(tmp_path))
    assert render_docs() == before


def _run(*args: str) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if k != PROFILE_PATH_ENV}
    return subprocess.run([sys.executable, "-m", "firmware_profiles", *args], capture_output=True, text=True,
                          cwd=ROOT, env=env, check=False)


def test_the_command_prints_the_doc_and_checks_a_profile(tmp_path: Path) -> None:
    docs = _run()
    assert docs.returncode == 0 and docs.stdout == render_docs()
    shown = _run("printer", "cn-80mm")
    assert shown.returncode == 0 and json.loads(shown.stdout)["serial"]["baud"] == 115200
    bad = tmp_path / "my.toml"
    bad.write_text('schema = 1\nname = "my"\n[serial]\nbaudrate = 9600\n', encoding="utf-8")
    refused = _run("printer", str(bad))
    assert refused.returncode == 1 and refused.stdout == ""
    assert refused.stderr == f"{bad}: unknown key 'serial.baudrate' (did you mean 'serial.baud'?)\n"
