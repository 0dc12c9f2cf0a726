"""What the emulated printer put on paper: the page model, a text rendering and a 1-bit PNG.

Pillow, qrcode and python-barcode are imported inside the drawing functions only: building the
page model is on the emulator's hot path and start-up, drawing is what a test or a viewer asks for.
"""

from __future__ import annotations

import functools
import glob
import os
import re
import unicodedata
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from drivers.printer.events import Align

if TYPE_CHECKING:
    from PIL import Image, ImageFont

__all__ = [
    "Barcode",
    "Block",
    "QrSymbol",
    "RasterImage",
    "RenderedPage",
    "Span",
    "TextLine",
    "TextStyle",
    "decode_text",
    "find_font",
]

_CODE_PAGES = {0: "cp437", 2: "cp850", 3: "cp860", 4: "cp863", 5: "cp865", 16: "cp1252", 17: "cp866",
               19: "cp858"}
_SYMBOLOGIES = {0: "UPC-A", 1: "UPC-E", 2: "EAN13", 3: "EAN8", 4: "CODE39", 5: "ITF", 6: "CODABAR",
                65: "UPC-A", 66: "UPC-E", 67: "EAN13", 68: "EAN8", 69: "CODE39", 70: "ITF",
                71: "CODABAR", 72: "CODE93", 73: "CODE128"}
_CELL = {False: (12, 24), True: (9, 17)}  # font A / font B cell in dots
_CJK_FONTS = (
    "/usr/share/fonts/truetype/wqy/wqy-microhei.ttc",
    "/usr/share/fonts/truetype/wqy/wqy-zenhei.ttc",
    "/usr/share/fonts/opentype/noto/NotoSansCJK-Regular.ttc",
    "/usr/share/fonts/noto-cjk/NotoSansCJK-Regular.ttc",
    "/usr/share/fonts/google-noto-cjk/NotoSansCJK-Regular.ttc",
    "/usr/share/fonts/truetype/droid/DroidSansFallbackFull.ttf",
    "/usr/share/fonts/truetype/droid/DroidSansFallback.ttf",
    "/System/Library/Fonts/PingFang.ttc",
    "/System/Library/Fonts/STHeiti Light.ttc",
    "C:/Windows/Fonts/msyh.ttc",
    "C:/Windows/Fonts/simsun.ttc",
)
_USER_FONT_GLOBS = ("~/.local/share/fonts/**/*", "~/.fonts/**/*")
_MONO_FONTS = (
    "/usr/share/fonts/truetype/dejavu/DejaVuSansMono.ttf",
    "/usr/share/fonts/dejavu/DejaVuSansMono.ttf",
    "/Library/Fonts/Menlo.ttc",
    "C:/Windows/Fonts/consola.ttf",
)


_FOUR_BYTE_START = re.compile(rb"[\x81-\xfe][\x30-\x39]")


def decode_text(data: bytes, code_page: int, chinese: bool) -> str:
    """Printer bytes to text: the code page for single bytes; in Chinese mode, bytes 0x81..0xFE
    and the byte after them are one GB18030 2-byte character (as the codec framed them)."""
    if not chinese:
        return data.decode(_CODE_PAGES.get(code_page, "cp437"), errors="replace")
    if data.isascii():
        return data.decode("ascii")
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


def _cells(ch: str) -> int:
    return 2 if unicodedata.east_asian_width(ch) in ("W", "F") else 1


def _display_width(text: str) -> int:
    return sum(_cells(ch) for ch in text)


# -- the page model ------------------------------------------------------------------------------
@dataclass(frozen=True, kw_only=True)
class TextStyle:
    font_b: bool = False
    bold: bool = False
    underline: int = 0
    width: int = 1
    height: int = 1


@dataclass(frozen=True, kw_only=True)
class Span:
    text: str
    style: TextStyle


@dataclass(frozen=True, kw_only=True)
class TextLine:
    spans: tuple[Span, ...]
    align: Align = Align.LEFT

    @property
    def text(self) -> str:
        return "".join(span.text for span in self.spans)


@dataclass(frozen=True, kw_only=True)
class QrSymbol:
    data: bytes
    module: int
    level: str
    align: Align = Align.LEFT


@dataclass(frozen=True, kw_only=True)
class RasterImage:
    width_bytes: int
    height: int
    data: bytes
    mode: int = 0
    align: Align = Align.LEFT

    @property
    def size(self) -> tuple[int, int]:
        """Printed size in dots (modes 1/3 double the width, 2/3 the height)."""
        return self.width_bytes * 8 * (1 + (self.mode & 1)), self.height * (1 + (self.mode >> 1 & 1))


