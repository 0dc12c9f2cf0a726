"""`till run` in emulator mode: the emulated world of a profile, kept under var/, and a control
line for each emulated device, host and wallet (the payment API's `/v1/emulators/{slot}`).

The devices are the emulators `sim.wiring` builds for the profile's emu:// slots (a slot given
a port is opened as given); the acquirer simulator serves on a loopback thread with its network
faults on tap; the QR wallet gateway runs in process. Their books live in var/emulated/, so the
host remembers what it approved across a restart and the batch settles in balance.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

from sim.wiring import build_emulated_till

__all__ = ["build_service_till"]


def build_service_till(profile: str, *, var_dir: Path, display: Callable[[str], None],
                       device_urls: Mapping[str, str] | None = None,
                       absent: Callable[[str, Any, Exception], None] | None = None,
                       ) -> tuple[Any, dict[str, Callable[[str], str]]]:
    """(the till, control line -> reply by slot) for `till run` of an emulated profile."""
    from emulator.control import apply

    till = build_emulated_till(profile, var_dir=var_dir, display=display, device_urls=device_urls,
                               host_transport="tcp", persist_emulated_books=True, absent=absent)
    emulators = till.emulators
    controls: dict[str, Callable[[str], str]] = {}
    for slot, peer in emulators.devices.items():
        controls[slot] = _control(apply, peer)
    if emulators.host is not None:
        controls["host"] = _control(apply, emulators.host)
    if emulators.wallet is not None:
        controls["wallet"] = _control(apply, emulators.wallet)
    return till, controls


def _control(apply: Callable[[Any, str], str], peer: Any) -> Callable[[str], str]:
    return lambda line: apply(peer, line)
