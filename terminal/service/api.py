"""The payment API: HTTP + JSON on loopback, for the cash register (ECR) and the web terminal.

After the local terminal APIs of the big terminal vendors: the register starts a payment with
its own `order_id` (idempotent: asking again returns the same payment, never a second charge),
reads it back by that id after any crash or restart, may cancel it while the customer has not
paid, and follows what the terminal shows on a server-sent-event stream. Operator functions
(void, refund, settlement, reprint) take the supervisor's own id and PIN in the body, bound to
that one operation and audited by the till's access control.

Built on the standard library's threading HTTP server: a till has one register and a browser
or two, the routes are few, and it costs nothing at start-up or in memory on a Pi (measured in
bench/). Every request is answered by a thread of the server; the till itself is only touched
on the service loop's thread (`Service.call`). Every error is a JSON body `{"error": {"code",
"message"}}` with a 4xx/5xx status, and changes nothing. The route table below is also the
OpenAPI document (`openapi()`, docs/openapi.json, served at /v1/openapi.json).
"""

from __future__ import annotations

import contextlib
import hmac
import json
import logging
import re
import secrets
import socket
import threading
from collections.abc import Callable, Mapping
from concurrent.futures import TimeoutError as FutureTimeout
from http import HTTPStatus
from http.cookies import CookieError, SimpleCookie
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any, NamedTuple
from urllib.parse import parse_qs, urlsplit

from terminal.errors import AmountRefused, ConfigError, InputError, JournalError, TerminalError
from terminal.journal.orders import OrderConflict
from terminal.security.access import AccessDenied
from terminal.security.files import write_private
from terminal.service.loop import Service, ServiceStopped
from terminal.service.operations import Operations
from terminal.service.payments import JournalReader, parse_payment, payment_view
from terminal.service.sessions import COOKIE, Session, Sessions

__all__ = ["MAX_BODY", "ROUTES", "STATIC", "Api", "ApiError", "ApiServer", "load_or_create_token", "openapi"]

log = logging.getLogger(__name__)
MAX_BODY = 64 * 1024  # a payment request is ~100 bytes; anything near this is not one
KEEPALIVE_S = 15.0  # an SSE comment this often, so proxies and browsers keep the stream
WAIT_MAX_S = 120.0  # the longest `?wait=` a caller may ask for
PAYMENTS_MAX = 100  # the longest list GET /v1/payments gives
WEB = Path(__file__).resolve().parent / "web"
# The web terminal's files (terminal/service/web/), served without a token: they hold no data.
STATIC = {"index.html": "text/html; charset=utf-8", "app.js": "text/javascript; charset=utf-8",
          "app.css": "text/css; charset=utf-8", "i18n.js": "text/javascript; charset=utf-8",
          "devices.js": "text/javascript; charset=utf-8"}
# The page may load only our own files and talk only to us: no inline script, no other origin.
CSP = ("default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data: blob:; "
       "connect-src 'self'; frame-ancestors 'none'; base-uri 'none'; form-action 'self'")


class ApiError(Exception):
    def __init__(self, status: int, code: str, message: str) -> None:
        super().__init__(message)
        self.status, self.code, self.message = status, code, message


class Field(NamedTuple):
    type: str  # JSON schema type
    description: str
    required: bool = False


class Route(NamedTuple):
    method: str
    path: str  # with {name} parameters
    op: str  # the handler: ApiHandlers.<op>
    summary: str
    body: Mapping[str, Field] | None = None
    query: Mapping[str, Field] | None = None
    auth: bool = True
    produces: str = "application/json"


_SUPERVISOR = {
    "supervisor": Field("string", "the supervisor's own operator id", True),
    "pin": Field("string", "that supervisor's PIN (bound to this one operation, audited)", True),
    "reason": Field("string", "why, for the audit trail", True),
}
_WAIT = {"wait": Field("number", f"hold the answer until the payment is decided, up to this many seconds"
                                 f" (at most {WAIT_MAX_S:.0f})")}

