"""Bounded thread pools for the blocking calls of checks, one pool per module kind.

A check that calls ``os.stat`` on a dead NFS mount, or psutil on a process in uninterruptible
sleep, blocks its thread in the kernel; no timeout frees that thread. On asyncio's default
executor such threads pile up until the outbox's store calls and the emergency's exchange calls,
which use that executor, wait behind them: a stuck probe would delay an alert. So checks run
their blocking calls on pools of their own:

* one :class:`ProbePool` per module kind (``file``, ``system``, ``process``...), created on
  first use, at most ``threads`` threads each: a stuck kind cannot take the threads of another;
* when every thread of the kind is taken by probes that are simply running (a start or a reload
  runs every check at once, more of a kind than there are threads), a call waits for a free
  thread, at most as long as its caller's timeout allows (the engine's ``wait_for`` around the
  check): being one of many is not a fault;
* when every thread is taken by probes running longer than ``stuck_after`` (past any check's
  timeout: stuck in the kernel), the call fails at once with :class:`ProbesStuck` naming how many
  are stuck, which the check reports as UNKNOWN with that reason, instead of queueing more work
  behind threads that may never return.

The resident agent's scheduler owns one :class:`ProbePools` and closes it at shutdown (threads
still stuck in the kernel are abandoned: they are daemon-like and die with the process).
"""
from __future__ import annotations

import asyncio
import threading
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from typing import Any, TypeVar

from botwarden.errors import ModuleError

T = TypeVar("T")
DEFAULT_THREADS = 4
"""Threads per module kind: enough for the concurrent checks of one kind in the shipped
playbooks (a handful), small enough that many stuck probes cost few threads."""
DEFAULT_STUCK_AFTER = 60.0
"""Seconds after which a probe still running counts as stuck: past every check timeout the
language allows in practice (a check's own timeout has long reported it)."""


class ProbesStuck(ModuleError):
    """Every thread of a module kind's pool is still busy with an earlier probe."""


class ProbePool:
    """At most ``threads`` blocking calls of one module kind at once (see the module docstring)."""

    def __init__(self, kind: str, threads: int = DEFAULT_THREADS,
                 stuck_after: float = DEFAULT_STUCK_AFTER) -> None:
        self.kind = kind
        self.threads = threads
        self.stuck_after = stuck_after
        self._executor = ThreadPoolExecutor(max_workers=threads, thread_name_prefix=f"probe-{kind}")
        self._started: dict[int, float] = {}  # running call -> monotonic start
        self._next_id = 0
        self._waiters: list[tuple[asyncio.AbstractEventLoop, asyncio.Future[None]]] = []
        self._lock = threading.Lock()

    @property
    def busy(self) -> int:
        """Calls running now (a stuck one counts until it returns)."""
        return len(self._started)

    async def run(self, fn: Callable[..., T], *args: Any) -> T:
        loop = asyncio.get_running_loop()
        while True:
            with self._lock:
                if len(self._started) < self.threads:
                    call = self._next_id
                    self._next_id += 1
                    self._started[call] = time.monotonic()
                    break
                now = time.monotonic()
                stuck = sum(1 for t in self._started.values() if now - t >= self.stuck_after)
                if stuck >= self.threads:
                    raise ProbesStuck(
                        f"all {self.threads} {self.kind} probe threads are stuck: each has run for over "
                        f"{self.stuck_after:g}s (in the kernel? a dead mount, a hung process)",
                        hint="the earlier probes' own timeouts reported them; look at what they read")
                waiter: asyncio.Future[None] = loop.create_future()
                self._waiters.append((loop, waiter))
            try:
                # woken by a release; re-checked at least when the youngest could have become stuck
                await asyncio.wait_for(waiter, timeout=self.stuck_after)
            except TimeoutError:
                pass
            finally:
                with self._lock:
                    if (loop, waiter) in self._waiters:
                        self._waiters.remove((loop, waiter))
        try:
            future = self._executor.submit(fn, *args)
        except BaseException:
            self._release(call)
            raise
        # Released when the call returns or raises, or when it is cancelled before it started.
        future.add_done_callback(lambda _f: self._release(call))
        return await asyncio.wrap_future(future)

    def _release(self, call: int) -> None:
        with self._lock:
            self._started.pop(call, None)
            waiters, self._waiters = self._waiters, []
        for loop, waiter in waiters:
            try:
                loop.call_soon_threadsafe(_wake, waiter)
            except RuntimeError:  # that loop is closed: nobody waits there any more
                pass

    def close(self) -> None:
        """Stop accepting calls; running ones are not waited for."""
        self._executor.shutdown(wait=False, cancel_futures=True)


def _wake(waiter: asyncio.Future[None]) -> None:
    if not waiter.done():
        waiter.set_result(None)


class ProbePools:
    """One :class:`ProbePool` per module kind, created on first use."""

    def __init__(self, threads: int = DEFAULT_THREADS, stuck_after: float = DEFAULT_STUCK_AFTER) -> None:
        self.threads = threads
        self.stuck_after = stuck_after
        self._pools: dict[str, ProbePool] = {}

    def for_kind(self, kind: str) -> ProbePool:
        pool = self._pools.get(kind)
        if pool is None:
            pool = self._pools[kind] = ProbePool(kind, self.threads, self.stuck_after)
        return pool

    def busy(self) -> dict[str, int]:
        return {kind: pool.busy for kind, pool in self._pools.items()}

    def close(self) -> None:
        for pool in self._pools.values():
            pool.close()
        self._pools.clear()
