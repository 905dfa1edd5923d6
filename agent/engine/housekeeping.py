"""Housekeeping of the resident agent: reminders of open incidents, pruning old results."""
from __future__ import annotations

import asyncio
import logging
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING

from agent.engine.internal_errors import costs
from agent.engine.store_thread import StoreThread
from agent.engine.waits import stopped_within

if TYPE_CHECKING:
    from agent.notify import Notifications
    from agent.store import Store

log = logging.getLogger("agent")

RESULT_RETENTION = timedelta(days=7)
REPEAT_SCAN_SECONDS = 15.0
PRUNE_EVERY = timedelta(hours=1)


class Housekeeping:
    """Every :data:`REPEAT_SCAN_SECONDS`: queue due reminders (route ``repeat``); hourly: drop
    check results older than :data:`RESULT_RETENTION`. A failed round is logged and retried at
    the next one; it never takes the agent down."""

    def __init__(self, *, notifications: Notifications, store: Store, store_thread: StoreThread) -> None:
        self._notifications = notifications
        self._store = store
        self._thread = store_thread

    async def run(self, stop: asyncio.Event) -> None:
        last_prune = datetime.min.replace(tzinfo=UTC)
        while not stop.is_set():
            now = datetime.now(UTC)
            try:
                await self._thread.call(self._notifications.enqueue_due_repeats, now)
                if now - last_prune > PRUNE_EVERY:
                    await self._thread.call(self._store.prune_results, now - RESULT_RETENTION)
                    last_prune = now
            except Exception:  # housekeeping must never take the agent down
                log.exception("housekeeping failed", extra=costs(
                    "the reminders of problems still open (repeat_interval) were not queued, nor old check "
                    "results pruned; tried again in 15 s"))
            if await stopped_within(stop, REPEAT_SCAN_SECONDS):
                return
