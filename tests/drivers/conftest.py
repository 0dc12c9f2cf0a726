"""Fixtures for the driver tests: a real card-reader driver on an emu:// link to a peer.
(Test modules that define fixtures of the same names, like the printer's, use their own.)"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest

from drivers.card_reader.driver import CardReaderDriver
from drivers.transport import Peer, attach_peer, detach_peer
from emulator.card_reader.emulator import CardReaderEmulator
from tests.drivers.card_rig import PROFILE


@pytest.fixture
def connect() -> Iterator[Any]:
    """connect(peer) -> an open CardReaderDriver on an emu:// link to it; all closed afterwards."""
    opened: list[tuple[CardReaderDriver, str]] = []

    def _connect(peer: Peer) -> CardReaderDriver:
        url = attach_peer("card_reader", peer)
        driver = CardReaderDriver(url, PROFILE, timeout=0.5)
        opened.append((driver, url))
        driver.open()
        return driver

    yield _connect
    for driver, url in opened:
        driver.close()
        detach_peer(url)


@pytest.fixture
def emulator() -> CardReaderEmulator:
    return CardReaderEmulator(PROFILE)


@pytest.fixture
def reader(connect: Any, emulator: CardReaderEmulator) -> CardReaderDriver:
    driver: CardReaderDriver = connect(emulator)
    return driver
