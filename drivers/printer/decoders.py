"""The device role's command table (sans-I/O): ESC/POS bytes at a position -> (command, end).

`decode_command(buf, pos)` decodes the one non-text command that starts at `buf[pos]` and returns
it with the position just after it, or None when the command is not complete yet. Text runs are
framed by the codec (they depend on Chinese mode). Nothing here raises on input:

- A command we do not model becomes UnknownCommand, skipped by its documented length (`_SKIP`, or
  its own length fields); an unknown ESC/GS/FS x skips 2 bytes, a stray control byte 1.
- Declared payloads are bounded by MAX_PAYLOAD: a larger declaration yields the header alone as
  UnknownCommand and decoding resumes right after it — never gigabytes buffered, never the rest
  of a job eaten blind.

Speed matters (the emulator decodes every receipt byte): commands of 2 and 3 bytes come from
caches of ready, immutable events keyed by their bytes, so the common case is two dict look-ups
and no object built; positions are passed instead of slicing the buffer.
"""

from __future__ import annotations

from collections.abc import Callable

from drivers.printer import events as ev
from drivers.printer.tables import DLE, ESC, FLAGS, FS, GS, MAX_BARCODE, MAX_PAYLOAD, ONE_BYTE, QR_LEVELS, SKIP

__all__ = ["BYTE3", "CACHE", "TWO_BYTE_TAG", "Decoded", "decode_command"]

Decoded = tuple[ev.PrinterCommand, int] | None  # (command, end position) or None = need more bytes
Buffer = bytearray | bytes
Handler = Callable[[Buffer, int], Decoded]


def _digit(n: int, top: int) -> int | None:
    """ESC/POS takes n or ASCII '0'+n for small selectors."""
    if 0 <= n <= top:
        return n
    if 0x30 <= n <= 0x30 + top:
        return n - 0x30
    return None


def _unknown(buf: Buffer, pos: int, end: int) -> Decoded:
    return ev.UnknownCommand(data=bytes(buf[pos:end])), end


# -- commands of 2 and 3 bytes: cached events ----------------------------------------------------
def _print_mode(n: int) -> ev.PrinterCommand:
    return ev.SelectPrintMode(font_b=bool(n & 0x01), bold=bool(n & 0x08), double_height=bool(n & 0x10),
                              double_width=bool(n & 0x20), underline=bool(n & 0x80))


def _align(n: int) -> ev.PrinterCommand | None:
    d = _digit(n, 2)
    return None if d is None else ev.SetAlignment(align=ev.Align(d))


def _char_size(n: int) -> ev.PrinterCommand:
    return ev.SetCharacterSize(width=(n >> 4 & 7) + 1, height=(n & 7) + 1)


def _cut_a(n: int) -> ev.PrinterCommand | None:
    return ev.Cut(partial=n in (1, 0x31)) if n in (0, 1, 0x30, 0x31) else None


BYTE3: dict[int, Callable[[int], ev.PrinterCommand | None]] = {
    ESC << 8 | 0x21: _print_mode,
    ESC << 8 | 0x61: _align,
    ESC << 8 | 0x33: lambda n: ev.SetLineSpacing(dots=n),
    GS << 8 | 0x21: _char_size,
}
_BYTE2: dict[int, ev.PrinterCommand] = {
    ESC << 8 | 0x40: ev.Initialize(),
    ESC << 8 | 0x32: ev.SetLineSpacing(),
    FS << 8 | 0x26: ev.ChineseMode(on=True),
    FS << 8 | 0x2E: ev.ChineseMode(on=False),
}


def _one_byte(
    cls: type[ev.PrinterCommand], field: str, hi: int, digits: bool,
) -> Callable[[int], ev.PrinterCommand | None]:
    def build(n: int) -> ev.PrinterCommand | None:
        value = _digit(n, hi) if digits else n
        return None if value is None else cls(**{field: value})

    return build


def _flag(cls: type[ev.PrinterCommand]) -> Callable[[int], ev.PrinterCommand]:
    return lambda n: cls(on=bool(n & 1))


for _cls, (_prefix, _fn, _field, _, _hi, _digits) in ONE_BYTE.items():
    BYTE3[_prefix << 8 | _fn] = _one_byte(_cls, _field, _hi, _digits)
for _cls, (_prefix, _fn) in FLAGS.items():
    BYTE3[_prefix << 8 | _fn] = _flag(_cls)

