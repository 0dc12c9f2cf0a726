"""The acquirer link driver (ISO 8583 over TCP, `tcp://HOST:PORT`, or an in-process `emu://` peer).
It moves bytes; it decides no timeouts.

The acquirer is a device family like the others: the runtime polls it, and every failure of
the link — refused connect, reset, the host closing, bytes that are not our protocol — closes
the socket and is reported as a `DeviceFault(device="acquirer")`, returned by `connect()` /
`send()` or delivered by `poll()`. Whether a fault means a reversal is the checkout's decision,
since an unanswered request is an unknown outcome. Time is the runtime's: it sends a request,
then selects on `fileno()` with its other devices until its Clock says the host timed out.

`emu://acquirer?instance=...` (or any `emu://` URL drivers.transport resolves) is a synchronous
in-process peer speaking the same framing (drivers/transport.py `Peer`): `send()` hands it the
frame, and its answer is there at the next `poll()`. Such a link has no descriptor (`fileno()`
is None, as for an emu:// printer), so the runtime never selects on it: it polls it again at once.

Keys and MAC (docs/host-link.md "Keys and MAC"): after a sign-on the checkout hands the working
keys to `use_keys()`. From then on `send()` MACs (DE 64) the requests drivers/acquirer/mac.py
names, and `poll()` checks the MAC of their answers: an answer whose MAC is missing or wrong is
dropped (logged by MTI and STAN only), so the checkout sees no answer and its reversal rules
apply, and `needs_sign_on` turns true. So does any answer with DE 39 = A0 (taken without a MAC
check: the host that sends it no longer trusts our key). A sign-on's `use_keys()` clears it.
"""

from __future__ import annotations

import logging
import select
import socket

from drivers.acquirer import mac
from drivers.acquirer.codec import AcquirerCodec
from drivers.acquirer.events import HostMessage
from drivers.acquirer.spec import WorkingKeys
from drivers.errors import DriverError, ProtocolError
from drivers.events import DeviceFault, FaultKind, Role
from drivers.sensitive import Secret
from drivers.transport import Peer, resolve_peer

__all__ = ["AcquirerDriver", "HostLinkError", "parse_host_url"]

log = logging.getLogger("drivers.acquirer")

_RECV_SIZE = 4096
_MAX_READS = 16  # per poll: a flooding peer cannot grow our buffer without bound; the rest waits


class HostLinkError(DriverError, ConnectionError):
    """The acquirer link failed (inside the driver; callers get it as a DeviceFault)."""


def parse_host_url(url: str) -> tuple[str, int]:
    """`tcp://HOST:PORT` -> (HOST, PORT); ValueError for anything else."""
    if url.startswith("emu://") and len(url) > len("emu://"):
        return url, 0  # an in-process peer: the "address" is its URL
    from drivers.transport import parse_host_port

    try:
        host, port = parse_host_port(url.removeprefix("tcp://"), what="host url")
    except ValueError:
        host, port = "", 0
    if not url.startswith("tcp://") or not port > 0:
        raise ValueError(f"host url {url!r} is not tcp://HOST:PORT (an IPv6 address in brackets)")
    return host, port


