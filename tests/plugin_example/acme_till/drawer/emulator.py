"""An emulated ACME cash drawer: a real peer (emulator.base.Emulator) behind the drawer codec.

`ESC p t` opens it (unless jammed: then it says so); a person shuts it (`close` on the control
line, or `shut()`); every sensor change is pushed as a status byte, as the real drawer does.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from drivers.errors import RemoteProtocolError
from drivers.events import Role
from emulator.base import Emulator

from . import events as ev
from .codec import DrawerCodec

__all__ = ["DrawerEmulator"]


class DrawerEmulator(Emulator):
    CONTROL = "acme_till.drawer.control"  # its control vocabulary (emulator/control.py)
    FAULTS = ("jam",)

    def __init__(self, profile: Mapping[str, Any]) -> None:
        self.profile = profile
        self._codec = DrawerCodec(Role.DEVICE, profile)
        self._outbox = bytearray()
        self.is_open = False
        self.jammed = False
        self.opened = 0  # times the solenoid opened it
        self.pulses: list[int] = []  # pulse length of every open command, ms
        self.garbage = 0  # bytes that were no command

    # -- Peer ------------------------------------------------------------------------------------
    def receive(self, data: bytes) -> None:
        self._codec.receive_data(data)
        while True:
            try:
                command = self._codec.next_event()
            except RemoteProtocolError:
                self.garbage += 1
                continue
            if command is None:
                return
            if isinstance(command, ev.OpenDrawer):
                self.pulses.append(command.pulse_ms)
                if not self.jammed and not self.is_open:
                    self.is_open = True
                    self.opened += 1
                self._push()
            elif isinstance(command, ev.RequestStatus):
                self._push()

    def transmit(self) -> bytes:
        out = bytes(self._outbox)
        self._outbox.clear()
        return out

    def advance(self, seconds: float) -> None:
        """Time means nothing to a drawer."""

    def status(self) -> str:
        return f"{'open' if self.is_open else 'closed'}{' jammed' if self.jammed else ''} opened={self.opened}"

    def set_fault(self, name: str, /, *args: Any, **options: Any) -> None:
        if name not in self.FAULTS or args or options:
            raise ValueError(f"faults: {', '.join(self.FAULTS)} (no options)")
        self._set_jammed(True)

    def clear_faults(self) -> None:
        self._set_jammed(False)

    # -- what a person does ----------------------------------------------------------------------
    def shut(self) -> None:
        if self.is_open:
            self.is_open = False
            self._push()

    def _set_jammed(self, jammed: bool) -> None:
        if self.jammed != jammed:
            self.jammed = jammed
            self._push()

    def _push(self) -> None:
        self._outbox += self._codec.send(ev.DrawerStatus(open=self.is_open, jammed=self.jammed))
