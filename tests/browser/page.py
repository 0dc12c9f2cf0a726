"""The cashier page as a journey clicks it: by the element ids of terminal/service/web/index.html."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from tests.browser.conftest import WAIT_S


class Page:
    def __init__(self, driver: Any, url: str, shots: Path) -> None:
        self.driver, self.url, self.shots = driver, url, shots

    def open(self, width: int = 1280, height: int = 800) -> Page:
        self.driver.execute_cdp_cmd("Emulation.setDeviceMetricsOverride", {
            "width": width, "height": height, "deviceScaleFactor": 1, "mobile": False})
        self.driver.get(self.url + "/")
        self.until(lambda d: d.execute_script("return document.body.dataset.ready") == "1")
        return self

    def until(self, condition: Any, timeout: float = WAIT_S) -> Any:
        from selenium.webdriver.support.ui import WebDriverWait

        return WebDriverWait(self.driver, timeout, poll_frequency=0.05).until(condition)

    def el(self, element_id: str) -> Any:
        from selenium.webdriver.common.by import By

        return self.driver.find_element(By.ID, element_id)

    def click(self, element_id: str) -> None:
        self.until(lambda d: self.el(element_id).is_displayed() and self.el(element_id).is_enabled())
        self.el(element_id).click()

    def type(self, element_id: str, text: str) -> None:
        field = self.el(element_id)
        field.clear()
        field.send_keys(text)

    def text(self, element_id: str) -> str:
        return str(self.el(element_id).text)

    def wait_text(self, element_id: str, wanted: str) -> str:
        self.until(lambda d: wanted in self.text(element_id))
        return self.text(element_id)

    def login(self, operator: str = "cashier-1", pin: str = "1111") -> None:
        self.until(lambda d: self.el("login-operator").is_displayed())
        self.type("login-operator", operator)
        self.type("login-pin", pin)
        self.click("login-submit")
        self.until(lambda d: self.el("app").is_displayed())

    def amount(self, digits: str) -> None:
        from selenium.webdriver.common.by import By

        self.driver.find_element(By.CSS_SELECTOR, '.key[data-key="C"]').click()
        for digit in digits:
            self.driver.find_element(By.CSS_SELECTOR, f'.key[data-key="{digit}"]').click()

    def tab(self, name: str) -> None:
        if name == "devices":  # its panels are filled in after the page is interactive
            self.until(lambda d: d.execute_script("return document.body.dataset.devices") == "1")
        if name == "devices" and self.driver.execute_script("return document.body.classList.contains('wide')"):
            return  # a laptop-sized window shows the devices beside the cashier screen
        self.click(f"tab-{name}")

    def supervisor(self, operator: str, pin: str) -> None:
        self.until(lambda d: self.el("pin-dialog").is_displayed())
        self.type("pin-supervisor", operator)
        self.type("pin-pin", pin)
        self.click("pin-ok")

    def image_loaded(self, element_id: str) -> bool:
        return bool(self.driver.execute_script(
            "const i = document.getElementById(arguments[0]); return i.complete && i.naturalWidth > 0;", element_id))

    def screenshot(self, name: str) -> Path:
        path = self.shots / f"{name}.png"
        self.driver.save_screenshot(str(path))
        return path
