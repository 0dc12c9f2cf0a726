"""What the emulated printer put on paper: the page model and its text rendering.

Blocks keep what the printer received (text as raw bytes with the code page in force), so
building a page costs almost nothing; text is decoded when someone reads `.text`, and the 1-bit
PNG is drawn by emulator/printer_draw.py (Pillow, qrcode and python-barcode are imported there,
only when a page's `.image()` is asked for).
"""

from __future__ import annotations

import os
import re
import unicodedata
from collections.abc import Mapping
from pathlib import Path
from typing import TYPE_CHECKING

from drivers.printer.events import Align
from drivers.record import Record

if TYPE_CHECKING:
    from PIL import Image

__all__ = [
    "CELL", "GB_MODE", "MAX_PAGE_MM", "Barcode", "Block", "Feed", "InlineImage", "Pdf417Symbol", "QrSymbol",
    "RasterImage", "RenderLimitError", "RenderedPage", "Span", "TextLine", "TextStyle", "decode_text",
    "max_page_dots",
]

# ESC t n -> Python codec (Epson's table numbers); a page we cannot name prints as CP437.
_CODE_PAGES = {0: "cp437", 2: "cp850", 3: "cp860", 4: "cp863", 5: "cp865", 13: "cp857", 14: "cp737",
               15: "iso8859_7", 16: "cp1252", 17: "cp866", 18: "cp852", 19: "cp858", 20: "cp874", 32: "cp720",
               33: "cp775", 34: "cp855", 35: "cp861", 36: "cp862", 37: "cp864", 38: "cp869", 39: "iso8859_2",
               40: "iso8859_15", 44: "cp1125", 45: "cp1250", 46: "cp1251", 47: "cp1253", 48: "cp1254",
               49: "cp1255", 50: "cp1256", 51: "cp1257", 52: "cp1258", 53: "kz1048"}
_KATAKANA = 1  # JIS X 0201: A1..DF are half-width katakana
GB_MODE = -1  # "code page" of text received in Chinese mode: GB18030 2-byte codes
_SYMBOLOGIES = {0: "UPC-A", 1: "UPC-E", 2: "EAN13", 3: "EAN8", 4: "CODE39", 5: "ITF", 6: "CODABAR",
                65: "UPC-A", 66: "UPC-E", 67: "EAN13", 68: "EAN8", 69: "CODE39", 70: "ITF",
                71: "CODABAR", 72: "CODE93", 73: "CODE128"}
CELL = {False: (12, 24), True: (9, 17)}  # font A / font B cell in dots
_FOUR_BYTE_START = re.compile(rb"[\x81-\xfe][\x30-\x39]")
# The longest page (paper between two cuts) drawn as a picture: a long real receipt is under 1 m;
# feed or character-size bombs in a byte stream would otherwise ask for gigabytes of image.
MAX_PAGE_MM = 2000


class RenderLimitError(ValueError):
    """A page the renderer will not draw: longer than MAX_PAGE_MM, or a symbol no printer makes."""


def max_page_dots(dpi: int) -> int:
    return round(MAX_PAGE_MM / 25.4 * dpi)


def decode_text(data: bytes, code_page: int, chinese: bool = False) -> str:
    """Printer bytes to text: the code page for single bytes; in Chinese mode (or with code_page
    GB_MODE), bytes 0x81..0xFE and the byte after them are one GB18030 2-byte character."""
    if data.isascii():
        return data.decode("ascii")
    if not chinese and code_page != GB_MODE:
        if code_page == _KATAKANA:
            return "".join(chr(b) if b < 0x80 else chr(0xFF61 + b - 0xA1) if 0xA1 <= b <= 0xDF else "\ufffd"
                           for b in data)
        return data.decode(_CODE_PAGES.get(code_page, "cp437"), errors="replace")
    if not _FOUR_BYTE_START.search(data):
        # No lead byte followed by a digit: GB18030's own decoder splits it exactly as the printer does.
        return data.decode("gb18030", errors="replace")
    out: list[str] = []
    i = 0
    while i < len(data):
        b = data[i]
        if 0x81 <= b <= 0xFE and i + 1 < len(data):
            out.append(data[i : i + 2].decode("gb18030", errors="replace"))
            i += 2
        else:
            out.append(chr(b) if b < 0x80 else "\ufffd")
            i += 1
    return "".join(out)


def display_width(text: str) -> int:
    return sum(2 if unicodedata.east_asian_width(ch) in ("W", "F") else 1 for ch in text)


# -- the page model ------------------------------------------------------------------------------
class TextStyle(Record):
    font_b: bool = False
    bold: bool = False
    underline: int = 0
    width: int = 1
    height: int = 1
    reverse: bool = False
    upside_down: bool = False


class Span:
    """A run of text in one style: raw printer bytes, decoded on first use."""

    __slots__ = ("_text", "code_page", "data", "style", "user")

    def __init__(self, data: bytes = b"", style: TextStyle = TextStyle(), *, code_page: int = 0,  # noqa: B008 - immutable
                 user: Mapping[int, tuple[int, bytes]] | None = None, text: str | None = None) -> None:
        self.data, self.style, self.code_page, self.user = data, style, code_page, user
        self._text = text

    @property
    def text(self) -> str:
        if self._text is None:
            self._text = decode_text(self.data, self.code_page).replace("\r", "").expandtabs(8)
        return self._text


class InlineImage:
    """An ESC * band printed inside a text line: `columns` wide, 8 or 24 dots tall before scaling."""

    __slots__ = ("columns", "data", "mode")

    def __init__(self, mode: int, columns: int, data: bytes) -> None:
        self.mode, self.columns, self.data = mode, columns, data

    @property
    def size(self) -> tuple[int, int]:
        """Printed size in dots: single density doubles the width, 8-dot modes triple the height."""
        return self.columns * (2 if self.mode in (0, 32) else 1), 24

    @property
    def text(self) -> str:
        return "[image {}x{}]".format(*self.size)


