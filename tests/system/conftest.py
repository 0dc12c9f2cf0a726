from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from terminal.access import Approval
from terminal.app import Till, build_till
from terminal.clock import FakeClock

SUPERVISOR = {"supervisor": "supervisor-1", "pin": "8888"}  # the emulated terminal's test supervisor


def approve(till: Till, operation: str, reason: str = "test") -> Approval:
    return till.approve(operation, operator_id="supervisor-1", pin="8888", reason=reason)


@pytest.fixture
def till(clock: FakeClock, var_dir: Path) -> Iterator[Till]:
    with build_till(clock=clock, var_dir=var_dir) as t:
        yield t
