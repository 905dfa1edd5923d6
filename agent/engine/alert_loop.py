"""The alert loop: runs the alert lifecycle's pass when something may be due, and the digest.

The pass itself (grouping, silences, inhibition, escalation, resolves) is
:class:`agent.notify.lifecycle.AlertLifecycle`; this loop decides *when* it runs: at once after
a decision was stored (it is a :class:`~agent.engine.pipeline.DecisionListener`), at the pass's
next deadline (a group_wait ending, an escalation step, a silence's end), and every
:data:`TICK_SECONDS` as a safety net for what it cannot foresee (a maintenance window ending, an
incident acknowledged from another process). It also sends the info digest on its schedule.
"""
from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable
from datetime import UTC, datetime
from typing import TYPE_CHECKING

from agent.engine.internal_errors import costs
from agent.engine.store_thread import StoreThread
from agent.notify.lifecycle import DIGEST_EVENT, AlertLifecycle, LifecycleSettings
from agent.notify.lifecycle.remediation_notes import THIS_AGENT

if TYPE_CHECKING:
    from agent.engine.dependencies import Evidence
    from agent.engine.live_config import LiveConfig
    from agent.engine.pipeline import Decision
    from agent.notify import Notifications
    from agent.store import Store

log = logging.getLogger("agent")

TICK_SECONDS = 5.0
MIN_SLEEP_SECONDS = 0.005
BACKLOG_WAIT_S = 5.0
"""How long a pass waits, at most, for the decisions the pipeline is storing right now."""
REFUSED_WAIT_S = 60.0
"""... and while the store refuses them (direct alerts tell the problems meanwhile)."""
BACKLOG_RECHECK_S = 0.05


class AlertLoop:
    """Drives :class:`AlertLifecycle` (see the module docstring). Event loop only."""

    def __init__(self, *, config: LiveConfig, notifications: Notifications, store: Store,
                 store_thread: StoreThread, is_flapping: Callable[[str], bool],
                 evidence: Callable[[str], Evidence | None] = lambda key: None,
                 backlog: Callable[[], tuple[int, bool, int]] = lambda: (0, False, 0)) -> None:
        """``backlog()``: how many decisions the pipeline has not stored yet, whether the store
        refuses them, and how many it stored so far (read on the store thread, see :meth:`_tick`)."""
        self._config = config
        self._backlog = backlog
        self._backlog_since: float | None = None
        self._stored_seen = 0
        self._store = store
        self._thread = store_thread
        self._wake = asyncio.Event()

        def settings() -> LifecycleSettings:
            n = config.current.inventory.notify
            return LifecycleSettings(group_wait=float(n.group_wait), group_interval=float(n.group_interval),
                                     inhibit_grace=float(n.inhibit_grace),
                                     dependency_hold=float(n.dependency_hold),
                                     remediation_wait=float(n.remediation_wait))

        self.lifecycle = AlertLifecycle(notifications, checks=config.checks,
                                        maintenance=lambda: config.current.inventory.maintenance,
                                        is_flapping=is_flapping, settings=settings, evidence=evidence,
                                        here=THIS_AGENT)

    def _tick(self, now: datetime) -> bool:
        """Store thread: the pass, unless decisions are still being stored (then False).

        After a store outage the waiting decisions are stored one transaction each, on this
        thread: a pass between two of them would see a dependent's incident without its
        parent's (and tell it on its own), or a recovered problem as still open. Asked here, on
        the thread that stores them, the answer cannot change before the pass reads; each stored
        decision wakes the loop, and the pass runs once they all are. While the store refuses
        them the pass waits up to :data:`REFUSED_WAIT_S` (it could not write either, and one
        blocked on the lock could take it before the backlog); while it takes them, up to
        :data:`BACKLOG_WAIT_S` since it last took one (a decision that never stores must not
        stop every message)."""
        waiting, refused, stored = self._backlog()
        if not waiting:
            self._backlog_since = None
        else:
            mono = time.monotonic()
            if self._backlog_since is None or stored != self._stored_seen:
                self._backlog_since = mono  # it began, or the store took some: the rest follows
            if mono - self._backlog_since < (REFUSED_WAIT_S if refused else BACKLOG_WAIT_S):
                self._stored_seen = stored
                return False
        self._stored_seen = stored
        self.lifecycle.tick(now)
        return True

    def wake(self) -> None:
        """Run a pass now (something was stored that may be told)."""
        self._wake.set()

    def on_decision(self, decision: Decision) -> None:
        self.wake()

    async def run(self, stop: asyncio.Event) -> None:
        last = await self._thread.call(self._store.recent_events, kind=DIGEST_EVENT, limit=1)
        last_digest = last[0].at if last else datetime.now(UTC)
        while not stop.is_set():
            self._wake.clear()  # a decision stored from here on gets a pass of its own
            now = datetime.now(UTC)
            timeout = TICK_SECONDS
            try:
                if not await self._thread.call(self._tick, now):
                    await _first_of(stop, self._wake, BACKLOG_RECHECK_S)
                    continue
                trigger = self._config.current.inventory.notify.digest.trigger()
                # The previous fire time is the last digest: an IntervalTrigger asked with None
                # answers "one interval from its creation", which never comes as it is rebuilt here.
                due = trigger.get_next_fire_time(last_digest, now)
                if due is not None and due <= now:
                    await self._thread.call(self.lifecycle.send_digest, last_digest, now)
                    last_digest = now
                    due = trigger.get_next_fire_time(last_digest, now)
                for deadline in (self.lifecycle.next_due, due):
                    if deadline is not None:
                        timeout = min(timeout, (deadline - datetime.now(UTC)).total_seconds())
            except Exception:  # one bad pass (a locked store) must not silence every later alert
                log.exception("alert lifecycle pass failed", extra=costs(
                    "alerts, repeats and resolves due now wait for a pass that does not fail"))
            await _first_of(stop, self._wake, max(MIN_SLEEP_SECONDS, timeout))


async def _first_of(a: asyncio.Event, b: asyncio.Event, timeout: float) -> None:
    """Return when ``a`` or ``b`` is set, or after ``timeout`` seconds."""
    if a.is_set() or b.is_set():
        return
    waiters = [asyncio.ensure_future(a.wait()), asyncio.ensure_future(b.wait())]
    try:
        await asyncio.wait(waiters, timeout=timeout, return_when=asyncio.FIRST_COMPLETED)
    finally:
        for w in waiters:
            w.cancel()

