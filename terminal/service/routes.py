"""The payment API's routes: one table that is the API's shape, its request checks and its
OpenAPI document (`openapi()`; docs/openapi.json, served at /v1/openapi.json, checked for
staleness by a test: `python -m terminal.service.routes > docs/openapi.json`).

After the local terminal APIs of the big terminal vendors: the register starts a payment with
its own `order_id` (idempotent: asking again returns the same payment, never a second charge),
reads it back by that id after any crash or restart, may cancel it while the customer has not
paid, and follows what the terminal shows on a server-sent-event stream. Operator functions
(void, refund, settlement, reprint) take the supervisor's own id and PIN in the body, bound to
that one operation and audited by the till's access control. Every error is a JSON body
`{"error": {"code", "message"}}` with a 4xx/5xx status (`error_of`), and changes nothing.
"""

from __future__ import annotations

import json
import logging
import re
from collections.abc import Mapping
from concurrent.futures import TimeoutError as FutureTimeout
from typing import Any, NamedTuple

from terminal.errors import AmountRefused, InputError, JournalError, TerminalError
from terminal.journal.orders import OrderConflict
from terminal.security.access import AccessDenied
from terminal.service.loop import ServiceStopped
from terminal.service.sessions import COOKIE

__all__ = ["MAX_BODY", "PAYMENTS_MAX", "ROUTES", "WAIT_MAX_S", "ApiError", "Field", "Route", "check_body",
           "error_of", "match", "openapi"]

log = logging.getLogger(__name__)
MAX_BODY = 64 * 1024  # a payment request is ~100 bytes; anything near this is not one
WAIT_MAX_S = 120.0  # the longest `?wait=` a caller may ask for
PAYMENTS_MAX = 100  # the longest list GET /v1/payments gives
# The web terminal's files (terminal/service/web/), served without a token: they hold no data.
# The page may load only our own files and talk only to us: no inline script, no other origin.


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
    Route("GET", "/v1/operators", "operators", "the till's operators: id, role, disabled, locked (never a PIN)"),
    Route("POST", "/v1/operators", "add_operator", "add an operator (supervisor's PIN; audited)",
          body={**_SUPERVISOR, "id": Field("string", "the new operator's id", True),
                "role": Field("string", "cashier, supervisor or technician", True),
                "new_pin": Field("string", "their PIN, 4..12 digits", True)}),
    Route("POST", "/v1/operators/{operator_id}/{action}", "change_operator",
          "disable, enable or reset-pin an operator (supervisor's PIN; audited)",
          body={**_SUPERVISOR, "new_pin": Field("string", "reset-pin: the new PIN, 4..12 digits")}),
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



_PATTERNS = [(route, re.compile("^" + re.sub(r"{(\w+)}", r"(?P<\1>[^/]+)", route.path) + "$")) for route in ROUTES]


def match(method: str, path: str) -> tuple[Route, dict[str, str]]:
    allowed = []
    for route, pattern in _PATTERNS:
        if (m := pattern.match(path)) is not None:
            if route.method == method:
                return route, m.groupdict()
            allowed.append(route.method)
    if allowed:
        raise ApiError(405, "method_not_allowed", f"{method} {path}: use {', '.join(sorted(set(allowed)))}")
    raise ApiError(404, "not_found", f"no such endpoint: {path}")


def check_body(route: Route, body: object) -> dict[str, Any]:
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


def error_of(exc: BaseException) -> ApiError:
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


if __name__ == "__main__":  # docs/openapi.json
    print(json.dumps(openapi(), indent=2, ensure_ascii=False))
