"""Time comes from a Clock. Timeouts are ordinary events the clock hands back when due.

`SystemClock` reads the machine's monotonic and wall clocks; `FakeClock` is virtual time for
tests (trio's MockClock idea): nothing moves until `advance()`, so a 60 s host timeout costs
microseconds and every run is repeatable.
"""

from __future__ import annotations

import heapq
import itertools
import time
from datetime import datetime, timedelta, timezone

from drivers.record import Record

__all__ = ["Clock", "Deadline", "FakeClock", "SystemClock", "Timer"]

CHINA = timezone(timedelta(hours=8), "CST")


class Deadline(Record):
    """The event a timer delivers: `name` says which wait ran out (e.g. "card_wait", "host")."""

    name: str
    token: int = 0  # lets the owner ignore a deadline that belongs to an earlier wait


class Timer:
    """A heap entry: ordered by (when, seq), so equal times fire in the order they were set.
    (A plain class: `@dataclass(order=True)` cost ~1 ms of every start for four methods.)"""

    __slots__ = ("cancelled", "event", "seq", "when")

    def __init__(self, when: float, seq: int, event: Deadline, cancelled: bool = False) -> None:
        self.when, self.seq, self.event, self.cancelled = when, seq, event, cancelled

    def __lt__(self, other: Timer) -> bool:
        return (self.when, self.seq) < (other.when, other.seq)

    def __repr__(self) -> str:
        return f"Timer(when={self.when!r}, seq={self.seq!r}, event={self.event!r}, cancelled={self.cancelled!r})"

    def cancel(self) -> None:
        self.cancelled = True


class Clock:
    """Monotonic time, wall time, and a heap of timers. Subclasses say where time comes from."""

    def __init__(self) -> None:
        self._timers: list[Timer] = []
        self._seq = itertools.count()

    def now(self) -> float:
        raise NotImplementedError

    def wall(self) -> datetime:
        raise NotImplementedError

    def call_later(self, delay: float, event: Deadline) -> Timer:
        timer = Timer(self.now() + max(0.0, delay), next(self._seq), event)
        heapq.heappush(self._timers, timer)
        return timer

    def next_deadline(self) -> float | None:
        self._drop_cancelled()
        return self._timers[0].when if self._timers else None

    def due(self) -> list[Deadline]:
        """Pop every timer whose time has come, oldest first."""
        now, fired = self.now(), []
        self._drop_cancelled()
        while self._timers and self._timers[0].when <= now:
            timer = heapq.heappop(self._timers)
            if not timer.cancelled:
                fired.append(timer.event)
        return fired

    def _drop_cancelled(self) -> None:
        while self._timers and self._timers[0].cancelled:
            heapq.heappop(self._timers)


class SystemClock(Clock):
    def __init__(self, tz: timezone = CHINA) -> None:
        super().__init__()
        self._tz = tz

    def now(self) -> float:
        return time.monotonic()

    def wall(self) -> datetime:
        return datetime.now(self._tz)


class FakeClock(Clock):
    """Virtual time: starts at a fixed wall time and moves only when told."""

    def __init__(self, start: datetime | None = None) -> None:
        super().__init__()
        self._start = start or datetime(2026, 11, 22, 9, 30, 0, tzinfo=CHINA)
        self._elapsed = 0.0

    def now(self) -> float:
        return self._elapsed

    def wall(self) -> datetime:
        return self._start + timedelta(seconds=self._elapsed)

    def advance(self, seconds: float) -> None:
        if seconds < 0:
            raise ValueError("time does not run backwards")
        self._elapsed += seconds
