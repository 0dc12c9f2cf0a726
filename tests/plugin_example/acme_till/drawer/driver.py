"""The cash drawer driver: open it, ask its status, report what its sensors say (polled, never
blocking: `poll()` turns the drawer's unasked status bytes into DrawerOpened / DrawerClosed)."""

from __future__ import annotations

import time
from collections.abc import Mapping
from typing import Any

from drivers.base import DeviceEvent, DeviceFault, Driver, FaultKind, Role
from drivers.errors import PortError, RemoteProtocolError

from . import events as ev
from .codec import DrawerCodec

__all__ = ["DrawerDriver"]


class DrawerDriver(Driver):
    family = "cash_drawer"

    def __init__(self, url: str, profile: Mapping[str, Any], *, timeout: float = 1.0) -> None:
        super().__init__(url, profile, timeout=timeout)
        self._codec = DrawerCodec(Role.HOST, profile)
        self.pulse_ms = int(profile["pulse_ms"])
        self.last: ev.DrawerStatus | None = None
        self._pending: list[DeviceEvent] = []

    def open_drawer(self) -> None:
        """Fire the solenoid; the drawer's status byte (DrawerOpened or DrawerJammed) comes through poll()."""
        try:
            self._write(self._codec.send(ev.OpenDrawer(pulse_ms=self.pulse_ms)))
        except PortError as exc:
            self._pending.append(self._fault(FaultKind.DISCONNECTED, str(exc)))

    def status(self) -> ev.DrawerStatus | DeviceFault:
        """Ask, and wait up to `timeout` for the answer (unasked bytes on the way still count)."""
        _ = self.port
        try:
            self._take(self._read_available(0))
            seen = self.last
            self._write(self._codec.send(ev.RequestStatus()))
            deadline = time.monotonic() + self.timeout
            while self.last is seen:
                remaining = deadline - time.monotonic()
                data = self._read_available(remaining) if remaining > 0 else b""
                if not data:
                    return self._fault(FaultKind.NO_ANSWER, f"no status within {self.timeout:g} s")
                self._take(data)
        except RemoteProtocolError as exc:
            return self._fault(FaultKind.PROTOCOL, str(exc))
        except PortError as exc:
            return self._fault(FaultKind.DISCONNECTED, str(exc))
        assert self.last is not None
        return self.last

    def poll(self) -> list[DeviceEvent]:
        try:
            self._take(self._read_available(0))
        except RemoteProtocolError as exc:
            self._pending.append(self._fault(FaultKind.PROTOCOL, str(exc), blocking=False))
        except PortError as exc:
            self._pending.append(self._fault(FaultKind.DISCONNECTED, str(exc)))
        events, self._pending = self._pending, []
        return events

    def _take(self, data: bytes) -> None:
        self._codec.receive_data(data)
        while (reply := self._codec.next_event()) is not None:
            if not isinstance(reply, ev.DrawerStatus):
                continue
            before, self.last = self.last, reply
            if before is None or (before.open, before.jammed) != (reply.open, reply.jammed):
                if reply.jammed:
                    self._pending.append(ev.DrawerJammed())
                elif before is not None or reply.open:
                    self._pending.append(ev.DrawerOpened() if reply.open else ev.DrawerClosed())

    def _fault(self, kind: FaultKind, detail: str, *, blocking: bool = True) -> DeviceFault:
        return DeviceFault(device=self.family, kind=kind, detail=detail, blocking=blocking)
