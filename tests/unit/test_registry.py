"""The device registry (terminal/devices.py) is the only place a device family is named.

The composition root and the CLI read the registry; a test that reads their syntax tree (ast: so
comments and docstrings, which may explain, do not count) fails when either names a family, in
either spelling, or one of its driver or emulator classes. Then the registry's own refusals:
an unknown family, a driver for the wrong slot, and a plugin row that takes a name already taken.
"""

from __future__ import annotations

import ast
import re
import sys
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from terminal import devices
from terminal.errors import ConfigError

ROOT = Path(__file__).resolve().parents[2]
FAMILY_BLIND = [ROOT / "terminal" / "app.py", ROOT / "terminal" / "cli.py"]


def _forbidden_words() -> dict[str, str]:
    """Every word that names a registry row -> which row it names."""
    words: dict[str, str] = {}
    for row in devices.families().values():
        for name in {row.name, row.name.replace("_", "-"), row.name.replace("-", "_")}:
            words[name] = row.name
        for part in (row.driver, row.emulator):
            if part:
                words[part.rpartition(":")[2]] = row.name
    return words


def _docstrings(tree: ast.AST) -> set[int]:
    """ids of the string constants that are docstrings (documentation, like comments)."""
    out = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Module | ast.ClassDef | ast.FunctionDef | ast.AsyncFunctionDef):
            body = node.body
            if body and isinstance(body[0], ast.Expr) and isinstance(body[0].value, ast.Constant):
                out.add(id(body[0].value))
    return out


def _identifiers(node: ast.AST) -> list[str]:
    match node:
        case ast.Name(id=name) | ast.Attribute(attr=name) | ast.arg(arg=name):
            return [name]
        case ast.FunctionDef(name=name) | ast.AsyncFunctionDef(name=name) | ast.ClassDef(name=name):
            return [name]
        case ast.keyword(arg=str(name)):
            return [name]
        case ast.alias(name=name, asname=asname):
            return [*name.split("."), *([asname] if asname else [])]
        case ast.ImportFrom(module=str(module)):
            return module.split(".")
    return []


def _mentions(path: Path, words: dict[str, str]) -> list[str]:
    tree = ast.parse(path.read_text(encoding="utf-8"), filename=str(path))
    skip = _docstrings(tree)
    found = []
    for node in ast.walk(tree):
        line = getattr(node, "lineno", "?")
        for identifier in _identifiers(node):
            if identifier in words:
                found.append(f"{path.name}:{line}: identifier {identifier!r} names {words[identifier]!r}")
        if isinstance(node, ast.Constant) and isinstance(node.value, str) and id(node) not in skip:
            for word, row in words.items():
                # a whole word: "printer" in "emu://printer" counts, in "printers_total" it does not
                if re.search(rf"(?<![\w-]){re.escape(word)}(?![\w-])", node.value):
                    found.append(f"{path.name}:{line}: string {node.value!r} names {row!r}")
    return found


def test_the_words_cover_every_row_in_both_spellings() -> None:
    words = _forbidden_words()
    assert {"card_reader", "card-reader", "printer", "acquirer"} <= set(words)
    assert {"PrinterDriver", "CardReaderEmulator", "AcquirerSimulator"} <= set(words)


def test_the_checker_sees_what_it_should() -> None:
    """A self-check on a sample, so the real test cannot pass by seeing nothing."""
    sample = ROOT / "tests" / "unit" / "test_registry.py"
    found = "\n".join(_mentions(sample, {"card-reader": "card_reader", "PrinterDriver": "printer"}))
    assert "string" in found and "identifier" not in found  # words in strings here, no such identifier


@pytest.mark.parametrize("path", FAMILY_BLIND, ids=lambda p: p.name)
def test_no_device_family_is_named_outside_the_registry(path: Path) -> None:
    found = _mentions(path, _forbidden_words())
    assert not found, "read the registry (terminal/devices.py) instead:\n" + "\n".join(found)


