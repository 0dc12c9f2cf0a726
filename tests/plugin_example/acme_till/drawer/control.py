"""The ACME cash drawer's control vocabulary (`till emulate acme-drawer`, one line on stdin each):

    close                 someone shuts the drawer (the drawer reports it)
    fault jam | clear     the drawer stays shut when told to open / works again
    status | help

Run through `emulator.control.apply`, which turns any error into one `error:` line.
"""

from __future__ import annotations

from typing import Any

from emulator.control import Handler

__all__ = ["COMMANDS"]


def _close(drawer: Any, args: list[str]) -> str:
    if args:
        return "error: usage: close"
    drawer.shut()
    return f"ok: {drawer.status()}"


def _fault(drawer: Any, args: list[str]) -> str:
    if args != ["jam"]:
        return "error: usage: fault jam"
    drawer.set_fault("jam")
    return f"ok: {drawer.status()}"


def _clear(drawer: Any, args: list[str]) -> str:
    if args:
        return "error: usage: clear"
    drawer.clear_faults()
    return f"ok: {drawer.status()}"


def _status(drawer: Any, args: list[str]) -> str:
    return f"ok: {drawer.status()}"


def _help(drawer: Any, args: list[str]) -> str:
    return "ok: commands: " + ", ".join(COMMANDS)


COMMANDS: dict[str, Handler] = {"close": _close, "fault": _fault, "clear": _clear, "status": _status, "help": _help}