@dataclass(frozen=True, kw_only=True)
class Barcode:
    symbology: int
    data: bytes
    height: int
    module: int
    hri: int
    align: Align = Align.LEFT

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


Block = TextLine | QrSymbol | RasterImage | Barcode


@dataclass(frozen=True, kw_only=True)
class RenderedPage:
    """One stretch of paper: everything between two cuts."""

    blocks: tuple[Block, ...]
    dots: int = 576
    columns: int = 48
    dpi: int = 203
    cut: str | None = None  # "full", "partial", or None for the page still in the printer

    @property
    def text(self) -> str:
        """Readable rendering: alignment within the font-A columns, sizes shown as normal text."""
        return "\n".join(self._text_line(block) for block in self.blocks)

    def _text_line(self, block: Block) -> str:
        if isinstance(block, TextLine):
            line = block.text
        elif isinstance(block, QrSymbol):
            line = f"[QR: {block.data.decode('utf-8', errors='replace')}]"
        elif isinstance(block, RasterImage):
            line = "[image {}x{}]".format(*block.size)
        else:
            line = f"[barcode {block.name}: {block.hri_text}]"
        if not line:
            return ""
        spare = max(0, self.columns - _display_width(line))
        pad = {Align.LEFT: 0, Align.CENTER: spare // 2, Align.RIGHT: spare}[block.align]
        return " " * pad + line

    def image(self) -> Image.Image:
        """The page as the print head would put it: mode "1", `dots` wide."""
        from PIL import Image

        strips = [strip for block in self.blocks for strip in _draw_block(block, self.dots, self.dpi)]
        height = sum(s.height for s in strips) or 1
        page = Image.new("L", (self.dots, height), 255)
        y = 0
        for strip in strips:
            page.paste(strip, (0, y))
            y += strip.height
        return page.point(lambda v: 255 if v >= 128 else 0).convert("1", dither=Image.Dither.NONE)

    def save_png(self, path: str | os.PathLike[str]) -> None:
        self.image().save(Path(path), format="PNG")


# -- drawing -------------------------------------------------------------------------------------
def find_font(cjk: bool = True) -> str | None:
    """A TrueType font on this machine: CJK-capable first (OPENTILL_FONT overrides), else mono."""
    env = os.environ.get("OPENTILL_FONT")
    if env and Path(env).is_file():
        return env
    return _find_font(cjk)


@functools.cache
def _find_font(cjk: bool) -> str | None:
    if cjk:
        for path in _CJK_FONTS:
            if Path(path).is_file():
                return path
        for pattern in _USER_FONT_GLOBS:
            for path in glob.glob(os.path.expanduser(pattern), recursive=True):
                if any(key in Path(path).name.lower() for key in ("wqy", "notosanscjk", "droidsansfallback")):
                    return path
    return next((p for p in _MONO_FONTS if Path(p).is_file()), None)


@functools.cache
def _font(size: int, cjk: bool) -> ImageFont.FreeTypeFont | ImageFont.ImageFont:
    from PIL import ImageFont

    # Latin in a monospace font keeps the printer's fixed cells; CJK in a CJK font when we have one.
    path = find_font(cjk=True) if cjk else (find_font(cjk=False) or find_font(cjk=True))
    if path is None:
        return ImageFont.load_default()
    return ImageFont.truetype(path, size)


@functools.lru_cache(maxsize=4096)  # a receipt reuses few glyphs; CJK text can bring thousands
def _glyph(ch: str, style: TextStyle) -> Image.Image:
    from PIL import Image, ImageDraw

    cell_w, cell_h = _CELL[style.font_b]
    wide = _cells(ch) == 2
    width = cell_w * (2 if wide else 1)
    img = Image.new("L", (width, cell_h), 255)
    draw = ImageDraw.Draw(img)
    font = _font(cell_h - 2 if wide else round(cell_h * 0.82), wide)
    for dx in (0, 1) if style.bold else (0,):
        draw.text((dx, 0), ch, font=font, fill=0)
    if style.underline:
        draw.rectangle((0, cell_h - style.underline, width - 1, cell_h - 1), fill=0)
    if style.width > 1 or style.height > 1:
        img = img.resize((width * style.width, cell_h * style.height), Image.Resampling.NEAREST)
    return img


def _strip(content: Image.Image, dots: int, align: Align, gap: int = 0) -> Image.Image:
    from PIL import Image

    content = content.crop((0, 0, min(content.width, dots), content.height))
    spare = dots - content.width
    x = {Align.LEFT: 0, Align.CENTER: spare // 2, Align.RIGHT: spare}[align]
    strip = Image.new("L", (dots, content.height + gap), 255)
    strip.paste(content, (x, 0))
    return strip


def _draw_block(block: Block, dots: int, dpi: int) -> list[Image.Image]:
    from PIL import Image

    if isinstance(block, TextLine):
        return _draw_text(block, dots, round(dpi / 6))
    if isinstance(block, QrSymbol):
        return [_strip(_draw_qr(block), dots, block.align)]
    if isinstance(block, RasterImage):
        img = Image.frombytes("1", (block.width_bytes * 8, block.height), block.data, "raw", "1;I")
        return [_strip(img.convert("L").resize(block.size, Image.Resampling.NEAREST), dots, block.align)]
    return _draw_barcode(block, dots, dpi)


def _draw_text(line: TextLine, dots: int, pitch: int) -> list[Image.Image]:
    from PIL import Image

    rows: list[list[Image.Image]] = [[]]
    x = 0
    for span in line.spans:
        for ch in span.text:
            glyph = _glyph(ch, span.style)
            if x + glyph.width > dots and rows[-1]:  # the printer wraps a too-long line
                rows.append([])
                x = 0
            rows[-1].append(glyph)
            x += glyph.width
    strips = []
    for row in rows:
        height = max((g.height for g in row), default=_CELL[False][1])
        content = Image.new("L", (max(1, sum(g.width for g in row)), height), 255)
        x = 0
        for glyph in row:
            content.paste(glyph, (x, height - glyph.height))  # share one baseline
            x += glyph.width
        strips.append(_strip(content, dots, line.align, gap=max(0, pitch - _CELL[False][1])))
    return strips


def _draw_qr(block: QrSymbol) -> Image.Image:
    import qrcode
    from PIL import Image

    levels = {"L": qrcode.constants.ERROR_CORRECT_L, "M": qrcode.constants.ERROR_CORRECT_M,
              "Q": qrcode.constants.ERROR_CORRECT_Q, "H": qrcode.constants.ERROR_CORRECT_H}
    qr = qrcode.QRCode(error_correction=levels.get(block.level, levels["L"]), box_size=1, border=4)
    qr.add_data(block.data)
    qr.make(fit=True)
    matrix: list[list[bool]] = qr.get_matrix()
    raw = bytes(0 if cell else 255 for row in matrix for cell in row)
    img = Image.frombytes("L", (len(matrix), len(matrix)), raw)
    module = max(1, block.module)
    return img.resize((img.width * module, img.height * module), Image.Resampling.NEAREST)


def _draw_barcode(block: Barcode, dots: int, dpi: int) -> list[Image.Image]:
    from PIL import Image

    hri = TextLine(spans=(Span(text=block.hri_text, style=TextStyle()),), align=block.align)
    modules = _barcode_modules(block)
    if modules is None:  # a symbology we cannot draw: a grey box keeps the layout honest
        bars = Image.new("L", (dots // 2, block.height), 160)
    else:
        row = bytes(0 if m == "1" else 255 for m in f"0000000000{modules}0000000000")
        bars = Image.frombytes("L", (len(row), 1), row)
        bars = bars.resize((bars.width * max(1, block.module), max(1, block.height)),
                           Image.Resampling.NEAREST)
    strips = [_strip(bars, dots, block.align)]
    if block.hri in (1, 3):
        strips[:0] = _draw_text(hri, dots, round(dpi / 6))
    if block.hri in (2, 3):
        strips += _draw_text(hri, dots, round(dpi / 6))
    return strips


def _barcode_modules(block: Barcode) -> str | None:
    import barcode  # type: ignore[import-untyped]  # python-barcode, installed with python-escpos

    names = {"UPC-A": "upca", "EAN13": "ean13", "EAN8": "ean8", "CODE39": "code39", "CODE128": "code128"}
    name = names.get(block.name)
    if name is None:
        return None
    text = block.hri_text
    options: dict[str, Any] = {}
    if name == "code39":
        options["add_checksum"] = False
    try:
        built: list[str] = barcode.get_barcode_class(name)(text, **options).build()
    except Exception:  # python-barcode raises its own zoo of errors for bad content
        return None
    return built[0]
