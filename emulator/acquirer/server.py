"""A small TCP reactor for the acquirer simulator: one `selectors` loop on one background thread.

It accepts connections, frames ISO 8583 with the shared codec (Role.DEVICE), hands each decoded
request to `on_message(conn, message)` on the loop thread, and sends what it is given. Timers
(`call_later`) are the selector's timeout, so a delayed answer needs no sleeping thread; other
threads reach the loop with `call_in_loop`, woken by a socketpair (which also stops it).
"""

from __future__ import annotations

import contextlib
import errno
import heapq
import itertools
import logging
import os
import selectors
import socket
import threading
import time
from collections.abc import Callable
from typing import Final, TypeVar

from drivers.acquirer.codec import AcquirerCodec
from drivers.acquirer.events import HostMessage
from drivers.errors import ProtocolError
from drivers.events import Role
from drivers.transport import listen_tcp

__all__ = ["Connection", "Reactor"]

log = logging.getLogger("emulator.acquirer.simulator")

T = TypeVar("T")
_RECV_SIZE: Final = 4096
_JOIN_TIMEOUT: Final = 10.0  # a bound on a bug, not a wait: the loop answers a wake at once
_ACCEPT: Final = object()
# accept() failing for want of a descriptor or memory: the connection waits in the backlog, so
# the listener stays readable; it is accepted on the spare descriptor and closed (refused).
_OUT_OF_RESOURCES: Final = frozenset({errno.EMFILE, errno.ENFILE, errno.ENOBUFS, errno.ENOMEM})
_REFUSAL_LOG_EVERY: Final = 100  # say so on the first refusal of a shortage, then every 100th
_WAKE: Final = object()


class Connection:
    """One terminal's TCP connection, as the loop thread sees it."""

    def __init__(self, sock: socket.socket) -> None:
        self.sock = sock
        self.codec = AcquirerCodec(Role.DEVICE)
        self.outbox = bytearray()
        self.terminal_id: str | None = None  # learnt from DE 41 of its requests
        self.open = True


