"""Barcode / QR scanner emulator: the device side of drivers/scanner, as a transport Peer.

It speaks the real bytes through `ScannerCodec(Role.DEVICE, profile)`, in the profile's protocol
(serial line mode, GM65 command frames, Zebra SSI). `scan(text, symbology)` puts a code in front
of it: a manual-trigger scanner reads it at once; a serial-trigger one (`trigger.mode = "serial"`)
reads it while the host has triggered it (SYN T CR, GM65 zone 0x0002 = 01, SSI START_SESSION),
after `timing.decode_s`, and a triggered scan with nothing in front ends after `trigger.timeout_s`
(sending the no-read message, if the profile has one). `scan_image(path)` decodes every code in a
picture with zxing-cpp and scans each.

Handshakes: with `handshake.enabled` (serial ACK/NAK mode, SSI's host ACK/NAK) every decode waits
for the host's ACK; a NAK makes it resend (SSI: status bit 0 set), at most `handshake.max_resends`
times, and no answer within `handshake.timeout_s` gives it up. Codes read meanwhile wait their turn.

Time: the emulator has no clock. `advance(seconds)` moves its virtual time: decodes and timeouts
fall due, and what it sends leaves at the line rate of `serial.baud` (10 bits/char for 8N1). Until
the first `advance` it is infinitely fast (emu:// without a clock). The shape is emulator/base.py's.

Faults (`set_fault`): "no-read" (the next N reads fail; none: until clear), "garbled" (the next N
decodes go out corrupted: a control byte in a line, a bad SSI checksum), "double-read" (every code
is sent twice), "nak-storm" (the next N host commands are refused: SSI CMD_NAK, GM65 status 01, a
menu NAK; none: until clear), "unplugged" (the USB cable is pulled: the port is gone, a served link
hangs up, emu:// reads and writes fail).
"""

from __future__ import annotations

from collections import deque
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from drivers.errors import RemoteProtocolError
from drivers.events import Role
from drivers.scanner import events as ev
from drivers.scanner.codec import AIM_IDS, GM65_ACK, ScannerCodec, ssi_retransmission
from emulator.base import Emulator
from emulator.link import bits_per_char

__all__ = ["FAULTS", "SYMBOLOGIES", "ScannerEmulator", "decode_image"]

FAULTS = ("no-read", "garbled", "double-read", "nak-storm", "unplugged")
SYMBOLOGIES = tuple(AIM_IDS)  # what `scan TEXT SYMBOLOGY` accepts
# zxing-cpp's format names -> ours
_ZXING = {"QRCode": "qr", "MicroQRCode": "qr", "EAN13": "ean13", "EAN8": "ean8", "Code128": "code128",
          "Code39": "code39", "ITF": "itf", "PDF417": "pdf417", "DataMatrix": "datamatrix"}
_ZONE_SIZE = 0x200
_GM65_REFUSED = 0x01  # the emulator's status for a refused command (nak-storm); the manuals name no code


def decode_image(path: str | Path) -> list[tuple[str, str]]:
    """(text, symbology) of every code zxing-cpp finds in the picture, top to bottom."""
    import zxingcpp  # a few MB of native code: loaded only when a picture is scanned
    from PIL import Image

    with Image.open(path) as image:
        results = zxingcpp.read_barcodes(image.convert("L"))
    found = sorted(results, key=lambda r: (r.position.top_left.y, r.position.top_left.x))
    return [(r.text, _ZXING.get(r.format.name, "")) for r in found if r.text]


class _Pending:
    """One decode on its way: its bytes, and (with a handshake) how many resends it has used."""

    def __init__(self, code: ev.Scanned | ev.NoRead, wire: bytes) -> None:
        self.code, self.wire, self.resends = code, wire, 0


