"""Drawing a rendered page as the print head would: a 1-bit image `dots` wide.

Imported only when a page's `.image()` is asked for (Pillow, qrcode, python-barcode are heavy).
Text uses a monospace TrueType font in the printer's fixed cells (12x24 font A, 9x17 font B) and a
CJK-capable font for wide characters; user-defined glyphs (ESC &) and column images (ESC *) are
drawn from their bits. Lines wrap at the print area like the printer does.
"""

from __future__ import annotations

import functools
from typing import Any

from PIL import Image, ImageDraw, ImageFont

from drivers.printer.events import Align
from drivers.printer.fonts import find_font
from emulator.printer.render import (
    CELL,
    MAX_PAGE_MM,
    Barcode,
    Block,
    Feed,
    InlineImage,
    Pdf417Symbol,
    QrSymbol,
    RasterImage,
    RenderedPage,
    RenderLimitError,
    Span,
    TextLine,
    TextStyle,
    display_width,
    max_page_dots,
)

__all__ = ["draw_page", "find_font"]  # find_font lives in drivers/printer/fonts.py (the e-receipts share it)

def draw_page(page: RenderedPage) -> Image.Image:
    """RenderLimitError for a page longer than MAX_PAGE_MM (found before the memory is spent)."""
    pitch = round(page.dpi / 6)  # ESC 2: 1/6 inch
    limit = max_page_dots(page.dpi)
    strips: list[Image.Image] = []
    height = 0
    for block in page.blocks:
        if height + _known_height(block) > limit:
            raise _too_long(page)
        for strip in _draw_block(block, page.dots, pitch, limit - height):
            height += strip.height
            strips.append(strip)
        if height > limit:
            raise _too_long(page)
    height = height or 1
    out = Image.new("L", (page.dots, height), 255)
    y = 0
    for strip in strips:
        out.paste(strip, (0, y))
        y += strip.height
    return out.point(lambda v: 255 if v >= 128 else 0).convert("1", dither=Image.Dither.NONE)


def _known_height(block: Block) -> int:
    """The height of a block that is known before drawing it (feeds and images can be huge)."""
    if isinstance(block, Feed):
        return block.dots
    if isinstance(block, RasterImage):
        return block.size[1]
    return 0


def _too_long(page: RenderedPage) -> RenderLimitError:
    return RenderLimitError(f"the page is longer than {MAX_PAGE_MM / 1000:g} m of paper; the renderer draws "
                            f"at most {MAX_PAGE_MM} mm between two cuts ({max_page_dots(page.dpi)} dots at "
                            f"{page.dpi} dpi)")


@functools.cache
def _font(size: int, cjk: bool) -> ImageFont.FreeTypeFont | ImageFont.ImageFont:
    # Latin in a monospace font keeps the printer's fixed cells; CJK in a CJK font when we have one.
    path = find_font(cjk=True) if cjk else (find_font(cjk=False) or find_font(cjk=True))
    if path is None:
        return ImageFont.load_default()
    return ImageFont.truetype(path, size)


def _styled(img: Image.Image, style: TextStyle) -> Image.Image:
    """Underline, reverse and the size multipliers, applied to one cell."""
    if style.underline:
        ImageDraw.Draw(img).rectangle((0, img.height - style.underline, img.width - 1, img.height - 1), fill=0)
    if style.reverse:
        img = img.point(lambda v: 255 - v)
    if style.width > 1 or style.height > 1:
        img = img.resize((img.width * style.width, img.height * style.height), Image.Resampling.NEAREST)
    return img


@functools.lru_cache(maxsize=4096)  # a receipt reuses few glyphs; CJK text can bring thousands
def _glyph(ch: str, style: TextStyle) -> Image.Image:
    cell_w, cell_h = CELL[style.font_b]
    wide = display_width(ch) == 2
    width = cell_w * (2 if wide else 1)
    img = Image.new("L", (width, cell_h), 255)
    draw = ImageDraw.Draw(img)
    font = _font(cell_h - 2 if wide else round(cell_h * 0.82), wide)
    if ch.isprintable():  # a control character from a code page prints as a blank cell
        for dx in (0, 1) if style.bold else (0,):
            draw.text((dx, 0), ch, font=font, fill=0)
    return _styled(img, style)


