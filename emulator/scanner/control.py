"""Control lines for a running scanner emulator: one line in, one line of reply out.

What a developer types into `till emulate scanner --pty|--listen` (stdin) to hold codes in front
of the scanner and to break the line:

    scan TEXT [SYMBOLOGY]     a code comes in front of the scanner (default qr; also ean13, ean8,
                              code128, gs1-128, code39, itf, pdf417, datamatrix); a manual-trigger
                              scanner reads it at once, a serial-trigger one when the host triggers
    scan-image FILE.png       every code in the picture (decoded with zxing-cpp), in order
    advance SECONDS           move the emulator's clock (decode time, trigger and ACK timeouts)
    fault no-read [N]         the next N reads fail (no N: until clear)
    fault garbled [N]         the next N decodes go out corrupted (default 1)
    fault double-read         every code is sent twice
    fault nak-storm [N]       the next N host commands are refused (no N: until clear)
    fault unplugged           the cable is pulled: the port is gone until clear
    fault clear | clear       end every fault
    status | help

Every reply is one line starting `ok:` or `error:`; nothing here raises, whatever the input. A reply
never repeats a code's text (a payment code is a bearer token). `status` and `help` are every
emulator's (emulator/control.py BASE_COMMANDS).
"""

from __future__ import annotations

from collections.abc import Callable

from emulator.control import BASE_COMMANDS, seconds_arg
from emulator.scanner.emulator import SYMBOLOGIES, ScannerEmulator

__all__ = ["COMMANDS"]

Handler = Callable[[ScannerEmulator, list[str]], str]


def _scan(emulator: ScannerEmulator, args: list[str]) -> str:
    if not 1 <= len(args) <= 2:
        return "error: usage: scan TEXT [SYMBOLOGY]"
    symbology = args[1] if len(args) == 2 else "qr"
    if symbology not in SYMBOLOGIES:
        return f"error: unknown symbology (known: {', '.join(SYMBOLOGIES)})"
    read = emulator.scan(args[0], symbology)
    return f"ok: {symbology} code of {len(args[0])} character(s) {'read' if read else 'waits for a trigger'}"


def _scan_image(emulator: ScannerEmulator, args: list[str]) -> str:
    if len(args) != 1:
        return "error: usage: scan-image FILE.png"
    try:
        found = emulator.scan_image(args[0])
    except OSError as exc:
        return f"error: cannot read the picture ({exc.strerror or type(exc).__name__})"
    except ImportError:
        return "error: scan-image needs zxing-cpp (pip install zxing-cpp)"
    if not found:
        return "error: no code found in the picture"
    return "ok: " + ", ".join(symbology or "unknown (not sent)" for _, symbology in found) + f" ({len(found)} code(s))"


def _advance(emulator: ScannerEmulator, args: list[str]) -> str:
    emulator.advance(seconds_arg(args))
    return f"ok: t={emulator.now:g}s"


def _count(args: list[str]) -> int | None:
    if len(args) < 2:
        return None
    if len(args) > 2 or not args[1].isdigit() or not 1 <= int(args[1]) <= 1_000_000:
        raise ValueError("N must be a whole number from 1")
    return int(args[1])


def _fault(emulator: ScannerEmulator, args: list[str]) -> str:
    kind = args[0] if args else ""
    if kind == "clear" and len(args) == 1:
        return _clear(emulator, [])
    if kind in ("no-read", "garbled", "nak-storm") and len(args) <= 2:
        count = _count(args)
        emulator.set_fault(kind, count=count)
        scope = "until clear" if count is None and kind != "garbled" else f"x{count or 1}"
        return f"ok: {kind} {scope}"
    if kind in ("double-read", "unplugged") and len(args) == 1:
        emulator.set_fault(kind)
        return f"ok: {kind} until clear"
    return "error: usage: fault no-read [N] | garbled [N] | double-read | nak-storm [N] | unplugged | clear"


def _clear(emulator: ScannerEmulator, args: list[str]) -> str:
    emulator.clear_faults()
    return "ok: faults cleared"


COMMANDS: dict[str, Handler] = {
    "scan": _scan,
    "scan-image": _scan_image,
    "advance": _advance,
    "tick": _advance,
    "fault": _fault,
    "clear": _clear,
    **BASE_COMMANDS,
}
