"""The ESC/POS printer driver: status by DLE EOT 1..4, print jobs, unsolicited ASB.

A print job is polled like a card read: `start_job(commands)` encodes the whole job (a bad
command raises with nothing sent), asks DLE EOT 1..4 and returns; each `poll()` then moves the
job on without blocking — the status answers as they arrive, the chunks as XON/XOFF and the
line time allow (a "not before" time, never a sleep), the status after — and finally returns
PrintJobDone or PrintJobStopped. `fileno()`, `expecting()` and `wake_in()` tell the runtime
when to poll again. Over a synchronous port (emu://: no descriptor, the peer cannot speak on
its own) a wait that brings nothing is over at once, so a job there ends in a poll or two; and
when the peer says it takes any number of bytes now as it would take them chunk by chunk (an
emulator that nothing can stop part way: `takes_any()`), the job goes in one write instead of
`chunk`-sized ones — the same bytes and events, without a step per chunk. A real line, a pty or
a socket is always written chunk by chunk at the line's pace.
`print_job()` and `status()` are the blocking forms, for tools and tests.

Silence is never "paper OK" (python-escpos' `paper_status()` pitfall): a status request that is
not fully answered within `timeout` is a DeviceFault(NO_ANSWER), garbage a DeviceFault(PROTOCOL),
a failing port a DeviceFault(DISCONNECTED). Bugs on our side (a command that cannot be encoded,
using the driver before open()) still raise.
"""

from __future__ import annotations

import enum
import select
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
_STATUS_REQUESTS = tuple(ev.RequestStatus(kind=k) for k in _KINDS)  # frozen: made once, sent before and after every job
_MAX_STEPS = 64  # reads per poll(): a chattering printer cannot keep poll() busy forever
_WAIT_S = 0.05  # print_job(): longest single select() while it polls its job


class _Phase(enum.Enum):
    BEFORE = "status before"  # DLE EOT 1..4 asked; nothing of the job sent yet
    WRITING = "writing"
    HELD = "held"  # XOFF held past `timeout`: asking the printer why
    AFTER = "status after"


class _Job:
    __slots__ = ("data", "deadline", "not_before", "phase", "replies", "sent", "xoff_until")

    def __init__(self, data: bytes) -> None:
        self.data = data
        self.phase = _Phase.BEFORE
        self.sent = 0
        self.replies: dict[int, int] = {}
        self.deadline = 0.0  # when the status answers are overdue
        self.not_before = 0.0  # the next chunk waits for the line to carry the last one
        self.xoff_until: float | None = None  # when an XOFF becomes "the printer holds it"


