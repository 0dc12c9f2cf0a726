"""Suite-wide fixtures: virtual time, a clean var dir, hardware options, and the leak check."""

from __future__ import annotations

import gc
import threading
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path

import pytest

from drivers.transport import open_ports
from emulator.link import active_links
from terminal import devices
from terminal.clock import FakeClock
from terminal.errors import ConfigError
from tests.support.depth import PROFILE

__all__ = ["HilTarget", "hil_targets"]


@dataclass(frozen=True, kw_only=True)
class HilTarget:
    """One `--hil FAMILY=URL[,profile=NAME]`: a real device of a registered family, and its profile."""

    family: str  # registry row name ("card_reader"), whatever spelling was typed
    url: str
    profile: str | None = None


_HIL = pytest.StashKey[dict[str, HilTarget]]()
_HIL_USAGE = "--hil FAMILY=URL[,profile=NAME]"


def pytest_addoption(parser: pytest.Parser) -> None:
    parser.addoption(
        "--hil", action="append", default=[], metavar="FAMILY=URL[,profile=NAME]",
        help="a real device for the contract suites, e.g. --hil printer=/dev/ttyUSB0,profile=epson-tm-t20iii "
             "--hil card-reader=socket://10.0.0.5:9100 (repeatable, one per family; families come from "
             "terminal.devices)",
    )


def _parse_hil(value: str) -> HilTarget:
    name, sep, rest = value.partition("=")
    if not sep or not name.strip() or not rest:
        raise pytest.UsageError(f"{_HIL_USAGE}: cannot read {value!r}")
    try:
        row = devices.family(name.strip())
    except ConfigError as exc:
        raise pytest.UsageError(f"--hil {value}: {exc}") from exc
    url, *options = rest.split(",")
    profile: str | None = None
    for option in options:
        key, sep, setting = option.partition("=")
        if key.strip() != "profile" or not sep or not setting.strip():
            raise pytest.UsageError(f"--hil {value}: unknown option {option!r} (only profile=NAME)")
        profile = setting.strip()
    if not url.strip():
        raise pytest.UsageError(f"--hil {value}: no URL for the {row.url_kind} (like /dev/ttyUSB0)")
    if profile is not None:
        try:
            devices.load_device_profile(row, profile)
        except ConfigError as exc:
            raise pytest.UsageError(f"--hil {value}: {exc}") from exc
    return HilTarget(family=row.name, url=url.strip(), profile=profile)


def pytest_report_header(config: pytest.Config) -> str:
    # Importing tests.support.depth above loaded the profile, before any test module is collected.
    return f"Hypothesis depth: {PROFILE} (OPENTILL_DEEP=1 or HYPOTHESIS_PROFILE=deep goes deeper)"


def pytest_configure(config: pytest.Config) -> None:
    targets: dict[str, HilTarget] = {}
    for value in config.getoption("--hil"):
        target = _parse_hil(value)
        if target.family in targets:
            raise pytest.UsageError(f"--hil: {target.family} given twice (one device per family)")
        targets[target.family] = target
    config.stash[_HIL] = targets


def hil_targets(config: pytest.Config) -> Mapping[str, HilTarget]:
    """The real devices given with --hil, by registry row name."""
    return config.stash.get(_HIL, {})


def _wanted(marker: pytest.Mark) -> set[str]:
    """`@pytest.mark.hardware("printer")` wants a printer; a bare `hardware` wants any device."""
    wanted = set()
    for name in marker.args:
        try:
            wanted.add(devices.family(str(name)).name)
        except ConfigError as exc:
            raise pytest.UsageError(f"@pytest.mark.hardware: {exc}") from exc
    return wanted


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    given = set(hil_targets(config))
    for item in items:
        for marker in item.iter_markers("hardware"):
            wanted = _wanted(marker)
            missing = sorted(wanted - given)
            if missing:
                how = " ".join(f"--hil {devices.family(m).url_kind}=URL" for m in missing)
                item.add_marker(pytest.mark.skip(reason=f"needs a real device: {how}"))
                break
            if not wanted and not given:
                item.add_marker(pytest.mark.skip(reason=f"needs a real device: {_HIL_USAGE}"))
                break


def _left_behind(threads_before: set[threading.Thread], ports_before: set[str]) -> tuple[list[str], list[str]]:
    threads = [t.name for t in threading.enumerate() if t not in threads_before and t.is_alive()]
    return threads, sorted(set(open_ports()) - ports_before)


_COLLECT_EVERY = 20  # tests between full collections at setup (one took ~0.14 s on the grown heap)
_since_collect = [0]


@pytest.fixture(autouse=True)
def _leaves_nothing_behind(request: pytest.FixtureRequest) -> Iterator[None]:
    """Fail a test that leaves a thread, an open port or a served pty/socket behind."""
    _since_collect[0] += 1
    if _since_collect[0] >= _COLLECT_EVERY or getattr(request.function, "is_hypothesis_test", False):
        # Earlier tests' garbage is collected between tests, not by Python's own gen-2 collection in
        # the middle of one (up to 0.65 s measured): a pause there trips a Hypothesis deadline, or
        # lets a paced printer drain a buffer a real-time test needs to overflow.
        gc.collect()
        _since_collect[0] = 0
    threads_before = set(threading.enumerate())
    ports_before = set(open_ports())
    yield
    threads, ports = _left_behind(threads_before, ports_before)
    if threads or ports:
        # A port dropped in a reference cycle is gone only once collected: collect, then judge.
        # A full collection per test cost ~0.14 s each (~5 min of the suite); a clean test needs none.
        gc.collect()
        threads, ports = _left_behind(threads_before, ports_before)
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
