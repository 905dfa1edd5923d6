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
from collections.abc import Callable
from datetime import UTC, datetime
from typing import TYPE_CHECKING

from agent.engine.store_thread import StoreThread
from agent.notify.lifecycle import DIGEST_EVENT, AlertLifecycle, LifecycleSettings

if TYPE_CHECKING:
    from agent.engine.dependencies import Evidence
    from agent.engine.live_config import LiveConfig
    from agent.engine.pipeline import Decision
    from agent.notify import Notifications
    from agent.store import Store

log = logging.getLogger("agent")

TICK_SECONDS = 5.0
MIN_SLEEP_SECONDS = 0.005


class AlertLoop:
    """Drives :class:`AlertLifecycle` (see the module docstring). Event loop only."""

    def __init__(self, *, config: LiveConfig, notifications: Notifications, store: Store,
                 store_thread: StoreThread, is_flapping: Callable[[str], bool],
                 evidence: Callable[[str], Evidence | None] = lambda key: None) -> None:
        self._config = config
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
                                        is_flapping=is_flapping, settings=settings, evidence=evidence)

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
                await self._thread.call(self.lifecycle.tick, now)
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
                log.exception("alert lifecycle pass failed")
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

