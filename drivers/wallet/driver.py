"""The wallet gateway driver: signed JSON over HTTP(S) POST, or an in-process `emu://wallet` peer.

Polled like every driver, never blocking: `send(request)` queues one request and returns at once
(a `DeviceFault` only when there is nowhere to send it); `poll()` returns the answers that have
arrived, one `WalletAnswer` per request, in order. Whatever stops a clear answer — a timeout, a
refused connection, HTTP 5xx, a body that is not JSON, a missing or wrong signature — is that
request's `WalletAnswer(state=UNKNOWN, clear=False, message=why)`: the checkout queries after it.
HTTP 202 ("in progress") is an answer like 200 (its order is USERPAYING, `clear=False`), never an error.

Over `http://` / `https://` one worker thread does the HTTP with httpx (imported when the first
request goes, so a till without a wallet never loads it), bounded by the profile's `timeout_s`;
`ca_file` names the CA that signs the gateway's certificate (a private CA, or a self-signed one
on a test bench). When an answer is ready a byte lands on a pipe: `fileno()` is its read end, so
the runtime's select wakes for it.

Over `emu://wallet` (drivers/transport.py peers) the request bytes go to the peer inside
`send()` and its answer is there at the next `poll()`, as for emu://acquirer: scenario tests run
on virtual time. A synchronous peer that sends nothing back will never answer, so the request is
answered UNKNOWN ("no answer") at once — what a timeout would say, without waiting for it.
"""

from __future__ import annotations

import contextlib
import logging
import os
import queue
import threading
from collections import deque
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

from drivers.errors import PortError, ProtocolError
from drivers.events import DeviceFault, FaultKind, Role
from drivers.transport import Peer, resolve_peer
from drivers.wallet.codec import AnyRequest, WalletCodec, op_of
from drivers.wallet.events import Statement, TradeState, WalletAnswer

if TYPE_CHECKING:
    import ssl

__all__ = ["DEFAULT_TIMEOUT_S", "WalletDriver"]

log = logging.getLogger("drivers.wallet")

DEFAULT_TIMEOUT_S = 10.0


def _order_no(request: AnyRequest) -> str:
    return "" if isinstance(request, Statement) else request.order_no


def _unknown(request: AnyRequest, why: str, status: int = 0) -> WalletAnswer:
    return WalletAnswer(op=op_of(request), order_no=_order_no(request), state=TradeState.UNKNOWN, clear=False,
                        message=why, http_status=status)