def _columns(data: bytes, per_column: int, columns: int) -> Image.Image:
    """Column-format bits (each column `per_column` bytes, MSB = top dot, 1 = black) as an L image."""
    rows = Image.frombytes("1", (per_column * 8, columns), data[: per_column * columns], "raw", "1;I")
    return rows.transpose(Image.Transpose.TRANSPOSE).convert("L")


def _user_glyph(glyph: tuple[int, bytes], style: TextStyle) -> Image.Image:
    height_bytes, bits = glyph
    cell_h = CELL[style.font_b][1]
    img = Image.new("L", (max(1, len(bits) // height_bytes), cell_h), 255)
    if bits:
        img.paste(_columns(bits, height_bytes, len(bits) // height_bytes), (0, 0))
    return _styled(img, style)


def _inline(image: InlineImage) -> Image.Image:
    per_column = 3 if image.mode >= 32 else 1
    img = _columns(image.data, per_column, image.columns)
    return img.resize(image.size, Image.Resampling.NEAREST)


def _items(span: Span | InlineImage) -> list[Image.Image]:
    if isinstance(span, InlineImage):
        return [_inline(span)]
    if span.user:  # user-defined glyphs replace single-byte codes they define
        out = []
        for b in span.data:
            glyph = span.user.get(b)
            out.append(_user_glyph(glyph, span.style) if glyph else _glyph(Span(bytes((b,)), span.style,
                                                                                code_page=span.code_page).text or " ",
                                                                           span.style))
        return out
    return [_glyph(ch, span.style) for ch in span.text]


def _area(block: Block, dots: int) -> tuple[int, int]:
    left = min(getattr(block, "left", 0), dots - 1)
    width = getattr(block, "width", None)
    return left, max(1, dots - left if width is None else min(width, dots - left))


def _strip(content: Image.Image, dots: int, block: Block, height: int | None = None) -> Image.Image:
    left, width = _area(block, dots)
    content = content.crop((0, 0, min(content.width, width), content.height))
    spare = width - content.width
    x = left + {Align.LEFT: 0, Align.CENTER: spare // 2, Align.RIGHT: spare}[getattr(block, "align", Align.LEFT)]
    strip = Image.new("L", (dots, max(content.height, height or 0)), 255)
    strip.paste(content, (x, 0))
    return strip


def _draw_block(block: Block, dots: int, pitch: int, room: int) -> list[Image.Image]:
    """The block's strips; a text line whose wrapped rows need more than `room` dots is refused."""
    if isinstance(block, TextLine):
        return _draw_text(block, dots, block.spacing or pitch, room)
    if isinstance(block, Feed):
        return [Image.new("L", (dots, block.dots), 255)] if block.dots else []
    if isinstance(block, QrSymbol):
        return [_strip(_draw_qr(block), dots, block)]
    if isinstance(block, Pdf417Symbol):
        # No PDF417 writer among our dependencies: a grey box of a typical size keeps the layout honest.
        return [_strip(Image.new("L", (min(dots, 360), 90), 160), dots, block)]
    if isinstance(block, RasterImage):
        img = Image.frombytes("1", (block.width_bytes * 8, block.height), block.data, "raw", "1;I").convert("L")
        img = img.crop((0, 0, block.dots_wide, block.height))
        return [_strip(img.resize(block.size, Image.Resampling.NEAREST), dots, block)]
    return _draw_barcode(block, dots, pitch)


def _draw_text(line: TextLine, dots: int, pitch: int, room: int | None = None) -> list[Image.Image]:
    _, width = _area(line, dots)
    rows: list[list[Image.Image]] = [[]]
    x = 0
    for span in line.spans:
        for item in _items(span):
            if x + item.width > width and rows[-1]:  # the printer wraps a too-long line
                rows.append([])
                x = 0
            rows[-1].append(item)
            x += item.width
    if room is not None:  # 20,000 characters at 8x8 wrap into metres of paper: count before drawing
        needed = sum(max(pitch, max((g.height for g in row), default=CELL[False][1])) for row in rows)
        if needed > room:
            raise RenderLimitError(f"a text line wraps into {needed} dots of paper, more than the "
                                   f"{MAX_PAGE_MM} mm a page may have")
    upside_down = any(isinstance(s, Span) and s.style.upside_down for s in line.spans)
    strips = []
    for row in rows:
        height = max((g.height for g in row), default=CELL[False][1])
        content = Image.new("L", (max(1, sum(g.width for g in row)), height), 255)
        x = 0
        for glyph in row:
            content.paste(glyph, (x, height - glyph.height))  # share one baseline
            x += glyph.width
        if upside_down:
            content = content.rotate(180)
        strips.append(_strip(content, dots, line, height=pitch))
    return strips


def _draw_qr(block: QrSymbol) -> Image.Image:
    import qrcode
    from qrcode.exceptions import DataOverflowError

    levels = {"L": qrcode.constants.ERROR_CORRECT_L, "M": qrcode.constants.ERROR_CORRECT_M,
              "Q": qrcode.constants.ERROR_CORRECT_Q, "H": qrcode.constants.ERROR_CORRECT_H}
    qr = qrcode.QRCode(error_correction=levels.get(block.level, levels["L"]), box_size=1, border=4)
    qr.add_data(block.data)
    try:
        qr.make(fit=True)
    except (ValueError, DataOverflowError):  # qrcode says "Invalid version (was 41...)"
        raise RenderLimitError(f"a QR symbol of {len(block.data)} bytes is more than a QR code holds at level "
                               f"{block.level} (version 40 holds at most 2953 bytes at level L)") from None
    matrix: list[list[bool]] = qr.get_matrix()
    raw = bytes(0 if cell else 255 for row in matrix for cell in row)
    img = Image.frombytes("L", (len(matrix), len(matrix)), raw)
    module = max(1, block.module)
    return img.resize((img.width * module, img.height * module), Image.Resampling.NEAREST)


def _draw_barcode(block: Barcode, dots: int, pitch: int) -> list[Image.Image]:
    hri = TextLine((Span(style=TextStyle(), text=block.hri_text),), block.align, left=block.left, width=block.width)
    modules = _barcode_modules(block)
    if modules is None:  # a symbology we cannot draw: a grey box keeps the layout honest
        bars = Image.new("L", (dots // 2, max(1, block.height)), 160)
    else:
        row = bytes(0 if m == "1" else 255 for m in f"0000000000{modules}0000000000")
        bars = Image.frombytes("L", (len(row), 1), row)
        bars = bars.resize((bars.width * max(1, block.module), max(1, block.height)), Image.Resampling.NEAREST)
    strips = [_strip(bars, dots, block)]
    if block.hri in (1, 3):
        strips[:0] = _draw_text(hri, dots, pitch)
    if block.hri in (2, 3):
        strips += _draw_text(hri, dots, pitch)
    return strips


def _barcode_modules(block: Barcode) -> str | None:
    import barcode  # type: ignore[import-untyped]  # python-barcode, installed with python-escpos

    names = {"UPC-A": "upca", "EAN13": "ean13", "EAN8": "ean8", "CODE39": "code39", "CODE128": "code128"}
    name = names.get(block.name)
    if name is None:
        return None
    options: dict[str, Any] = {}
    if name == "code39":
        options["add_checksum"] = False
    try:
        built: list[str] = barcode.get_barcode_class(name)(block.hri_text, **options).build()
    except Exception:  # python-barcode raises its own zoo of errors for bad content
        return None
    return built[0]
