"""The device registry (python-can's `BACKENDS`): a family name -> where its parts live.

A row names its parts as "module:attribute" strings, imported only when asked, so a real till
that never emulates anything never imports an emulator. The composition root (terminal/app.py),
`till emulate FAMILY`, the emulated world (sim/wiring.py), the scenario vocabulary, the HIL
options of the contract suites and the layer test all read this table; none of them names a
family.

Another package adds a family, or another driver for an existing family (a vendor's printer),
with an entry point in the `opentill.devices` group whose object is a `DeviceFamily`:

    [project.entry-points."opentill.devices"]
    acme-printer = "acme_till.devices:ACME_PRINTER"

A terminal profile picks a driver for a device slot with `driver = "acme-printer"`; without it the
slot's own name is the driver (`devices.printer` uses the `printer` row).
"""

from __future__ import annotations

import importlib
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from drivers.record import Record
from terminal.errors import ConfigError

__all__ = [
    "ENTRY_POINT_GROUP", "HOST_LINK", "NOT_FITTED", "SECTION_LINKS", "WALLET_LINK", "DeviceFamily", "families",
    "family", "fitted", "load_device_profile", "resolve",
]

ENTRY_POINT_GROUP = "opentill.devices"
HOST_LINK = "acquirer"  # the row that drives the terminal profile's `[host]` link (not a `[devices]` slot)
WALLET_LINK = "wallet"  # the row that drives the terminal profile's `[wallet]` gateway link (QR payments)
# Rows whose link a top-level section of the terminal profile (named like the row) configures,
# opened by the composition root beside the devices: `[wallet] url = ...`.
SECTION_LINKS = (WALLET_LINK,)


class DeviceFamily(Record):
    """One row: a family (or one more driver for a family) and where its parts are."""

    name: str  # registry key: "printer", or "acme-printer" for a vendor's driver of the printer family
    family: str  # the device slot it fills in the checkout: "printer", "card_reader", "acquirer", ...
    driver: str  # "module:Class" of the host-side driver (drivers/<family>/driver.py)
    codec: str  # "module:Class" of the sans-I/O codec, both roles
    profile_kind: str  # which firmware_profiles/<kind>s/ folder (and schema) its profiles use
    default_profile: str
    emulator: str | None = None  # "module:Class" of the device-side emulator, if there is one
    profile_root: Path | None = None  # a plugin's own profile folders (laid out like firmware_profiles/)
    description: str = ""

    @property
    def url_kind(self) -> str:
        """The name in `emu://<kind>` URLs."""
        return self.name.replace("_", "-")

    def driver_class(self) -> Any:
        return _load(self.driver, self.name)

    def codec_class(self) -> Any:
        return _load(self.codec, self.name)

    def emulator_class(self) -> Any:
        if self.emulator is None:
            raise ConfigError(f"device family {self.name!r} has no emulator")
        return _load(self.emulator, self.name)


_BUILTIN = (
    DeviceFamily(
        name="printer", family="printer", description="ESC/POS receipt printer",
        driver="drivers.printer.driver:PrinterDriver", codec="drivers.printer.codec:PrinterCodec",
        emulator="emulator.printer.emulator:PrinterEmulator",
        profile_kind="printer", default_profile="cn-80mm",
    ),
    DeviceFamily(
        name="card_reader", family="card_reader", description="EMV card reader / PIN pad",
        driver="drivers.card_reader.driver:CardReaderDriver", codec="drivers.card_reader.codec:CardReaderCodec",
        emulator="emulator.card_reader.emulator:CardReaderEmulator",
        profile_kind="card_reader", default_profile="generic-pinpad",
    ),
    DeviceFamily(
        name="acquirer", family="acquirer", description="ISO 8583 acquirer host link",
        driver="drivers.acquirer.driver:AcquirerDriver", codec="drivers.acquirer.codec:AcquirerCodec",
        emulator="emulator.acquirer.simulator:AcquirerSimulator",
        profile_kind="terminal", default_profile="emulated-counter",
    ),
    DeviceFamily(
        name="scanner", family="scanner", description="barcode / QR scanner (serial line mode, GM65, Zebra SSI)",
        driver="drivers.scanner.driver:ScannerDriver", codec="drivers.scanner.codec:ScannerCodec",
        emulator="emulator.scanner.emulator:ScannerEmulator",
        profile_kind="scanner", default_profile="generic-serial",
    ),
    DeviceFamily(
        name="signature_pad", family="signature_pad",
        description="electronic signature pad (Topaz serial pen packets; LCD model with text lines and keys)",
        driver="drivers.signature_pad.driver:SignaturePadDriver", codec="drivers.signature_pad.codec:SignaturePadCodec",
        emulator="emulator.signature_pad.emulator:SignaturePadEmulator",
        profile_kind="signature_pad", default_profile="topaz-lcd4x5",
    ),
    DeviceFamily(
        name="wallet", family="wallet",
        description="wallet gateway for QR payments (WeChat Pay / Alipay / UnionPay QR; signed JSON over HTTPS)",
        driver="drivers.wallet.driver:WalletDriver", codec="drivers.wallet.codec:WalletCodec",
        emulator="emulator.wallet.server:WalletServer",
        profile_kind="terminal", default_profile="emulated-counter",
    ),
)

