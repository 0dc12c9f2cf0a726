"""Transports are URLs (house rule 7): every driver opens its port through `open_port(url)`.

Anything pyserial understands works (`/dev/ttyUSB0`, a pty path, `socket://host:port`,
`spy://...`), plus our own schemes, each one module in `drivers/urlhandler/`:

- `emu://<kind>?instance=<id>` or `emu://<kind>?profile=<name>` — an in-process, synchronous
  device peer. Writing to the port hands the bytes to the peer at once; reading drains what the
  peer has to say. Nothing blocks, nothing needs a thread, which makes it the fastest path for
  tests. The drivers never import `emulator/`: the composition root registers peer factories
  (by kind) or attaches ready-made peers (by instance id) here.
"""

from __future__ import annotations

import itertools
import threading
import weakref
from collections.abc import Callable, Mapping
from typing import Any, Protocol
from urllib.parse import parse_qs, urlsplit

import serial

from drivers.errors import PortError

__all__ = [
    "Peer",
    "PeerFactory",
    "attach_peer",
    "detach_peer",
    "join_host_port",
    "listen_tcp",
    "open_port",
    "open_ports",
    "parse_host_port",
    "register_peer_factory",
    "resolve_peer",
    "set_peer_factory_finder",
]

_HANDLER_PACKAGE = "drivers.urlhandler"
if _HANDLER_PACKAGE not in serial.protocol_handler_packages:
    serial.protocol_handler_packages.append(_HANDLER_PACKAGE)


class Peer(Protocol):
    """The device side of an in-process link."""

    def receive(self, data: bytes) -> None:
        """Bytes from the host arrive at the device."""

    def transmit(self) -> bytes:
        """Drain the bytes the device has to send now (b"" when it has nothing)."""

    def close(self) -> None:
        """The host closed the port."""


PeerFactory = Callable[[Mapping[str, str]], Peer]

_lock = threading.Lock()
_factories: dict[str, PeerFactory] = {}
_instances: dict[str, Peer] = {}
_ids = itertools.count(1)


_finder: Callable[[str], PeerFactory | None] | None = None


def set_peer_factory_finder(finder: Callable[[str], PeerFactory | None] | None) -> None:
    """Consulted for an `emu://<kind>` with no factory registered: the emulated world answers
    from the device registry, so a plugin's family needs no registration of its own."""
    global _finder
    with _lock:
        _finder = finder


def register_peer_factory(kind: str, factory: PeerFactory) -> None:
    """`emu://<kind>?...` without an instance id builds a fresh peer with this factory."""
    with _lock:
        _factories[kind] = factory


def attach_peer(kind: str, peer: Peer) -> str:
    """Make a ready-made peer reachable; returns its `emu://` URL. Detach it when done."""
    with _lock:
        instance = f"{kind}-{next(_ids)}"
        _instances[instance] = peer
    return f"emu://{kind}?instance={instance}"


def detach_peer(url: str) -> None:
    instance = _params(url).get("instance")
    with _lock:
        _instances.pop(instance or "", None)


def resolve_peer(url: str) -> tuple[Peer, bool]:
    """The peer an `emu://` URL names, and whether the port owns (and so closes) it."""
    parts = urlsplit(url)
    if parts.scheme != "emu":
        raise PortError(f"not an emu:// URL: {url!r}")
    params = _params(url)
    with _lock:
        if "instance" in params:
            peer = _instances.get(params["instance"])
            if peer is None:
                raise PortError(f"no emulator attached as {params['instance']!r} ({url})")
            return peer, False
        factory = _factories.get(parts.netloc)
        finder = _finder
    if factory is None and finder is not None:
        factory = finder(parts.netloc)
    if factory is None:
        known = ", ".join(sorted(_factories)) or "none registered"
        raise PortError(f"no emulator for emu://{parts.netloc} (known: {known})")
    return factory(params), True


def _params(url: str) -> dict[str, str]:
    return {k: v[-1] for k, v in parse_qs(urlsplit(url).query).items()}


_opened: weakref.WeakSet[serial.SerialBase] = weakref.WeakSet()


def open_port(url: str, **settings: Any) -> serial.SerialBase:
    """Open any transport by URL; failures become PortError with the URL in the message."""
    try:
        port = serial.serial_for_url(url, **settings)
    except (serial.SerialException, OSError, ValueError) as exc:
        raise PortError(f"cannot open {url}: {exc}") from exc
    _opened.add(port)
    return port


def open_ports() -> list[str]:
    """URLs of ports opened here and not closed yet (tests fail when one is left behind)."""
    return [str(p.portstr) for p in list(_opened) if p.is_open]


# -- TCP addresses: "HOST:PORT", IPv6 literals in brackets ("[::1]:9100"), as in URLs -----------
def parse_host_port(text: str, *, what: str = "--listen") -> tuple[str, int]:
    """"HOST:PORT" or "[IPv6]:PORT" (port 0..65535) -> (host, port), brackets dropped; ValueError
    naming `what` otherwise (a bare IPv6 literal like ::1:80 is ambiguous and refused)."""
    host, sep, port = text.rpartition(":")
    if host.startswith("[") and host.endswith("]"):
        host = host[1:-1]
        literal = ":" in host
    else:
        literal = ":" not in host
    if not (sep and host and literal and port.isascii() and port.isdigit() and len(port) <= 5
            and int(port) <= 65535 and len(host) <= 253):
        shown = text if len(text) <= 60 else text[:57] + "..."
        raise ValueError(f"{what} wants HOST:PORT (an IPv6 address in brackets: [::1]:PORT), not {shown!r}")
    return host, int(port)


def join_host_port(host: str, port: int) -> str:
    """(host, port) as "HOST:PORT", an IPv6 address in brackets."""
    return f"[{host}]:{port}" if ":" in host else f"{host}:{port}"


def listen_tcp(host: str, port: int) -> Any:
    """A listening TCP socket on host:port, IPv6 when the host is an IPv6 literal."""
    import socket

    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    return socket.create_server((host, port), family=family)