ROUTES: tuple[Route, ...] = (
    Route("GET", "/v1/openapi.json", "openapi", "this document", auth=False),
    Route("GET", "/v1/status", "status", "the terminal: state, payment in hand, journal, devices"),
    Route("GET", "/v1/health", "health", "`till doctor` of the running terminal: every device, the host's echo test,"
          " the wallet, the journal, disk and clock (`needs_person`)"),
    Route("POST", "/v1/payments", "start_payment",
          "start a payment; idempotent on order_id (the same order_id returns the same payment)",
          body={"order_id": Field("string", "the register's order id, 1..64 printable ASCII", True),
                "amount": Field("string", "amount as text, e.g. \"12.34\" (or amount_minor)"),
                "amount_minor": Field("integer", "amount in minor units, e.g. 1234 (or amount)"),
                "currency": Field("string", "ISO 4217 alpha or numeric; the terminal's own by default"),
                "tender": Field("string", "card (default), qr (scan the customer's code), qr-merchant (show ours)")},
          query=_WAIT),
    Route("GET", "/v1/payments", "payments", "the latest payments, newest first (e.g. the QR payments"
          " still pending_confirmation, 待确认)",
          query={"status": Field("string", "only payments of this status, e.g. pending_confirmation"),
                 "limit": Field("integer", f"at most this many (default 20, at most {PAYMENTS_MAX})")}),
    Route("GET", "/v1/payments/{order_id}", "get_payment", "a payment by the register's order id, as it is now",
          query=_WAIT),
    Route("GET", "/v1/payments/{order_id}/qr", "payment_qr", "a merchant-presented QR payment (qr-merchant):"
          " the code to show the customer, as a PNG", produces="image/png"),
    Route("POST", "/v1/payments/{order_id}/cancel", "cancel_payment",
          "cancel a payment the customer has not paid yet (a QR payment that left is asked, not dropped)", body={}),
    Route("POST", "/v1/payments/{order_id}/void", "void_payment", "void (撤销) a payment of the open batch",
          body=_SUPERVISOR),
    Route("POST", "/v1/payments/{order_id}/refund", "refund_payment", "refund (退货) part or all of a payment",
          body={**_SUPERVISOR, "amount": Field("string", "amount to refund, e.g. \"5.00\"", True)}),
    Route("POST", "/v1/transactions/{ref}/void", "void_txn", "void a transaction by trace number or txn_id",
          body=_SUPERVISOR),
    Route("POST", "/v1/transactions/{ref}/refund", "refund_txn", "refund a transaction by trace number or txn_id",
          body={**_SUPERVISOR, "amount": Field("string", "amount to refund, e.g. \"5.00\"", True)}),
    Route("POST", "/v1/transactions/{ref}/reprint", "reprint", "reprint a copy, marked 重打印 / REPRINT",
          body={**_SUPERVISOR, "copy": Field("string", "merchant or cardholder (default)")}),
    Route("GET", "/v1/transactions", "journal", "the open batch (or ?batch=N of the live journal)",
          query={"batch": Field("integer", "batch number")}),
    Route("GET", "/v1/receipts/{ref}", "receipt", "a receipt copy as text, PNG or printer bytes",
          query={"copy": Field("string", "merchant or cardholder (default)"),
                 "format": Field("string", "text (default), png or escpos")}, produces="*/*"),
    Route("POST", "/v1/settlement", "settle", "settle (结算) the open batch", body=_SUPERVISOR),
    Route("GET", "/v1/reports/exceptions", "exceptions", "the exception report: incidents and open items"),
    Route("GET", "/v1/reports/cancellations", "cancellations", "every cancelled payment, who, where and why"),
    Route("GET", "/v1/events", "events", "server-sent events: display, state, payment (Last-Event-ID resumes)",
          query={"after": Field("integer", "resume after this event id (a browser's EventSource cannot send"
                                           " Last-Event-ID after a page reload)")},
          produces="text/event-stream"),
    Route("GET", "/v1/emulators", "emulators", "emulator mode: the emulated slots (none on a real till) and the"
          " emulated reader's test cards"),
    Route("POST", "/v1/emulators/{slot}", "emulator", "emulator mode: a control line to an emulated device",
          body={"line": Field("string", "e.g. \"present visa-chip chip\" (see `till emulate FAMILY --help`)", True)}),
    Route("POST", "/v1/emulators/{slot}/strokes", "strokes", "emulator mode: a signature drawn in the browser,"
          " fed to the emulated pad as its pen packets",
          body={"strokes": Field("array", "[[[x, y], ...], ...]: one list of points per stroke, any units", True)}),
    Route("POST", "/v1/emulators/{slot}/scan-receipt", "scan_receipt", "emulator mode: hold a receipt in front of"
          " the emulated scanner (its picture, as GET /v1/receipts gives it; the scanner decodes its lookup QR)",
          body={"trace": Field("string", "the receipt's trace number (or txn_id)", True),
                "copy": Field("string", "merchant or cardholder (default)")}),
    Route("GET", "/v1/emulators/{slot}/pages", "pages", "emulator mode: how many pages the emulated printer has cut"),
    Route("GET", "/v1/emulators/{slot}/pages/{number}", "page", "emulator mode: one page of the emulated"
          " printer's roll as a PNG (1 is the first; `current` is the one still on the printer)", produces="image/png"),
    Route("POST", "/ui/login", "login", "the web terminal: an operator signs in with their own id and PIN"
          " (audited); a session cookie (HttpOnly, SameSite=Strict) and the CSRF token to send in X-CSRF-Token",
          body={"operator": Field("string", "the operator's own id", True),
                "pin": Field("string", "that operator's PIN", True)}, auth=False),
    Route("GET", "/ui/session", "session", "the web terminal: who is signed in, and the session's CSRF token"),
    Route("POST", "/ui/logout", "logout", "the web terminal: sign out (the session ends)", body={}),
)


