"""The shape every device family's codec has (h11's `Connection`): one class, two roles, no I/O.

    codec = FamilyCodec(Role.HOST, profile)      # the driver's end; Role.DEVICE is the emulator's
    wire = codec.send(event)                     # an event out -> the bytes to write
    codec.receive_data(chunk)                    # bytes in, any split, any size
    while (event := codec.next_event()) is not None:
        ...                                      # None: more bytes are needed
    wire = codec.data_to_send()                  # what the codec itself owes the peer (ACK/NAK,
                                                 # resends, EOT); b"" for families without any

The constructor takes the role and ONE settings object: the family's validated firmware profile
mapping (`terminal.devices.load_device_profile`), from which the codec reads the few keys that
shape the wire (the printer's power-on text mode, the card reader's `[link]` table). None means
the family's defaults. Every family follows it, so the registry, the layer test and a new
family's author need to know one shape; tests/unit/test_codec_shape.py holds every registry
row to it.

A malformed input raises a `drivers.errors.ProtocolError` from `next_event()` after the codec has
resynchronised where the protocol allows it; sending what our role may not send raises
`LocalProtocolError`. Sans-I/O: this module (like every codec.py) imports no serial, socket,
threading, time, terminal or emulator.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, Protocol, TypeVar, runtime_checkable

from drivers.events import Role

__all__ = ["Codec", "CodecSettings"]

CodecSettings = Mapping[str, Any] | None  # a validated firmware profile, or None for the defaults

_Out = TypeVar("_Out", contravariant=True)  # what this end sends
_In = TypeVar("_In", covariant=True)  # what this end decodes


@runtime_checkable
class Codec(Protocol[_Out, _In]):
    """One end of one device link. `_Out` is what this end sends, `_In` what `next_event` yields."""

    role: Role

    def __init__(self, role: Role, settings: CodecSettings = None) -> None: ...

    def send(self, event: _Out, /) -> bytes:
        """The bytes that carry `event`; the caller writes them."""
        ...

    def receive_data(self, data: bytes, /) -> None:
        """Bytes from the peer; decoded lazily by next_event()."""
        ...

    def next_event(self) -> _In | None:
        """The next decoded event, or None when more bytes are needed."""
        ...

    def data_to_send(self) -> bytes:
        """Bytes the codec itself must emit (ACK/NAK, resends, EOT), oldest first; b"" if none."""
        ...
