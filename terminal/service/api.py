"""The payment API's handlers (`Api`): what each route of routes.py does, without HTTP.

The HTTP server (server.py) and the operator commands when no service runs (commands.py) both
call `Api.dispatch`. A handler reads the journal through its own read-only connection
(payments.JournalReader) and touches the till only on the service loop's thread (`Service.call`).
"""

from __future__ import annotations

import json
import logging
import re
import secrets
import threading
from collections.abc import Callable
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlsplit

from terminal.security.files import write_private
from terminal.service.loop import Service
from terminal.service.operations import Operations
from terminal.service.payments import JournalReader, parse_payment, payment_view
from terminal.service.routes import PAYMENTS_MAX, WAIT_MAX_S, ApiError, Route, check_body, match, openapi

__all__ = ["Api"]

log = logging.getLogger(__name__)


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
        route, params = match(method, url.path)
        query = {k: v[-1] for k, v in parse_qs(url.query, keep_blank_values=True).items()}
        checked = check_body(route, {} if body is None else body) if route.body is not None else {}
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

    def op_operators(self, **_: Any) -> tuple[int, Any]:
        return 200, self.ops.operators()

    def op_add_operator(self, *, body: dict[str, Any], **_: Any) -> tuple[int, Any]:
        return 200, self.ops.manage_operator("add", str(body["id"]), body)

    def op_change_operator(self, *, params: dict[str, str], body: dict[str, Any], **_: Any) -> tuple[int, Any]:
        if params["action"] not in ("disable", "enable", "reset-pin"):
            raise ApiError(404, "not_found", "an operator is disabled, enabled or given a new PIN (reset-pin)")
        return 200, self.ops.manage_operator(params["action"], params["operator_id"], body)

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


def _seconds(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise ApiError(400, "bad_request", "wait is a number of seconds") from None
    if not 0 <= value <= WAIT_MAX_S:
        raise ApiError(400, "bad_request", f"wait is 0..{WAIT_MAX_S:.0f} seconds")
    return value
