"""The one shape every device emulator has: a transport peer with virtual time, faults and a status line.

    peer.receive(data)          bytes from the host arrive (drivers.transport.Peer)
    peer.transmit() -> bytes    what the device has to send now (b"" when nothing)
    peer.advance(seconds)       emulated time passes: timers fall due, a print head moves
    peer.status() -> str        one line describing the device's state (the `status` control word)
    peer.set_fault(name, **kw)  one of the class's FAULTS starts; `kw` are that fault's options
    peer.clear_faults()         every fault ends
    peer.close()                the host closed the port

Class attributes: `CONTROL` names the module of the family's control vocabulary (its `COMMANDS`,
run by emulator/control.py `apply`), `FAULTS` the fault names `set_fault` knows, and
`follows_till_clock` says whether the emulated world advances the peer on the till's clock
(sim/wiring.py; a served link, emulator/link.py, advances every peer with real elapsed time).

Emulators have no clock of their own: time passes only through `advance`, so a test on a FakeClock
decides exactly when a slow card answers or a hot print head has cooled.
"""

from __future__ import annotations

import abc
from typing import Any, ClassVar

__all__ = ["Emulator"]


class Emulator(abc.ABC):
    """Base of every device emulator (emulator/<family>/emulator.py)."""

    CONTROL: ClassVar[str]  # "emulator.<family>.control": the module whose COMMANDS drive it
    FAULTS: ClassVar[tuple[str, ...]]  # what set_fault() accepts
    follows_till_clock: ClassVar[bool] = False
    closed: bool = False

    @abc.abstractmethod
    def receive(self, data: bytes) -> None:
        """Bytes from the host arrive at the device."""

    @abc.abstractmethod
    def transmit(self) -> bytes:
        """Drain the bytes the device has to send now (b"" when it has nothing)."""

    @abc.abstractmethod
    def advance(self, seconds: float) -> None:
        """Let `seconds` of emulated time pass; whatever falls due happens, in order."""

    @abc.abstractmethod
    def status(self) -> str:
        """One line for an operator: the device's state and its faults (no newline)."""

    # `*args` keeps every family free to declare its own keyword options (mypy accepts any
    # override of an `*args: Any, **kwargs: Any` signature); no family takes positional options.
    @abc.abstractmethod
    def set_fault(self, name: str, /, *args: Any, **options: Any) -> None:
        """Start fault `name` (one of FAULTS): ValueError for an unknown name or a bad option."""

    @abc.abstractmethod
    def clear_faults(self) -> None:
        """Every fault ends, pending ones included."""

    def close(self) -> None:
        """The host closed the port."""
        self.closed = True