def openapi() -> dict[str, Any]:
    """The OpenAPI 3.1 document, made from the route table (docs/openapi.json is checked against it)."""
    paths: dict[str, dict[str, Any]] = {}
    for route in ROUTES:
        op: dict[str, Any] = {"operationId": route.op, "summary": route.summary,
                              "responses": {"200": {"description": "OK", "content": {route.produces: {}}},
                                            "4XX": {"description": "bad request: {\"error\": {code, message}}"}}}
        params = [{"name": n, "in": "path", "required": True, "schema": {"type": "string"}}
                  for n in re.findall(r"{(\w+)}", route.path)]
        params += [{"name": n, "in": "query", "required": f.required, "description": f.description,
                    "schema": {"type": f.type}} for n, f in (route.query or {}).items()]
        if params:
            op["parameters"] = params
        if route.body is not None:
            op["requestBody"] = {"required": True, "content": {"application/json": {"schema": {
                "type": "object", "additionalProperties": False,
                "properties": {n: {"type": f.type, "description": f.description} for n, f in route.body.items()},
                "required": [n for n, f in route.body.items() if f.required]}}}}
        if route.auth:
            op["security"] = [{"token": []}, {"session": []}]
        paths.setdefault(route.path, {})[route.method.lower()] = op
    return {"openapi": "3.1.0",
            "info": {"title": "OpenTill payment API", "version": "1",
                     "description": "The local payment API of `till run` (docs/payment-api.md)."},
            "components": {"securitySchemes": {
                "token": {"type": "http", "scheme": "bearer", "description": "the token in var/api.token (0600)"},
                "session": {"type": "apiKey", "in": "cookie", "name": COOKIE,
                            "description": "the web terminal's session (POST /ui/login); a POST also sends"
                                           " its CSRF token in X-CSRF-Token"}}},
            "paths": paths}


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


_PATTERNS = [(route, re.compile("^" + re.sub(r"{(\w+)}", r"(?P<\1>[^/]+)", route.path) + "$")) for route in ROUTES]


def _match(method: str, path: str) -> tuple[Route, dict[str, str]]:
    allowed = []
    for route, pattern in _PATTERNS:
        if (m := pattern.match(path)) is not None:
            if route.method == method:
                return route, m.groupdict()
            allowed.append(route.method)
    if allowed:
        raise ApiError(405, "method_not_allowed", f"{method} {path}: use {', '.join(sorted(set(allowed)))}")
    raise ApiError(404, "not_found", f"no such endpoint: {path}")


