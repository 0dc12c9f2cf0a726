"""ISO 8583 acquirer simulator: a TCP server speaking the shared codec (drivers/acquirer).

Decisions live in `respond()`, a plain method tests can call without sockets; the server is a
`selectors` loop on one background thread (woken by a socketpair to stop, so nothing polls or
sleeps). The issuer's answer comes from the test-card catalogue (emulator/cards.toml).

Ledger: one entry per (terminal id, STAN, date), created when the host decides. A repeat of
the same key replays the first answer and adds nothing (duplicate detection), so a terminal
that retries after a timeout never pays twice. With `hold_responses` the host still decides
and books, but the answer is lost on the way back: the case a reversal exists for.

Nothing sensitive is logged: log lines carry MTI, terminal id, STAN and response code only.
"""

from __future__ import annotations

import itertools
import logging
import selectors
import socket
import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime
from typing import Final

from drivers.acquirer.codec import AcquirerCodec
from drivers.acquirer.events import HostMessage, response_mti
from drivers.errors import ProtocolError
from drivers.events import Role
from emulator.cards import card_by_pan

__all__ = ["AcquirerSimulator", "LedgerEntry"]

log = logging.getLogger(__name__)

APPROVED: Final = "00"
DO_NOT_HONOUR: Final = "05"  # also the answer for a PAN the issuer does not know
INVALID_TRANSACTION: Final = "12"
FORMAT_ERROR: Final = "30"
_ECHOED: Final = ("3", "4", "11", "41", "42", "49", "60")  # copied into the answer
_RECV_SIZE: Final = 4096
_JOIN_TIMEOUT: Final = 10.0  # a bound on a bug, not a wait: the loop exits at the first wake


@dataclass(frozen=True, kw_only=True)
class LedgerEntry:
    terminal_id: str
    stan: str
    date: str  # DE 13, MMDD
    amount_minor: int
    response_code: str
    answer: HostMessage  # replayed verbatim for a duplicate; carries no card data

    @property
    def approved(self) -> bool:
        return self.response_code == APPROVED


@dataclass(eq=False)
class _Connection:
    sock: socket.socket
    codec: AcquirerCodec = field(default_factory=lambda: AcquirerCodec(Role.DEVICE))
    outbox: bytearray = field(default_factory=bytearray)


_ACCEPT: Final = object()
_WAKE: Final = object()


