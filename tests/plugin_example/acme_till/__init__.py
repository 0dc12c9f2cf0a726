"""ACME Till: an example third-party OpenTill device plugin (test data for tests/system/test_plugins.py).

It shows both ways a package extends the device registry (terminal/devices.py) through the
`opentill.devices` entry-point group, without editing OpenTill:

- `acme-printer`: another driver for an existing family. A vendor's printer: its driver and its
  emulator subclass the printer family's, and a terminal profile picks it for the printer slot with
  `devices.printer.driver = "acme-printer"`.
- `acme-drawer`: a new family, `cash_drawer` (acme_till/drawer/: events, codec, driver, emulator,
  control vocabulary), with its own profile kind (profiles/cash_drawers/schema.toml).

The distribution declares them as (acme_till-0.1.0.dist-info/entry_points.txt):

    [opentill.devices]
    acme-printer = acme_till:ACME_PRINTER
    acme-drawer = acme_till:ACME_DRAWER

Importing this module costs one import (terminal.devices): the rows name their parts as strings,
loaded only when a till uses them.
"""

from __future__ import annotations

from pathlib import Path

from terminal.devices import DeviceFamily

__all__ = ["ACME_DRAWER", "ACME_PRINTER", "PROFILE_ROOT"]

PROFILE_ROOT = Path(__file__).resolve().parent / "profiles"  # laid out like firmware_profiles/

ACME_PRINTER = DeviceFamily(
    name="acme-printer", family="printer", description="ACME 80 mm receipt printer (vendor init, job counter)",
    driver="acme_till.printer:AcmePrinterDriver", codec="drivers.printer.codec:PrinterCodec",
    emulator="acme_till.printer_emulator:AcmePrinterEmulator",
    profile_kind="printer", default_profile="acme-80", profile_root=PROFILE_ROOT,
)

ACME_DRAWER = DeviceFamily(
    name="acme-drawer", family="cash_drawer", description="ACME cash drawer (open, status, closed by hand)",
    driver="acme_till.drawer.driver:DrawerDriver", codec="acme_till.drawer.codec:DrawerCodec",
    emulator="acme_till.drawer.emulator:DrawerEmulator",
    profile_kind="cash_drawer", default_profile="acme-cd1", profile_root=PROFILE_ROOT,
)
