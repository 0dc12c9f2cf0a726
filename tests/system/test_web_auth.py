"""The web terminal's serving and sign-in: static files without a token, operator sessions in an
HttpOnly SameSite=Strict cookie, CSRF on every state-changing request, the register's bearer
token unchanged. In process, like test_payment_api.py (every device and the host emulated)."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from sim.run import InProcessService
from terminal.clock import FakeClock
from terminal.service.sessions import COOKIE, IDLE_S, MAX_SESSIONS, Sessions

TOKEN = "w" * 32


class Served(InProcessService):
    def __init__(self, var_dir: Path) -> None:
        super().__init__(var_dir, token=TOKEN)
        self.browser = httpx.Client(base_url=self.url, timeout=30)  # cookies, no token
        self.register = httpx.Client(base_url=self.url, timeout=30, headers={"Authorization": f"Bearer {TOKEN}"})

    def login(self, operator: str = "cashier-1", pin: str = "1111") -> str:
        answer = self.browser.post("/ui/login", json={"operator": operator, "pin": pin})
        assert answer.status_code == 200, answer.text
        return str(answer.json()["csrf"])

    def close(self) -> None:
        self.browser.close()
        self.register.close()
        super().close()


@pytest.fixture
def served(var_dir: Path) -> Iterator[Served]:
    s = Served(var_dir)
    try:
        yield s
    finally:
        s.close()


def test_the_page_is_served_without_a_token_and_the_api_is_not(served: Served) -> None:
    page = served.browser.get("/")
    assert page.status_code == 200 and page.headers["content-type"].startswith("text/html")
    assert "script-src 'self'" in page.headers["content-security-policy"]
    assert page.headers["x-frame-options"] == "DENY" and page.headers["x-content-type-options"] == "nosniff"
    assert '<script type="module" src="/ui/app.js">' in page.text and "http" not in page.text.split("<body>")[0]
    for name, kind in (("app.js", "text/javascript"), ("devices.js", "text/javascript"), ("app.css", "text/css")):
        got = served.browser.get(f"/ui/{name}")
        assert got.status_code == 200 and got.headers["content-type"].startswith(kind)
    assert served.browser.get("/ui/../api.py").status_code == 404  # only the listed files
    assert served.browser.get("/ui/sessions.py").status_code == 404
    assert served.browser.get("/v1/status").status_code == 401
    assert served.browser.get("/ui/session").status_code == 401


def test_a_signed_in_operator_posts_with_the_csrf_token_only(served: Served) -> None:
    form = served.browser.post("/ui/login", content=b'{"operator": "cashier-1", "pin": "1111"}',
                               headers={"Content-Type": "text/plain"})
    assert form.status_code == 415  # what a form on another site could send
    refused = served.browser.post("/ui/login", json={"operator": "cashier-1", "pin": "0000"})
    assert refused.status_code == 403 and "set-cookie" not in refused.headers
    answer = served.browser.post("/ui/login", json={"operator": "cashier-1", "pin": "1111"})
    assert answer.status_code == 200 and answer.json()["role"] == "cashier"
    cookie = answer.headers["set-cookie"]
    assert cookie.startswith(f"{COOKIE}=") and "HttpOnly" in cookie and "SameSite=Strict" in cookie
    csrf = answer.json()["csrf"]
    assert csrf not in cookie  # the cookie and the CSRF token are different secrets
    assert served.browser.get("/v1/status").status_code == 200
    assert served.browser.get("/ui/session").json() == {"operator": "cashier-1", "role": "cashier", "csrf": csrf}
    order = {"order_id": "WEB-1", "amount": "1.00"}
    for headers in ({}, {"X-CSRF-Token": "x" * 43}):
        forged = served.browser.post("/v1/payments", json=order, headers=headers)
        assert forged.status_code == 403 and forged.json()["error"]["code"] == "csrf"
    assert served.register.get("/v1/payments/WEB-1").status_code == 404  # nothing started
    started = served.browser.post("/v1/payments", json=order, headers={"X-CSRF-Token": csrf})
    assert started.status_code == 201, started.text
    assert served.register.post("/v1/payments/WEB-1/cancel", json={}).status_code == 200  # the ECR's token
    entries = served.service.call(served.till.audit.entries)
    results = [(e["operation"], e["actor"], e["result"]) for e in entries if e["operation"] == "sign_in"]
    assert results == [("sign_in", "cashier-1", "denied: wrong PIN"), ("sign_in", "cashier-1", "granted")]


def test_sign_out_ends_the_session(served: Served) -> None:
    csrf = served.login("supervisor-1", "8888")
    assert served.service.call(lambda: served.till.cashier) == "supervisor-1"
    assert served.browser.post("/ui/logout", json={}).status_code == 403  # CSRF here too
    out = served.browser.post("/ui/logout", json={}, headers={"X-CSRF-Token": csrf})
    assert out.status_code == 200 and "Max-Age=0" in out.headers["set-cookie"]
    assert served.service.call(lambda: served.till.cashier) is None
    assert served.browser.get("/v1/status").status_code == 401
    assert len(served.server.sessions) == 0


def test_the_device_panels_routes(served: Served) -> None:
    csrf = served.login()
    emulators = served.browser.get("/v1/emulators").json()
    assert emulators["slots"] == ["card_reader", "host", "printer", "scanner", "signature_pad", "wallet"]
    assert {"name": "approved", "modes": ["chip", "swipe", "tap"]} in emulators["cards"]
    assert all("pan" not in card for card in emulators["cards"])
    status = served.browser.get("/v1/status").json()
    assert status["emulated"] == emulators["slots"] and status["event_id"] >= 1
    strokes = {"strokes": [[[0, 0], [40, 30], [80, 0]], [[10, 40], [70, 40]]]}
    signed = served.browser.post("/v1/emulators/signature_pad/strokes", json=strokes, headers={"X-CSRF-Token": csrf})
    assert signed.status_code == 200 and "pen-down point(s)" in signed.json()["reply"]
    wrong = served.browser.post("/v1/emulators/printer/strokes", json=strokes, headers={"X-CSRF-Token": csrf})
    assert wrong.status_code == 409  # a printer takes no strokes
    bad = served.browser.post("/v1/emulators/signature_pad/strokes", json={"strokes": "x"},
                              headers={"X-CSRF-Token": csrf})
    assert bad.status_code == 400
    assert served.browser.get("/v1/emulators/printer/pages").json() == {"pages": 0}
    current = served.browser.get("/v1/emulators/printer/pages/current")
    assert current.headers["content-type"] == "image/png" and current.content.startswith(b"\x89PNG")
    assert served.browser.get("/v1/emulators/printer/pages/1").status_code == 409  # none cut yet
    assert served.browser.get("/v1/payments?status=pending_confirmation").json() == {"payments": []}
    assert served.browser.get("/v1/payments?limit=0").status_code == 400
    assert served.browser.get("/v1/payments/NONE/qr").status_code == 404
    shown = served.browser.post("/v1/emulators/wallet", json={"line": "pay-shown"}, headers={"X-CSRF-Token": csrf})
    assert shown.json()["reply"] == "error: no merchant code is shown"
    unknown = served.browser.post("/v1/emulators/scanner/scan-receipt", json={"trace": "999999"},
                                  headers={"X-CSRF-Token": csrf})
    assert unknown.status_code == 404 and unknown.json()["error"]["code"] == "unknown_transaction"


def test_sessions_expire_when_idle_and_are_bounded() -> None:
    clock = FakeClock()
    sessions = Sessions(clock.now)
    first = sessions.create("cashier-1", "cashier")
    clock.advance(IDLE_S - 1)
    assert sessions.get(first.id) is first  # used: its idle time starts again
    clock.advance(IDLE_S - 1)
    assert sessions.get(first.id) is first
    clock.advance(IDLE_S - 1)
    assert sessions.alive(first.id)  # asked without counting as a use...
    clock.advance(2)
    assert not sessions.alive(first.id)  # ...so an open event stream does not keep it alive
    clock.advance(IDLE_S + 1)
    assert sessions.get(first.id) is None and len(sessions) == 0
    assert sessions.get("") is None and not Sessions.csrf_ok(first, "")
    many = [sessions.create(f"op-{i}", "cashier") for i in range(MAX_SESSIONS + 2)]
    assert len(sessions) == MAX_SESSIONS and sessions.get(many[0].id) is None and sessions.get(many[-1].id)
    assert "csrf" not in repr(many[-1]) or many[-1].csrf not in repr(many[-1])
