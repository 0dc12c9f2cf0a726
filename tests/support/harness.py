"""The stateful test's world, on the emulated world's harness (sim/harness.py, which the scenario
rig uses too): a counting host that outlives every power cycle, one FakeClock and one var dir for
every boot, and a printer whose roll outlives a reboot.

One clock for every boot, as tests/system/test_reversal.py restarts: the dead till's timers stay
on it and must never fire into the next one (deadline tokens are unique). A boot waits for the
host in `settle`, not in real seconds (`boot_io_wait=0.0`): the host may be silent here.
"""

from __future__ import annotations

import array
import fcntl
import select
import termios
import time
from pathlib import Path

from drivers.transport import attach_peer, detach_peer
from emulator.printer.emulator import PrinterEmulator
from firmware_profiles import load_profile
from sim.harness import QUIET_S, CountingDriver, CountingHost, Harness, HarnessError, NotQuiet, Tally
from sim.wiring import EmulatedTill, build_emulated_till
from terminal.clock import FakeClock

__all__ = ["QUIET_S", "CountingDriver", "CountingHost", "HarnessError", "NotQuiet", "Tally", "TillHarness"]


class TillHarness(Harness):
    """Start with the host running and the printer plugged in; `boot()` (and `power_cycle()`)
    return a till that is already quiet; `close()` powers off and stops the host."""

    def __init__(self, var_dir: Path, clock: FakeClock, *, printer_profile: str = "cn-80mm") -> None:
        super().__init__(CountingHost(), lambda _: self._build())
        self.var_dir, self.clock = var_dir, clock
        self.printer = PrinterEmulator(load_profile("printer", printer_profile))
        self.host.start()
        try:
            self.printer_url = attach_peer("printer", self.printer)
        except BaseException:
            self.host.stop()
            raise

    def _build(self) -> EmulatedTill:
        return build_emulated_till(clock=self.clock, var_dir=self.var_dir, device_urls={"printer": self.printer_url},
                                   host=self.link(), boot_io_wait=0.0)

    @property
    def t(self) -> EmulatedTill:
        assert self.till is not None, "the till is off"
        return self.till

    def boot(self) -> EmulatedTill:
        till = super().boot()
        self.settle()
        return till

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
