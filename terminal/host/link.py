"""What the checkout needs of the acquirer link (drivers/acquirer/driver.py is the real one)."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Protocol

from drivers.acquirer.events import HostMessage
from drivers.acquirer.spec import WorkingKeys
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
    # Keys and MAC (drivers/acquirer/driver.py): the link MACs with the keys of the last sign-on,
    # and says when the host wants a new one (A0, or an answer that failed its MAC).
    def use_keys(self, keys: WorkingKeys | None) -> None: ...
    @property
    def needs_sign_on(self) -> bool: ...
