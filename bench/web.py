"""The web terminal's figures (issue 14), as JSON: `python -m bench.web [--quick]`.

- `web_ui_rss_added`: `till run` of the emulated counter, resident memory after a register-only
  session (status calls, a card sale, its receipt as a PNG) and, in another run, after the same
  sale from the web terminal's routes (every page file, sign-in, the device routes, a printer
  page, the event stream). The UI's cost is the difference; target < 15 MB.
- `web_cashier_page_interactive`: headless Chromium reloading the signed-in cashier page, from
  navigation start to the page's `opentill-ready` mark (status shown, events streaming); < 300 ms.
- `web_event_to_page`: a state change published by the service loop until an EventSource in the
  page has it (both clocks are this machine's wall clock, in ms); < 50 ms.

The browser figures need Debian's chromium and chromium-driver and selenium (scripts/install-tools.sh);
without them they are reported as skipped.
"""

from __future__ import annotations

import argparse
import json
import re
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import httpx

from bench.common import PYTHON, median

__all__ = ["bench_web"]

CHROMIUM, CHROMEDRIVER = "/usr/bin/chromium", "/usr/bin/chromedriver"


def _rss_mb(pid: int) -> float:
    match = re.search(r"VmRSS:\s+(\d+)", Path(f"/proc/{pid}/status").read_text())
    return int(match[1]) / 1024 if match else 0.0


def _till_run_rss(ui: bool) -> float:
    with tempfile.TemporaryDirectory() as tmp:
        proc = subprocess.Popen([PYTHON, "-m", "terminal.cli", "run", "--var", tmp, "--listen", "127.0.0.1:0"],
                                stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True)
        try:
            assert proc.stdout is not None
            found = re.search(r"http://\S+", proc.stdout.readline())
            if found is None:
                raise RuntimeError("till run did not say where it listens")
            token = (Path(tmp) / "api.token").read_text().strip()
            register = httpx.Client(base_url=found[0], headers={"Authorization": f"Bearer {token}"}, timeout=60)
            client, headers = register, {}
            if ui:
                client = httpx.Client(base_url=found[0], timeout=60)
                for _ in range(5):
                    for name in ("/", "/ui/app.js", "/ui/devices.js", "/ui/i18n.js", "/ui/app.css"):
                        client.get(name)
                csrf = client.post("/ui/login", json={"operator": "cashier-1", "pin": "1111"}).json()["csrf"]
                headers = {"X-CSRF-Token": csrf}
                for _ in range(10):
                    for path in ("/v1/status", "/v1/emulators", "/v1/payments?status=pending_confirmation",
                                 "/v1/emulators/printer/pages/current"):
                        client.get(path)
                with client.stream("GET", "/v1/events?after=0") as stream:
                    for _, _line in zip(range(5), stream.iter_lines(), strict=False):
                        pass
            for _ in range(10):
                client.get("/v1/status")
            client.post("/v1/emulators/card_reader", json={"line": "present approved chip"}, headers=headers)
            paid = client.post("/v1/payments?wait=30", json={"order_id": "BENCH-1", "amount": "1.00"},
                               headers=headers).json()
            client.get(f"/v1/receipts/{paid['trace']}?format=png&copy=merchant")
            return _rss_mb(proc.pid)
        finally:
            proc.terminate()
            proc.wait(timeout=30)


def bench_rss(reps: int) -> dict[str, Any]:
    register = median([_till_run_rss(ui=False) for _ in range(reps)])
    web = median([_till_run_rss(ui=True) for _ in range(reps)])
    added = web - register
    return {"name": "web_ui_rss_added", "register_only_mb": round(register, 1), "with_web_ui_mb": round(web, 1),
            "added_mb": round(added, 1), "target_mb": 15, "within_target": added < 15}


