"""One contract suite per family, every transport (house rule 10, python-can's Back2BackTestCase).

A family suite names its registry row in a module-level `FAMILY = "printer"` and asks for the
`contract` fixture: a factory that, from that row, builds the peer on each transport and returns
a `Rig` (the URL the driver under test opens, its profile, and a `Control`). The transports:

- `emu`     the row's emulator in process, reached by `emu://`; control lines go to `emulator.control.apply`
- `pty`     the same emulator served on a pseudo-terminal by an `emulator.link.PtyLink` in this process
- `socket`  the same, on `socket://127.0.0.1:PORT` (`TcpLink`)
- `process` a `till emulate FAMILY --pty` child: its first stdout line is the pty, control lines go
            to its stdin and each reply is one line on its stdout; SIGTERM and wait at the end
- `hil`     the real device of `--hil FAMILY=URL[,profile=NAME]` (marked `hardware(FAMILY)`): a
            control line would need a person or a jig, so `send` skips the test there, with a reason

Contract tests touch the peer only through the wire (the driver) and `Control.send(line) -> reply`,
what a real bench offers. A test that must look inside an emulator object is not a contract test:
mark it `emulator_insides` (registered below) and keep it out of these suites.
"""

from __future__ import annotations

import os
import select
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol

import pytest

from drivers.base import DeviceEvent, Driver
from drivers.transport import attach_peer, detach_peer
from emulator.control import apply
from emulator.link import Link, PtyLink, TcpLink
from terminal import devices
from tests.conftest import hil_targets

__all__ = ["TRANSPORTS", "Control", "Rig", "Serve", "wait_for_events"]

TRANSPORTS = ("emu", "pty", "socket", "process", "hil")
_ROOT = Path(__file__).resolve().parents[2]
_CHILD_WAIT_S = 30.0  # a guard against a wedged child, never a measurement


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line(
        "markers", "emulator_insides: looks inside an emulator object; not a contract test, emulated transports only",
    )


class Control(Protocol):
    """The emulator's control channel: one control line in, one reply line (`ok: ...`) out."""

    transport: str

    def send(self, line: str) -> str: ...


class _Apply:
    """emu:// and in-process links: `emulator.control.apply`, under the link's lock when served."""

    def __init__(self, transport: str, run: Callable[[Callable[[Any], str]], str]) -> None:
        self.transport = transport
        self._run = run

    def send(self, line: str) -> str:
        return _checked(line, self._run(lambda peer: apply(peer, line)))


class _Child:
    """A `till emulate FAMILY --pty` process: control lines on its stdin, replies on its stdout."""

    transport = "process"

    def __init__(self, kind: str, profile: str) -> None:
        env = {**os.environ, "PYTHONIOENCODING": "utf-8", "PYTHONUNBUFFERED": "1"}
        self._proc = subprocess.Popen(
            [sys.executable, "-m", "terminal.cli", "emulate", kind, "--pty", "--profile", profile],
            stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE, cwd=_ROOT, env=env,
        )
        self._buffer = b""
        self._stderr = b""
        self.endpoint = self._line("its pty path")

    def send(self, line: str) -> str:
        assert self._proc.stdin is not None
        self._proc.stdin.write(line.encode() + b"\n")
        self._proc.stdin.flush()
        return _checked(line, self._line(f"a reply to {line!r}"))

    def _line(self, what: str) -> str:
        # os.read on the raw descriptor, not readline: select() cannot see a file object's buffer.
        assert self._proc.stdout is not None
        fd = self._proc.stdout.fileno()
        end = time.monotonic() + _CHILD_WAIT_S
        while b"\n" not in self._buffer:
            ready, _, _ = select.select([fd], [], [], max(0.0, end - time.monotonic()))
            chunk = os.read(fd, 4096) if ready else b""
            if not chunk:
                self.stop()
                pytest.fail(f"`till emulate` gave no {what}; stderr: {self._stderr!r}")
            self._buffer += chunk
        line, _, self._buffer = self._buffer.partition(b"\n")
        return line.decode()

    def stop(self) -> int:
        """SIGTERM, wait, close every pipe; the exit status (0 is a clean stop)."""
        if self._proc.returncode is None:
            self._proc.send_signal(signal.SIGTERM)
        try:
            _, self._stderr = self._proc.communicate(timeout=_CHILD_WAIT_S)
        except subprocess.TimeoutExpired:
            self._proc.kill()
            _, self._stderr = self._proc.communicate()
        return self._proc.returncode


