"""Run each ``heartbeat`` check at the deadline of the last beat, not at its polling interval.

For one bound heartbeat check, :class:`HeartbeatWatcher` reads the last beat ``b`` and sleeps
until ``b + deadline`` (plus a hair, so the check sees the deadline passed). If a newer beat
arrived meanwhile it simply sleeps to the new deadline: a healthy program costs one file read
per beat period at most. If not, the deadline is missed: it triggers the check at once (so the
hang is reported within milliseconds of the deadline), then watches the file every
``overdue_poll`` seconds and triggers the check again as soon as a beat resumes (fast recovery).

Contract: ``trigger(bc)`` is called once per missed deadline and once per recovery; the
watcher never raises out of :meth:`HeartbeatWatcher.run` (cancel it to stop).
"""
from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable
from typing import Any

from agent.modules.checks.heartbeat import read_beat

log = logging.getLogger("agent.watch")

DEADLINE_SLACK_S = 0.002
"""Wake this much after the deadline, so the check's own clock reading is past it too."""


class HeartbeatWatcher:
    """Deadline timer for one bound heartbeat check (see the module docstring)."""

    def __init__(self, bc: Any, trigger: Callable[[Any, str], None], *, overdue_poll: float | None = None) -> None:
        self.bc = bc
        self.path = str(bc.params.file)
        self.deadline = float(bc.params.deadline)
        self._trigger = trigger
        # Overdue: look for the beat to resume often, but never busier than 20 times a second.
        self._overdue_poll = overdue_poll or min(1.0, max(0.05, self.deadline / 10))
        self.missed = 0
        """How many deadlines were missed (for tests and the log)."""

    async def run(self) -> None:
        fired_for: float | None = -1.0  # the beat whose deadline was reported missed (-1: none)
        watching_since = time.time()
        while True:
            beat = read_beat(self.path)
            now = time.time()
            if beat is None and fired_for == -1.0 and now < watching_since + self.deadline:
                # No file yet: a program still starting is not hung before the deadline has
                # passed since we started watching (the check applies the same rule).
                await asyncio.sleep(min(self._overdue_poll, watching_since + self.deadline - now + DEADLINE_SLACK_S))
                continue
            if beat is not None and now < beat + self.deadline:
                if fired_for != -1.0:  # a beat after a missed deadline: recovered
                    fired_for = -1.0
                    self._trigger(self.bc, "heartbeat resumed")
                await asyncio.sleep(beat + self.deadline - now + DEADLINE_SLACK_S)
                continue
            if fired_for == -1.0 or (beat is not None and beat != fired_for):
                # Missed: no beat within the deadline (or no heartbeat file at all).
                fired_for = beat
                self.missed += 1
                log.warning("%s: no heartbeat for %s (deadline %gs)", self.bc.key,
                            f"{now - beat:.2f}s" if beat is not None else "ever", self.deadline)
                self._trigger(self.bc, "heartbeat deadline missed")
            await asyncio.sleep(self._overdue_poll)
