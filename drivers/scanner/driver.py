"""Barcode / QR scanner driver: the host end of drivers/scanner/codec.py over any port URL.

Polled, and it never blocks: every method writes and returns; what the scanner says comes out of
`poll()`:

    poll()              -> Scanned | NoRead | MenuReply | ZoneReply | HeartbeatReply | ScannerNotice
                           | DeviceFault
    trigger()           start a scan (serial SYN T CR, GM65 zone 0x0002 = 01, SSI START_SESSION)
    stop()              end it (SYN U CR, 0x0002 = 02, STOP_SESSION)
    enable(on)          SSI SCAN_ENABLE / SCAN_DISABLE
    menu(tag, subtag, data, permanent=False)   serial menu command -> MenuReply
    read_zone(address, length) / write_zone(address, data) / save_settings() / heartbeat()   GM65
Each returns None once written, or the DeviceFault that stopped it (a port that failed).

Commands the protocol answers (every SSI packet, every GM65 frame, a menu command) go one at a
time: the next waits in a queue until the scanner answered the one in flight. One unanswered for
`command.timeout_s` (measured in poll(), on `clock`) or refused (SSI CMD_NAK, GM65 status != 0) is
sent again, up to `command.max_attempts` sends in all; then poll() reports a DeviceFault (NO_ANSWER
or PROTOCOL). A serial trigger has no answer: it is written and done.

Decoded codes are answered by the codec itself (serial ACK/NAK mode, SSI CMD_ACK / CMD_NAK) and
reported as `Scanned`; the same code again within `driver.same_code_s` is one read (a double read,
a resend after a lost ACK). A garbled line is a non-blocking DeviceFault(PROTOCOL) (and, with a
handshake, a NAK: the scanner resends). GM65 acks that come with no command in flight (the module
sends one before its data) are skipped.
"""

from __future__ import annotations

import time
from collections import deque
from collections.abc import Callable, Mapping
from typing import Any, ClassVar

from drivers.base import DeviceEvent, DeviceFault, Driver, FaultKind, Role
from drivers.errors import PortError, RemoteProtocolError
from drivers.scanner import events as ev
from drivers.scanner.codec import ScannerCodec, ssi_retransmission

__all__ = ["ScannerDriver"]

_MAX_READS_PER_POLL = 64  # poll() never loops forever on a chatty line


class _Command:
    def __init__(self, command: ev.ScannerCommand, wire: bytes) -> None:
        self.command, self.wire, self.sends, self.deadline = command, wire, 0, 0.0

    @property
    def name(self) -> str:
        return type(self.command).__name__


