"""The wallet gateway simulator on HTTP(S): `till wallet --listen 127.0.0.1:0` (stdlib http.server).

Every request goes through the shared codec (Role.DEVICE's `call_of` / `reply_body`) to one
WalletGateway, under one lock. The gateway's time is wall time here: before each request and each
control line the gateway is advanced by the seconds elapsed since the last. A lost answer (payer
06) holds the connection without a byte until `hold_s` passes or the server stops, then closes it:
the terminal's timeout is what it sees. `certfile`/`keyfile` serve HTTPS.
"""

from __future__ import annotations

import contextlib
import logging
import socket
import ssl
import threading
import time
from collections.abc import Callable
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any, ClassVar, TypeVar

from drivers.transport import join_host_port, parse_host_port
from drivers.wallet.codec import MAX_BODY, call_of, reply_body
from emulator.wallet.gateway import WalletGateway

__all__ = ["WalletServer"]

log = logging.getLogger("emulator.wallet")
T = TypeVar("T")


class _Handler(BaseHTTPRequestHandler):
    server: _Server
    protocol_version = "HTTP/1.1"
    timeout = 60  # an idle keep-alive connection is closed after a minute

    def setup(self) -> None:
        super().setup()
        self.server.owner.connections.add(self.connection)

    def finish(self) -> None:
        self.server.owner.connections.discard(self.connection)
        super().finish()

    def do_POST(self) -> None:
        owner = self.server.owner
        length = self.headers.get("Content-Length", "")
        if not length.isdigit() or int(length) > MAX_BODY:
            self.send_error(411 if not length.isdigit() else 413)
            return
        body = self.rfile.read(int(length))
        reply = owner.control(lambda gateway: gateway.respond(call_of(self.path, body, gateway.key)))
        if reply is None:  # booked, the answer is lost: hold the line, then drop it
            owner.released.wait(owner.hold_s)
            self.close_connection = True
            return
        data = reply_body(reply, owner.gateway.key)
        self.send_response(reply.status)
        self.send_header("Content-Type", "application/json; charset=utf-8")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def log_message(self, format: str, *args: Any) -> None:
        log.debug("wallet %s", format % args)


class _Server(ThreadingHTTPServer):
    owner: WalletServer
    daemon_threads = False
    block_on_close = True  # stop() joins every handler: nothing is left behind


class WalletServer:
    """The simulator on a loopback port. `gateway` is its books (act on it through `control()`)."""

    CONTROL: ClassVar[str] = "emulator.wallet.control"
    FAULTS: ClassVar[tuple[str, ...]] = WalletGateway.FAULTS

    def __init__(self, listen: str = "127.0.0.1:0", *, gateway: WalletGateway | None = None,
                 certfile: str | None = None, keyfile: str | None = None, hold_s: float = 60.0) -> None:
        self.gateway = gateway if gateway is not None else WalletGateway()
        self.host, self.port = parse_host_port(listen)
        self.certfile, self.keyfile = certfile, keyfile
        self.hold_s = hold_s
        self.released = threading.Event()
        self._lock = threading.Lock()
        self._last = time.monotonic()
        self._httpd: _Server | None = None
        self._thread: threading.Thread | None = None
        self.connections: set[socket.socket] = set()  # open client connections, shut at stop()

    def start(self) -> WalletServer:
        httpd = _Server((self.host, self.port), _Handler)
        httpd.owner = self
        if self.certfile:
            context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
            context.load_cert_chain(self.certfile, self.keyfile)
            httpd.socket = context.wrap_socket(httpd.socket, server_side=True)
        self._httpd = httpd
        self.port = httpd.server_address[1]
        self._thread = threading.Thread(target=httpd.serve_forever, kwargs={"poll_interval": 0.05},
                                        name="wallet gateway", daemon=True)
        self._thread.start()
        return self

    def stop(self) -> None:
        self.released.set()
        httpd, self._httpd = self._httpd, None
        for conn in list(self.connections):  # an idle keep-alive reader must not hold stop() up
            with contextlib.suppress(OSError):
                conn.shutdown(socket.SHUT_RDWR)
        if httpd is not None:
            httpd.shutdown()
            httpd.server_close()
        if self._thread is not None:
            self._thread.join()
            self._thread = None

    def __enter__(self) -> WalletServer:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    @property
    def url(self) -> str:
        scheme = "https" if self.certfile else "http"
        return f"{scheme}://{join_host_port(self.host, self.port)}"

    def control(self, fn: Callable[[WalletGateway], T]) -> T:
        """Run `fn` on the gateway under the lock, after advancing it to now (wall time)."""
        with self._lock:
            now = time.monotonic()
            self.gateway.advance(now - self._last)
            self._last = now
            return fn(self.gateway)

    def status(self) -> str:
        return self.control(lambda gateway: gateway.status())