def _check_body(route: Route, body: object) -> dict[str, Any]:
    if not isinstance(body, dict):
        raise ApiError(400, "bad_request", "the body is a JSON object")
    fields = route.body or {}
    if unknown := sorted(set(body) - set(fields)):
        raise ApiError(400, "bad_request", f"unknown field(s): {', '.join(unknown)[:200]}")
    kinds = {"string": (str,), "integer": (int,), "number": (int, float), "boolean": (bool,), "array": (list,)}
    for name, field in fields.items():
        if name not in body:
            if field.required:
                raise ApiError(400, "bad_request", f"{name} is required ({field.description})")
            continue
        value = body[name]
        if not isinstance(value, kinds[field.type]) or (field.type != "boolean" and isinstance(value, bool)):
            raise ApiError(400, "bad_request", f"{name} is a {field.type}")
        if isinstance(value, str) and len(value) > 500:
            raise ApiError(400, "bad_request", f"{name} is too long")
    return body


def _error_of(exc: BaseException) -> ApiError:
    if isinstance(exc, ApiError):
        return exc
    if isinstance(exc, OrderConflict):
        return ApiError(409, "order_conflict", str(exc))
    if isinstance(exc, AccessDenied):
        return ApiError(403, "access_denied", str(exc))
    if isinstance(exc, AmountRefused):
        return ApiError(422, "amount_refused", str(exc))
    if isinstance(exc, JournalError):
        return ApiError(409, "journal", str(exc))
    if isinstance(exc, ServiceStopped):
        return ApiError(503, "stopping", str(exc))
    if isinstance(exc, (InputError, TerminalError)):
        return ApiError(409, "refused", str(exc))
    if isinstance(exc, (FutureTimeout, TimeoutError)):
        return ApiError(504, "timeout", "the terminal did not finish in time; ask again (GET the payment)")
    log.exception("payment API: unexpected error")
    return ApiError(500, "internal", f"{type(exc).__name__}: the terminal logged it")