class _Placed:
    """Where a block sits across the paper: alignment, left margin and print area width (dots)."""

    __slots__ = ("align", "left", "width")

    def __init__(self, align: Align, left: int, width: int | None) -> None:
        self.align, self.left, self.width = align, left, width


class TextLine(_Placed):
    __slots__ = ("spacing", "spans")

    def __init__(self, spans: tuple[Span | InlineImage, ...] = (), align: Align = Align.LEFT, *, spacing: int = 0,
                 left: int = 0, width: int | None = None) -> None:
        # _Placed's three slots set here, not through super().__init__: a receipt builds dozens a page.
        self.align, self.left, self.width = align, left, width
        self.spans, self.spacing = spans, spacing  # spacing 0 = the page's default line pitch

    @property
    def text(self) -> str:
        return "".join(span.text for span in self.spans)


class QrSymbol(_Placed):
    __slots__ = ("data", "level", "module")

    def __init__(self, data: bytes, module: int, level: str, align: Align = Align.LEFT, *, left: int = 0,
                 width: int | None = None) -> None:
        super().__init__(align, left, width)
        self.data, self.module, self.level = data, module, level


class Pdf417Symbol(_Placed):
    __slots__ = ("data",)

    def __init__(self, data: bytes, align: Align = Align.LEFT, *, left: int = 0, width: int | None = None) -> None:
        super().__init__(align, left, width)
        self.data = data


class RasterImage(_Placed):
    """GS v 0 images and GS ( L graphics: rows of `width_bytes`, MSB = leftmost dot, 1 = black."""

    __slots__ = ("data", "dots_wide", "height", "mode", "width_bytes")

    def __init__(self, width_bytes: int, height: int, data: bytes, mode: int = 0, align: Align = Align.LEFT, *,
                 dots_wide: int | None = None, left: int = 0, width: int | None = None) -> None:
        super().__init__(align, left, width)
        self.width_bytes, self.height, self.data, self.mode = width_bytes, height, data, mode
        self.dots_wide = width_bytes * 8 if dots_wide is None else dots_wide

    @property
    def size(self) -> tuple[int, int]:
        """Printed size in dots (modes 1/3 double the width, 2/3 the height)."""
        return self.dots_wide * (1 + (self.mode & 1)), self.height * (1 + (self.mode >> 1 & 1))


class Barcode(_Placed):
    __slots__ = ("data", "height", "hri", "module", "symbology")

    def __init__(self, symbology: int, data: bytes, height: int, module: int, hri: int, align: Align = Align.LEFT, *,
                 left: int = 0, width: int | None = None) -> None:
        super().__init__(align, left, width)
        self.symbology, self.data, self.height, self.module, self.hri = symbology, data, height, module, hri

    @property
    def name(self) -> str:
        return _SYMBOLOGIES.get(self.symbology, f"#{self.symbology}")

    @property
    def hri_text(self) -> str:
        """What the symbol encodes, without CODE128's code-set prefix ({A, {B, {C)."""
        text = self.data.decode("ascii", errors="replace")
        if self.name == "CODE128" and text[:2] in ("{A", "{B", "{C"):
            return text[2:]
        return text


class Feed:
    """Blank paper fed by ESC J n (no line of text)."""

    __slots__ = ("dots",)

    def __init__(self, dots: int) -> None:
        self.dots = dots


Block = TextLine | QrSymbol | Pdf417Symbol | RasterImage | Barcode | Feed


class RenderedPage:
    """One stretch of paper: everything between two cuts."""

    __slots__ = ("blocks", "columns", "cut", "dots", "dpi")

    def __init__(self, blocks: tuple[Block, ...], dots: int = 576, columns: int = 48, dpi: int = 203,
                 cut: str | None = None) -> None:
        self.blocks, self.dots, self.columns, self.dpi = blocks, dots, columns, dpi
        self.cut = cut  # "full", "partial", or None for the page still in the printer

    def __repr__(self) -> str:
        return f"RenderedPage(blocks={len(self.blocks)}, dots={self.dots}, dpi={self.dpi}, cut={self.cut!r})"

    @property
    def text(self) -> str:
        """Readable rendering: one line per printed line, as sent (the PNG wraps long lines like the
        printer; the text does not), aligned within the font-A columns of the print area."""
        return "\n".join(self._text_line(block) for block in self.blocks if not isinstance(block, Feed))

    def _text_line(self, block: Block) -> str:
        if isinstance(block, TextLine):
            line = block.text
        elif isinstance(block, QrSymbol):
            line = f"[QR: {block.data.decode('utf-8', errors='replace')}]"
        elif isinstance(block, Pdf417Symbol):
            line = f"[PDF417: {block.data.decode('utf-8', errors='replace')}]"
        elif isinstance(block, RasterImage):
            line = "[image {}x{}]".format(*block.size)
        elif isinstance(block, Barcode):
            line = f"[barcode {block.name}: {block.hri_text}]"
        else:
            return ""
        if not line:
            return ""
        cell = CELL[False][0]
        margin = block.left // cell
        area = self.columns - margin if block.width is None else min(self.columns - margin, block.width // cell)
        spare = max(0, area - display_width(line))
        pad = {Align.LEFT: 0, Align.CENTER: spare // 2, Align.RIGHT: spare}[block.align]
        return " " * (margin + pad) + line

    def image(self) -> Image.Image:
        """The page as the print head would put it: mode "1", `dots` wide."""
        from emulator.printer.draw import draw_page

        return draw_page(self)

    def save_png(self, path: str | os.PathLike[str]) -> None:
        self.image().save(Path(path), format="PNG")