_BUILTIN_NAMES = frozenset(row.name for row in _BUILTIN)
_cache: dict[str, DeviceFamily] | None = None


def _key(name: str) -> str:
    return name.replace("-", "_")


def families(*, plugins: bool = True) -> dict[str, DeviceFamily]:
    """Every registered row: the built-in families, then entry points (which may add rows, never
    replace a built-in one). `plugins=False`: the built-in rows only, without the entry-point scan
    (`till --help`)."""
    global _cache
    if not plugins:
        return {row.name: row for row in _BUILTIN}
    if _cache is None:
        rows = {row.name: row for row in _BUILTIN}
        taken = {_key(name): name for name in rows}  # "card-reader" is "card_reader": one name
        for row in _entry_point_rows():
            if (other := taken.get(_key(row.name))) is not None:
                whose = "a built-in device family" if other in _BUILTIN_NAMES else "another device plugin"
                raise ConfigError(f"device plugin {row.name!r} clashes with {whose} ({other!r})")
            taken[_key(row.name)] = row.name
            rows[row.name] = row
        _cache = rows
    return dict(_cache)


def family(name: str) -> DeviceFamily:
    """The row called `name` ("card-reader" and "card_reader" are the same name).

    A built-in name is found without reading the installed packages' entry points (that scan
    costs ~35 ms of every start): a till pays for plugins only when its profile names one."""
    builtin = next((r for r in _BUILTIN if _key(r.name) == _key(name)), None)
    if builtin is not None and _cache is None:
        return builtin
    rows = families()
    row = rows.get(name) or next((r for n, r in rows.items() if _key(n) == _key(name)), None)
    if row is None:
        known = ", ".join(sorted(r.url_kind for r in rows.values()))
        raise ConfigError(f"unknown device family {name!r} (known: {known})")
    return row


def resolve(slot: str, settings: Mapping[str, Any]) -> DeviceFamily:
    """The row that drives the terminal profile's device slot `slot` (`[devices.<slot>]`)."""
    row = family(str(settings["driver"] or slot))
    if row.family != slot:
        raise ConfigError(f"devices.{slot}: driver {row.name!r} is for the {row.family!r} family, not {slot!r}")
    return row


NOT_FITTED = "none"  # a slot's url that says the terminal has no such device (a paperless terminal's printer)


def fitted(terminal: Mapping[str, Any]) -> dict[str, Mapping[str, Any]]:
    """The terminal profile's device slots that have a device (`url = "none"`: not fitted; a
    profile that inherits one with a printer says so for a paperless terminal)."""
    return {slot: settings for slot, settings in terminal["devices"].items() if str(settings["url"]) != NOT_FITTED}


def load_device_profile(row: DeviceFamily, name: str) -> dict[str, Any]:
    """A device's firmware profile (by name or path), validated against its family's schema."""
    from firmware_profiles import ProfileError, load_profile

    try:
        return load_profile(row.profile_kind, name, search=[row.profile_root] if row.profile_root else ())
    except ProfileError as exc:
        raise ConfigError(str(exc)) from exc


def reset_cache() -> None:
    """Forget the rows read so far (a test that installs a plugin calls this)."""
    global _cache
    _cache = None


def _entry_point_rows() -> list[DeviceFamily]:
    from importlib.metadata import entry_points

    rows = []
    for ep in entry_points(group=ENTRY_POINT_GROUP):
        try:
            row = ep.load()
        except Exception as exc:  # a broken plugin is named, not a traceback at start-up
            raise ConfigError(f"device plugin {ep.name!r} ({ep.value}) failed to load: {exc}") from exc
        if not isinstance(row, DeviceFamily):
            raise ConfigError(f"device plugin {ep.name!r} ({ep.value}) is not a terminal.devices.DeviceFamily")
        rows.append(row)
    return rows


def _load(path: str, name: str) -> Any:
    module, _, attribute = path.partition(":")
    try:
        return getattr(importlib.import_module(module), attribute)
    except (ImportError, AttributeError) as exc:
        raise ConfigError(f"device family {name!r}: cannot load {path}: {exc}") from exc
