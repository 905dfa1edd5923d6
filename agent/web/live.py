"""The latest :class:`Snapshot`, re-read while someone is looking, and a version to wait on.

One reader serves every browser: :class:`Live` gathers a snapshot every ``refresh`` seconds
while a page was requested in the last ``IDLE_AFTER_S`` or an event stream is open, and bumps
``version`` when something shown changed. Ten open browsers cost the agent's store the same
reads as one; with nobody looking it reads nothing.
"""
from __future__ import annotations

import asyncio
import json
import logging
import time
from datetime import UTC, datetime
from typing import Any

import aiohttp

from agent.web.gather import Gatherer, Snapshot
from agent.web.trading import EXCHANGE_TIMEOUT_S

log = logging.getLogger("agent.web")
IDLE_AFTER_S = 60.0
SLOWEST_SOURCE_S = EXCHANGE_TIMEOUT_S
"""The longest a read of one source may take (the exchange's timeout; the others' are 2 s)."""


class Live:
    def __init__(self, gatherer: Gatherer, refresh: float) -> None:
        self.gatherer = gatherer
        self.refresh = refresh
        self.snapshot: Snapshot | None = None
        self.version = 0
        self.reads = 0
        """Reads attempted so far (made or failed): each wakes the streams, which send what changed,
        else a ``ping`` saying when the view was read."""
        self.streams = 0
        self._key: Any = None
        self._changed = asyncio.Condition()
        self._gather_lock = asyncio.Lock()
        self._demand_at = 0.0
        self._wake = asyncio.Event()
        self._http: aiohttp.ClientSession | None = None
        self._gathered_at = 0.0
        self._read_started_at = 0.0  # when the reads of ``snapshot`` began
        self._changed_at = -1.0  # when an operator action last changed what the sources hold
        self._pending: set[asyncio.Task[None]] = set()
        self.failing: str | None = None
        """Set while no snapshot can be made (the last attempt raised): what went wrong. The
        page's pings then say the view is old (:meth:`ping`), never live."""

    async def start(self) -> None:
        self._http = aiohttp.ClientSession()

    async def close(self) -> None:
        if self._http is not None:
            await self._http.close()
        await asyncio.to_thread(self.gatherer.close)

    def demand(self) -> None:
        self._demand_at = time.monotonic()
        self._wake.set()

    @property
    def watched(self) -> bool:
        return self.streams > 0 or time.monotonic() - self._demand_at < IDLE_AFTER_S

    def changed(self) -> None:
        """An operator action just changed what the sources hold (a silence, an ack, a play run):
        the next page is rendered from reads begun after this, never from the snapshot of before
        (the page a form redirects to must show what the form did, without JavaScript too)."""
        self._changed_at = time.monotonic()
        self.demand()

    def _fresh(self, max_age: float) -> bool:
        return (self.snapshot is not None and self._read_started_at > self._changed_at
                and time.monotonic() - self._gathered_at < max_age)

    async def current(self) -> Snapshot:
        """A snapshot at most ``2 * refresh`` old and read after the last :meth:`changed`
        (gathered now if there is none that fresh). While a read is under way and the last one
        is at most ``2 * refresh`` plus the slowest source's timeout old (a source hangs: its
        timeout makes every read that slow), that last one: every page load waited up to the
        hung source's timeout (2-3 s) for the read in flight, while the pages open showed the
        same view. After an operator action, or with no such recent read, it waits."""
        self.demand()
        snap = self.snapshot
        if snap is not None and self._fresh(2 * self.refresh):
            return snap
        if snap is not None and self._gather_lock.locked() and self._fresh(2 * self.refresh + SLOWEST_SOURCE_S):
            return snap
        try:
            return await self.gather()
        except Exception:
            if self.snapshot is None:
                raise
            log.exception("reading the page's sources failed; showing the last snapshot")
            return self.snapshot  # as of its time (said on the page by the pings), not an error page

    def ping(self) -> str:
        """A stream's ``ping`` data (JSON): the time, when the snapshot shown was read, and
        ``old`` (with ``why``) when no snapshot could be made since: the page's script then says
        its view is old, however alive the stream is."""
        snap = self.snapshot
        data: dict[str, Any] = {"at": datetime.now(UTC).strftime("%H:%M:%S"), "now": round(time.time(), 3),
                                "view_at": snap.at.strftime("%H:%M:%S") if snap is not None else None,
                                "old": self.failing is not None}
        if self.failing is not None:
            data["why"] = self.failing
        return json.dumps(data)

    def bump(self) -> None:
        """Something shown changed outside the snapshot (a new chart): streams re-render."""
        task = asyncio.get_running_loop().create_task(self._bump())
        self._pending.add(task)
        task.add_done_callback(self._pending.discard)

    async def _bump(self) -> None:
        async with self._changed:
            self.version += 1
            self._changed.notify_all()

    async def gather(self) -> Snapshot:
        async with self._gather_lock:
            if self.snapshot is not None and self._fresh(self.refresh / 2):
                return self.snapshot  # another caller just gathered it
            assert self._http is not None, "Live.start() first"
            started = time.monotonic()
            try:
                snap = await self.gatherer.snapshot(self._http)
            except Exception as exc:
                self.failing = f"{type(exc).__name__}: {str(exc)[:160]}"
                async with self._changed:
                    self.reads += 1
                    self._changed.notify_all()
                raise
            self.failing = None
            self._gathered_at, self._read_started_at = time.monotonic(), started
            self.snapshot = snap
            key = snap.version_key()
            async with self._changed:
                if key != self._key:
                    self._key = key
                    self.version += 1
                self.reads += 1
                self._changed.notify_all()
            return snap

    async def wait_newer(self, seen: tuple[int, int], timeout: float) -> tuple[int, int]:
        """``(version, reads)`` once either is past ``seen``, or as they are after ``timeout``."""
        async with self._changed:
            try:
                await asyncio.wait_for(self._changed.wait_for(lambda: (self.version, self.reads) != seen), timeout)
            except TimeoutError:
                pass
            return self.version, self.reads

    async def run(self, stop: asyncio.Event) -> None:
        """Re-gather every ``refresh`` seconds while watched; idle otherwise."""
        while not stop.is_set():
            if self.watched:
                try:
                    await self.gather()
                except Exception:  # a failed read must not end the loop; the page shows the last one
                    log.exception("reading the page's sources failed")
            self._wake.clear()
            try:
                await asyncio.wait_for(self._wake.wait() if not self.watched else stop.wait(), self.refresh)
            except TimeoutError:
                pass
