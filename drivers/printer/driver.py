"""The ESC/POS printer driver: status by DLE EOT 1..4, print jobs, unsolicited ASB.

Silence is never "paper OK" (python-escpos' `paper_status()` pitfall): a status request that is
not fully answered within `timeout` is a DeviceFault(NO_ANSWER), garbage a DeviceFault(PROTOCOL),
a failing port a DeviceFault(DISCONNECTED). Bugs on our side (a command that cannot be encoded,
using the driver before open()) still raise.
"""

from __future__ import annotations

import time
from collections.abc import Mapping, Sequence
from typing import Any

from drivers.base import DeviceEvent, DeviceFault, Driver, FaultKind, Role
from drivers.errors import LocalProtocolError, PortError, RemoteProtocolError
from drivers.printer import events as ev
from drivers.printer.codec import PrinterCodec

__all__ = ["CHUNK", "PrinterDriver", "condition_events"]

CHUNK = 256  # most bytes per write, so an XOFF is noticed before the printer's buffer overflows
_KINDS = (1, 2, 3, 4)


def _bits_per_char(framing: str) -> int:
    """'8N1' -> 10 bits on the line per byte (start + data + parity + stop); 10 when unreadable."""
    if len(framing) == 3 and framing[0].isdigit() and framing[2] in "12":
        return 1 + int(framing[0]) + (framing[1].upper() != "N") + int(framing[2])
    return 10


def condition_events(status: ev.PrinterStatus) -> list[DeviceEvent]:
    """The conditions a status shows; empty when the printer is fine. Anything that stops
    printing also yields PrinterOffline naming its causes."""
    events: list[DeviceEvent] = []
    causes = []
    if status.cover_open:
        events.append(ev.CoverOpen())
        causes.append("cover open")
    if status.paper_out:
        events.append(ev.PaperOut())
        causes.append("paper out")
    elif status.paper_near_end:
        events.append(ev.PaperNearEnd())
    if status.cutter_error:
        events.append(ev.CutterError())
        causes.append("cutter error")
    if status.unrecoverable_error:
        causes.append("unrecoverable error")
    if status.auto_recoverable_error:
        causes.append("auto-recoverable error")
    if not status.printable:
        events.append(ev.PrinterOffline(cause=", ".join(causes) or "offline"))
    return events