class Api:
    """The handlers of one service, without HTTP: `dispatch` is what a request does (the HTTP
    server below, and the operator commands when no service runs, call it)."""

    def __init__(self, service: Service) -> None:
        self.service = service
        self.ops = Operations(service)
        self._readers = threading.local()
        self._journal_path = Path(service.till.journal.path)

    def reader(self) -> JournalReader:
        reader: JournalReader | None = getattr(self._readers, "reader", None)
        if reader is None:
            reader = self._readers.reader = JournalReader(self._journal_path)
        return reader

    def dispatch(self, method: str, target: str, body: object = None) -> tuple[int, Any]:
        """(status, payload) of one request; ApiError for a bad one."""
        url = urlsplit(target)
        route, params = _match(method, url.path)
        query = {k: v[-1] for k, v in parse_qs(url.query, keep_blank_values=True).items()}
        checked = _check_body(route, {} if body is None else body) if route.body is not None else {}
        return self.handle(route, params, query, checked, None)

    # -- the handlers: (status, JSON) or raw bytes -------------------------------------------
    def handle(self, route: Route, params: dict[str, str], query: dict[str, str], body: dict[str, Any],
               stream: Callable[[bytes], None] | None) -> tuple[int, Any]:
        return getattr(self, f"op_{route.op}")(params=params, query=query, body=body, stream=stream)  # type: ignore[no-any-return]

    def op_openapi(self, **_: Any) -> tuple[int, Any]:
        return 200, openapi()

    def op_status(self, **_: Any) -> tuple[int, Any]:
        # The newest event id and the last line shown: a page that loads reads this, then streams
        # the events after that id (?after=), so it misses nothing and shows what the customer sees.
        recent = list(self.service.bus.recent())
        display = next((e.data.get("line") for e in reversed(recent) if e.kind == "display"), None)
        return 200, {**self.service.snapshot, "devices": self.ops.devices(), "display": display,
                     "event_id": recent[-1].id if recent else 0, "emulated": sorted(self.service.controls)}

    def op_health(self, **_: Any) -> tuple[int, Any]:
        from terminal.service.doctor import diagnose_till

        return 200, self.service.call(lambda: diagnose_till(self.service.till).as_json())

    def op_start_payment(self, *, body: dict[str, Any], query: dict[str, str], **_: Any) -> tuple[int, Any]:
        request = parse_payment(body, self.service.till.terminal)
        order, created = self.service.call(lambda: self.service.start_payment(
            order_id=request.order_id, amount_minor=request.amount_minor, currency=request.currency,
            tender=request.tender))
        view = self._wait_for(order.order_id, query)
        return (201 if created else 200), view

    def op_payments(self, *, query: dict[str, str], **_: Any) -> tuple[int, Any]:
        limit = query.get("limit", "20")
        if not limit.isdigit() or not 1 <= int(limit) <= PAYMENTS_MAX:
            raise ApiError(400, "bad_request", f"limit is 1..{PAYMENTS_MAX}")
        wanted = query.get("status")
        reader = self.reader()
        # A status is computed from the journal as it is now (a QR payment confirmed later), so
        # the filter is applied to the views, over a window of the latest orders.
        views = [payment_view(order, reader) for order in reader.recent_orders(PAYMENTS_MAX)]
        views = [v for v in views if wanted is None or v["status"] == wanted]
        return 200, {"payments": views[:int(limit)]}

    def op_payment_qr(self, *, params: dict[str, str], **_: Any) -> tuple[int, Any]:
        order = self.reader().order(params["order_id"])
        code = self.reader().qr_code_url(order.txn_id) if order is not None and order.txn_id else ""
        if not code:
            raise ApiError(404, "not_found", "this payment shows no code (not qr-merchant, or not made yet)")
        import io

        import qrcode  # lazy: qrcode and Pillow cost start-up time

        out = io.BytesIO()
        qrcode.make(code, box_size=6, border=4).save(out, format="PNG")
        return 200, (out.getvalue(), "image/png")

    def op_get_payment(self, *, params: dict[str, str], query: dict[str, str], **_: Any) -> tuple[int, Any]:
        return 200, self._wait_for(params["order_id"], query)

    def _wait_for(self, order_id: str, query: dict[str, str]) -> dict[str, Any]:
        wait = _seconds(query.get("wait", "0"))
        subscription = self.service.bus.subscribe() if wait else None
        try:
            view = self._view(order_id)
            deadline = self.service.till.clock.now() + wait
            while subscription is not None and view["status"] == "in_progress" and not subscription.closed:
                left = deadline - self.service.till.clock.now()
                if left <= 0:
                    break
                event = subscription.next(min(left, 1.0))
                if event is None or (event.kind == "payment" and event.data.get("order_id") == order_id):
                    view = self._view(order_id)
            return view
        finally:
            if subscription is not None:
                subscription.close()

    def _view(self, order_id: str) -> dict[str, Any]:
        reader = self.reader()
        order = reader.order(order_id)
        if order is None:
            raise ApiError(404, "unknown_order", f"no payment with order_id {order_id[:64]!r}")
        return payment_view(order, reader)

    def op_cancel_payment(self, *, params: dict[str, str], **_: Any) -> tuple[int, Any]:
        order_id = params["order_id"]
        self._view(order_id)  # 404 for an order never seen
        self.service.call(lambda: self.service.cancel_payment(order_id, actor="register"))
        return 200, self._view(order_id)

    def op_void_payment(self, *, params: dict[str, str], body: dict[str, Any], **_: Any) -> tuple[int, Any]:
        return 200, self.ops.credit("void", self._txn_of_order(params["order_id"]), body)

    def op_refund_payment(self, *, params: dict[str, str], body: dict[str, Any], **_: Any) -> tuple[int, Any]:
        return 200, self.ops.credit("refund", self._txn_of_order(params["order_id"]), body)

    def _txn_of_order(self, order_id: str) -> str:
        order = self.reader().order(order_id)
        if order is None:
            raise ApiError(404, "unknown_order", f"no payment with order_id {order_id[:64]!r}")
        if not order.txn_id:
            raise ApiError(409, "refused", f"order {order_id} made no transaction: nothing to credit")
        return order.txn_id

    def op_void_txn(self, *, params: dict[str, str], body: dict[str, Any], **_: Any) -> tuple[int, Any]:
        return 200, self.ops.credit("void", self.ops.resolve(params["ref"]), body)

    def op_refund_txn(self, *, params: dict[str, str], body: dict[str, Any], **_: Any) -> tuple[int, Any]:
        return 200, self.ops.credit("refund", self.ops.resolve(params["ref"]), body)

    def op_reprint(self, *, params: dict[str, str], body: dict[str, Any], **_: Any) -> tuple[int, Any]:
        return 200, self.ops.reprint(self.ops.resolve(params["ref"]), body)

    def op_journal(self, *, query: dict[str, str], **_: Any) -> tuple[int, Any]:
        batch = query.get("batch")
        if batch is not None and not batch.isdigit():
            raise ApiError(400, "bad_request", "batch is a number")
        return 200, self.ops.journal(int(batch) if batch else None)

    def op_receipt(self, *, params: dict[str, str], query: dict[str, str], **_: Any) -> tuple[int, Any]:
        copy, fmt = query.get("copy", "cardholder"), query.get("format", "text")
        if copy not in ("merchant", "cardholder"):
            raise ApiError(400, "bad_request", "copy is merchant or cardholder")
        if fmt not in ("text", "png", "escpos"):
            raise ApiError(400, "bad_request", "format is text, png or escpos")
        return 200, self.ops.receipt(self.ops.resolve(params["ref"]), copy=copy, fmt=fmt)

    def op_settle(self, *, body: dict[str, Any], **_: Any) -> tuple[int, Any]:
        return 200, self.ops.settle(body)

    def op_exceptions(self, **_: Any) -> tuple[int, Any]:
        return 200, self.ops.exceptions()

    def op_cancellations(self, **_: Any) -> tuple[int, Any]:
        return 200, self.ops.cancellations()

    def op_emulator(self, *, params: dict[str, str], body: dict[str, Any], **_: Any) -> tuple[int, Any]:
        control = self._control(params["slot"])
        reply = self.service.call(lambda: control(str(body["line"])))
        return 200, {"reply": reply}

    def _control(self, slot: str) -> Callable[[str], str]:
        control = self.service.controls.get(slot)
        if control is None:
            known = ", ".join(sorted(self.service.controls)) or "none: this till has no emulated device"
            raise ApiError(404, "not_found", f"no emulated device {slot[:40]!r} ({known})")
        return control

    def _ask(self, slot: str, line: str) -> str:
        control = self._control(slot)
        reply = str(self.service.call(lambda: control(line)))
        if not reply.startswith("ok"):
            raise ApiError(409, "refused", reply.removeprefix("error: "))
        return reply.removeprefix("ok:").strip()

    def op_emulators(self, **_: Any) -> tuple[int, Any]:
        cards: list[dict[str, Any]] = []
        if "card_reader" in self.service.controls:  # "ok: approved (chip/swipe/tap), declined (...)"
            listed = self._ask("card_reader", "cards")
            cards = [{"name": n, "modes": m.split("/")} for n, m in re.findall(r"([\w.-]+) \(([\w/]*)\)", listed)]
        return 200, {"slots": sorted(self.service.controls), "cards": cards}

    def op_strokes(self, *, params: dict[str, str], body: dict[str, Any], **_: Any) -> tuple[int, Any]:
        strokes = body["strokes"]
        points = sum(len(s) for s in strokes if isinstance(s, list))
        if not strokes or points > 5000:
            raise ApiError(400, "bad_request", "strokes: 1 to 5000 points")
        line = "strokes " + json.dumps(strokes, separators=(",", ":"))
        return 200, {"reply": self._ask(params["slot"], line)}

    def op_scan_receipt(self, *, params: dict[str, str], body: dict[str, Any], **_: Any) -> tuple[int, Any]:
        self._control(params["slot"])  # 404 before any work for a slot not emulated
        copy = str(body.get("copy", "cardholder"))
        if copy not in ("merchant", "cardholder"):
            raise ApiError(400, "bad_request", "copy is merchant or cardholder")
        picture, _ = self.ops.receipt(self.ops.resolve(str(body["trace"])), copy=copy, fmt="png")
        # The scanner emulator reads a picture from a file (`scan-image FILE.png`), as a developer
        # would hand it one: written under var/, private, gone once read.
        folder = Path(self.service.till.journal.path).parent / "tmp"
        folder.mkdir(exist_ok=True)
        path = folder / f"scan-{secrets.token_hex(8)}.png"
        try:
            write_private(path, picture)
            return 200, {"reply": self._ask(params["slot"], f"scan-image {path}")}
        finally:
            path.unlink(missing_ok=True)

    def op_pages(self, *, params: dict[str, str], **_: Any) -> tuple[int, Any]:
        return 200, {"pages": int(self._ask(params["slot"], "page-count"))}

    def op_page(self, *, params: dict[str, str], **_: Any) -> tuple[int, Any]:
        number = params["number"]
        if number != "current" and not number.isdigit():
            raise ApiError(400, "bad_request", "a page is a number from 1, or current")
        import base64

        return 200, (base64.b64decode(self._ask(params["slot"], f"page-png {number}")), "image/png")

    def op_login(self, **_: Any) -> tuple[int, Any]:
        raise AssertionError("served by the handler")  # pragma: no cover - sets the session cookie

    op_session = op_logout = op_login

    def op_events(self, *, stream: Callable[[bytes], None] | None, **_: Any) -> tuple[int, Any]:
        raise AssertionError("served by the handler")  # pragma: no cover - streamed in _Handler


