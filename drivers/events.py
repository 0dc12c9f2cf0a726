"""What every device family shares, sans-I/O: codec roles, the event base class and faults.

Codecs and event modules import this, never drivers/base.py (which pulls in pyserial).
"""

from __future__ import annotations

import enum

from drivers.record import Record

__all__ = ["DeviceEvent", "DeviceFault", "FaultKind", "Role"]


class Role(enum.Enum):
    """Which end of the wire a codec speaks for (h11's `our_role`)."""

    HOST = "host"  # the terminal: used by drivers
    DEVICE = "device"  # the peripheral: used by emulators


class DeviceEvent(Record):
    """Base of every event a driver reports to the terminal."""


class FaultKind(enum.Enum):
    NO_ANSWER = "no-answer"
    DISCONNECTED = "disconnected"
    PROTOCOL = "protocol"
    DEVICE = "device"


class DeviceFault(DeviceEvent):
    """A transport failure or protocol violation, reported as a fact, not raised."""

    device: str
    kind: FaultKind
    detail: str
    blocking: bool = True