# -- the registry's refusals ----------------------------------------------------------------------
def test_an_unknown_family_is_refused_naming_the_known_ones() -> None:
    with pytest.raises(ConfigError) as caught:
        devices.family("scale")
    message = str(caught.value)
    assert "'scale'" in message
    for row in devices.families().values():
        assert row.url_kind in message


def test_both_spellings_name_one_row() -> None:
    assert devices.family("card-reader") is devices.family("card_reader")


def test_a_profile_slot_with_an_unknown_driver_is_refused() -> None:
    with pytest.raises(ConfigError, match=r"unknown device family 'acme-scale' \(known: .*printer"):
        devices.resolve("printer", {"driver": "acme-scale"})


def test_a_driver_of_another_family_is_refused_for_a_slot() -> None:
    with pytest.raises(ConfigError, match="'card_reader' family, not 'printer'"):
        devices.resolve("printer", {"driver": "card-reader"})


# -- plugin rows: a real dist-info on sys.path -----------------------------------------------------
PLUGIN_MODULE = "opentill_registry_test_plugin"
Install = Callable[..., None]


@pytest.fixture
def install(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Install]:
    """`install((name, value), ...)`: a distribution on sys.path whose `opentill.devices` entry
    points are `name = <its module>:value`, the module defining each value as a row called `name`."""
    count = 0

    def _install(*rows: tuple[str, str]) -> None:
        nonlocal count
        count += 1
        site = tmp_path / f"site{count}"
        module = f"{PLUGIN_MODULE}{count}"
        info = site / f"{module}-1.0.dist-info"
        info.mkdir(parents=True)
        (info / "METADATA").write_text(f"Metadata-Version: 2.1\nName: {module}\nVersion: 1.0\n", encoding="utf-8")
        points = "".join(f"{name} = {module}:{value}\n" for name, value in rows)
        (info / "entry_points.txt").write_text(f"[opentill.devices]\n{points}", encoding="utf-8")
        source = ["from terminal.devices import DeviceFamily", "NOT_A_ROW = object()"]
        source += [f"{value} = DeviceFamily(name={name!r}, family='printer', driver='x:Y', codec='x:Z', "
                   "profile_kind='printer', default_profile='cn-80mm')" for name, value in rows if value != "NOT_A_ROW"]
        (site / f"{module}.py").write_text("\n".join(source) + "\n", encoding="utf-8")
        monkeypatch.syspath_prepend(str(site))
        devices.reset_cache()

    devices.reset_cache()
    yield _install
    monkeypatch.undo()  # sys.path first, so the rows read next are this environment's
    for name in [m for m in sys.modules if m.startswith(PLUGIN_MODULE)]:
        del sys.modules[name]
    devices.reset_cache()


def test_a_plugin_row_is_added_after_the_built_ins(install: Install) -> None:
    install(("acme-printer", "ROW"))
    rows = devices.families()
    assert list(rows)[-1] == "acme-printer" and devices.resolve("printer", {"driver": "acme_printer"}).name \
        == "acme-printer"


@pytest.mark.parametrize("name", ["printer", "card_reader", "card-reader", "acquirer"])
def test_a_plugin_row_named_like_a_built_in_one_is_refused(install: Install, name: str) -> None:
    install((name, "ROW"))
    with pytest.raises(ConfigError, match=rf"device plugin {name!r} clashes with a built-in device family"):
        devices.families()


def test_two_plugins_with_one_name_are_refused(install: Install) -> None:
    install(("acme-printer", "ROW"))
    install(("acme_printer", "ROW"))
    with pytest.raises(ConfigError, match="clashes with another device plugin"):
        devices.families()


def test_a_plugin_object_that_is_not_a_row_is_refused(install: Install) -> None:
    install(("acme-nothing", "NOT_A_ROW"))
    with pytest.raises(ConfigError, match=r"'acme-nothing' .* is not a terminal.devices.DeviceFamily"):
        devices.families()
