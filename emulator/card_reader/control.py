"""Control lines for a running card-reader emulator: one line in, one line of reply out.

What a developer types into `till emulate card-reader --pty|--listen` (stdin) to play the
cardholder and to break the line:

    present NAME [chip|swipe|tap]   a test card arrives (`cards` lists them)
    remove                          the card leaves the reader
    pin NNNN | pin cancel           the cardholder types a PIN, or presses cancel
    pin auto | pin manual           answer PIN requests with the card's typed_pin, or wait for `pin`
    advance SECONDS                 move the emulator's clock (slow cards, timeouts); `tick` too
    fault corrupt N                 flip the LRC of our next N frames
    fault nak-storm [N]             NAK the host's next N frames (no N: until `clear`)
    fault silent | fault disconnect [hard]  answer nothing | fail the line (hard: the port hangs up)
    clear                           end every fault
    status | display | cards | help

Every reply is one line starting `ok:` or `error:`; nothing here raises, whatever the input. A
reply never repeats a PIN (nor any word after the command: a typo may hold one). `status` and
`help` are every emulator's (emulator/control.py BASE_COMMANDS); `fault` lines are the
emulator's `set_fault`.

Thread safety: the emulator is not locked here. On a served link call it through the link, e.g.
`link.control(lambda peer: apply(peer, line))` (emulator/control.py, which runs every family's table).
"""

from __future__ import annotations

from collections.abc import Callable

from emulator.card_reader.cards import load_catalogue
from emulator.card_reader.emulator import CardReaderEmulator
from emulator.control import BASE_COMMANDS, seconds_arg

__all__ = ["COMMANDS"]

Handler = Callable[[CardReaderEmulator, list[str]], str]


def _present(emulator: CardReaderEmulator, args: list[str]) -> str:
    if not 1 <= len(args) <= 2:
        return "error: usage: present NAME [chip|swipe|tap]"
    emulator.present(args[0], args[1] if len(args) > 1 else None)
    card = load_catalogue()[args[0]]
    return f"ok: {args[0]} presented by {args[1] if len(args) > 1 else card.default_mode}"


def _remove(emulator: CardReaderEmulator, args: list[str]) -> str:
    return "ok: card removed" if emulator.remove() else "ok: there was no card to remove"


def _pin(emulator: CardReaderEmulator, args: list[str]) -> str:
    if len(args) != 1:
        return "error: usage: pin NNNN | pin cancel | pin auto | pin manual"
    word = args[0]
    if word == "cancel":
        emulator.cancel_pin()
        return "ok: cancel pressed"
    if word in ("auto", "manual"):
        emulator.auto_pin = word == "auto"
        how = "at once with the card's typed_pin" if emulator.auto_pin else "by `pin NNNN` or `pin cancel`"
        return f"ok: PIN requests are answered {how}"
    emulator.enter_pin(word)  # ValueError without the digits for a bad PIN
    return "ok: PIN entered"


def _advance(emulator: CardReaderEmulator, args: list[str]) -> str:
    emulator.advance(seconds_arg(args))
    return f"ok: t={emulator.now:g}s"


def _count(args: list[str], index: int) -> int | None:
    if len(args) <= index:
        return None
    if not args[index].isdigit() or not 1 <= int(args[index]) <= 1_000_000:
        raise ValueError("N must be a whole number from 1")
    return int(args[index])


def _fault(emulator: CardReaderEmulator, args: list[str]) -> str:
    kind = args[0] if args else ""
    if kind == "corrupt" and len(args) == 2:
        count = _count(args, 1)
        emulator.set_fault(kind, frames=count)
        return f"ok: the next {count} frame(s) from the reader will have a bad LRC"
    if kind == "nak-storm" and len(args) <= 2:
        frames = _count(args, 1)
        emulator.set_fault(kind, frames=frames)
        return f"ok: NAKing {'every frame until clear' if frames is None else f'the next {frames} frame(s)'}"
    if kind == "silent" and len(args) == 1:
        emulator.set_fault(kind)
        return "ok: the reader answers nothing until clear"
    if kind == "disconnect" and len(args) == 1:
        emulator.set_fault(kind)
        return "ok: the reader is disconnected until clear"
    if kind == "disconnect" and args[1:] == ["hard"]:
        emulator.set_fault(kind, hard=True)
        return "ok: the reader's port is gone until clear (a served link hangs up)"
    return "error: usage: fault corrupt N | fault nak-storm [N] | fault silent | fault disconnect [hard]"


def _clear(emulator: CardReaderEmulator, args: list[str]) -> str:
    emulator.clear_faults()
    return "ok: faults cleared"


def _display(emulator: CardReaderEmulator, args: list[str]) -> str:
    return f"ok: display: {' '.join(emulator.display.split())}"  # one line, whatever was shown


def _cards(emulator: CardReaderEmulator, args: list[str]) -> str:
    return "ok: " + ", ".join(f"{c.name} ({'/'.join(c.entry_modes)})" for c in load_catalogue().values())


COMMANDS: dict[str, Handler] = {
    "present": _present,
    "remove": _remove,
    "pin": _pin,
    "advance": _advance,
    "tick": _advance,
    "fault": _fault,
    "clear": _clear,
    "display": _display,
    "cards": _cards,
    **BASE_COMMANDS,
}
