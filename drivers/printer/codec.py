"""Sans-I/O ESC/POS codec (PROTOCOLS.md §1): one class, two roles.

Role.HOST (the driver) sends commands and decodes the printer's reply stream; Role.DEVICE (the
emulator) decodes the command stream and sends replies.

Device role, decoding commands:
- Text is yielded as the maximal run of text bytes *available now* (a run is not held back
  waiting for a terminator), so the same stream fed in different chunks yields the same events
  once adjacent PrintText events are joined. In Chinese mode a byte 0x81..0xFE and the byte after
  it are one character: never split between events, the second byte never read as a command.
- A command the codec does not model becomes UnknownCommand, skipped by its documented length
  (`_SKIP` below, or by its own length fields); an unknown ESC/GS/FS x skips 2 bytes, a stray
  control byte 1. Declared payloads are bounded by MAX_PAYLOAD: a larger declaration yields the
  header alone as UnknownCommand and decoding resumes right after it (its payload then shows up
  as text or unknown commands) — we never buffer gigabytes or eat the rest of the job blind.
  The device side therefore never raises on input.

Host role, decoding replies (demultiplexed per §1.2): XON/XOFF, one-byte DLE EOT answers matched
in FIFO order to the RequestStatus kinds we sent, and 4-byte ASB pushes. A byte that fits none
of these (or a status byte nobody asked for) raises FrameError after dropping it, so the next
call resynchronises.
"""

from __future__ import annotations

import re
from collections import deque
from collections.abc import Callable
from typing import Final

from drivers.errors import FrameError, LocalProtocolError
from drivers.events import Role
from drivers.printer import events as ev

__all__ = ["MAX_PAYLOAD", "PrinterCodec"]

MAX_PAYLOAD: Final = 1 << 20  # a sane ceiling for one command's declared data (raster, GS 8 L)
_MAX_BARCODE: Final = 255
ESC, FS, GS, DLE = 0x1B, 0x1C, 0x1D, 0x10
XON, XOFF = 0x11, 0x13

_TEXT = re.compile(rb"[\t\n\r\x20-\xff]+")
_TEXT_CN = re.compile(rb"(?:[\t\n\r\x20-\x80\xff]|[\x81-\xfe][\x00-\xff])+")
# What the host may send as text: in Chinese mode only complete GB18030 2-byte codes.
_SENDABLE = re.compile(rb"[\t\n\r\x20-\xff]*")
_SENDABLE_CN = re.compile(rb"(?:[\t\n\r\x20-\x80\xff]|[\x81-\xfe][\x40-\x7e\x80-\xfe])*")
_QR_LEVELS: Final = "LMQH"

Event = ev.PrinterCommand | ev.PrinterReply
Decoded = tuple[ev.PrinterCommand, int] | None  # (event, bytes consumed) or None = need more
Handler = Callable[[bytearray], Decoded]


# -- device role: command decoders ---------------------------------------------------------------
def _digit(n: int, top: int) -> int | None:
    """ESC/POS takes n or ASCII '0'+n for small selectors."""
    if 0 <= n <= top:
        return n
    if 0x30 <= n <= 0x30 + top:
        return n - 0x30
    return None


def _fixed(length: int, build: Callable[[bytes], ev.PrinterCommand | None]) -> Handler:
    def handler(buf: bytearray) -> Decoded:
        if len(buf) < length:
            return None
        cmd = build(bytes(buf[2:length]))
        return (cmd or ev.UnknownCommand(data=bytes(buf[:length]))), length

    return handler


def _skip(length: int) -> Handler:
    return _fixed(length, lambda _: None)


def _sized(header: int, size: Callable[[bytearray], int]) -> Handler:
    """Unknown command with a payload length computed from its header."""

    def handler(buf: bytearray) -> Decoded:
        if len(buf) < header:
            return None
        total = header + size(buf)
        if total - header > MAX_PAYLOAD:
            return ev.UnknownCommand(data=bytes(buf[:header])), header
        if len(buf) < total:
            return None
        return ev.UnknownCommand(data=bytes(buf[:total])), total

    return handler


def _terminated(start: int, limit: int) -> Handler:
    """Unknown command ended by NUL within `limit` bytes (ESC D tab stops)."""

    def handler(buf: bytearray) -> Decoded:
        end = buf.find(0, start, start + limit)
        if end >= 0:
            return ev.UnknownCommand(data=bytes(buf[: end + 1])), end + 1
        if len(buf) >= start + limit:
            return ev.UnknownCommand(data=bytes(buf[:start])), start
        return None

    return handler