_SKIP_LENGTH: dict[int, int] = {p << 8 | fn: n for p, table in SKIP.items() for fn, n in table.items()}
# key = the command's 3 bytes as one integer; a 2-byte command's key carries TWO_BYTE_TAG, so it never
# equals a 3-byte key whose first byte is 00 (the fast path looks up any 3 bytes, NUL-led included).
CACHE: dict[int, ev.PrinterCommand] = {}
TWO_BYTE_TAG = 1 << 24
_STRAY: list[ev.PrinterCommand] = [ev.UnknownCommand(data=bytes((b,))) for b in range(32)]


# -- variable-length commands --------------------------------------------------------------------
def _u16(buf: Buffer, i: int) -> int:
    return int(buf[i] | buf[i + 1] << 8)


def _fixed(length: int, build: Callable[[Buffer, int], ev.PrinterCommand | None]) -> Handler:
    def handler(buf: Buffer, pos: int) -> Decoded:
        end = pos + length
        if len(buf) < end:
            return None
        cmd = build(buf, pos)
        return (cmd, end) if cmd is not None else _unknown(buf, pos, end)

    return handler


def _drawer(buf: Buffer, pos: int) -> ev.PrinterCommand | None:
    pin = {0: 2, 0x30: 2, 1: 5, 0x31: 5}.get(buf[pos + 2])
    return None if pin is None else ev.PulseDrawer(pin=pin, on_ms=buf[pos + 3] * 2, off_ms=buf[pos + 4] * 2)


def _paper_sensors(buf: Buffer, pos: int) -> ev.PrinterCommand | None:
    return ev.SelectPaperStopSensors(near_end_stops=bool(buf[pos + 3] & 3)) if buf[pos + 2] == 0x34 else None


def _sized(header: int, size: Callable[[Buffer, int], int]) -> Handler:
    """Unknown command with a payload length computed from its header."""

    def handler(buf: Buffer, pos: int) -> Decoded:
        if len(buf) < pos + header:
            return None
        payload = size(buf, pos)
        if payload > MAX_PAYLOAD:
            return _unknown(buf, pos, pos + header)
        end = pos + header + payload
        return None if len(buf) < end else _unknown(buf, pos, end)

    return handler


def _tab_stops(buf: Buffer, pos: int) -> Decoded:
    """ESC D n1..nk NUL (k <= 32): unknown, NUL-terminated."""
    end = buf.find(0, pos + 2, pos + 35)
    if end >= 0:
        return _unknown(buf, pos, end + 1)
    return _unknown(buf, pos, pos + 2) if len(buf) >= pos + 35 else None


def _user_chars(buf: Buffer, pos: int) -> Decoded:
    """ESC & y c1 c2 then, per character, x and y*x column bytes (bounded: y <= 3, x <= 255)."""
    if len(buf) < pos + 5:
        return None
    y, first, last = buf[pos + 2], buf[pos + 3], buf[pos + 4]
    if last < first or not 1 <= y <= 3:
        return _unknown(buf, pos, pos + 5)
    glyphs = []
    at = pos + 5
    for _ in range(last - first + 1):
        if len(buf) <= at:
            return None
        end = at + 1 + y * buf[at]
        glyphs.append(bytes(buf[at + 1 : end]))
        at = end
    if len(buf) < at:
        return None
    return ev.DefineUserCharacters(height_bytes=y, first=first, glyphs=tuple(glyphs)), at


def _column_image(buf: Buffer, pos: int) -> Decoded:
    if len(buf) < pos + 5:
        return None
    mode, columns = buf[pos + 2], _u16(buf, pos + 3)
    end = pos + 5 + columns * (3 if mode in (32, 33) else 1)
    if len(buf) < end:
        return None
    if mode not in (0, 1, 32, 33):
        return _unknown(buf, pos, end)
    return ev.PrintColumnImage(mode=mode, columns=columns, data=bytes(buf[pos + 5 : end])), end


def _cut(buf: Buffer, pos: int) -> Decoded:
    if len(buf) < pos + 3:
        return None
    m = buf[pos + 2]
    if m in (0, 1, 0x30, 0x31):
        return ev.Cut(partial=m in (1, 0x31)), pos + 3
    if m in (65, 66, 97, 98, 103, 104):  # function B (feed, cut) and its C/D relatives
        if len(buf) < pos + 4:
            return None
        if m in (65, 66):
            return ev.Cut(partial=m == 66, feed=buf[pos + 3]), pos + 4
        return _unknown(buf, pos, pos + 4)
    return _unknown(buf, pos, pos + 3)


