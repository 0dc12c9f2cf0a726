"""One contract suite, every transport (house rule 10): emu://, a pty, socket://, real hardware.

`serve(kind, peer)` returns the URL a driver opens. Emulated transports also return a `control`
function that acts on the emulator safely from the test thread; hardware has none (the device on
`--hil-port` is driven by a person or a jig), and tests that need one skip there.
"""

from __future__ import annotations

import select
import time
from collections.abc import Callable, Iterator
from typing import Any

import pytest

from drivers.base import DeviceEvent, Driver
from drivers.transport import attach_peer, detach_peer
from emulator.link import Link, PtyLink, TcpLink

Control = Callable[[Callable[[Any], Any]], Any]
Serve = Callable[[str, Any], tuple[str, Control | None]]


@pytest.fixture(params=["emu", "pty", "socket", pytest.param("hil", marks=pytest.mark.hardware)])
def serve(request: pytest.FixtureRequest) -> Iterator[Serve]:
    links: list[Link] = []
    urls: list[str] = []

    def _serve(kind: str, peer: Any) -> tuple[str, Control | None]:
        if request.param == "hil":
            return str(request.config.getoption("--hil-port")), None
        if request.param == "emu":
            url = attach_peer(kind, peer)
            urls.append(url)
            return url, lambda action: action(peer)
        link: Link = PtyLink(peer) if request.param == "pty" else TcpLink(peer)
        links.append(link.start())
        return link.endpoint, link.control

    yield _serve
    for link in links:
        link.stop()
    for url in urls:
        detach_peer(url)


def wait_for_events(driver: Driver, timeout: float = 5.0) -> list[DeviceEvent]:
    """Poll until the driver reports something, waiting on its descriptor (no sleep)."""
    end = time.monotonic() + timeout
    while True:
        events = driver.poll()
        if events or time.monotonic() >= end:
            return events
        fd = driver.fileno()
        if fd is None:
            return events  # emu:// is synchronous: nothing more will come without an action
        select.select([fd], [], [], max(0.0, end - time.monotonic()))