def _user_chars(buf: bytearray) -> Decoded:
    """ESC & y c1 c2 then, per character, x and y*x column bytes (bounded: y <= 3, x <= 255)."""
    if len(buf) < 5:
        return None
    y, first, last = buf[2], buf[3], buf[4]
    if last < first:
        return ev.UnknownCommand(data=bytes(buf[:5])), 5
    pos = 5
    for _ in range(last - first + 1):
        if len(buf) <= pos:
            return None
        pos += 1 + y * buf[pos]
    if len(buf) < pos:
        return None
    return ev.UnknownCommand(data=bytes(buf[:pos])), pos


def _paren(buf: bytearray) -> int:  # ESC/GS/FS ( x pL pH + p bytes
    return buf[3] | buf[4] << 8


def _print_mode(p: bytes) -> ev.PrinterCommand:
    n = p[0]
    return ev.SelectPrintMode(font_b=bool(n & 0x01), bold=bool(n & 0x08), double_height=bool(n & 0x10),
                              double_width=bool(n & 0x20), underline=bool(n & 0x80))


def _align(p: bytes) -> ev.PrinterCommand | None:
    d = _digit(p[0], 2)
    return None if d is None else ev.SetAlignment(align=ev.Align(d))


def _drawer(p: bytes) -> ev.PrinterCommand | None:
    pin = {0: 2, 0x30: 2, 1: 5, 0x31: 5}.get(p[0])
    return None if pin is None else ev.PulseDrawer(pin=pin, on_ms=p[1] * 2, off_ms=p[2] * 2)


def _char_size(p: bytes) -> ev.PrinterCommand:
    return ev.SetCharacterSize(width=(p[0] >> 4 & 7) + 1, height=(p[0] & 7) + 1)


# Commands of one parameter byte, both directions: prefix, function, field, lo, hi, and whether
# the printer also takes ASCII digits ('0' + n) for the value, as it does for small selectors.
_ONE_BYTE: dict[type[ev.PrinterCommand], tuple[int, int, str, int, int, bool]] = {
    ev.SetUnderline: (ESC, 0x2D, "dots", 0, 2, True),
    ev.SelectFont: (ESC, 0x4D, "font", 0, 4, True),
    ev.SelectCodePage: (ESC, 0x74, "page", 0, 255, False),
    ev.SelectInternationalCharset: (ESC, 0x52, "charset", 0, 255, False),
    ev.FeedLines: (ESC, 0x64, "lines", 0, 255, False),
    ev.SelectPeripheral: (ESC, 0x3D, "device", 0, 255, False),
    ev.SetBarcodeHeight: (GS, 0x68, "dots", 1, 255, False),
    ev.SetBarcodeWidth: (GS, 0x77, "module", 1, 255, False),
    ev.SetHriPosition: (GS, 0x48, "pos", 0, 3, True),
    ev.SetHriFont: (GS, 0x66, "font", 0, 4, True),
    ev.SetAutoStatus: (GS, 0x61, "mask", 0, 255, False),
}


def _one_byte(cls: type[ev.PrinterCommand], field: str, hi: int, digits: bool) -> Handler:
    def build(p: bytes) -> ev.PrinterCommand | None:
        n = _digit(p[0], hi) if digits else p[0]
        return None if n is None else cls(**{field: n})

    return _fixed(3, build)


def _cut(buf: bytearray) -> Decoded:
    if len(buf) < 3:
        return None
    m = buf[2]
    if m in (0, 1, 0x30, 0x31):
        return ev.Cut(partial=m in (1, 0x31)), 3
    if m in (65, 66, 97, 98, 103, 104):  # function B (feed, cut) and its C/D relatives
        if len(buf) < 4:
            return None
        if m in (65, 66):
            return ev.Cut(partial=m == 66, feed=buf[3]), 4
        return ev.UnknownCommand(data=bytes(buf[:4])), 4
    return ev.UnknownCommand(data=bytes(buf[:3])), 3


