"""`emu://` — a synchronous in-process link to an emulator peer (see drivers/transport.py)."""

from __future__ import annotations

from typing import Any

from serial.serialutil import PortNotOpenError, SerialBase

from drivers.transport import Peer, resolve_peer

__all__ = ["Serial"]


class Serial(SerialBase):  # type: ignore[misc]
    """Writes reach the peer immediately; reads never block (the peer cannot speak on its own)."""

    def open(self) -> None:
        if self._port is None:
            raise ValueError("emu:// needs a URL")
        self._peer: Peer
        self._peer, self._owns_peer = resolve_peer(str(self._port))
        self._rx = bytearray()
        self.is_open = True

    def close(self) -> None:
        if self.is_open:
            self.is_open = False
            if self._owns_peer:
                self._peer.close()

    def _reconfigure_port(self, *args: Any, **kwargs: Any) -> None:
        """Baud and framing mean nothing in process."""

    def _pull(self) -> None:
        if not self.is_open:
            raise PortNotOpenError()
        self._rx += self._peer.transmit()

    @property
    def in_waiting(self) -> int:
        self._pull()
        return len(self._rx)

    def read(self, size: int = 1) -> bytes:
        self._pull()
        data = bytes(self._rx[:size])
        del self._rx[:size]
        return data

    def write(self, data: bytes) -> int:
        if not self.is_open:
            raise PortNotOpenError()
        self._peer.receive(bytes(data))
        return len(data)

    def takes_any(self) -> bool:
        """The peer takes any number of bytes now as it would take them a few at a time (its own
        `takes_any()`; False for a peer that does not say): a driver may then write them at once."""
        takes_any = getattr(self._peer, "takes_any", None)
        return takes_any is not None and bool(takes_any())

    def reset_input_buffer(self) -> None:
        self._pull()
        self._rx.clear()

    def reset_output_buffer(self) -> None:
        """Nothing is ever buffered on the way out."""

    def flush(self) -> None:
        """Writes are delivered synchronously."""