def _barcode(buf: Buffer, pos: int) -> Decoded:
    if len(buf) < pos + 3:
        return None
    m, start = buf[pos + 2], pos + 3
    if m <= 6:  # function A: data up to NUL
        end = buf.find(0, start, start + MAX_BARCODE + 1)
        if end >= 0:
            return ev.PrintBarcode(symbology=m, data=bytes(buf[start:end])), end + 1
        if len(buf) > start + MAX_BARCODE:
            return _unknown(buf, pos, start)  # no terminator: resync after the header
        return None
    if 65 <= m <= 79:  # function B: length byte, then data
        if len(buf) < start + 1 or len(buf) < start + 1 + buf[start]:
            return None
        end = start + 1 + buf[start]
        return ev.PrintBarcode(symbology=m, data=bytes(buf[start + 1 : end])), end
    return _unknown(buf, pos, start)


def _raster(buf: Buffer, pos: int) -> Decoded:
    if len(buf) < pos + 3:
        return None
    if buf[pos + 2] != 0x30:
        return _unknown(buf, pos, pos + 2)
    if len(buf) < pos + 8:
        return None
    width, height = _u16(buf, pos + 4), _u16(buf, pos + 6)
    mode, size = _digit(buf[pos + 3], 3), width * height
    if mode is None or size > MAX_PAYLOAD:
        return _unknown(buf, pos, pos + 8)
    end = pos + 8 + size
    if len(buf) < end:
        return None
    return ev.PrintRasterImage(width_bytes=width, height=height, data=bytes(buf[pos + 8 : end]), mode=mode), end


def _paren(header: int, length: Callable[[Buffer, int], int], body: Callable[[int, bytes], ev.PrinterCommand | None],
           ) -> Handler:
    """`x ( f` style commands: a length field, then a body (`body(f, bytes)` or None = unknown)."""

    def handler(buf: Buffer, pos: int) -> Decoded:
        if len(buf) < pos + header:
            return None
        size = length(buf, pos)
        if size > MAX_PAYLOAD:
            return _unknown(buf, pos, pos + header)
        end = pos + header + size
        if len(buf) < end:
            return None
        cmd = body(buf[pos + 2], bytes(buf[pos + header : end]))
        return (cmd, end) if cmd is not None else _unknown(buf, pos, end)

    return handler


def _gs_paren(function: int, body: bytes) -> ev.PrinterCommand | None:
    if function == 0x6B:
        return _symbol(body)
    if function == 0x4C:
        return _graphics(body)
    return None


def _gs_8(function: int, body: bytes) -> ev.PrinterCommand | None:
    return _graphics(body) if function == 0x4C else None


def _graphics(body: bytes) -> ev.PrinterCommand | None:
    """GS ( L / GS 8 L body: m fn ...; fn 112 stores raster graphics, fn 50 (or 2) prints them."""
    if len(body) < 2 or body[0] != 0x30:
        return None
    fn = body[1]
    if fn in (2, 50) and len(body) == 2:
        return ev.PrintGraphics()
    if fn == 112 and len(body) >= 10:
        a, bx, by, c = body[2], body[3], body[4], body[5]
        width, height = _u16(body, 6), _u16(body, 8)
        data = body[10:]
        if a == 48 and bx in (1, 2) and by in (1, 2) and 49 <= c <= 52 and len(data) == (width + 7) // 8 * height:
            return ev.StoreGraphics(width=width, height=height, data=data, scale_x=bx, scale_y=by, color=c - 48)
    return None


def _symbol(body: bytes) -> ev.PrinterCommand | None:
    """GS ( k body = cn fn params: cn 49 = QR Code, cn 48 = PDF417."""
    if len(body) < 3:
        return None
    cn, fn, rest = body[0], body[1], body[2:]
    if cn == 0x31:
        if fn == 0x41 and len(rest) == 2 and 0x31 <= rest[0] <= 0x33:
            return ev.QrSelectModel(model=rest[0] - 0x30)
        if fn == 0x43 and len(rest) == 1:
            return ev.QrSetModuleSize(size=rest[0])
        if fn == 0x45 and len(rest) == 1 and 0x30 <= rest[0] <= 0x33:
            return ev.QrSetErrorCorrection(level=QR_LEVELS[rest[0] - 0x30])
        if fn == 0x50 and rest[0] == 0x30:
            return ev.QrStore(data=rest[1:])
        if fn == 0x51 and rest == b"\x30":
            return ev.QrPrint()
    elif cn == 0x30:
        if 0x41 <= fn <= 0x46:
            return ev.Pdf417Configure(function=fn, params=rest)
        if fn == 0x50 and rest[0] == 0x30:
            return ev.Pdf417Store(data=rest[1:])
        if fn == 0x51 and rest == b"\x30":
            return ev.Pdf417Print()
    return None


