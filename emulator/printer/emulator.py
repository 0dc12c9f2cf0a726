"""An emulated ESC/POS receipt printer: a real peer (drivers.transport.Peer) behind the shared codec.

Bytes go through two stages, as in a real printer (docs/printer-emulator.md has the whole model):

1. Reception. Real-time commands (DLE EOT n, DLE ENQ n) are acted on as bytes arrive, before the
   receive buffer: a profile with `status.realtime_in_image_data` scans every byte for them (Epson:
   even inside image data and parameters), otherwise they count only at a command boundary. The
   bytes then enter a finite receive buffer (`serial.receive_buffer`); past the high-water mark the
   printer sends XOFF (or raises BUSY, which a pty cannot carry), and XON once it has drained.
   Bytes that arrive into a full buffer are lost, as on the real thing — on a serial line; over
   TCP the link reads only what fits (`receive_room`), so the TCP window pushes back instead.
2. Printing. Commands are decoded and printed in order (emulator/printer_paper.py): pages, one per
   cut, that render to text and to a 1-bit PNG. Content is processed at once; *time* only decides
   how fast the buffer drains. Without a clock (emu://) the printer is infinitely fast; once
   `advance(seconds)` is called (a Link calls it with real elapsed time) the buffer drains at the
   profile's print speed, `printing.speed_mm_s`, by the paper each command moves.

While the printer cannot print (paper out, cover open, cutter error, head hot, offline), real-time
status keeps working; the rest is held in the buffer and printed on recovery (`quirks.paper_out_data
= "hold"`, Epson) or thrown away while modes still change ("discard", many cheap printers).
Faults come from emulator/printer/faults.py; emulator/printer/control.py drives them from text lines.
The shape (receive, transmit, advance, status, set_fault...) is emulator/base.py's.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Callable, Iterable, Mapping
from pathlib import Path
from typing import Any

from drivers.events import Role
from drivers.printer import events as ev
from drivers.printer.codec import XOFF, XON, PrinterCodec
from drivers.record import Record
from emulator.base import Emulator
from emulator.printer.archive import PageArchive
from emulator.printer.faults import FAULTS, Faults, PaperState
from emulator.printer.paper import PRINTING, Paper, split_lines
from emulator.printer.render import RenderedPage

__all__ = ["PaperState", "PrinterEmulator", "RenderResult", "render_stream"]

_REALTIME = (ev.RequestStatus, ev.RecoverFromError)
_KINDS = (1, 2, 3, 4)  # DLE EOT n


def _ignore(cmd: ev.PrinterCommand) -> None:
    pass


class PrinterEmulator(Faults, Emulator):
    """One emulated printer of a firmware profile; `faults` (names of faults.FAULTS) are set
    before the first byte, as if the printer had been switched on that way."""

    CONTROL = "emulator.printer.control"  # its control vocabulary (emulator/control.py)
    FOLDER_OPTION = ("--out", "write each page as it is cut into DIR: page-NNNN.txt, .png and .bin")
    FAULTS = FAULTS
    follows_till_clock = False  # in process, paper moves at once; served, it follows the line

    def __init__(self, profile: Mapping[str, Any], *, faults: Iterable[str] = ()) -> None:
        media, text, features = profile["media"], profile["text"], profile["features"]
        serial, status = profile["serial"], profile["status"]
        self.profile = profile
        self.dots = int(media["dots"])
        self.dpi = int(media["dpi"])
        self.columns = int(profile["fonts"]["a"]["columns"])
        self.native_qr = bool(features["native_qr"])
        self.auto_status_back = bool(features["auto_status_back"])
        self.realtime_anywhere = bool(status["realtime_in_image_data"])
        self.hold_when_stopped = profile["quirks"]["paper_out_data"] == "hold"
        self._codec = PrinterCodec(Role.DEVICE, profile)
        chinese = self._codec.chinese_mode
        self.paper_stage = Paper(dots=self.dots, dpi=self.dpi, columns=self.columns,
                                 code_page=int(text["code_page"]), chinese=chinese,
                                 native_qr=self.native_qr, pdf417=bool(features["pdf417"]))
        # receive buffer and flow control
        self.capacity = int(serial["receive_buffer"])
        self.flow_control = str(serial["flow_control"])
        self._xoff_at = self.capacity - int(serial["xoff_free"])
        self._xon_at = self.capacity - int(serial["xon_free"])
        self._dots_per_s = float(profile["printing"]["speed_mm_s"]) * self.dpi / 25.4
        self._accepted = 0  # bytes taken into the buffer
        self._done = 0  # of those, bytes printed (out of the buffer)
        self._marks: deque[tuple[int, int]] = deque()  # (byte position, paper dots) per printed block
        self._printed_dots = 0.0  # how far the head has got, in paper dots (with a clock)
        self.clocked = False
        self.paused = False  # XOFF sent (or BUSY raised) and not lifted yet
        self.pauses = 0  # how often the buffer reached its high-water mark
        self.overflowed = 0  # bytes lost to a full buffer
        self._held: list[ev.PrinterCommand] | None = None  # hold mode: commands waiting for recovery
        self._hold_from = 0
        self._cmd_start = 0  # byte position where the command being handled began
        self._rt_tail = b""  # an incomplete real-time sequence at the end of the last chunk
        # output
        self._outbox = bytearray()
        self.unknown_commands: list[bytes] = []
        self.drawer_pulses = 0
        self.bytes_received = 0
        self._asb_mask = 0
        self._answered: ev.PrinterStatus | None = None  # the status _answers were made from
        self._answers: dict[int, bytes] = {}  # DLE EOT kind -> its answer byte
        self._archive: PageArchive | None = None  # use_folder(): pages saved as they are cut
        self._raw = bytearray()  # with an archive: bytes taken since the last saved cut
        self._raw_base = 0  # the byte position (of _accepted) where _raw starts
        super().__init__(recovery_s=float(status["overheat_recovery_s"]))
        # While printing cannot stop, each command type goes straight to its handler.
        self._fast: dict[type[ev.PrinterCommand], Callable[[Any], object]] = {
            **self.paper_stage.handlers, ev.RequestStatus: self._handle, ev.RecoverFromError: self._handle,
            ev.SetAutoStatus: self._set_auto_status, ev.UnknownCommand: self._handle, ev.PulseDrawer: self._handle,
        }
        if self.realtime_anywhere:  # the reception scan has answered them already
            self._fast[ev.RequestStatus] = self._fast[ev.RecoverFromError] = _ignore
        for name in faults:
            self.set_fault(name)

    # -- Peer --------------------------------------------------------------------------------------
    def receive(self, data: bytes) -> None:
        if self.disconnected or not data:
            return  # a pulled cable: the bytes never arrive
        start = 0
        if self.realtime_anywhere and (0x10 in data or self._rt_tail):
            # Act on each real-time command as its last byte arrives, after what came before it.
            for end, fn, n in self._scan_realtime(data):
                self._arrive(data[start:end])
                start = end
                if fn == 0x04:
                    self._answer_status(n)
                else:
                    self._recover(clear=n == 2)
        if start:
            data = data[start:]
        if self._out_after_bytes is None:
            self._take(data)
        else:
            self._arrive(data)
        if self.flow_control != "none":
            self._flow()

    def _arrive(self, data: bytes) -> None:
        trigger = self._out_after_bytes
        if trigger is not None and self.bytes_received + len(data) >= trigger:
            cut = trigger - self.bytes_received
            self._take(data[:cut])
            self._out_after_bytes = None
            self.set_paper("out")
            data = data[cut:]
        self._take(data)

    def transmit(self) -> bytes:
        out = bytes(self._outbox)
        self._outbox.clear()
        return b"" if self.disconnected else out

    def advance(self, seconds: float) -> None:
        """Let `seconds` pass: the head prints (the buffer drains), a hot head cools down.
        The first call gives the printer a clock; until then it prints infinitely fast."""
        if not self.clocked:
            self.clocked = True
            self._printed_dots = float(self.paper_stage.fed)  # what was printed before is done
        self._cool(seconds)
        self._printed_dots = min(self._printed_dots + seconds * self._dots_per_s, float(self.paper_stage.fed))
        self._release()
        self._flow()

    def status(self) -> str:
        """One line for an operator: sensors, pending faults, the receive buffer, pages cut."""
        paused = " paused" if self.paused else ""
        return f"{self.describe()} buffer={self.backlog}/{self.capacity}{paused} pages={len(self.pages)}"

    # -- pages ---------------------------------------------------------------------------------------
    def use_folder(self, folder: Path) -> None:
        """Save every page from now on into `folder` as it is cut (emulator/printer/archive.py)."""
        self._archive = PageArchive(folder)
        self._raw.clear()
        self._raw_base = self._accepted

    def saved_pages(self) -> list[Path]:
        """The pages this run saved (folder/page-NNNN, without suffix), oldest first."""
        return list(self._archive.saved) if self._archive is not None else []

    def _save_page(self) -> None:
        """The page just cut, with the bytes received since the last cut through the Cut itself
        (after a hold, through what was decoded when it printed)."""
        assert self._archive is not None
        end = max(self._raw_base, self._accepted - self._codec.buffered)
        raw = bytes(self._raw[: end - self._raw_base])
        del self._raw[: end - self._raw_base]
        self._raw_base = end
        self._archive.save(self.pages[-1], raw)

    @property
    def pages(self) -> list[RenderedPage]:
        return self.paper_stage.pages

    @property
    def ignored(self) -> list[ev.PrinterCommand]:
        """Understood, but not printed: sent while the printer could not print (discard mode), or
        not supported by this model (native QR on a module without it)."""
        return self.paper_stage.ignored

    def current_page(self) -> RenderedPage:
        return self.paper_stage.current_page()

    # -- the receive buffer --------------------------------------------------------------------------
    @property
    def backlog(self) -> int:
        """Bytes in the receive buffer: accepted and not printed yet."""
        return self._accepted - self._done

    def receive_room(self) -> int | None:
        """Bytes the printer can take now without losing any (None: it prints as fast as they come)."""
        if self.clocked or self._held is not None or (self.hold_when_stopped and not self._printable):
            return max(0, self.capacity - self.backlog)
        return None

    def takes_any(self) -> bool:
        """Would bytes written now in one go be taken exactly as in small writes with the host
        reading the replies in between? True when nothing can fill the buffer or stop the printer
        part way: no clock (it prints at once), nothing held, printable, no fault waiting for bytes,
        lines or the next cut. The driver then hands an in-process printer a job in one write."""
        return (self._printable and self._held is None and not self.clocked and not self.disconnected
                and self._out_after_bytes is None and self.paper_stage.line_limit is None
                and not self._cutter_fails)

    def on_network(self) -> None:
        """Served over TCP: the window pushes back (emulator/link.py stops reading at a full buffer),
        so no XON/XOFF goes on the reply stream unless the profile's `network.flow_control` says so."""
        self.flow_control = "xonxoff" if self.profile["network"]["flow_control"] == "xonxoff" else "none"

    @property
    def busy(self) -> bool:
        """The DTR/DSR BUSY line (profiles with flow_control = "dtr_dsr"; a pty cannot carry it)."""
        return self.paused and self.flow_control == "dtr_dsr"

    def _take(self, data: bytes) -> None:
        size = len(data)
        self.bytes_received += size
        held, clocked = self._held, self.clocked
        if clocked or held is not None or (self.hold_when_stopped and not self._printable):
            room = max(0, self.capacity - self.backlog)
            if size > room:  # the host ignored XOFF / BUSY: what does not fit is lost
                self.overflowed += size - room
                data = data[:room]
                size = room
        if not size:
            return
        self._accepted += size
        codec = self._codec
        codec.receive_data(data)
        if self._archive is not None:
            self._raw += data
        if self._printable and held is None and not clocked and self.paper_stage.line_limit is None \
                and not self._cutter_fails and self._archive is None:
            # Nothing can stop the printer inside this chunk: dispatch straight to the print stage.
            fast, slow = self._fast, self._handle
            for cmd in codec.commands():
                fast.get(type(cmd), slow)(cmd)
            if self._held is None and not self.clocked:  # what _release() does for an idle head
                self._marks.clear()
                self._done = self._accepted
                return
        else:
            while True:
                self._cmd_start = self._accepted - codec.buffered  # where a held command begins
                cmd = codec.next_event()  # type: ignore[assignment]  # the device role decodes commands only
                if cmd is None:
                    break
                if self.clocked:
                    self._print_timed(cmd)
                else:
                    self._handle(cmd)
        self._release()

    def _print_timed(self, cmd: ev.PrinterCommand) -> None:
        """With a clock, note by byte position how far each line takes the paper (the head's pace)."""
        paper, end = self.paper_stage, self._accepted - self._codec.buffered
        pieces: list[ev.PrinterCommand] = [cmd]
        if type(cmd) is ev.PrintText and cmd.data.count(b"\n") > 1:
            *lines, last = split_lines(cmd.data, paper.chinese)
            pieces = [ev.PrintText(data=line + b"\n") for line in lines]
            if last:
                pieces.append(ev.PrintText(data=last))
        pos = self._cmd_start
        for piece in pieces:
            self._cmd_start = pos
            pos = end if piece is cmd else pos + len(piece.data)  # type: ignore[attr-defined]
            fed = paper.fed
            self._handle(piece)
            if paper.fed != fed:
                self._marks.append((pos, paper.fed))

    def _release(self) -> None:
        """Move the printed mark: everything with no clock, up to the head's position with one."""
        if self._held is not None:
            self._done = self._hold_from
            return
        if not self.clocked or self._printed_dots >= self.paper_stage.fed:
            self._marks.clear()
            self._done = self._accepted  # idle head: a command still arriving streams straight through
            return
        marks = self._marks
        while marks and marks[0][1] <= self._printed_dots:
            self._done = marks.popleft()[0]

    def _flow(self) -> None:
        if self.flow_control == "none":
            return
        level = self.backlog
        if not self.paused and level >= self._xoff_at:
            self.paused = True
            self.pauses += 1
            if self.flow_control == "xonxoff":
                self._outbox.append(XOFF)
        elif self.paused and level <= self._xon_at:
            self.paused = False
            if self.flow_control == "xonxoff":
                self._outbox.append(XON)

    # -- real time -----------------------------------------------------------------------------------
    def _scan_realtime(self, data: bytes) -> list[tuple[int, int, int]]:
        """DLE EOT n / DLE ENQ n anywhere in the stream: (end in `data`, function, n) of each."""
        offset = len(self._rt_tail)
        if offset:
            data, self._rt_tail = self._rt_tail + data, b""
        found = []
        i = data.find(0x10)
        while i >= 0:
            if i + 2 >= len(data):
                self._rt_tail = data[i:]  # completed by the next chunk
                break
            fn, n = data[i + 1], data[i + 2]
            if (fn == 0x04 and 1 <= n <= 4) or (fn == 0x05 and n in (1, 2)):
                found.append((i + 3 - offset, fn, n))
            i = data.find(0x10, i + 1)
        return found

    def _answer_status(self, kind: int) -> None:
        status = self.sensors()
        if status is not self._answered:  # a status is frozen: its four answers are made once
            send = self._codec.send
            self._answers = {k: send(ev.StatusReply(kind=k, value=status.status_byte(k))) for k in _KINDS}
            self._answered = status
        self._outbox += self._answers[kind]

    def _recover(self, *, clear: bool) -> None:
        """DLE ENQ: recoverable errors (the autocutter) clear; with 2, the buffers are emptied first."""
        if not self.cutter_error:
            return
        if clear:
            self._codec.clear()
            self._held = [] if self._held is not None else None
            self._done = self._accepted
        self.set_cutter_error(False)

    # -- commands ------------------------------------------------------------------------------------
    def _handle(self, cmd: ev.PrinterCommand) -> None:
        kind = type(cmd)
        if kind in _REALTIME:
            if not self.realtime_anywhere:  # otherwise the reception scan has answered it already
                if kind is ev.RequestStatus:
                    self._answer_status(cmd.kind)  # type: ignore[attr-defined]
                else:
                    self._recover(clear=cmd.clear_buffers)  # type: ignore[attr-defined]
        elif kind is ev.SetAutoStatus:
            self._set_auto_status(cmd)  # type: ignore[arg-type]
        elif kind is ev.UnknownCommand:
            self.unknown_commands.append(cmd.data)  # type: ignore[attr-defined]
        elif kind is ev.PulseDrawer:
            self.drawer_pulses += 1
        elif self._held is not None:
            self._held.append(cmd)  # keep the order behind what is already waiting
        elif not self._printable:
            self._stopped(cmd)
        elif kind is ev.Cut and self._cutter_fails:
            self._cutter_fails = False
            self.set_cutter_error(True)
            self._stopped(cmd)
        else:
            cut = len(self.paper_stage.pages)
            rest = self.paper_stage.print(cmd)
            if self._archive is not None and len(self.paper_stage.pages) > cut:
                self._save_page()
            if self.paper_stage.line_limit is not None and self.paper_stage.lines >= self.paper_stage.line_limit:
                self.paper_stage.line_limit = None
                self.set_paper("out")
                if rest is not None:
                    self._stopped(rest)

    def _stopped(self, cmd: ev.PrinterCommand) -> None:
        """A command the printer cannot print now: held for later, or lost (modes still apply)."""
        if self.hold_when_stopped:
            self._held = [cmd]
            self._hold_from = self._cmd_start
        elif type(cmd) in PRINTING:
            self.ignored.append(cmd)
        else:
            self.paper_stage.print(cmd)

    def _resume(self) -> None:
        """The printer can print again: what was held prints now, in order, until it stops again."""
        held, self._held = self._held or [], None
        for i, cmd in enumerate(held):
            if self._held is not None:
                self._held += held[i:]
                return
            self._handle(cmd)
        self._release()
        self._flow()

    def _set_auto_status(self, cmd: ev.SetAutoStatus) -> None:
        if not self.auto_status_back:
            self.ignored.append(cmd)
            return
        self._asb_mask = cmd.mask
        if cmd.mask:
            self._push_asb()  # enabling ASB sends the current status once

    def _push_asb(self) -> None:
        self._outbox += self._codec.send(ev.AutoStatus(data=self.sensors().asb_bytes()))


class RenderResult(Record):
    """What `render_stream` made of a byte stream: one page per cut (and the unfinished rest)."""

    pages: tuple[RenderedPage, ...]
    unknown: tuple[bytes, ...]  # commands skipped by their documented length
    ignored: tuple[ev.PrinterCommand, ...] = ()  # understood, not printable on this model

    @property
    def understood(self) -> bool:
        return not self.unknown


def render_stream(data: bytes, profile: Mapping[str, Any]) -> RenderResult:
    """Print a captured byte stream on a fresh emulated printer of this profile."""
    printer = PrinterEmulator(profile)
    printer.receive(data)
    pages = list(printer.pages)
    rest = printer.current_page()
    if rest.blocks:
        pages.append(rest)
    return RenderResult(pages=tuple(pages), unknown=tuple(printer.unknown_commands), ignored=tuple(printer.ignored))
