"""The print stage of the emulated printer: modes, the line buffer, and what lands on paper.

`Paper.print(cmd)` takes commands in stream order (the emulator decides whether the printer can
print at all) and builds blocks and pages (one per cut) of emulator/printer_render.py. It also
counts what paper the job used: `lines` (text lines and fed lines) for the "paper out after N
lines" fault, and `fed` (dots of paper moved) for the print-speed model. Building a block is
cheap: text stays raw bytes with the code page in force until someone reads it.
"""

from __future__ import annotations

import functools
import re
from collections.abc import Callable, Mapping
from typing import Any

from drivers.printer import events as ev
from emulator.printer.render import (
    CELL,
    GB_MODE,
    Barcode,
    Block,
    Feed,
    InlineImage,
    Pdf417Symbol,
    QrSymbol,
    RasterImage,
    RenderedPage,
    Span,
    TextLine,
    TextStyle,
)

__all__ = ["PRINTING", "Paper", "split_lines"]

# Commands that move paper or put something on it; the rest only change modes.
PRINTING = frozenset({ev.PrintText, ev.FeedLines, ev.FeedDots, ev.ReverseFeed, ev.Cut, ev.PrintBarcode,
                      ev.PrintRasterImage, ev.PrintColumnImage, ev.PrintGraphics, ev.QrPrint, ev.Pdf417Print})
_SPLIT_RISK = re.compile(rb"[\x81-\xfe]\n")  # in Chinese mode an LF may be the 2nd byte of a pair
_QR_MODULES = 37  # paper estimate for a native QR (version 5 + quiet zone); drawing computes the real one


@functools.cache
def _style(font_b: bool, bold: bool, underline: int, width: int, height: int, reverse: bool,
           upside_down: bool) -> TextStyle:
    return TextStyle(font_b=font_b, bold=bold, underline=underline, width=width, height=height, reverse=reverse,
                     upside_down=upside_down)


def split_lines(data: bytes, chinese: bool) -> list[bytes]:
    """Split text at LF, keeping a GB18030 pair whole in Chinese mode."""
    if not chinese or not _SPLIT_RISK.search(data):
        return data.split(b"\n")
    out, start, i = [], 0, 0
    while i < len(data):
        b = data[i]
        if 0x81 <= b <= 0xFE:
            i += 2
            continue
        if b == 0x0A:
            out.append(data[start:i])
            start = i + 1
        i += 1
    out.append(data[start:])
    return out