def _dle(buf: Buffer, pos: int) -> Decoded:
    if len(buf) < pos + 2:
        return None
    fn = buf[pos + 1]
    if fn in (0x04, 0x05, 0x14):
        if len(buf) < pos + 3:
            return None
        n = buf[pos + 2]
        if fn == 0x04 and 1 <= n <= 4:
            return _cached(buf, pos, 3, lambda: ev.RequestStatus(kind=n))
        if fn == 0x05 and n in (1, 2):
            return _cached(buf, pos, 3, lambda: ev.RecoverFromError(clear_buffers=n == 2))
        if fn == 0x14:  # DLE DC4 fn ...: length by function
            end = pos + {1: 5, 2: 5, 7: 4, 8: 10}.get(n, 3)
            return None if len(buf) < end else _unknown(buf, pos, end)
        return _unknown(buf, pos, pos + 3)
    return _STRAY[DLE], pos + 1


def _cached(buf: Buffer, pos: int, length: int, build: Callable[[], ev.PrinterCommand]) -> Decoded:
    key = int.from_bytes(buf[pos : pos + length], "big") | (TWO_BYTE_TAG if length == 2 else 0)
    cmd = CACHE.get(key)
    if cmd is None:
        cmd = CACHE[key] = build()
    return cmd, pos + length


_HANDLERS: dict[int, Handler] = {
    ESC << 8 | 0x70: _fixed(5, _drawer),
    ESC << 8 | 0x63: _fixed(4, _paper_sensors),
    ESC << 8 | 0x2A: _column_image,
    ESC << 8 | 0x44: _tab_stops,
    ESC << 8 | 0x26: _user_chars,
    ESC << 8 | 0x28: _sized(5, lambda b, p: _u16(b, p + 3)),
    GS << 8 | 0x4C: _fixed(4, lambda b, p: ev.SetLeftMargin(dots=_u16(b, p + 2))),
    GS << 8 | 0x57: _fixed(4, lambda b, p: ev.SetPrintAreaWidth(dots=_u16(b, p + 2))),
    GS << 8 | 0x56: _cut,
    GS << 8 | 0x6B: _barcode,
    GS << 8 | 0x76: _raster,
    GS << 8 | 0x28: _paren(5, lambda b, p: _u16(b, p + 3), _gs_paren),
    GS << 8 | 0x38: _paren(7, lambda b, p: int.from_bytes(b[p + 3 : p + 7], "little"), _gs_8),
    GS << 8 | 0x2A: _sized(4, lambda b, p: b[p + 2] * b[p + 3] * 8),  # GS * x y: downloaded bit image
    FS << 8 | 0x28: _sized(5, lambda b, p: _u16(b, p + 3)),
}


def decode_command(buf: Buffer, pos: int) -> Decoded:
    """The non-text command starting at `buf[pos]` and the position after it; None = incomplete."""
    first = buf[pos]
    if first == DLE:
        return _dle(buf, pos)
    if first != ESC and first != GS and first != FS:
        return _STRAY[first] if first < 32 else ev.UnknownCommand(data=bytes((first,))), pos + 1
    if len(buf) < pos + 2:
        return None
    key = first << 8 | buf[pos + 1]
    if key in BYTE3:
        if len(buf) < pos + 3:
            return None
        full = key << 8 | buf[pos + 2]
        cmd = CACHE.get(full)
        if cmd is None:
            cmd = CACHE[full] = BYTE3[key](buf[pos + 2]) or ev.UnknownCommand(data=bytes(buf[pos : pos + 3]))
        return cmd, pos + 3
    cmd = _BYTE2.get(key)
    if cmd is not None:
        return cmd, pos + 2
    handler = _HANDLERS.get(key)
    if handler is not None:
        return handler(buf, pos)
    length = _SKIP_LENGTH.get(key, 2)
    if len(buf) < pos + length:
        return None
    if length <= 3:
        return _cached(buf, pos, length, lambda: ev.UnknownCommand(data=bytes(buf[pos : pos + length])))
    return _unknown(buf, pos, pos + length)
