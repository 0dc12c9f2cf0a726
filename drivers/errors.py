"""One exception root for the driver layer (house rule 6).

Exceptions are for bugs and for a peer that breaks the protocol; device *conditions*
(paper out, card removed) are events, never exceptions.
"""

from __future__ import annotations

__all__ = [
    "DriverError",
    "FrameError",
    "LocalProtocolError",
    "PortError",
    "ProtocolError",
    "RemoteProtocolError",
]


class DriverError(Exception):
    """Root of everything the driver layer raises."""


class PortError(DriverError, OSError):
    """The transport failed: the port cannot be opened, read or written."""


class ProtocolError(DriverError, ValueError):
    """Bytes or events that break a wire protocol."""


class LocalProtocolError(ProtocolError):
    """We were asked to send something the protocol does not allow (a bug on our side)."""


class RemoteProtocolError(ProtocolError):
    """The peer sent something the protocol does not allow."""


class FrameError(RemoteProtocolError):
    """A frame on the wire is malformed: bad length, bad check byte, oversize."""
