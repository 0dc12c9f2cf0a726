"""Journeys at the web terminal, clicked in headless Chromium against `till run` in process."""

from __future__ import annotations

import os
import re
import shutil
from pathlib import Path
from typing import Any

import httpx
import pytest

from emulator.card_reader.cards import load_catalogue
from tests.browser.conftest import TOKEN, Till
from tests.browser.page import Page

DOCS_SHOT = Path(__file__).resolve().parents[2] / "docs" / "screenshots" / "cashier.png"


def _api(till: Till) -> httpx.Client:
    return httpx.Client(base_url=till.url, headers={"Authorization": f"Bearer {TOKEN}"}, timeout=30)


def _no_card_data(till: Till) -> None:
    """No test card's PAN (nor its track 2) in anything the browser was sent."""
    sent = b"".join(till.sent)
    assert sent, "nothing was kept"
    for card in load_catalogue().values():
        assert card.pan.encode() not in sent, f"the PAN of test card {card.name} reached the browser"
        assert f"{card.pan}={card.expiry}".encode() not in sent


def test_a_chip_sale_with_pin_by_clicking(browser: Any, till: Till, shots: Path) -> None:
    page = Page(browser, till.url, shots).open(800, 480)
    page.login()
    page.amount("1234")
    assert page.text("amount") == "12.34"
    page.click("pay-card")
    page.wait_text("display", "INSERT, SWIPE OR TAP CARD")
    page.tab("devices")
    page.el("card-select").send_keys("pin-required")
    page.click("pin-manual")
    page.wait_text("dev-reply", "answered by `pin NNNN`")
    page.click("card-chip")
    page.until(lambda d: page.text("state") == "PIN_ENTRY")
    for digit in "1234":
        page.driver.find_element("css selector", f'#pinpad button[data-pin="{digit}"]').click()
    page.click("pinpad-ok")
    page.tab("sale")
    outcome = page.wait_text("outcome", "APPROVED")
    assert "**** **** **** " in outcome and "(chip)" in outcome
    page.until(lambda d: page.image_loaded("receipt-merchant") and page.image_loaded("receipt-cardholder"))
    page.until(lambda d: page.text("state") == "IDLE")
    shot = page.screenshot("chip-sale")
    if os.environ.get("OPENTILL_SCREENSHOTS") == "docs":
        DOCS_SHOT.parent.mkdir(exist_ok=True)
        shutil.copyfile(shot, DOCS_SHOT)
    with _api(till) as api:
        paid = api.get("/v1/payments?status=approved").json()["payments"]
        assert len(paid) == 1 and paid[0]["card"]["entry_mode"] == "chip"
    _no_card_data(till)


def test_the_cashier_screen_fits_800x480_without_scrolling(browser: Any, till: Till, shots: Path) -> None:
    page = Page(browser, till.url, shots).open(800, 480)
    page.login()
    size = browser.execute_script(
        "const e = document.scrollingElement; return [e.scrollWidth, e.scrollHeight, innerWidth, innerHeight];")
    assert size[2:] == [800, 480]
    assert size[0] <= 800 and size[1] <= 480, f"the page scrolls: {size}"
    for element_id in ("pay-card", "pay-qr", "pay-qr-merchant", "cancel", "reprint", "display", "amount"):
        box = browser.execute_script(
            "const r = document.getElementById(arguments[0]).getBoundingClientRect(); return [r.bottom, r.right];",
            element_id)
        assert box[0] <= 480 and box[1] <= 800, f"{element_id} is off the screen: {box}"
    page.click("lang")
    assert page.text("pay-card") == "刷卡" and page.text("tab-supervisor") == "主管"
    page.screenshot("800x480-zh")
    page.click("lang")


