"""The resident agent's background loops: the alert lifecycle pass, the heartbeat, housekeeping."""
from __future__ import annotations

import asyncio
import logging
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from agent.engine import flapping

log = logging.getLogger("agent")

RESULT_RETENTION = timedelta(days=7)
REPEAT_SCAN_SECONDS = 15.0
LIFECYCLE_TICK_SECONDS = 5.0
"""Safety net of the alert lifecycle pass: it is woken by every transition and at its next
deadline; this periodic pass catches what it cannot foresee (a maintenance window ending, a
silence expired or an incident acknowledged from another process)."""
LIFECYCLE_MIN_SLEEP_SECONDS = 0.005


class BackgroundLoops:
    """Mixin of :class:`~agent.engine.resident.ResidentAgent` (uses its store, config, outbox)."""

    config: Any
    store: Any
    notifications: Any
    outbox: Any
    lifecycle: Any
    statuses: dict[str, Any]
    _lifecycle_wake: asyncio.Event
    db: Any

    # -- alert lifecycle (grouping, silences, inhibition, escalation, digest), heartbeat --------
    @property
    def lock_dir(self) -> Path:
        """Cross-process single-flight locks (shared with `agent run-playbook`)."""
        return Path(self.config.settings.path(self.config.settings.var_dir)) / "locks"

    def _make_lifecycle(self) -> Any:
        from agent.notify.lifecycle import AlertLifecycle, LifecycleSettings

        def settings() -> LifecycleSettings:
            n = self.config.inventory.notify
            return LifecycleSettings(group_wait=float(n.group_wait), group_interval=float(n.group_interval),
                                     inhibit_grace=float(n.inhibit_grace))

        return AlertLifecycle(
            self.notifications, checks=lambda: {bc.key: bc for bc in self.config.bound_checks},
            maintenance=lambda: self.config.inventory.maintenance,
            is_flapping=lambda key: key in self.statuses and flapping.is_flapping(self.statuses[key].extra),
            settings=settings)

    def wake_lifecycle(self) -> None:
        """Run the alert lifecycle pass now (after a transition has committed)."""
        self._lifecycle_wake.set()

    async def _lifecycle_loop(self, stop: asyncio.Event) -> None:
        """Decide and queue alerts: at once after a transition, at the pass's next deadline
        (group_wait end, group_interval, resolve grouping, silence end, escalation), and every
        :data:`LIFECYCLE_TICK_SECONDS` as a safety net; send the info digest on its schedule."""
        from agent.notify.lifecycle import DIGEST_EVENT

        last = await self.db(lambda: self.store.recent_events(kind=DIGEST_EVENT, limit=1))
        last_digest = last[0].at if last else datetime.now(UTC)
        while not stop.is_set():
            self._lifecycle_wake.clear()  # a transition committed from here on gets a pass of its own
            now = datetime.now(UTC)
            timeout = LIFECYCLE_TICK_SECONDS
            try:
                await self.db(self.lifecycle.tick, now)
                trigger = self.config.inventory.notify.digest.trigger()
                # The previous fire time is the last digest: an IntervalTrigger asked with None
                # answers "one interval from its creation", which never comes as it is rebuilt here.
                due = trigger.get_next_fire_time(last_digest, now)
                if due is not None and due <= now:
                    await self.db(self.lifecycle.send_digest, last_digest, now)
                    last_digest = now
                    due = trigger.get_next_fire_time(last_digest, now)
                for deadline in (self.lifecycle.next_due, due):
                    if deadline is not None:
                        timeout = min(timeout, (deadline - datetime.now(UTC)).total_seconds())
            except Exception:  # one bad pass must not silence every later alert
                log.exception("alert lifecycle pass failed")
            await _first_of(stop, self._lifecycle_wake, max(LIFECYCLE_MIN_SLEEP_SECONDS, timeout))

    async def _heartbeat(self, stop: asyncio.Event) -> None:
        from agent.engine.heartbeat import run_heartbeat

        async def on_result(ok: bool, detail: str) -> None:
            await self.db(self.store.add_event, "heartbeat", None, None,
                          f"heartbeat {'delivered' if ok else 'failed'}: {detail}", {"ok": ok})

        from agent.engine.heartbeat import heartbeat_url
        from agent.redaction import url_secrets

        url = heartbeat_url(self.config)
        self.notifications.redactor.add(url_secrets(url) if url else set())
        await run_heartbeat(lambda: self.config, stop, redact=self.notifications.redactor.redact,
                            on_result=on_result)

    # -- housekeeping --------------------------------------------------------------------------
    async def _housekeeping(self, stop: asyncio.Event) -> None:
        last_prune = datetime.min.replace(tzinfo=UTC)
        while not stop.is_set():
            now = datetime.now(UTC)
            try:
                await self.db(self.notifications.enqueue_due_repeats, now)
                if now - last_prune > timedelta(hours=1):
                    await self.db(self.store.prune_results, now - RESULT_RETENTION)
                    last_prune = now
            except Exception:  # housekeeping must never take the agent down
                log.exception("housekeeping failed")
            try:
                await asyncio.wait_for(stop.wait(), timeout=REPEAT_SCAN_SECONDS)
            except TimeoutError:
                pass


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
