"""The payment API over HTTP: the standard library's threading server, the web terminal's
files, the register's bearer token and the browser's session cookie with its CSRF token.

A till has one register and a browser or two, the routes are few, and the stdlib server costs
nothing at start-up or in memory on a Pi (measured in bench/). Every request is answered by a
thread of the server; what a request does is `Api.dispatch`'s (api.py).

With a certificate (`till run --cert PEM --key PEM`) it serves HTTPS: the TLS handshake is done
on the connection's own thread (a slow or plain-HTTP client never holds up the others) and the
session cookie is `Secure`. A register or tablet on the shop's network then never sends the
token, a PIN or the cookie in clear.
"""

from __future__ import annotations

import contextlib
import hmac
import json
import logging
import secrets
import socket
import ssl
import threading
from http import HTTPStatus
from http.cookies import CookieError, SimpleCookie
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlsplit

from terminal.errors import ConfigError
from terminal.security.files import write_private
from terminal.service.api import Api
from terminal.service.routes import MAX_BODY, ApiError, Route, check_body, error_of, match
from terminal.service.sessions import COOKIE, Session, Sessions

__all__ = ["CSP", "STATIC", "ApiServer", "load_or_create_token", "tls_context"]

log = logging.getLogger(__name__)
KEEPALIVE_S = 15.0  # an SSE comment this often, so proxies and browsers keep the stream
WEB = Path(__file__).resolve().parent / "web"
STATIC = {"index.html": "text/html; charset=utf-8", "app.js": "text/javascript; charset=utf-8",
          "app.css": "text/css; charset=utf-8", "i18n.js": "text/javascript; charset=utf-8",
          "devices.js": "text/javascript; charset=utf-8"}
CSP = ("default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data: blob:; "
       "connect-src 'self'; frame-ancestors 'none'; base-uri 'none'; form-action 'self'")


def load_or_create_token(var_dir: Path) -> str:
    """The register's API token, var/api.token (0600), made at the first start."""
    path = var_dir / "api.token"
    try:
        token = path.read_text(encoding="ascii").strip()
    except FileNotFoundError:
        token = secrets.token_urlsafe(32)
        write_private(path, (token + "\n").encode())
        return token
    except (OSError, UnicodeDecodeError) as exc:
        raise ConfigError(f"{path}: cannot read the API token: {exc}") from exc
    if len(token) < 16:
        raise ConfigError(f"{path}: the API token is too short (delete the file to make a new one)")
    return token


def tls_context(cert: Path, key: Path | None = None) -> ssl.SSLContext:
    """The server side of HTTPS from a PEM certificate chain and its private key (`key` None: the
    key is in the chain's file); TLS 1.2 at least. A file that will not load is a ConfigError."""
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    context.minimum_version = ssl.TLSVersion.TLSv1_2
    try:
        # No pass phrase: a service started by systemd has no one to type it (OpenSSL would ask on
        # the tty and wait); an encrypted key is refused instead.
        context.load_cert_chain(cert, key, password=lambda: b"")
    except (OSError, ssl.SSLError) as exc:
        raise ConfigError(f"--cert {cert}{f' --key {key}' if key else ''}: cannot load the certificate and its key"
                          f" ({getattr(exc, 'strerror', None) or exc}); the key must be PEM, unencrypted, readable"
                          " by the till's user only") from None
    return context


