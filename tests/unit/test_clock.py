from __future__ import annotations

from terminal.clock import Deadline, FakeClock


def test_fake_clock_moves_only_when_advanced() -> None:
    clock = FakeClock()
    start_wall = clock.wall()
    clock.call_later(60, Deadline(name="host"))
    assert clock.due() == []
    clock.advance(59.999)
    assert clock.due() == []
    clock.advance(0.001)
    assert clock.due() == [Deadline(name="host")]
    assert clock.due() == []
    assert (clock.wall() - start_wall).total_seconds() == 60


def test_deadlines_fire_in_time_order_and_cancelled_ones_never() -> None:
    clock = FakeClock()
    late = clock.call_later(30, Deadline(name="late"))
    clock.call_later(10, Deadline(name="early"))
    dropped = clock.call_later(20, Deadline(name="dropped"))
    dropped.cancel()
    assert clock.next_deadline() == 10
    clock.advance(100)
    assert [d.name for d in clock.due()] == ["early", "late"]
    assert late.when == 30
    assert clock.next_deadline() is None