class PrinterDriver(Driver):
    family = "printer"

    def __init__(self, url: str, profile: Mapping[str, Any], *, timeout: float = 1.0) -> None:
        super().__init__(url, profile, timeout=timeout)
        self._power_on_chinese = bool(profile.get("text", {}).get("chinese_mode_at_power_on", False))
        self._codec = PrinterCodec(Role.HOST, chinese_mode=self._power_on_chinese)
        self._pending: list[DeviceEvent] = []  # ASB conditions seen while waiting for something else
        self._last: ev.PrinterStatus | None = None
        self._paused = False  # the printer sent XOFF
        self.last_job_bytes = 0  # bytes of the last print job that reached the port
        # A printer sends XOFF with `xoff_free` bytes of room left: half that in flight at most, the
        # other half for what is already on the line when the XOFF comes back.
        serial = profile.get("serial", {})
        self.chunk = CHUNK
        if serial.get("flow_control", "xonxoff") == "xonxoff":
            self.chunk = max(16, min(CHUNK, int(serial.get("xoff_free", 2 * CHUNK)) // 2))
        self._byte_time = _bits_per_char(str(serial.get("framing", "8N1"))) / int(serial.get("baud", 9600))

    # -- public API --------------------------------------------------------------------------------
    def status(self) -> ev.PrinterStatus | DeviceFault:
        """Ask DLE EOT 1..4 and wait up to `timeout` for all four answers."""
        _ = self.port  # not open is our bug: raise PortError here, not a DeviceFault below
        replies: dict[int, int] = {}
        fault: DeviceFault | None = None
        try:
            # Bytes already waiting predate this request: ASB and flow control still count,
            # a late answer to an abandoned request is dropped instead of answering this one.
            self._take(self._read_available(0), stale=True)
            self._write(b"".join(self._codec.send(ev.RequestStatus(kind=k)) for k in _KINDS))
            deadline = time.monotonic() + self.timeout
            while len(replies) < len(_KINDS):
                remaining = deadline - time.monotonic()
                data = self._read_available(remaining) if remaining > 0 else b""
                if not data:  # a real port waited `remaining`; emu:// has nothing coming
                    fault = self._fault(FaultKind.NO_ANSWER,
                                        f"{len(replies)} of 4 status replies within {self.timeout:g} s")
                    break
                replies.update(self._take(data))
        except RemoteProtocolError as exc:
            fault = self._fault(FaultKind.PROTOCOL, str(exc))
        except PortError as exc:
            fault = self._fault(FaultKind.DISCONNECTED, str(exc))
        if fault is not None:
            self._codec.forget_outstanding()  # a late answer must not be taken for the next request
            return fault
        self._last = ev.PrinterStatus.from_replies(replies)
        return self._last

    def print_job(self, commands: Sequence[ev.PrinterCommand]) -> list[DeviceEvent]:
        """Check, print, check again. Returns the conditions found (empty = printed and fine);
        a blocking condition before the job means nothing was sent."""
        data = self._encode(commands)
        self.last_job_bytes = 0
        before = self.status()
        if isinstance(before, DeviceFault):
            return [before]
        if not before.printable:
            return condition_events(before)
        try:
            for start in range(0, len(data), self.chunk):
                if self._paused and not self._wait_for_xon():
                    # A printer that stopped (paper out with its buffer full) says why in real time.
                    held = self.status()
                    if isinstance(held, ev.PrinterStatus) and not held.printable:
                        return condition_events(held)
                    return [self._fault(FaultKind.NO_ANSWER, f"printer held XOFF for {self.timeout:g} s")]
                chunk = data[start : start + self.chunk]
                sent = time.monotonic()
                self._write(chunk)
                self.last_job_bytes += len(chunk)
                # On a real line flush() waited while the bytes went out. A pty or socket takes them
                # at once, so wait out the line time here, listening: an XOFF ends the wait early.
                left = len(chunk) * self._byte_time - (time.monotonic() - sent)
                self._take(self._read_available(max(0.0, left)))
        except RemoteProtocolError as exc:
            return [self._fault(FaultKind.PROTOCOL, str(exc))]
        except PortError as exc:
            return [self._fault(FaultKind.DISCONNECTED, str(exc))]
        after = self.status()
        return [after] if isinstance(after, DeviceFault) else condition_events(after)

    def enable_auto_status(self, mask: int = 0x0F) -> None:
        """GS a: the printer then pushes ASB on every change (bit0 drawer, bit1 online, bit2 error,
        bit3 paper); poll() reports them. The first push follows at once."""
        self._write(self._codec.send(ev.SetAutoStatus(mask=mask)))

    def poll(self) -> list[DeviceEvent]:
        """Conditions from unsolicited ASB pushes; never blocks."""
        try:
            self._take(self._read_available(0))
        except RemoteProtocolError as exc:
            self._pending.append(self._fault(FaultKind.PROTOCOL, str(exc), blocking=False))
        except PortError as exc:
            self._pending.append(self._fault(FaultKind.DISCONNECTED, str(exc)))
        events, self._pending = self._pending, []
        return events

    # -- internals ---------------------------------------------------------------------------------
    def _encode(self, commands: Sequence[ev.PrinterCommand]) -> bytes:
        # Encode the whole job before sending a byte, on a scratch codec: a bad command raises
        # LocalProtocolError with nothing printed and our text-mode tracking left as it was.
        scratch = PrinterCodec(Role.HOST, chinese_mode=self._power_on_chinese)
        scratch.chinese_mode = self._codec.chinese_mode
        parts = []
        for cmd in commands:
            if isinstance(cmd, ev.RequestStatus):
                raise LocalProtocolError("ask status with status(), not inside a print job")
            parts.append(scratch.send(cmd))
        self._codec.chinese_mode = scratch.chinese_mode
        return b"".join(parts)

    def _take(self, data: bytes, *, stale: bool = False) -> dict[int, int]:
        """Decode replies: returns DLE EOT answers, handles ASB and flow control on the way.
        With `stale`, bytes that fit nothing are dropped instead of raising."""
        self._codec.receive_data(data)
        answers: dict[int, int] = {}
        while True:
            try:
                reply = self._codec.next_event()
            except RemoteProtocolError:
                if stale:
                    continue
                raise
            if reply is None:
                return answers
            if isinstance(reply, ev.StatusReply):
                answers[reply.kind] = reply.value
            elif isinstance(reply, ev.AutoStatus):
                self._on_asb(ev.PrinterStatus.from_asb(reply.data))
            elif isinstance(reply, ev.FlowControl):
                self._paused = reply.paused

    def _on_asb(self, status: ev.PrinterStatus) -> None:
        self._pending += condition_events(status)
        if status.printable and (self._last is None or not self._last.printable):
            self._pending.append(ev.PrinterReady())
        self._last = status

    def _wait_for_xon(self) -> bool:
        deadline = time.monotonic() + self.timeout
        while self._paused:
            remaining = deadline - time.monotonic()
            data = self._read_available(remaining) if remaining > 0 else b""
            if not data:
                return False
            self._take(data)
        return True

    def _fault(self, kind: FaultKind, detail: str, *, blocking: bool = True) -> DeviceFault:
        return DeviceFault(device=self.family, kind=kind, detail=detail, blocking=blocking)