class AcquirerDriver:
    family = "acquirer"

    def __init__(self, url: str, *, connect_timeout: float = 10.0) -> None:
        self.url = url
        self.address = parse_host_url(url)
        self.connect_timeout = connect_timeout
        self._sock: socket.socket | None = None
        self._emu = url.startswith("emu://")
        self._peer: Peer | None = None
        self._owns_peer = False
        self._peer_rx = bytearray()  # drained from the peer by wait_readable(), not decoded yet
        self._codec = AcquirerCodec(Role.HOST)
        # A failure found while messages were still being decoded: reported on the next poll,
        # so the messages that arrived before it are not lost.
        self._deferred: HostLinkError | None = None
        self._outstanding = 0  # requests sent and not answered yet (a hint for the runtime's wait)
        self._mac_key: Secret[bytes] | None = None  # the working MAC key of the last sign-on (RAM only)
        self.needs_sign_on = False  # the host refused our MAC (A0), or an answer failed its MAC
        self.mac_failures = 0  # answers dropped for a missing or wrong MAC

    # -- keys ---------------------------------------------------------------------------------
    def use_keys(self, keys: WorkingKeys | None) -> None:
        """MAC with these working keys from now on (None: no MAC, as before any sign-on)."""
        self._mac_key = None if keys is None else keys.mac_key_bytes
        self.needs_sign_on = False

    def _signed(self, msg: HostMessage) -> HostMessage:
        if self._mac_key is None or not mac.is_maced(msg.mti):
            return msg
        return mac.sign(msg, self._mac_key.reveal())

    def _trusted(self, msg: HostMessage) -> bool:
        """Keep this inbound message? (See the module docstring.)"""
        if msg.response_code == mac.MAC_ERROR:
            self.needs_sign_on = True
            return True
        if self._mac_key is None or not mac.is_maced(msg.mti) or mac.verify(msg, self._mac_key.reveal()):
            return True
        self.mac_failures += 1
        self.needs_sign_on = True
        log.warning("acquirer answer %s stan=%s failed its MAC check: dropped, treated as no answer",
                    msg.mti, msg.stan)
        return False

    @property
    def connected(self) -> bool:
        return self._sock is not None or self._peer is not None

    def _where(self) -> str:
        return self.url if self._emu else f"{self.address[0]}:{self.address[1]}"

    # -- lifecycle --------------------------------------------------------------------------
    def open(self) -> None:
        """Connect if the host is there; a host that is not is no error at start-up (the
        checkout connects again when a sale needs it)."""
        self.connect()

    def connect(self) -> DeviceFault | None:
        if self._emu:
            return self._connect_peer()
        if self._sock is not None:
            return None
        try:
            # An ASCII host goes to getaddrinfo() as bytes (typeshed says str, CPython takes
            # both): a str one is run through the idna codec first, whose import alone costs
            # ~2 ms of every till start.
            host, port = self.address
            target = (host.encode() if host.isascii() else host, port)
            sock = socket.create_connection(target, timeout=self.connect_timeout)  # type: ignore[arg-type]
        except OSError as exc:
            return self._fault(f"cannot connect to acquirer {self._where()}: {exc}")
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        sock.setblocking(False)
        self._sock = sock
        self._codec = AcquirerCodec(Role.HOST)  # a new connection starts a new stream
        self._deferred = None
        return None

    def _connect_peer(self) -> DeviceFault | None:
        if self._peer is not None:
            return None
        try:
            self._peer, self._owns_peer = resolve_peer(self.url)
        except OSError as exc:  # PortError: nothing attached or registered under that URL
            return self._fault(f"cannot connect to acquirer {self._where()}: {exc}")
        self._codec = AcquirerCodec(Role.HOST)
        self._peer_rx.clear()
        self._deferred = None
        return None

    def close(self) -> None:
        self._outstanding = 0
        sock, self._sock = self._sock, None
        if sock is not None:
            sock.close()
        peer, self._peer = self._peer, None
        if peer is not None and self._owns_peer:
            peer.close()

    def __enter__(self) -> AcquirerDriver:
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

    def _fault(self, detail: str) -> DeviceFault:
        return DeviceFault(device=self.family, kind=FaultKind.DISCONNECTED, detail=detail)

    # -- I/O --------------------------------------------------------------------------------
    def send(self, msg: HostMessage) -> DeviceFault | None:
        """Queue one message on the socket, connecting first if need be. The codec raises
        LocalProtocolError for a message we may not send (our bug); the network is a fault."""
        if not self.connected and (fault := self.connect()) is not None:
            return fault
        msg = self._signed(msg)
        if self._peer is not None:
            frame = self._codec.send(msg)
            self._outstanding += 1
            self._peer.receive(frame)  # the peer answers at once; poll() reads it
            return None
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
            return self._fault(str(self._fail(f"send failed: {exc}")))
        return None

    def poll(self) -> list[HostMessage | DeviceFault]:
        """Every complete message that has arrived; [] when none. Never blocks.

        A failure is reported once, as a DeviceFault after the messages that came before it;
        after it the link is closed, and a closed link has nothing to deliver ([]) until
        `connect()` (or the next `send()`) opens a new connection."""
        try:
            return list(self._receive())
        except HostLinkError as exc:
            return [self._fault(str(exc))]

    def _receive(self) -> list[HostMessage]:
        if self._deferred is not None:
            error, self._deferred = self._deferred, None
            raise error
        closed = False
        if self._peer is not None:
            self._peer_rx += self._peer.transmit()
            self._codec.receive_data(bytes(self._peer_rx))
            self._peer_rx.clear()
        elif self._sock is None:
            return []
        else:
            closed = self._read_socket(self._sock)
        messages: list[HostMessage] = []
        failure: HostLinkError | None = None
        try:
            while (message := self._codec.next_event()) is not None:
                self._outstanding = max(0, self._outstanding - 1)
                if self._trusted(message):
                    messages.append(message)
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

    def _read_socket(self, sock: socket.socket) -> bool:
        """Feed what the socket has to the codec; True when the host closed the connection."""
        for _ in range(_MAX_READS):
            try:
                chunk = sock.recv(_RECV_SIZE)
            except (BlockingIOError, InterruptedError):
                return False
            except OSError as exc:
                raise self._fail(f"receive failed: {exc}") from exc
            if not chunk:
                return True
            self._codec.receive_data(chunk)
        return False

    def receive_now(self) -> list[HostMessage]:
        """Like poll(), but a failure raises HostLinkError (for tools and tests that drive the
        link by hand)."""
        return self._receive()

    def expecting(self) -> bool:
        """Is an answer still due? The runtime waits on this link only then."""
        return self._outstanding > 0

    def fileno(self) -> int | None:
        return None if self._sock is None else self._sock.fileno()

    def wait_readable(self, timeout: float) -> bool:
        """Block at most `timeout` seconds until the socket has bytes (or EOF) to read. An
        in-process peer never blocks: it has bytes now or will not have them by waiting."""
        if self._deferred is not None:
            return True  # poll() has a failure to report
        if self._peer is not None:
            self._peer_rx += self._peer.transmit()  # kept for the next poll()
            return bool(self._peer_rx)
        sock = self._require()
        readable, _, _ = select.select([sock], [], [], max(timeout, 0.0))
        return bool(readable)
