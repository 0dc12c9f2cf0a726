"""Serve an emulator on a real wire: a pseudo-terminal or a TCP socket.

One thread per link moves bytes between the wire and the peer, and paces what the device sends
to the profile's line rate: a pty ignores baud (4,000 bytes "at 9600" arrive in 0.2 ms), so the
emulator throttles itself at 10 bits/char for 8N1 and 11 for 8O1, as a real UART would.
Waiting is done in select() on the wire and a wake-up pipe, never with sleep.
"""

from __future__ import annotations

import contextlib
import os
import select
import socket
import threading
import time
import tty
from collections.abc import Callable
from typing import Any, TypeVar

from drivers.transport import Peer

__all__ = ["Link", "PtyLink", "TcpLink", "active_links", "bits_per_char"]

T = TypeVar("T")
_TICK = 0.02  # how often an idle link asks the peer for unsolicited output (ASB, timed events)
_active: set[Link] = set()
_active_lock = threading.Lock()


def active_links() -> list[Link]:
    """Links still serving (the test suite fails a test that leaves one behind)."""
    with _active_lock:
        return list(_active)


def bits_per_char(framing: str) -> int:
    """'8N1' -> 10, '8O1' -> 11, '7E2' -> 11: start bit + data + parity + stop bits."""
    if len(framing) != 3 or not framing[0].isdigit() or framing[1] not in "NOEMS" or framing[2] not in "12":
        raise ValueError(f"unknown serial framing {framing!r} (like 8N1)")
    return 1 + int(framing[0]) + (framing[1] != "N") + int(framing[2])


class Link:
    """Moves bytes between one wire endpoint and a Peer on a background thread."""

    def __init__(self, peer: Peer, *, baud: int | None = None, framing: str = "8N1") -> None:
        self.peer = peer
        self._byte_time = bits_per_char(framing) / baud if baud else 0.0
        self._lock = threading.Lock()
        self._wake_r, self._wake_w = os.pipe()
        self._thread: threading.Thread | None = None
        self._stopping = False
        self._out = bytearray()
        self._next_send = 0.0

    @property
    def endpoint(self) -> str:
        raise NotImplementedError

    def control(self, action: Callable[[Peer], T]) -> T:
        """Run `action(peer)` under the link's lock (present a card, set a fault)."""
        with self._lock:
            result = action(self.peer)
        os.write(self._wake_w, b"!")
        return result

    def start(self) -> Link:
        self._thread = threading.Thread(target=self._serve, name=f"link {self.endpoint}", daemon=True)
        with _active_lock:
            _active.add(self)
        self._thread.start()
        return self

    def stop(self) -> None:
        self._stopping = True
        os.write(self._wake_w, b"x")
        if self._thread is not None:
            self._thread.join(timeout=5)
        self._release()
        for fd in (self._wake_r, self._wake_w):
            os.close(fd)
        with self._lock:
            self.peer.close()
        with _active_lock:
            _active.discard(self)

    def __enter__(self) -> Link:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    # -- subclass hooks ----------------------------------------------------------------------
    def _wire_fd(self) -> int | None:
        raise NotImplementedError

    def _read_wire(self) -> bytes | None:
        """Bytes from the host; None when the other end went away."""
        raise NotImplementedError

    def _write_wire(self, data: bytes) -> int:
        raise NotImplementedError

    def _accept(self) -> None:
        """TCP only: a listener became readable."""

    def _listen_fd(self) -> int | None:
        return None

    def _release(self) -> None:
        raise NotImplementedError

    # -- the loop ----------------------------------------------------------------------------
    def _serve(self) -> None:
        while not self._stopping:
            wire = self._wire_fd()
            fds = [self._wake_r] + [fd for fd in (wire, self._listen_fd()) if fd is not None]
            timeout = _TICK
            if self._out:
                timeout = max(0.0, min(timeout, self._next_send - time.monotonic()))
            readable, _, _ = select.select(fds, [], [], timeout)
            if self._wake_r in readable:
                os.read(self._wake_r, 64)
            if self._listen_fd() in readable:
                self._accept()
                continue
            if wire is not None and wire in readable:
                data = self._read_wire()
                if data:
                    with self._lock:
                        self.peer.receive(data)
            with self._lock:
                self._out += self.peer.transmit()
            if self._wire_fd() is None:
                self._out.clear()  # nobody listening: a real device's bytes fall on the floor
            self._pace_out()

    def _pace_out(self) -> None:
        now = time.monotonic()
        if not self._out or now < self._next_send:
            return
        # Send what the line could have carried since the last chunk, at most one tick's worth.
        budget = len(self._out) if not self._byte_time else max(1, int(_TICK / self._byte_time))
        chunk = bytes(self._out[:budget])
        try:
            sent = self._write_wire(chunk)
        except OSError:
            sent = len(chunk)  # the host vanished mid-write; what a device does: keep going
        del self._out[:sent]
        self._next_send = max(now, self._next_send) + sent * self._byte_time


class PtyLink(Link):
    """The emulator holds the master side; `endpoint` is the slave path a driver opens."""

    def __init__(self, peer: Peer, **kwargs: Any) -> None:
        super().__init__(peer, **kwargs)
        self._master, self._slave = os.openpty()
        tty.setraw(self._master)
        tty.setraw(self._slave)
        self._path = os.ttyname(self._slave)
        # Keeping our own slave fd open means the master never sees EIO when a driver closes.

    @property
    def endpoint(self) -> str:
        return self._path

    def _wire_fd(self) -> int | None:
        return self._master

    def _read_wire(self) -> bytes | None:
        try:
            return os.read(self._master, 4096)
        except OSError:
            return None

    def _write_wire(self, data: bytes) -> int:
        return os.write(self._master, data)

    def _release(self) -> None:
        for fd in (self._master, self._slave):
            with contextlib.suppress(OSError):
                os.close(fd)


class TcpLink(Link):
    """Listens on host:port (0 = ephemeral); serves one host connection at a time."""

    def __init__(self, peer: Peer, *, host: str = "127.0.0.1", port: int = 0, **kwargs: Any) -> None:
        super().__init__(peer, **kwargs)
        self._listener = socket.create_server((host, port))
        self._conn: socket.socket | None = None

    @property
    def endpoint(self) -> str:
        host, port = self._listener.getsockname()[:2]
        return f"socket://{host}:{port}"

    def _listen_fd(self) -> int | None:
        return self._listener.fileno() if self._conn is None else None

    def _accept(self) -> None:
        self._conn, _ = self._listener.accept()

    def _wire_fd(self) -> int | None:
        return self._conn.fileno() if self._conn is not None else None

    def _read_wire(self) -> bytes | None:
        assert self._conn is not None
        try:
            data = self._conn.recv(4096)
        except OSError:
            data = b""
        if not data:
            self._conn.close()
            self._conn = None
            return None
        return data

    def _write_wire(self, data: bytes) -> int:
        assert self._conn is not None
        return self._conn.send(data)

    def _release(self) -> None:
        if self._conn is not None:
            self._conn.close()
        self._listener.close()
