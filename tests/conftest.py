"""Suite-wide fixtures: virtual time, a clean var dir, hardware options, and the leak check."""

from __future__ import annotations

import gc
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest

from drivers.transport import open_ports
from emulator.link import active_links
from terminal.clock import FakeClock


def pytest_addoption(parser: pytest.Parser) -> None:
    parser.addoption("--hil-port", default=None, help="serial device of a real device for contract tests")
    parser.addoption("--hil-profile", default=None, help="firmware profile of the device on --hil-port")


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    if config.getoption("--hil-port"):
        return
    skip = pytest.mark.skip(reason="needs --hil-port with a real device")
    for item in items:
        if "hardware" in item.keywords:
            item.add_marker(skip)


@pytest.fixture(autouse=True)
def _leaves_nothing_behind() -> Iterator[None]:
    """Fail a test that leaves a thread, an open port or a served pty/socket behind."""
    threads_before = set(threading.enumerate())
    ports_before = set(open_ports())
    yield
    gc.collect()
    threads = [t.name for t in threading.enumerate() if t not in threads_before and t.is_alive()]
    ports = sorted(set(open_ports()) - ports_before)
    links = [link.endpoint for link in active_links()]
    for link in active_links():
        link.stop()
    assert not threads, f"test left threads running: {threads}"
    assert not ports, f"test left ports open: {ports}"
    assert not links, f"test left emulator links serving: {links}"


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock()


@pytest.fixture
def var_dir(tmp_path: Path) -> Path:
    return tmp_path / "var"
