"""Third-party devices plug in through the `opentill.devices` entry-point group (ARCHITECTURE.md §2a).

The example plugin (tests/plugin_example/acme_till) is installed the way `pip install --target`
does it: its package and a real `.dist-info` (METADATA, entry_points.txt, RECORD) in a temporary
folder. Only child processes get that folder on their path, so this process never sees the
plugin: no monkeypatching, no network. The children run the real thing: a sale on an emulated
till whose printer slot uses the plugin's driver, and `till emulate` serving the plugin's new family.
"""

from __future__ import annotations

import base64
import hashlib
import json
import os
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from drivers.transport import open_port
from terminal import devices
from tests.support.processes import served

ROOT = Path(__file__).resolve().parents[2]
PLUGIN = ROOT / "tests" / "plugin_example"
DIST_INFO = "acme_till-0.1.0.dist-info"
CHILD_TIMEOUT_S = 120

TERMINAL_PROFILE = """\
# A counter till with the ACME printer in the printer slot and an ACME cash drawer.
schema = 1
name = "acme-counter"
inherits = "emulated-counter"

[devices.printer]
driver = "acme-printer"
profile = "acme-80"

[devices.cash_drawer]
driver = "acme-drawer"
profile = "acme-cd1"
url = "emu://acme-drawer"
"""

SALE = """\
import json, sys
from sim.wiring import build_emulated_till
from terminal.clock import FakeClock

with build_emulated_till(sys.argv[1], clock=FakeClock(), var_dir=sys.argv[2]) as till:
    emulators = till.emulators
    emulators.card_reader.present("approved")
    sale = till.sale(1234)
    printer, drawer = till.devices["printer"], till.devices["cash_drawer"]
    drawer.open_drawer()
    drawer_events = [type(e).__name__ for e in drawer.poll()]
    print(json.dumps({
        "outcome": sale.outcome,
        "printed": [p.copy.value for p in sale.printed],
        "printer_driver": f"{type(printer).__module__}.{type(printer).__qualname__}",
        "printer_driver_bases": [f"{c.__module__}.{c.__qualname__}" for c in type(printer).__mro__],
        "printer_jobs": printer.jobs,
        "printer_emulator": f"{type(emulators.printer).__module__}.{type(emulators.printer).__qualname__}",
        "vendor_init_seen": emulators.printer.vendor_init_seen,
        "pages": [page.text for page in emulators.printer.pages],
        "unknown_commands": len(emulators.printer.unknown_commands),
        "drawer_driver": type(drawer).__qualname__,
        "drawer_events": drawer_events,
        "drawer_opened": emulators.cash_drawer.opened,
        "drawer_pulses": emulators.cash_drawer.pulses,
    }))
"""

FAMILIES = """\
import json
from drivers.codec import Codec
from drivers.events import Role
from terminal import devices

print(json.dumps({name: {"family": row.family, "url_kind": row.url_kind, "emulator": row.emulator,
                         "codec_shape": all(isinstance(row.codec_class()(role, None), Codec) for role in Role)}
                  for name, row in devices.families().items()}))
"""


def _record_line(path: Path, site: Path) -> str:
    digest = base64.urlsafe_b64encode(hashlib.sha256(path.read_bytes()).digest()).rstrip(b"=").decode()
    return f"{path.relative_to(site).as_posix()},sha256={digest},{path.stat().st_size}"


@pytest.fixture
def site(tmp_path: Path) -> Path:
    """The example plugin installed into a fresh site folder, as `pip install --target` leaves it."""
    site = tmp_path / "site"
    shutil.copytree(PLUGIN / "acme_till", site / "acme_till", ignore=shutil.ignore_patterns("__pycache__"))
    info = site / DIST_INFO
    shutil.copytree(PLUGIN / DIST_INFO, info)
    files = sorted(p for p in site.rglob("*") if p.is_file())
    lines = [_record_line(p, site) for p in files] + [f"{DIST_INFO}/RECORD,,"]
    (info / "RECORD").write_text("\n".join(lines) + "\n", encoding="utf-8")
    return site


def _env(site: Path) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if k not in ("OPENTILL_PROFILE_PATH", "PYTHONPATH")}
    env["PYTHONPATH"] = os.pathsep.join([str(site), str(ROOT)])
    return env