class ApiServer:
    """The HTTP server of one service; `start()` serves on its own thread, `close()` ends it."""

    def __init__(self, api: Api, *, host: str = "127.0.0.1", port: int = 8080, token: str,
                 sessions: Sessions | None = None) -> None:
        self.api, self.service, self.token = api, api.service, token
        self.sessions = sessions or Sessions(api.service.till.clock.now)  # the web terminal's operators
        server = self

        class Handler(_Handler):
            server_api = server

        self.httpd = ThreadingHTTPServer((host, port), Handler)
        self.httpd.daemon_threads = False  # joined at close: no request is cut off mid-answer
        self._thread: threading.Thread | None = None
        self.connections: set[Any] = set()  # open client sockets, shut at close so their threads end

    @property
    def url(self) -> str:
        host, port = self.httpd.server_address[:2]
        return f"http://{host!s}:{port}"

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


def _seconds(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise ApiError(400, "bad_request", "wait is a number of seconds") from None
    if not 0 <= value <= WAIT_MAX_S:
        raise ApiError(400, "bad_request", f"wait is 0..{WAIT_MAX_S:.0f} seconds")
    return value


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

    def setup(self) -> None:
        super().setup()
        self.server_api.connections.add(self.connection)

    def handle(self) -> None:
        try:
            super().handle()
        except (ConnectionResetError, BrokenPipeError):  # the client went away (a browser closed): not an error
            self.close_connection = True

    def finish(self) -> None:
        self.server_api.connections.discard(self.connection)
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
            route, params = _match(method, url.path)
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
            error = _error_of(exc)
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
            self._headers.append(("Set-Cookie", f"{COOKIE}={session.id}; Path=/; HttpOnly; SameSite=Strict"))
            return 200, session.public()
        if session is None:
            raise ApiError(401, "unauthorised", "sign in at the web terminal first")
        if op == "session":
            return 200, session.public()
        api.sessions.end(session.id)
        name = session.operator
        service.call(lambda: till.sign_out() if till.cashier == name else None)
        self._headers.append(("Set-Cookie", f"{COOKIE}=; Path=/; HttpOnly; SameSite=Strict; Max-Age=0"))
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
        return _check_body(route, body)

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


if __name__ == "__main__":  # docs/openapi.json
    print(json.dumps(openapi(), indent=2, ensure_ascii=False))
