"""Cash drawer events, sans-I/O: commands the till sends, replies the drawer sends, and the
facts the driver reports to the checkout."""

from __future__ import annotations

from drivers.events import DeviceEvent
from drivers.record import Record

__all__ = [
    "DrawerClosed", "DrawerCommand", "DrawerJammed", "DrawerOpened", "DrawerReply", "DrawerStatus", "OpenDrawer",
    "RequestStatus",
]


class DrawerCommand(Record):
    """Host -> drawer."""


class OpenDrawer(DrawerCommand):
    """Fire the solenoid for `pulse_ms` (10..2550 ms, in 10 ms steps on the wire)."""

    pulse_ms: int = 100


class RequestStatus(DrawerCommand):
    """Ask whether the drawer is open."""


class DrawerReply(Record):
    """Drawer -> host."""


class DrawerStatus(DrawerReply):
    """The drawer's sensors; sent when asked and whenever they change."""

    open: bool
    jammed: bool = False


class DrawerOpened(DeviceEvent):
    """The drawer is open (the till opened it, or it was opened by key)."""


class DrawerClosed(DeviceEvent):
    """Someone shut the drawer."""


class DrawerJammed(DeviceEvent):
    """The solenoid fired and the drawer did not open."""
