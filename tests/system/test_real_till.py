"""A till as it runs in a shop: terminal.app.build_till on devices served by other processes
(`till emulate ... --pty`, `till host`), with no emulator or sim module in the till's process."""

from __future__ import annotations

import json
import subprocess
import sys
from contextlib import ExitStack
from pathlib import Path

from emulator.wallet.payers import payment_code
from tests.support.processes import served

CHILD = """
import json, sys
from terminal.app import build_till
urls = json.loads(sys.argv[1])
with build_till("emulated-counter", var_dir=sys.argv[2], device_urls=urls["devices"],
                overrides={"host.url": urls["host"], "wallet.url": urls["wallet"]}) as till:
    ready = sorted(m for m in sys.modules if m.split(".")[0] in ("emulator", "sim"))
    sale = till.sale(1234, io_wait=5.0)
    qr = till.sale(888, tender="qr", io_wait=5.0)  # returns in SCANNING: the customer shows the code now
    print("SCANNING", till.flow.state.name, flush=True)
    sys.stdin.readline()  # the parent has the scanner process decode it
    till.wait(io_wait=5.0)
    print(json.dumps({"loaded_at_ready": ready, "outcome": sale.outcome, "code": sale.response_code,
                      "qr": qr.outcome, "order": qr.qr_order.order_no if qr.qr_order else None,
                      "drivers": {slot: type(d).__module__ for slot, d in till.devices.items()}}))
"""


def test_a_real_till_sells_through_devices_in_other_processes(tmp_path: Path) -> None:
    with ExitStack() as stack:
        printer = stack.enter_context(served("emulate", "printer", "--pty"))
        reader = stack.enter_context(served("emulate", "card-reader", "--pty"))
        scanner = stack.enter_context(served("emulate", "scanner", "--pty"))
        host = stack.enter_context(served("host", "--listen", "127.0.0.1:0"))
        wallet = stack.enter_context(served("wallet", "--listen", "127.0.0.1:0"))
        assert reader.control("present approved chip").startswith("ok:")
        urls = {"devices": {"printer": printer.endpoint, "card_reader": reader.endpoint, "scanner": scanner.endpoint},
                "host": host.endpoint, "wallet": wallet.endpoint}
        child = subprocess.Popen([sys.executable, "-c", CHILD, json.dumps(urls), str(tmp_path / "var")],
                                 stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        try:
            assert child.stdout is not None
            assert child.stdout.readline().split() == ["SCANNING", "SCANNING"]
            assert scanner.control(f"scan {payment_code('00')} qr").startswith("ok")
            out, err = child.communicate("\n", timeout=60)
        finally:
            if child.poll() is None:
                child.kill()
                child.communicate()
        assert child.returncode == 0, err
        result = json.loads(out.strip().splitlines()[-1])
        assert result["loaded_at_ready"] == [], "a real till imported the emulated world"
        assert (result["outcome"], result["code"]) == ("APPROVED", "00")
        assert result["qr"] == "APPROVED" and wallet.control("status").count("1 paid") == 1
        assert result["drivers"] == {"printer": "drivers.printer.driver", "card_reader": "drivers.card_reader.driver",
                                     "scanner": "drivers.scanner.driver", "wallet": "drivers.wallet.driver"}
        assert printer.control("pages").startswith("ok: 4 page(s)")  # merchant and cardholder copies of each
