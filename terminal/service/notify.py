"""systemd's notify protocol (sd_notify(3)) with the stdlib: `READY=1`, `STATUS=`, `WATCHDOG=1`, `STOPPING=1`.

A message is one datagram of `KEY=value` lines to the AF_UNIX socket named by `$NOTIFY_SOCKET`:
a path, or an abstract socket when the name starts with `@` (the `@` stands for a NUL byte).
systemd sets it for a `Type=notify` unit (deploy/opentill.service); anywhere else it is unset
and every call here does nothing, so `till run` on a laptop or in a test needs no switch.

The watchdog (`WatchdogSec=` in the unit) arrives as `$WATCHDOG_USEC` (and `$WATCHDOG_PID`,
the process it is meant for): the service loop pings every `watchdog_interval()` seconds,
half the timeout as sd_watchdog_enabled(3) advises. A value that is not a number turns the
watchdog off with one warning: a till that pinged at a guessed rate would be killed, or never.

Sending never raises and never blocks. A till must not stop selling because systemd restarted
or its socket went away: the first failure is logged (a warning), the ones after it only at
debug level until a message goes through again. Each message opens its own socket, as
sd_notify() does: nothing to close, and a socket systemd re-created is found by its name.
The environment is read, not changed: with NotifyAccess=main a child's message is ignored anyway.
"""

from __future__ import annotations

import logging
import os
import socket
from collections.abc import Mapping

__all__ = ["Notifier"]

log = logging.getLogger(__name__)

MAX_STATUS = 200  # characters of a STATUS= line: `systemctl status` shows one line; a longer one is cut


class Notifier:
    """Messages to the service manager; a no-op notifier (`enabled` False) when there is none."""

    def __init__(self, address: str | None = None, *, watchdog_usec: int | None = None) -> None:
        """`address`: `$NOTIFY_SOCKET` as systemd gives it (a path, or `@name`); None: no manager.
        `watchdog_usec`: the watchdog timeout in microseconds for this process; None: no watchdog."""
        self._address = _socket_address(address) if address else None
        self._watchdog_usec = watchdog_usec if self._address is not None else None
        self._failing = False  # the last send failed and was logged: the next failures are quiet

    @classmethod
    def from_env(cls, environ: Mapping[str, str] = os.environ) -> Notifier:
        """The notifier `environ` describes (`NOTIFY_SOCKET`, `WATCHDOG_USEC`, `WATCHDOG_PID`)."""
        address = environ.get("NOTIFY_SOCKET", "")
        if not address:
            return cls()
        if not address.startswith(("/", "@")):  # vsock:..., a relative path: not a socket we can reach
            log.warning("NOTIFY_SOCKET=%r is neither a path nor an abstract socket (@name): "
                        "systemd is not told of readiness, status or the watchdog", address[:80])
            return cls()
        return cls(address, watchdog_usec=_watchdog_usec(environ))

    @property
    def enabled(self) -> bool:
        """A service manager is listening (NOTIFY_SOCKET was set)."""
        return self._address is not None

    def watchdog_interval(self) -> float | None:
        """Seconds between two `watchdog()` pings (half the timeout); None: the watchdog is off."""
        return None if self._watchdog_usec is None else self._watchdog_usec / 2_000_000

    def ready(self, status: str = "") -> None:
        """Start-up is over: systemd considers the unit started (and arms the watchdog)."""
        self._send(["READY=1", *([_status_line(status)] if status else [])])

    def status(self, text: str) -> None:
        """A one-line state for `systemctl status` ("ready", "card reader missing / 读卡器未连接")."""
        self._send([_status_line(text)])

    def watchdog(self) -> None:
        """The service loop is alive; sent only when the unit has a watchdog for this process."""
        if self._watchdog_usec is not None:
            self._send(["WATCHDOG=1"])

    def stopping(self) -> None:
        """A stop has begun (SIGTERM): the sale in flight is finished, then the process exits."""
        self._send(["STOPPING=1"])

    def _send(self, lines: list[str]) -> None:
        if self._address is None:
            return
        message = "\n".join(lines).encode("utf-8")
        try:
            with socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM | socket.SOCK_CLOEXEC) as sock:
                sock.setblocking(False)  # a full queue drops one message; the loop never waits on systemd
                sock.sendto(message, self._address)
        except OSError as exc:
            if not self._failing:
                log.warning("cannot notify systemd at %s (%s); the till goes on, later failures are "
                            "logged at debug level", _shown(self._address), exc)
            else:
                log.debug("notify %s failed: %s", lines[0], exc)
            self._failing = True
            return
        if self._failing:
            log.info("systemd notify socket %s reachable again", _shown(self._address))
        self._failing = False


def _socket_address(address: str) -> str:
    """`@name` is the abstract socket `\\0name` (Linux); anything else is a path."""
    return "\0" + address[1:] if address.startswith("@") else address


def _shown(address: str) -> str:
    return "@" + address[1:] if address.startswith("\0") else address


def _status_line(text: str) -> str:
    # One datagram is KEY=value lines: a newline in the text would start a bogus assignment.
    flat = " ".join(text.split())
    return f"STATUS={flat[:MAX_STATUS]}"


def _watchdog_usec(environ: Mapping[str, str]) -> int | None:
    """WATCHDOG_USEC for this process (sd_watchdog_enabled(3)); None with a warning when unreadable."""
    usec_text = environ.get("WATCHDOG_USEC", "")
    if not usec_text:
        return None
    pid_text = environ.get("WATCHDOG_PID", "")
    if pid_text:
        try:
            pid = int(pid_text)
        except ValueError:
            log.warning("WATCHDOG_PID=%r is not a process id: the systemd watchdog is off", pid_text[:40])
            return None
        if pid != os.getpid():  # set for another process (we were started by it): not ours to ping
            log.debug("WATCHDOG_PID=%d is not this process (%d): the watchdog is not ours", pid, os.getpid())
            return None
    try:
        usec = int(usec_text)
    except ValueError:
        usec = -1
    if usec <= 0:
        log.warning("WATCHDOG_USEC=%r is not a positive number of microseconds: the systemd watchdog is off "
                    "(check WatchdogSec= in the unit)", usec_text[:40])
        return None
    return usec
