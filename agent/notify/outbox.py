"""The outbox worker: delivers queued notifications until each one is delivered.

Guarantees:

* nothing is lost: a message is a row before anyone tries to send it, and a failed delivery
  is retried with exponential backoff (``base * 2**attempts``, capped, plus jitter) for as
  long as it takes: an unreachable Slack delays an alert, it never drops it. Only a message
  that cannot ever be delivered (its target was removed, apprise rejects the URL) is marked
  ``dead``, with an error in the log;
* nothing is sent twice, except in one window: a message delivered but not yet marked sent
  when the agent dies (or when its delivery is cut off by shutdown) stays ``sending`` and is
  sent again at the next start-up (:meth:`Store.requeue_interrupted`): at-least-once there.
  A delivery that timed out may also have arrived; it is retried, so that is at-least-once too;
* messages to one target go out in order, one at a time; targets are served concurrently,
  so a slow or dead target never holds up another one;
* :meth:`wake` (thread-safe) makes a new message go out now instead of at the next poll.
"""
from __future__ import annotations

import asyncio
import logging
import random
from collections.abc import Callable, Mapping
from datetime import UTC, datetime, timedelta
from typing import Any, TypeVar

from agent.notify.delivery import AppriseDelivery, DeliveryResult
from agent.notify.routing import TargetSpec
from agent.store import NotificationRecord, Store

log = logging.getLogger(__name__)
T = TypeVar("T")


def utc_now() -> datetime:
    return datetime.now(UTC)


