"""The stateful test's world, on the emulated world's harness (sim/harness.py, which the scenario
rig uses too): a counting host that outlives every power cycle, one FakeClock and one var dir for
every boot, a printer whose roll outlives a reboot, and a wallet gateway simulator (in process, on
the till's clock while a till is up) whose books outlive it too.

Host latency is real time in the simulator (its reactor's timers): `settle` also waits until no
answer is held back by it, so a rule still ends with the till quiet.

One clock for every boot, as tests/system/test_reversal.py restarts: the dead till's timers stay
on it and must never fire into the next one (deadline tokens are unique). A boot waits for the
host in `settle`, not in real seconds (`boot_io_wait=0.0`): the host may be silent here.
"""

from __future__ import annotations

import array
import fcntl
import select
import termios
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from drivers.events import DeviceFault, FaultKind
from drivers.transport import attach_peer, detach_peer
from emulator.printer.emulator import PrinterEmulator
from emulator.wallet.peer import WalletPeer
from firmware_profiles import load_profile
from sim.harness import QUIET_S, CountingDriver, CountingHost, Harness, HarnessError, NotQuiet, Tally
from sim.wiring import EmulatedTill, build_emulated_till
from terminal.clock import FakeClock

__all__ = [
    "QUIET_S", "CableDriver", "CountingDriver", "CountingHost", "HarnessError", "LatentHost", "NotQuiet", "Tally",
    "TillHarness",
]


class CableDriver(CountingDriver):
    """The counting link behind a network cable the test can pull (`unplugged()` True): then no
    connection opens, as with a host that cannot be reached; the host and its books stay up."""

    def __init__(self, url: str, tally: Tally, unplugged: Callable[[], bool], *, connect_timeout: float) -> None:
        super().__init__(url, tally, connect_timeout=connect_timeout)
        self.unplugged = unplugged

    def connect(self) -> DeviceFault | None:
        if self.unplugged() and not self.connected:
            return DeviceFault(device="acquirer", kind=FaultKind.DISCONNECTED, detail="network down (cable pulled)")
        return super().connect()


class LatentHost(CountingHost):
    """The counting simulator, also counting answers its latency holds on a timer (`in_flight`)."""

    def __init__(self, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self._flight = threading.Condition()
        self.in_flight = 0
        self.landed = 0  # latent answers handed on (delivered, or lost with their link)
        later = self._reactor.call_later

        def call_later(delay: float, fn: Callable[[], None]) -> None:
            with self._flight:
                self.in_flight += 1

            def run() -> None:
                try:
                    fn()
                finally:
                    with self._flight:
                        self.in_flight -= 1
                        self.landed += 1
                        self._flight.notify_all()

            later(delay, run)

        self._reactor.call_later = call_later  # type: ignore[method-assign]

    def wait_landed(self) -> bool:
        with self._flight:
            return self._flight.wait_for(lambda: not self.in_flight, QUIET_S)


class TillHarness(Harness):
    """Start with the host running and the printer plugged in; `boot()` (and `power_cycle()`)
    return a till that is already quiet; `close()` powers off and stops the host."""

    def __init__(self, var_dir: Path, clock: FakeClock, *, printer_profile: str = "cn-80mm") -> None:
        self.host: LatentHost
        super().__init__(LatentHost(), lambda _: self._build())
        self.var_dir, self.clock = var_dir, clock
        self.unplugged = False
        self.wallet: WalletPeer | None = None  # the first boot's wallet gateway, kept for every later boot
        self.printer = PrinterEmulator(load_profile("printer", printer_profile))
        self.host.start()
        try:
            self.printer_url = attach_peer("printer", self.printer)
        except BaseException:
            self.host.stop()
            raise

    def _build(self) -> EmulatedTill:
        link = CableDriver(self.host.url, self.tally, lambda: self.unplugged, connect_timeout=10.0)
        till = build_emulated_till(clock=self.clock, var_dir=self.var_dir, device_urls={"printer": self.printer_url},
                                   host=link, boot_io_wait=0.0, wallet_peer=self.wallet)
        self.wallet = self.wallet or till.emulators.wallet
        return till

    def unplug(self) -> None:
        """The network goes: the host sees the link close, and no new one opens until `plug()`."""
        self.unplugged = True
        self.host.drop_connections()
        self.settle()

    def plug(self) -> None:
        self.unplugged = False

    @property
    def t(self) -> EmulatedTill:
        assert self.till is not None, "the till is off"
        return self.till

    def boot(self) -> EmulatedTill:
        till = super().boot()
        self.settle()
        return till

    def settle(self) -> None:
        """Until quiet, with no answer left on the host's latency timers."""
        for _ in range(100):
            landed = self.host.landed
            super().settle()
            if not self.host.wait_landed():
                raise HarnessError("an answer the host delayed never left it")
            if self.host.landed == landed:
                return
        raise NotQuiet("answers kept coming after the host's latency")

    def wait_unread(self, count: int) -> None:
        """Until `count` bytes wait unread on the till's host link (they may come in several segments)."""
        fd, unread = self.t.host.fileno(), array.array("i", [0])
        give_up = time.monotonic() + QUIET_S
        while fd is not None and count and time.monotonic() < give_up:
            select.select([fd], [], [], QUIET_S)
            fcntl.ioctl(fd, termios.FIONREAD, unread)
            if unread[0] >= count:
                return
        assert not count or fd is None, f"{count} bytes the host wrote never arrived"

    def close(self) -> None:
        try:
            self.power_off()
        finally:
            detach_peer(self.printer_url)
            self.host.stop()