class Reactor:
    def __init__(
        self, host: str, port: int, *, on_message: Callable[[Connection, HostMessage], None],
        on_error: Callable[[Exception], None],
    ) -> None:
        self.host, self.port = host, port
        self._on_message, self._on_error = on_message, on_error
        self._lock = threading.Lock()
        self._thread: threading.Thread | None = None
        self._listener: socket.socket | None = None
        self._selector: selectors.BaseSelector | None = None
        self._wake_r: socket.socket | None = None
        self._wake_w: socket.socket | None = None
        self._stopping = False
        self.connections: list[Connection] = []  # loop thread only; in accept order, newest last
        self._calls: list[Callable[[], None]] = []
        self._timers: list[tuple[float, int, Callable[[], None]]] = []  # heap by monotonic due time
        self._seq = itertools.count()
        self._spare_fd: int | None = None  # held back so a connection can be refused when none is left
        self.refused = 0  # connections refused for want of a descriptor (loop thread)
        self._short = False  # in a shortage: refusals since the last accepted connection
        self._accept_paused = False  # the listener is unwatched until a descriptor is freed

    # -- lifecycle ----------------------------------------------------------------------------
    @property
    def running(self) -> bool:
        return self._thread is not None

    def start(self) -> None:
        if self._thread is not None:
            raise RuntimeError("the acquirer simulator is already running")
        listener = listen_tcp(self.host, self.port)  # first: an OSError leaks nothing
        selector = selectors.DefaultSelector()
        wake_r, wake_w = socket.socketpair()
        for sock in (listener, wake_r, wake_w):
            sock.setblocking(False)
        selector.register(listener, selectors.EVENT_READ, _ACCEPT)
        selector.register(wake_r, selectors.EVENT_READ, _WAKE)
        self._selector, self._listener, self._wake_r, self._wake_w = selector, listener, wake_r, wake_w
        self._spare_fd = os.open(os.devnull, os.O_RDONLY)
        self._stopping = False
        self._thread = threading.Thread(target=self._serve, name="acquirer-simulator", daemon=True)
        self._thread.start()

    def stop(self) -> None:
        thread, self._thread = self._thread, None
        if thread is None:
            return
        self._stopping = True
        self._wake()
        thread.join(_JOIN_TIMEOUT)
        for sock in (self._wake_r, self._wake_w):
            if sock is not None:
                sock.close()
        self._wake_r = self._wake_w = None
        if thread.is_alive():
            raise RuntimeError("the acquirer simulator thread did not stop")

    @property
    def address(self) -> tuple[str, int]:
        if self._listener is None or self._thread is None:
            raise RuntimeError("the acquirer simulator is not running")
        host, port = self._listener.getsockname()[:2]
        return str(host), int(port)

    # -- reaching the loop --------------------------------------------------------------------
    def call_in_loop(self, fn: Callable[[], T], default: T) -> T:
        """Run `fn` on the loop thread and return its result; `default` when not running."""
        if self._thread is None:
            return default
        done, box = threading.Event(), [default]

        def call() -> None:
            try:
                box[0] = fn()
            finally:
                done.set()

        with self._lock:
            self._calls.append(call)
        self._wake()
        if not done.wait(_JOIN_TIMEOUT):
            raise RuntimeError("the acquirer simulator loop did not run the call")
        return box[0]

    def call_later(self, delay: float, fn: Callable[[], None]) -> None:
        """Run `fn` on the loop thread after `delay` seconds (loop thread or any thread)."""
        with self._lock:
            heapq.heappush(self._timers, (time.monotonic() + delay, next(self._seq), fn))
        if threading.current_thread() is not self._thread:
            self._wake()

    def send(self, conn: Connection, message: HostMessage) -> None:
        """Queue an answer on `conn` and write what the socket takes (loop thread)."""
        conn.outbox += conn.codec.send(message)
        self._flush(conn)

    def drop(self, conn: Connection) -> None:
        """Close a connection (loop thread). Its queued answers are lost, as on a real link."""
        if not conn.open:
            return
        conn.open = False
        self.connections.remove(conn)
        assert self._selector is not None
        self._selector.unregister(conn.sock)
        conn.sock.close()
        if self._accept_paused and self._listener is not None:
            self._accept_paused = False
            if self._spare_fd is None:
                with contextlib.suppress(OSError):
                    self._spare_fd = os.open(os.devnull, os.O_RDONLY)
            self._selector.register(self._listener, selectors.EVENT_READ, _ACCEPT)

    def _wake(self) -> None:
        if self._wake_w is not None:
            with contextlib.suppress(BlockingIOError):  # full of wakes already: the loop will look
                self._wake_w.send(b"\0")

    # -- the loop -----------------------------------------------------------------------------
    def _serve(self) -> None:
        selector = self._selector
        assert selector is not None
        try:
            while not self._stopping:
                events = selector.select(self._next_timeout())
                if self._stopping:
                    return
                for key, mask in events:
                    if key.data is _WAKE:
                        self._drain_wakes()
                    elif key.data is _ACCEPT:
                        self._accept(selector)
                    else:
                        conn: Connection = key.data
                        if conn.open and mask & selectors.EVENT_READ:
                            self._on_readable(conn)
                        if conn.open and mask & selectors.EVENT_WRITE:
                            self._flush(conn)
                self._run_calls()
        finally:
            for conn in list(self.connections):
                self.drop(conn)
            with self._lock:
                calls, self._calls = self._calls, []
                self._timers.clear()
            for call in calls:
                call()  # nothing is served any more, but a waiting caller gets its answer
            if self._listener is not None:
                self._listener.close()
                self._listener = None
            if self._spare_fd is not None:
                os.close(self._spare_fd)
                self._spare_fd = None
            selector.close()

    def _next_timeout(self) -> float | None:
        with self._lock:
            if self._calls:
                return 0.0
            if not self._timers:
                return None
            return max(0.0, self._timers[0][0] - time.monotonic())

    def _run_calls(self) -> None:
        with self._lock:
            calls, self._calls = self._calls, []
            now, due = time.monotonic(), []
            while self._timers and self._timers[0][0] <= now:
                due.append(heapq.heappop(self._timers)[2])
        for call in calls + due:
            call()

    def _drain_wakes(self) -> None:
        assert self._wake_r is not None
        with contextlib.suppress(BlockingIOError, InterruptedError):
            while self._wake_r.recv(_RECV_SIZE):
                pass

    def _accept(self, selector: selectors.BaseSelector) -> None:
        assert self._listener is not None
        try:
            sock, _ = self._listener.accept()
        except (BlockingIOError, InterruptedError):
            return
        except OSError as exc:
            if exc.errno in _OUT_OF_RESOURCES:
                self._refuse_one(exc)
            else:  # e.g. ECONNABORTED: that client gave up; the next one is served
                log.info("accept failed (%s); still serving", errno.errorcode.get(exc.errno or 0, exc))
            return
        if self._short:
            self._short = False
            log.warning("accepting connections again after refusing %d", self.refused)
        sock.setblocking(False)
        conn = Connection(sock)
        self.connections.append(conn)
        selector.register(sock, selectors.EVENT_READ, conn)

    def _refuse_one(self, exc: OSError) -> None:
        """Out of descriptors: accept the waiting connection on the spare one and close it at
        once, so the client sees its connection refused and the loop goes on serving the others."""
        if self._spare_fd is not None:
            os.close(self._spare_fd)
            self._spare_fd = None
        assert self._listener is not None
        try:
            sock, _ = self._listener.accept()
            sock.close()
        except OSError:
            # Not even the spare: stop watching the listener (no busy loop) until a connection
            # closes and frees a descriptor; the clients wait in the backlog meanwhile.
            assert self._selector is not None
            self._selector.unregister(self._listener)
            self._accept_paused = True
            log.warning("out of file descriptors: not accepting until a connection closes")
        else:
            self.refused += 1
            if not self._short or self.refused % _REFUSAL_LOG_EVERY == 0:
                log.warning("out of file descriptors (%s): refused a connection (%d so far), still serving "
                            "the %d open", errno.errorcode.get(exc.errno or 0, "?"), self.refused,
                            len(self.connections))
            self._short = True
        with contextlib.suppress(OSError):
            self._spare_fd = os.open(os.devnull, os.O_RDONLY)

    def _on_readable(self, conn: Connection) -> None:
        try:
            data = conn.sock.recv(_RECV_SIZE)
        except (BlockingIOError, InterruptedError):
            return
        except OSError:
            data = b""
        if not data:
            self.drop(conn)
            return
        conn.codec.receive_data(data)
        try:
            while conn.open and (request := conn.codec.next_event()) is not None:
                conn.terminal_id = request.terminal_id or conn.terminal_id
                self._on_message(conn, request)
        except ProtocolError as exc:
            # The message is content-free by the codec's contract, so logging it is safe.
            log.warning("dropping a terminal connection: %s", exc)
            self.drop(conn)
        except Exception as exc:  # a bug in the host: keep serving others, let tests see it
            log.error("internal error (%s); dropping the connection", type(exc).__name__)
            self._on_error(exc)
            self.drop(conn)

    def _flush(self, conn: Connection) -> None:
        try:
            sent = conn.sock.send(conn.outbox) if conn.outbox else 0
        except (BlockingIOError, InterruptedError):
            sent = 0
        except OSError:
            self.drop(conn)
            return
        del conn.outbox[:sent]
        events = selectors.EVENT_READ | (selectors.EVENT_WRITE if conn.outbox else 0)
        assert self._selector is not None
        self._selector.modify(conn.sock, events, conn)
