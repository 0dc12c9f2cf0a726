"""Sans-I/O ESC/POS codec (PROTOCOLS.md §1): one class, two roles.

Role.HOST (the driver) sends commands and decodes the printer's reply stream; Role.DEVICE (the
emulator) decodes the command stream and sends replies.

Device role, decoding commands (the command table is in decoders.py):
- Text is yielded as the maximal run of text bytes *available now* (a run is not held back
  waiting for a terminator), so the same stream fed in different chunks yields the same events
  once adjacent PrintText events are joined. In Chinese mode a byte 0x81..0xFE and the byte after
  it are one character: never split between events, the second byte never read as a command.
- Anything else is a command; what we do not model is UnknownCommand, skipped by its documented
  length. The device side never raises on input.

Host role, decoding replies (demultiplexed per §1.2): XON/XOFF, one-byte DLE EOT answers matched
in FIFO order to the RequestStatus kinds we sent, and 4-byte ASB pushes. A byte that fits none
of these (or a status byte nobody asked for) raises FrameError after dropping it, so the next
call resynchronises.
"""

from __future__ import annotations

import re
from collections import deque
from collections.abc import Callable, Iterable, Mapping
from typing import Any

from drivers.errors import FrameError, LocalProtocolError
from drivers.events import Role
from drivers.printer import events as ev
from drivers.printer.encoders import ENCODED, PLAIN, encode_command, encode_reply
from drivers.printer.tables import MAX_PAYLOAD

__all__ = ["DEFAULTS", "MAX_PAYLOAD", "XOFF", "XON", "PrinterCodec", "power_on_chinese"]

XON, XOFF = 0x11, 0x13

# The device role's tables: the command decoder (decoders.py) and the text framing. Only the
# device role (the emulator) decodes commands, so they load when the first DEVICE codec is built
# (`_load_device_tables`): a till's host codecs never pay for them.
_TEXT: re.Pattern[bytes]
_CACHE: dict[int, ev.PrinterCommand]
decode_command: Callable[[bytes | bytearray, int], tuple[ev.PrinterCommand, int] | None]
_device_tables_loaded = False


def _load_device_tables() -> None:
    global _TEXT, _CACHE, decode_command, _device_tables_loaded
    from drivers.printer import decoders

    _TEXT = re.compile(rb"[\t\n\r\x20-\xff]+")
    _CACHE, decode_command = decoders.CACHE, decoders.decode_command
    _device_tables_loaded = True


def _text_end(buf: bytearray, pos: int, chinese: bool) -> int:
    """Where the text run at `pos` ends (`pos`: no text there, or a GB18030 lead byte waiting).

    In Chinese mode a lead byte 0x81..0xFE takes the byte after it, whatever it is: the run is
    `(?:[\\t\\n\\r\\x20-\\x80\\xff]|[\\x81-\\xfe][\\x00-\\xff])+`. That pattern costs a regex branch per
    byte; the plain text class is one scan. They differ only where the run's last byte is a
    lead: the byte after any byte outside 0x81..0xFE starts a character (whether that byte was
    a single or a second byte), so the trailing run of 0x81..0xFE bytes, if odd, ends in a lead."""
    text = _TEXT.match(buf, pos)
    if text is None:
        return pos
    end = text.end()
    if not chinese:
        return end
    start = pos  # a character starts here
    while True:
        i = end
        while i > start and 0x81 <= buf[i - 1] <= 0xFE:
            i -= 1
        if not (end - i) & 1:
            return end
        if end >= len(buf):
            return end - 1  # a lead byte waiting for its second byte
        start = end = end + 1  # the lead's second byte (a control byte here) is text
        text = _TEXT.match(buf, end)
        if text is None:
            return end
        end = text.end()


_MODES = (ev.ChineseMode, ev.Initialize)
_TEXT_CONTROLS = frozenset(b"\t\n\r")

Event = ev.PrinterCommand | ev.PrinterReply


# What a codec without a profile (`settings=None`) assumes: the printer schema's defaults of the
# keys it reads, repeated here because a codec reads no files (a test holds them equal).
DEFAULTS: Mapping[str, Any] = {"text.chinese_mode_at_power_on": False}


def power_on_chinese(settings: Mapping[str, Any] | None) -> bool:
    """The profile's `text.chinese_mode_at_power_on` (DEFAULTS without a profile)."""
    if settings is None:
        return bool(DEFAULTS["text.chinese_mode_at_power_on"])
    return bool(settings["text"]["chinese_mode_at_power_on"])


