"""Devices come and go: a port that failed is let alone until it is back, then opened again.

A pulled cable is one fact (the driver reports `DeviceFault(DISCONNECTED)` once); from then on
the slot is *down*: the runtime stops polling it (a dead port would fail every poll), the
checkout meets a command to it as a fault of its own (a card sale is refused at the start, a
receipt pauses, a QR payment goes on), and every `RETRY_S` on the till's clock the port is
tried. Once it opens, the same driver object opens it again in place — the checkout, the spool
and the runtime hold that object — and the slot is up. Nothing here blocks: an open either
succeeds or fails at once (a pty or USB node that is not there, a refused TCP connection).
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import Any

from drivers.events import DeviceFault, FaultKind
from drivers.transport import open_port

__all__ = ["RETRY_S", "DeadPort", "DeviceWatch", "start_unplugged"]

log = logging.getLogger(__name__)
RETRY_S = 2.0


class DeadPort:
    """Where a device's port would be when it was not there at start: every I/O fails as a
    pulled cable's does, so the driver reports it the usual way (a fault, never a crash) and the
    watch opens the real port once it appears."""

    timeout: float = 0.0

    def __init__(self, url: str, why: str) -> None:
        self.url, self.why = url, why

    def _gone(self, *_: object, **__: object) -> Any:
        import serial

        raise serial.SerialException(f"{self.url} is not connected: {self.why}")

    write = flush = read = reset_input_buffer = reset_output_buffer = fileno = _gone

    @property
    def in_waiting(self) -> int:
        return int(self._gone())

    def close(self) -> None:
        pass


def start_unplugged(slot: str, driver: Any, error: Exception) -> None:
    """`open_devices(absent=...)` for `till run`: a device missing at start is started unplugged."""
    log.warning("%s: %s; the till starts without it and opens it when it is there", slot, error)
    driver._port = DeadPort(str(driver.url), str(error))
    driver.open()  # the driver's own set-up (its codec); the port is taken as given


class DeviceWatch:
    def __init__(self, till: Any, *, on_change: Callable[[str, str, str], None]) -> None:
        self.till = till
        self.on_change = on_change  # (slot, "down" | "up", detail)
        self.down: dict[str, float] = {}  # slot -> next try (Clock time)

    def slot_of(self, fault: DeviceFault) -> str | None:
        for slot, driver in self.till.devices.items():
            if getattr(driver, "family", None) == fault.device or slot == fault.device:
                return str(slot)
        return None

    def fault(self, fault: DeviceFault) -> None:
        slot = self.slot_of(fault)
        if slot is None or fault.kind is not FaultKind.DISCONNECTED or slot in self.down:
            return
        driver = self.till.devices[slot]
        if not hasattr(driver, "open") or str(getattr(driver, "url", "")).startswith("emu://"):
            return  # an in-process peer or a link with its own reconnection (the wallet's HTTP)
        sources = self.till.runtime.sources
        if driver in sources:
            sources.remove(driver)
        self.down[slot] = self.till.clock.now() + RETRY_S
        log.warning("%s is down (%s): trying it again every %.0f s", slot, fault.detail, RETRY_S)
        self.on_change(slot, "down", fault.detail)

    def tick(self) -> None:
        """Try the ports whose time has come (called by the service loop after every step)."""
        now = self.till.clock.now()
        for slot, at in list(self.down.items()):
            if now >= at:
                self._try(slot, now)

    def next_try(self) -> float | None:
        return min(self.down.values(), default=None)

    def _try(self, slot: str, now: float) -> None:
        driver = self.till.devices[slot]
        try:
            probe = open_port(driver.url, baudrate=int(driver.profile["serial"]["baud"]), timeout=0)
        except (OSError, ValueError) as exc:  # still not there (serial.SerialException is an OSError)
            self.down[slot] = now + RETRY_S
            log.debug("%s still down: %s", slot, exc)
            return
        probe.close()
        try:
            driver.close()
            driver.open()
        except (OSError, ValueError) as exc:
            self.down[slot] = now + RETRY_S
            log.warning("%s: the port came back but would not open: %s", slot, exc)
            return
        del self.down[slot]
        self.till.runtime.sources.append(driver)
        log.warning("%s is back on %s", slot, driver.url)
        self.on_change(slot, "up", str(driver.url))