class WalletDriver:
    family = "wallet"

    def __init__(self, url: str, settings: Mapping[str, Any] | None = None, *, timeout: float | None = None) -> None:
        if not url.startswith(("http://", "https://", "emu://")):
            raise ValueError(f"wallet url {url!r} is not http(s)://HOST[:PORT][/PATH] or emu://wallet")
        s: Mapping[str, Any] = settings or {}
        wallet = s.get("wallet", s)
        self.settings: Mapping[str, Any] = wallet if isinstance(wallet, Mapping) else {}
        self.url = url.rstrip("/")
        self.timeout = float(timeout if timeout is not None else self.settings.get("timeout_s", DEFAULT_TIMEOUT_S))
        self.ca_file = str(self.settings.get("ca_file", "") or "")
        self.codec = WalletCodec(Role.HOST, s)
        self._emu = url.startswith("emu://")
        self._peer: Peer | None = None
        self._owns_peer = False
        self._ready: deque[WalletAnswer] = deque()
        self._lock = threading.Lock()
        self._outstanding = 0
        self._jobs: queue.SimpleQueue[tuple[AnyRequest, str, bytes] | None] = queue.SimpleQueue()
        self._worker: threading.Thread | None = None
        self._wake_r = self._wake_w = -1

    # -- lifecycle ----------------------------------------------------------------------------
    def open(self) -> None:
        """Nothing to open ahead: an HTTP request connects itself, an emu:// peer is found at the first send."""

    def close(self) -> None:
        worker, self._worker = self._worker, None
        if worker is not None:
            self._jobs.put(None)
            worker.join()
        for fd in (self._wake_r, self._wake_w):
            if fd >= 0:
                os.close(fd)
        self._wake_r = self._wake_w = -1
        peer, self._peer = self._peer, None
        if peer is not None and self._owns_peer:
            peer.close()
        self._outstanding = 0

    def __enter__(self) -> WalletDriver:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # -- requests and answers ----------------------------------------------------------------------
    def send(self, request: AnyRequest) -> DeviceFault | None:
        """Queue one request (a LocalProtocolError for one we may not send: our bug)."""
        if self._emu:
            return self._send_peer(request)
        path, body = self.codec.request_of(request)  # built here: a bad request raises in the caller
        self._start_worker()
        with self._lock:
            self._outstanding += 1
        self._jobs.put((request, path, body))
        return None

    def poll(self) -> list[WalletAnswer | DeviceFault]:
        """The answers that have arrived, in the order their requests were sent; [] when none."""
        if self._wake_r >= 0:
            with contextlib.suppress(BlockingIOError):
                os.read(self._wake_r, 4096)
        with self._lock:
            answers: list[WalletAnswer | DeviceFault] = list(self._ready)
            self._ready.clear()
            self._outstanding = max(0, self._outstanding - len(answers))
        return answers

    def expecting(self) -> bool:
        """Is an answer still due? The runtime waits on this driver only then."""
        with self._lock:
            return self._outstanding > 0

    def fileno(self) -> int | None:
        """Readable when an HTTP answer is ready (None for emu://: poll again at once)."""
        return self._wake_r if self._wake_r >= 0 else None

    def wake_in(self) -> float | None:
        return None

    # -- emu:// --------------------------------------------------------------------------------------
    def _send_peer(self, request: AnyRequest) -> DeviceFault | None:
        if self._peer is None:
            try:
                self._peer, self._owns_peer = resolve_peer(self.url)
            except PortError as exc:
                return DeviceFault(device=self.family, kind=FaultKind.DISCONNECTED,
                                   detail=f"cannot reach wallet gateway {self.url}: {exc}")
        frame = self.codec.send(request)
        self._peer.receive(frame)
        self.codec.receive_data(self._peer.transmit())
        answer: WalletAnswer | None = None
        try:
            event = self.codec.next_event()
            answer = event if isinstance(event, WalletAnswer) else None
        except ProtocolError as exc:
            log.warning("wallet gateway %s broke the HTTP framing: %s", self.url, exc)
        if answer is None:
            self.codec.forget_pending()
            answer = _unknown(request, "no answer from the gateway")
        with self._lock:
            self._ready.append(answer)
            self._outstanding += 1
        return None

    # -- http(s):// -------------------------------------------------------------------------------------
    def _start_worker(self) -> None:
        if self._worker is not None:
            return
        self._wake_r, self._wake_w = os.pipe()
        os.set_blocking(self._wake_r, False)
        os.set_blocking(self._wake_w, False)
        self._worker = threading.Thread(target=self._work, name=f"wallet {self.url}", daemon=True)
        self._worker.start()

    def _verify(self) -> ssl.SSLContext | bool:
        if not self.url.startswith("https://"):
            return True
        import ssl  # on the worker, with httpx: a till without a wallet never loads OpenSSL's TLS

        return ssl.create_default_context(cafile=self.ca_file or None)

    def _work(self) -> None:
        client: Any = None
        try:
            import httpx  # a well-kept client: TLS, timeouts and connection reuse done right

            client = httpx.Client(timeout=self.timeout, verify=self._verify(), trust_env=False)
            broken = ""
        except Exception as exc:  # no client (a missing ca_file, no httpx): every request says why
            broken = f"cannot set up the HTTP client: {type(exc).__name__}: {exc}"
            log.error("wallet %s: %s", self.url, broken)
        try:
            while (job := self._jobs.get()) is not None:
                request, path, body = job
                answer = _unknown(request, broken) if broken else self._exchange(client, httpx, request, path, body)
                with self._lock:
                    self._ready.append(answer)
                with contextlib.suppress(BlockingIOError):  # a full pipe holds wake-ups enough
                    os.write(self._wake_w, b"!")
        finally:
            if client is not None:
                client.close()

    def _exchange(self, client: Any, httpx: Any, request: AnyRequest, path: str, body: bytes) -> WalletAnswer:
        try:
            response = client.post(self.url + path, content=body,
                                   headers={"Content-Type": "application/json; charset=utf-8"})
            return self.codec.answer_of(request, response.status_code, response.content)
        except httpx.TimeoutException:
            return _unknown(request, f"no answer within {self.timeout:g} s")
        except httpx.HTTPError as exc:
            return _unknown(request, f"gateway unreachable: {type(exc).__name__}: {exc}")
        except Exception as exc:  # a failure in the client must not kill the worker and strand the request
            log.error("wallet request failed inside the client: %s", type(exc).__name__)
            return _unknown(request, f"client error: {type(exc).__name__}")
