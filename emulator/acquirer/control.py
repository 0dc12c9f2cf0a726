"""Control lines for a running acquirer simulator (`till host`'s stdin), in emulator/control.py's
shape: `COMMANDS` maps a word to a handler taking (simulator, args) and returning one line that
starts `ok:` or `error:`. Each word is one of AcquirerSimulator's thread-safe controls
(docs/host-link.md, "Controls"); it applies from the next request on.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING

from emulator.control import BASE_COMMANDS, Handler, seconds_arg

if TYPE_CHECKING:
    from emulator.acquirer.simulator import AcquirerSimulator

__all__ = ["COMMANDS"]

_MAX_COUNT = 1_000_000


def _count(args: list[str], usage: str, default: int = 1) -> int:
    if not args:
        return default
    if len(args) != 1 or not args[0].isdigit() or int(args[0]) > _MAX_COUNT:
        raise ValueError(f"usage: {usage}")
    return int(args[0])


def _switch(args: list[str], usage: str) -> bool:
    if not args:
        return True
    if len(args) != 1 or args[0].lower() not in ("on", "off"):
        raise ValueError(f"usage: {usage}")
    return args[0].lower() == "on"


def _latency(sim: AcquirerSimulator, args: list[str]) -> str:
    sim.latency = seconds_arg(args, "latency")
    return f"ok: latency {sim.latency:g} s"


def _silent(sim: AcquirerSimulator, args: list[str]) -> str:
    sim.hold_responses = _switch(args, "silent [on|off]")
    return f"ok: silent {'on' if sim.hold_responses else 'off'} (answers decided and booked, then lost)"


def _drop(sim: AcquirerSimulator, args: list[str]) -> str:
    count = _count(args, "drop [COUNT]")
    sim.drop_responses(count)
    return f"ok: the next {count} answer(s) are lost"


def _late(sim: AcquirerSimulator, args: list[str]) -> str:
    usage = "late [COUNT [SECONDS]]"
    count = _count(args[:1], usage)
    delay = seconds_arg(args[1:], "late COUNT") if len(args) > 1 else None
    if len(args) > 2:
        raise ValueError(f"usage: {usage}")
    sim.answer_late(count, delay=delay)
    when = f"after {delay:g} s" if delay is not None else "on `release`"
    return f"ok: the next {count} answer(s) are sent {when}"


def _release(sim: AcquirerSimulator, args: list[str]) -> str:
    return f"ok: released {sim.release_late()} late answer(s)"


def _decline(sim: AcquirerSimulator, args: list[str]) -> str:
    if not 1 <= len(args) <= 2:
        raise ValueError("usage: decline CODE [COUNT]")
    count = _count(args[1:], "decline CODE [COUNT]")
    sim.decline_next(args[0].upper(), count)  # ValueError names the codes, never the argument
    return f"ok: the next {count} 0200 request(s) are declined"


def _upload_fail(sim: AcquirerSimulator, args: list[str]) -> str:
    usage = "upload-fail silent|ignore|CODE [COUNT]"
    if not 1 <= len(args) <= 2:
        raise ValueError(f"usage: {usage}")
    count = _count(args[1:], usage)
    fault = args[0].lower() if args[0].lower() in ("silent", "ignore") else args[0].upper()
    sim.fail_uploads(fault, count)  # ValueError names the codes, never the argument
    what = {"silent": "stored and not answered", "ignore": "neither stored nor answered"}.get(
        fault, "answered with that code, nothing stored")
    return f"ok: the next {count} signature upload(s) are {what}"


def _out_of_balance(sim: AcquirerSimulator, args: list[str]) -> str:
    sim.report_out_of_balance_once()
    return "ok: the next settlement answers 95"


def _require_sign_on(sim: AcquirerSimulator, args: list[str]) -> str:
    sim.require_sign_on = _switch(args, "require-sign-on [on|off]")
    return f"ok: require-sign-on {'on' if sim.require_sign_on else 'off'}"


def _refuse_mac(sim: AcquirerSimulator, args: list[str]) -> str:
    if len(args) > 1:
        raise ValueError("usage: refuse-mac [TERMINAL_ID]")
    sim.refuse_mac(args[0] if args else None)
    return "ok: A0 to every request but 0800 until the terminal signs on again"


def _drop_connections(sim: AcquirerSimulator, args: list[str]) -> str:
    return f"ok: dropped {sim.drop_connections()} connection(s)"


def _clear(sim: AcquirerSimulator, args: list[str]) -> str:
    sim.clear_faults()
    return "ok: faults cleared"


COMMANDS: Mapping[str, Handler] = {
    "latency": _latency,
    "silent": _silent,
    "drop": _drop,
    "late": _late,
    "release": _release,
    "decline": _decline,
    "upload-fail": _upload_fail,
    "out-of-balance": _out_of_balance,
    "require-sign-on": _require_sign_on,
    "refuse-mac": _refuse_mac,
    "disconnect": _drop_connections,
    "clear": _clear,
    **BASE_COMMANDS,
}

