"""ARCHITECTURE.md §2, enforced: walk every import (ast) and fail on a broken layer rule."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
SANS_IO_MODULES = {"codec.py", "events.py", "messages.py", "tlv.py", "spec.py", "sensitive.py", "record.py"}
SANS_IO_FORBIDDEN = {"serial", "socket", "threading", "asyncio", "time", "select", "terminal", "emulator"}


def _imports(path: Path) -> set[str]:
    names: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Import):
            names |= {alias.name for alias in node.names}
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            names.add(node.module)
            # `from drivers.printer import events` imports the submodule drivers.printer.events
            names |= {f"{node.module}.{a.name}" for a in node.names if _module_file(f"{node.module}.{a.name}")}
    return names


OURS = {"terminal", "drivers", "emulator", "firmware_profiles"}


def _module_file(name: str) -> Path | None:
    base = ROOT.joinpath(*name.split("."))
    for candidate in (base.with_suffix(".py"), base / "__init__.py"):
        if candidate.is_file():
            return candidate
    return None


def _closure(path: Path) -> set[str]:
    """Everything a module imports, following our own modules transitively (what really loads)."""
    seen: set[Path] = set()
    names: set[str] = set()
    todo = [path]
    while todo:
        current = todo.pop()
        if current in seen:
            continue
        seen.add(current)
        for name in _imports(current):
            names.add(name)
            parts = name.split(".")
            if parts[0] in OURS:
                # `import a.b.c` loads a, a.b and a.b.c
                todo += [f for i in range(1, len(parts) + 1) if (f := _module_file(".".join(parts[:i])))]
    return names


def _modules(package: str) -> list[Path]:
    return sorted((ROOT / package).rglob("*.py"))


def _top(name: str) -> str:
    return name.split(".")[0]


@pytest.mark.parametrize(
    "path",
    [p for p in _modules("drivers") if p.name in SANS_IO_MODULES],
    ids=str,
)
def test_codecs_are_sans_io(path: Path) -> None:
    bad = {name for name in _closure(path) if _top(name) in SANS_IO_FORBIDDEN}
    assert not bad, f"{path.relative_to(ROOT)} is a sans-I/O module but (transitively) imports {sorted(bad)}"


@pytest.mark.parametrize("path", _modules("emulator"), ids=str)
def test_emulators_use_only_codecs_and_events(path: Path) -> None:
    allowed = ("codec", "events", "tlv", "spec", "record", "sensitive", "errors", "transport")

    def forbidden(name: str) -> bool:
        parts = name.split(".")
        if parts[0] == "terminal":
            return True
        is_package = (ROOT.joinpath(*parts) / "__init__.py").is_file()
        return parts[0] == "drivers" and len(parts) > 1 and not is_package and parts[-1] not in allowed

    bad = {name for name in _imports(path) if forbidden(name)}
    assert not bad, f"{path.relative_to(ROOT)} imports {sorted(bad)}"


@pytest.mark.parametrize("path", _modules("terminal"), ids=str)
def test_only_the_composition_root_imports_emulators(path: Path) -> None:
    if path.name == "app.py":
        return
    bad = {name for name in _imports(path) if _top(name) == "emulator"}
    assert not bad, f"{path.relative_to(ROOT)} imports {sorted(bad)}; only terminal/app.py may"


@pytest.mark.parametrize("path", _modules("drivers") + _modules("firmware_profiles"), ids=str)
def test_lower_layers_do_not_reach_up(path: Path) -> None:
    bad = {name for name in _imports(path) if _top(name) in {"terminal", "emulator"}}
    assert not bad, f"{path.relative_to(ROOT)} imports {sorted(bad)}"


def test_the_rules_catch_a_violation(tmp_path: Path) -> None:
    bad = tmp_path / "codec.py"
    bad.write_text("import serial\nfrom terminal.clock import FakeClock\n")
    assert {"serial", "terminal.clock"} <= _imports(bad)
    indirect = tmp_path / "events.py"
    indirect.write_text("from drivers.base import Driver\n")  # drivers.base -> drivers.transport -> serial
    assert "serial" in _closure(indirect)