def _run(site: Path, *args: str, cwd: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, *args], env=_env(site), cwd=cwd, capture_output=True, text=True,
                          timeout=CHILD_TIMEOUT_S, check=False)


def _json(proc: subprocess.CompletedProcess[str]) -> Any:
    assert proc.returncode == 0, proc.stderr
    return json.loads(proc.stdout)


def test_this_process_has_no_plugin_installed() -> None:
    """The rows below come from the children's site folder, not from this environment."""
    assert not any(name.startswith("acme") for name in devices.families())


def test_a_sale_prints_on_the_plugins_printer_driver_and_emulator(site: Path, tmp_path: Path) -> None:
    profile = tmp_path / "acme-counter.toml"
    profile.write_text(TERMINAL_PROFILE, encoding="utf-8")
    result = _json(_run(site, "-c", SALE, str(profile), str(tmp_path / "var"), cwd=tmp_path))

    assert result["outcome"] == "APPROVED"
    assert result["printed"] == ["merchant", "cardholder"]
    assert result["printer_driver"] == "acme_till.printer.AcmePrinterDriver"
    assert "drivers.printer.driver.PrinterDriver" in result["printer_driver_bases"]
    assert result["printer_jobs"] == 2
    assert result["printer_emulator"] == "acme_till.printer_emulator.AcmePrinterEmulator"
    assert result["vendor_init_seen"] is True
    assert result["unknown_commands"] == 0  # the vendor bytes were the emulator's, not printed as garbage
    merchant, cardholder = result["pages"][-2:]
    assert "MERCHANT COPY" in merchant and "CARDHOLDER COPY" in cardholder
    assert all("12.34" in page for page in (merchant, cardholder))
    # The new family rode along in the same till: opened by the composition root, driven, emulated.
    assert result["drawer_driver"] == "DrawerDriver"
    assert result["drawer_events"] == ["DrawerOpened"]
    assert (result["drawer_opened"], result["drawer_pulses"]) == (1, [120])  # acme-cd1.toml's pulse_ms


def test_the_registry_lists_both_plugin_rows_after_the_built_ins(site: Path, tmp_path: Path) -> None:
    rows = _json(_run(site, "-c", FAMILIES, cwd=tmp_path))
    from terminal.devices import _BUILTIN

    builtin = [row.name for row in _BUILTIN]
    assert list(rows)[:len(builtin)] == builtin and sorted(list(rows)[len(builtin):]) == ["acme-drawer", "acme-printer"]
    assert rows["acme-printer"]["family"] == "printer"
    assert rows["acme-drawer"] == {"family": "cash_drawer", "url_kind": "acme-drawer",
                                   "emulator": "acme_till.drawer.emulator:DrawerEmulator", "codec_shape": True}
    assert all(row["codec_shape"] for row in rows.values())  # drivers/codec.py's shape, plugins too


def test_till_emulate_lists_the_new_family_and_its_control_vocabulary(site: Path, tmp_path: Path) -> None:
    listing = _run(site, "-m", "terminal.cli", "emulate", "--help", cwd=tmp_path)
    assert listing.returncode == 0, listing.stderr
    assert "acme-drawer" in listing.stdout and "ACME cash drawer" in listing.stdout
    assert "acme-printer" in listing.stdout

    own = _run(site, "-m", "terminal.cli", "emulate", "acme-drawer", "--help", cwd=tmp_path)
    assert own.returncode == 0, own.stderr
    assert "usage: till emulate acme-drawer" in own.stdout
    for line in ("close", "fault jam | clear", "status | help"):  # acme_till/drawer/control.py's docstring
        assert line in own.stdout


def test_till_emulate_serves_the_new_family_with_its_plugin_profile(site: Path, tmp_path: Path) -> None:
    with served("emulate", "acme-drawer", "--listen", "127.0.0.1:0", env=_env(site), cwd=tmp_path) as child:
        assert child.endpoint.startswith("socket://127.0.0.1:")
        port = open_port(child.endpoint, timeout=5)
        try:
            port.write(b"\x1b\x70\x0c")  # ESC p 12: open, 120 ms
            assert port.read(1) == b"\x41"  # status: open
            assert child.control("close") == "ok: closed opened=1"
            assert port.read(1) == b"\x40"  # status: closed, pushed unasked
        finally:
            port.close()
