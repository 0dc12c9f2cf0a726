"""Barcode / QR scanner wire protocols, sans-I/O: `ScannerCodec(role, profile)` (drivers/codec.py's shape).

The profile's `protocol` key picks one of three (docs/scanner.md has every byte; PROTOCOLS.md §2):

- **serial** — line mode. The scanner sends `[prefix][symbology id][data][suffix]`, suffix CR or
  CR LF, the id AIM (`]Q1`), Honeywell's one letter (`s`) or none. The host may send `SYN T CR` /
  `SYN U CR` (serial trigger on / off) and menu commands `SYN M CR` tag subtag data `.`|`!`, answered
  by their echo + ACK / ENQ / NAK + the same terminator. With `handshake.enabled` (Honeywell ACK/NAK
  mode) the host answers each decoded line with ACK (06), or NAK (15) for a garbled one; the codec
  queues that answer itself.
- **gm65** — GM65 / GM8xx-class modules: host frames `7E 00 Type Len AddrH AddrL Data CRC16`
  (CRC-16/XMODEM over Type..Data, big-endian; `AB CD` = unchecked), replies `02 00 Status Len Data
  CRC` (`03 00 ...` answers a heartbeat). Decoded data are lines as in serial mode; in command mode
  the module sends its ack `02 00 00 01 00 33 31` before them, which the host decodes as a ZoneReply.
- **ssi** — Zebra SSI packets `Len Opcode Source Status Data CkH CkL`, checksum the two's complement
  of the 16-bit sum of Len..Data. Every packet but ACK/NAK is answered CMD_ACK (D0) or, for a bad
  checksum, CMD_NAK (D1) cause RESEND; the sender then retransmits with status bit 0 set. A DECODE_DATA
  (F3) longer than a packet continues (status bit 1). Any status bits are accepted.

The CRC is `binascii.crc_hqx(data, 0)`: the standard library's CRC-CCITT with init 0 is exactly
CRC-16/XMODEM (poly 0x1021, no reflection, no xorout) in C, so no third-party package (crcmod,
crc) is needed in every till's import path.

A malformed input raises RemoteProtocolError (FrameError for a bad frame) from `next_event()`
after the codec has skipped what it could not use (one byte of a frame, or the whole line), so the
caller just calls again; sending what this role may not send, or cannot be put in this protocol,
raises LocalProtocolError. Imports no I/O.
"""

from __future__ import annotations

import binascii
from collections import deque
from collections.abc import Mapping
from typing import Any

from drivers.errors import FrameError, LocalProtocolError, RemoteProtocolError
from drivers.events import Role
from drivers.record import Record
from drivers.scanner import events as ev

__all__ = [
    "AIM_IDS",
    "GM65_ACK",
    "HONEYWELL_IDS",
    "SSI_SYMBOLOGIES",
    "ScannerCodec",
    "ScannerSettings",
    "crc16_xmodem",
    "ssi_checksum",
    "ssi_retransmission",
]

SYN, CR, LF, ACK, ENQ, NAK = 0x16, 0x0D, 0x0A, 0x06, 0x05, 0x15
UNCHECKED = b"\xab\xcd"
GM65_ACK = bytes.fromhex("02 00 00 01 00 33 31")
_MENU_STATUS = {ACK: "ack", ENQ: "enq", NAK: "nak"}
_STATUS_BYTE = {name: byte for byte, name in _MENU_STATUS.items()}
_MAX_MENU = 256  # bytes of one menu command's text
_ALLOWED_CONTROLS = frozenset({0x04, 0x09, 0x1D, 0x1E})  # EOT TAB GS RS: ISO 15434 / GS1 payloads

