"""ARCHITECTURE.md §2, enforced: walk every import (ast) and fail on a broken layer rule or a cycle.

Two views of a module's imports: `everything` (any import statement, at any depth: what the module
may load at some point) and `at_import` (what loads when the module is imported: module level,
not under `if TYPE_CHECKING`, not inside a function). Layer rules use `everything`, except for
the one documented place where a lazy import is the rule's point: terminal/cli.py imports the
emulated world (sim/) inside the commands that serve it, so a real till's commands never load it.
"""

from __future__ import annotations

import ast
from functools import cache
from pathlib import Path

import pytest

from terminal import devices

ROOT = Path(__file__).resolve().parents[2]
OURS = {"terminal", "drivers", "emulator", "sim", "firmware_profiles"}
SANS_IO_MODULES = {
    "codec.py", "events.py", "messages.py", "tlv.py", "spec.py", "sensitive.py", "record.py",
    "keys.py", "mac.py",  # drivers/acquirer: the link's key handling and DE 64, shared with the simulator
}
SANS_IO_FORBIDDEN = {"serial", "socket", "threading", "asyncio", "time", "select", "terminal", "emulator", "sim"}
# The CLI dispatches to the emulated world inside its commands (see the module docstring).
LAZY_SIM_IMPORTS_ALLOWED = {ROOT / "terminal" / "cli.py"}


def _module_file(name: str) -> Path | None:
    base = ROOT.joinpath(*name.split("."))
    for candidate in (base.with_suffix(".py"), base / "__init__.py"):
        if candidate.is_file():
            return candidate
    return None


def _names(node: ast.AST) -> set[str]:
    if isinstance(node, ast.Import):
        return {alias.name for alias in node.names}
    if isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
        # `from drivers.printer import events` imports the submodule drivers.printer.events
        subs = {f"{node.module}.{a.name}" for a in node.names}
        return {node.module} | {name for name in subs if _module_file(name)}
    return set()


def _is_type_checking(node: ast.If) -> bool:
    test = node.test
    return (isinstance(test, ast.Name) and test.id == "TYPE_CHECKING") or (
        isinstance(test, ast.Attribute) and test.attr == "TYPE_CHECKING")


@cache
def everything(path: Path) -> frozenset[str]:
    return frozenset(n for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))) for n in _names(node))


@cache
def at_import(path: Path) -> frozenset[str]:
    names: set[str] = set()

    def visit(body: list[ast.stmt]) -> None:
        for node in body:
            names.update(_names(node))
            if isinstance(node, ast.If) and not _is_type_checking(node):
                visit(node.body)
                visit(node.orelse)
            elif isinstance(node, ast.Try):
                visit(node.body)
                for handler in node.handlers:
                    visit(handler.body)
                visit(node.orelse)
                visit(node.finalbody)
            elif isinstance(node, ast.With):
                visit(node.body)

    visit(ast.parse(path.read_text(encoding="utf-8")).body)
    return frozenset(names)


def _loaded_files(name: str) -> list[Path]:
    """`import a.b.c` loads a, a.b and a.b.c."""
    parts = name.split(".")
    return [f for i in range(1, len(parts) + 1) if (f := _module_file(".".join(parts[:i])))]


def closure(path: Path, edges: object = everything) -> set[str]:
    """Everything a module imports, following our own modules transitively (what really loads)."""
    step = everything if edges is everything else at_import
    seen: set[Path] = set()
    names: set[str] = set()
    todo = [path]
    while todo:
        current = todo.pop()
        if current in seen:
            continue
        seen.add(current)
        for name in step(current):
            names.add(name)
            if name.split(".")[0] in OURS:
                todo += _loaded_files(name)
    return names


def _modules(*packages: str) -> list[Path]:
    return sorted(p for package in packages for p in (ROOT / package).rglob("*.py"))


def _top(name: str) -> str:
    return name.split(".")[0]


def _module_name(path: Path) -> str:
    rel = path.relative_to(ROOT).with_suffix("")
    parts = rel.parts[:-1] if rel.name == "__init__" else rel.parts
    return ".".join(parts)


@pytest.mark.parametrize("path", [p for p in _modules("drivers") if p.name in SANS_IO_MODULES], ids=str)
def test_codecs_are_sans_io(path: Path) -> None:
    bad = {name for name in closure(path) if _top(name) in SANS_IO_FORBIDDEN}
    assert not bad, f"{path.relative_to(ROOT)} is a sans-I/O module but (transitively) imports {sorted(bad)}"