def test_a_void_needs_the_supervisors_pin_and_is_refused_with_a_cashiers(browser: Any, till: Till,
                                                                        shots: Path) -> None:
    page = Page(browser, till.url, shots).open()
    page.login()
    till.control("card_reader", "present approved chip")
    page.amount("500")
    page.click("pay-card")
    page.wait_text("outcome", "APPROVED")
    trace = re.search(r"Trace (\d{6})", page.text("outcome"))
    assert trace is not None
    page.tab("supervisor")
    assert page.el("sup-trace").get_attribute("value") == trace[1]
    page.click("sup-void")
    page.supervisor("cashier-1", "1111")
    page.wait_text("pin-error", "无此权限 / not allowed for this role")
    page.screenshot("void-refused")
    page.supervisor("supervisor-1", "8888")
    page.wait_text("sup-result", "APPROVED")
    assert not page.el("pin-dialog").is_displayed()
    page.screenshot("void-done")
    with _api(till) as api:
        [payment] = api.get("/v1/payments").json()["payments"]
        assert payment["status"] == "voided"
    page.click("sup-settle")
    page.supervisor("supervisor-1", "8888")
    page.wait_text("sup-result", "Settle")
    page.until(lambda d: page.el("sup-slip").is_displayed() and page.image_loaded("sup-slip"))
    page.screenshot("settled")
    with _api(till) as api:
        assert api.get("/v1/transactions").json()["transactions"] == []  # settled: a new batch
    entries = till.service.call(till.till.audit.entries)
    audit = [(e["operation"], e["approver"] or e["actor"], str(e["result"])) for e in entries]
    assert any(op == "settle" and result.startswith("granted") for op, _, result in audit)
    assert any(op == "void" and who == "cashier-1" and result.startswith("denied") for op, who, result in audit)
    assert any(op == "void" and who == "supervisor-1" and result.startswith("granted") for op, who, result in audit)
    assert any(op == "sign_in" and who == "cashier-1" and result == "granted" for op, who, result in audit)
    _no_card_data(till)


def test_a_page_reload_mid_sale_shows_the_sale_where_it_is(browser: Any, till: Till, shots: Path) -> None:
    page = Page(browser, till.url, shots).open()
    page.login()
    page.amount("4200")
    page.click("pay-card")
    page.until(lambda d: page.text("state") == "AWAITING_CARD")
    shown = page.wait_text("display", "INSERT, SWIPE OR TAP CARD")
    browser.refresh()
    page.until(lambda d: d.execute_script("return document.body.dataset.ready") == "1")
    page.until(lambda d: page.el("app").is_displayed())  # the session survived the reload
    assert page.text("state") == "AWAITING_CARD" and page.text("display") == shown
    assert page.text("amount") == "42.00" and page.el("cancel").is_enabled()
    assert not page.el("pay-card").is_enabled()
    page.screenshot("reloaded-mid-sale")
    till.control("card_reader", "present approved chip")
    page.wait_text("outcome", "APPROVED ¥42.00")  # the stream resumed: the outcome arrives
    page.screenshot("reloaded-then-paid")
    page.tab("devices")  # the host's panel: the issuer declines the next request
    page.type("host-decline-code", "51")
    page.click("host-decline")
    page.wait_text("dev-reply", "host: ")
    till.control("card_reader", "present approved chip")
    page.tab("sale")
    page.amount("100")
    page.click("pay-card")
    assert "51" in page.wait_text("outcome", "DECLINED ¥1.00")


# The wallet's timings of the profile, short: a customer's password or a lost answer in a second.
QUICK_WALLET = {"wallet.timeout_s": 1.0, "wallet.query_first_s": 0.2, "wallet.query_every_s": 0.2,
                "wallet.reverse_not_before_s": 0.3, "wallet.reverse_max_tries": 1, "wallet.reverse_retry_s": 0.2}


