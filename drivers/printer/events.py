"""ESC/POS printer events: commands (host -> printer), replies (printer -> host), status, conditions.

Byte layouts live in codec.py; this module only names the facts. `PrinterStatus` is shared by the
driver (decoding replies) and the emulator (producing them), so the status bit tables of
PROTOCOLS.md §1.2 exist exactly once, here.
"""

from __future__ import annotations

import enum
from collections.abc import Mapping

from drivers.events import DeviceEvent
from drivers.record import Record

__all__ = [
    "Align", "AutoStatus", "ChineseMode", "CoverOpen", "Cut", "CutterError", "FeedLines", "FlowControl",
    "Initialize", "PaperNearEnd", "PaperOut", "PrintBarcode", "PrintRasterImage", "PrintText",
    "PrinterCommand", "PrinterOffline", "PrinterReady", "PrinterReply", "PrinterStatus", "PulseDrawer",
    "QrPrint", "QrSelectModel", "QrSetErrorCorrection", "QrSetModuleSize", "QrStore", "RequestStatus",
    "SelectCodePage", "SelectFont", "SelectInternationalCharset", "SelectPeripheral", "SelectPrintMode",
    "SetAlignment", "SetAutoStatus", "SetBarcodeHeight", "SetBarcodeWidth", "SetCharacterSize",
    "SetEmphasis", "SetHriFont", "SetHriPosition", "SetUnderline", "StatusReply", "UnknownCommand",
]


# -- host -> printer -----------------------------------------------------------------------------
class PrinterCommand(Record):
    """Base of everything the host sends to the printer."""


class Align(enum.IntEnum):
    LEFT = 0
    CENTER = 1
    RIGHT = 2


class Initialize(PrinterCommand):
    """ESC @: clear the print buffer, modes back to power-on."""


class SelectPrintMode(PrinterCommand):
    """ESC ! n: sets font, bold, double size and underline in one go."""

    font_b: bool = False
    bold: bool = False
    double_height: bool = False
    double_width: bool = False
    underline: bool = False


class SetEmphasis(PrinterCommand):
    on: bool


class SetUnderline(PrinterCommand):
    dots: int  # 0 = off, 1 or 2 dots thick


class SetAlignment(PrinterCommand):
    align: Align


class SelectFont(PrinterCommand):
    font: int  # 0 = A, 1 = B


class SetCharacterSize(PrinterCommand):
    width: int = 1  # multiplier 1..8
    height: int = 1


class SelectCodePage(PrinterCommand):
    page: int  # 0 = CP437, 16 = WPC1252


class SelectInternationalCharset(PrinterCommand):
    charset: int  # 15 = China


class ChineseMode(PrinterCommand):
    """FS & (on) / FS . (off): bytes >= 0x81 start a 2-byte GB18030 code while on."""

    on: bool


class SelectPeripheral(PrinterCommand):
    """ESC = n: part of the common POS handshake (`1B 40 1B 3D 01 10 04 01`)."""

    device: int = 1


class PrintText(PrinterCommand):
    """Already-encoded printable bytes; LF ends a line. The device role yields maximal runs."""

    data: bytes


class FeedLines(PrinterCommand):
    lines: int


class Cut(PrinterCommand):
    """GS V: `feed` None = cut where the paper is; otherwise feed that many dots, then cut."""

    partial: bool = False
    feed: int | None = None


class SetBarcodeHeight(PrinterCommand):
    dots: int


class SetBarcodeWidth(PrinterCommand):
    module: int


class SetHriPosition(PrinterCommand):
    pos: int  # 0 none, 1 above, 2 below, 3 both


class SetHriFont(PrinterCommand):
    """GS f n: font of the human-readable barcode text (sent by python-escpos' barcode())."""

    font: int


class PrintBarcode(PrinterCommand):
    symbology: int  # 0-6: function A (NUL-terminated); 65-79: function B (length-prefixed)
    data: bytes


class PrintRasterImage(PrinterCommand):
    """GS v 0: rows of `width_bytes` bytes, MSB = leftmost dot, 1 = black."""

    width_bytes: int
    height: int
    data: bytes
    mode: int = 0  # 0 normal, 1 double width, 2 double height, 3 both


class QrSelectModel(PrinterCommand):
    model: int = 2


class QrSetModuleSize(PrinterCommand):
    size: int


class QrSetErrorCorrection(PrinterCommand):
    level: str  # "L", "M", "Q" or "H"


class QrStore(PrinterCommand):
    data: bytes


class QrPrint(PrinterCommand):
    """Print the symbol stored by QrStore."""


class RequestStatus(PrinterCommand):
    """DLE EOT n: real-time, answered with one byte even while the printer is offline."""

    kind: int  # 1 printer, 2 offline cause, 3 error cause, 4 roll paper


class SetAutoStatus(PrinterCommand):
    mask: int  # GS a n: bit0 drawer, bit1 online, bit2 error, bit3 paper; 0 = off


class PulseDrawer(PrinterCommand):
    pin: int  # 2 or 5
    on_ms: int  # multiples of 2 ms, up to 510
    off_ms: int


