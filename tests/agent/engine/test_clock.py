"""A step of the wall clock is noticed and handed to the agent (issue 14, item 7)."""
from __future__ import annotations

from agent.engine.clock import ClockWatch


class Clocks:
    def __init__(self) -> None:
        self.wall, self.mono = 1_000_000.0, 50.0

    def tick(self, seconds: float, *, wall_step: float = 0.0) -> None:
        self.mono += seconds
        self.wall += seconds + wall_step


def test_a_step_of_the_wall_clock_is_reported_once_with_its_size_and_direction() -> None:
    clocks, steps = Clocks(), []
    watch = ClockWatch(steps.append, wall=lambda: clocks.wall, mono=lambda: clocks.mono)
    ref = (clocks.wall, clocks.mono)
    for wall_step in (0.0, 0.3, -0.5, -3600.0, 0.0, 86400.0, 0.0):  # jitter under the threshold, then steps
        clocks.tick(1.0, wall_step=wall_step)
        ref = watch.check(*ref)
    assert [round(s) for s in steps] == [-3600, 86400]