@pytest.mark.parametrize("path", _modules("emulator"), ids=str)
def test_emulators_use_only_codecs_and_events(path: Path) -> None:
    # The sans-I/O parts both ends share (fonts: where a receipt picture finds its typeface).
    allowed = ("codec", "events", "tlv", "spec", "record", "sensitive", "errors", "transport", "keys", "mac", "fonts")

    def forbidden(name: str) -> bool:
        parts = name.split(".")
        if parts[0] in ("terminal", "sim"):
            return True
        is_package = (ROOT.joinpath(*parts) / "__init__.py").is_file()
        return parts[0] == "drivers" and len(parts) > 1 and not is_package and parts[-1] not in allowed

    bad = {name for name in everything(path) if forbidden(name)}
    assert not bad, f"{path.relative_to(ROOT)} imports {sorted(bad)}"


@pytest.mark.parametrize("path", _modules("terminal"), ids=str)
def test_the_till_never_imports_the_emulated_world(path: Path) -> None:
    """Not even through another module: a real till pays nothing for the emulators."""
    view = at_import if path in LAZY_SIM_IMPORTS_ALLOWED else everything
    bad = {name for name in closure(path, view) if _top(name) in {"emulator", "sim"}}
    assert not bad, f"{path.relative_to(ROOT)} (transitively) imports {sorted(bad)}"


def test_the_lazy_exception_is_only_the_cli() -> None:
    """terminal/cli.py reaches sim/ only inside functions, and nothing else in terminal/ does."""
    cli = ROOT / "terminal" / "cli.py"
    assert {n for n in everything(cli) if _top(n) == "sim"}, "the CLI's emulated-world commands moved?"
    assert not {n for n in closure(cli, at_import) if _top(n) in {"sim", "emulator"}}


@pytest.mark.parametrize("path", _modules("drivers", "firmware_profiles"), ids=str)
def test_lower_layers_do_not_reach_up(path: Path) -> None:
    bad = {name for name in everything(path) if _top(name) in {"terminal", "emulator", "sim"}}
    assert not bad, f"{path.relative_to(ROOT)} imports {sorted(bad)}"


def _graph() -> dict[str, set[str]]:
    """Module -> the modules of ours it imports at import time."""
    graph: dict[str, set[str]] = {}
    for path in _modules(*OURS):
        deps: set[str] = set()
        for name in at_import(path):
            if _top(name) in OURS:
                deps |= {_module_name(f) for f in _loaded_files(name)}
        me = _module_name(path)
        # Importing a.b.c runs a/__init__ first; from inside package a that parent is already
        # loading, so the implicit edge to one's own parent packages is not a cycle.
        graph[me] = {d for d in deps if d != me and not me.startswith(d + ".")}
    return graph


def _cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """Strongly connected components with more than one module (Tarjan)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    found: list[list[str]] = []

    def visit(node: str) -> None:
        index[node] = low[node] = len(index)
        stack.append(node)
        on_stack.add(node)
        for nxt in graph.get(node, ()):
            if nxt not in index:
                visit(nxt)
                low[node] = min(low[node], low[nxt])
            elif nxt in on_stack:
                low[node] = min(low[node], index[nxt])
        if low[node] == index[node]:
            component = []
            while True:
                top = stack.pop()
                on_stack.discard(top)
                component.append(top)
                if top == node:
                    break
            if len(component) > 1:
                found.append(sorted(component))

    for node in sorted(graph):
        if node not in index:
            visit(node)
    return found


def test_no_import_cycle_anywhere() -> None:
    """Each module imports downwards only (a package's __init__ importing its own submodules
    counts too)."""
    cycles = _cycles(_graph())
    assert not cycles, f"import cycles: {cycles}"


def test_the_registry_names_modules_that_exist_in_their_layer() -> None:
    for row in devices.families().values():
        for path, layer in ((row.driver, "drivers"), (row.codec, "drivers"), (row.emulator, "emulator")):
            if path is None:
                continue
            module = path.partition(":")[0]
            if _top(module) in OURS:
                assert _top(module) == layer, f"{row.name}: {path} is not in {layer}/"
                assert _module_file(module), f"{row.name}: {module} does not exist"


def test_the_rules_catch_a_violation(tmp_path: Path) -> None:
    bad = tmp_path / "codec.py"
    bad.write_text("import serial\nfrom terminal.clock import FakeClock\n")
    assert {"serial", "terminal.clock"} <= everything(bad)
    indirect = tmp_path / "events.py"
    indirect.write_text("from drivers.base import Driver\n")  # drivers.base -> drivers.transport -> serial
    assert "serial" in closure(indirect)
    lazy = tmp_path / "lazy.py"
    lazy.write_text("def f() -> None:\n    import sim.demo\n")
    assert "sim.demo" in everything(lazy) and "sim.demo" not in at_import(lazy)
    assert _cycles({"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}}) == [["a", "b", "c"]]