class AcquirerSimulator:
    def __init__(self, *, host: str = "127.0.0.1", port: int = 0, now: Callable[[], datetime] = datetime.now) -> None:
        self.host = host
        self.port = port
        self.hold_responses = False  # read by the server thread; a plain bool is atomic enough
        self.internal_errors: list[BaseException] = []  # bugs in respond(); tests assert it empty
        self._now = now
        self._lock = threading.Lock()
        self._ledger: dict[tuple[str, str, str], LedgerEntry] = {}
        self._auth_codes = itertools.count(1)
        self._rrns = itertools.count(1)
        self._thread: threading.Thread | None = None
        self._listener: socket.socket | None = None
        self._selector: selectors.BaseSelector | None = None
        self._wake_r: socket.socket | None = None
        self._wake_w: socket.socket | None = None
        self._stopping = False
        self._connections: set[_Connection] = set()

    # -- decisions (no sockets) -------------------------------------------------------------
    def respond(self, request: HostMessage) -> HostMessage | None:
        """The host's answer to one request; None for a message that gets no answer."""
        if request.mti == "0200":
            return self._sale(request)
        if request.mti == "0800":
            return self._answer(request, "0810", APPROVED)
        if int(request.mti[2]) % 2:
            return None  # a response or advice response: nothing to answer
        return self._answer(request, response_mti(request.mti), INVALID_TRANSACTION)

    def _answer(self, request: HostMessage, mti: str, code: str, **extra: str) -> HostMessage:
        fields: dict[str, str | bytes] = {k: v for k in _ECHOED if (v := request.get(k)) is not None}
        now = self._now()
        fields.update({"12": now.strftime("%H%M%S"), "13": now.strftime("%m%d"), "39": code, **extra})
        return HostMessage(mti=mti, fields=fields)

    def _sale(self, request: HostMessage) -> HostMessage:
        terminal_id, stan, date = request.terminal_id, request.stan, request.text("13")
        amount, processing = request.text("4"), request.text("3")
        if not (terminal_id and stan and date and amount and processing):
            return self._answer(request, "0210", FORMAT_ERROR)
        if not processing.startswith("00"):
            return self._answer(request, "0210", INVALID_TRANSACTION)  # voids etc.: not yet
        key = (terminal_id, stan, date)
        with self._lock:
            first = self._ledger.get(key)
            if first is not None:
                log.info("duplicate 0200 terminal=%s stan=%s: replaying %s", terminal_id, stan, first.response_code)
                return first.answer
            card = card_by_pan(_pan_of(request))
            code = card.response_code if card is not None else DO_NOT_HONOUR
            extra: dict[str, str] = {}
            if code == APPROVED:
                extra = {"37": f"{next(self._rrns):012d}", "38": f"{next(self._auth_codes):06d}"}
            answer = self._answer(request, "0210", code, **extra)
            self._ledger[key] = LedgerEntry(
                terminal_id=terminal_id,
                stan=stan,
                date=date,
                amount_minor=int(amount),
                response_code=code,
                answer=answer,
            )
        log.info("0200 terminal=%s stan=%s -> %s", terminal_id, stan, code)
        return answer

    @property
    def ledger(self) -> tuple[LedgerEntry, ...]:
        with self._lock:
            return tuple(self._ledger.values())

    def net_effect(self, terminal_id: str, stan: str) -> int:
        """Minor units the cardholder pays for this terminal's STAN (approved sales)."""
        with self._lock:
            return sum(
                e.amount_minor
                for e in self._ledger.values()
                if e.terminal_id == terminal_id and e.stan == stan and e.approved
            )

    # -- server lifecycle -------------------------------------------------------------------
    def start(self) -> None:
        if self._thread is not None:
            raise RuntimeError("the acquirer simulator is already running")
        selector = selectors.DefaultSelector()
        listener = socket.create_server((self.host, self.port))
        wake_r, wake_w = socket.socketpair()
        for sock in (listener, wake_r):
            sock.setblocking(False)
        selector.register(listener, selectors.EVENT_READ, _ACCEPT)
        selector.register(wake_r, selectors.EVENT_READ, _WAKE)
        self._selector, self._listener, self._wake_r, self._wake_w = selector, listener, wake_r, wake_w
        self._stopping = False
        self._thread = threading.Thread(target=self._serve, name="acquirer-simulator", daemon=True)
        self._thread.start()
        log.info("acquirer simulator listening on %s", self.url)

    def stop(self) -> None:
        thread, self._thread = self._thread, None
        if thread is None:
            return
        self._stopping = True
        assert self._wake_w is not None
        self._wake_w.send(b"\0")
        thread.join(_JOIN_TIMEOUT)
        for sock in (self._wake_r, self._wake_w):
            if sock is not None:
                sock.close()
        self._wake_r = self._wake_w = None
        if thread.is_alive():
            raise RuntimeError("the acquirer simulator thread did not stop")

    def __enter__(self) -> AcquirerSimulator:
        self.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()

    @property
    def address(self) -> tuple[str, int]:
        if self._listener is None or self._thread is None:
            raise RuntimeError("the acquirer simulator is not running")
        host, port = self._listener.getsockname()[:2]
        return str(host), int(port)

    @property
    def url(self) -> str:
        host, port = self.address
        return f"tcp://{host}:{port}"

    # -- server loop (background thread) ----------------------------------------------------
    def _serve(self) -> None:
        selector = self._selector
        assert selector is not None
        try:
            while not self._stopping:
                for key, mask in selector.select():
                    if key.data is _WAKE:
                        return
                    if key.data is _ACCEPT:
                        self._accept(selector)
                        continue
                    conn: _Connection = key.data
                    if mask & selectors.EVENT_READ:
                        self._on_readable(selector, conn)
                    if mask & selectors.EVENT_WRITE and conn in self._connections:
                        self._flush(selector, conn)
        finally:
            for conn in list(self._connections):
                self._drop(selector, conn)
            if self._listener is not None:
                self._listener.close()
                self._listener = None
            selector.close()

    def _accept(self, selector: selectors.BaseSelector) -> None:
        assert self._listener is not None
        try:
            sock, _ = self._listener.accept()
        except (BlockingIOError, InterruptedError):
            return
        sock.setblocking(False)
        conn = _Connection(sock=sock)
        self._connections.add(conn)
        selector.register(sock, selectors.EVENT_READ, conn)

    def _drop(self, selector: selectors.BaseSelector, conn: _Connection) -> None:
        self._connections.discard(conn)
        selector.unregister(conn.sock)
        conn.sock.close()

    def _on_readable(self, selector: selectors.BaseSelector, conn: _Connection) -> None:
        try:
            data = conn.sock.recv(_RECV_SIZE)
        except (BlockingIOError, InterruptedError):
            return
        except OSError:
            data = b""
        if not data:
            self._drop(selector, conn)
            return
        conn.codec.receive_data(data)
        try:
            while (request := conn.codec.next_event()) is not None:
                answer = self.respond(request)
                if answer is not None and not self.hold_responses:
                    conn.outbox += conn.codec.send(answer)
        except ProtocolError as exc:
            # The message is content-free by the codec's contract, so logging it is safe.
            log.warning("dropping a terminal connection: %s", exc)
            self._drop(selector, conn)
            return
        except Exception as exc:  # a bug in respond(): keep serving others, let tests see it
            log.error("internal error (%s); dropping the connection", type(exc).__name__)
            self.internal_errors.append(exc)
            self._drop(selector, conn)
            return
        self._flush(selector, conn)

    def _flush(self, selector: selectors.BaseSelector, conn: _Connection) -> None:
        try:
            sent = conn.sock.send(conn.outbox) if conn.outbox else 0
        except (BlockingIOError, InterruptedError):
            sent = 0
        except OSError:
            self._drop(selector, conn)
            return
        del conn.outbox[:sent]
        events = selectors.EVENT_READ | (selectors.EVENT_WRITE if conn.outbox else 0)
        selector.modify(conn.sock, events, conn)


def _pan_of(request: HostMessage) -> str:
    """DE 2, or the PAN part of track 2 (DE 35) for a swipe that sent no DE 2."""
    pan = request.text("2")
    if pan:
        return pan
    track2 = request.text("35") or ""
    return track2.replace("D", "=").split("=", 1)[0]
