"""terminal.service.notify against a real AF_UNIX datagram socket: the exact bytes systemd reads."""

from __future__ import annotations

import logging
import os
import socket
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

from terminal.service.notify import Notifier


@pytest.fixture
def listener(tmp_path: Path) -> Iterator[tuple[socket.socket, str]]:
    """A bound datagram socket standing in for systemd's, and its NOTIFY_SOCKET value (a path)."""
    path = tmp_path / "notify"
    with socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM) as sock:
        sock.bind(str(path))
        sock.setblocking(False)  # a unix datagram is queued when sendto returns: no waiting needed
        yield sock, str(path)


def received(sock: socket.socket) -> list[bytes]:
    messages = []
    while True:
        try:
            messages.append(sock.recv(4096))
        except BlockingIOError:
            return messages


def test_each_call_sends_one_exact_datagram(listener: tuple[socket.socket, str]) -> None:
    sock, address = listener
    notifier = Notifier.from_env({"NOTIFY_SOCKET": address, "WATCHDOG_USEC": "30000000"})
    assert notifier.enabled
    notifier.ready()
    notifier.ready("ready: 4 devices / 设备就绪")
    notifier.status("card reader missing\nREADY=1")  # a newline cannot smuggle in an assignment
    notifier.watchdog()
    notifier.stopping()
    assert received(sock) == [
        b"READY=1",
        "READY=1\nSTATUS=ready: 4 devices / 设备就绪".encode(),
        b"STATUS=card reader missing READY=1",
        b"WATCHDOG=1",
        b"STOPPING=1",
    ]


def test_a_long_status_is_cut_to_one_line(listener: tuple[socket.socket, str]) -> None:
    sock, address = listener
    Notifier(address).status("x" * 5000)
    assert received(sock) == [b"STATUS=" + b"x" * 200]


def test_an_abstract_socket_is_named_with_an_at_sign() -> None:
    name = f"opentill-test-{uuid.uuid4().hex}"
    with socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM) as sock:
        sock.bind("\0" + name)
        sock.setblocking(False)
        notifier = Notifier.from_env({"NOTIFY_SOCKET": "@" + name})
        notifier.ready("ok")
        notifier.stopping()
        assert received(sock) == [b"READY=1\nSTATUS=ok", b"STOPPING=1"]


def test_without_notify_socket_nothing_is_sent_and_nothing_fails() -> None:
    for environ in ({}, {"NOTIFY_SOCKET": ""}, {"WATCHDOG_USEC": "30000000", "WATCHDOG_PID": str(os.getpid())}):
        notifier = Notifier.from_env(environ)
        assert not notifier.enabled
        assert notifier.watchdog_interval() is None
        notifier.ready("x")
        notifier.status("x")
        notifier.watchdog()
        notifier.stopping()


def test_an_unreachable_kind_of_socket_is_off_with_one_warning(caplog: pytest.LogCaptureFixture) -> None:
    with caplog.at_level(logging.WARNING, logger="terminal.service.notify"):
        notifier = Notifier.from_env({"NOTIFY_SOCKET": "vsock:2:1234", "WATCHDOG_USEC": "30000000"})
        notifier.ready()
    assert not notifier.enabled
    assert notifier.watchdog_interval() is None
    assert [r.getMessage() for r in caplog.records] == [
        "NOTIFY_SOCKET='vsock:2:1234' is neither a path nor an abstract socket (@name): "
        "systemd is not told of readiness, status or the watchdog"]


@pytest.mark.parametrize(("environ", "interval"), [
    ({"WATCHDOG_USEC": "30000000"}, 15.0),  # systemd without WATCHDOG_PID (older versions)
    ({"WATCHDOG_USEC": "30000000", "WATCHDOG_PID": str(os.getpid())}, 15.0),
    ({"WATCHDOG_USEC": "1"}, 0.0000005),
    ({"WATCHDOG_USEC": "30000000", "WATCHDOG_PID": str(os.getpid() + 1)}, None),  # another process's
    ({}, None),
    ({"WATCHDOG_USEC": ""}, None),
])
def test_watchdog_interval_is_half_the_timeout_for_this_process(
        listener: tuple[socket.socket, str], environ: dict[str, str], interval: float | None,
        caplog: pytest.LogCaptureFixture) -> None:
    sock, address = listener
    with caplog.at_level(logging.WARNING, logger="terminal.service.notify"):
        notifier = Notifier.from_env({"NOTIFY_SOCKET": address, **environ})
    assert notifier.watchdog_interval() == interval
    assert caplog.records == []
    notifier.watchdog()
    assert received(sock) == ([] if interval is None else [b"WATCHDOG=1"])


@pytest.mark.parametrize(("environ", "said"), [
    ({"WATCHDOG_USEC": "30s"}, "WATCHDOG_USEC='30s' is not a positive number of microseconds"),
    ({"WATCHDOG_USEC": "0"}, "WATCHDOG_USEC='0' is not a positive number of microseconds"),
    ({"WATCHDOG_USEC": "-5"}, "WATCHDOG_USEC='-5' is not a positive number of microseconds"),
    ({"WATCHDOG_USEC": "30000000", "WATCHDOG_PID": "me"}, "WATCHDOG_PID='me' is not a process id"),
])
def test_a_bad_watchdog_value_turns_the_watchdog_off_with_one_warning(
        listener: tuple[socket.socket, str], environ: dict[str, str], said: str,
        caplog: pytest.LogCaptureFixture) -> None:
    sock, address = listener
    with caplog.at_level(logging.WARNING, logger="terminal.service.notify"):
        notifier = Notifier.from_env({"NOTIFY_SOCKET": address, **environ})
        notifier.watchdog()
        notifier.ready()
    assert notifier.enabled
    assert notifier.watchdog_interval() is None
    assert len(caplog.records) == 1
    assert caplog.records[0].getMessage().startswith(said)
    assert received(sock) == [b"READY=1"]  # the rest of the protocol still works


def test_a_socket_gone_is_logged_once_never_raised_and_found_again(
        tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    path = tmp_path / "notify"
    notifier = Notifier.from_env({"NOTIFY_SOCKET": str(path), "WATCHDOG_USEC": "30000000"})
    with caplog.at_level(logging.WARNING, logger="terminal.service.notify"):
        notifier.ready()  # nothing bound there (systemd restarting)
        notifier.watchdog()
        notifier.status("still selling")
    assert len(caplog.records) == 1
    assert caplog.records[0].getMessage().startswith(f"cannot notify systemd at {path}")
    caplog.clear()
    with socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM) as sock:  # systemd is back, same name
        sock.bind(str(path))
        sock.setblocking(False)
        with caplog.at_level(logging.INFO, logger="terminal.service.notify"):
            notifier.watchdog()
        assert received(sock) == [b"WATCHDOG=1"]
    assert [r.getMessage() for r in caplog.records] == [f"systemd notify socket {path} reachable again"]
    caplog.clear()
    with caplog.at_level(logging.WARNING, logger="terminal.service.notify"):
        notifier.watchdog()  # gone again: warned again, as a new failure
    assert len(caplog.records) == 1


def test_a_full_queue_drops_the_message_instead_of_blocking(listener: tuple[socket.socket, str]) -> None:
    sock, address = listener
    notifier = Notifier(address, watchdog_usec=30_000_000)
    for _ in range(1000):  # more than a unix datagram queue holds (net.unix.max_dgram_qlen: 10 to 512)
        notifier.watchdog()
    queued = received(sock)
    assert 0 < len(queued) < 1000
    assert set(queued) == {b"WATCHDOG=1"}
