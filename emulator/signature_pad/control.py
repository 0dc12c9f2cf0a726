"""Control lines for a running signature pad emulator: one line in, one line of reply out.

What a developer types into `till emulate signature-pad --pty|--listen` (stdin) to sign and to
break the line:

    sign NAME | FILE       a signer writes on the pad: a name written by the emulator from the
                           installed fonts' glyph outlines with a little jitter (sign 张三,
                           sign J. SMITH), or strokes from a FILE.json ([[[x, y], ...], ...]) or
                           FILE.svg (paths with M L C Q Z), scaled into the pad's active area
    ok | clear | cancel    press an LCD key (an LCD model, keys enabled by the host); clear also
                           clears the pad's ink echo
    advance SECONDS        move the emulator's clock (samples, line rate)
    fault noise            junk bytes between pen packets
    fault drop-bytes       pen packets lose a byte now and then
    fault pen-never-lifted the pen stays down on its last point for ever
    fault never-touches    the pen only hovers: no ink
    fault unplugged        the cable is pulled: the port is gone until fault clear
    fault clear            end every fault
    status                 model, pen state, points sent, keys, faults and what the LCD shows
    help

Every reply is one line starting `ok:` or `error:`; nothing here raises, whatever the input. A reply
never repeats the signer's name or a file's content (a signature is personal data).
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

from emulator.control import BASE_COMMANDS, seconds_arg
from emulator.signature_pad.emulator import FAULTS, SignaturePadEmulator
from emulator.signature_pad.signers import load_signer_file, strokes_from_name

__all__ = ["COMMANDS"]

Handler = Callable[[SignaturePadEmulator, list[str]], str]


def _sign(emulator: SignaturePadEmulator, args: list[str]) -> str:
    if not args:
        return "error: usage: sign NAME | FILE.json | FILE.svg"
    text = " ".join(args)
    path = Path(text)
    if path.suffix.lower() in (".json", ".svg"):
        try:
            strokes = load_signer_file(path)
        except OSError as exc:
            return f"error: cannot read the signature file ({exc.strerror or type(exc).__name__})"
        except UnicodeDecodeError:
            return "error: the signature file is not UTF-8 text"
        source = "file"
    else:
        strokes = strokes_from_name(text)
        source = "name"
    points = emulator.sign(strokes)
    return f"ok: signing a {source}: {len(strokes)} stroke(s), {points} pen-down point(s)"


def _key(name: str) -> Handler:
    def press(emulator: SignaturePadEmulator, args: list[str]) -> str:
        if args:
            return f"error: usage: {name}"
        emulator.press(name)
        return f"ok: {name} pressed"

    return press


def _advance(emulator: SignaturePadEmulator, args: list[str]) -> str:
    emulator.advance(seconds_arg(args))
    return f"ok: t={emulator.now:g}s"


def _fault(emulator: SignaturePadEmulator, args: list[str]) -> str:
    if args == ["clear"]:
        emulator.clear_faults()
        return "ok: faults cleared"
    if len(args) == 1 and args[0] in FAULTS:
        emulator.set_fault(args[0])
        return f"ok: {args[0]} until fault clear"
    return f"error: usage: fault {' | '.join(FAULTS)} | clear"


COMMANDS: dict[str, Handler] = {
    "sign": _sign,
    "ok": _key("ok"),
    "clear": _key("clear"),
    "cancel": _key("cancel"),
    "advance": _advance,
    "tick": _advance,
    "fault": _fault,
    **BASE_COMMANDS,
}
