"""ESC/POS byte tables shared by the decoder (device role) and the encoder (host role), sans-I/O.

Prefix bytes, payload bounds, the commands of one parameter byte and of one on/off flag (the same
layout both ways), and the documented lengths of the commands we skip without modelling them.
"""

from __future__ import annotations

from typing import Final

from drivers.printer import events as ev

__all__ = ["DLE", "ESC", "FLAGS", "FS", "GS", "MAX_BARCODE", "MAX_PAYLOAD", "ONE_BYTE", "QR_LEVELS", "SKIP"]

MAX_PAYLOAD: Final = 1 << 20  # a sane ceiling for one command's declared data (raster, GS 8 L)
MAX_BARCODE: Final = 255
ESC, FS, GS, DLE = 0x1B, 0x1C, 0x1D, 0x10
QR_LEVELS: Final = "LMQH"

# Commands of one parameter byte, both directions: prefix, function, field, lo, hi, and whether
# the printer also takes ASCII digits ('0' + n) for the value, as it does for small selectors.
ONE_BYTE: Final[dict[type[ev.PrinterCommand], tuple[int, int, str, int, int, bool]]] = {
    ev.SetUnderline: (ESC, 0x2D, "dots", 0, 2, True),
    ev.SelectFont: (ESC, 0x4D, "font", 0, 4, True),
    ev.SelectCodePage: (ESC, 0x74, "page", 0, 255, False),
    ev.SelectInternationalCharset: (ESC, 0x52, "charset", 0, 255, False),
    ev.FeedLines: (ESC, 0x64, "lines", 0, 255, False),
    ev.FeedDots: (ESC, 0x4A, "dots", 0, 255, False),
    ev.ReverseFeed: (ESC, 0x65, "lines", 0, 255, False),
    ev.SelectPeripheral: (ESC, 0x3D, "device", 0, 255, False),
    ev.CancelUserCharacter: (ESC, 0x3F, "code", 0, 255, False),
    ev.SetBarcodeHeight: (GS, 0x68, "dots", 1, 255, False),
    ev.SetBarcodeWidth: (GS, 0x77, "module", 1, 255, False),
    ev.SetHriPosition: (GS, 0x48, "pos", 0, 3, True),
    ev.SetHriFont: (GS, 0x66, "font", 0, 4, True),
    ev.SetAutoStatus: (GS, 0x61, "mask", 0, 255, False),
}
# On/off commands: bit 0 of n; the host sends 0 or 1.
FLAGS: Final[dict[type[ev.PrinterCommand], tuple[int, int]]] = {
    ev.SetEmphasis: (ESC, 0x45),
    ev.SetDoubleStrike: (ESC, 0x47),
    ev.SetUpsideDown: (ESC, 0x7B),
    ev.SelectUserCharacters: (ESC, 0x25),
    ev.SetReverse: (GS, 0x42),
}

# Documented total lengths of commands we skip (ESC/POS command reference).
SKIP: Final[dict[int, dict[int, int]]] = {
    ESC: {0x0C: 2, 0x20: 3, 0x24: 4, 0x3C: 2, 0x4B: 3, 0x4C: 2, 0x53: 2, 0x54: 3, 0x55: 3, 0x56: 3,
          0x57: 10, 0x5C: 4, 0x69: 2, 0x6D: 2, 0x72: 3, 0x75: 3, 0x76: 2},
    GS: {0x24: 4, 0x2F: 3, 0x3A: 2, 0x49: 3, 0x50: 4, 0x54: 3, 0x5C: 4, 0x5E: 5, 0x62: 3, 0x63: 2,
         0x67: 6, 0x72: 3},
    FS: {0x21: 3, 0x2D: 3, 0x32: 76, 0x3F: 4, 0x43: 3, 0x53: 4, 0x57: 3, 0x70: 4},
}
