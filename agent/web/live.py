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

log = logging.getLogger("agent.web")
IDLE_AFTER_S = 60.0


class Live:
    def __init__(self, gatherer: Gatherer, refresh: float) -> None:
        self.gatherer = gatherer
        self.refresh = refresh
        self.snapshot: Snapshot | None = None
        self.version = 0
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
        (gathered now if there is none that fresh)."""
        self.demand()
        snap = self.snapshot
        if snap is not None and self._fresh(2 * self.refresh):
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
        data: dict[str, Any] = {"at": datetime.now(UTC).strftime("%H:%M:%S"),
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
                raise
            self.failing = None
            self._gathered_at, self._read_started_at = time.monotonic(), started
            self.snapshot = snap
            key = snap.version_key()
            if key != self._key:
                self._key = key
                async with self._changed:
                    self.version += 1
                    self._changed.notify_all()
            return snap

    async def wait_newer(self, version: int, timeout: float) -> int:
        """The version once it is above ``version``, or the current one after ``timeout``."""
        async with self._changed:
            try:
                await asyncio.wait_for(self._changed.wait_for(lambda: self.version > version), timeout)
            except TimeoutError:
                pass
            return self.version

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