def _no() -> bool:
    return False


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
        self._codec = PrinterCodec(Role.HOST, profile)
        self._pending: list[DeviceEvent] = []  # ASB conditions seen while waiting for something else
        self._last: ev.PrinterStatus | None = None
        self._paused = False  # the printer sent XOFF
        self._xoff_at = 0.0  # when the last XOFF arrived
        self._job: _Job | None = None
        self._asb = False  # GS a sent: the printer may push at any time
        self.last_job_bytes = 0  # bytes of the last print job that reached the port
        # A printer sends XOFF with `xoff_free` bytes of room left: half that in flight at most, the
        # other half for what is already on the line when the XOFF comes back.
        serial = profile["serial"]
        self.chunk = CHUNK
        if serial["flow_control"] == "xonxoff":
            self.chunk = max(16, min(CHUNK, int(serial["xoff_free"]) // 2))
        self._byte_time = _bits_per_char(str(serial["framing"])) / int(serial["baud"])

    # -- public API --------------------------------------------------------------------------------
    def status(self) -> ev.PrinterStatus | DeviceFault:
        """Ask DLE EOT 1..4 and wait up to `timeout` for all four answers (blocking: for tools;
        a print job asks by itself, without blocking)."""
        _ = self.port  # not open is our bug: raise PortError here, not a DeviceFault below
        if self._job is not None:
            raise LocalProtocolError("a print job is in progress; its own status checks say how it went")
        replies: dict[int, int] = {}
        fault: DeviceFault | None = None
        try:
            self._ask_status()
            deadline = time.monotonic() + self.timeout
            while len(replies) < len(_KINDS):
                remaining = deadline - time.monotonic()
                data = self._read_available(remaining) if remaining > 0 else b""
                if not data:  # a real port waited `remaining`; emu:// has nothing coming
                    fault = self._no_answer(len(replies))
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

    @property
    def busy(self) -> bool:
        """A print job is at the printer (its end may still wait in the next poll() once not)."""
        return self._job is not None

    def start_job(self, commands: Sequence[ev.PrinterCommand]) -> DeviceFault | None:
        """Check, print, check again — through poll(), which ends with PrintJobDone or
        PrintJobStopped. The whole job is encoded first: a bad command raises LocalProtocolError
        with nothing sent. A blocking condition before the job means nothing of it is sent.
        Returns the DeviceFault when the status request cannot even be written."""
        _ = self.port
        if self._job is not None:
            raise LocalProtocolError("a print job is already in progress")
        job = _Job(self._encode(commands))
        self.last_job_bytes = 0
        try:
            self._ask_status()
        except PortError as exc:
            self._codec.forget_outstanding()
            return self._fault(FaultKind.DISCONNECTED, str(exc))
        except RemoteProtocolError as exc:  # cannot happen with stale=True; kept for the type checker
            return self._fault(FaultKind.PROTOCOL, str(exc))
        job.deadline = time.monotonic() + self.timeout
        self._job = job
        self._work()  # whatever can happen at once does (all of it, on emu://)
        return None

    def print_job(self, commands: Sequence[ev.PrinterCommand]) -> list[DeviceEvent]:
        """start_job() and poll() until it is over, waiting on the port in between (blocking:
        for tools and tests). Returns the conditions found (empty = printed and fine); a blocking
        condition before the job means nothing was sent."""
        fault = self.start_job(commands)
        if fault is not None:
            return [fault]
        other: list[DeviceEvent] = []
        try:
            while True:
                for event in self.poll():
                    if isinstance(event, ev.PrintJobDone | ev.PrintJobStopped):
                        return list(event.conditions)
                    other.append(event)
                self._wait_for_job()
        finally:
            self._pending[:0] = other  # ASB conditions stay for the next poll()

    def enable_auto_status(self, mask: int = 0x0F) -> None:
        """GS a: the printer then pushes ASB on every change (bit0 drawer, bit1 online, bit2 error,
        bit3 paper); poll() reports them. The first push follows at once."""
        self._write(self._codec.send(ev.SetAutoStatus(mask=mask)))
        self._asb = mask != 0

    def poll(self) -> list[DeviceEvent]:
        """ASB conditions, and the print job moved on (its end: PrintJobDone / PrintJobStopped);
        never blocks."""
        if self._job is not None:
            self._work()
        else:
            try:
                self._take(self._read_available(0))
            except RemoteProtocolError as exc:
                self._pending.append(self._fault(FaultKind.PROTOCOL, str(exc), blocking=False))
            except PortError as exc:
                self._pending.append(self._fault(FaultKind.DISCONNECTED, str(exc)))
        events, self._pending = self._pending, []
        return events

    def expecting(self) -> bool:
        """Is anything due from the printer? A job in progress, or ASB pushes switched on."""
        return self._job is not None or self._asb

    def wake_in(self) -> float | None:
        """Seconds until the job's next step needs no byte from the printer (a chunk's line time
        over, an overdue answer, an XOFF held too long); None without a job."""
        job = self._job
        if job is None:
            return None
        if job.phase is _Phase.WRITING:
            when = job.xoff_until if self._paused and job.xoff_until is not None else job.not_before
        else:
            when = job.deadline
        return max(0.0, when - time.monotonic())

    # -- the job, one step at a time ----------------------------------------------------------------
    def _work(self) -> None:
        """Move the job on as far as it goes without waiting."""
        job = self._job
        assert job is not None
        try:
            for _ in range(_MAX_STEPS):
                data = self._read_available(0)
                answers = self._take(data)
                if not self._step(job, answers, arrived=bool(data)):
                    return
                if self._job is None:
                    return
        except RemoteProtocolError as exc:
            self._codec.forget_outstanding()
            self._stop(job, self._fault(FaultKind.PROTOCOL, str(exc)))
        except PortError as exc:
            self._codec.forget_outstanding()
            self._stop(job, self._fault(FaultKind.DISCONNECTED, str(exc)))

    def _step(self, job: _Job, answers: dict[int, int], *, arrived: bool) -> bool:
        """One step; True when it is worth reading again at once."""
        now = time.monotonic()
        synchronous = self.fileno() is None  # silence from an in-process peer is final
        if job.phase is not _Phase.WRITING:
            job.replies.update(answers)
            if len(job.replies) < len(_KINDS):
                if now < job.deadline and (arrived or not synchronous):
                    return arrived
                fault = self._no_answer(len(job.replies))
                self._codec.forget_outstanding()
                if job.phase is _Phase.HELD:
                    fault = self._fault(FaultKind.NO_ANSWER, f"printer held XOFF for {self.timeout:g} s")
                self._stop(job, fault)
                return False
            status = self._last = ev.PrinterStatus.from_replies(job.replies)
            conditions = condition_events(status)
            if job.phase is _Phase.BEFORE and status.printable:
                job.phase = _Phase.WRITING  # warnings (near end) are reported from the check after
                return True
            if job.phase is _Phase.AFTER and status.printable:
                self._finish(ev.PrintJobDone(bytes_sent=job.sent, conditions=tuple(conditions)))
            elif not status.printable:
                self._finish(ev.PrintJobStopped(bytes_sent=job.sent, conditions=tuple(conditions)))
            else:  # held XOFF, yet fine by its own account: a printer that stopped talking sense
                self._stop(job, self._fault(FaultKind.NO_ANSWER, f"printer held XOFF for {self.timeout:g} s"))
            return False
        if self._paused:
            # A printer that keeps repeating XOFF is alive and busy; one that said it once and then
            # nothing for `timeout` is asked why (it stopped: paper out with its buffer full).
            job.xoff_until = self._xoff_at + self.timeout
            if now < job.xoff_until and (arrived or not synchronous):
                return arrived
            self._ask(job, _Phase.HELD)
            return True
        if job.sent >= len(job.data):
            self._ask(job, _Phase.AFTER)
            return True
        if now < job.not_before:
            return False  # the line is still carrying the last chunk: wake_in() says when
        size = self.chunk
        if synchronous and getattr(self.port, "takes_any", _no)():
            size = len(job.data) - job.sent  # an in-process printer that nothing can stop takes it all
        chunk = job.data[job.sent : job.sent + size]
        self._write(chunk)
        job.sent += len(chunk)
        self.last_job_bytes = job.sent
        # On a real line flush() waited while the bytes went out. A pty or socket takes them at
        # once, so the next chunk waits out the line time (an XOFF meanwhile is heard first).
        if not synchronous:
            job.not_before = now + len(chunk) * self._byte_time
        return True

    def _ask(self, job: _Job, phase: _Phase) -> None:
        self._ask_status()
        job.phase, job.replies, job.deadline = phase, {}, time.monotonic() + self.timeout

    def _stop(self, job: _Job, fault: DeviceFault) -> None:
        self._finish(ev.PrintJobStopped(bytes_sent=job.sent, conditions=(fault,)))

    def _finish(self, event: DeviceEvent) -> None:
        self._job = None
        self._pending.append(event)

    def _wait_for_job(self) -> None:
        """print_job(): wait for the printer's next byte or the job's next time, whichever first."""
        job = self._job
        if job is None:
            return
        fd = self.fileno()
        if fd is None:
            # Nothing comes from an in-process peer on its own: every wait is over now.
            job.deadline = job.not_before = 0.0
            self._xoff_at = -self.timeout
            return
        select.select([fd], [], [], min(_WAIT_S, self.wake_in() or 0.0))

    # -- internals ---------------------------------------------------------------------------------
    def _ask_status(self) -> None:
        # Bytes already waiting predate this request: ASB and flow control still count, a late
        # answer to an abandoned request is dropped instead of answering this one.
        self._take(self._read_available(0), stale=True)
        self._write(b"".join([self._codec.send(request) for request in _STATUS_REQUESTS]))

    def _no_answer(self, got: int) -> DeviceFault:
        return self._fault(FaultKind.NO_ANSWER, f"{got} of 4 status replies within {self.timeout:g} s")

    def _encode(self, commands: Sequence[ev.PrinterCommand]) -> bytes:
        # Encode the whole job before sending a byte, on a scratch codec: a bad command raises
        # LocalProtocolError with nothing printed and our text-mode tracking left as it was.
        scratch = PrinterCodec(Role.HOST, self.profile)
        scratch.chinese_mode = self._codec.chinese_mode
        if any(issubclass(kind, ev.RequestStatus) for kind in set(map(type, commands))):  # a few kinds
            first = next(i for i, cmd in enumerate(commands) if isinstance(cmd, ev.RequestStatus))
            scratch.send_many(commands[:first])  # a bad command before it is the first error, as ever
            raise LocalProtocolError("ask status with status(), not inside a print job")
        data = scratch.send_many(commands)
        self._codec.chinese_mode = scratch.chinese_mode
        return data

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
                if reply.paused:
                    self._xoff_at = time.monotonic()

    def _on_asb(self, status: ev.PrinterStatus) -> None:
        self._pending += condition_events(status)
        if status.printable and (self._last is None or not self._last.printable):
            self._pending.append(ev.PrinterReady())
        self._last = status

    def _fault(self, kind: FaultKind, detail: str, *, blocking: bool = True) -> DeviceFault:
        return DeviceFault(device=self.family, kind=kind, detail=detail, blocking=blocking)