def _barcode(buf: bytearray) -> Decoded:
    if len(buf) < 3:
        return None
    m = buf[2]
    if m <= 6:  # function A: data up to NUL
        end = buf.find(0, 3, 3 + _MAX_BARCODE + 1)
        if end >= 0:
            return ev.PrintBarcode(symbology=m, data=bytes(buf[3:end])), end + 1
        if len(buf) > 3 + _MAX_BARCODE:
            return ev.UnknownCommand(data=bytes(buf[:3])), 3  # no terminator: resync after header
        return None
    if 65 <= m <= 79:  # function B: length byte, then data
        if len(buf) < 4 or len(buf) < 4 + buf[3]:
            return None
        return ev.PrintBarcode(symbology=m, data=bytes(buf[4 : 4 + buf[3]])), 4 + buf[3]
    return ev.UnknownCommand(data=bytes(buf[:3])), 3


def _raster(buf: bytearray) -> Decoded:
    if len(buf) < 3:
        return None
    if buf[2] != 0x30:
        return ev.UnknownCommand(data=bytes(buf[:2])), 2
    if len(buf) < 8:
        return None
    width, height = buf[4] | buf[5] << 8, buf[6] | buf[7] << 8
    mode, size = _digit(buf[3], 3), width * height
    if mode is None or size > MAX_PAYLOAD:
        return ev.UnknownCommand(data=bytes(buf[:8])), 8
    if len(buf) < 8 + size:
        return None
    data = bytes(buf[8 : 8 + size])
    return ev.PrintRasterImage(width_bytes=width, height=height, data=data, mode=mode), 8 + size


def _gs_paren(buf: bytearray) -> Decoded:
    if len(buf) < 5:
        return None
    total = 5 + _paren(buf)
    if len(buf) < total:
        return None
    body = bytes(buf[5:total])
    cmd = _qr(body) if buf[2] == 0x6B else None
    return (cmd or ev.UnknownCommand(data=bytes(buf[:total]))), total


def _qr(body: bytes) -> ev.PrinterCommand | None:
    """GS ( k with cn = 0x31 (QR); body = cn fn params."""
    if len(body) < 3 or body[0] != 0x31:
        return None
    fn, rest = body[1], body[2:]
    if fn == 0x41 and len(rest) == 2 and 0x31 <= rest[0] <= 0x33:
        return ev.QrSelectModel(model=rest[0] - 0x30)
    if fn == 0x43 and len(rest) == 1:
        return ev.QrSetModuleSize(size=rest[0])
    if fn == 0x45 and len(rest) == 1 and 0x30 <= rest[0] <= 0x33:
        return ev.QrSetErrorCorrection(level=_QR_LEVELS[rest[0] - 0x30])
    if fn == 0x50 and rest[0] == 0x30:
        return ev.QrStore(data=rest[1:])
    if fn == 0x51 and rest == b"\x30":
        return ev.QrPrint()
    return None


def _dle(buf: bytearray) -> Decoded:
    if len(buf) < 2:
        return None
    fn = buf[1]
    if fn in (0x04, 0x05):  # DLE EOT n / DLE ENQ n
        if len(buf) < 3:
            return None
        if fn == 0x04 and 1 <= buf[2] <= 4:
            return ev.RequestStatus(kind=buf[2]), 3
        return ev.UnknownCommand(data=bytes(buf[:3])), 3
    if fn == 0x14:  # DLE DC4 fn ...: length by function
        if len(buf) < 3:
            return None
        return _skip({1: 5, 2: 5, 7: 4, 8: 10}.get(buf[2], 3))(buf)
    return ev.UnknownCommand(data=bytes(buf[:1])), 1


