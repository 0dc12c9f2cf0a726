"""Serve an emulator on a real wire: a pseudo-terminal or a TCP socket.

One thread per link moves bytes between the wire and the peer, and paces what the device sends
to the profile's line rate: a pty ignores baud (4,000 bytes "at 9600" arrive in 0.2 ms), so the
emulator throttles itself at 10 bits/char for 8N1 and 11 for 8O1, as a real UART would.
Waiting is done in select() on the wire and a wake-up pipe, never with sleep.

A peer whose `hard_disconnect` is true has lost its port (a USB cable pulled): the link hangs up
— a pty's master is closed (the driver's next read or write fails: a disconnect), a TCP
connection is reset and new ones refused — and serves again, on a new pty, once it is false.
"""

from __future__ import annotations

import contextlib
import os
import select
import socket
import struct
import threading
import time
import tty
from collections.abc import Callable
from typing import Any, TypeVar

from drivers.transport import Peer, join_host_port, listen_tcp

__all__ = ["Link", "PtyLink", "TcpLink", "active_links", "bits_per_char"]

T = TypeVar("T")
_TICK = 0.02  # how often an idle link asks the peer for unsolicited output (ASB, timed events)
_SLICE = 0.005  # inbound pacing: the line time of bytes taken off the wire at once
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
        self._out = bytearray()  # from the peer, not on the line yet
        self._on_line = b""  # outbound pacing: bytes on their way to the host
        self._out_at = 0.0  # when the last bit of _on_line reaches the host
        self._in = b""  # read off the wire, not delivered yet (inbound pacing)
        self._deliver_at = 0.0  # when the last bit of _in would have arrived on a real line
        self._tick: Callable[[float], object] | None = getattr(peer, "advance", None)  # emulator/base.py
        # How many more bytes the peer can take without losing any (None: no limit); only a link
        # that can push back (TCP: its window) asks, and reads no more than that.
        self._room: Callable[[], int | None] | None = None
        self._hung_up = False  # the peer's port is gone (hard_disconnect): nothing moves
        self._plug = threading.Condition()  # control() waits until the loop has followed the plug
        self._plug_asked = self._plug_seen = 0
        self._last_tick = time.monotonic()

    @property
    def endpoint(self) -> str:
        raise NotImplementedError

    def control(self, action: Callable[[Peer], T]) -> T:
        """Run `action(peer)` under the link's lock (present a card, set a fault)."""
        with self._lock:
            result = action(self.peer)
        with self._plug:
            self._plug_asked += 1
            asked = self._plug_asked
        os.write(self._wake_w, b"!")
        if self._thread is not None and self._thread.is_alive() and threading.current_thread() is not self._thread:
            with self._plug:  # a hang-up or a new pty is in place when control() returns
                self._plug.wait_for(lambda: self._plug_seen >= asked or self._stopping, timeout=5)
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

    def _read_wire(self, size: int) -> bytes | None:
        """Up to `size` bytes from the host; None when the other end went away."""
        raise NotImplementedError

    def _write_wire(self, data: bytes) -> int:
        raise NotImplementedError

    def _accept(self) -> None:
        """TCP only: a listener became readable."""

    def _listen_fd(self) -> int | None:
        return None

    def _release(self) -> None:
        raise NotImplementedError

    def _hang_up(self) -> None:
        """The port goes away (the peer's hard disconnect)."""

    def _plug_in(self) -> None:
        """The port is back after a hang-up."""

    def _gone(self) -> bool:
        """The peer's port has gone (call under the lock): the peer is not to be called."""
        return bool(getattr(self.peer, "hard_disconnect", False))

    def _follow_plug(self) -> None:
        with self._lock:
            hard = self._gone()
        if hard != self._hung_up:
            self._hung_up = hard
            self._out.clear()
            self._on_line = self._in = b""
            if hard:
                self._hang_up()
            else:
                self._plug_in()

    # -- the loop ----------------------------------------------------------------------------
    def _serve(self) -> None:
        while not self._stopping:
            with self._plug:
                asked = self._plug_asked
            self._follow_plug()
            with self._plug:
                self._plug_seen = asked
                self._plug.notify_all()
            wire = self._wire_fd()
            listen = self._listen_fd()
            # While a paced chunk is on its way, the wire is not read: the line is busy; nor while the
            # peer's buffer is full on a link that pushes back (the bytes wait in the kernel).
            if self._in or self._full():
                wire = None
            fds = [self._wake_r] + [fd for fd in (wire, listen) if fd is not None]
            now = time.monotonic()
            timeout = _TICK
            if self._out and not self._on_line:
                timeout = 0.0
            if self._on_line:
                timeout = max(0.0, min(timeout, self._out_at - now))
            if self._in:
                timeout = max(0.0, min(timeout, self._deliver_at - now))
            readable, _, _ = select.select(fds, [], [], timeout)
            if self._wake_r in readable:
                os.read(self._wake_r, 64)
            if listen is not None and listen in readable:
                self._accept()
                continue
            if wire is not None and wire in readable:
                self._take_in()
            now = time.monotonic()
            with self._lock:
                if self._tick is not None:
                    self._tick(now - self._last_tick)
                    self._last_tick = now
                if self._hung_up or self._gone():  # (a hang-up set since the loop's top: next turn)
                    continue
                if self._in and now >= self._deliver_at:
                    data, self._in = self._in, b""
                    self.peer.receive(data)
                self._out += self.peer.transmit()
            if self._wire_fd() is None:
                self._out.clear()  # nobody listening: a real device's bytes fall on the floor
                self._on_line = self._in = b""
            self._pace_out()

    def _full(self) -> bool:
        if self._room is None:
            return False
        with self._lock:
            return self._room() == 0

    def _take_in(self) -> None:
        """Read what the line could carry in one slice; unpaced, whatever is there; never more than
        the peer has room for on a link that pushes back."""
        size = max(1, int(_SLICE / self._byte_time)) if self._byte_time else 4096
        if self._room is not None:
            with self._lock:
                room = self._room()
            if room is not None:
                size = max(1, min(size, room))
        data = self._read_wire(size)
        if not data:
            return
        if not self._byte_time:
            with self._lock:
                if not self._gone():
                    self.peer.receive(data)
            return
        now = time.monotonic()
        # Bytes already waiting when the last chunk landed follow it back to back on the line.
        start = self._deliver_at if now - self._deliver_at < _SLICE else now
        self._in = data
        self._deliver_at = start + len(data) * self._byte_time

    def _pace_out(self) -> None:
        """Put the device's bytes on the wire when their last bit would have reached the host."""
        now = time.monotonic()
        if not self._on_line and self._out:  # the next slice goes on the line
            size = max(1, int(_SLICE / self._byte_time)) if self._byte_time else len(self._out)
            self._on_line, self._out = bytes(self._out[:size]), self._out[size:]
            start = self._out_at if now - self._out_at < _SLICE else now
            self._out_at = start + len(self._on_line) * self._byte_time
        if not self._on_line or now < self._out_at:
            return
        try:
            sent = self._write_wire(self._on_line)
        except OSError:
            sent = len(self._on_line)  # the host vanished mid-write; what a device does: keep going
        self._on_line = self._on_line[sent:]
        if self._on_line and not sent:
            self._out_at = now + _SLICE  # a full kernel buffer: try again a little later


