"""Events -> ESC/POS bytes (sans-I/O): the host's commands and the printer's replies.

The byte layouts are the same ones drivers/printer/decoders.py reads (the one-byte and on/off
tables are shared with it). A command that cannot be sent as asked raises LocalProtocolError
before a byte is produced. One encoder function per event type, looked up by type.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from functools import cache
from typing import Any, Final

from drivers.errors import LocalProtocolError
from drivers.printer import events as ev
from drivers.printer.tables import DLE, ESC, FLAGS, GS, MAX_BARCODE, MAX_PAYLOAD, ONE_BYTE, QR_LEVELS

__all__ = ["ENCODED", "PLAIN", "encode_command", "encode_reply"]

XON, XOFF = 0x11, 0x13
_MAX_PAREN: Final = 0xFFFF


def _u8(name: str, value: int, lo: int = 0, hi: int = 255) -> int:
    if not lo <= value <= hi:
        raise LocalProtocolError(f"{name} must be {lo}..{hi}, not {value}")
    return value


def _u16(name: str, value: int) -> bytes:
    if not 0 <= value <= 0xFFFF:
        raise LocalProtocolError(f"{name} must be 0..65535, not {value}")
    return value.to_bytes(2, "little")


def _paren(function: int, body: bytes) -> bytes:
    """GS ( <function> pL pH body."""
    if len(body) > _MAX_PAREN:
        raise LocalProtocolError(f"{len(body)} bytes do not fit one GS ( {chr(function)} command")
    return bytes((GS, 0x28, function)) + len(body).to_bytes(2, "little") + body


def _print_mode(cmd: Any, chinese: bool) -> bytes:
    n = (cmd.font_b * 0x01 | cmd.bold * 0x08 | cmd.double_height * 0x10 | cmd.double_width * 0x20
         | cmd.underline * 0x80)
    return bytes((ESC, 0x21, n))


def _char_size(cmd: Any, chinese: bool) -> bytes:
    w, h = _u8("width", cmd.width, 1, 8), _u8("height", cmd.height, 1, 8)
    return bytes((GS, 0x21, (w - 1) << 4 | (h - 1)))


@cache
def _sendable(chinese: bool) -> re.Pattern[bytes]:
    """What the host may send as text: in Chinese mode only complete GB18030 2-byte codes.
    Compiled on the first PrintText, not at import (a till starts without printing)."""
    if chinese:
        return re.compile(rb"(?:[\t\n\r\x20-\x80\xff]|[\x81-\xfe][\x40-\x7e\x80-\xfe])*")
    return re.compile(rb"[\t\n\r\x20-\xff]*")


def _text(cmd: Any, chinese: bool) -> bytes:
    if not _sendable(chinese).fullmatch(cmd.data):
        what = "control bytes or split/4-byte GB18030 codes" if chinese else "control bytes"
        raise LocalProtocolError(f"PrintText holds {what}; send them as commands")
    return bytes(cmd.data)


def _cut(cmd: Any, chinese: bool) -> bytes:
    if cmd.feed is None:
        return bytes((GS, 0x56, int(cmd.partial)))
    return bytes((GS, 0x56, 66 if cmd.partial else 65, _u8("cut feed", cmd.feed)))


def _barcode(cmd: Any, chinese: bool) -> bytes:
    if len(cmd.data) > MAX_BARCODE:
        raise LocalProtocolError(f"barcode data of {len(cmd.data)} bytes is over {MAX_BARCODE}")
    if 0 <= cmd.symbology <= 6:
        if 0 in cmd.data:
            raise LocalProtocolError("function A barcode data cannot hold NUL")
        return bytes((GS, 0x6B, cmd.symbology)) + bytes(cmd.data) + b"\x00"
    if 65 <= cmd.symbology <= 79:
        return bytes((GS, 0x6B, cmd.symbology, len(cmd.data))) + bytes(cmd.data)
    raise LocalProtocolError(f"barcode symbology must be 0..6 or 65..79, not {cmd.symbology}")


def _raster(cmd: Any, chinese: bool) -> bytes:
    w = _u8("raster width bytes", cmd.width_bytes, 0, 0xFFFF)
    h = _u8("raster height", cmd.height, 0, 0xFFFF)
    if len(cmd.data) != w * h:
        raise LocalProtocolError(f"raster {w}x{h} bytes needs {w * h} data bytes, got {len(cmd.data)}")
    if w * h > MAX_PAYLOAD:
        raise LocalProtocolError(f"raster of {w * h} bytes is over {MAX_PAYLOAD}")
    mode = _u8("raster mode", cmd.mode, 0, 3)
    return bytes((GS, 0x76, 0x30, mode, w & 0xFF, w >> 8, h & 0xFF, h >> 8)) + bytes(cmd.data)


def _column_image(cmd: Any, chinese: bool) -> bytes:
    if cmd.mode not in (0, 1, 32, 33):
        raise LocalProtocolError(f"ESC * mode must be 0, 1, 32 or 33, not {cmd.mode}")
    if len(cmd.data) != cmd.columns * (3 if cmd.mode >= 32 else 1):
        raise LocalProtocolError(f"{cmd.columns} columns in mode {cmd.mode} do not match {len(cmd.data)} bytes")
    return bytes((ESC, 0x2A, cmd.mode)) + _u16("columns", cmd.columns) + bytes(cmd.data)


def _store_graphics(cmd: Any, chinese: bool) -> bytes:
    if len(cmd.data) != (cmd.width + 7) // 8 * cmd.height:
        raise LocalProtocolError(f"graphics {cmd.width}x{cmd.height} dots do not match {len(cmd.data)} bytes")
    for name, scale in (("scale_x", cmd.scale_x), ("scale_y", cmd.scale_y)):
        _u8(name, scale, 1, 2)
    header = bytes((0x30, 112, 48, cmd.scale_x, cmd.scale_y, 48 + _u8("color", cmd.color, 1, 4)))
    return _paren(0x4C, header + _u16("width", cmd.width) + _u16("height", cmd.height) + cmd.data)


def _qr(fn: int, params: bytes) -> bytes:
    return _paren(0x6B, bytes((0x31, fn)) + params)


def _qr_level(cmd: Any, chinese: bool) -> bytes:
    if len(cmd.level) != 1 or cmd.level not in QR_LEVELS:
        raise LocalProtocolError(f"QR error correction must be one of L/M/Q/H, not {cmd.level!r}")
    return _qr(0x45, bytes((0x30 + QR_LEVELS.index(cmd.level),)))


def _pdf417_configure(cmd: Any, chinese: bool) -> bytes:
    _u8("PDF417 function", cmd.function, 0x41, 0x46)
    return _paren(0x6B, bytes((0x30, cmd.function)) + cmd.params)


def _line_spacing(cmd: Any, chinese: bool) -> bytes:
    return b"\x1b2" if cmd.dots is None else bytes((ESC, 0x33, _u8("line spacing", cmd.dots)))


def _user_chars(cmd: Any, chinese: bool) -> bytes:
    y = _u8("user character height bytes", cmd.height_bytes, 1, 3)
    last = _u8("last user character", cmd.first + len(cmd.glyphs) - 1, cmd.first)
    out = bytearray((ESC, 0x26, y, cmd.first, last))
    for glyph in cmd.glyphs:
        if len(glyph) % y:
            raise LocalProtocolError(f"a user glyph is columns of {y} bytes, not {len(glyph)} bytes")
        out += bytes((_u8("user glyph columns", len(glyph) // y),)) + glyph
    return bytes(out)


def _drawer(cmd: Any, chinese: bool) -> bytes:
    pins = {2: 0, 5: 1}
    if cmd.pin not in pins:
        raise LocalProtocolError(f"drawer pin must be 2 or 5, not {cmd.pin}")
    times = []
    for name, ms in (("on", cmd.on_ms), ("off", cmd.off_ms)):
        if ms % 2:
            raise LocalProtocolError(f"drawer {name} time is in 2 ms steps, not {ms} ms")
        times.append(_u8(f"drawer {name} time/2", ms // 2))
    return bytes((ESC, 0x70, pins[cmd.pin], *times))


def _fixed(data: bytes) -> Callable[[Any, bool], bytes]:
    return lambda cmd, chinese: data


def _one_byte(prefix: int, fn: int, field: str, lo: int, hi: int) -> Callable[[Any, bool], bytes]:
    def encode(cmd: Any, chinese: bool) -> bytes:
        return bytes((prefix, fn, _u8(f"{type(cmd).__name__}.{field}", getattr(cmd, field), lo, hi)))

    return encode


def _flag(prefix: int, fn: int) -> Callable[[Any, bool], bytes]:
    return lambda cmd, chinese: bytes((prefix, fn, int(cmd.on)))


_ENCODERS: dict[type[ev.PrinterCommand], Callable[[Any, bool], bytes]] = {
    ev.Initialize: _fixed(b"\x1b@"),
    ev.SelectPrintMode: _print_mode,
    ev.SetAlignment: lambda cmd, chinese: bytes((ESC, 0x61, _u8("alignment", int(cmd.align), 0, 2))),
    ev.SetCharacterSize: _char_size,
    ev.ChineseMode: lambda cmd, chinese: b"\x1c&" if cmd.on else b"\x1c.",
    ev.PrintText: _text,
    ev.Cut: _cut,
    ev.PrintBarcode: _barcode,
    ev.PrintRasterImage: _raster,
    ev.PrintColumnImage: _column_image,
    ev.StoreGraphics: _store_graphics,
    ev.PrintGraphics: _fixed(_paren(0x4C, b"\x30\x32")),
    ev.QrSelectModel: lambda cmd, chinese: _qr(0x41, bytes((0x30 + _u8("QR model", cmd.model, 1, 3), 0))),
    ev.QrSetModuleSize: lambda cmd, chinese: _qr(0x43, bytes((_u8("QR module size", cmd.size, 1, 16),))),
    ev.QrSetErrorCorrection: _qr_level,
    ev.QrStore: lambda cmd, chinese: _qr(0x50, b"\x30" + cmd.data),
    ev.QrPrint: _fixed(_qr(0x51, b"\x30")),
    ev.Pdf417Configure: _pdf417_configure,
    ev.Pdf417Store: lambda cmd, chinese: _paren(0x6B, b"\x30\x50\x30" + cmd.data),
    ev.Pdf417Print: _fixed(_paren(0x6B, b"\x30\x51\x30")),
    ev.RequestStatus: lambda cmd, chinese: bytes((DLE, 0x04, _u8("status kind", cmd.kind, 1, 4))),
    ev.RecoverFromError: lambda cmd, chinese: bytes((DLE, 0x05, 2 if cmd.clear_buffers else 1)),
    ev.PulseDrawer: _drawer,
    ev.SetLineSpacing: _line_spacing,
    ev.SetLeftMargin: lambda cmd, chinese: bytes((GS, 0x4C)) + _u16("left margin", cmd.dots),
    ev.SetPrintAreaWidth: lambda cmd, chinese: bytes((GS, 0x57)) + _u16("print area width", cmd.dots),
    ev.SelectPaperStopSensors: lambda cmd, chinese: bytes((ESC, 0x63, 0x34, 3 if cmd.near_end_stops else 0)),
    ev.DefineUserCharacters: _user_chars,
}
for _cls, (_prefix, _fn, _field, _lo, _hi, _) in ONE_BYTE.items():
    _ENCODERS[_cls] = _one_byte(_prefix, _fn, _field, _lo, _hi)
for _cls, (_prefix, _fn) in FLAGS.items():
    _ENCODERS[_cls] = _flag(_prefix, _fn)


# A receipt is mostly the same few commands (alignment, print mode, the slip's repeated lines):
# each distinct small one is encoded once. Commands are frozen records whose every field is
# compared (none is `compare=False`), so equal values make equal bytes; the key is the class and
# the values themselves (a tuple compares faster than the records would).
_ENCODED: dict[tuple[type, bool, tuple[object, ...]], bytes] = {}
_ENCODED_MAX, _ENCODED_SIZE = 512, 128
ENCODED = _ENCODED  # read by PrinterCodec.send_many(), which looks a job's commands up without a call each
# The command classes whose bytes are all they do: no mode to track, nothing to await (the
# codec's send() does more for ChineseMode, Initialize and RequestStatus).
_STATEFUL: set[type[ev.PrinterCommand]] = {ev.ChineseMode, ev.Initialize, ev.RequestStatus}
PLAIN: frozenset[type[ev.PrinterCommand]] = frozenset(_ENCODERS) - _STATEFUL


def encode_command(cmd: ev.PrinterCommand, *, chinese: bool) -> bytes:
    kind = cmd.__class__
    key = (kind, chinese, kind._get_values(cmd))  # the C getter itself, not a method frame around it
    known = _ENCODED.get(key)
    if known is not None:
        return known
    encoder = _ENCODERS.get(type(cmd))
    if encoder is None:
        raise LocalProtocolError(f"{type(cmd).__name__} cannot be sent by the host")
    data = encoder(cmd, chinese)
    if len(data) <= _ENCODED_SIZE:
        if len(_ENCODED) >= _ENCODED_MAX:
            _ENCODED.clear()
        _ENCODED[key] = data
    return data


def encode_reply(reply: ev.PrinterReply) -> bytes:
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
            return bytes(d)
        case ev.FlowControl():
            return bytes((XOFF if reply.paused else XON,))
    raise LocalProtocolError(f"{type(reply).__name__} cannot be sent by the printer")
