"""Signature pad wire protocol, sans-I/O: `SignaturePadCodec(role, profile)` (drivers/codec.py's shape).

docs/signature-pad.md has every byte; PROTOCOLS.md §4 the Topaz facts.

Pad -> host, two kinds of unit, told apart by their first byte:

- **pen packets** (Topaz serial), 5 bytes, byte 0 has bit 7 set: bit 6 proximity, bit 0 pen down,
  bits 2-4 the type (0/1/4 coordinates, 2 model/serial, 7 pressure); bytes 1-4 are 7-bit,
  `X = (b2 & 0x1F) << 7 | b1 & 0x7F`, Y likewise from b4 / b3; 0FFF,0FFF is the null point.
- **pad frames** (our LCD design), first byte STX (02), every byte 7-bit:
  `02 TYPE LEN DATA CHK`, CHK = XOR of TYPE, LEN and DATA. TYPE `K` a key (`O` ok, `C` clear,
  `X` cancel), `A` the ack of a command (DATA = its command byte), `N` its refusal (command byte,
  cause `C` checksum / `U` unknown / `L` argument).

Where a unit should start, any other byte is noise: it is dropped and reported (resync). A byte with
bit 7 set inside a unit starts a new pen packet: the broken unit is dropped.

Host -> LCD pad: `02 CMD LEN DATA LRC`, LRC = XOR of CMD, LEN and DATA (8-bit: text is GB18030).
CMD `T` show text (DATA = line number 1..N, then the text in lcd.encoding), `C` clear screen, `I`
clear ink, `B` beep (DATA = tens of ms), `E` enable keys (DATA = bit 0 ok, 1 clear, 2 cancel), `P`
pen on/off (DATA = 1 / 0), `Q` identify. The device end queues the ACK / NAK it owes
(`data_to_send()`). A profile without an LCD (SigLite) takes no command: sending one raises
LocalProtocolError.

A malformed input raises RemoteProtocolError (FrameError for a bad frame) from `next_event()` after
the codec has skipped what it could not use; the caller just calls again. Imports no I/O.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Mapping
from typing import Any

from drivers.errors import FrameError, LocalProtocolError, RemoteProtocolError
from drivers.events import Role
from drivers.record import Record
from drivers.signature_pad import events as ev

__all__ = ["KEY_BYTES", "SignaturePadCodec", "SignaturePadSettings", "pen_packet"]

STX = 0x02
SYNC = 0x80
_PROX, _DOWN = 0x40, 0x01
_COORD_TYPES = (0, 1, 4)
_TYPE_IDENTITY, _TYPE_PRESSURE = 2, 7
_MAX_DATA = 250
KEY_BYTES = {"ok": ord("O"), "clear": ord("C"), "cancel": ord("X")}
_KEY_NAMES = {byte: name for name, byte in KEY_BYTES.items()}
_KEY_BITS = {"ok": 0x01, "clear": 0x02, "cancel": 0x04}
_CAUSES = {"checksum": ord("C"), "unknown": ord("U"), "argument": ord("L")}
_CAUSE_NAMES = {byte: name for name, byte in _CAUSES.items()}
_CMD = {ev.ShowText: ord("T"), ev.ClearScreen: ord("C"), ev.ClearInk: ord("I"), ev.Beep: ord("B"),
        ev.EnableKeys: ord("E"), ev.EnablePen: ord("P"), ev.Identify: ord("Q")}
_T_KEY, _T_ACK, _T_NAK = ord("K"), ord("A"), ord("N")


class SignaturePadSettings(Record):
    """The keys of a signature pad profile that shape the wire (defaults = the schema's)."""

    lcd: bool = False
    lines: int = 4
    columns: int = 32
    encoding: str = "gb18030"

    @classmethod
    def from_profile(cls, profile: Mapping[str, Any]) -> SignaturePadSettings:
        lcd = profile["lcd"]
        return cls(lcd=bool(lcd["present"]), lines=int(lcd["lines"]), columns=int(lcd["columns"]),
                   encoding=str(lcd["encoding"]))


def _xor(data: bytes | bytearray) -> int:
    out = 0
    for byte in data:
        out ^= byte
    return out


def pen_packet(kind: int, a: int, b: int, *, down: bool, proximity: bool) -> bytes:
    """A 5-byte Topaz packet of type `kind` carrying two 12-bit values."""
    if not (0 <= a <= 0xFFF and 0 <= b <= 0xFFF):
        raise LocalProtocolError("pen packet values are 12-bit (0..4095)")
    head = SYNC | (_PROX if proximity else 0) | (kind << 2) | (_DOWN if down else 0)
    return bytes([head, a & 0x7F, (a >> 7) & 0x1F, b & 0x7F, (b >> 7) & 0x1F])


Event = ev.PenSample | ev.PenPressure | ev.PadIdentity | ev.PadKey | ev.PadAck | ev.PadNak | ev.PadCommand


class SignaturePadCodec:
    """One end of a signature pad link: `Role.HOST` (the driver) or `Role.DEVICE` (the emulator)."""

    def __init__(self, role: Role, settings: Mapping[str, Any] | None = None) -> None:
        self.role = role
        self.settings = SignaturePadSettings() if settings is None else SignaturePadSettings.from_profile(settings)
        self._rx = bytearray()
        self._tx = bytearray()
        self._events: deque[Event] = deque()

    # -- sending ---------------------------------------------------------------------------------
    def send(self, event: Event) -> bytes:
        if self.role is Role.HOST:
            if not isinstance(event, ev.PadCommand):
                raise LocalProtocolError(f"a host does not send {type(event).__name__}")
            return self._command(event)
        if isinstance(event, ev.PenSample):
            return pen_packet(0, event.x, event.y, down=event.down, proximity=event.proximity)
        if isinstance(event, ev.PenPressure):
            return pen_packet(_TYPE_PRESSURE, event.pressure, 0, down=event.down, proximity=event.proximity)
        if isinstance(event, ev.PadIdentity):
            if not (0 <= event.model <= 0x7F and 0 <= event.serial < 1 << 21):
                raise LocalProtocolError("model is 7-bit, serial 21-bit")
            s = event.serial
            return bytes([SYNC | (_TYPE_IDENTITY << 2), event.model, (s >> 14) & 0x7F, (s >> 7) & 0x7F, s & 0x7F])
        if not self.settings.lcd:
            raise LocalProtocolError("a pad without an LCD sends pen packets only")
        if isinstance(event, ev.PadKey):
            if event.key not in KEY_BYTES:
                raise LocalProtocolError(f"no key {event.key!r} (ok, clear, cancel)")
            return _pad_frame(_T_KEY, bytes([KEY_BYTES[event.key]]))
        if isinstance(event, ev.PadAck):
            return _pad_frame(_T_ACK, bytes([event.command & 0x7F]))
        if isinstance(event, ev.PadNak):
            if event.cause not in _CAUSES:
                raise LocalProtocolError(f"no NAK cause {event.cause!r}")
            return _pad_frame(_T_NAK, bytes([event.command & 0x7F, _CAUSES[event.cause]]))
        raise LocalProtocolError(f"a device does not send {type(event).__name__}")

    def _command(self, command: ev.PadCommand) -> bytes:
        s = self.settings
        if not s.lcd:
            raise LocalProtocolError("this pad has no LCD: it takes no commands")
        code = _CMD.get(type(command))
        if code is None:
            raise LocalProtocolError(f"no command byte for {type(command).__name__}")
        data = b""
        if isinstance(command, ev.ShowText):
            if not 1 <= command.line <= s.lines:
                raise LocalProtocolError(f"the LCD has lines 1..{s.lines}")
            try:
                text = command.text.encode(s.encoding)
            except UnicodeEncodeError as exc:
                raise LocalProtocolError(f"the text cannot be shown in {s.encoding}") from exc
            if len(text) > s.columns or any(b < 0x20 for b in text):
                raise LocalProtocolError(f"a line is at most lcd.columns ({s.columns}) bytes, no control bytes")
            data = bytes([command.line]) + text
        elif isinstance(command, ev.Beep):
            if not 10 <= command.duration_ms <= 2550:
                raise LocalProtocolError("a beep lasts 10..2550 ms")
            data = bytes([command.duration_ms // 10])
        elif isinstance(command, ev.EnableKeys):
            if not set(command.keys) <= set(_KEY_BITS):
                raise LocalProtocolError("keys are ok, clear, cancel")
            data = bytes([sum(_KEY_BITS[k] for k in set(command.keys))])
        elif isinstance(command, ev.EnablePen):
            data = b"\x01" if command.on else b"\x00"
        body = bytes([code, len(data)]) + data
        return bytes([STX]) + body + bytes([_xor(body)])

    # -- receiving -------------------------------------------------------------------------------
    def receive_data(self, data: bytes) -> None:
        self._rx += data

    @property
    def buffered(self) -> int:
        return len(self._rx)

    def data_to_send(self) -> bytes:
        """Device end: the ACK / NAK frames owed for the commands decoded, oldest first."""
        out, self._tx = bytes(self._tx), bytearray()
        return out

    def next_event(self) -> Event | None:
        while not self._events:
            if not (self._parse_command() if self.role is Role.DEVICE else self._parse_pad()):
                return None
        return self._events.popleft()

    # host end: pen packets and pad frames --------------------------------------------------------
    def _parse_pad(self) -> bool:
        rx = self._rx
        if not rx:
            return False
        head = rx[0]
        if head & SYNC:
            return self._parse_pen()
        if head != STX:
            del rx[0]
            raise RemoteProtocolError(f"0x{head:02x} where a pen packet (bit 7) or a pad frame (02) starts")
        return self._parse_pad_frame()

    def _broken_at(self, start: int, end: int) -> int | None:
        """Index of a byte with bit 7 set in rx[start:end] (a new pen packet starts there)."""
        for i in range(start, min(end, len(self._rx))):
            if self._rx[i] & SYNC:
                return i
        return None

    def _parse_pen(self) -> bool:
        rx = self._rx
        broken = self._broken_at(1, 5)
        if broken is not None:
            del rx[:broken]
            raise RemoteProtocolError("a pen packet cut short by the next sync byte (a byte was lost)")
        if len(rx) < 5:
            return False
        packet = bytes(rx[:5])
        del rx[:5]
        head = packet[0]
        kind, down, proximity = (head >> 2) & 0x07, bool(head & _DOWN), bool(head & _PROX)
        a = (packet[2] & 0x1F) << 7 | packet[1] & 0x7F
        b = (packet[4] & 0x1F) << 7 | packet[3] & 0x7F
        if kind in _COORD_TYPES:
            self._events.append(ev.PenSample(x=a, y=b, down=down, proximity=proximity))
        elif kind == _TYPE_IDENTITY:
            serial = packet[2] << 14 | packet[3] << 7 | packet[4]
            self._events.append(ev.PadIdentity(model=packet[1], serial=serial))
        elif kind == _TYPE_PRESSURE:
            self._events.append(ev.PenPressure(pressure=a, down=down, proximity=proximity))
        else:
            raise RemoteProtocolError(f"pen packet type {kind} is not one the pads send")
        return True

    def _parse_pad_frame(self) -> bool:
        rx = self._rx
        if len(rx) >= 3 and rx[2] > 2:
            del rx[0]
            raise FrameError("a pad frame carries at most 2 data bytes")
        end = 3 + rx[2] + 1 if len(rx) >= 3 else 4
        broken = self._broken_at(1, end)
        if broken is not None:
            del rx[:broken]
            raise FrameError("a pad frame cut short by a pen packet")
        if len(rx) < end:
            return False
        frame = bytes(rx[:end])
        body, check = frame[1:-1], frame[-1]
        if _xor(body) != check:
            del rx[0]
            raise FrameError("a pad frame with a bad check byte")
        del rx[:end]
        kind, data = body[0], body[2:]
        if kind == _T_KEY and len(data) == 1 and data[0] in _KEY_NAMES:
            self._events.append(ev.PadKey(key=_KEY_NAMES[data[0]]))
        elif kind == _T_ACK and len(data) == 1:
            self._events.append(ev.PadAck(command=data[0]))
        elif kind == _T_NAK and len(data) == 2 and data[1] in _CAUSE_NAMES:
            self._events.append(ev.PadNak(command=data[0], cause=_CAUSE_NAMES[data[1]]))
        else:
            raise FrameError("a pad frame of an unknown type or shape")
        return True

    # device end: host command frames ---------------------------------------------------------------
    def _parse_command(self) -> bool:
        rx = self._rx
        if not rx:
            return False
        if rx[0] != STX:
            del rx[0]
            raise FrameError("a command frame starts with 02")
        if len(rx) < 3:
            return False
        if rx[2] > _MAX_DATA:
            del rx[0]
            raise FrameError(f"a command carries at most {_MAX_DATA} data bytes")
        end = 3 + rx[2] + 1
        if len(rx) < end:
            return False
        frame = bytes(rx[:end])
        body, code = frame[1:-1], frame[1]
        if _xor(body) != frame[-1]:
            del rx[0]
            self._nak(code, "checksum")
            raise FrameError("a command frame with a bad check byte; NAK sent")
        del rx[:end]
        try:
            command = self._decode_command(code, body[2:])
        except RemoteProtocolError:
            self._nak(code, "argument" if code in _CMD.values() else "unknown")
            raise
        self._tx += _pad_frame(_T_ACK, bytes([code & 0x7F]))
        self._events.append(command)
        return True

    def _nak(self, code: int, cause: str) -> None:
        self._tx += _pad_frame(_T_NAK, bytes([code & 0x7F, _CAUSES[cause]]))

    def _decode_command(self, code: int, data: bytes) -> ev.PadCommand:
        s = self.settings
        if not s.lcd:
            raise RemoteProtocolError("this pad has no LCD: it takes no commands")
        simple = {ord("C"): ev.ClearScreen, ord("I"): ev.ClearInk, ord("Q"): ev.Identify}
        if code in simple:
            if data:
                raise RemoteProtocolError("this command carries no data")
            return simple[code]()
        if code == ord("T"):
            if not data or not 1 <= data[0] <= s.lines:
                raise RemoteProtocolError(f"show text names a line 1..{s.lines}")
            try:
                text = data[1:].decode(s.encoding)
            except UnicodeDecodeError:
                raise RemoteProtocolError(f"text that is not {s.encoding}") from None
            if len(data) - 1 > s.columns or any(b < 0x20 for b in data[1:]):
                raise RemoteProtocolError("a line too long or holding control bytes")
            return ev.ShowText(line=data[0], text=text)
        if len(data) != 1:
            raise RemoteProtocolError("this command carries one data byte")
        value = data[0]
        if code == ord("B") and value:
            return ev.Beep(duration_ms=value * 10)
        if code == ord("E") and value < 8:
            return ev.EnableKeys(keys=tuple(k for k, bit in _KEY_BITS.items() if value & bit))
        if code == ord("P") and value in (0, 1):
            return ev.EnablePen(on=bool(value))
        raise RemoteProtocolError(f"unknown command 0x{code:02x} or a bad argument")


def _pad_frame(kind: int, data: bytes) -> bytes:
    body = bytes([kind, len(data)]) + data
    return bytes([STX]) + body + bytes([_xor(body)])
