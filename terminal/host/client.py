"""TCP client for the acquirer link. It moves bytes; it decides no timeouts.

The runtime owns time: it sends a request, then waits on `wait_readable(t)` (or selects on
`fileno()` with its other devices) until its Clock says the host timed out. `poll()` never
blocks. Any failure of the link — refused connect, reset, the host closing, bytes that are not
our protocol — closes the socket and raises `HostLinkError`; whether that means a reversal is
the runtime's decision, since an unanswered request is an unknown outcome.
"""

from __future__ import annotations

import select
import socket

from drivers.acquirer.codec import AcquirerCodec
from drivers.acquirer.events import HostMessage
from drivers.errors import ProtocolError
from drivers.events import Role
from terminal.errors import TerminalError

__all__ = ["HostClient", "HostLinkError"]

_RECV_SIZE = 4096
_MAX_READS = 16  # per poll: a flooding peer cannot grow our buffer without bound; the rest waits


class HostLinkError(TerminalError, ConnectionError):
    """The acquirer link failed: connect, send or receive, or the host broke the protocol."""


class HostClient:
    def __init__(self, address: tuple[str, int], *, connect_timeout: float) -> None:
        self.address = address
        self.connect_timeout = connect_timeout
        self._sock: socket.socket | None = None
        self._codec = AcquirerCodec(Role.HOST)
        # A failure found while messages were still being decoded: reported on the next poll,
        # so the messages that arrived before it are not lost.
        self._deferred: HostLinkError | None = None
        self._outstanding = 0  # requests sent and not answered yet (a hint for the runtime's wait)

    @property
    def connected(self) -> bool:
        return self._sock is not None

    def _where(self) -> str:
        return f"{self.address[0]}:{self.address[1]}"

    # -- lifecycle --------------------------------------------------------------------------
    def connect(self) -> None:
        if self._sock is not None:
            return
        try:
            sock = socket.create_connection(self.address, timeout=self.connect_timeout)
        except OSError as exc:
            raise HostLinkError(f"cannot connect to acquirer {self._where()}: {exc}") from exc
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        sock.setblocking(False)
        self._sock = sock
        self._codec = AcquirerCodec(Role.HOST)  # a new connection starts a new stream
        self._deferred = None

    def close(self) -> None:
        self._outstanding = 0
        sock, self._sock = self._sock, None
        if sock is not None:
            sock.close()

    def __enter__(self) -> HostClient:
        self.connect()
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def _require(self) -> socket.socket:
        if self._sock is None:
            raise HostLinkError(f"not connected to acquirer {self._where()}")
        return self._sock

    def _fail(self, reason: str) -> HostLinkError:
        self.close()
        return HostLinkError(f"acquirer link {self._where()}: {reason}")

    # -- I/O --------------------------------------------------------------------------------
    def send(self, msg: HostMessage) -> None:
        """Queue one message on the socket. The codec raises LocalProtocolError for a message
        we may not send (our bug); only the network raises HostLinkError."""
        sock = self._require()
        frame = self._codec.send(msg)
        try:
            # A frame is at most 8 KiB, so the kernel buffer takes it at once; the timeout only
            # bounds a peer that stopped reading altogether.
            sock.settimeout(self.connect_timeout)
            sock.sendall(frame)
            sock.setblocking(False)
            self._outstanding += 1
        except OSError as exc:
            raise self._fail(f"send failed: {exc}") from exc

    def poll(self) -> list[HostMessage]:
        """Every complete message that has arrived; [] when none. Never blocks.

        A failure is raised once; after it the client is closed, and a closed client has
        nothing to deliver ([]) until `connect()` opens a new connection."""
        if self._deferred is not None:
            error, self._deferred = self._deferred, None
            raise error
        sock = self._sock
        if sock is None:
            return []
        closed = False
        for _ in range(_MAX_READS):
            try:
                chunk = sock.recv(_RECV_SIZE)
            except (BlockingIOError, InterruptedError):
                break
            except OSError as exc:
                raise self._fail(f"receive failed: {exc}") from exc
            if not chunk:
                closed = True
                break
            self._codec.receive_data(chunk)
        messages: list[HostMessage] = []
        failure: HostLinkError | None = None
        try:
            while (message := self._codec.next_event()) is not None:
                messages.append(message)
                self._outstanding = max(0, self._outstanding - 1)
        except ProtocolError as exc:
            failure = self._fail(f"protocol violation: {exc}")
            failure.__cause__ = exc
        if failure is None and closed:
            failure = self._fail("the host closed the connection")
        if failure is not None:
            if not messages:
                raise failure
            self._deferred = failure
        return messages

    def expecting(self) -> bool:
        """Is an answer still due? The runtime waits on this link only then."""
        return self._outstanding > 0

    def fileno(self) -> int | None:
        return None if self._sock is None else self._sock.fileno()

    def wait_readable(self, timeout: float) -> bool:
        """Block at most `timeout` seconds until the socket has bytes (or EOF) to read."""
        if self._deferred is not None:
            return True  # poll() has a failure to report
        sock = self._require()
        readable, _, _ = select.select([sock], [], [], max(timeout, 0.0))
        return bool(readable)
