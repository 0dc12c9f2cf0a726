"""Electronic signature pad driver: the host end of drivers/signature_pad/codec.py over any port URL.

Polled, never blocks; failures are DeviceFault events or return values, never exceptions:

    begin_capture(lines)  -> DeviceFault | None   forget the ink; an LCD model also clears its screen,
                                                  shows `lines` (1..lcd.lines, each cut to lcd.columns
                                                  bytes of lcd.encoding) and enables its keys
    take_signature()      -> Signature            the strokes so far (pen-down runs split at pen-up;
                                                  the null point and points outside pen.x/y_min..max
                                                  dropped; coordinates relative to x_min / y_min)
    clear_ink()           -> DeviceFault | None   forget the strokes (the Clear key, a retry)
    end_capture()         -> DeviceFault | None   stop taking ink; an LCD model blanks its screen
    identify()            -> DeviceFault | None   LCD model: ask for the model/serial packet
    poll() -> [InkAdded(points) at most once | PadKey | PadIdentity | DeviceFault]

Ink is only kept between begin_capture and end_capture. The pen-away time is the checkout's
(`capture.pen_away_s`): it re-arms its own deadline on every InkAdded; the driver keeps no timer for
it. Commands to an LCD pad are acked; one unacked for `command.timeout_s` (on `clock`, measured in
poll()) or NAKed is sent again, up to `command.max_attempts`, then a DeviceFault(NO_ANSWER /
PROTOCOL). Garbage on the line is a non-blocking DeviceFault(PROTOCOL), a pad past
`capture.max_points` a non-blocking DeviceFault(DEVICE), a failed port DeviceFault(DISCONNECTED).
"""

from __future__ import annotations

import time
from collections import deque
from collections.abc import Callable, Mapping, Sequence
from typing import Any, ClassVar

from drivers.base import DeviceEvent, DeviceFault, Driver, FaultKind, Role
from drivers.errors import PortError, RemoteProtocolError
from drivers.signature_pad import events as ev
from drivers.signature_pad.codec import SignaturePadCodec

__all__ = ["SignaturePadDriver"]

_MAX_READS_PER_POLL = 64  # a flooding pad cannot keep poll() busy forever


class _Sent:
    def __init__(self, code: int, wire: bytes, deadline: float) -> None:
        self.code, self.wire, self.sends, self.deadline = code, wire, 1, deadline


