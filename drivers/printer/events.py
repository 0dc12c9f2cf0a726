"""ESC/POS printer events: commands (host -> printer) and replies (printer -> host).

Byte layouts live in codec.py (and its decoder table, decoders.py); this module only names the
facts. Status bits and the conditions the driver reports live in status.py and are re-exported
here, so `from drivers.printer import events as ev` reaches every printer event.
"""

from __future__ import annotations

import enum

from drivers.events import DeviceEvent
from drivers.printer.status import (
    ASB_FIXED,
    FIXED,
    CoverOpen,
    CutterError,
    PaperNearEnd,
    PaperOut,
    PrinterOffline,
    PrinterReady,
    PrinterStatus,
)
from drivers.record import Record

__all__ = [
    "ASB_FIXED", "FIXED", "Align", "AutoStatus", "CancelUserCharacter", "ChineseMode", "CoverOpen", "Cut",
    "CutterError", "DefineUserCharacters", "FeedDots", "FeedLines", "FlowControl", "Initialize", "PaperNearEnd",
    "PaperOut", "Pdf417Configure", "Pdf417Print", "Pdf417Store", "PrintBarcode", "PrintColumnImage",
    "PrintGraphics", "PrintJobDone",
    "PrintJobStopped", "PrintRasterImage", "PrintText", "PrinterCommand", "PrinterOffline", "PrinterReady",
    "PrinterReply", "PrinterStatus", "PulseDrawer", "QrPrint", "QrSelectModel", "QrSetErrorCorrection",
    "QrSetModuleSize", "QrStore", "RecoverFromError", "RequestStatus", "ReverseFeed", "SelectCodePage",
    "SelectFont", "SelectInternationalCharset", "SelectPaperStopSensors", "SelectPeripheral",
    "SelectPrintMode", "SelectUserCharacters", "SetAlignment", "SetAutoStatus", "SetBarcodeHeight",
    "SetBarcodeWidth", "SetCharacterSize", "SetDoubleStrike", "SetEmphasis", "SetHriFont", "SetHriPosition",
    "SetLeftMargin", "SetLineSpacing", "SetPrintAreaWidth", "SetReverse", "SetUnderline", "SetUpsideDown",
    "StatusReply", "StoreGraphics", "UnknownCommand",
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


class SetLineSpacing(PrinterCommand):
    """ESC 3 n: line pitch in dots; ESC 2 (dots None) = the default pitch, 1/6 inch."""

    dots: int | None = None


class SetLeftMargin(PrinterCommand):
    """GS L nL nH: left margin in dots (motion units; one dot on every profile here)."""

    dots: int


class SetPrintAreaWidth(PrinterCommand):
    """GS W nL nH: width of the printable area in dots, from the left margin."""

    dots: int


class FeedDots(PrinterCommand):
    """ESC J n: print the line buffer and feed n dots."""

    dots: int


class ReverseFeed(PrinterCommand):
    """ESC e n: print the line buffer and feed n lines backwards."""

    lines: int


class SetDoubleStrike(PrinterCommand):
    """ESC G n: looks like bold on a thermal head."""

    on: bool


class SetReverse(PrinterCommand):
    """GS B n: white on black."""

    on: bool


class SetUpsideDown(PrinterCommand):
    """ESC { n: lines printed rotated by 180 degrees."""

    on: bool


class SelectPaperStopSensors(PrinterCommand):
    """ESC c 4 n: bit 0/1 set = a paper near-end stops printing too (not only the paper end)."""

    near_end_stops: bool


class PrintColumnImage(PrinterCommand):
    """ESC * m nL nH d...: one band of a column-format image, printed in the current line.
    m 0/1 = 8-dot single/double density (1 byte per column), 32/33 = 24-dot (3 bytes per column);
    in each byte the MSB is the top dot."""

    mode: int
    columns: int
    data: bytes


class StoreGraphics(PrinterCommand):
    """GS ( L / GS 8 L fn 112: raster graphics into the print buffer, rows of ceil(width/8) bytes,
    MSB = leftmost dot, 1 = print; `scale_x`/`scale_y` are 1 or 2; PrintGraphics prints it."""

    width: int
    height: int
    data: bytes
    scale_x: int = 1
    scale_y: int = 1
    color: int = 1


class PrintGraphics(PrinterCommand):
    """GS ( L fn 50: print the graphics stored by StoreGraphics."""


class Pdf417Configure(PrinterCommand):
    """GS ( k cn 48, fn 65..70: columns, rows, module width, row height, error correction, options."""

    function: int
    params: bytes


class Pdf417Store(PrinterCommand):
    data: bytes


class Pdf417Print(PrinterCommand):
    """Print the symbol stored by Pdf417Store."""


class DefineUserCharacters(PrinterCommand):
    """ESC & y c1 c2 [x d1..d(y*x)]...: glyphs for codes c1..c2, each x columns of y bytes."""

    height_bytes: int
    first: int
    glyphs: tuple[bytes, ...]


class SelectUserCharacters(PrinterCommand):
    """ESC % n: print the user-defined glyphs where defined (bit 0 of n)."""

    on: bool


class CancelUserCharacter(PrinterCommand):
    """ESC ? n: forget the user-defined glyph of code n."""

    code: int


class RecoverFromError(PrinterCommand):
    """DLE ENQ 1 (restart from the failed line) / 2 (after clearing the buffers): real time,
    effective for recoverable errors such as an autocutter error."""

    clear_buffers: bool = False


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


# -- what a print job came to (PrinterDriver.start_job, then poll()) ---------------------------------
class PrintJobDone(DeviceEvent):
    """The whole job reached the printer and the status after it allows printing; `conditions`
    are warnings seen on the way (PaperNearEnd)."""

    bytes_sent: int
    conditions: tuple[DeviceEvent, ...] = ()


class PrintJobStopped(DeviceEvent):
    """The job stopped: a condition that stops printing (PaperOut, CoverOpen, PrinterOffline...)
    or a DeviceFault. `bytes_sent` > 0 means part of it may be on paper."""

    bytes_sent: int
    conditions: tuple[DeviceEvent, ...]
