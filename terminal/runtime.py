"""One inbound stream of facts for the checkout: device events, host messages, clock deadlines.

The loop is deliberately plain: poll every source (never blocking), hand due deadlines from the
Clock, route each fact to the machine's model. When nothing is ready it waits on the sources'
descriptors through the Clock, so on a FakeClock virtual time never moves by itself and a test
decides when a 60 s timeout has passed.
"""

from __future__ import annotations

import logging
import select
from collections.abc import Callable, Sequence
from typing import Protocol

from drivers.record import Record
from terminal.clock import Clock, FakeClock

__all__ = ["Runtime", "Source", "SourceFailed", "Ticking"]

log = logging.getLogger(__name__)


class Source(Protocol):
    def poll(self) -> Sequence[object]:
        """Facts that have arrived; never blocks."""

    def fileno(self) -> int | None:
        """A descriptor to select() on, or None for a synchronous in-process peer."""


class Ticking(Protocol):
    def wake_in(self) -> float | None:
        """Seconds until this source may have something without any I/O (an emulator's timed
        behaviour), or None. Only a real clock needs it: virtual time moves when told."""


class SourceFailed(Record):
    """A source's transport broke (cable pulled, host closed the connection): a fact, not a crash."""

    source: object
    error: str


class Handler(Protocol):
    def handle(self, event: object) -> None: ...


class Runtime:
    def __init__(self, clock: Clock, handler: Handler, sources: Sequence[Source]) -> None:
        self.clock = clock
        self.handler = handler
        self.sources = list(sources)

    def step(self) -> bool:
        """Deliver everything ready now; True when anything was delivered."""
        events: list[object] = []
        for source in self.sources:
            try:
                events += source.poll()
            except OSError as exc:  # PortError, HostLinkError: the link failed, the till goes on
                log.warning("%s failed: %s", type(source).__name__, exc)
                events.append(SourceFailed(source=source, error=str(exc)))
        events += self.clock.due()
        for event in events:
            self.handler.handle(event)
        return bool(events)

    def run_until(self, done: Callable[[], bool], *, io_wait: float = 10.0) -> bool:
        """Run until `done()`; False when nothing more can happen without outside help.

        `io_wait` bounds one wait for I/O in real seconds. On a FakeClock, deadlines never come
        due on their own, so a stall returns False and the test moves the clock.
        """
        while not done():
            if self.step():
                continue
            if not self._wait(io_wait):
                return done()
        return True

    def _wait(self, io_wait: float) -> bool:
        # A source that says it expects nothing (an idle host link) is not worth waiting on.
        waiting = [s for s in self.sources if getattr(s, "expecting", lambda: True)()]
        fds = [fd for fd in (s.fileno() for s in waiting) if fd is not None]
        timeout = io_wait
        deadline = self.clock.next_deadline()
        wakes = [w for s in self.sources if (w := getattr(s, "wake_in", lambda: None)()) is not None]
        if wakes and not isinstance(self.clock, FakeClock):
            deadline = min([self.clock.now() + min(wakes)] + ([deadline] if deadline is not None else []))
        # A source on a real descriptor whose wake is in real time (a printer driver pacing a job
        # to the line, or waiting out its own I/O timeout) is woken for even on a FakeClock:
        # those seconds are not virtual, and nobody will move them.
        io_wakes = [w for s in waiting if s.fileno() is not None
                    and (w := getattr(s, "wake_in", lambda: None)()) is not None]
        if fds and io_wakes and isinstance(self.clock, FakeClock):
            select.select(fds, [], [], min(io_wait, *io_wakes))
            return True
        if not isinstance(self.clock, FakeClock) and deadline is not None:
            timeout = max(0.0, min(io_wait, deadline - self.clock.now()))
            if not fds:
                # Only a deadline to wait for: block on nothing until it is due.
                select.select([], [], [], timeout)
                return True
        if not fds:
            return False
        readable, _, _ = select.select(fds, [], [], timeout)
        return bool(readable) or (deadline is not None and not isinstance(self.clock, FakeClock))