def _served(var_dir: Path) -> Any:
    """`till run` in process, its events stamped with the wall time they were published."""
    from sim.run import InProcessService
    from terminal.service.events import EventBus

    bus, published = EventBus(), {}
    publish = bus.publish

    def stamped(kind: str, **data: Any) -> Any:
        event = publish(kind, **data)
        published[event.id] = time.time() * 1000
        return event

    bus.publish = stamped  # type: ignore[method-assign]
    served = InProcessService(var_dir, token="x" * 32, bus=bus)
    served.published = published  # type: ignore[attr-defined]
    return served


def _events_at_least(count: int) -> Any:
    return lambda driver: driver.execute_script("return window.__got.length") >= count


def bench_browser(reps: int) -> list[dict[str, Any]]:
    try:
        from selenium import webdriver
        from selenium.webdriver.chrome.service import Service as DriverService
        from selenium.webdriver.support.ui import WebDriverWait
    except ImportError:
        return [{"name": "web_browser_figures", "skipped": "selenium is not installed", "within_target": True}]
    if not (shutil.which(CHROMIUM) and shutil.which(CHROMEDRIVER)):
        return [{"name": "web_browser_figures", "skipped": "no chromium / chromedriver", "within_target": True}]
    options = webdriver.ChromeOptions()
    options.binary_location = CHROMIUM
    for flag in ("--headless=new", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage"):
        options.add_argument(flag)
    with tempfile.TemporaryDirectory() as tmp:
        served = _served(Path(tmp) / "var")
        driver = webdriver.Chrome(service=DriverService(executable_path=CHROMEDRIVER), options=options)
        try:
            wait = WebDriverWait(driver, 30, poll_frequency=0.01)
            driver.get(served.server.url + "/")
            wait.until(lambda d: d.execute_script("return document.body.dataset.ready") == "1")
            driver.find_element("id", "login-operator").send_keys("cashier-1")
            driver.find_element("id", "login-pin").send_keys("1111")
            driver.find_element("id", "login-submit").click()
            wait.until(lambda d: d.find_element("id", "app").is_displayed())
            ready = []
            for _ in range(reps):
                driver.refresh()
                wait.until(lambda d: d.execute_script("return performance.getEntriesByName('opentill-ready').length"))
                ready.append(float(driver.execute_script(
                    "return performance.getEntriesByName('opentill-ready')[0].startTime")))
            driver.execute_script(
                "window.__got = []; const es = new EventSource('/v1/events');"
                "es.addEventListener('state', e => window.__got.push([Number(e.lastEventId),"
                " performance.timeOrigin + performance.now()])); window.__es = es;")
            wait.until(lambda d: d.execute_script("return window.__es.readyState") == 1)
            with httpx.Client(base_url=served.server.url, headers={"Authorization": "Bearer " + "x" * 32}) as api:
                for n in range(reps):  # each payment: IDLE -> AWAITING_CARD -> ... -> IDLE, cancelled
                    api.post("/v1/payments", json={"order_id": f"B-{n}", "amount": "1.00"})
                    api.post(f"/v1/payments/B-{n}/cancel", json={})
                    api.get(f"/v1/payments/B-{n}?wait=30")
                    wait.until(_events_at_least(2 * (n + 1)))
            got = driver.execute_script("return window.__got")
            delays = [at - served.published[int(i)] for i, at in got if int(i) in served.published]
        finally:
            driver.quit()
            served.close()
    interactive, event = median(ready), median(delays)
    return [
        {"name": "web_cashier_page_interactive", "median_ms": round(interactive, 1), "target_ms": 300,
         "within_target": interactive < 300},
        {"name": "web_event_to_page", "median_ms": round(event, 2), "events": len(delays), "target_ms": 50,
         "within_target": event < 50},
    ]


def bench_web(reps: int) -> list[dict[str, Any]]:
    return [bench_rss(max(1, reps // 5)), *bench_browser(reps)]


def main() -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.web")
    parser.add_argument("--quick", action="store_true", help="fewer repetitions (smoke run)")
    reps = 3 if parser.parse_args().quick else 15
    results = bench_web(reps)
    json.dump({"results": results, "all_within_target": all(r["within_target"] for r in results)}, sys.stdout,
              indent=2)
    sys.stdout.write("\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
