"""Retries: a check whose latest reading failed runs again soon, not at its next interval.

Nagios' ``retry_interval``: a service in a non-OK state is re-checked sooner than its
``check_interval``. Here a check that runs every 5 minutes (the exchange credentials: a signed
request) and read UNKNOWN once (a probe that timed out on a loaded machine) would otherwise stay
UNKNOWN, told and unresolved, for 5 minutes. While its latest reading is not OK it runs again
:data:`FIRST_RETRY_S` after that reading, then after twice as long each time, never less often
than its own interval: a transient failure resolves within seconds, a lasting one costs a handful
of extra probes over the first interval. A hard problem read OK whose check has ``recover_after``
above 1 (it is *recovering*) runs again :data:`FIRST_RETRY_S` after each OK reading until the
recovery is confirmed.

And a probe that *timed out* is not told on its own (:data:`TIMEOUT_CONFIRMATIONS`): under load a
probe can time out while what it probes is fine. Its state turns hard only when the retry times
out too (or fails otherwise), as ``after: 2`` would; a check's own ``after`` above that still
applies. Everything else keeps its ``after``: a refused connection, a CRITICAL read, are definite.
"""
from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable

from agent.core.causes import TIMEOUT, failure_cause
from agent.engine.evaluator import CheckStatus
from agent.modules.base import CheckResult
from agent.playbook.binding import BoundCheck

log = logging.getLogger("agent")

FIRST_RETRY_S = 2.0
"""The first retry of a failing check, after its failing reading; each next one waits twice as long."""
TIMEOUT_CONFIRMATIONS = 2
"""Consecutive failed readings, the first a timeout, before a check that timed out turns hard."""


def confirmations(after: int, error: str | None) -> int:
    """The ``after`` a failed reading with ``error`` is judged by: a timeout is confirmed by a retry."""
    return max(after, TIMEOUT_CONFIRMATIONS) if failure_cause(error) == TIMEOUT else after


class Retries:
    """A scheduler result listener (see the module docstring). Event loop only."""

    def __init__(self, *, status: Callable[[str], CheckStatus | None], check: Callable[[str], BoundCheck | None],
                 run_now: Callable[[BoundCheck], object]) -> None:
        self._status = status
        self._check = check
        self._run_now = run_now
        self._pending: dict[str, asyncio.TimerHandle] = {}
        self.scheduled = 0
        """Retries scheduled (for tests and the log)."""

    def on_result(self, bc: BoundCheck, result: CheckResult, duration_ms: float) -> None:
        status = self._status(bc.key)
        old = self._pending.pop(bc.key, None)
        if old is not None:
            old.cancel()
        if status is None or not (status.soft.is_problem or status.recovering) or not bc.interval:
            return
        # a recovery to confirm (``recover_after``): its next reading soon, like a first retry
        delay = min(float(bc.interval), FIRST_RETRY_S * 2 ** max(0, status.consecutive - 1))
        if delay >= bc.interval:
            return  # its schedule runs it as soon
        self.scheduled += 1
        self._pending[bc.key] = asyncio.get_running_loop().call_later(delay, self._due, bc.key)

    def _due(self, key: str) -> None:
        self._pending.pop(key, None)
        bc = self._check(key)  # a reload may have changed or removed it
        if bc is not None:
            self._run_now(bc)

    def close(self) -> None:
        for handle in self._pending.values():
            handle.cancel()
        self._pending.clear()
