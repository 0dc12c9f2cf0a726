"""An emulated ESC/POS receipt printer: a real peer (drivers.transport.Peer) behind the shared codec.

It keeps what a printer's sensors know (paper, cover, cutter, offline, drawer), answers DLE EOT n
with the exact bytes of PROTOCOLS.md §1.2 (through PrinterStatus, shared with the driver), pushes
ASB on change once GS a enabled it, and puts what it prints on pages (one per cut) that render to
text and to a 1-bit PNG (emulator/printer_render.py).

While the printer cannot print (paper out, cover open, cutter error, offline) bytes are still
accepted and modes still change, but nothing reaches the paper: real-time status keeps working.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import replace
from typing import Any, Literal

from drivers.events import Role
from drivers.printer import events as ev
from drivers.printer.codec import PrinterCodec
from drivers.record import field_names
from emulator.printer_render import (
    Barcode,
    Block,
    QrSymbol,
    RasterImage,
    RenderedPage,
    Span,
    TextLine,
    TextStyle,
    decode_text,
)

__all__ = ["PaperState", "PrinterEmulator"]

PaperState = Literal["ok", "near-end", "out"]
_PAPER_STATES: tuple[PaperState, ...] = ("ok", "near-end", "out")
# GS a mask bit -> the status fields whose change it reports.
_ASB_GROUPS: dict[int, tuple[str, ...]] = {
    0x01: ("drawer_high",),
    0x02: ("online", "cover_open", "feed_pressed"),
    0x04: ("cutter_error", "unrecoverable_error", "auto_recoverable_error"),
    0x08: ("paper_near_end", "paper_out"),
}
_PRINTING = (ev.PrintText, ev.FeedLines, ev.Cut, ev.PrintBarcode, ev.PrintRasterImage, ev.QrPrint)


class PrinterEmulator:
    def __init__(self, profile: Mapping[str, Any]) -> None:
        media, text = profile.get("media", {}), profile.get("text", {})
        features = profile.get("features", {})
        self.profile = profile
        self.dots = int(media.get("dots", 576))
        self.dpi = int(media.get("dpi", 203))
        self.columns = int(profile.get("fonts", {}).get("a", {}).get("columns", self.dots // 12))
        self.native_qr = bool(features.get("native_qr", True))
        self.auto_status_back = bool(features.get("auto_status_back", True))
        self._power_on_code_page = int(text.get("code_page", 0))
        self._codec = PrinterCodec(Role.DEVICE, chinese_mode=bool(text.get("chinese_mode_at_power_on", False)))
        self._outbox = bytearray()
        # sensors
        self.paper: PaperState = "ok"
        self.cover_open = False
        self.cutter_error = False
        self.offline = False  # forced offline (e.g. a printer switched to offline by its owner)
        self.drawer_high = False
        self._asb_mask = 0
        # output
        self.pages: list[RenderedPage] = []
        self.unknown_commands: list[bytes] = []
        self.ignored: list[ev.PrinterCommand] = []  # understood, but not printed (unsupported / offline)
        self.drawer_pulses = 0
        self.closed = False
        self._reset_modes()
        self._blocks: list[Block] = []

    # -- Peer --------------------------------------------------------------------------------------
    def receive(self, data: bytes) -> None:
        self._codec.receive_data(data)
        while (event := self._codec.next_event()) is not None:
            assert isinstance(event, ev.PrinterCommand)  # the device role decodes commands only
            self._handle(event)

    def transmit(self) -> bytes:
        out = bytes(self._outbox)
        self._outbox.clear()
        return out

    def close(self) -> None:
        self.closed = True

    # -- sensors -----------------------------------------------------------------------------------
    def status(self) -> ev.PrinterStatus:
        out = self.paper == "out"
        return ev.PrinterStatus(
            online=not (self.offline or self.cover_open or out or self.cutter_error),
            cover_open=self.cover_open,
            paper_near_end=self.paper == "near-end",
            paper_out=out,
            cutter_error=self.cutter_error,
            drawer_high=self.drawer_high,
        )

    def set_paper(self, state: PaperState) -> None:
        if state not in _PAPER_STATES:
            raise ValueError(f"paper state must be one of {_PAPER_STATES}, not {state!r}")
        self._change(paper=state)

    def open_cover(self) -> None:
        self._change(cover_open=True)

    def close_cover(self) -> None:
        self._change(cover_open=False)

    def set_cutter_error(self, on: bool = True) -> None:
        self._change(cutter_error=on)

    def set_offline(self, on: bool = True) -> None:
        self._change(offline=on)

    def set_drawer(self, high: bool) -> None:
        self._change(drawer_high=high)

    def _change(self, **attrs: Any) -> None:
        before = self.status()
        for name, value in attrs.items():
            setattr(self, name, value)
        after = self.status()
        changed = {n for n in field_names(after) if getattr(before, n) != getattr(after, n)}
        if any(bit & self._asb_mask and changed.intersection(g) for bit, g in _ASB_GROUPS.items()):
            self._push_asb()

    def _push_asb(self) -> None:
        self._outbox += self._codec.send(ev.AutoStatus(data=self.status().asb_bytes()))

    # -- pages -------------------------------------------------------------------------------------
    def current_page(self) -> RenderedPage:
        """What is on the paper since the last cut, including a line not yet ended by LF."""
        return self._page(tuple(self._blocks) + self._pending_line(), cut=None)

    def _page(self, blocks: tuple[Block, ...], cut: str | None) -> RenderedPage:
        return RenderedPage(blocks=blocks, dots=self.dots, columns=self.columns, dpi=self.dpi, cut=cut)

    def _pending_line(self) -> tuple[TextLine, ...]:
        if not self._spans:
            return ()
        return (TextLine(spans=tuple(self._spans), align=self._line_align),)

    # -- commands ----------------------------------------------------------------------------------
    def _reset_modes(self) -> None:
        self._style = TextStyle()
        self._align = ev.Align.LEFT
        self._line_align = ev.Align.LEFT
        self._spans: list[Span] = []
        self._code_page = self._power_on_code_page
        self._barcode = {"height": 162, "module": 3, "hri": 0}
        self._qr: dict[str, Any] = {"module": 3, "level": "L", "data": None}

    def _handle(self, cmd: ev.PrinterCommand) -> None:
        match cmd:
            case ev.RequestStatus():  # real time: answered whatever the printer is doing
                value = self.status().status_byte(cmd.kind)
                self._outbox += self._codec.send(ev.StatusReply(kind=cmd.kind, value=value))
            case ev.SetAutoStatus():
                if not self.auto_status_back:
                    self.ignored.append(cmd)
                    return
                self._asb_mask = cmd.mask
                if cmd.mask:
                    self._push_asb()  # enabling ASB sends the current status once
            case ev.UnknownCommand():
                self.unknown_commands.append(cmd.data)
            case ev.PulseDrawer():
                self.drawer_pulses += 1
            case _ if isinstance(cmd, _PRINTING) and not self.status().printable:
                self.ignored.append(cmd)  # bytes accepted, nothing reaches the paper
            case _:
                self._print_command(cmd)

    def _print_command(self, cmd: ev.PrinterCommand) -> None:
        style = self._style
        match cmd:
            case ev.Initialize():
                self._reset_modes()  # ESC @ also drops an unprinted line
            case ev.SelectPrintMode():
                self._style = TextStyle(font_b=cmd.font_b, bold=cmd.bold, underline=int(cmd.underline),
                                        width=2 if cmd.double_width else 1,
                                        height=2 if cmd.double_height else 1)
            case ev.SetEmphasis():
                self._style = replace(style, bold=cmd.on)
            case ev.SetUnderline():
                self._style = replace(style, underline=cmd.dots)
            case ev.SelectFont():
                self._style = replace(style, font_b=cmd.font == 1)
            case ev.SetCharacterSize():
                self._style = replace(style, width=cmd.width, height=cmd.height)
            case ev.SetAlignment():
                self._align = cmd.align
            case ev.SelectCodePage():
                self._code_page = cmd.page
            case ev.PrintText():
                self._print_text(decode_text(cmd.data, self._code_page, self._codec.chinese_mode))
            case ev.FeedLines():
                self._end_line(always=False)
                self._blocks.extend(TextLine(spans=()) for _ in range(cmd.lines))
            case ev.Cut():
                self._end_line(always=False)
                self.pages.append(self._page(tuple(self._blocks), cut="partial" if cmd.partial else "full"))
                self._blocks = []
            case ev.SetBarcodeHeight():
                self._barcode["height"] = cmd.dots
            case ev.SetBarcodeWidth():
                self._barcode["module"] = cmd.module
            case ev.SetHriPosition():
                self._barcode["hri"] = cmd.pos
            case ev.PrintBarcode():
                self._end_line(always=False)
                b = self._barcode
                self._blocks.append(Barcode(symbology=cmd.symbology, data=cmd.data, height=b["height"],
                                            module=b["module"], hri=b["hri"], align=self._align))
            case ev.PrintRasterImage():
                self._end_line(always=False)
                self._blocks.append(RasterImage(width_bytes=cmd.width_bytes, height=cmd.height,
                                                data=cmd.data, mode=cmd.mode, align=self._align))
            case ev.QrSetModuleSize():
                self._qr["module"] = cmd.size
            case ev.QrSetErrorCorrection():
                self._qr["level"] = cmd.level
            case ev.QrStore():
                self._qr["data"] = cmd.data
            case ev.QrPrint():
                self._print_qr(cmd)
            case _:
                pass  # modes with no visible effect here (charset, Chinese mode, HRI font, QR model)

    def _print_qr(self, cmd: ev.QrPrint) -> None:
        if not self.native_qr or self._qr["data"] is None:
            self.ignored.append(cmd)  # a 58 mm module without native QR prints nothing
            return
        self._end_line(always=False)
        self._blocks.append(QrSymbol(data=self._qr["data"], module=self._qr["module"],
                                     level=self._qr["level"], align=self._align))

    def _print_text(self, text: str) -> None:
        for i, part in enumerate(text.split("\n")):
            if i:
                self._end_line(always=True)
            part = part.replace("\r", "").expandtabs(8)
            if part:
                if not self._spans:
                    self._line_align = self._align  # alignment counts at the start of a line
                self._spans.append(Span(text=part, style=self._style))

    def _end_line(self, *, always: bool) -> None:
        """LF prints the line (an empty one too); feeds, cuts and images flush only pending text."""
        if self._spans or always:
            self._blocks.append(TextLine(spans=tuple(self._spans), align=self._line_align if self._spans
                                         else self._align))
            self._spans = []
