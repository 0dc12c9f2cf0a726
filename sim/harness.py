"""The emulated world's host barrier and power cycle: one till at a time, on an acquirer
simulator that outlives every power cycle (its ledger is the bank's view of the whole run).

The scenario rig (sim/scenario/rig.py) and the stateful test (tests/support/harness.py) both
stand on this. Nothing here sleeps. The host link and the simulator count what crosses them
(`Tally`, `CountingDriver`, `CountingHost`), so `Harness.settle` knows when all is quiet: every
request the till sent has been read by the simulator, every answer the simulator wrote has been
read by the till (or went down with a link that closed first), and the runtime has nothing left
to do. The waits are on sockets and a condition, bounded by QUIET_S real seconds; a wait that
runs out is a broken harness (`HarnessError`), never a slow machine's verdict.

A power cycle closes the till's handles and nothing else — no flow action, no goodbye to the
host — waits until the simulator has seen the link close, and boots a new till through the
caller's `boot` (on the same var dir: it reboots from its journal).
"""

from __future__ import annotations

import select
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from drivers.acquirer.codec import AcquirerCodec
from drivers.acquirer.driver import AcquirerDriver
from drivers.acquirer.events import HostMessage
from drivers.events import DeviceFault, Role
from emulator.acquirer.server import Connection
from emulator.acquirer.simulator import AcquirerSimulator
from sim.wiring import EmulatedTill

__all__ = ["QUIET_S", "CountingDriver", "CountingHost", "Harness", "HarnessError", "NotQuiet", "Tally"]

QUIET_S = 5.0  # real seconds a message may take on loopback before the harness stops waiting for it
DRAIN_STEPS = 1000  # runtime steps in one drain before the till is called stuck
SETTLE_ROUNDS = 100  # drain-and-wait rounds in one settle


class HarnessError(RuntimeError):
    """The harness lost track of the messages between till and host (a bug here, not in the till)."""


class NotQuiet(HarnessError):
    """The till kept working without ever going quiet (a flow bug, or a loop in the run)."""


@dataclass
class Tally:
    sent: int = 0  # requests the tills wrote, over every boot
    received: int = 0  # answers the tills read
    lost: int = 0  # answers the host wrote on a link that was gone before they were read


class CountingDriver(AcquirerDriver):
    """The real link driver, counting what crosses it (a part given to build_till)."""

    def __init__(self, url: str, tally: Tally, *, connect_timeout: float = 10.0) -> None:
        super().__init__(url, connect_timeout=connect_timeout)
        self.tally = tally

    def send(self, msg: HostMessage) -> DeviceFault | None:
        fault = super().send(msg)
        if fault is None:
            self.tally.sent += 1
        return fault

    def poll(self) -> list[HostMessage | DeviceFault]:
        events = super().poll()
        self.tally.received += sum(isinstance(e, HostMessage) for e in events)
        return events


class CountingHost(AcquirerSimulator):
    """The simulator, counting requests read and answers written."""

    def __init__(self, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self._cv = threading.Condition()
        self.seen = 0  # requests read, answered or not (a link dropped before the host decided counts)
        self.delivered = 0  # written on the loop thread; read after `barrier()`
        self.bytes_delivered = 0

    def _on_request(self, conn: Connection, request: HostMessage) -> None:
        try:
            super()._on_request(conn, request)
        finally:
            with self._cv:
                self.seen += 1
                self._cv.notify_all()

    def note_delivery(self, request: HostMessage, answer: HostMessage) -> None:
        super().note_delivery(request, answer)
        self.delivered += 1
        self.bytes_delivered += len(AcquirerCodec(Role.DEVICE).send(answer))  # framing is stateless

    def wait_seen(self, count: int) -> bool:
        with self._cv:
            return self._cv.wait_for(lambda: self.seen >= count, QUIET_S)

    def barrier(self) -> int:
        """A call through the loop thread: what it was handling before is done (and written).
        Returns the number of open terminal links."""
        return self.connection_count


def _readable(fd: int | None) -> bool:
    return fd is not None and bool(select.select([fd], [], [], QUIET_S)[0])


class Harness:
    """One till at a time on `host`. `boot(harness)` builds a till (its host link from
    `harness.link(url)`); `step(till)` is one step of its runtime (the rig's also watches for a
    power cut, and may power-cycle inside it: `till` is read afresh after every step)."""

    def __init__(
        self, host: CountingHost, boot: Callable[[Harness], EmulatedTill], *,
        step: Callable[[EmulatedTill], bool] | None = None, drain_steps: int = DRAIN_STEPS,
    ) -> None:
        self.host, self.tally = host, Tally()
        self.till: EmulatedTill | None = None
        self._boot = boot
        self._step = step or (lambda till: till.runtime.step())
        self.drain_steps = drain_steps

    def link(self, url: str | None = None, *, connect_timeout: float = 10.0) -> CountingDriver:
        """A counting host link for the next till (to the simulator unless told otherwise)."""
        return CountingDriver(url or self.host.url, self.tally, connect_timeout=connect_timeout)

    # -- power --------------------------------------------------------------------------------------
    def boot(self) -> EmulatedTill:
        self.till = self._boot(self)
        return self.till

    def power_off(self) -> None:
        """Drop the till: its handles close (journal, ports, socket); nothing else runs. Returns
        once the simulator has seen the link close; what it wrote that was not read is lost."""
        till, self.till = self.till, None
        if till is None:
            return
        till.close()
        give_up = time.monotonic() + QUIET_S
        while self.host.barrier():  # the host notices the dead link before anything else happens
            if time.monotonic() > give_up:
                raise HarnessError("the host never noticed the closed link")
        self.tally.lost = self.host.delivered - self.tally.received

    def power_cycle(self) -> EmulatedTill:
        self.power_off()
        return self.boot()

    # -- quiet ----------------------------------------------------------------------------------------
    def drain(self) -> bool:
        """Step the till until its runtime has nothing to do; True when anything moved."""
        for steps in range(self.drain_steps):
            till = self.till
            if till is None or not self._step(till):
                return steps > 0
        raise NotQuiet(f"the terminal did not settle within {self.drain_steps} steps")

    def settle(self) -> None:
        """Run the till until nothing more happens without an outside fact."""
        tally, host = self.tally, self.host
        for _ in range(SETTLE_ROUNDS):
            if self.till is None:
                return
            busy = self.drain()
            if not host.wait_seen(tally.sent):
                raise HarnessError(f"the host read {host.seen} of {tally.sent} requests")
            open_links, fd = host.barrier(), self._fd()
            if not open_links and fd is not None:  # the host hung up: the till sees it before anything else
                if not _readable(fd):
                    raise HarnessError("the host's hang-up never reached the till")
                busy = self.drain() or busy
            while host.delivered > tally.received + tally.lost:
                if not _readable(self._fd()):
                    tally.lost = host.delivered - tally.received  # written on a link that closed meanwhile
                    break
                busy = self.drain() or busy
            if not busy and not self.drain():
                return
        raise NotQuiet(f"the terminal did not settle within {SETTLE_ROUNDS} rounds")

    def _fd(self) -> int | None:
        return self.till.host.fileno() if self.till is not None else None
