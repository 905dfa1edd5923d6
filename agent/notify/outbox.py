"""The outbox worker: delivers queued notifications until each one is delivered.

Guarantees:

* nothing is lost: a message is a row before anyone tries to send it, and a failed delivery
  is retried with exponential backoff (``base * 2**attempts``, capped, plus jitter) for as
  long as it takes: an unreachable Slack delays an alert, it never drops it. Only a message
  that cannot ever be delivered (its target was removed, apprise rejects the URL) is marked
  ``dead``, with an error in the log;
* a claimed row (``sending``) has an owner and a lease (:mod:`agent.notify.claims`). The owner
  renews the lease of a row right before it sends it and of the rows waiting behind it (unless
  the lease taken or renewed last still outlasts two deliveries: the first message of a claim
  goes without another write), and a lease is longer than a delivery can take (the delivery timeout is bounded), so no row is
  taken from a live owner while it sends: nothing is sent twice because of a lease. A lease
  that expired (the owner stopped or hangs) makes the row claimable by anyone; a row of an
  owner on this host that is gone is released at once (an agent restarted after a crash sends
  it at start-up);
* nothing is sent twice, except in one window: a message delivered but not yet marked sent
  when its owner dies stays ``sending`` and is sent again by the next outbox that finds it:
  at-least-once there. A delivery that timed out may also have arrived; it is retried, so
  that is at-least-once too;
* a one-shot run (``agent run-playbook``, the web page's plays) claims only the rows it queued
  itself (:meth:`queued` with a ``scope``), never the resident agent's; it delivers them within
  its grace, lets a delivery under way finish, and gives every other claim back on its way out
  (:meth:`drain`);
* messages to one target go out in order, one at a time; targets are served concurrently,
  so a slow or dead target never holds up another one;
* :meth:`wake` (thread-safe) makes a new message go out now instead of at the next poll.
"""
from __future__ import annotations

import asyncio
import functools
import logging
import random
import time
from collections.abc import Callable, Collection, Mapping, Sequence
from datetime import UTC, datetime, timedelta
from typing import Any, TypeVar

from agent.notify.claims import ClaimOwner
from agent.notify.delivery import AppriseDelivery, DeliveryResult
from agent.notify.receipts import DeliveryReceipts, receipts_dir
from agent.notify.routing import TargetSpec
from agent.store import NotificationRecord, Store

log = logging.getLogger(__name__)
T = TypeVar("T")
FOREIGN_CLAIM_RECHECK_SECONDS = 1.0
"""While another process holds a claim on a target, look this often whether it let go (its
delivery ended) instead of waiting for the next poll."""


def utc_now() -> datetime:
    return datetime.now(UTC)