class Outbox:
    """``await outbox.run(stop)`` in the agent's event loop; ``outbox.wake()`` after an enqueue."""

    def __init__(
        self, store: Store, targets: Mapping[str, TargetSpec] | AppriseDelivery, *,
        poll_interval: float = 30.0, backoff_base: float = 2.0, backoff_cap: float = 300.0,
        batch: int = 50, shutdown_grace: float = 5.0, clock: Callable[[], datetime] = utc_now,
        redact: Callable[[str], str] | None = None,
    ) -> None:
        self.store = store
        redact = redact or getattr(store, "redact", None) or (lambda s: s)  # default: the store's redaction
        self.delivery = targets if isinstance(targets, AppriseDelivery) else AppriseDelivery(targets, redact=redact)
        self.poll_interval = poll_interval
        self.backoff_base = backoff_base
        self.backoff_cap = backoff_cap
        self.batch = batch
        self.shutdown_grace = shutdown_grace
        self.clock = clock
        self._loop: asyncio.AbstractEventLoop | None = None
        self._wake: asyncio.Event | None = None
        self._inflight: dict[str, asyncio.Task[None]] = {}
        self._preparing: set[asyncio.Task[None]] = set()

    def update_targets(self, targets: Mapping[str, TargetSpec]) -> None:
        """After a reload: new URLs take effect for the next delivery.

        Targets added or changed are built now, in the background, as :meth:`run` builds every
        target when it starts: the first alert after the reload does not wait for the build.
        Safe to call from any thread; before :meth:`run` there is nothing to do (it prepares).
        """
        self.delivery.update_targets(targets)
        if self.delivery.unbuilt:
            self._on_loop(self._prepare_in_background)

    def _prepare_in_background(self) -> None:
        task = asyncio.get_running_loop().create_task(self.delivery.prepare(), name="outbox:prepare")
        self._preparing.add(task)
        task.add_done_callback(self._preparing.discard)

    def backoff(self, attempts: int) -> float:
        """Seconds before the next try after ``attempts`` failed ones (jittered, capped)."""
        delay = min(self.backoff_cap, self.backoff_base * 2.0 ** max(0, attempts - 1))
        return min(self.backoff_cap, delay + random.uniform(0, delay * 0.2))

    def wake(self) -> None:
        """Look for due messages now. Safe to call from any thread, before or during run()."""
        if self._wake is not None:
            self._on_loop(self._wake.set)  # before run() there is nothing to do: it starts with a pass

    def _on_loop(self, fn: Callable[[], None]) -> None:
        """Call ``fn`` on the outbox's loop, now if this is that loop; nothing before run()."""
        loop = self._loop
        if loop is None or loop.is_closed():
            return
        try:
            running = asyncio.get_running_loop()
        except RuntimeError:
            running = None
        if running is loop:
            fn()
        else:
            loop.call_soon_threadsafe(fn)

    async def run(self, stop: asyncio.Event) -> None:
        """Deliver until ``stop`` is set (or the task is cancelled)."""
        self._loop, self._wake = asyncio.get_running_loop(), asyncio.Event()
        requeued = await self._db(self.store.requeue_interrupted, self.clock())
        if requeued:
            log.warning("outbox: %d message(s) were being sent when the agent stopped; sending them "
                        "again (at-least-once for those)", requeued)
        await self.delivery.prepare()
        try:
            while not stop.is_set():
                self._wake.clear()
                await self._dispatch()
                await self._sleep(stop, await self._next_delay())
        finally:
            await self._cancel_preparing()
            await self._finish_inflight()

    async def drain(self, timeout: float) -> None:
        """Deliver what is due now and wait for it (for ``agent run-playbook`` and tests)."""
        self._loop = self._loop or asyncio.get_running_loop()
        self._wake = self._wake or asyncio.Event()
        await self._dispatch()
        if self._inflight:
            await asyncio.wait(list(self._inflight.values()), timeout=timeout)

    # -- internals --------------------------------------------------------------------------

    async def _dispatch(self) -> None:
        rows = await self._db(self.store.claim_due_notifications, self.clock(), self.batch)
        groups: dict[str, list[NotificationRecord]] = {}
        for row in rows or []:
            groups.setdefault(row.target, []).append(row)
        for target, group in groups.items():
            task = asyncio.get_running_loop().create_task(self._deliver_group(target, group),
                                                          name=f"outbox:{target}")
            self._inflight[target] = task

            def done(_t: asyncio.Task[None], target: str = target) -> None:  # binds this loop's target
                self._done(target)

            task.add_done_callback(done)

    def _done(self, target: str) -> None:
        self._inflight.pop(target, None)
        if self._wake is not None:
            self._wake.set()  # the target is free again: its next message may be due

    async def _deliver_group(self, target: str, rows: list[NotificationRecord]) -> None:
        for i, row in enumerate(rows):
            result = await self.delivery.deliver(target, title=row.title, body=row.body, severity=row.severity,
                                                 attachments=row.attachments)
            now = self.clock()
            if result.ok:
                await self._db(self.store.mark_sent, row.id, now)
                log.info("notification %d (%s) delivered to %s", row.id, row.kind, target)
                if row.attempts:  # the target is back: its other waiting messages go now
                    await self._db(self.store.expedite_target, target, now)
                continue
            retry_at = now + timedelta(seconds=self.backoff(row.attempts + 1))
            await self._failed(row, result, retry_at)
            if not result.permanent:
                # The target is failing: keep the rest in order for the next try instead of
                # making each of them wait out a timeout now.
                await self._db(self.store.defer_notifications, [r.id for r in rows[i + 1:]], retry_at)
                return

    async def _failed(self, row: NotificationRecord, result: DeliveryResult, retry_at: datetime) -> None:
        error = result.error or "delivery failed"
        await self._db(self.store.mark_failed, row.id, error, retry_at, result.permanent)
        if result.permanent:
            log.error("notification %d (%s: %s) to %s cannot be delivered and is given up: %s",
                      row.id, row.kind, row.title, row.target, error)
        else:
            log.warning("notification %d (%s) to %s failed (attempt %d), retrying at %s: %s",
                        row.id, row.kind, row.target, row.attempts + 1, retry_at.isoformat(timespec="seconds"),
                        error)

    async def _next_delay(self) -> float:
        due = await self._db(self.store.next_notification_due_at)
        if due is None:
            return self.poll_interval
        return max(0.0, min(self.poll_interval, (due - self.clock()).total_seconds()))

    async def _sleep(self, stop: asyncio.Event, delay: float) -> None:
        assert self._wake is not None
        if self._wake.is_set() or delay <= 0:
            await asyncio.sleep(0)
            return
        waiters = [asyncio.ensure_future(self._wake.wait()), asyncio.ensure_future(stop.wait())]
        try:
            await asyncio.wait(waiters, timeout=delay, return_when=asyncio.FIRST_COMPLETED)
        finally:
            for w in waiters:
                w.cancel()

    async def _cancel_preparing(self) -> None:
        """Stop waiting for builds started by a reload: no delivery will need them now."""
        tasks = list(self._preparing)
        for t in tasks:
            t.cancel()
        if tasks:
            await asyncio.gather(*tasks, return_exceptions=True)

    async def _finish_inflight(self) -> None:
        tasks = list(self._inflight.values())
        if not tasks:
            return
        # Deliveries are bounded in time; give them a moment so their rows are marked. What
        # is cut off stays ``sending`` and is sent again at the next start (at-least-once).
        _done, pending = await asyncio.wait(tasks, timeout=self.shutdown_grace)
        for t in pending:
            t.cancel()
        if pending:
            await asyncio.gather(*pending, return_exceptions=True)

    async def _db(self, fn: Callable[..., T], *args: Any) -> T | None:
        """Run a store call off the loop; a database hiccup is retried, then logged, never raised."""
        for attempt in range(3):
            try:
                return await asyncio.to_thread(fn, *args)
            except Exception:  # the worker must survive a locked or busy database
                if attempt == 2:
                    log.exception("outbox: store call %s failed", getattr(fn, "__name__", fn))
                    return None
                await asyncio.sleep(0.5 * (attempt + 1))
        return None
