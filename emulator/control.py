"""Operator control lines for a running emulator: one line in, one line of reply out.

`apply(peer, line)` runs one line against the command table of the peer's family: every
emulator class names its vocabulary's module in `CONTROL` (e.g. "emulator.printer.control"),
whose `COMMANDS` maps a word to a handler; it is imported when first used, so controlling a
printer never imports the card reader. Every reply starts `ok:` or `error:`; nothing raises,
whatever the line. Replies never echo an argument back (a mistyped line may hold a PIN).

Thread safety: nothing is locked here. On a served link call it through the link, e.g.
`link.control(lambda peer: apply(peer, line))`.
"""

from __future__ import annotations

import importlib
from collections.abc import Callable, Mapping
from typing import Any

__all__ = ["Handler", "apply", "commands_of"]

Handler = Callable[[Any, list[str]], str]


def commands_of(peer_or_class: Any) -> Mapping[str, Handler] | None:
    """The command table of an emulator (or emulator class), or None if it takes no commands."""
    module = getattr(peer_or_class, "CONTROL", None)
    if not module:
        return None
    table: Mapping[str, Handler] = importlib.import_module(module).COMMANDS
    return table


def apply(peer: Any, line: str) -> str:
    """Run one control line against a running emulator; the reply is one line, never an exception."""
    words = line.split()
    if not words:
        return "error: empty line (try help)"
    command, args = words[0].lower(), words[1:]
    try:
        table = commands_of(peer)
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