class ApiServer:
    """The HTTP server of one service; `start()` serves on its own thread, `close()` ends it.
    `tls`: serve HTTPS with this context (`tls_context`)."""

    def __init__(self, api: Api, *, host: str = "127.0.0.1", port: int = 8080, token: str,
                 sessions: Sessions | None = None, tls: ssl.SSLContext | None = None) -> None:
        self.api, self.service, self.token, self.tls = api, api.service, token, tls
        self.sessions = sessions or Sessions(api.service.till.clock.now)  # the web terminal's operators
        server = self

        class Handler(_Handler):
            server_api = server

        self.httpd = ThreadingHTTPServer((host, port), Handler)
        if tls is not None:  # accept() hands over a TLS socket; its handshake is the handler's (setup)
            self.httpd.socket = tls.wrap_socket(self.httpd.socket, server_side=True, do_handshake_on_connect=False)
        self.httpd.daemon_threads = False  # joined at close: no request is cut off mid-answer
        self._thread: threading.Thread | None = None
        self.connections: set[Any] = set()  # open client sockets, shut at close so their threads end

    @property
    def url(self) -> str:
        host, port = self.httpd.server_address[:2]
        return f"{'https' if self.tls else 'http'}://{host!s}:{port}"

    @property
    def cookie_flags(self) -> str:
        """The session cookie's attributes: `Secure` too when served over HTTPS."""
        return "Path=/; HttpOnly; SameSite=Strict" + ("; Secure" if self.tls else "")

    def start(self) -> None:
        self._thread = threading.Thread(target=self.httpd.serve_forever, kwargs={"poll_interval": 0.2},
                                        name="payment-api", daemon=True)
        self._thread.start()

    def close(self) -> None:
        self.service.bus.close()  # event streams end, so their threads return
        self.httpd.shutdown()
        for connection in list(self.connections):
            with contextlib.suppress(OSError):
                connection.shutdown(socket.SHUT_RDWR)
        self.httpd.server_close()
        if self._thread is not None:
            self._thread.join()

def _static_name(path: str) -> str | None:
    """The web terminal's file a GET names ("/" is the page), or None for an API path."""
    if path in ("/", "/ui", "/ui/"):
        return "index.html"
    name = path.removeprefix("/ui/")
    return name if name != path and name in STATIC else None



