"""The scenario's acquirer simulator: the counting host of sim/harness.py, plus what a scenario
needs of it and the real-time simulator cannot give.

- Latency in **virtual** time (`host = {latency = 5}`): the simulator's own `latency` is a real
  timer on its loop, which a FakeClock run cannot wait for. Here an answer is decided and booked
  as usual, then held until the run's virtual wall clock reaches `booked + latency`; the rig's
  `advance` stops at that moment as at any other deadline and releases it (`release_due`).
- The order requests arrived in (`arrivals`: MTI and STAN), so a scenario can check the order in
  which stored offline sales were forwarded (`advices_forwarded`).
"""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

from drivers.acquirer.events import HostMessage
from emulator.acquirer.server import Connection
from sim.harness import CountingHost

__all__ = ["ScenarioHost"]


class ScenarioHost(CountingHost):
    def __init__(self, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.virtual_latency = 0.0  # seconds of virtual time between booking and sending an answer
        self._delayed: list[tuple[datetime, Any]] = []  # (due, pending answer), oldest first
        self.arrivals: list[tuple[str, str]] = []  # (mti, stan) of every request read, in order

    def _on_request(self, conn: Connection, request: HostMessage) -> None:
        self.arrivals.append((request.mti, request.stan or ""))
        super()._on_request(conn, request)

    def _deliver(self, pending: Any) -> None:
        """Every answer leaves through here (at once, after release-late, after a real delay)."""
        with self._lock:
            if self.virtual_latency > 0 and not getattr(pending, "waited", False):
                pending.waited = True  # a released delayed answer is not delayed a second time
                self._delayed.append((self._now() + timedelta(seconds=self.virtual_latency), pending))
                return
        super()._deliver(pending)

    def next_due(self) -> datetime | None:
        """When the oldest delayed answer is due (virtual wall time), or None."""
        with self._lock:
            return min((due for due, _ in self._delayed), default=None)

    def release_due(self) -> int:
        """Send the delayed answers whose time has come (on the loop thread); returns how many."""
        def release() -> int:
            now = self._now()
            with self._lock:
                ready = [p for due, p in self._delayed if due <= now]
                self._delayed = [(due, p) for due, p in self._delayed if due > now]
            for pending in ready:
                super(ScenarioHost, self)._deliver(pending)
            return len(ready)

        return self._reactor.call_in_loop(release, 0)
