"""Signature pad events, sans-I/O. The signature-pad helper owns this file and may add to it; the
records below are the interface the checkout builds on (fields fixed)."""

from __future__ import annotations

from drivers.events import DeviceEvent
from drivers.record import Record

__all__ = [
    "NULL_COORDINATE", "Beep", "ClearInk", "ClearScreen", "EnableKeys", "EnablePen", "Identify", "InkAdded", "PadAck",
    "PadCommand", "PadIdentity", "PadKey", "PadNak", "PenPressure", "PenSample", "ShowText", "Signature",
]


class Signature(Record):
    """A captured signature: strokes of pen-down points in the pad's raw coordinates."""

    strokes: tuple[tuple[tuple[int, int], ...], ...]  # each stroke: (x, y) points while the pen was down
    width: int  # the pad's coordinate range (x 0..width-1, y 0..height-1), per model
    height: int
    dpi: int


class PadKey(DeviceEvent):
    """A key on an LCD pad: "ok", "clear" or "cancel"."""

    key: str


class InkAdded(DeviceEvent):
    """Pen-down points arrived since the last poll (the checkout re-arms its pen-away wait)."""

    points: int


# -- what the pad sends besides the three above (docs/signature-pad.md) ----------------------------
class PenSample(DeviceEvent):
    """One Topaz coordinate packet (types 0/1/4): raw X, Y (12-bit), proximity and pen-down bits.
    x = y = 0x0FFF is the null point (the pen left the pad)."""

    x: int
    y: int
    down: bool = True
    proximity: bool = True

    @property
    def is_null(self) -> bool:
        return self.x == NULL_COORDINATE and self.y == NULL_COORDINATE


NULL_COORDINATE = 0x0FFF


class PenPressure(DeviceEvent):
    """A Topaz pressure packet (type 7): 12-bit pressure; the driver ignores it."""

    pressure: int
    down: bool = True
    proximity: bool = True


class PadIdentity(DeviceEvent):
    """The model/serial packet (type 2): a 7-bit model code and a 21-bit serial number."""

    model: int
    serial: int


class PadAck(DeviceEvent):
    """An LCD pad took the command whose command byte is `command`."""

    command: int


class PadNak(DeviceEvent):
    """An LCD pad refused a command: cause "checksum", "unknown" or "argument"."""

    command: int
    cause: str = "checksum"


# -- host -> LCD pad ------------------------------------------------------------------------------
class PadCommand(Record):
    """Base of what the host sends an LCD pad (a SigLite takes none)."""


class ShowText(PadCommand):
    """Show `text` on LCD line `line` (1..lcd.lines), in the profile's lcd.encoding."""

    line: int
    text: str


class ClearScreen(PadCommand):
    """Blank every LCD line."""


class ClearInk(PadCommand):
    """Forget the pad's ink echo (the LCD shows the ink as it is written)."""


class Beep(PadCommand):
    """Sound the beeper for `duration_ms` (10-2550, in steps of 10)."""

    duration_ms: int = 100


class EnableKeys(PadCommand):
    """Which LCD keys report: a subset of ("ok", "clear", "cancel"); empty: none."""

    keys: tuple[str, ...] = ("ok", "clear", "cancel")


class EnablePen(PadCommand):
    """Start (True) or stop (False) the pen stream."""

    on: bool = True


class Identify(PadCommand):
    """Ask for the model/serial packet."""
