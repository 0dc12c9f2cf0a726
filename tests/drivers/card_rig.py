"""Helpers shared by the card-reader driver tests (the fixtures are in tests/drivers/conftest.py)."""

from __future__ import annotations

from drivers.base import DeviceEvent
from firmware_profiles import load_profile

PROFILE = load_profile("card_reader", "generic-pinpad")


def only(events: list[DeviceEvent], kind: type[DeviceEvent]) -> list[DeviceEvent]:
    return [e for e in events if isinstance(e, kind)]