class UnknownCommand(PrinterCommand):
    """Device role only: a command this codec does not model, skipped by its documented length."""

    data: bytes


# -- printer -> host -----------------------------------------------------------------------------
class PrinterReply(Record):
    """Base of everything the printer sends to the host."""


class StatusReply(PrinterReply):
    kind: int  # which DLE EOT n this byte answers
    value: int


class AutoStatus(PrinterReply):
    data: bytes  # the 4 ASB bytes


class FlowControl(PrinterReply):
    paused: bool  # XOFF (13) = True, XON (11) = False


# -- status bits (PROTOCOLS.md §1.2) -------------------------------------------------------------
FIXED = 0x12  # DLE EOT reply: bits 1 and 4 set, bits 0 and 7 clear
ASB_FIXED = 0x10  # ASB byte 1: bit 4 set


class PrinterStatus(Record):
    """What the printer's sensors say; idle answers 0x12 to every DLE EOT n."""

    online: bool = True
    cover_open: bool = False
    paper_near_end: bool = False
    paper_out: bool = False
    cutter_error: bool = False
    unrecoverable_error: bool = False
    auto_recoverable_error: bool = False
    drawer_high: bool = False
    feed_pressed: bool = False

    @property
    def error(self) -> bool:
        return self.cutter_error or self.unrecoverable_error or self.auto_recoverable_error

    @property
    def printable(self) -> bool:
        """Online and nothing that stops printing (near end only warns)."""
        return self.online and not (self.cover_open or self.paper_out or self.error)

    def status_byte(self, kind: int) -> int:
        """The one-byte answer to DLE EOT `kind`."""
        if kind == 1:
            bits = _bits((self.drawer_high, 0x04), (not self.online, 0x08), (self.feed_pressed, 0x40))
        elif kind == 2:
            bits = _bits((self.cover_open, 0x04), (self.paper_out, 0x20), (self.error, 0x40))
        elif kind == 3:
            bits = _bits(
                (self.cutter_error, 0x08),
                (self.unrecoverable_error, 0x20),
                (self.auto_recoverable_error, 0x40),
            )
        elif kind == 4:
            bits = _bits((self.paper_near_end, 0x0C), (self.paper_out, 0x60))
        else:
            raise ValueError(f"DLE EOT kind must be 1..4, not {kind}")
        return FIXED | bits

    def asb_bytes(self) -> bytes:
        """The 4 bytes of an Automatic Status Back push."""
        return bytes(
            (
                ASB_FIXED
                | _bits(
                    (self.drawer_high, 0x04),
                    (not self.online, 0x08),
                    (self.cover_open, 0x20),
                    (self.feed_pressed, 0x40),
                ),
                _bits(
                    (self.cutter_error, 0x08),
                    (self.unrecoverable_error, 0x20),
                    (self.auto_recoverable_error, 0x40),
                ),
                _bits((self.paper_near_end, 0x03), (self.paper_out, 0x0C)),
                0,
            )
        )

    @classmethod
    def from_replies(cls, replies: Mapping[int, int]) -> PrinterStatus:
        """Status from DLE EOT answers keyed by kind; a kind not asked reads as idle."""
        r1, r2, r3, r4 = (replies.get(kind, FIXED) for kind in (1, 2, 3, 4))
        return cls(
            online=not r1 & 0x08,
            drawer_high=bool(r1 & 0x04),
            feed_pressed=bool(r1 & 0x40),
            cover_open=bool(r2 & 0x04),
            paper_out=bool(r2 & 0x20 or r4 & 0x60),
            cutter_error=bool(r3 & 0x08),
            unrecoverable_error=bool(r3 & 0x20),
            auto_recoverable_error=bool(r3 & 0x40),
            paper_near_end=bool(r4 & 0x0C),
        )

    @classmethod
    def from_asb(cls, data: bytes) -> PrinterStatus:
        if len(data) != 4:
            raise ValueError(f"ASB is 4 bytes, not {len(data)}")
        b1, b2, b3 = data[0], data[1], data[2]
        return cls(
            online=not b1 & 0x08,
            drawer_high=bool(b1 & 0x04),
            cover_open=bool(b1 & 0x20),
            feed_pressed=bool(b1 & 0x40),
            cutter_error=bool(b2 & 0x08),
            unrecoverable_error=bool(b2 & 0x20),
            auto_recoverable_error=bool(b2 & 0x40),
            paper_near_end=bool(b3 & 0x03),
            paper_out=bool(b3 & 0x0C),
        )


def _bits(*pairs: tuple[bool, int]) -> int:
    out = 0
    for flag, mask in pairs:
        if flag:
            out |= mask
    return out


# -- conditions the driver reports ---------------------------------------------------------------
class PaperOut(DeviceEvent):
    pass


class PaperNearEnd(DeviceEvent):
    """Printing still works; the roll needs changing soon."""


class CoverOpen(DeviceEvent):
    pass


class PrinterOffline(DeviceEvent):
    cause: str


class CutterError(DeviceEvent):
    pass


class PrinterReady(DeviceEvent):
    """The printer came back: online with nothing stopping it (reported by poll())."""
