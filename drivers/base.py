"""The Driver base class: owns one port, opened by URL. Shared events live in drivers/events.py."""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Mapping
from typing import Any, ClassVar, Self

import serial

from drivers.errors import PortError
from drivers.events import DeviceEvent, DeviceFault, FaultKind, Role
from drivers.transport import open_port

__all__ = ["DeviceEvent", "DeviceFault", "Driver", "FaultKind", "Role"]


class Driver(ABC):
    """Owns one port. `poll()` never blocks; request/answer helpers block at most `timeout`.

    Subclasses add the family's commands. Drivers are created by URL, so the same class talks
    to a real device, a pty served by an emulator, a TCP socket or an in-process emu:// peer.
    """

    family: ClassVar[str]

    def __init__(self, url: str, profile: Mapping[str, Any], *, timeout: float = 1.0) -> None:
        self.url = url
        self.profile = profile
        self.timeout = timeout
        self._port: serial.SerialBase | None = None

    # -- lifecycle -------------------------------------------------------------------------
    def open(self) -> None:
        if self._port is None:
            self._port = open_port(self.url, baudrate=int(self.profile["serial"]["baud"]), timeout=0)

    def close(self) -> None:
        port, self._port = self._port, None
        if port is not None:
            port.close()

    def __enter__(self) -> Self:
        self.open()
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    @property
    def port(self) -> serial.SerialBase:
        if self._port is None:
            raise PortError(f"{self.family} driver is not open ({self.url})")
        return self._port

    def fileno(self) -> int | None:
        """A descriptor the runtime can select() on, or None (emu:// peers are synchronous)."""
        try:
            return int(self.port.fileno())
        except (AttributeError, OSError, ValueError, TypeError):
            return None

    # -- I/O helpers -----------------------------------------------------------------------
    def _write(self, data: bytes) -> None:
        port = self.port
        try:
            port.write(data)
            port.flush()
        except (serial.SerialException, OSError) as exc:
            raise PortError(f"{self.family}: write failed: {exc}") from exc

    def _read_available(self, wait: float = 0.0) -> bytes:
        """Bytes that have arrived; waits up to `wait` seconds for the first one (0 = never)."""
        port = self.port
        try:
            if port.timeout != wait:  # setting it reconfigures the port: only when it changes
                port.timeout = wait
            first = bytes(port.read(1))
            if not first:
                return b""
            if port.timeout != 0:
                port.timeout = 0
            return first + bytes(port.read(port.in_waiting or 0))
        except (serial.SerialException, OSError) as exc:
            raise PortError(f"{self.family}: read failed: {exc}") from exc

    @abstractmethod
    def poll(self) -> list[DeviceEvent]:
        """Decode whatever the device has sent; never blocks."""