class PrinterCodec:
    """One printer link (the drivers/codec.py shape). From `settings` (the printer profile) it reads
    text.chinese_mode_at_power_on: the device role needs it to frame GB18030 text, the host role to
    refuse split characters. `chinese_mode` is the current mode; a driver may set it (it encodes a
    job on a scratch codec, then carries the mode over)."""

    def __init__(self, role: Role, settings: Mapping[str, Any] | None = None) -> None:
        self.role = role
        self._device = role is Role.DEVICE
        if self._device and not _device_tables_loaded:
            _load_device_tables()
        self._power_on_chinese = power_on_chinese(settings)
        self.chinese_mode = self._power_on_chinese  # follows FS & / FS . / ESC @ in both roles
        self._buffer = bytearray()
        self._pos = 0  # device role: bytes of _buffer already decoded (dropped lazily, in one go)
        self._asked: deque[int] = deque()  # host role: DLE EOT kinds awaiting their byte
        self._asb = bytearray()  # host role: ASB bytes received so far

    @property
    def outstanding(self) -> tuple[int, ...]:
        """DLE EOT kinds sent and not answered yet, oldest first (host role)."""
        return tuple(self._asked)

    @property
    def buffered(self) -> int:
        """Bytes received and not decoded yet (the tail of a command still arriving)."""
        return len(self._buffer) - self._pos

    def forget_outstanding(self) -> None:
        """Give up on unanswered requests (after a timeout), so a late byte is not misread."""
        self._asked.clear()
        self._asb.clear()

    def clear(self) -> None:
        """Drop every byte received and not decoded yet (a printer clearing its receive buffer)."""
        self._buffer.clear()
        self._pos = 0
        self._asb.clear()

    # -- outbound ---------------------------------------------------------------------------------
    def send(self, event: Event) -> bytes:
        if not self._device:
            if not isinstance(event, ev.PrinterCommand):
                raise LocalProtocolError(f"the host does not send {type(event).__name__}")
            data = encode_command(event, chinese=self.chinese_mode)
            kind = type(event)
            if kind in _MODES:
                self._track_mode(event)
            elif kind is ev.RequestStatus:
                self._asked.append(event.kind)  # type: ignore[attr-defined]
            return data
        if not isinstance(event, ev.PrinterReply):
            raise LocalProtocolError(f"the printer does not send {type(event).__name__}")
        return encode_reply(event)

    def send_many(self, commands: Iterable[ev.PrinterCommand]) -> bytes:
        """Host role: send() of each command in order, joined. A job is mostly the same few small
        commands, already encoded (encoders.ENCODED): those are looked up here without a call per
        command; anything else (a mode, a miss, a bad command) goes through send() itself."""
        parts: list[bytes] = []
        append, known, send = parts.append, ENCODED, self.send
        plain = frozenset() if self._device else PLAIN  # the device role's send() refuses commands
        chinese = self.chinese_mode
        for cmd in commands:
            kind = cmd.__class__
            if kind in plain:
                data = known.get((kind, chinese, kind._get_values(cmd)))
                append(data if data is not None else encode_command(cmd, chinese=chinese))
            else:
                append(send(cmd))
                chinese = self.chinese_mode
        return b"".join(parts)

    def _track_mode(self, event: ev.PrinterCommand) -> None:
        if type(event) is ev.ChineseMode:
            self.chinese_mode = event.on
        elif type(event) is ev.Initialize:
            self.chinese_mode = self._power_on_chinese

    def data_to_send(self) -> bytes:
        """Nothing: ESC/POS has no link layer, the codec never owes the peer a byte of its own."""
        return b""

    # -- inbound ----------------------------------------------------------------------------------
    def receive_data(self, data: bytes) -> None:
        self._buffer += data

    def next_event(self) -> Event | None:
        """The next decoded event, or None when more bytes are needed."""
        if not self._device:
            return self._next_reply()
        buf, pos = self._buffer, self._pos
        if pos >= len(buf):
            if buf:
                buf.clear()
                self._pos = 0
            return None
        end = _text_end(buf, pos, self.chinese_mode)
        if end > pos:
            self._pos = end
            return ev.PrintText(data=bytes(buf[pos:end]))
        decoded = None if self.chinese_mode and 0x81 <= buf[pos] <= 0xFE else decode_command(buf, pos)
        if decoded is None:  # a command (or a GB18030 lead byte) waiting for its next bytes
            del buf[:pos]
            self._pos = 0
            return None
        cmd, self._pos = decoded
        if type(cmd) in _MODES:
            self._track_mode(cmd)
        return cmd

    def commands(self) -> list[ev.PrinterCommand]:
        """Device role: every command decodable now, in order — what repeated next_event() calls
        would return, in one call (the emulator's fast path)."""
        if not self._device:
            raise LocalProtocolError("only the device role decodes commands")
        out: list[ev.PrinterCommand] = []
        append = out.append
        buf, pos, size = self._buffer, self._pos, len(self._buffer)
        chinese, text_end = self.chinese_mode, _text_end
        cache = _CACHE
        while pos < size:
            first = buf[pos]
            if first >= 0x20 or first in _TEXT_CONTROLS:
                end = text_end(buf, pos, chinese)
                if end > pos:
                    append(ev.PrintText(data=bytes(buf[pos:end])))
                    pos = end
                    continue
                break  # Chinese mode: a lead byte waiting for its second byte
            if pos + 2 < size:  # the common 3-byte commands, straight from the cache
                cmd = cache.get(first << 16 | buf[pos + 1] << 8 | buf[pos + 2])
                if cmd is not None:  # only complete 3-byte commands are cached under 3-byte keys
                    append(cmd)
                    pos += 3
                    continue
            decoded = decode_command(buf, pos)
            if decoded is None:
                break
            cmd, pos = decoded
            append(cmd)
            if type(cmd) in _MODES:
                self._track_mode(cmd)
                chinese = self.chinese_mode
        if pos >= size:
            buf.clear()
        else:
            del buf[:pos]
        self._pos = 0
        return out

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