@pytest.mark.parametrize("till", [{**QUICK_WALLET, "wallet.give_up_s": 20.0}], indirect=True)
def test_a_qr_customer_code_payment_waits_for_the_password(browser: Any, till: Till, shots: Path) -> None:
    page = Page(browser, till.url, shots).open()
    page.login()
    page.amount("888")
    page.click("pay-qr")
    page.until(lambda d: page.text("state") == "SCANNING")
    page.tab("devices")
    page.el("payer-select").send_keys("enters a password")
    page.click("scan")
    page.tab("sale")
    page.wait_text("display", "WAITING FOR THE PASSWORD")
    page.screenshot("qr-waiting-for-the-password")
    till.control("wallet", "advance 11")  # the customer types the password (the gateway's time)
    outcome = page.wait_text("outcome", "APPROVED ¥8.88")
    assert "****" not in outcome  # a QR payment has no card
    page.until(lambda d: page.image_loaded("receipt-cardholder"))
    page.screenshot("qr-customer-code")
    page.tab("pending")
    page.wait_text("pending-list", "nothing pending")
    page.tab("devices")
    page.click("scan-receipt")  # the receipt's picture before the scanner: its lookup QR finds the sale
    page.wait_text("dev-reply", "scanner: qr (1 code(s))")
    trace = page.el("sup-trace").get_attribute("value")
    page.tab("sale")
    page.wait_text("display", f"{trace} sale 888 APPROVED")


@pytest.mark.parametrize("till", [{**QUICK_WALLET, "wallet.give_up_s": 0.6}], indirect=True)
def test_a_qr_payment_the_wallet_never_decides_is_listed_pending(browser: Any, till: Till, shots: Path) -> None:
    page = Page(browser, till.url, shots).open()
    page.login()
    page.amount("200")
    page.click("pay-qr")
    page.until(lambda d: page.text("state") == "SCANNING")
    page.tab("devices")
    page.el("payer-select").send_keys("never pays, the reverse")
    page.click("scan")
    page.tab("sale")
    page.wait_text("outcome", "PENDING CONFIRMATION ¥2.00")
    page.tab("pending")
    row = page.wait_text("pending-list", "¥2.00")
    assert "WEB-" in row and "PENDING CONFIRMATION" in row
    page.screenshot("pending-confirmation")


@pytest.mark.parametrize("till", [{"wallet.merchant_poll_every_s": 0.3}], indirect=True)
def test_a_merchant_qr_payment(browser: Any, till: Till, shots: Path) -> None:
    page = Page(browser, till.url, shots).open()
    page.login()
    page.amount("1999")
    page.click("pay-qr-merchant")
    page.until(lambda d: page.text("state") == "QR_SHOWING")
    page.until(lambda d: page.el("qr-code").is_displayed() and page.image_loaded("qr-code"))
    page.screenshot("merchant-qr-shown")
    page.tab("devices")
    page.click("wallet-pay-shown")
    page.wait_text("dev-reply", "wallet: ")
    page.tab("sale")
    page.wait_text("outcome", "APPROVED ¥19.99")  # the till's next poll finds it paid
    assert not page.el("qr-code").is_displayed()
    page.screenshot("merchant-qr-paid")


def test_paper_out_during_the_cardholder_copy_refill_and_reprint(browser: Any, till: Till, shots: Path) -> None:
    printer = till.till.emulators.devices["printer"]
    with _api(till) as api:  # a first sale: how many bytes the merchant copy takes
        till.control("card_reader", "present approved chip")
        first = api.post("/v1/payments?wait=30", json={"order_id": "FIRST", "amount": "3.00"}).json()
        merchant = api.get(f"/v1/receipts/{first['trace']}?copy=merchant&format=escpos").content
    pages_before = len(printer.pages)
    till.control("printer", f"fault paper-out after-bytes {len(merchant) + 400}")
    page = Page(browser, till.url, shots).open()
    page.login()
    till.control("card_reader", "present approved chip")
    page.amount("300")
    page.click("pay-card")
    page.until(lambda d: page.text("state") == "PRINTER_PAUSED")
    # the merchant copy was cut, the cardholder's was not
    assert till.service.call(lambda: len(printer.pages)) == pages_before + 1
    page.tab("devices")
    page.screenshot("paper-out")
    page.click("paper-refill")
    page.until(lambda d: page.text("state") == "IDLE")
    page.tab("sale")
    page.wait_text("outcome", "APPROVED")
    page.click("reprint")
    page.supervisor("supervisor-1", "8888")
    page.wait_text("sale-error", "reprinted cardholder")
    assert "重打印" in till.service.call(lambda: printer.pages[-1].text)  # the reprint is marked
    page.tab("devices")
    page.click("roll-refresh")
    page.until(lambda d: d.execute_script(
        "return [...document.querySelectorAll('#roll img')].every(i => i.complete && i.naturalWidth > 0)"
        " && document.querySelectorAll('#roll img').length > 0"))
    assert page.el("roll").get_attribute("data-pages") == str(till.service.call(lambda: len(printer.pages)))
    page.screenshot("reprint-on-the-roll")


