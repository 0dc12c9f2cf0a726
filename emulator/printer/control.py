"""The printer emulator's control vocabulary (`till emulate printer`, one line on stdin each):

    fault paper-out [after-bytes N | after-lines N]   the roll ends now, or after N more bytes/lines
    fault near-end | fault cover-open | fault offline | fault overheat
    fault disconnect [hard]                           the wire goes silent; hard: the port hangs up
    fault cutter [next-cut]                           the autocutter jams now, or at the next cut
    clear                                             every fault ends (fresh roll, cover shut...)
    advance SECONDS | tick SECONDS                    let emulated time pass (a hot head cools)
    status | pages | help

Run through `emulator.control.apply`, which turns any error into one `error:` line; `status`
and `help` are every emulator's (emulator/control.py BASE_COMMANDS).
"""

from __future__ import annotations

from typing import Any

from emulator.control import BASE_COMMANDS, Handler, seconds_arg
from emulator.printer.faults import FAULTS

__all__ = ["COMMANDS"]


def _count(word: str) -> int:
    if not word.isdigit() or not 0 <= int(word) <= 100_000_000:
        raise ValueError("N must be a whole number")
    return int(word)


def _fault(printer: Any, args: list[str]) -> str:
    usage = ("error: usage: fault paper-out [after-bytes N | after-lines N] | fault cutter [next-cut] | "
             "fault disconnect [hard] | fault "
             + " | fault ".join(f for f in FAULTS if f not in ("paper-out", "cutter", "disconnect")))
    if not args or args[0] not in FAULTS:
        return usage
    name, rest = args[0], args[1:]
    if name == "paper-out" and len(rest) == 2 and rest[0] in ("after-bytes", "after-lines"):
        count = _count(rest[1])
        what = rest[0].removeprefix("after-")
        printer.set_fault(name, **{f"after_{what}": count})
        return f"ok: the paper runs out after {count} more {what}"
    if name == "disconnect" and rest == ["hard"]:
        printer.set_fault(name, hard=True)
        return f"ok: disconnect hard; {printer.status()}"
    if name == "cutter" and rest == ["next-cut"]:
        printer.set_fault(name, next_cut=True)
        return "ok: the next cut jams the autocutter"
    if rest:
        return usage
    printer.set_fault(name)
    return f"ok: {name}; {printer.status()}"


def _clear(printer: Any, args: list[str]) -> str:
    if args:
        return "error: usage: clear"
    printer.clear_faults()
    return f"ok: faults cleared; {printer.status()}"


def _advance(printer: Any, args: list[str]) -> str:
    seconds = seconds_arg(args)
    printer.advance(seconds)
    return f"ok: {seconds:g} s passed; {printer.status()}"


def _pages(printer: Any, args: list[str]) -> str:
    """The count, and with an output folder (`--out DIR`) the files of each page saved."""
    if args:
        return "error: usage: pages"
    reply = f"ok: {len(printer.pages)} page(s) cut, {len(printer.unknown_commands)} unknown command(s)"
    saved = printer.saved_pages()
    if saved:
        reply += f"; saved in {saved[0].parent}: " + ", ".join(f"{p.name}.{{txt,png,bin}}" for p in saved)
    return reply


COMMANDS: dict[str, Handler] = {
    "fault": _fault,
    "clear": _clear,
    "advance": _advance,
    "tick": _advance,  # the word operators and scripts already type
    "pages": _pages,
    **BASE_COMMANDS,
}