class Paper:
    def __init__(self, *, dots: int, dpi: int, columns: int, code_page: int = 0, chinese: bool = False,
                 native_qr: bool = True, pdf417: bool = True) -> None:
        self.dots, self.dpi, self.columns = dots, dpi, columns
        self.native_qr, self.pdf417 = native_qr, pdf417
        self.pitch = round(dpi / 6)  # ESC 2: 1/6 inch
        self._power_on = (code_page, chinese)
        self.pages: list[RenderedPage] = []
        self.blocks: list[Block] = []
        self.ignored: list[ev.PrinterCommand] = []  # understood, but nothing printed (no native QR...)
        self.lines = 0  # text lines printed and lines fed
        self.fed = 0  # dots of paper moved
        self.line_limit: int | None = None  # the paper ends after this many lines
        self.handlers: dict[type[ev.PrinterCommand], Callable[[Any], ev.PrinterCommand | None]] = {
            ev.Initialize: self._initialize, ev.PrintText: self._text, ev.SelectPrintMode: self._print_mode,
            ev.SetEmphasis: self._bold, ev.SetDoubleStrike: self._bold, ev.SetUnderline: self._underline,
            ev.SelectFont: self._font, ev.SetCharacterSize: self._size, ev.SetReverse: self._reverse,
            ev.SetUpsideDown: self._upside_down, ev.SetAlignment: self._alignment,
            ev.SetLineSpacing: self._line_spacing, ev.SetLeftMargin: self._margin,
            ev.SetPrintAreaWidth: self._area, ev.SelectCodePage: self._code_page_cmd,
            ev.ChineseMode: self._chinese_mode, ev.FeedLines: self._feed_lines, ev.FeedDots: self._feed_dots,
            ev.ReverseFeed: self._flush, ev.Cut: self._cut, ev.SetBarcodeHeight: self._barcode_setting,
            ev.SetBarcodeWidth: self._barcode_setting, ev.SetHriPosition: self._barcode_setting,
            ev.PrintBarcode: self._barcode, ev.PrintRasterImage: self._raster, ev.PrintColumnImage: self._column,
            ev.StoreGraphics: self._store_graphics, ev.PrintGraphics: self._graphics,
            ev.QrSetModuleSize: self._qr_setting, ev.QrSetErrorCorrection: self._qr_setting,
            ev.QrStore: self._qr_setting, ev.QrPrint: self._qr, ev.Pdf417Store: self._pdf417_store,
            ev.Pdf417Print: self._pdf417, ev.DefineUserCharacters: self._define_user,
            ev.CancelUserCharacter: self._cancel_user, ev.SelectUserCharacters: self._select_user,
        }
        self.reset()

    def reset(self) -> None:
        """Power-on modes (ESC @): drops an unprinted line, stored graphics and user glyphs."""
        self._code_page, self._chinese = self._power_on
        self._font_b = self._bold_on = self._reverse_on = self._upside = False
        self._underline_dots = 0
        self._width = self._height = 1
        self._style: TextStyle | None = None
        self._align = self._line_align = ev.Align.LEFT
        self._spacing = 0  # 0 = the default pitch
        self._left = 0
        self._area_width: int | None = None
        self._spans: list[Span | InlineImage] = []
        self._barcode_cfg = {"height": 162, "module": 3, "hri": 0}
        self._qr_cfg: dict[str, Any] = {"module": 3, "level": "L", "data": None}
        self._pdf417_data: bytes | None = None
        self._stored_graphics: ev.StoreGraphics | None = None
        self._user: dict[int, tuple[int, bytes]] = {}
        self._user_on = False

    def print(self, cmd: ev.PrinterCommand) -> ev.PrinterCommand | None:
        """Apply one command. Returns what was left unprinted when the paper ended (line_limit)."""
        handler = self.handlers.get(type(cmd))
        return handler(cmd) if handler is not None else None

    def current_page(self) -> RenderedPage:
        """What is on the paper since the last cut, including a line not yet ended by LF."""
        pending = (self._line(),) if self._spans else ()
        return self._page(tuple(self.blocks) + pending, cut=None)

    def _page(self, blocks: tuple[Block, ...], cut: str | None) -> RenderedPage:
        return RenderedPage(blocks, dots=self.dots, columns=self.columns, dpi=self.dpi, cut=cut)

    # -- text ---------------------------------------------------------------------------------------
    def _text(self, cmd: ev.PrintText) -> ev.PrinterCommand | None:
        data = cmd.data
        lf = data.find(b"\n")
        if lf < 0:
            self._add(data)
            return None
        # One LF, the last byte: _SPLIT_RISK could only match at the byte before it.
        split_risk = self._chinese and lf and 0x81 <= data[lf - 1] <= 0xFE
        if lf == len(data) - 1 and self.line_limit is None and not split_risk:
            # The usual receipt line, one line ended by LF: _add() then _end_line(always=True), inline.
            spans = self._spans
            if lf:
                if not spans:
                    self._line_align = self._align  # alignment counts at the start of a line
                user = self._user if self._user_on and self._user else None
                spans.append(Span(data[:-1], self._style or self._current_style(),
                                  code_page=GB_MODE if self._chinese else self._code_page, user=user))
            if spans:
                self.blocks.append(TextLine(tuple(spans), self._line_align, spacing=self._spacing, left=self._left,
                                            width=self._area_width))
                self._spans = []
            else:
                self.blocks.append(TextLine((), self._align, spacing=self._spacing, left=self._left,
                                            width=self._area_width))
            self.lines += 1
            self.fed += max(self._spacing or self.pitch, CELL[self._font_b][1] * self._height)
            return None
        parts = split_lines(data, self._chinese)
        last = parts.pop()
        for i, part in enumerate(parts):
            if part:
                self._add(part)
            self._end_line(always=True)
            if self.lines == self.line_limit:
                rest = b"\n".join([*parts[i + 1 :], last])
                return ev.PrintText(data=rest) if rest else None
        if last:
            self._add(last)
        return None

    def _add(self, data: bytes) -> None:
        if not self._spans:
            self._line_align = self._align  # alignment counts at the start of a line
        style = self._style or self._current_style()
        user = self._user if self._user_on and self._user else None
        self._spans.append(Span(data, style, code_page=GB_MODE if self._chinese else self._code_page, user=user))

    def _current_style(self) -> TextStyle:
        self._style = _style(self._font_b, self._bold_on, self._underline_dots, self._width, self._height,
                             self._reverse_on, self._upside)
        return self._style

    def _line(self) -> TextLine:
        align = self._line_align if self._spans else self._align
        return TextLine(tuple(self._spans), align, spacing=self._spacing, left=self._left, width=self._area_width)

    def _end_line(self, *, always: bool) -> None:
        """LF prints the line (an empty one too); feeds, cuts and images flush only pending text."""
        if self._spans:
            self.blocks.append(TextLine(tuple(self._spans), self._line_align, spacing=self._spacing, left=self._left,
                                        width=self._area_width))
            self._spans = []
        elif always:
            self.blocks.append(TextLine((), self._align, spacing=self._spacing, left=self._left,
                                        width=self._area_width))
        else:
            return
        self.lines += 1
        self.fed += max(self._spacing or self.pitch, CELL[self._font_b][1] * self._height)

    def _flush(self, cmd: ev.PrinterCommand) -> None:
        self._end_line(always=False)

    # -- modes --------------------------------------------------------------------------------------
    def _print_mode(self, cmd: ev.SelectPrintMode) -> None:
        self._font_b, self._bold_on, self._underline_dots = cmd.font_b, cmd.bold, int(cmd.underline)
        self._width, self._height = 1 + cmd.double_width, 1 + cmd.double_height
        self._style = None

    def _bold(self, cmd: ev.SetEmphasis | ev.SetDoubleStrike) -> None:
        self._bold_on, self._style = cmd.on, None

    def _underline(self, cmd: ev.SetUnderline) -> None:
        self._underline_dots, self._style = cmd.dots, None

    def _font(self, cmd: ev.SelectFont) -> None:
        self._font_b, self._style = cmd.font == 1, None

    def _size(self, cmd: ev.SetCharacterSize) -> None:
        self._width, self._height, self._style = cmd.width, cmd.height, None

    def _reverse(self, cmd: ev.SetReverse) -> None:
        self._reverse_on, self._style = cmd.on, None

    def _upside_down(self, cmd: ev.SetUpsideDown) -> None:
        self._upside, self._style = cmd.on, None

    def _alignment(self, cmd: ev.SetAlignment) -> None:
        self._align = cmd.align

    def _line_spacing(self, cmd: ev.SetLineSpacing) -> None:
        self._spacing = cmd.dots or 0

    def _margin(self, cmd: ev.SetLeftMargin) -> None:
        self._left = min(cmd.dots, self.dots - 1)

    def _area(self, cmd: ev.SetPrintAreaWidth) -> None:
        self._area_width = cmd.dots or None

    def _code_page_cmd(self, cmd: ev.SelectCodePage) -> None:
        self._code_page = cmd.page

    def _chinese_mode(self, cmd: ev.ChineseMode) -> None:
        self._chinese = cmd.on

    def _initialize(self, cmd: ev.Initialize) -> None:
        self.reset()

    # -- paper motion -------------------------------------------------------------------------------
    def _feed_lines(self, cmd: ev.FeedLines) -> ev.PrinterCommand | None:
        self._end_line(always=False)
        for done in range(1, cmd.lines + 1):
            if self.lines == self.line_limit:
                return ev.FeedLines(lines=cmd.lines - done + 1)
            self.blocks.append(TextLine((), self._align, spacing=self._spacing))
            self.lines += 1
            self.fed += self._spacing or self.pitch
        return None

    def _feed_dots(self, cmd: ev.FeedDots) -> None:
        if self._spans:  # ESC J prints the line buffer and feeds n dots instead of a line pitch
            line = self._line()
            line.spacing = max(1, cmd.dots)
            self.blocks.append(line)
            self._spans = []
            self.lines += 1
        elif cmd.dots:
            self.blocks.append(Feed(cmd.dots))
        self.fed += cmd.dots

    def _cut(self, cmd: ev.Cut) -> None:
        self._end_line(always=False)
        if cmd.feed:
            self.blocks.append(Feed(cmd.feed))
            self.fed += cmd.feed
        self.pages.append(self._page(tuple(self.blocks), cut="partial" if cmd.partial else "full"))
        self.blocks = []

    def _place(self, block: Block, height: int) -> None:
        self._end_line(always=False)
        self.blocks.append(block)
        self.fed += height

    # -- images and symbols -------------------------------------------------------------------------
    def _raster(self, cmd: ev.PrintRasterImage) -> None:
        image = RasterImage(cmd.width_bytes, cmd.height, cmd.data, cmd.mode, self._align, left=self._left,
                            width=self._area_width)
        self._place(image, image.size[1])

    def _column(self, cmd: ev.PrintColumnImage) -> None:
        if not self._spans:
            self._line_align = self._align
        self._spans.append(InlineImage(cmd.mode, cmd.columns, cmd.data))

    def _store_graphics(self, cmd: ev.StoreGraphics) -> None:
        self._stored_graphics = cmd

    def _graphics(self, cmd: ev.PrintGraphics) -> None:
        g = self._stored_graphics
        if g is None:
            self.ignored.append(cmd)
            return
        mode = (g.scale_x == 2) | (g.scale_y == 2) << 1
        image = RasterImage((g.width + 7) // 8, g.height, g.data, mode, self._align, dots_wide=g.width,
                            left=self._left, width=self._area_width)
        self._place(image, image.size[1])

    def _barcode_setting(self, cmd: ev.SetBarcodeHeight | ev.SetBarcodeWidth | ev.SetHriPosition) -> None:
        cfg = self._barcode_cfg
        if isinstance(cmd, ev.SetBarcodeHeight):
            cfg["height"] = cmd.dots
        elif isinstance(cmd, ev.SetBarcodeWidth):
            cfg["module"] = cmd.module
        else:
            cfg["hri"] = cmd.pos

    def _barcode(self, cmd: ev.PrintBarcode) -> None:
        b = self._barcode_cfg
        hri_lines = (b["hri"] & 1) + (b["hri"] >> 1 & 1)
        self._place(Barcode(cmd.symbology, cmd.data, b["height"], b["module"], b["hri"], self._align,
                            left=self._left, width=self._area_width), b["height"] + hri_lines * self.pitch)

    def _qr_setting(self, cmd: ev.QrSetModuleSize | ev.QrSetErrorCorrection | ev.QrStore) -> None:
        if isinstance(cmd, ev.QrSetModuleSize):
            self._qr_cfg["module"] = cmd.size
        elif isinstance(cmd, ev.QrSetErrorCorrection):
            self._qr_cfg["level"] = cmd.level
        else:
            self._qr_cfg["data"] = cmd.data

    def _qr(self, cmd: ev.QrPrint) -> None:
        qr = self._qr_cfg
        if not self.native_qr or qr["data"] is None:
            self.ignored.append(cmd)  # a 58 mm module without native QR prints nothing
            return
        self._place(QrSymbol(qr["data"], qr["module"], qr["level"], self._align, left=self._left,
                             width=self._area_width), _QR_MODULES * qr["module"])

    def _pdf417_store(self, cmd: ev.Pdf417Store) -> None:
        self._pdf417_data = cmd.data

    def _pdf417(self, cmd: ev.Pdf417Print) -> None:
        if not self.pdf417 or self._pdf417_data is None:
            self.ignored.append(cmd)
            return
        self._place(Pdf417Symbol(self._pdf417_data, self._align, left=self._left, width=self._area_width), 90)

    # -- user-defined characters (ESC & / ESC % / ESC ?) --------------------------------------------
    def _define_user(self, cmd: ev.DefineUserCharacters) -> None:
        # Copy on write: spans already printed keep the glyphs they were printed with.
        self._user = {**self._user, **{cmd.first + i: (cmd.height_bytes, g) for i, g in enumerate(cmd.glyphs)}}

    def _cancel_user(self, cmd: ev.CancelUserCharacter) -> None:
        if cmd.code in self._user:
            self._user = {k: v for k, v in self._user.items() if k != cmd.code}

    def _select_user(self, cmd: ev.SelectUserCharacters) -> None:
        self._user_on = cmd.on

    @property
    def chinese(self) -> bool:
        """Chinese mode, as the print stage has reached it in the stream."""
        return self._chinese

    @property
    def user_glyphs(self) -> Mapping[int, tuple[int, bytes]]:
        return self._user
