"""Notice a step of the wall clock (an NTP correction, an operator's ``date -s``) and recover.

Inside the process, durations are measured on the monotonic clock (``for``, budgets, cooldowns,
heartbeat deadlines), so a step changes none of them. APScheduler, which runs the checks,
computes its next run times on the wall clock: after a step backwards of an hour it would wait
an hour before the next check. This watch compares how far both clocks moved every
:data:`POLL_SECONDS`; when they disagree by more than :data:`STEP_SECONDS` it logs the step and
calls ``on_step(seconds)``, with which the agent installs its jobs again from now (each check
runs at once, then on its interval). Wall times that are stored (incidents, results, the audit)
keep the clock's word at the time they were written.
"""
from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable

from agent.engine.internal_errors import costs
from agent.engine.waits import stopped_within

log = logging.getLogger("agent")

POLL_SECONDS = 1.0
STEP_SECONDS = 2.0


class ClockWatch:
    """Calls ``on_step(step_seconds)`` after each wall-clock step (positive: forwards)."""

    def __init__(self, on_step: Callable[[float], None], *, poll: float = POLL_SECONDS,
                 threshold: float = STEP_SECONDS, wall: Callable[[], float] = time.time,
                 mono: Callable[[], float] = time.monotonic) -> None:
        self._on_step = on_step
        self._poll = poll
        self._threshold = threshold
        self._wall = wall
        self._mono = mono
        self.steps: list[float] = []

    def check(self, last_wall: float, last_mono: float) -> tuple[float, float]:
        """Compare the clocks since the last look; report a step. Returns the new reference."""
        wall, mono = self._wall(), self._mono()
        step = (wall - last_wall) - (mono - last_mono)
        if abs(step) > self._threshold:
            self.steps.append(step)
            log.warning("the wall clock stepped %s by %.1fs; scheduling the checks again from now",
                        "forwards" if step > 0 else "backwards", abs(step))
            try:
                self._on_step(step)
            except Exception:  # the watch must keep watching
                log.exception("handling a clock step failed", extra=costs(
                    "the checks were not scheduled again after the wall clock stepped"))
        return wall, mono

    async def run(self, stop: asyncio.Event) -> None:
        wall, mono = self._wall(), self._mono()
        while not await stopped_within(stop, self._poll):
            wall, mono = self.check(wall, mono)
