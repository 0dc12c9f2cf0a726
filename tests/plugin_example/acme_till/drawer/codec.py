"""The ACME cash drawer wire protocol, sans-I/O (one codec, two roles; see drivers/printer/codec.py).

Host -> drawer: `ESC p t` (0x1B 0x70 t) opens it, firing the solenoid for t x 10 ms (1..255);
`ENQ` (0x05) asks its status. Drawer -> host: one status byte `0b0100_00JO` (0x40 | jammed << 1
| open), sent when asked and unasked whenever a sensor changes. Anything else is a protocol error.
"""

from __future__ import annotations

from typing import NoReturn

from drivers.codec import CodecSettings
from drivers.errors import LocalProtocolError, RemoteProtocolError
from drivers.events import Role

from . import events as ev

__all__ = ["ENQ", "ESC_P", "DrawerCodec"]

ESC_P = b"\x1b\x70"
ENQ = 0x05
_STATUS_BASE, _STATUS_MASK = 0x40, 0xFC

Event = ev.DrawerCommand | ev.DrawerReply


class DrawerCodec:
    """Bytes in, events out (`receive_data` / `next_event`); events in, bytes out (`send`). The
    shape of drivers/codec.py: a role and one settings object (the profile: nothing in it shapes
    this wire), and `data_to_send()`, always b"" (no ACK/NAK on this line)."""

    def __init__(self, role: Role, settings: CodecSettings = None) -> None:
        self.role = role
        self._buffer = bytearray()

    def send(self, event: Event) -> bytes:
        if self.role is Role.HOST:
            if isinstance(event, ev.OpenDrawer):
                if not 10 <= event.pulse_ms <= 2550:
                    raise LocalProtocolError(f"pulse_ms must be 10..2550, not {event.pulse_ms}")
                return ESC_P + bytes([event.pulse_ms // 10])
            if isinstance(event, ev.RequestStatus):
                return bytes([ENQ])
            raise LocalProtocolError(f"the host does not send {type(event).__name__}")
        if isinstance(event, ev.DrawerStatus):
            return bytes([_STATUS_BASE | event.jammed << 1 | event.open])
        raise LocalProtocolError(f"the drawer does not send {type(event).__name__}")

    def receive_data(self, data: bytes) -> None:
        self._buffer += data

    def data_to_send(self) -> bytes:
        return b""

    def next_event(self) -> Event | None:
        """The next decoded event, or None when more bytes are needed."""
        buf = self._buffer
        if not buf:
            return None
        first = buf[0]
        if self.role is Role.HOST:
            del buf[:1]
            if first & _STATUS_MASK != _STATUS_BASE:
                raise RemoteProtocolError(f"not a drawer status byte: 0x{first:02x}")
            return ev.DrawerStatus(open=bool(first & 1), jammed=bool(first & 2))
        if first == ENQ:
            del buf[:1]
            return ev.RequestStatus()
        if buf[:1] == ESC_P[:1]:
            if len(buf) < 3:
                return None if bytes(buf) == ESC_P[: len(buf)] else self._garbage()
            if bytes(buf[:2]) != ESC_P or buf[2] == 0:
                return self._garbage()
            pulse = buf[2] * 10
            del buf[:3]
            return ev.OpenDrawer(pulse_ms=pulse)
        return self._garbage()

    def _garbage(self) -> NoReturn:
        bad = self._buffer[0]
        del self._buffer[:1]
        raise RemoteProtocolError(f"not a drawer command: 0x{bad:02x}")