class ScannerDriver(Driver):
    family: ClassVar[str] = "scanner"

    def __init__(self, url: str, profile: Mapping[str, Any], *, timeout: float = 1.0,
                 clock: Callable[[], float] = time.monotonic) -> None:
        super().__init__(url, profile, timeout=timeout)
        self.protocol = str(profile["protocol"])
        command = profile["command"]
        self._command_timeout = float(command["timeout_s"])
        self._max_attempts = int(command["max_attempts"])
        self._idle_timeout = float(command["inter_char_timeout_s"])
        self._same_code_s = float(profile["driver"]["same_code_s"])
        self._clock = clock
        self._codec: ScannerCodec | None = None
        self._events: deque[DeviceEvent] = deque()
        self._port_down = False  # the port failed and that was reported
        self._waiting: deque[_Command] = deque()  # commands behind the one in flight
        self._in_flight: _Command | None = None
        self._last_code: tuple[str, str, float] | None = None
        self._last_rx = 0.0
        self.duplicates = 0  # codes dropped as a repeat within driver.same_code_s
        self.garbled = 0  # lines / frames that did not decode

    # -- lifecycle -------------------------------------------------------------------------------
    def open(self) -> None:
        super().open()
        if self._codec is None:
            self._codec = ScannerCodec(Role.HOST, self.profile)
            self._last_rx = self._clock()

    def close(self) -> None:
        self._codec = None
        self._waiting.clear()
        self._in_flight = None
        # pyserial's socket:// close() skips the socket's close when shutdown() fails, as it does
        # on a connection the peer reset (an unplugged network scanner): close it ourselves.
        sock = getattr(self._port, "_socket", None)
        super().close()
        if sock is not None:
            sock.close()

    # -- commands --------------------------------------------------------------------------------
    def trigger(self) -> DeviceFault | None:
        """Start a scan; the code (or NoRead) comes through poll(). A new scan is asked for: the
        same code as the last one is a new read now, not a double read (a customer paying twice)."""
        self._last_code = None
        return self._command(ev.Trigger())

    def stop(self) -> DeviceFault | None:
        """End a scan that has not read yet."""
        return self._command(ev.StopScan())

    def enable(self, on: bool = True, *, permanent: bool = False) -> DeviceFault | None:
        """SSI: allow (or forbid) scanning."""
        return self._command(ev.ScanEnable(permanent=permanent) if on else ev.ScanDisable(permanent=permanent))

    def menu(self, tag: str, subtag: str, data: str = "", *, permanent: bool = False) -> DeviceFault | None:
        """Serial: a Honeywell menu command; its MenuReply comes through poll()."""
        return self._command(ev.MenuCommand(tag=tag, subtag=subtag, data=data, permanent=permanent))

    def read_zone(self, address: int, length: int = 1) -> DeviceFault | None:
        """GM65: read the setting zone; the ZoneReply comes through poll()."""
        return self._command(ev.ZoneRead(address=address, length=length))

    def write_zone(self, address: int, data: bytes) -> DeviceFault | None:
        return self._command(ev.ZoneWrite(address=address, data=data))

    def save_settings(self) -> DeviceFault | None:
        return self._command(ev.SaveSettings())

    def heartbeat(self) -> DeviceFault | None:
        """GM65: HeartbeatReply through poll()."""
        return self._command(ev.Heartbeat())

    # -- polling ---------------------------------------------------------------------------------
    def poll(self) -> list[DeviceEvent]:
        """Decode what has arrived, answer it, resend what timed out; never blocks."""
        codec = self._require_codec()
        try:
            for _ in range(_MAX_READS_PER_POLL):
                data = self._read_available(0.0)
                if not data:
                    break
                self._last_rx = self._clock()
                codec.receive_data(data)
                self._drain(codec)
            now = self._clock()
            if codec.buffered and now - self._last_rx >= self._idle_timeout:
                codec.line_idle()  # a line or frame stalled mid-way: noise, or its sender died
                self._drain(codec)
            self._check_deadline(now)
            self._port_down = False
        except PortError as exc:
            if not self._port_down:  # once: a pulled cable is one fact, not one per poll
                self._port_down = True
                self._events.append(self._fault(FaultKind.DISCONNECTED, str(exc)))
            self._in_flight = None
            self._waiting.clear()
        events, self._events = list(self._events), deque()
        return events

    def wake_in(self) -> float | None:
        """Seconds until a command's answer is overdue (the runtime wakes us to resend), or None."""
        if self._in_flight is None:
            return None
        return max(0.0, self._in_flight.deadline - self._clock())

    @property
    def busy(self) -> bool:
        """A command is waiting for its answer."""
        return self._in_flight is not None

    # -- internals -------------------------------------------------------------------------------
    def _require_codec(self) -> ScannerCodec:
        if self._codec is None:
            raise PortError(f"{self.family} driver is not open ({self.url})")
        return self._codec

    def _fault(self, kind: FaultKind, detail: str, *, blocking: bool = True) -> DeviceFault:
        return DeviceFault(device=self.family, kind=kind, detail=detail, blocking=blocking)

    def _answered(self, command: ev.ScannerCommand) -> bool:
        """Whether the protocol answers this command (a serial trigger is not answered)."""
        return self.protocol != "serial" or isinstance(command, ev.MenuCommand)

    def _command(self, command: ev.ScannerCommand) -> DeviceFault | None:
        codec = self._require_codec()
        wire = codec.send(command)  # LocalProtocolError (our bug, or not in this protocol) propagates
        try:
            if not self._answered(command):
                self._write(wire)
                return None
            self._waiting.append(_Command(command, wire))
            if self._in_flight is None:
                self._next_command()
        except PortError as exc:
            self._in_flight = None  # the line failed: nothing on it can be answered
            self._waiting.clear()
            return self._fault(FaultKind.DISCONNECTED, str(exc))
        return None

    def _next_command(self) -> None:
        if self._in_flight is None and self._waiting:
            self._in_flight = self._waiting.popleft()
            self._send_in_flight(first=True)

    def _send_in_flight(self, *, first: bool) -> None:
        pending = self._in_flight
        assert pending is not None
        pending.sends += 1
        pending.deadline = self._clock() + self._command_timeout
        self._write(pending.wire if first or self.protocol != "ssi" else ssi_retransmission(pending.wire))

    def _retry(self, why: str, kind: FaultKind) -> None:
        pending = self._in_flight
        assert pending is not None
        if pending.sends >= self._max_attempts:
            self._in_flight = None
            self._events.append(self._fault(kind, f"{pending.name}: {why} after {pending.sends} send(s)"))
            self._next_command()
            return
        self._send_in_flight(first=False)

    def _check_deadline(self, now: float) -> None:
        pending = self._in_flight
        if pending is not None and now >= pending.deadline:
            self._retry("no answer from the scanner", FaultKind.NO_ANSWER)

    def _done(self) -> None:
        self._in_flight = None
        self._next_command()

    def _flush(self, codec: ScannerCodec) -> None:
        owed = codec.data_to_send()
        if owed:
            self._write(owed)

    def _drain(self, codec: ScannerCodec) -> None:
        while True:
            try:
                event = codec.next_event()
            except RemoteProtocolError as exc:
                self.garbled += 1
                self._flush(codec)  # the NAK, when the protocol has one
                self._events.append(self._fault(FaultKind.PROTOCOL, str(exc), blocking=False))
                continue
            self._flush(codec)  # the ACK of what was just decoded
            if event is None:
                return
            self._on_event(event)

    def _on_event(self, event: object) -> None:
        pending = self._in_flight
        if isinstance(event, ev.Scanned):
            self._on_code(event)
        elif isinstance(event, ev.NoRead | ev.ScannerNotice):
            self._events.append(event)
        elif isinstance(event, ev.Ack):
            if pending is not None and self.protocol == "ssi":
                self._done()
        elif isinstance(event, ev.Nak):
            if pending is not None and self.protocol == "ssi":
                if event.cause == 1:  # RESEND
                    self._retry("the scanner NAKed it", FaultKind.PROTOCOL)
                else:
                    self._in_flight = None
                    detail = f"{pending.name}: refused (cause {event.cause})"
                    self._events.append(self._fault(FaultKind.PROTOCOL, detail))
                    self._next_command()
        elif isinstance(event, ev.ZoneReply):
            if pending is None:
                return  # the module's ack before its data: nothing asked for it
            if event.status != 0:
                self._retry(f"the module answered status 0x{event.status:02x}", FaultKind.PROTOCOL)
                return
            if isinstance(pending.command, ev.ZoneRead):
                self._events.append(event)
            self._done()
        elif isinstance(event, ev.HeartbeatReply | ev.MenuReply):
            if pending is not None:
                self._done()
            self._events.append(event)

    def _on_code(self, code: ev.Scanned) -> None:
        now = self._clock()
        last = self._last_code
        if last is not None and last[:2] == (code.data, code.symbology) and now - last[2] < self._same_code_s:
            self.duplicates += 1
            return
        self._last_code = (code.data, code.symbology, now)
        self._events.append(code)