# AIM symbology identifiers (ISO/IEC 15424): `]` + code letter + modifier. Decoding keys on the
# letter (any modifier); encoding uses the modifier listed.
AIM_IDS: dict[str, str] = {
    "qr": "]Q1", "ean13": "]E0", "ean8": "]E4", "code128": "]C0", "gs1-128": "]C1", "code39": "]A0",
    "itf": "]I1", "pdf417": "]L0", "datamatrix": "]d1",
}
_AIM_LETTER = {"Q": "qr", "A": "code39", "I": "itf", "L": "pdf417", "d": "datamatrix", "e": "databar"}
# Honeywell's own one-letter code ids (Honeywell symbology charts; j d s w are in PROTOCOLS.md §2).
HONEYWELL_IDS: dict[str, str] = {
    "code128": "j", "ean13": "d", "qr": "s", "datamatrix": "w", "code39": "b", "ean8": "D", "itf": "e",
    "pdf417": "r", "gs1-128": "I",
}
_HONEYWELL_NAME = {letter: name for name, letter in HONEYWELL_IDS.items()}
# SSI DECODE_DATA symbology byte (Zebra SSI guide; PROTOCOLS.md §2).
SSI_SYMBOLOGIES: dict[str, int] = {
    "code39": 0x01, "code128": 0x03, "ean8": 0x0A, "ean13": 0x0B, "gs1-128": 0x0F, "pdf417": 0x11,
    "datamatrix": 0x1B, "qr": 0x1C,
}
_SSI_NAME = {byte: name for name, byte in SSI_SYMBOLOGIES.items()}

# SSI opcodes
_SSI_ACK, _SSI_NAK, _SSI_START, _SSI_STOP = 0xD0, 0xD1, 0xE4, 0xE5
_SSI_ENABLE, _SSI_DISABLE, _SSI_DECODE, _SSI_EVENT = 0xE9, 0xEA, 0xF3, 0xF6
_SSI_HOST, _SSI_DECODER = 0x04, 0x00
_RETRANSMIT, _CONTINUED, _PERMANENT = 0x01, 0x02, 0x08
_SSI_CHUNK = 250  # payload bytes per DECODE_DATA packet (Len is one byte: 4 + symbology + 250 = 255)
_NAK_RESEND, _NAK_DENIED = 0x01, 0x06

# GM65 frame types
_GM_READ, _GM_WRITE, _GM_SAVE, _GM_HEARTBEAT = 0x07, 0x08, 0x09, 0x0A
_GM_TRIGGER_ZONE = 0x0002


def crc16_xmodem(data: bytes | bytearray) -> int:
    """CRC-16/XMODEM (poly 0x1021, init 0, no reflection, no xorout)."""
    return binascii.crc_hqx(bytes(data), 0)


def ssi_checksum(data: bytes | bytearray) -> bytes:
    """Two's complement of the 16-bit sum of `data` (Len..Data), big-endian."""
    return ((-sum(data)) & 0xFFFF).to_bytes(2, "big")


class ScannerSettings(Record):
    """The keys of a scanner profile that shape the wire. The defaults equal the schema's (a test
    holds them equal); a loaded profile has every key, so `from_profile` indexes."""

    protocol: str = "serial"
    prefix: str = ""
    symbology_id: str = "aim"
    suffix: str = "cr"
    encoding: str = "utf-8"
    no_read_message: str = ""
    max_line: int = 4096
    handshake: bool = False
    gm65_crc: str = "xmodem"

    def __post_init__(self) -> None:
        if self.protocol not in ("serial", "gm65", "ssi"):
            raise ValueError(f"protocol must be serial, gm65 or ssi, not {self.protocol!r}")
        if self.symbology_id not in ("aim", "honeywell", "none") or self.suffix not in ("cr", "crlf"):
            raise ValueError("output.symbology_id is aim | honeywell | none and output.suffix cr | crlf")
        "".encode(self.encoding)  # LookupError for an unknown codec
        if not _menu_text_ok(self.prefix) and self.prefix:
            raise ValueError("output.prefix is printable ASCII without . ! ;")

    @classmethod
    def from_profile(cls, profile: Mapping[str, Any]) -> ScannerSettings:
        output = profile["output"]
        return cls(
            protocol=str(profile["protocol"]), prefix=str(output["prefix"]),
            symbology_id=str(output["symbology_id"]), suffix=str(output["suffix"]),
            encoding=str(output["encoding"]), no_read_message=str(output["no_read_message"]),
            max_line=int(output["max_line"]), handshake=bool(profile["handshake"]["enabled"]),
            gm65_crc=str(profile["gm65"]["crc"]),
        )

    @property
    def terminator(self) -> bytes:
        return b"\r" if self.suffix == "cr" else b"\r\n"


Event = ev.Scanned | ev.NoRead | ev.ScannerCommand | ev.ScannerReply | ev.Handshake
Sendable = Event


