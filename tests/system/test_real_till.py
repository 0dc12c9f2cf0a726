"""A till as it runs in a shop: terminal.app.build_till on devices served by other processes
(`till emulate ... --pty`, `till host`), with no emulator or sim module in the till's process."""

from __future__ import annotations

import json
import subprocess
import sys
from contextlib import ExitStack
from pathlib import Path

from tests.support.processes import served

CHILD = """
import json, sys
from terminal.app import build_till
urls = json.loads(sys.argv[1])
with build_till("emulated-counter", var_dir=sys.argv[2], device_urls=urls["devices"],
                overrides={"host.url": urls["host"]}) as till:
    ready = sorted(m for m in sys.modules if m.split(".")[0] in ("emulator", "sim"))
    sale = till.sale(1234, io_wait=5.0)
    print(json.dumps({"loaded_at_ready": ready, "outcome": sale.outcome, "code": sale.response_code,
                      "drivers": {slot: type(d).__module__ for slot, d in till.devices.items()}}))
"""


def test_a_real_till_sells_through_devices_in_other_processes(tmp_path: Path) -> None:
    with ExitStack() as stack:
        printer = stack.enter_context(served("emulate", "printer", "--pty"))
        reader = stack.enter_context(served("emulate", "card-reader", "--pty"))
        host = stack.enter_context(served("host", "--listen", "127.0.0.1:0"))
        assert reader.control("present approved chip").startswith("ok:")
        urls = {"devices": {"printer": printer.endpoint, "card_reader": reader.endpoint}, "host": host.endpoint}
        done = subprocess.run([sys.executable, "-c", CHILD, json.dumps(urls), str(tmp_path / "var")],
                              capture_output=True, text=True, timeout=60)
        assert done.returncode == 0, done.stderr
        result = json.loads(done.stdout.strip().splitlines()[-1])
        assert result["loaded_at_ready"] == [], "a real till imported the emulated world"
        assert (result["outcome"], result["code"]) == ("APPROVED", "00")
        assert result["drivers"] == {"printer": "drivers.printer.driver", "card_reader": "drivers.card_reader.driver"}
        assert printer.control("pages").startswith("ok: 2 page(s)")  # merchant and cardholder copies
