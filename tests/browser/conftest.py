"""The web terminal in a real browser: Debian's headless Chromium driven by Selenium through
Debian's chromium-driver (scripts/install-tools.sh installs both when run as root).

Selenium rather than Playwright: Playwright for Python wants its own browser build, downloaded
at install time, and its driver is a Node.js bundle; Selenium is one pure-Python wheel that talks
WebDriver to the chromedriver Debian ships beside its Chromium, so the versions always match.

One browser per module (it takes the most time to start); one `till run` service per test, in
process: the emulated till of `till run` (sim/run.py, the acquirer simulator on a loopback
thread), the service loop on a thread, the payment API on port 0. Every byte the API sends is
kept (`Till.sent`) for the card-data check. Screenshots go to the pytest tmp dir of each test
(and, with OPENTILL_SCREENSHOTS=docs, the cashier screen to docs/screenshots/cashier.png).
"""

from __future__ import annotations

import os
import shutil
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from sim.run import InProcessService
from terminal.service.server import _Handler

CHROMIUM = os.environ.get("OPENTILL_CHROMIUM", "/usr/bin/chromium")
CHROMEDRIVER = os.environ.get("OPENTILL_CHROMEDRIVER", "/usr/bin/chromedriver")
TOKEN = "b" * 32
WAIT_S = 20.0  # the longest a journey waits for the page (a condition, polled: never a sleep)


def _missing() -> str | None:
    try:
        import selenium  # noqa: F401
    except ImportError:
        return "selenium is not installed (pip install -e '.[test]')"
    for path in (CHROMIUM, CHROMEDRIVER):
        if not shutil.which(path):
            return f"{path} not found (apt-get install chromium chromium-driver: scripts/install-tools.sh)"
    return None


@pytest.fixture(scope="module")
def browser() -> Iterator[Any]:
    missing = _missing()
    if missing is not None:
        if os.environ.get("CI"):
            pytest.fail(f"the browser tests must run in CI: {missing}")
        pytest.skip(missing)
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service as DriverService

    options = webdriver.ChromeOptions()
    options.binary_location = CHROMIUM
    for flag in ("--headless=new", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage",
                 "--window-size=1280,900", "--lang=en-US", "--disable-extensions", "--no-first-run"):
        options.add_argument(flag)
    driver = webdriver.Chrome(service=DriverService(executable_path=CHROMEDRIVER), options=options)
    try:
        yield driver
    finally:
        driver.quit()


class _Tee:
    """The handler's output stream, kept too (every response and event the browser was sent)."""

    def __init__(self, inner: Any, kept: list[bytes], lock: threading.Lock) -> None:
        self._inner, self._kept, self._lock = inner, kept, lock

    def write(self, data: bytes) -> int:
        with self._lock:
            self._kept.append(bytes(data))
        return int(self._inner.write(data))

    def flush(self) -> None:
        self._inner.flush()

    def __getattr__(self, name: str) -> Any:
        return getattr(self._inner, name)


class Till(InProcessService):
    """`till run` of the emulated counter, in process; every byte it sent is kept (`sent`)."""

    def __init__(self, var_dir: Path, overrides: dict[str, Any] | None = None) -> None:
        self.sent: list[bytes] = []
        lock = threading.Lock()
        sent = self.sent

        class Keeping(_Handler):
            def setup(self) -> None:
                super().setup()
                self.wfile = _Tee(self.wfile, sent, lock)  # type: ignore[assignment]

        super().__init__(var_dir, token=TOKEN, overrides=overrides, handler=Keeping)


@pytest.fixture
def till(request: pytest.FixtureRequest, var_dir: Path, browser: Any) -> Iterator[Till]:
    """A test may give profile overrides: `@pytest.mark.parametrize("till", [{...}], indirect=True)`."""
    running = Till(var_dir, getattr(request, "param", None))
    try:
        yield running
    finally:
        # The page's event stream would reconnect to the next test's port: leave it first.
        browser.get("about:blank")
        running.close()


@pytest.fixture
def shots(tmp_path: Path) -> Path:
    folder = tmp_path / "screenshots"
    folder.mkdir()
    return folder
