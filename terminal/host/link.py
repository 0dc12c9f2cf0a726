"""What the checkout needs of the acquirer link (drivers/acquirer/driver.py is the real one)."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Protocol

from drivers.acquirer.events import HostMessage
from drivers.events import DeviceFault

__all__ = ["HostLink"]


class HostLink(Protocol):
    """Failures are facts: `connect()` and `send()` return a DeviceFault instead of raising."""

    @property
    def connected(self) -> bool: ...
    def connect(self) -> DeviceFault | None: ...
    def send(self, msg: HostMessage) -> DeviceFault | None: ...
    def poll(self) -> Sequence[object]: ...
    def fileno(self) -> int | None: ...
    def expecting(self) -> bool: ...
    def close(self) -> None: ...