_ESC: dict[int, Handler] = {
    0x40: _fixed(2, lambda _: ev.Initialize()),
    0x21: _fixed(3, _print_mode),
    0x45: _fixed(3, lambda p: ev.SetEmphasis(on=bool(p[0] & 1))),
    0x61: _fixed(3, _align),
    0x70: _fixed(5, _drawer),
    0x2A: _sized(5, lambda b: (b[3] | b[4] << 8) * (3 if b[2] in (32, 33) else 1)),  # ESC * column image
    0x44: _terminated(2, 33),  # ESC D tab stops
    0x26: _user_chars,
    0x28: _sized(5, _paren),
}
_GS: dict[int, Handler] = {
    0x21: _fixed(3, _char_size),
    0x56: _cut,
    0x6B: _barcode,
    0x76: _raster,
    0x28: _gs_paren,
    0x2A: _sized(4, lambda b: b[2] * b[3] * 8),  # GS * x y: downloaded bit image
    0x38: _sized(7, lambda b: int.from_bytes(b[3:7], "little")),  # GS 8 L p1..p4
}
_FS: dict[int, Handler] = {
    0x26: _fixed(2, lambda _: ev.ChineseMode(on=True)),
    0x2E: _fixed(2, lambda _: ev.ChineseMode(on=False)),
    0x28: _sized(5, _paren),
}
# Documented total lengths of commands we skip (ESC/POS command reference).
_SKIP: dict[int, dict[int, int]] = {
    ESC: {0x0C: 2, 0x20: 3, 0x24: 4, 0x25: 3, 0x32: 2, 0x33: 3, 0x3C: 2, 0x3F: 3, 0x47: 3, 0x4A: 3,
          0x4B: 3, 0x4C: 2, 0x53: 2, 0x54: 3, 0x55: 3, 0x56: 3, 0x57: 10, 0x5C: 4, 0x63: 4, 0x65: 3,
          0x69: 2, 0x6D: 2, 0x72: 3, 0x75: 3, 0x76: 2, 0x7B: 3},
    GS: {0x24: 4, 0x2F: 3, 0x3A: 2, 0x42: 3, 0x49: 3, 0x4C: 4, 0x50: 4, 0x54: 3, 0x57: 4, 0x5C: 4,
         0x5E: 5, 0x62: 3, 0x63: 2, 0x67: 6, 0x72: 3},
    FS: {0x21: 3, 0x2D: 3, 0x32: 76, 0x3F: 4, 0x43: 3, 0x53: 4, 0x57: 3, 0x70: 4},
}
_TABLES: dict[int, dict[int, Handler]] = {ESC: _ESC, GS: _GS, FS: _FS}
for _cls, (_prefix, _fn, _field, _, _hi, _digits) in _ONE_BYTE.items():
    _TABLES[_prefix][_fn] = _one_byte(_cls, _field, _hi, _digits)
for _prefix, _lengths in _SKIP.items():
    for _fn, _length in _lengths.items():
        _TABLES[_prefix].setdefault(_fn, _skip(_length))


def _decode_command(buf: bytearray) -> Decoded:
    """One non-text command at the start of `buf`."""
    first = buf[0]
    if first == DLE:
        return _dle(buf)
    table = _TABLES.get(first)
    if table is None:  # stray control byte
        return ev.UnknownCommand(data=bytes(buf[:1])), 1
    if len(buf) < 2:
        return None
    handler = table.get(buf[1])
    if handler is None:
        return ev.UnknownCommand(data=bytes(buf[:2])), 2
    return handler(buf)