class ScannerEmulator(Emulator):
    """A scanner on the other end of the wire (drivers.transport.Peer)."""

    CONTROL = "emulator.scanner.control"  # its control vocabulary (emulator/control.py)
    FAULTS = FAULTS
    follows_till_clock = True  # its trigger and ACK timeouts run on the till's clock in process

    def __init__(self, profile: Mapping[str, Any]) -> None:
        self.profile = profile
        self._codec = ScannerCodec(Role.DEVICE, profile)
        self.protocol = str(profile["protocol"])
        self.serial_trigger = profile["trigger"]["mode"] == "serial"
        self._trigger_timeout = float(profile["trigger"]["timeout_s"])
        self._decode_s = float(profile["timing"]["decode_s"])
        handshake = profile["handshake"]
        self.handshake = bool(handshake["enabled"])
        self._ack_timeout = float(handshake["timeout_s"])
        self._max_resends = int(handshake["max_resends"])
        self._ack_before_data = bool(profile["quirks"]["ack_before_data"])
        self._no_read_message = bool(profile["output"]["no_read_message"])
        serial = profile["serial"]
        self.byte_time = bits_per_char(str(serial["framing"])) / int(serial["baud"])
        self.now = 0.0
        self.clocked = False  # until the first advance() the line is infinitely fast
        self._line = bytearray()  # bytes on their way to the host
        self._line_t = 0.0  # when the last byte released so far finished on the line
        self._presented: deque[tuple[str, str]] = deque()  # codes in front of the scanner
        self._session_until: float | None = None  # a triggered scan, and when it times out
        self._decode_at: float | None = None
        self._queue: deque[_Pending] = deque()  # decodes waiting for the one in flight
        self._in_flight: _Pending | None = None  # sent, waiting for ACK / NAK
        self._ack_due: float | None = None
        self.enabled = True  # SSI SCAN_ENABLE / DISABLE
        self.zone = bytearray(_ZONE_SIZE)  # GM65 setting zone
        self.zone[0x0000] = 0x01 if self.serial_trigger else 0x00
        self.zone[0x002A : 0x002C] = (0x39, 0x01)
        self.menu: dict[str, str] = {}  # Honeywell settings set by menu commands
        # faults
        self.no_read_left: int | None = 0  # None: until clear
        self.garble_left = 0
        self.double_read = False
        self.nak_left: int | None = 0
        self.unplugged = False
        # counters (status, tests)
        self.decodes = self.resends = self.naks_received = self.given_up = self.commands = 0
        self.errors = 0  # malformed bytes from the host
        self.sent_bytes = 0

    # -- Peer ------------------------------------------------------------------------------------
    def receive(self, data: bytes) -> None:
        self._check_line()
        self._codec.receive_data(data)
        while True:
            try:
                event = self._codec.next_event()
            except RemoteProtocolError:
                self.errors += 1
                self._put(self._codec.data_to_send())  # an SSI NAK for a bad checksum
                continue
            owed = self._codec.data_to_send()  # SSI: the ACK of the packet just taken
            if event is None:
                self._put(owed)
                break
            if isinstance(event, ev.Handshake):
                self._put(owed)
                self._on_handshake(event)
            elif isinstance(event, ev.ScannerCommand):
                self.commands += 1
                self._on_command(event, owed)

    def transmit(self) -> bytes:
        self._check_line()
        if not self.clocked:
            out, self._line = bytes(self._line), bytearray()
        else:
            due = min(len(self._line), int((self.now - self._line_t) / self.byte_time + 1e-9))
            out = bytes(self._line[:due])
            del self._line[:due]
            self._line_t += due * self.byte_time
        self.sent_bytes += len(out)
        return out

    def advance(self, seconds: float) -> None:
        if seconds < 0:
            raise ValueError("time does not run backwards")
        if not self.clocked:
            self.clocked = True
            self._line_t = self.now
        self.now += seconds
        if self._ack_due is not None and self._ack_due <= self.now:
            self.given_up += 1  # no answer: the scanner gives the decode up and goes on
            self._in_flight = self._ack_due = None
            self._next_decode()
        if self._decode_at is not None and self._decode_at <= self.now:
            self._decode_at = None
            self._read_presented()
        if self._session_until is not None and self._session_until <= self.now:
            self._session_until = None
            self._decode_at = None
            self._emit(ev.NoRead())

    def status(self) -> str:
        faults = [
            "no-read" if self.no_read_left is None else f"no-read {self.no_read_left}" if self.no_read_left else "",
            f"garbled {self.garble_left}" if self.garble_left else "",
            "double-read" if self.double_read else "",
            "nak-storm" if self.nak_left is None else f"nak-storm {self.nak_left}" if self.nak_left else "",
            "unplugged" if self.unplugged else "",
        ]
        state = "triggered" if self._session_until is not None else "waiting-ack" if self._in_flight else "idle"
        return (f"protocol={self.protocol} trigger={'serial' if self.serial_trigger else 'manual'} state={state} "
                f"presented={len(self._presented)} queued={len(self._queue)} "
                f"faults={','.join(f for f in faults if f) or 'none'} decodes={self.decodes} resends={self.resends} "
                f"naks={self.naks_received} given_up={self.given_up} commands={self.commands} errors={self.errors} "
                f"t={self.now:g}s")

    # -- what a tester does ----------------------------------------------------------------------
    def scan(self, text: str, symbology: str = "qr") -> bool:
        """A code comes in front of the scanner. True if it was read now (manual trigger, or a
        triggered scan), False if it waits for the host's trigger."""
        if not text:
            raise ValueError("a code holds at least one character")
        if symbology not in SYMBOLOGIES:
            raise ValueError(f"unknown symbology (known: {', '.join(SYMBOLOGIES)})")
        self._presented.append((text, symbology))
        if not self.serial_trigger:
            self._read_presented()
            return True
        if self._session_until is not None and self._decode_at is None:
            self._start_decode()
        return False

    def scan_image(self, path: str | Path) -> list[tuple[str, str]]:
        """Every code zxing-cpp finds in the picture comes in front of the scanner, in order; one of
        a symbology this scanner has no id for (symbology "" in the list returned) is left out."""
        found = decode_image(path)
        for text, symbology in found:
            if symbology:
                self.scan(text, symbology)
        return found

    # -- faults ----------------------------------------------------------------------------------
    def set_fault(self, name: str, /, *, count: int | None = None) -> None:
        """One of FAULTS; `count` for no-read, garbled (default 1) and nak-storm (default: until clear)."""
        if name not in FAULTS:
            raise ValueError(f"unknown scanner fault {name!r} (known: {', '.join(FAULTS)})")
        if count is not None and (name not in ("no-read", "garbled", "nak-storm") or count < 1):
            raise ValueError("only no-read, garbled and nak-storm take a count, from 1")
        if name == "no-read":
            self.no_read_left = count
        elif name == "garbled":
            self.garble_left = count or 1
        elif name == "double-read":
            self.double_read = True
        elif name == "nak-storm":
            self.nak_left = count
        else:
            self.unplugged = True
            self._line.clear()
            self._in_flight = self._ack_due = self._session_until = self._decode_at = None
            self._queue.clear()
            self._codec = ScannerCodec(Role.DEVICE, self.profile)  # plugged back, it starts afresh

    def clear_faults(self) -> None:
        self.no_read_left, self.garble_left, self.double_read, self.nak_left, self.unplugged = 0, 0, False, 0, False

    @property
    def hard_disconnect(self) -> bool:
        """The port is gone: a served link hangs up (emulator/link.py) instead of calling us."""
        return self.unplugged

    # -- internals -------------------------------------------------------------------------------
    def _check_line(self) -> None:
        if self.unplugged:
            raise ConnectionResetError("scanner unplugged (emulated fault)")

    def _put(self, data: bytes) -> None:
        if not data:
            return
        if not self._line:
            self._line_t = max(self._line_t, self.now)  # the line was idle until now
        self._line += data

    def _refusing(self) -> bool:
        if self.nak_left == 0:
            return False
        if self.nak_left is not None:
            self.nak_left -= 1
        return True

    def _on_command(self, command: ev.ScannerCommand, owed: bytes) -> None:
        if self._refusing():
            if self.protocol == "ssi":
                self._put(self._codec.refuse_last())
            elif self.protocol == "gm65":
                self._put(self._codec.send(ev.ZoneReply(status=_GM65_REFUSED, data=b"\x00")))
            elif isinstance(command, ev.MenuCommand):
                self._put(self._codec.send(ev.MenuReply(setting=command.setting, status="nak",
                                                        permanent=command.permanent)))
            return
        self._put(owed)  # SSI: CMD_ACK
        if isinstance(command, ev.Trigger):
            self._reply_gm65()
            self._trigger()
        elif isinstance(command, ev.StopScan):
            self._reply_gm65()
            self._session_until = self._decode_at = None
        elif isinstance(command, ev.ScanEnable | ev.ScanDisable):
            self.enabled = isinstance(command, ev.ScanEnable)
        elif isinstance(command, ev.MenuCommand):
            self._put(self._codec.send(self._menu(command)))
        elif isinstance(command, ev.ZoneRead):
            end = command.address + command.length
            status = 0 if end <= _ZONE_SIZE else _GM65_REFUSED
            data = bytes(self.zone[command.address : end]) if status == 0 else b"\x00"
            self._put(self._codec.send(ev.ZoneReply(status=status, data=data)))
        elif isinstance(command, ev.ZoneWrite):
            end = command.address + len(command.data)
            if end <= _ZONE_SIZE:
                self.zone[command.address : end] = command.data
                if command.address == 0x0000:
                    self.serial_trigger = command.data[0] & 0x03 == 0x01
            self._reply_gm65(0 if end <= _ZONE_SIZE else _GM65_REFUSED)
        elif isinstance(command, ev.SaveSettings):
            self._reply_gm65()
        elif isinstance(command, ev.Heartbeat):
            self._put(self._codec.send(ev.HeartbeatReply()))

    def _reply_gm65(self, status: int = 0) -> None:
        if self.protocol == "gm65":
            self._put(self._codec.send(ev.ZoneReply(status=status, data=b"\x00")))

    def _menu(self, command: ev.MenuCommand) -> ev.MenuReply:
        """The emulator keeps any setting of six upper-case letters or digits and an alphanumeric
        value: an other tag is ENQ (unknown), an other value NAK; a query of one never set is ENQ."""
        key, data, permanent = command.tag + command.subtag, command.data, command.permanent
        known = all(c.isdigit() or "A" <= c <= "Z" for c in key)
        if not known or (data in ("?", "^", "*") and key not in self.menu):
            return ev.MenuReply(setting=command.setting, status="enq", permanent=permanent)
        if data in ("?", "^", "*"):
            return ev.MenuReply(setting=key + self.menu[key], permanent=permanent)
        if not (data.isascii() and data.isalnum()):
            return ev.MenuReply(setting=command.setting, status="nak", permanent=permanent)
        self.menu[key] = data
        return ev.MenuReply(setting=command.setting, permanent=permanent)

    def _trigger(self) -> None:
        if not self.enabled:
            return
        self._session_until = self.now + self._trigger_timeout
        if self._presented and self._decode_at is None:
            self._start_decode()

    def _start_decode(self) -> None:
        self._decode_at = self.now + self._decode_s
        if not self.clocked or self._decode_s == 0:
            self._decode_at = None
            self._read_presented()

    def _read_presented(self) -> None:
        """The code in front is read (or, with the no-read fault, is not)."""
        if not self._presented or (self.serial_trigger and self._session_until is None) or not self.enabled:
            return
        text, symbology = self._presented.popleft()
        self._session_until = None  # a scan ends on a read
        if self.no_read_left != 0:
            if self.no_read_left is not None:
                self.no_read_left -= 1
            self._emit(ev.NoRead())
            return
        self.decodes += 1
        code = ev.Scanned(data=text, symbology=symbology)
        for _ in range(2 if self.double_read else 1):
            self._emit(code)

    def _emit(self, code: ev.Scanned | ev.NoRead) -> None:
        if isinstance(code, ev.NoRead) and (self.protocol == "ssi" or not self._no_read_message):
            return  # this scanner says nothing about a scan that read nothing
        wire = self._codec.send(code)
        if self._ack_before_data:
            wire = GM65_ACK + wire
        self._queue.append(_Pending(code, wire))
        if self._in_flight is None:
            self._next_decode()

    def _next_decode(self) -> None:
        while self._queue and self._in_flight is None:
            pending = self._queue.popleft()
            self._send_decode(pending.wire)
            if self.handshake and isinstance(pending.code, ev.Scanned):
                self._in_flight = pending
                self._ack_due = self._line_done() + self._ack_timeout

    def _send_decode(self, wire: bytes) -> None:
        if self.garble_left:
            self.garble_left -= 1
            wire = _garble(wire, ssi=self.protocol == "ssi")
        self._put(wire)

    def _line_done(self) -> float:
        """When the bytes queued so far will have reached the host."""
        return max(self._line_t, self.now) + len(self._line) * self.byte_time

    def _on_handshake(self, answer: ev.Handshake) -> None:
        pending = self._in_flight
        if pending is None:
            return  # an ACK for nothing (a late one, or to a command of ours): ignored
        if isinstance(answer, ev.Ack):
            self._in_flight = self._ack_due = None
            self._next_decode()
            return
        self.naks_received += 1
        if pending.resends >= self._max_resends:
            self.given_up += 1
            self._in_flight = self._ack_due = None
            self._next_decode()
            return
        pending.resends += 1
        self.resends += 1
        wire = ssi_retransmission(pending.wire) if self.protocol == "ssi" else pending.wire
        self._send_decode(wire)
        self._ack_due = self._line_done() + self._ack_timeout


def _garble(wire: bytes, *, ssi: bool) -> bytes:
    """The same bytes with one broken: an SSI checksum flipped, or a control byte in a line's data."""
    if ssi:
        return wire[:-1] + bytes([wire[-1] ^ 0xFF])
    start = len(GM65_ACK) if wire.startswith(GM65_ACK) else 0
    at = start + max(0, len(wire) - start - 2) // 2  # inside the data, never on the suffix
    return wire[:at] + b"\x01" + wire[at + 1 :]
