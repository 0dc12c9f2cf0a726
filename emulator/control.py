"""Operator control lines for a running emulator: one line in, one line of reply out.

`apply(peer, line)` finds the command table of the peer's device type and runs one line, e.g.
for the printer (`till emulate printer`, stdin):

    fault paper-out [after-bytes N | after-lines N]   the roll ends now, or after N more bytes/lines
    fault near-end | fault cover-open | fault offline | fault overheat | fault disconnect
    fault cutter [next-cut]                           the autocutter jams now, or at the next cut
    clear                                             every fault ends (fresh roll, cover shut...)
    tick SECONDS                                      let emulated time pass (a hot head cools)
    status | pages | help

Every reply starts `ok:` or `error:`; nothing raises, whatever the line. Device types add their
own table with `register(class_path, loader)` (the card reader's lives in
emulator/control_card_reader.py and is registered below); tables load lazily, so controlling a
printer never imports the card reader. Replies never echo an argument back (a mistyped line may
hold a PIN).

Thread safety: nothing is locked here. On a served link call it through the link, e.g.
`link.control(lambda peer: apply(peer, line))`.
"""

from __future__ import annotations

import importlib
from collections.abc import Callable, Mapping
from typing import Any

from emulator.printer_faults import FAULTS

__all__ = ["PRINTER_COMMANDS", "Handler", "apply", "register"]

Handler = Callable[[Any, list[str]], str]


# -- the printer's table -------------------------------------------------------------------------------
def _count(word: str) -> int:
    if not word.isdigit() or not 0 <= int(word) <= 100_000_000:
        raise ValueError("N must be a whole number")
    return int(word)


def _fault(printer: Any, args: list[str]) -> str:
    usage = ("error: usage: fault paper-out [after-bytes N | after-lines N] | fault cutter [next-cut] | fault "
             + " | fault ".join(f for f in FAULTS if f not in ("paper-out", "cutter")))
    if not args or args[0] not in FAULTS:
        return usage
    name, rest = args[0], args[1:]
    if name == "paper-out" and len(rest) == 2 and rest[0] in ("after-bytes", "after-lines"):
        count = _count(rest[1])
        what = rest[0].removeprefix("after-")
        printer.set_fault(name, **{f"after_{what}": count})
        return f"ok: the paper runs out after {count} more {what}"
    if name == "cutter" and rest == ["next-cut"]:
        printer.set_fault(name, next_cut=True)
        return "ok: the next cut jams the autocutter"
    if rest:
        return usage
    printer.set_fault(name)
    return f"ok: {name}; {printer.describe()}"


def _clear(printer: Any, args: list[str]) -> str:
    if args:
        return "error: usage: clear"
    printer.clear_faults()
    return f"ok: faults cleared; {printer.describe()}"


def _tick(printer: Any, args: list[str]) -> str:
    try:
        seconds = float(args[0]) if len(args) == 1 else -1.0
    except ValueError:
        seconds = -1.0
    if not 0 <= seconds <= 86_400:
        return "error: usage: tick SECONDS (0-86400)"
    printer.tick(seconds)
    return f"ok: {seconds:g} s passed; {printer.describe()}"


def _status(printer: Any, args: list[str]) -> str:
    buffer = f"buffer={printer.backlog}/{printer.capacity}" + (" paused" if printer.paused else "")
    return f"ok: {printer.describe()} {buffer} pages={len(printer.pages)}"


def _pages(printer: Any, args: list[str]) -> str:
    return f"ok: {len(printer.pages)} page(s) cut, {len(printer.unknown_commands)} unknown command(s)"


def _help(printer: Any, args: list[str]) -> str:
    return "ok: commands: " + ", ".join(PRINTER_COMMANDS)


PRINTER_COMMANDS: dict[str, Handler] = {
    "fault": _fault,
    "clear": _clear,
    "tick": _tick,
    "advance": _tick,
    "status": _status,
    "pages": _pages,
    "help": _help,
}


# -- dispatch by device type ---------------------------------------------------------------------------
# "module.Class" of an emulator -> a loader of its command table (imported when first needed).
_LOADERS: dict[str, Callable[[], Mapping[str, Handler]]] = {
    "emulator.printer.PrinterEmulator": lambda: PRINTER_COMMANDS,
    "emulator.card_reader.CardReaderEmulator":
        lambda: importlib.import_module("emulator.control_card_reader").COMMANDS,
}


def register(class_path: str, loader: Callable[[], Mapping[str, Handler]]) -> None:
    """Give emulators of `class_path` ("package.module.Class", subclasses included) a command table."""
    _LOADERS[class_path] = loader


def _table(peer: Any) -> Mapping[str, Handler] | None:
    for cls in type(peer).__mro__:
        loader = _LOADERS.get(f"{cls.__module__}.{cls.__qualname__}")
        if loader is not None:
            return loader()
    return None


def apply(peer: Any, line: str) -> str:
    """Run one control line against a running emulator; the reply is one line, never an exception."""
    words = line.split()
    if not words:
        return "error: empty line (try help)"
    command, args = words[0].lower(), words[1:]
    try:
        table = _table(peer)
    except Exception as exc:  # a table that fails to load must not take the emulator down
        return f"error: no control commands for this emulator ({type(exc).__name__})"
    if table is None:
        return f"error: {type(peer).__name__} takes no control commands"
    handler = table.get(command)
    if handler is None:
        shown = f" {command[:20]!r}" if command.replace("-", "").isalpha() else ""  # digits may be a PIN
        return f"error: unknown command{shown} (try help)"
    try:
        return handler(peer, args)
    except (ValueError, LookupError) as exc:  # our messages name the problem, never the argument
        return f"error: {str(exc).splitlines()[0] if str(exc) else type(exc).__name__}"
    except Exception as exc:  # a control line must never take the emulator down
        return f"error: {command} failed ({type(exc).__name__})"