class Outbox:
    """``await outbox.run(stop)`` in the agent's event loop; ``outbox.wake()`` after an enqueue."""

    def __init__(
        self, store: Store, targets: Mapping[str, TargetSpec] | AppriseDelivery, *,
        poll_interval: float = 30.0, backoff_base: float = 2.0, backoff_cap: float = 300.0,
        batch: int = 50, shutdown_grace: float = 5.0, clock: Callable[[], datetime] = utc_now,
        redact: Callable[[str], str] | None = None, role: str = "agent", lease: float | None = None,
        scope: Collection[int] | None = None,
    ) -> None:
        """``role`` names the owner of this outbox's claims; ``lease`` (seconds) defaults to three
        delivery timeouts, at least 60 s; ``scope``: claim only these rows and those announced
        through :meth:`queued` (a one-shot run), ``None``: every due row (the resident agent)."""
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
        self.owner = str(ClaimOwner.current(role))
        self.receipts = DeliveryReceipts(receipts_dir(str(getattr(store, "url", ""))), self.owner)
        self.lease = lease if lease is not None else max(60.0, 3 * self.delivery.timeout)
        self.scope: set[int] | None = None if scope is None else set(scope)
        self._delivering: set[int] = set()
        self._closing = False
        self._foreign_claims = False

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

    def queued(self, ids: Sequence[int]) -> None:
        """Rows ``ids`` were just queued by this process (``Notifications.on_enqueued``): they
        join the scope of a one-shot outbox; look for due messages now."""
        if self.scope is not None:
            self.scope.update(ids)
        self.wake()

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
        await self._release_dead_owners()
        await self.delivery.prepare()
        try:
            while not stop.is_set():
                self._wake.clear()
                await self._dispatch()
                await self._sleep(stop, await self._next_delay())
        finally:
            await self._cancel_preparing()
            self._closing = True
            await self._finish_inflight()
            # Rows claimed but not started go back now; one cut off mid-delivery stays claimed
            # and is sent again once this process is gone (at-least-once in that window).
            await self._db(self.store.release_claims, self.clock(), [self.owner], set(self._delivering))
            self.receipts.close()

    async def drain(self, timeout: float) -> None:
        """Deliver what is due (with a scope: what this process queued) for up to ``timeout``
        seconds, let a delivery under way finish (each is bounded by the delivery timeout),
        then give back every claim of this outbox (for ``agent run-playbook`` and tests)."""
        loop = asyncio.get_running_loop()
        self._loop = self._loop or loop
        self._wake = self._wake or asyncio.Event()
        deadline = loop.time() + timeout
        try:
            while True:
                self._wake.clear()
                await self._dispatch()
                if not self._inflight and not await self._scope_waiting():
                    break
                left = deadline - loop.time()
                if left <= 0:
                    break
                await self._sleep(asyncio.Event(), min(left, FOREIGN_CLAIM_RECHECK_SECONDS / 5))
            self._closing = True  # past the grace no new delivery starts
            if self._inflight:
                await asyncio.wait(list(self._inflight.values()))
        finally:
            self._closing = True
            released = await self._db(self.store.release_claims, self.clock(), [self.owner], set(self._delivering))
            self.receipts.close()
            if released:
                log.info("outbox: %d message(s) not delivered in time are left to the resident agent", released)

    # -- internals --------------------------------------------------------------------------

    async def _scope_waiting(self) -> bool:
        """Whether a row of the scope may still go out within this drain."""
        if self.scope is None or not self.scope:
            return False
        rows = await self._db(self.store.unfinished_notifications, set(self.scope))
        return bool(rows)

    async def _release_dead_owners(self) -> None:
        """Give back the claims of owners on this host whose process is gone; the rows their
        targets had accepted (their receipts) are marked sent instead (:mod:`agent.notify.receipts`)."""
        owners = await self._db(self.store.claim_owners) or set()
        dead = [o for o in owners if o != self.owner and (p := ClaimOwner.parse(o)) is not None
                and p.alive() is False]
        for owner in dead:
            done = [(i, await self._db(functools.partial(self.store.mark_sent, owner=owner), i, at))
                    for i, at in sorted(self.receipts.of(owner).items())]
            if any(marked for _, marked in done):
                log.warning("outbox: %d message(s) of a process that is gone (%s) had been accepted by their "
                            "target before it died: recorded as sent, not sent again",
                            sum(1 for _, marked in done if marked), owner)
            if all(marked is not None for _, marked in done):  # else read again at the next start
                self.receipts.forget(owner)
        self.receipts.sweep()
        if dead:
            released = await self._db(functools.partial(self.store.release_claims, interrupted=True), self.clock(), dead)
            if released:
                log.warning("outbox: %d message(s) were being sent by a process that is gone (%s); "
                            "sending them again (at-least-once for those)", released, ", ".join(sorted(dead)))

    async def _dispatch(self) -> None:
        if self._closing:
            return
        owners = await self._db(self.store.claim_owners) or set()
        self._foreign_claims = bool(owners - {self.owner})
        if self._foreign_claims:
            await self._release_dead_owners()
        if self.scope is not None and not self.scope:
            return
        claim = functools.partial(self.store.claim_due_notifications, owner=self.owner, lease=self.lease,
                                  only=None if self.scope is None else set(self.scope))
        claimed = time.monotonic()
        rows = await self._db(claim, self.clock(), self.batch)
        groups: dict[str, list[NotificationRecord]] = {}
        for row in rows or []:
            groups.setdefault(row.target, []).append(row)
        for target, group in groups.items():
            task = asyncio.get_running_loop().create_task(self._deliver_group(target, group, claimed),
                                                          name=f"outbox:{target}")
            self._inflight[target] = task

            def done(_t: asyncio.Task[None], target: str = target) -> None:  # binds this loop's target
                self._done(target)

            task.add_done_callback(done)

    def _done(self, target: str) -> None:
        self._inflight.pop(target, None)
        if self._wake is not None:
            self._wake.set()  # the target is free again: its next message may be due

    async def _deliver_group(self, target: str, rows: list[NotificationRecord], claimed: float) -> None:
        """Send ``rows`` (claimed at monotonic time ``claimed``) to ``target`` in order."""
        renewed = claimed
        for i, row in enumerate(rows):
            if self._closing:
                return  # shutting down: the rest is given back
            # Renew before sending unless the lease taken or renewed last still outlasts two
            # deliveries (the first message of a claim, the one an alert waits for, goes at once:
            # no write of the store between the claim and the send): the lease outlasts this
            # delivery, so nobody takes the row while it is being sent; a row whose claim was
            # lost (this process hung past its lease) is left to whoever holds it now.
            if time.monotonic() - renewed > self.lease - 2 * self.delivery.timeout:
                until = self.clock() + timedelta(seconds=self.lease)
                renewed = time.monotonic()
                held = await self._db(self.store.renew_claims, [r.id for r in rows[i:]], self.owner, until)
                if not held or row.id not in held:
                    log.warning("outbox: lost the claim on notification %d to %s; leaving it to its new owner",
                                row.id, target)
                    return
            self._delivering.add(row.id)
            try:
                result = await self.delivery.deliver(target, title=row.title, body=row.body, severity=row.severity,
                                                     attachments=row.attachments)
                now = self.clock()
                if result.ok:
                    self.receipts.accepted(row.id, now)  # before the store: see agent.notify.receipts
                    # only a row still ours: not one another outbox took (a lease past), nor another
                    # row of the same id in a database replaced under this one (a lost alert)
                    marked = await self._db(functools.partial(self.store.mark_sent, owner=self.owner), row.id, now)
                    if marked is not None:
                        self.receipts.recorded(row.id)
                    if marked is False:
                        log.warning("outbox: notification %d was delivered to %s but is no longer claimed by this "
                                    "outbox; left to its new owner", row.id, target)
                        continue
                    log.info("notification %d (%s) delivered to %s", row.id, row.kind, target)
                    if row.attempts:  # the target is back: its other waiting messages go now
                        await self._db(self.store.expedite_target, target, now)
                    continue
                retry_at = now + timedelta(seconds=self.backoff(row.attempts + 1))
                await self._failed(row, result, retry_at)
            finally:
                self._delivering.discard(row.id)
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
        ceiling = FOREIGN_CLAIM_RECHECK_SECONDS if self._foreign_claims else self.poll_interval
        if due is None:
            return ceiling
        return max(0.0, min(ceiling, (due - self.clock()).total_seconds()))

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