def test_a_signature_drawn_with_the_mouse_is_on_the_merchant_copy(browser: Any, till: Till, shots: Path) -> None:
    from selenium.webdriver.common.action_chains import ActionChains

    page = Page(browser, till.url, shots).open(1600, 900)  # a laptop: the devices beside the cashier screen
    page.login()
    page.until(lambda d: d.execute_script("return document.body.classList.contains('wide')"
                                          " && document.body.dataset.devices === '1'"))
    assert page.el("sig-canvas").is_displayed() and page.el("pay-card").is_displayed()
    till.control("card_reader", "present signature-required")
    page.amount("4321")
    page.click("pay-card")
    page.until(lambda d: page.text("state") == "SIGNATURE_REQUIRED")
    page.tab("devices")
    canvas = page.el("sig-canvas")
    draw = ActionChains(browser, duration=0)
    draw.move_to_element_with_offset(canvas, -150, 10).click_and_hold()
    for dx, dy in ((20, -30), (20, 30), (20, -30), (20, 30), (30, -10), (30, 0), (20, 20)):
        draw.move_by_offset(dx, dy)
    draw.release()
    draw.move_to_element_with_offset(canvas, 20, -20).click_and_hold().move_by_offset(60, 40).release()
    draw.perform()
    page.click("sig-send")
    page.wait_text("dev-reply", "pen-down point(s)")
    page.click("sig-ok")
    page.tab("sale")
    page.wait_text("outcome", "APPROVED")
    page.until(lambda d: page.image_loaded("receipt-merchant"))
    page.screenshot("signature-on-the-merchant-copy")
    payment = till.service.call(till.till.journal.last_decided)
    assert payment is not None and till.service.call(lambda: till.till.journal.signature(payment.txn_id))
    with _api(till) as api:
        signed = api.get(f"/v1/receipts/{payment.stan:06d}?copy=merchant&format=png").content
        plain = api.get(f"/v1/receipts/{payment.stan:06d}?copy=cardholder&format=png").content
    assert signed.startswith(b"\x89PNG") and len(signed) > len(plain)  # the signature's picture is on it
    _no_card_data(till)


def test_a_supervisor_adds_and_disables_an_operator_and_it_is_audited(browser: Any, till: Till, shots: Path) -> None:
    page = Page(browser, till.url, shots).open()
    page.login()
    page.tab("supervisor")
    page.type("op-id", "cashier-9")
    page.el("op-role").send_keys("cashier")
    page.type("op-pin", "2468")
    page.click("op-add")
    page.supervisor("cashier-1", "1111")  # a cashier may not
    page.wait_text("pin-error", "无此权限 / not allowed for this role")
    page.supervisor("supervisor-1", "8888")
    page.until(lambda d: "cashier-9" in page.text("sup-result"))
    page.click("op-disable")
    page.supervisor("supervisor-1", "8888")
    page.until(lambda d: re.search(r"cashier-9\s+cashier\s+disabled", page.text("sup-result")) is not None)
    page.screenshot("operators")
    with _api(till) as api:
        operators = {o["id"]: o for o in api.get("/v1/operators").json()["operators"]}
        assert operators["cashier-9"] == {"id": "cashier-9", "role": "cashier", "disabled": True, "locked": False}
        assert "pin" not in str(operators).lower().replace("pin_", "")  # no PIN nor its hash is ever sent
        signed = api.post("/ui/login", json={"operator": "cashier-9", "pin": "2468"})
        assert signed.status_code == 403  # disabled: cannot sign in
    entries = till.service.call(till.till.audit.entries)
    done = [e for e in entries if e["operation"] == "manage_operators"]
    assert [(e["result"], e["reason"].split(":")[0]) for e in done if e["result"] == "done"] == [
        ("done", "add cashier-9"), ("done", "disable cashier-9")]
