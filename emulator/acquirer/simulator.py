"""ISO 8583 acquirer simulator: the host's decisions served over TCP, with network faults on tap.

`AcquirerSimulator` is an `emulator.acquirer.core.Acquirer` (ledger, duplicate detection,
reversals, settlement, the faults that change an answer) served by the reactor of
emulator/host_server.py, plus the faults of the network between terminal and host: latency,
lost answers, late answers and dropped connections. Every control is thread-safe and takes
effect for the next request; delays are timers on the selector's timeout — nothing sleeps.

`till host --listen 127.0.0.1:PORT` calls `serve_forever_main(listen)`, which prints nothing.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from datetime import datetime
from pathlib import Path

from drivers.acquirer.events import HostMessage
from drivers.sensitive import mask_card_numbers
from drivers.transport import join_host_port, parse_host_port
from emulator.acquirer.core import Acquirer
from emulator.acquirer.ledger import LateApproval, LedgerEntry, Settlement, UploadedDetail
from emulator.acquirer.server import Connection, Reactor

__all__ = [
    "AcquirerSimulator",
    "LateApproval",
    "LedgerEntry",
    "Settlement",
    "UploadedDetail",
    "parse_listen",
    "serve_forever_main",
]

log = logging.getLogger(__name__)


class _Pending:
    """An answer decided and booked but not sent yet (late, or delayed by latency)."""

    def __init__(self, conn: Connection, request: HostMessage, answer: HostMessage) -> None:
        self.conn, self.request, self.answer = conn, request, answer


class AcquirerSimulator(Acquirer):
    CONTROL = "emulator.acquirer.control"  # its control vocabulary (emulator/control.py): `till host` stdin

    def __init__(
        self, *, host: str = "127.0.0.1", port: int = 0, now: Callable[[], datetime] = datetime.now,
        require_sign_on: bool = False, traffic: Callable[[str], None] | None = None,
    ) -> None:
        super().__init__(now=now, require_sign_on=require_sign_on)
        self.host, self.port = host, port
        # Called with one masked line per message in and out (`till host --log-traffic`); None: off.
        self.traffic = traffic
        self._reactor = Reactor(host, port, on_message=self._on_request, on_error=self.internal_errors.append)
        self._held: list[_Pending] = []  # late answers waiting for release_late()
        self._late: list[LateApproval] = []
        self._clear_network_faults()

    def _clear_network_faults(self) -> None:
        self._latency = 0.0
        self._hold = False
        self._drop_left = 0
        self._late_left = 0
        self._late_delay: float | None = None
        self._drop_on_request: bool | None = None  # None: off; True: after deciding; False: before

    # -- faults of the network (thread-safe) --------------------------------------------------
    @property
    def latency(self) -> float:
        """Seconds between deciding and sending every answer (0: at once)."""
        with self._lock:
            return self._latency

    @latency.setter
    def latency(self, seconds: float) -> None:
        if not seconds >= 0:
            raise ValueError("latency is a number of seconds, not negative")
        with self._lock:
            self._latency = float(seconds)

    @property
    def hold_responses(self) -> bool:
        """While True the host decides and books, but every answer is lost on the way back."""
        with self._lock:
            return self._hold

    @hold_responses.setter
    def hold_responses(self, value: bool) -> None:
        with self._lock:
            self._hold = value

    def drop_responses(self, count: int = 1) -> None:
        """The next `count` answers are decided and booked, then lost."""
        if count < 0:
            raise ValueError("a count is not negative")
        with self._lock:
            self._drop_left = count

    def answer_late(self, count: int = 1, *, delay: float | None = None) -> None:
        """The next `count` answers are decided and booked now but sent late: after `delay`
        seconds, or — with None — when `release_late()` is called, after the terminal gave up."""
        if count < 0 or (delay is not None and not delay >= 0):
            raise ValueError("a count and a delay are not negative")
        with self._lock:
            self._late_left, self._late_delay = count, delay

    def release_late(self) -> int:
        """Send the answers `answer_late(delay=None)` is holding; returns how many."""
        return self._reactor.call_in_loop(self._release_held, 0)

    def drop_connections(self) -> int:
        """Close every terminal connection now; returns how many were open."""
        return self._reactor.call_in_loop(self._drop_all, 0)

    def drop_connection_on_next_request(self, *, processed: bool = True) -> None:
        """Close the connection the next request arrives on instead of answering. `processed`:
        the host decides and books first (the answer is lost with the link); otherwise the
        request never reaches the host."""
        with self._lock:
            self._drop_on_request = processed

    def clear_faults(self) -> None:
        """Lift every fault, of the answers and of the network. Held late answers stay held."""
        with self._lock:
            super().clear_faults()
            self._clear_network_faults()

    def status(self) -> str:
        """One line for an operator: where it listens, connections, books, the faults set."""
        with self._lock:
            faults = [name for name, on in (
                (f"latency={self._latency:g}s", self._latency > 0), ("silent", self._hold),
                (f"drop={self._drop_left}", self._drop_left > 0), (f"late={self._late_left}", self._late_left > 0),
                (f"held={len(self._held)}", bool(self._held)),
                (f"decline={self._decline_left}", self._decline_left > 0),
                ("out-of-balance", self._out_of_balance_once),
                ("refuse-mac", self._mac_refused_all or bool(self._mac_refused)),
                (f"upload-fail={self._upload_faults_left}", self._upload_faults_left > 0),
            ) if on]
            entries = len(tuple(self._ledger))
        where = self.url if self._reactor.running else "stopped"
        sign_on = "required" if self.require_sign_on else "optional"  # a setting: `clear` keeps it
        return (f"{where} connections={self.connection_count} ledger={entries} sign-on={sign_on} "
                f"faults={','.join(faults) or 'none'}")

    @property
    def connection_count(self) -> int:
        return self._reactor.call_in_loop(lambda: len(self._reactor.connections), 0)

    @property
    def late_approvals(self) -> tuple[LateApproval, ...]:
        """Approvals sent after their transaction had been reversed (see `note_delivery`)."""
        with self._lock:
            return tuple(self._late)

    def note_delivery(self, request: HostMessage, answer: HostMessage) -> None:
        """Called as an answer leaves: an approval for a transaction reversed meanwhile is logged
        and kept in `late_approvals`. The reversal stands; the ledger does not change."""
        if answer.response_code != "00" or answer.mti not in ("0210", "0230"):
            return
        key = (request.terminal_id or "", request.stan or "", request.text("13") or "")
        with self._lock:
            if not self._ledger.was_reversed(key):
                return
            self._late.append(LateApproval(terminal_id=key[0], stan=key[1], date=key[2], mti=answer.mti))
        log.warning("late approval %s terminal=%s stan=%s after its reversal: the reversal stands",
                    answer.mti, key[0], key[1])

    # -- lifecycle ----------------------------------------------------------------------------
    def start(self) -> None:
        self._reactor.start()
        log.info("acquirer simulator listening on %s", self.url)

    def stop(self) -> None:
        self._reactor.stop()
        with self._lock:
            self._held.clear()  # answers of a host that went away never arrive

    def __enter__(self) -> AcquirerSimulator:
        self.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()

    @property
    def address(self) -> tuple[str, int]:
        return self._reactor.address

    @property
    def url(self) -> str:
        return f"tcp://{join_host_port(*self.address)}"

    # -- the loop thread's side ---------------------------------------------------------------
    def _trace(self, direction: str, message: HostMessage) -> None:
        if self.traffic is not None:
            # The repr masks DE 2 and hides 14, 35, 52, 55, 62; the mask is a second guard.
            self.traffic(mask_card_numbers(f"{direction} {message!r}"))

    def _on_request(self, conn: Connection, request: HostMessage) -> None:
        self._trace("<-", request)
        with self._lock:
            drop, self._drop_on_request = self._drop_on_request, None
        if drop is False:
            log.info("connection dropped before %s stan=%s reached the host", request.mti, request.stan)
            self._reactor.drop(conn)
            return
        answer = self.respond(request)
        if drop:
            log.info("connection dropped after deciding %s stan=%s", request.mti, request.stan)
            self._reactor.drop(conn)
        elif answer is not None:
            self._schedule(_Pending(conn, request, answer))

    def _schedule(self, pending: _Pending) -> None:
        what = f"{pending.answer.mti} stan={pending.answer.stan}"
        with self._lock:
            lost = self._hold or self._drop_left > 0
            if lost and not self._hold:
                self._drop_left -= 1
            delay, held = self._latency, False
            if not lost and self._late_left > 0:
                self._late_left -= 1
                if self._late_delay is None:
                    self._held.append(pending)
                    held = True
                else:
                    delay = max(delay, self._late_delay)
        if lost:
            log.info("answer %s lost on the way back", what)
        elif held:
            log.info("answer %s held until released", what)
        elif delay > 0:
            self._reactor.call_later(delay, lambda: self._deliver(pending))
        else:
            self._deliver(pending)

    def _deliver(self, pending: _Pending) -> None:
        conn = pending.conn
        if not conn.open:
            # The link it came on is gone: the host routes the answer to the terminal's newest one.
            newer = [c for c in self._reactor.connections if c.terminal_id and c.terminal_id == conn.terminal_id]
            if not newer:
                log.info("answer %s stan=%s lost: its connection is closed", pending.answer.mti, pending.answer.stan)
                return
            conn = newer[-1]
        self.note_delivery(pending.request, pending.answer)
        self._trace("->", pending.answer)
        self._reactor.send(conn, pending.answer)

    def _release_held(self) -> int:
        with self._lock:
            held, self._held = self._held, []
        for pending in held:
            self._deliver(pending)
        return len(held)

    def _drop_all(self) -> int:
        conns = list(self._reactor.connections)
        for conn in conns:
            self._reactor.drop(conn)
        log.info("dropped %d terminal connection(s) on request", len(conns))
        return len(conns)


def parse_listen(listen: str) -> tuple[str, int]:
    """"HOST:PORT" (IPv6 as "[::1]:PORT") -> (host, port); ValueError when it is not one."""
    return parse_host_port(listen)


def serve_forever_main(listen: str, *, now: Callable[[], datetime] = datetime.now,
                       state: Path | None = None) -> AcquirerSimulator:
    """Start a simulator on `listen` ("127.0.0.1:PORT"; port 0 picks one) and return it running.
    `state`: the folder of its books (use_folder), so a restart is the same host.
    The caller waits (e.g. until Ctrl-C) and calls `stop()`; `url` says where it listens.
    Prints nothing; ValueError for a malformed address or unreadable books, OSError when it
    cannot be bound."""
    host, port = parse_listen(listen)
    simulator = AcquirerSimulator(host=host, port=port, now=now)
    if state is not None:
        try:
            simulator.use_folder(state)
        except OSError as exc:
            raise ValueError(f"{state}: cannot keep the host's books there: {exc.strerror or exc}") from exc
    simulator.start()
    return simulator
