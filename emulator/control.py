"""Operator control lines for a running emulator: one line in, one line of reply out.

`apply(peer, line)` runs one line against the command table of the peer's family: every
emulator class names its vocabulary's module in `CONTROL` (e.g. "emulator.printer.control"),
whose `COMMANDS` maps a word to a handler; it is imported when first used, so controlling a
printer never imports the card reader. Every reply starts `ok:` or `error:`; nothing raises,
whatever the line. Replies never echo an argument back (a mistyped line may hold a PIN).

The words every emulator answers the same way (emulator/base.py's shape) are here, in
`BASE_COMMANDS`: `status` (the peer's status() line) and `help` (its whole vocabulary). A family's
table spreads them in (`{..., **BASE_COMMANDS}`) and may override one; a table without them gets
them anyway.

Thread safety: nothing is locked here. On a served link call it through the link, e.g.
`link.control(lambda peer: apply(peer, line))`.
"""

from __future__ import annotations

import importlib
from collections.abc import Callable, Mapping
from typing import Any

__all__ = ["BASE_COMMANDS", "Handler", "apply", "commands_of", "seconds_arg"]

Handler = Callable[[Any, list[str]], str]


def seconds_arg(args: list[str], word: str = "advance") -> float:
    """The one argument of `advance SECONDS`: 0 to a day; ValueError (shown as the usage) otherwise."""
    try:
        seconds = float(args[0]) if len(args) == 1 else -1.0
    except ValueError:
        seconds = -1.0
    if not 0 <= seconds <= 86_400:
        raise ValueError(f"usage: {word} SECONDS (0-86400)")
    return seconds


def _status(peer: Any, args: list[str]) -> str:
    return f"ok: {peer.status()}"


def _help(peer: Any, args: list[str]) -> str:
    return "ok: commands: " + ", ".join(commands_of(peer) or ())


BASE_COMMANDS: Mapping[str, Handler] = {"status": _status, "help": _help}


def commands_of(peer_or_class: Any) -> Mapping[str, Handler] | None:
    """The command table of an emulator (or emulator class), or None if it takes no commands:
    the family's words, then those of BASE_COMMANDS it does not define itself."""
    module = getattr(peer_or_class, "CONTROL", None)
    if not module:
        return None
    table: Mapping[str, Handler] = importlib.import_module(module).COMMANDS
    if BASE_COMMANDS.keys() <= table.keys():
        return table
    return {**table, **{word: h for word, h in BASE_COMMANDS.items() if word not in table}}


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