# -- the codec -----------------------------------------------------------------------------------
class PrinterCodec:
    """One printer link. `chinese_mode` is the power-on state (profile text.chinese_mode_at_power_on):
    the device role needs it to frame GB18030 text, the host role to refuse split characters."""

    def __init__(self, role: Role, *, chinese_mode: bool = False) -> None:
        self.role = role
        self._power_on_chinese = chinese_mode
        self.chinese_mode = chinese_mode  # follows FS & / FS . / ESC @ in both roles
        self._buffer = bytearray()
        self._asked: deque[int] = deque()  # host role: DLE EOT kinds awaiting their byte
        self._asb = bytearray()  # host role: ASB bytes received so far

    @property
    def outstanding(self) -> tuple[int, ...]:
        """DLE EOT kinds sent and not answered yet, oldest first (host role)."""
        return tuple(self._asked)

    def forget_outstanding(self) -> None:
        """Give up on unanswered requests (after a timeout), so a late byte is not misread."""
        self._asked.clear()
        self._asb.clear()

    # -- outbound ---------------------------------------------------------------------------------
    def send(self, event: Event) -> bytes:
        if self.role is Role.HOST:
            if not isinstance(event, ev.PrinterCommand):
                raise LocalProtocolError(f"the host does not send {type(event).__name__}")
            data = _encode_command(event, chinese=self.chinese_mode)
            self._track_mode(event)
            if isinstance(event, ev.RequestStatus):
                self._asked.append(event.kind)
            return data
        if not isinstance(event, ev.PrinterReply):
            raise LocalProtocolError(f"the printer does not send {type(event).__name__}")
        return _encode_reply(event)

    def _track_mode(self, event: ev.PrinterCommand) -> None:
        if isinstance(event, ev.ChineseMode):
            self.chinese_mode = event.on
        elif isinstance(event, ev.Initialize):
            self.chinese_mode = self._power_on_chinese

    # -- inbound ----------------------------------------------------------------------------------
    def receive_data(self, data: bytes) -> None:
        self._buffer += data

    def next_event(self) -> Event | None:
        """The next decoded event, or None when more bytes are needed."""
        if self.role is Role.DEVICE:
            return self._next_command()
        return self._next_reply()

    def _next_command(self) -> ev.PrinterCommand | None:
        buf = self._buffer
        if not buf:
            return None
        text = (_TEXT_CN if self.chinese_mode else _TEXT).match(buf)
        if text:
            data = bytes(text.group())  # copy before the buffer moves under the match
            del buf[: len(data)]
            return ev.PrintText(data=data)
        if self.chinese_mode and 0x81 <= buf[0] <= 0xFE:
            return None  # a lead byte waiting for its second byte
        decoded = _decode_command(buf)
        if decoded is None:
            return None
        cmd, used = decoded
        del buf[:used]
        self._track_mode(cmd)
        return cmd

    def _next_reply(self) -> ev.PrinterReply | None:
        buf = self._buffer
        while buf:
            b = buf[0]
            if b in (XON, XOFF):
                del buf[0]
                return ev.FlowControl(paused=b == XOFF)
            if self._asb:
                if b & 0x90:
                    self._asb.clear()  # leave b for the next call: it starts something new
                    raise FrameError(f"ASB cut short by byte {b:02X}")
                self._asb.append(b)
                del buf[0]
                if len(self._asb) == 4:
                    data = bytes(self._asb)
                    self._asb.clear()
                    return ev.AutoStatus(data=data)
                continue
            del buf[0]
            if b & 0x93 == 0x12:
                if not self._asked:
                    raise FrameError(f"status byte {b:02X} answers no request")
                return ev.StatusReply(kind=self._asked.popleft(), value=b)
            if b & 0x93 == 0x10:
                self._asb.append(b)
                continue
            raise FrameError(f"unexpected byte {b:02X} from the printer")
        return None


# -- encoding ------------------------------------------------------------------------------------
def _u8(name: str, value: int, lo: int = 0, hi: int = 255) -> int:
    if not lo <= value <= hi:
        raise LocalProtocolError(f"{name} must be {lo}..{hi}, not {value}")
    return value


def _qr_fn(fn: int, params: bytes) -> bytes:
    size = len(params) + 2
    return bytes((GS, 0x28, 0x6B, size & 0xFF, size >> 8, 0x31, fn)) + params


def _encode_command(cmd: ev.PrinterCommand, *, chinese: bool) -> bytes:
    if type(cmd) in _ONE_BYTE:
        prefix, fn, field, lo, hi, _ = _ONE_BYTE[type(cmd)]
        return bytes((prefix, fn, _u8(f"{type(cmd).__name__}.{field}", getattr(cmd, field), lo, hi)))
    match cmd:
        case ev.Initialize():
            return b"\x1b@"
        case ev.SelectPrintMode():
            n = (cmd.font_b * 0x01 | cmd.bold * 0x08 | cmd.double_height * 0x10
                 | cmd.double_width * 0x20 | cmd.underline * 0x80)
            return bytes((ESC, 0x21, n))
        case ev.SetEmphasis():
            return bytes((ESC, 0x45, int(cmd.on)))
        case ev.SetAlignment():
            return bytes((ESC, 0x61, _u8("alignment", int(cmd.align), 0, 2)))
        case ev.SetCharacterSize():
            w, h = _u8("width", cmd.width, 1, 8), _u8("height", cmd.height, 1, 8)
            return bytes((GS, 0x21, (w - 1) << 4 | (h - 1)))
        case ev.ChineseMode():
            return bytes((FS, 0x26 if cmd.on else 0x2E))
        case ev.PrintText():
            if not (_SENDABLE_CN if chinese else _SENDABLE).fullmatch(cmd.data):
                what = "control bytes or split/4-byte GB18030 codes" if chinese else "control bytes"
                raise LocalProtocolError(f"PrintText holds {what}; send them as commands")
            return cmd.data
        case ev.Cut():
            if cmd.feed is None:
                return bytes((GS, 0x56, int(cmd.partial)))
            return bytes((GS, 0x56, 66 if cmd.partial else 65, _u8("cut feed", cmd.feed)))
        case ev.PrintBarcode():
            return _encode_barcode(cmd)
        case ev.PrintRasterImage():
            return _encode_raster(cmd)
        case ev.QrSelectModel():
            return _qr_fn(0x41, bytes((0x30 + _u8("QR model", cmd.model, 1, 3), 0)))
        case ev.QrSetModuleSize():
            return _qr_fn(0x43, bytes((_u8("QR module size", cmd.size, 1, 16),)))
        case ev.QrSetErrorCorrection():
            if len(cmd.level) != 1 or cmd.level not in _QR_LEVELS:
                raise LocalProtocolError(f"QR error correction must be one of L/M/Q/H, not {cmd.level!r}")
            return _qr_fn(0x45, bytes((0x30 + _QR_LEVELS.index(cmd.level),)))
        case ev.QrStore():
            if len(cmd.data) > 0xFFFF - 3:
                raise LocalProtocolError(f"QR data of {len(cmd.data)} bytes does not fit GS ( k")
            return _qr_fn(0x50, b"\x30" + cmd.data)
        case ev.QrPrint():
            return _qr_fn(0x51, b"\x30")
        case ev.RequestStatus():
            return bytes((DLE, 0x04, _u8("status kind", cmd.kind, 1, 4)))
        case ev.PulseDrawer():
            return _encode_drawer(cmd)
    raise LocalProtocolError(f"{type(cmd).__name__} cannot be sent by the host")