class SignaturePadDriver(Driver):
    family: ClassVar[str] = "signature_pad"

    def __init__(self, url: str, profile: Mapping[str, Any], *, timeout: float = 1.0,
                 clock: Callable[[], float] = time.monotonic) -> None:
        super().__init__(url, profile, timeout=timeout)
        pen, lcd = profile["pen"], profile["lcd"]
        self._x0, self._x1 = int(pen["x_min"]), int(pen["x_max"])
        self._y0, self._y1 = int(pen["y_min"]), int(pen["y_max"])
        self.dpi = int(pen["dpi"])
        self.lcd = bool(lcd["present"])
        self._lines, self._columns, self._encoding = int(lcd["lines"]), int(lcd["columns"]), str(lcd["encoding"])
        self._command_timeout = float(profile["command"]["timeout_s"])
        self._max_attempts = int(profile["command"]["max_attempts"])
        self._max_points = int(profile["capture"]["max_points"])
        self._clock = clock
        self._codec: SignaturePadCodec | None = None
        self._events: deque[DeviceEvent] = deque()
        self._port_down = False  # the port failed and that was reported
        self._unacked: deque[_Sent] = deque()
        self.capturing = False
        self._strokes: list[tuple[tuple[int, int], ...]] = []
        self._stroke: list[tuple[int, int]] = []
        self._points = 0
        self._flooded = False
        self.garbled = 0  # units that did not decode
        self.shown: list[str] = []  # what the driver last put on the LCD

    # -- lifecycle -------------------------------------------------------------------------------
    def open(self) -> None:
        super().open()
        if self._codec is None:
            self._codec = SignaturePadCodec(Role.HOST, self.profile)

    def close(self) -> None:
        self._codec = None
        self._unacked.clear()
        sock = getattr(self._port, "_socket", None)  # see ScannerDriver.close: a reset socket
        super().close()
        if sock is not None:
            sock.close()

    # -- the checkout's API ----------------------------------------------------------------------
    def begin_capture(self, lines: Sequence[str]) -> DeviceFault | None:
        self._forget_ink()
        self.capturing = True
        if not self.lcd:
            return None
        self.shown = [self._fit(line) for line in list(lines)[: self._lines]]
        commands: list[ev.PadCommand] = [ev.ClearScreen()]
        commands += [ev.ShowText(line=i, text=text) for i, text in enumerate(self.shown, 1) if text]
        commands += [ev.ClearInk(), ev.EnableKeys(keys=("ok", "clear", "cancel")), ev.EnablePen(on=True)]
        return self._send(commands)

    def take_signature(self) -> ev.Signature:
        strokes = [*self._strokes, tuple(self._stroke)] if self._stroke else list(self._strokes)
        return ev.Signature(strokes=tuple(strokes), width=self._x1 - self._x0 + 1,
                            height=self._y1 - self._y0 + 1, dpi=self.dpi)

    def clear_ink(self) -> DeviceFault | None:
        self._forget_ink()
        return self._send([ev.ClearInk()]) if self.lcd else None

    def end_capture(self) -> DeviceFault | None:
        self.capturing = False
        self._close_stroke()
        if not self.lcd:
            return None
        self.shown = []
        return self._send([ev.EnableKeys(keys=()), ev.ClearInk(), ev.ClearScreen()])

    def identify(self) -> DeviceFault | None:
        return self._send([ev.Identify()]) if self.lcd else None

    # -- polling ---------------------------------------------------------------------------------
    def poll(self) -> list[DeviceEvent]:
        codec = self._require_codec()
        before = self._points
        try:
            for _ in range(_MAX_READS_PER_POLL):
                data = self._read_available(0.0)
                if not data:
                    break
                codec.receive_data(data)
                self._drain(codec)
            self._check_deadlines()
            self._port_down = False
        except PortError as exc:
            self._unacked.clear()
            if not self._port_down:  # once: a pulled cable is one fact, not one per poll
                self._port_down = True
                self._events.append(self._fault(FaultKind.DISCONNECTED, str(exc)))
        events = list(self._events)
        self._events.clear()
        if self._points > before:
            events.insert(0, ev.InkAdded(points=self._points - before))
        return events

    @property
    def busy(self) -> bool:
        """Commands wait for their ack."""
        return bool(self._unacked)

    def wake_in(self) -> float | None:
        if not self._unacked:
            return None
        return max(0.0, min(s.deadline for s in self._unacked) - self._clock())

    # -- internals -------------------------------------------------------------------------------
    def _require_codec(self) -> SignaturePadCodec:
        if self._codec is None:
            raise PortError(f"{self.family} driver is not open ({self.url})")
        return self._codec

    def _fault(self, kind: FaultKind, detail: str, *, blocking: bool = True) -> DeviceFault:
        return DeviceFault(device=self.family, kind=kind, detail=detail, blocking=blocking)

    def _fit(self, text: str) -> str:
        """`text` without control characters, cut to lcd.columns bytes of lcd.encoding."""
        out, size = "", 0
        for char in text:
            if not char.isprintable():
                continue
            try:
                width = len(char.encode(self._encoding))
            except UnicodeEncodeError:
                char, width = "?", 1
            if size + width > self._columns:
                break
            out, size = out + char, size + width
        return out

    def _send(self, commands: list[ev.PadCommand]) -> DeviceFault | None:
        codec = self._require_codec()
        try:
            for command in commands:
                wire = codec.send(command)
                self._write(wire)
                self._unacked.append(_Sent(wire[1], wire, self._clock() + self._command_timeout))
        except PortError as exc:
            self._unacked.clear()
            return self._fault(FaultKind.DISCONNECTED, str(exc))
        return None

    def _resend(self, sent: _Sent, why: str, kind: FaultKind) -> None:
        if sent.sends >= self._max_attempts:
            self._unacked.remove(sent)
            self._events.append(self._fault(kind, f"command {chr(sent.code)!r}: {why} after {sent.sends} send(s)"))
            return
        sent.sends += 1
        sent.deadline = self._clock() + self._command_timeout
        self._write(sent.wire)

    def _check_deadlines(self) -> None:
        now = self._clock()
        for sent in list(self._unacked):
            if now >= sent.deadline:
                self._resend(sent, "no ack from the pad", FaultKind.NO_ANSWER)

    def _answered(self, code: int) -> _Sent | None:
        return next((s for s in self._unacked if s.code == code), None)

    def _drain(self, codec: SignaturePadCodec) -> None:
        while True:
            try:
                event = codec.next_event()
            except RemoteProtocolError as exc:
                self.garbled += 1
                self._events.append(self._fault(FaultKind.PROTOCOL, str(exc), blocking=False))
                continue
            if event is None:
                return
            if isinstance(event, ev.PenSample):
                self._on_sample(event)
            elif isinstance(event, ev.PadKey | ev.PadIdentity):
                self._events.append(event)
            elif isinstance(event, ev.PadAck):
                sent = self._answered(event.command)
                if sent is not None:
                    self._unacked.remove(sent)
            elif isinstance(event, ev.PadNak):
                sent = self._answered(event.command)
                if sent is not None:
                    self._resend(sent, f"refused ({event.cause})", FaultKind.PROTOCOL)

    def _on_sample(self, sample: ev.PenSample) -> None:
        if not self.capturing:
            return
        if not sample.down or sample.is_null:
            self._close_stroke()
            return
        if not (self._x0 <= sample.x <= self._x1 and self._y0 <= sample.y <= self._y1):
            return  # outside the active area: dropped, the stroke goes on
        if self._points >= self._max_points:
            if not self._flooded:
                self._flooded = True
                self._events.append(self._fault(
                    FaultKind.DEVICE, f"more than capture.max_points ({self._max_points}) points", blocking=False))
            return
        self._stroke.append((sample.x - self._x0, sample.y - self._y0))
        self._points += 1

    def _close_stroke(self) -> None:
        if self._stroke:
            self._strokes.append(tuple(self._stroke))
            self._stroke = []

    def _forget_ink(self) -> None:
        self._strokes, self._stroke, self._points, self._flooded = [], [], 0, False
