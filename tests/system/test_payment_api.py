"""The payment API of `till run`, in process: a real HTTP server on loopback in front of the
service loop of an emulated till (every device and the host in process, the real clock).

Waiting is the API's own (`?wait=` holds the answer until the payment is decided): no sleeps.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from sim.run import InProcessService, build_service_till
from sim.wiring import build_emulated_till
from terminal.service.loop import Service
from terminal.service.routes import MAX_BODY, openapi

SUPERVISOR = {"supervisor": "supervisor-1", "pin": "8888", "reason": "customer changed their mind"}
CASHIER = {"supervisor": "cashier-1", "pin": "1111", "reason": "try"}
TEST_PAN = "4761739001010010"  # the emulated `approved` card's PAN: never in any answer
DOCS = Path(__file__).resolve().parents[2] / "docs" / "openapi.json"


class Running(InProcessService):
    def __init__(self, var_dir: Path) -> None:
        super().__init__(var_dir, token="t" * 32)
        self.http = httpx.Client(base_url=self.url, headers={"Authorization": "Bearer " + "t" * 32}, timeout=60)
        self.answers: list[str] = []  # every body the API sent, for the card-data check

    def ask(self, method: str, path: str, **kwargs: Any) -> httpx.Response:
        answer = self.http.request(method, path, **kwargs)
        self.answers.append(answer.text)
        return answer

    def control(self, slot: str, line: str) -> str:
        reply = self.ask("POST", f"/v1/emulators/{slot}", json={"line": line}).json()["reply"]
        assert reply.startswith("ok"), reply
        return str(reply)

    def close(self) -> None:
        self.http.close()
        super().close()


@pytest.fixture
def running(var_dir: Path) -> Iterator[Running]:
    r = Running(var_dir)
    try:
        yield r
    finally:
        r.close()
    assert not any(TEST_PAN in body for body in r.answers), "a full PAN reached an API answer"


def test_a_card_payment_is_idempotent_on_the_order_id(running: Running) -> None:
    running.control("card_reader", "present approved chip")
    first = running.ask("POST", "/v1/payments?wait=30", json={"order_id": "ECR-0001", "amount": "12.34"})
    assert first.status_code == 201, first.text
    paid = first.json()
    assert paid["status"] == "approved" and paid["amount_minor"] == 1234 and paid["response_code"] == "00"
    assert paid["card"] == {"masked_pan": "**** **** **** 0010", "entry_mode": "chip"}
    again = running.ask("POST", "/v1/payments", json={"order_id": "ECR-0001", "amount_minor": 1234})
    assert again.status_code == 200 and again.json()["txn_id"] == paid["txn_id"]  # the same payment
    assert running.till.journal.count_by_state() == {"APPROVED": 1}  # charged once
    conflict = running.ask("POST", "/v1/payments", json={"order_id": "ECR-0001", "amount": "99.00"})
    assert conflict.status_code == 409 and conflict.json()["error"]["code"] == "order_conflict"
    got = running.ask("GET", "/v1/payments/ECR-0001").json()
    assert got["status"] == "approved" and got["trace"] == paid["trace"]
    receipt = running.ask("GET", f"/v1/receipts/{paid['trace']}?copy=merchant")
    assert "商户存根 MERCHANT COPY" in receipt.text and "**** **** **** 0010" in receipt.text
    png = running.ask("GET", f"/v1/receipts/{paid['trace']}?format=png")
    assert png.headers["content-type"] == "image/png" and png.content.startswith(b"\x89PNG")
    escpos = running.ask("GET", f"/v1/receipts/{paid['trace']}?format=escpos")
    assert escpos.content.startswith(b"\x1b@")  # ESC @, as the printer is sent it
    status = running.ask("GET", "/v1/status").json()
    assert status["state"] == "IDLE" and status["journal"]["used"] == 1 and status["devices"]["printer"]["present"]


def test_void_needs_a_supervisors_own_pin(running: Running) -> None:
    running.control("card_reader", "present approved chip")
    paid = running.ask("POST", "/v1/payments?wait=30", json={"order_id": "ECR-7", "amount": "5.00"}).json()
    refused = running.ask("POST", "/v1/payments/ECR-7/void", json=CASHIER)
    assert refused.status_code == 403 and refused.json()["error"]["code"] == "access_denied"
    voided = running.ask("POST", f"/v1/transactions/{paid['trace']}/void", json=SUPERVISOR)
    assert voided.status_code == 200 and voided.json()["outcome"] == "APPROVED", voided.text
    assert running.ask("GET", "/v1/payments/ECR-7").json()["status"] == "voided"
    journal = running.ask("GET", "/v1/transactions").json()
    assert [t["kind"] for t in journal["transactions"]] == ["sale", "void"]


def test_the_register_cancels_a_payment_waiting_for_the_card(running: Running) -> None:
    started = running.ask("POST", "/v1/payments", json={"order_id": "ECR-9", "amount": "1.00"})
    assert started.status_code == 201 and started.json()["status"] == "in_progress"
    busy = running.ask("POST", "/v1/payments", json={"order_id": "ECR-10", "amount": "1.00"})
    assert busy.status_code == 409 and "busy" in busy.json()["error"]["message"]
    cancelled = running.ask("POST", "/v1/payments/ECR-9/cancel", json={})
    assert cancelled.status_code == 200
    final = running.ask("GET", "/v1/payments/ECR-9?wait=30").json()
    assert final["status"] == "cancelled" and final["txn_id"] is None
    assert running.ask("POST", "/v1/payments/ECR-9/cancel").status_code == 409  # over: nothing to cancel
    cancellations = running.ask("GET", "/v1/reports/cancellations").json()["cancellations"]
    assert cancellations and cancellations[-1]["actor"] == "register"


def test_events_stream_what_the_terminal_shows_and_resume_after_an_id(running: Running) -> None:
    running.control("card_reader", "present approved chip")
    running.ask("POST", "/v1/payments?wait=30", json={"order_id": "ECR-E", "amount": "2.00"})
    with running.http.stream("GET", "/v1/events", headers={"Last-Event-ID": "0"}) as stream:
        assert stream.headers["content-type"].startswith("text/event-stream")
        events: list[tuple[str, dict[str, Any]]] = []
        kind = ""
        for line in stream.iter_lines():
            if line.startswith("event: "):
                kind = line[7:]
            elif line.startswith("data: "):
                events.append((kind, json.loads(line[6:])))
                if kind == "payment" and events[-1][1].get("status") == "done":
                    break
    lines = [d["line"] for k, d in events if k == "display"]
    assert any("INSERT, SWIPE OR TAP CARD" in line for line in lines)
    assert ("payment", {"order_id": "ECR-E", "status": "done", "outcome": "APPROVED"}) in events


BAD_REQUESTS = [
    # (method, path, body bytes or JSON, headers, status, code)
    ("POST", "/v1/payments", b'{"order_id": "A",', {}, 400, "bad_json"),
    ("POST", "/v1/payments", b"\xff\xfe", {}, 400, "bad_json"),
    ("POST", "/v1/payments", b"[1, 2]", {}, 400, "bad_request"),
    ("POST", "/v1/payments", {"order_id": "A", "amount": 12.34}, {}, 400, "bad_request"),
    ("POST", "/v1/payments", {"order_id": "A", "amount_minor": "1234"}, {}, 400, "bad_request"),
    ("POST", "/v1/payments", {"order_id": "A", "amount_minor": True}, {}, 400, "bad_request"),
    ("POST", "/v1/payments", {"order_id": "A", "amount": "1", "pan": "4761739001010010"}, {}, 400, "bad_request"),
    ("POST", "/v1/payments", {"amount": "1.00"}, {}, 400, "bad_request"),
    ("POST", "/v1/payments", {"order_id": "A", "amount": "-1"}, {}, 409, "refused"),
    ("POST", "/v1/payments", {"order_id": "A", "amount": "1", "amount_minor": 100}, {}, 409, "refused"),
    ("POST", "/v1/payments", {"order_id": "A", "amount": "1", "currency": "USD"}, {}, 409, "refused"),
    ("POST", "/v1/payments", {"order_id": "A", "amount": "1", "tender": "cash"}, {}, 409, "refused"),
    ("POST", "/v1/payments", {"order_id": "A", "amount_minor": 10**12}, {}, 409, "refused"),
    ("POST", "/v1/payments", b"x" * (MAX_BODY + 1), {}, 413, "too_large"),
    ("POST", "/v1/payments", {"order_id": "A", "amount": "1"}, {"Authorization": ""}, 401, "unauthorised"),
    ("POST", "/v1/payments", {"order_id": "A", "amount": "1"}, {"Authorization": "Bearer nope"}, 401, "unauthorised"),
    ("GET", "/v1/payments/NOPE", None, {}, 404, "unknown_order"),
    ("GET", "/v1/payments/A?wait=soon", None, {}, 400, "bad_request"),
    ("GET", "/v1/payments/A?wait=9999", None, {}, 400, "bad_request"),
    ("GET", "/v1/nothing", None, {}, 404, "not_found"),
    ("DELETE", "/v1/payments", None, {}, 405, "method_not_allowed"),
    ("POST", "/v1/transactions/000999/void", SUPERVISOR, {}, 404, "unknown_transaction"),
    ("POST", "/v1/settlement", {"supervisor": "supervisor-1"}, {}, 400, "bad_request"),
    ("GET", "/v1/receipts/000001?format=pdf", None, {}, 400, "bad_request"),
    ("POST", "/v1/emulators/drawer", {"line": "open"}, {}, 404, "not_found"),
]


def test_every_bad_request_is_a_4xx_with_a_json_error_and_changes_nothing(running: Running) -> None:
    before = running.till.journal.count_by_state(), running.till.journal.open_orders()
    for method, path, body, headers, status, code in BAD_REQUESTS:
        content = body if isinstance(body, bytes) else None if body is None else json.dumps(body).encode()
        answer = running.ask(method, path, content=content, headers=headers)
        assert answer.headers["content-type"].startswith("application/json"), (method, path, answer.text[:200])
        assert (answer.status_code, answer.json()["error"]["code"]) == (status, code), (method, path, body, answer.text)
    assert (running.till.journal.count_by_state(), running.till.journal.open_orders()) == before
    assert running.ask("GET", "/v1/payments/A").status_code == 404  # no order was left behind by a refusal
    assert running.till.flow.state.name == "IDLE"


def test_a_stop_cancels_a_payment_still_waiting_for_the_customer(var_dir: Path) -> None:
    r = Running(var_dir)
    try:
        assert r.ask("POST", "/v1/payments", json={"order_id": "ECR-S", "amount": "3.00"}).status_code == 201
    finally:
        r.close()  # SIGTERM while the terminal waits for the card: nothing has moved, the sale is cancelled
    with build_emulated_till(var_dir=var_dir, host_transport="emu") as till:
        order = till.journal.order("ECR-S")
        assert order is not None and (order.status, order.outcome) == ("DONE", "CANCELLED")


def test_orders_open_at_a_crash_are_decided_from_the_journal(var_dir: Path) -> None:
    with build_emulated_till(var_dir=var_dir, host_transport="emu") as till:  # the power goes twice:
        journal, at = till.journal, till.clock.wall()
        journal.open_order(order_id="ECR-NONE", amount_minor=300, currency="156", tender="card", at=at)
        journal.open_order(order_id="ECR-SENT", amount_minor=400, currency="156", tender="card", at=at)
        journal.bind_order("ECR-SENT")  # ... once with the request gone to the host, no answer yet
        journal.record_sent(txn_id="t-sent", amount_minor=400, currency="156", entry_mode="chip", pan_last4="0010",
                            pan_token="t" * 64, at=at)
    till, _ = build_service_till("emulated-counter", var_dir=var_dir, display=lambda line: None)
    with till:  # boot has reversed the unanswered sale; the service decides both orders
        Service(till).close()
        none, sent = till.journal.order("ECR-NONE"), till.journal.order("ECR-SENT")
        assert none is not None and (none.status, none.outcome) == ("DONE", "CANCELLED")
        assert "not charged" in none.reason
        assert sent is not None and (sent.status, sent.outcome) == ("DONE", "REVERSED")
        from terminal.service.payments import JournalReader, payment_view

        reader = JournalReader(till.journal.path)
        try:
            assert payment_view(sent, reader)["status"] == "reversed"
        finally:
            reader.close()


def test_the_openapi_document_is_generated_from_the_routes_and_not_stale(running: Running) -> None:
    served = running.ask("GET", "/v1/openapi.json", headers={"Authorization": ""}).json()
    assert served == openapi()
    assert {"/v1/payments", "/v1/payments/{order_id}", "/v1/settlement", "/v1/events"} <= set(served["paths"])
    assert json.loads(DOCS.read_text(encoding="utf-8")) == served, (
        "docs/openapi.json is stale: python -m terminal.service.routes > docs/openapi.json")