class PtyLink(Link):
    """The emulator holds the master side; `endpoint` is the slave path a driver opens."""

    def __init__(self, peer: Peer, **kwargs: Any) -> None:
        super().__init__(peer, **kwargs)
        self._open()

    def _open(self) -> None:
        self._master, self._slave = os.openpty()
        tty.setraw(self._master)
        tty.setraw(self._slave)
        self._path = os.ttyname(self._slave)
        # Keeping our own slave fd open means the master never sees EIO when a driver closes.

    @property
    def endpoint(self) -> str:
        return self._path

    def _wire_fd(self) -> int | None:
        return None if self._hung_up else self._master

    def _hang_up(self) -> None:
        self._release()  # the driver's side reads EIO / a hang-up: the port is gone

    def _plug_in(self) -> None:
        self._open()  # a new pty: `endpoint` names it (a replugged USB adapter may change name too)

    def _read_wire(self, size: int) -> bytes | None:
        try:
            return os.read(self._master, size)
        except OSError:
            return None

    def _write_wire(self, data: bytes) -> int:
        return os.write(self._master, data)

    def _release(self) -> None:
        for fd in (self._master, self._slave):
            if fd >= 0:
                with contextlib.suppress(OSError):
                    os.close(fd)
        self._master = self._slave = -1  # never close a number the process may have reused


class TcpLink(Link):
    """Listens on host:port (0 = ephemeral); serves one host connection at a time.

    A network device never drops what the host sends: when the peer's buffer is full (its
    `receive_room()` is 0) the link stops reading, and the kernel's TCP window pushes back on the
    sender. A peer with `on_network()` is told it is served over TCP (a printer then sends no
    XON/XOFF unless its profile says so)."""

    def __init__(self, peer: Peer, *, host: str = "127.0.0.1", port: int = 0, **kwargs: Any) -> None:
        super().__init__(peer, **kwargs)
        self._room = getattr(peer, "receive_room", None)
        on_network = getattr(peer, "on_network", None)
        if on_network is not None:
            on_network()
        self._listener = listen_tcp(host, port)
        self._conn: socket.socket | None = None

    @property
    def endpoint(self) -> str:
        host, port = self._listener.getsockname()[:2]
        return f"socket://{join_host_port(host, port)}"

    def _listen_fd(self) -> int | None:
        return self._listener.fileno() if self._conn is None else None

    def _accept(self) -> None:
        conn, _ = self._listener.accept()
        if self._hung_up:  # no device behind the port: refused
            _reset(conn)
            return
        self._conn = conn

    def _hang_up(self) -> None:
        if self._conn is not None:
            _reset(self._conn)
            self._conn = None

    def _wire_fd(self) -> int | None:
        return self._conn.fileno() if self._conn is not None else None

    def _read_wire(self, size: int) -> bytes | None:
        assert self._conn is not None
        try:
            data = self._conn.recv(size)
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


def _reset(conn: socket.socket) -> None:
    """Close with a RST, as a device that lost power does: the host sees ECONNRESET, not EOF."""
    with contextlib.suppress(OSError):
        conn.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
    conn.close()