def _encode_barcode(cmd: ev.PrintBarcode) -> bytes:
    if len(cmd.data) > _MAX_BARCODE:
        raise LocalProtocolError(f"barcode data of {len(cmd.data)} bytes is over {_MAX_BARCODE}")
    if 0 <= cmd.symbology <= 6:
        if 0 in cmd.data:
            raise LocalProtocolError("function A barcode data cannot hold NUL")
        return bytes((GS, 0x6B, cmd.symbology)) + cmd.data + b"\x00"
    if 65 <= cmd.symbology <= 79:
        return bytes((GS, 0x6B, cmd.symbology, len(cmd.data))) + cmd.data
    raise LocalProtocolError(f"barcode symbology must be 0..6 or 65..79, not {cmd.symbology}")


def _encode_raster(cmd: ev.PrintRasterImage) -> bytes:
    w = _u8("raster width bytes", cmd.width_bytes, 0, 0xFFFF)
    h = _u8("raster height", cmd.height, 0, 0xFFFF)
    if len(cmd.data) != w * h:
        raise LocalProtocolError(f"raster {w}x{h} bytes needs {w * h} data bytes, got {len(cmd.data)}")
    if w * h > MAX_PAYLOAD:
        raise LocalProtocolError(f"raster of {w * h} bytes is over {MAX_PAYLOAD}")
    mode = _u8("raster mode", cmd.mode, 0, 3)
    return bytes((GS, 0x76, 0x30, mode, w & 0xFF, w >> 8, h & 0xFF, h >> 8)) + cmd.data


def _encode_drawer(cmd: ev.PulseDrawer) -> bytes:
    pins = {2: 0, 5: 1}
    if cmd.pin not in pins:
        raise LocalProtocolError(f"drawer pin must be 2 or 5, not {cmd.pin}")
    times = []
    for name, ms in (("on", cmd.on_ms), ("off", cmd.off_ms)):
        if ms % 2:
            raise LocalProtocolError(f"drawer {name} time is in 2 ms steps, not {ms} ms")
        times.append(_u8(f"drawer {name} time/2", ms // 2))
    return bytes((ESC, 0x70, pins[cmd.pin], *times))


def _encode_reply(reply: ev.PrinterReply) -> bytes:
    match reply:
        case ev.StatusReply():
            _u8("status kind", reply.kind, 1, 4)
            if not 0 <= reply.value <= 0xFF or reply.value & 0x93 != 0x12:
                raise LocalProtocolError(f"DLE EOT answer {reply.value:#x} lacks the fixed bits 0xx1xx10")
            return bytes((reply.value,))
        case ev.AutoStatus():
            d = reply.data
            if len(d) != 4 or d[0] & 0x93 != 0x10 or any(b & 0x90 for b in d[1:]):
                raise LocalProtocolError("ASB is 4 bytes: 0xx1xx00 then three 0xx0xxxx")
            return d
        case ev.FlowControl():
            return bytes((XOFF if reply.paused else XON,))
    raise LocalProtocolError(f"{type(reply).__name__} cannot be sent by the printer")
