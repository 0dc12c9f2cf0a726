"""A till as it runs in a shop: terminal.app.build_till on devices served by other processes
(`till emulate ... --pty`, `till host`), with no emulator or sim module in the till's process."""

from __future__ import annotations

import json
import subprocess
import sys
from collections.abc import Iterator
from contextlib import ExitStack, contextmanager
from pathlib import Path

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


@contextmanager
def _serve(*args: str) -> Iterator[tuple[subprocess.Popen[str], str]]:
    proc = subprocess.Popen([sys.executable, "-m", "terminal.cli", *args], stdin=subprocess.PIPE,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        assert proc.stdout is not None
        endpoint = proc.stdout.readline().strip()
        assert endpoint, proc.stderr.read() if proc.stderr else "no endpoint"
        yield proc, endpoint
    finally:
        proc.terminate()
        proc.communicate(timeout=10)


def _control(proc: subprocess.Popen[str], line: str) -> str:
    assert proc.stdin is not None and proc.stdout is not None
    proc.stdin.write(line + "\n")
    proc.stdin.flush()
    return proc.stdout.readline().strip()


def test_a_real_till_sells_through_devices_in_other_processes(tmp_path: Path) -> None:
    with ExitStack() as stack:
        printer, printer_url = stack.enter_context(_serve("emulate", "printer", "--pty"))
        reader, reader_url = stack.enter_context(_serve("emulate", "card-reader", "--pty"))
        _, host_url = stack.enter_context(_serve("host", "--listen", "127.0.0.1:0"))
        assert _control(reader, "present approved chip").startswith("ok:")
        urls = {"devices": {"printer": printer_url, "card_reader": reader_url}, "host": host_url}
        done = subprocess.run([sys.executable, "-c", CHILD, json.dumps(urls), str(tmp_path / "var")],
                              capture_output=True, text=True, timeout=60)
        assert done.returncode == 0, done.stderr
        result = json.loads(done.stdout.strip().splitlines()[-1])
        assert result["loaded_at_ready"] == [], "a real till imported the emulated world"
        assert (result["outcome"], result["code"]) == ("APPROVED", "00")
        assert result["drivers"] == {"printer": "drivers.printer.driver", "card_reader": "drivers.card_reader.driver"}
        assert _control(printer, "pages").startswith("ok: 2 page(s)")  # merchant and cardholder copies