class _Handler(BaseHTTPRequestHandler):
    server_api: ApiServer
    _unread = False  # a body that came with the request and was not read yet
    _headers: list[tuple[str, str]]  # sent with this request's answer (a cookie)
    server_version = "OpenTill"
    protocol_version = "HTTP/1.1"
    # Headers and body leave as two writes: with Nagle on, each answer waited ~40 ms for the
    # client's delayed ACK (bench/service.py: a status call 44 ms -> 0.3 ms).
    disable_nagle_algorithm = True

    timeout = 60.0  # an idle keep-alive connection is let go after this (and at close, at once)

    _handshake_failed = False

    def setup(self) -> None:
        # Known before the handshake: close() shuts a connection still in it (a port scanner's
        # silent connect must not hold a stopping till for the handshake's timeout).
        self.server_api.connections.add(self.request)
        if self.server_api.tls is not None:
            self.request.settimeout(self.timeout)
            self._handshake()
        super().setup()

    def _handshake(self) -> None:
        """TLS, on this connection's thread (not the accepting one)."""
        try:
            self.request.do_handshake()
        except OSError as exc:  # ssl.SSLError too: plain HTTP to the HTTPS port, a scanner, a timeout, close()
            log.debug("TLS handshake with %s failed: %s", self.client_address[0], exc)
            self._handshake_failed = True

    def handle(self) -> None:
        if self._handshake_failed:
            return
        try:
            super().handle()
        except (ConnectionResetError, BrokenPipeError, ssl.SSLError):  # the client went away or broke TLS:
            self.close_connection = True                               # its connection ends, no traceback

    def finish(self) -> None:
        self.server_api.connections.discard(self.request)
        super().finish()

    def send_error(self, code: int, message: str | None = None, explain: str | None = None) -> None:
        """The server's own refusals (a request line it cannot parse, headers too long) in JSON too."""
        self.close_connection = True
        self._send(code, {"error": {"code": "bad_http", "message": message or HTTPStatus(code).phrase}})

    def log_message(self, format: str, *args: Any) -> None:
        log.debug("%s %s", self.address_string(), format % args)  # never the body: it may hold a PIN

    def do_GET(self) -> None:
        self._serve("GET")

    def do_POST(self) -> None:
        self._serve("POST")

    def do_PUT(self) -> None:
        self._serve("PUT")

    def do_DELETE(self) -> None:
        self._serve("DELETE")

    def _serve(self, method: str) -> None:
        api = self.server_api
        self._unread = "Content-Length" in self.headers or "Transfer-Encoding" in self.headers
        self._headers = []
        try:
            url = urlsplit(self.path)
            if method == "GET" and (name := _static_name(url.path)) is not None:
                self._static(name)
                return
            route, params = match(method, url.path)
            session = self._authorise(api, method) if route.auth else None
            query = {k: v[-1] for k, v in parse_qs(url.query, keep_blank_values=True).items()}
            body = self._body(route) if method == "POST" else {}
            if route.op == "events":
                self._events(query.get("after", ""), session)
                return
            if route.op in ("login", "logout", "session"):
                status, payload = self._ui(route.op, body, session)
            else:
                status, payload = api.api.handle(route, params, query, body, None)
        except BaseException as exc:
            if not isinstance(exc, Exception):
                raise
            self._discard_body()
            error = error_of(exc)
            self._send(error.status, {"error": {"code": error.code, "message": error.message}})
            return
        self._send(status, payload)

    def _discard_body(self) -> None:
        """A request refused before its body was read: read it away (or close), so the next
        request on this connection does not start in the middle of it."""
        if self._unread:
            length = self.headers.get("Content-Length", "")
            if length.isdigit() and int(length) <= MAX_BODY:
                self.rfile.read(int(length))
            else:
                self.close_connection = True
            self._unread = False

    def _authorise(self, api: ApiServer, method: str) -> Session | None:
        """The register's bearer token, or a signed-in operator's session cookie (the browser);
        a session's state-changing request must also carry its CSRF token."""
        given = self.headers.get("Authorization", "")
        if not given:
            session = api.sessions.get(self._cookie())
            if session is not None:
                if method != "GET" and not api.sessions.csrf_ok(session, self.headers.get("X-CSRF-Token", "")):
                    raise ApiError(403, "csrf", "X-CSRF-Token is missing or wrong (sign in again)")
                return session
        scheme, _, value = given.partition(" ")
        if scheme.lower() != "bearer" or not value:
            raise ApiError(401, "unauthorised", "Authorization: Bearer <token from var/api.token> is required"
                                                " (or sign in at the web terminal)")
        if not hmac.compare_digest(value.strip().encode(), api.token.encode()):
            raise ApiError(401, "unauthorised", "wrong API token")
        return None

    def _cookie(self) -> str:
        try:
            morsel = SimpleCookie(self.headers.get("Cookie", "")).get(COOKIE)
        except CookieError:
            return ""
        return "" if morsel is None else morsel.value

    def _ui(self, op: str, body: dict[str, Any], session: Session | None) -> tuple[int, Any]:
        """The web terminal's sign-in, sign-out and who-am-I."""
        api = self.server_api
        service, till = api.service, api.service.till
        if op == "login":
            # JSON only: a form another site posts cannot say application/json without a CORS
            # preflight we never answer, so no page elsewhere signs this browser in.
            if not self.headers.get("Content-Type", "").startswith("application/json"):
                raise ApiError(415, "bad_request", "sign in with a JSON body (Content-Type: application/json)")
            operator, pin = str(body["operator"]), str(body["pin"])

            def sign_in() -> str:  # AccessControl.sign_in: one PBKDF2, lockout, audited either way
                till.sign_in(operator, pin)
                return str(till.access.store.get(operator).role)

            role = service.call(sign_in)
            api.sessions.end(self._cookie())  # a new sign-in replaces this browser's session
            session = api.sessions.create(operator, role)
            self._headers.append(("Set-Cookie", f"{COOKIE}={session.id}; {api.cookie_flags}"))
            return 200, session.public()
        if session is None:
            raise ApiError(401, "unauthorised", "sign in at the web terminal first")
        if op == "session":
            return 200, session.public()
        api.sessions.end(session.id)
        name = session.operator
        service.call(lambda: till.sign_out() if till.cashier == name else None)
        self._headers.append(("Set-Cookie", f"{COOKIE}=; {api.cookie_flags}; Max-Age=0"))
        return 200, {"signed_out": name}

    def _static(self, name: str) -> None:
        try:
            data = (WEB / name).read_bytes()
        except OSError:
            raise ApiError(404, "not_found", f"no such file: {name}") from None
        if name == "index.html":
            self._headers += [("Content-Security-Policy", CSP), ("X-Frame-Options", "DENY")]
        self._send(200, (data, STATIC[name]))

    def _body(self, route: Route) -> dict[str, Any]:
        length = self.headers.get("Content-Length")
        if self.headers.get("Transfer-Encoding", "").lower() == "chunked":
            self.close_connection = True
            raise ApiError(411, "length_required", "send the body with a Content-Length")
        if length is None or not length.isdigit():
            if route.body is None or not route.body:
                return {}
            raise ApiError(411, "length_required", "a JSON body with a Content-Length is required")
        size = int(length)
        if size > MAX_BODY:
            raise ApiError(413, "too_large", f"the body is {size} bytes; at most {MAX_BODY}")
        raw = self.rfile.read(size)
        self._unread = False
        if not raw and not route.body:
            return {}
        try:
            body = json.loads(raw)
        except (UnicodeDecodeError, json.JSONDecodeError, RecursionError) as exc:
            raise ApiError(400, "bad_json", f"the body is not JSON: {str(exc)[:100]}") from None
        if route.body is None:
            raise ApiError(400, "bad_request", "this endpoint takes no body")
        return check_body(route, body)

    def _send(self, status: int, payload: Any) -> None:
        if isinstance(payload, (bytes, bytearray)):
            data, kind = bytes(payload), "application/octet-stream"
        elif isinstance(payload, tuple):  # (bytes, content type)
            data, kind = payload
        else:
            data, kind = json.dumps(payload, ensure_ascii=False).encode(), "application/json; charset=utf-8"
        try:
            self.send_response(status, HTTPStatus(status).phrase if status in HTTPStatus._value2member_map_ else "")
            self.send_header("Content-Type", kind)
            self.send_header("Content-Length", str(len(data)))
            self.send_header("Cache-Control", "no-store")
            self.send_header("X-Content-Type-Options", "nosniff")
            for name, value in getattr(self, "_headers", ()):
                self.send_header(name, value)
            if self.close_connection:
                self.send_header("Connection", "close")
            self.end_headers()
            self.wfile.write(data)
        except (BrokenPipeError, ConnectionResetError):
            self.close_connection = True

    def _events(self, after: str, session: Session | None = None) -> None:
        """Server-sent events until the client leaves or the service stops (or, for a browser,
        until its session ends: an open stream does not keep a session alive, nor outlive it)."""
        last = self.headers.get("Last-Event-ID", "") or after
        subscription = self.server_api.service.bus.subscribe(after=int(last) if last.isdigit() else None)
        try:
            self.send_response(200)
            self.send_header("Content-Type", "text/event-stream; charset=utf-8")
            self.send_header("Cache-Control", "no-store")
            self.end_headers()
            self.close_connection = True
            self.wfile.write(b"retry: 1000\n\n")
            self.wfile.flush()
            sessions = self.server_api.sessions
            while not subscription.closed and (session is None or sessions.alive(session.id)):
                event = subscription.next(KEEPALIVE_S)
                self.wfile.write(b": ping\n\n" if event is None else event.sse())
                self.wfile.flush()
        except (BrokenPipeError, ConnectionResetError):
            pass
        finally:
            subscription.close()