class _Person:
    """Real hardware: nobody in the test can present a card or open the cover."""

    transport = "hil"

    def send(self, line: str) -> str:
        pytest.skip(f"on real hardware {line.split()[0]!r} needs a person or a jig (control line {line!r})")


def _checked(line: str, reply: str) -> str:
    assert reply.startswith("ok:"), f"control line {line!r} was refused: {reply}"
    return reply


@dataclass(frozen=True, kw_only=True)
class Rig:
    """One device under contract: what the driver opens, the profile it uses, and the control channel."""

    row: devices.DeviceFamily
    url: str
    profile: dict[str, Any]
    profile_name: str
    control: Control

    @property
    def transport(self) -> str:
        return self.control.transport

    def driver(self, **kwargs: Any) -> Any:
        """The registry row's driver on this rig's URL (a context manager)."""
        return self.row.driver_class()(self.url, self.profile, **kwargs)


Serve = Callable[..., Rig]  # contract(profile=None) -> Rig


def pytest_generate_tests(metafunc: pytest.Metafunc) -> None:
    """Every test that asks for `contract` runs once per transport; hil is marked for its family."""
    if "contract" not in metafunc.fixturenames:
        return
    name = getattr(metafunc.module, "FAMILY", None)
    assert name, f"{metafunc.module.__name__} asks for `contract` but sets no FAMILY"
    row = devices.family(name)
    params = [pytest.param(t, marks=pytest.mark.hardware(row.name)) if t == "hil" else t for t in TRANSPORTS]
    metafunc.parametrize("transport", params)


@pytest.fixture
def contract(request: pytest.FixtureRequest, transport: str) -> Iterator[Serve]:
    row = devices.family(request.module.FAMILY)
    stops: list[Callable[[], object]] = []
    children: list[_Child] = []

    def serve(profile: str | None = None) -> Rig:
        target = hil_targets(request.config).get(row.name)
        if transport == "hil":
            assert target is not None  # the hardware marker skipped the test otherwise
            name = target.profile or row.default_profile
            if profile is not None and profile != name:
                pytest.skip(f"this case is for a {profile} {row.url_kind}; the one on --hil is a {name}")
            return Rig(row=row, url=target.url, profile=devices.load_device_profile(row, name),
                       profile_name=name, control=_Person())
        name = profile or row.default_profile
        device = devices.load_device_profile(row, name)
        if transport == "process":
            child = _Child(row.url_kind, name)
            children.append(child)
            return Rig(row=row, url=child.endpoint, profile=device, profile_name=name, control=child)
        peer = row.emulator_class()(device)
        if transport == "emu":
            url = attach_peer(row.url_kind, peer)
            stops.append(lambda: detach_peer(url))
            return Rig(row=row, url=url, profile=device, profile_name=name,
                       control=_Apply(transport, lambda action: action(peer)))
        link: Link = (PtyLink(peer) if transport == "pty" else TcpLink(peer)).start()
        stops.append(link.stop)
        return Rig(row=row, url=link.endpoint, profile=device, profile_name=name,
                   control=_Apply(transport, link.control))

    yield serve
    for stop in stops:
        stop()
    statuses = [child.stop() for child in children]
    assert all(s == 0 for s in statuses), f"`till emulate` did not stop cleanly on SIGTERM: {statuses}"


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


RECHECK_S = 0.05


def collect(driver: Driver, done: Callable[[list[DeviceEvent]], bool], timeout: float = 10.0) -> list[DeviceEvent]:
    """Events until `done(events)` (or the timeout, or an emu:// link with nothing more to say)."""
    seen: list[DeviceEvent] = []
    end = time.monotonic() + timeout
    while time.monotonic() < end and not done(seen):
        # In slices: `done` may wait on the driver's own state (an ack, a dropped double read),
        # which no event announces; a slice ends at once when bytes arrive.
        batch = wait_for_events(driver, min(RECHECK_S, max(0.0, end - time.monotonic())))
        seen += batch
        if not batch and driver.fileno() is None:
            break
    return seen