class ScannerCodec:
    """One end of a scanner link: `Role.HOST` (the driver) or `Role.DEVICE` (the emulator)."""

    def __init__(self, role: Role, settings: Mapping[str, Any] | None = None) -> None:
        self.role = role
        self.settings = ScannerSettings() if settings is None else ScannerSettings.from_profile(settings)
        self._rx = bytearray()
        self._tx = bytearray()
        self._events: deque[Event] = deque()
        self._last_taken = b""  # SSI: opcode + data of the last packet accepted (a resend repeats it)
        self._continued = bytearray()  # SSI: DECODE_DATA so far (status bit 1)
        self._skip_terminator = False  # serial host: a menu reply's `.` / `!` may still come

    # -- sending ---------------------------------------------------------------------------------
    def send(self, event: Sendable) -> bytes:
        """The bytes that carry `event`."""
        host_may = isinstance(event, ev.ScannerCommand | ev.Handshake)
        device_may = isinstance(event, ev.Scanned | ev.NoRead | ev.ScannerReply | ev.Handshake)
        if not (host_may if self.role is Role.HOST else device_may):
            raise LocalProtocolError(f"a {self.role.value} does not send {type(event).__name__}")
        protocol = self.settings.protocol
        if protocol == "ssi":
            return self._send_ssi(event)
        if isinstance(event, ev.Handshake):
            if protocol != "serial":
                raise LocalProtocolError("a GM65 link has no ACK/NAK handshake")
            return bytes([ACK if isinstance(event, ev.Ack) else NAK])
        if isinstance(event, ev.Scanned | ev.NoRead):
            return self._line(event)
        return self._send_serial(event) if protocol == "serial" else self._send_gm65(event)

    def _line(self, event: ev.Scanned | ev.NoRead) -> bytes:
        s = self.settings
        if isinstance(event, ev.NoRead):
            if not s.no_read_message:
                raise LocalProtocolError("this profile sends no no-read message")
            text = s.prefix + s.no_read_message
        else:
            if not event.data:
                raise LocalProtocolError("an empty code cannot be sent")
            text = s.prefix + self._symbology_id(event) + event.data
        try:
            data = text.encode(s.encoding)
        except UnicodeEncodeError as exc:
            raise LocalProtocolError(f"the code cannot be sent in {s.encoding}") from exc
        if any((b < 0x20 and b not in _ALLOWED_CONTROLS) or b == 0x7F for b in data):
            raise LocalProtocolError("a code holding control characters cannot be framed as a line")
        if len(data) + 2 > s.max_line:
            raise LocalProtocolError(f"a line is at most output.max_line ({s.max_line}) bytes")
        return data + s.terminator

    def _symbology_id(self, event: ev.Scanned) -> str:
        style = self.settings.symbology_id
        if style == "none":
            return ""
        table = AIM_IDS if style == "aim" else HONEYWELL_IDS
        if event.aim:
            return event.aim
        if event.symbology not in table:
            raise LocalProtocolError(f"no {style} id for symbology {event.symbology!r}")
        return table[event.symbology]

    def _send_serial(self, event: Event) -> bytes:
        if isinstance(event, ev.Trigger):
            return b"\x16T\r"
        if isinstance(event, ev.StopScan):
            return b"\x16U\r"
        if isinstance(event, ev.MenuCommand):
            text = event.setting
            if not (len(event.tag) == 3 and len(event.subtag) == 3 and _menu_text_ok(text)):
                raise LocalProtocolError("a menu command is tag(3) subtag(3) data, printable ASCII without . ! ;")
            return b"\x16M\r" + text.encode("ascii") + (b"." if event.permanent else b"!")
        if isinstance(event, ev.MenuReply):
            if not _menu_text_ok(event.setting) or event.status not in _STATUS_BYTE:
                raise LocalProtocolError("a menu reply is printable ASCII and ack | enq | nak")
            return event.setting.encode("ascii") + bytes([_STATUS_BYTE[event.status]]) + (
                b"." if event.permanent else b"!")
        raise LocalProtocolError(f"the serial protocol has no bytes for {type(event).__name__}")

    def _send_gm65(self, event: Event) -> bytes:
        match event:
            case ev.Trigger():
                return self._gm_frame(_GM_WRITE, _GM_TRIGGER_ZONE, b"\x01")
            case ev.StopScan():
                return self._gm_frame(_GM_WRITE, _GM_TRIGGER_ZONE, b"\x02")
            case ev.ZoneWrite(address=address, data=data):
                return self._gm_frame(_GM_WRITE, address, data)
            case ev.ZoneRead(address=address, length=length):
                if not 1 <= length <= 0xFF:
                    raise LocalProtocolError("a zone read is 1-255 bytes")
                return self._gm_frame(_GM_READ, address, bytes([length]))
            case ev.SaveSettings():
                return self._gm_frame(_GM_SAVE, 0, b"\x00")
            case ev.Heartbeat():
                return self._gm_frame(_GM_HEARTBEAT, 0, b"\x00")
            case ev.ZoneReply(status=status, data=data):
                if not (0 <= status <= 0xFF and len(data) <= 0xFF):
                    raise LocalProtocolError("a reply's status is a byte and its data at most 255 bytes")
                body = bytes([status, len(data)]) + data
                return b"\x02\x00" + body + crc16_xmodem(body).to_bytes(2, "big")
            case ev.HeartbeatReply():
                return b"\x03\x00" + GM65_ACK[2:]
        raise LocalProtocolError(f"the GM65 protocol has no bytes for {type(event).__name__}")

    def _gm_frame(self, kind: int, address: int, data: bytes) -> bytes:
        if not (0 <= address <= 0xFFFF and 1 <= len(data) <= 0xFF):
            raise LocalProtocolError("a GM65 frame has a 16-bit address and 1-255 data bytes")
        body = bytes([kind, len(data)]) + address.to_bytes(2, "big") + data
        check = UNCHECKED if self.settings.gm65_crc == "unchecked" else crc16_xmodem(body).to_bytes(2, "big")
        return b"\x7e\x00" + body + check

    def _send_ssi(self, event: Event) -> bytes:
        source = _SSI_HOST if self.role is Role.HOST else _SSI_DECODER
        match event:
            case ev.Ack():
                return _ssi(_SSI_ACK, source)
            case ev.Nak(cause=cause):
                if not 0 <= cause <= 0xFF:
                    raise LocalProtocolError("a NAK cause is one byte")
                return _ssi(_SSI_NAK, source, data=bytes([cause]))
            case ev.Trigger():
                return _ssi(_SSI_START, source)
            case ev.StopScan():
                return _ssi(_SSI_STOP, source)
            case ev.ScanEnable(permanent=permanent):
                return _ssi(_SSI_ENABLE, source, status=_PERMANENT if permanent else 0)
            case ev.ScanDisable(permanent=permanent):
                return _ssi(_SSI_DISABLE, source, status=_PERMANENT if permanent else 0)
            case ev.ScannerNotice(code=code):
                if not 0 <= code <= 0xFF:
                    raise LocalProtocolError("an SSI event code is one byte")
                return _ssi(_SSI_EVENT, source, data=bytes([code]))
            case ev.Scanned(data=text, symbology=symbology):
                if symbology not in SSI_SYMBOLOGIES:
                    raise LocalProtocolError(f"no SSI symbology byte for {symbology!r}")
                try:
                    payload = text.encode(self.settings.encoding)
                except UnicodeEncodeError as exc:
                    raise LocalProtocolError(f"the code cannot be sent in {self.settings.encoding}") from exc
                if not payload:
                    raise LocalProtocolError("an empty code cannot be sent")
                kind = bytes([SSI_SYMBOLOGIES[symbology]])
                chunks = [payload[i : i + _SSI_CHUNK] for i in range(0, len(payload), _SSI_CHUNK)]
                return b"".join(
                    _ssi(_SSI_DECODE, source, status=_CONTINUED if i < len(chunks) - 1 else 0, data=kind + chunk)
                    for i, chunk in enumerate(chunks))
        raise LocalProtocolError(f"the SSI protocol has no packet for {type(event).__name__}")

    # -- receiving -------------------------------------------------------------------------------
    def receive_data(self, data: bytes) -> None:
        self._rx += data

    @property
    def buffered(self) -> int:
        """Bytes received and not decoded yet (a partial line or frame)."""
        return len(self._rx)

    def line_idle(self) -> bool:
        """The line went quiet with a partial frame or line buffered: it was noise or its sender
        died mid-way. Drop its first byte (the rest is rescanned) and say whether anything was."""
        if not self._rx:
            return False
        if self.settings.protocol == "ssi" or self._rx[0] in (0x02, 0x03, 0x7E):
            del self._rx[0]
        else:
            del self._rx[:]  # a partial line: nothing in it marks where the next one starts
        return True

    def refuse_last(self) -> bytes:
        """SSI: the caller refuses the packet just taken (instead of the ACK the codec queued):
        returns the CMD_NAK (cause RESEND) to send, and its retransmission will count as new."""
        self._last_taken = b""
        return self._send_ssi(ev.Nak(cause=_NAK_RESEND))

    def data_to_send(self) -> bytes:
        """The ACK / NAK this end owes for what it decoded (serial handshake, SSI), oldest first."""
        out, self._tx = bytes(self._tx), bytearray()
        return out

    def next_event(self) -> Event | None:
        while not self._events:
            protocol = self.settings.protocol
            if protocol == "ssi":
                if not self._parse_ssi():
                    return None
            elif self.role is Role.DEVICE:
                if not (self._parse_serial_command() if protocol == "serial" else self._parse_gm65_command()):
                    return None
            elif not self._parse_host_stream():
                return None
        return self._events.popleft()

    # serial and GM65, host side: lines (and menu replies, GM65 reply frames) -----------------------
    def _parse_host_stream(self) -> bool:
        rx = self._rx
        if not rx:
            return False
        if self._skip_terminator:
            self._skip_terminator = False
            if rx[0] in b".!":
                del rx[0]
                return True
        if self.settings.protocol == "gm65" and rx[0] in (0x02, 0x03):
            return self._parse_gm65_reply()
        for i, byte in enumerate(rx):
            if byte == CR:
                return self._end_line(i)
            if byte in _MENU_STATUS:  # a menu reply (or a bare handshake byte)
                text = bytes(rx[:i])
                del rx[: i + 1]
                if not text:
                    self._events.append(ev.Ack() if byte == ACK else ev.Nak())
                    return True
                self._skip_terminator = True
                if not _menu_text_ok(text.decode("latin-1")):
                    raise RemoteProtocolError("a menu reply that is not printable ASCII")
                self._events.append(ev.MenuReply(setting=text.decode("ascii"), status=_MENU_STATUS[byte]))
                return True
        if len(rx) >= self.settings.max_line:
            del rx[:]
            self._answer_line(ok=False)
            raise FrameError(f"no line end within output.max_line ({self.settings.max_line} bytes)")
        return False

    def _end_line(self, cr: int) -> bool:
        rx, s = self._rx, self.settings
        end = cr + 1
        if s.suffix == "crlf":
            if len(rx) <= end:
                return False  # the LF may be on its way
            if rx[end] != LF:
                del rx[:end]
                self._answer_line(ok=False)
                raise RemoteProtocolError("a line ended in CR without the profile's LF")
            end += 1
        line = bytes(rx[:cr])
        del rx[:end]
        try:
            event = self._decode_line(line)
        except RemoteProtocolError:
            self._answer_line(ok=False)
            raise
        self._answer_line(ok=True)
        self._events.append(event)
        return True

    def _answer_line(self, *, ok: bool) -> None:
        if self.settings.handshake:
            self._tx.append(ACK if ok else NAK)

    def _decode_line(self, line: bytes) -> ev.Scanned | ev.NoRead:
        s = self.settings
        if any((b < 0x20 and b not in _ALLOWED_CONTROLS) or b == 0x7F for b in line):
            raise RemoteProtocolError("a line holding control characters (garbled or not a code)")
        try:
            text = line.decode(s.encoding)
        except UnicodeDecodeError:
            raise RemoteProtocolError(f"a line that is not {s.encoding}") from None
        if not text.startswith(s.prefix):
            raise RemoteProtocolError("a line without the profile's prefix")
        text = text[len(s.prefix) :]
        if s.no_read_message and text == s.no_read_message:
            return ev.NoRead()
        aim, symbology = "", ""
        if s.symbology_id == "aim":
            if len(text) < 3 or text[0] != "]" or not text[1].isalpha() or not text[2].isalnum():
                raise RemoteProtocolError("a line without its AIM id (]Xm)")
            aim, text = text[:3], text[3:]
            symbology = _aim_symbology(aim)
        elif s.symbology_id == "honeywell":
            if not text or not text[0].isalpha():
                raise RemoteProtocolError("a line without its Honeywell code id")
            aim, text = text[0], text[1:]
            symbology = _HONEYWELL_NAME.get(aim, "")
        if not text:
            raise RemoteProtocolError("a line with no data")
        return ev.Scanned(data=text, symbology=symbology, aim=aim)

    def _checked_gm65(self, *, head: int, what: str) -> bytes | None:
        """The whole frame at the head of the buffer once it is in (taken off the buffer), its
        length byte at 3 and `head` bytes before the data; None: not all here yet. CRC-16/XMODEM
        over everything after the 2-byte start, or AB CD for "unchecked"."""
        rx = self._rx
        if len(rx) < 4:
            return None
        end = head + rx[3] + 2
        if len(rx) < end:
            return None
        frame = bytes(rx[:end])
        body, check = frame[2:-2], frame[-2:]
        if check != UNCHECKED and crc16_xmodem(body).to_bytes(2, "big") != check:
            del rx[0]
            raise FrameError(f"a GM65 {what} with a bad CRC")
        del rx[:end]
        return frame

    def _parse_gm65_reply(self) -> bool:
        rx = self._rx
        if len(rx) < 2:
            return False
        if rx[1] != 0x00:
            del rx[0]
            raise FrameError("a GM65 reply starts 02 00 (03 00 for a heartbeat)")
        frame = self._checked_gm65(head=4, what="reply")
        if frame is None:
            return False
        if frame[0] == 0x03:
            self._events.append(ev.HeartbeatReply())
        else:
            body = frame[2:-2]
            self._events.append(ev.ZoneReply(status=body[0], data=body[2:]))
        return True

    # serial, device side: SYN commands and the host's ACK / NAK -----------------------------------
    def _parse_serial_command(self) -> bool:
        rx = self._rx
        if not rx:
            return False
        head = rx[0]
        if head in (ACK, NAK):
            del rx[0]
            self._events.append(ev.Ack() if head == ACK else ev.Nak())
            return True
        if head != SYN:
            del rx[0]
            raise RemoteProtocolError(f"a serial command starts with SYN, not 0x{head:02x}")
        if len(rx) < 3:
            return False
        word = bytes(rx[1:3])
        if word == b"T\r" or word == b"U\r":
            del rx[:3]
            self._events.append(ev.Trigger() if word == b"T\r" else ev.StopScan())
            return True
        if word != b"M\r":
            del rx[0]
            raise RemoteProtocolError("after SYN comes T CR, U CR or M CR")
        for i in range(3, min(len(rx), 3 + _MAX_MENU + 1)):
            if rx[i] in b".!":
                text = bytes(rx[3:i]).decode("latin-1")
                permanent = rx[i] == ord(".")
                del rx[: i + 1]
                if len(text) < 6 or not _menu_text_ok(text):
                    raise RemoteProtocolError("a menu command is tag(3) subtag(3) data in printable ASCII")
                self._events.append(ev.MenuCommand(tag=text[:3], subtag=text[3:6], data=text[6:], permanent=permanent))
                return True
        if len(rx) > 3 + _MAX_MENU:
            del rx[0]
            raise RemoteProtocolError("a menu command without its terminator (. or !)")
        return False

    # GM65, device side: 7E 00 frames ----------------------------------------------------------------
    def _parse_gm65_command(self) -> bool:
        rx = self._rx
        if not rx:
            return False
        if rx[0] != 0x7E or (len(rx) > 1 and rx[1] != 0x00):
            del rx[0]
            raise FrameError("a GM65 command frame starts 7E 00")
        frame = self._checked_gm65(head=6, what="frame")
        if frame is None:
            return False
        body = frame[2:-2]
        kind, length, address, data = body[0], body[1], int.from_bytes(body[2:4], "big"), body[4:]
        if length == 0:
            raise FrameError("a GM65 frame with no data")
        if kind == _GM_WRITE:
            if address == _GM_TRIGGER_ZONE and data in (b"\x01", b"\x02"):
                self._events.append(ev.Trigger() if data == b"\x01" else ev.StopScan())
            else:
                self._events.append(ev.ZoneWrite(address=address, data=data))
        elif kind == _GM_READ:
            self._events.append(ev.ZoneRead(address=address, length=data[0]))
        elif kind == _GM_SAVE:
            self._events.append(ev.SaveSettings())
        elif kind == _GM_HEARTBEAT:
            self._events.append(ev.Heartbeat())
        else:
            raise FrameError(f"unknown GM65 frame type 0x{kind:02x}")
        return True

    # SSI, both sides ----------------------------------------------------------------------------------
    def _parse_ssi(self) -> bool:
        rx = self._rx
        if not rx:
            return False
        length = rx[0]
        if length < 4:
            del rx[0]
            raise FrameError("an SSI packet's length is at least 4")
        if len(rx) < length + 2:
            return False
        packet = bytes(rx[: length + 2])
        if ssi_checksum(packet[:length]) != packet[length:]:
            # Well-formed but for its checksum, so most likely real: dropped whole and NAKed (the
            # peer resends). Noise that only looked like a length is cleared by line_idle().
            del rx[: length + 2]
            self._last_taken = b""  # its retransmission is new, whatever came before it
            self._tx += self._send_ssi(ev.Nak(cause=_NAK_RESEND))
            raise FrameError("an SSI packet with a bad checksum; CMD_NAK (resend) sent")
        del rx[: length + 2]
        opcode, status, data = packet[1], packet[3], packet[4:length]
        if opcode in (_SSI_ACK, _SSI_NAK):  # never answered themselves
            self._events.append(ev.Ack() if opcode == _SSI_ACK else ev.Nak(cause=data[0] if data else 0))
            return True
        event = self._ssi_event(opcode, status, data)
        retransmitted = bool(status & _RETRANSMIT) and packet[1:2] + data == self._last_taken
        self._tx += self._send_ssi(ev.Ack())
        self._last_taken = packet[1:2] + data
        if event is not None and not retransmitted:
            self._events.append(event)
        return True

    def _ssi_event(self, opcode: int, status: int, data: bytes) -> Event | None:
        if self.role is Role.DEVICE:
            simple = {_SSI_START: ev.Trigger, _SSI_STOP: ev.StopScan}
            if opcode in simple:
                return simple[opcode]()
            if opcode in (_SSI_ENABLE, _SSI_DISABLE):
                kind = ev.ScanEnable if opcode == _SSI_ENABLE else ev.ScanDisable
                return kind(permanent=bool(status & _PERMANENT))
        elif opcode == _SSI_DECODE:
            if not data:
                self._continued.clear()
                self._deny()
                raise FrameError("a DECODE_DATA packet without its symbology byte")
            self._continued += data[1:]
            if status & _CONTINUED:
                return None
            payload, self._continued = bytes(self._continued), bytearray()
            try:
                text = payload.decode(self.settings.encoding)
            except UnicodeDecodeError:
                raise RemoteProtocolError(f"DECODE_DATA that is not {self.settings.encoding}") from None
            if not text:
                raise RemoteProtocolError("DECODE_DATA with no data")
            return ev.Scanned(data=text, symbology=_SSI_NAME.get(data[0], ""), aim="")
        elif opcode == _SSI_EVENT:
            if len(data) != 1:
                self._deny()
                raise FrameError("an SSI EVENT carries one event code")
            return ev.ScannerNotice(code=data[0])
        self._deny()
        raise RemoteProtocolError(f"SSI opcode 0x{opcode:02x} is not one this end takes")

    def _deny(self) -> None:
        self._tx += self._send_ssi(ev.Nak(cause=_NAK_DENIED))


def ssi_retransmission(wire: bytes) -> bytes:
    """SSI packets sent again: each one's status bit 0 (retransmit) set, its checksum redone."""
    out, at = bytearray(), 0
    while at < len(wire):
        length = wire[at]
        body = bytearray(wire[at : at + length])
        if length < 4 or len(body) != length:
            raise LocalProtocolError("not SSI packets")
        body[3] |= _RETRANSMIT
        out += body + ssi_checksum(body)
        at += length + 2
    return bytes(out)


def _ssi(opcode: int, source: int, *, status: int = 0, data: bytes = b"") -> bytes:
    body = bytes([4 + len(data), opcode, source, status]) + data
    return body + ssi_checksum(body)


def _menu_text_ok(text: str) -> bool:
    return text.isascii() and text.isprintable() and not any(c in text for c in ".!;")


def _aim_symbology(aim: str) -> str:
    letter, modifier = aim[1], aim[2]
    if letter == "E":
        return "ean8" if modifier == "4" else "ean13"
    if letter == "C":
        return "gs1-128" if modifier == "1" else "code128"
    return _AIM_LETTER.get(letter, "")
