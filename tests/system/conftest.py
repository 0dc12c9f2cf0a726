from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from terminal.app import Till, build_till
from terminal.clock import FakeClock


@pytest.fixture
def till(clock: FakeClock, var_dir: Path) -> Iterator[Till]:
    with build_till(clock=clock, var_dir=var_dir) as t:
        yield t
