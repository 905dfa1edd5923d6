"""Bounded thread pools for the blocking calls of checks, one pool per module kind.

A check that calls ``os.stat`` on a dead NFS mount, or psutil on a process in uninterruptible
sleep, blocks its thread in the kernel; no timeout frees that thread. On asyncio's default
executor such threads pile up until the outbox's store calls and the emergency's exchange calls,
which use that executor, wait behind them: a stuck probe would delay an alert. So checks run
their blocking calls on pools of their own:

* one :class:`ProbePool` per module kind (``file``, ``system``, ``process``...), created on
  first use, at most ``threads`` threads each: a stuck kind cannot take the threads of another;
* a call waits for a free thread at most as long as its caller's timeout allows (the engine's
  ``wait_for`` around the check); when every thread of the kind is taken, the call fails at once
  with :class:`ProbesStuck` naming how many are stuck, which the check reports as UNKNOWN with
  that reason, instead of queueing more work behind threads that may never return.

The resident agent's scheduler owns one :class:`ProbePools` and closes it at shutdown (threads
still stuck in the kernel are abandoned: they are daemon-like and die with the process).
"""
from __future__ import annotations

import asyncio
import threading
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from typing import Any, TypeVar

from botwarden.errors import ModuleError

T = TypeVar("T")
DEFAULT_THREADS = 4
"""Threads per module kind: enough for the concurrent checks of one kind in the shipped
playbooks (a handful), small enough that many stuck probes cost few threads."""


class ProbesStuck(ModuleError):
    """Every thread of a module kind's pool is still busy with an earlier probe."""


class ProbePool:
    """At most ``threads`` blocking calls of one module kind at once (see the module docstring)."""

    def __init__(self, kind: str, threads: int = DEFAULT_THREADS) -> None:
        self.kind = kind
        self.threads = threads
        self._executor = ThreadPoolExecutor(max_workers=threads, thread_name_prefix=f"probe-{kind}")
        self._busy = 0
        self._lock = threading.Lock()

    @property
    def busy(self) -> int:
        """Calls running now (a stuck one counts until it returns)."""
        return self._busy

    async def run(self, fn: Callable[..., T], *args: Any) -> T:
        with self._lock:
            if self._busy >= self.threads:
                raise ProbesStuck(
                    f"all {self.threads} {self.kind} probe threads are still busy with earlier probes "
                    "(stuck in the kernel? a dead mount, a hung process)",
                    hint="the earlier probes' own timeouts reported them; look at what they read")
            self._busy += 1
        try:
            future = self._executor.submit(fn, *args)
        except BaseException:
            self._release()
            raise
        # Released when the call returns or raises, or when it is cancelled before it started.
        future.add_done_callback(self._release)
        return await asyncio.wrap_future(future)

    def _release(self, _future: object = None) -> None:
        with self._lock:
            self._busy -= 1

    def close(self) -> None:
        """Stop accepting calls; running ones are not waited for."""
        self._executor.shutdown(wait=False, cancel_futures=True)


class ProbePools:
    """One :class:`ProbePool` per module kind, created on first use."""

    def __init__(self, threads: int = DEFAULT_THREADS) -> None:
        self.threads = threads
        self._pools: dict[str, ProbePool] = {}

    def for_kind(self, kind: str) -> ProbePool:
        pool = self._pools.get(kind)
        if pool is None:
            pool = self._pools[kind] = ProbePool(kind, self.threads)
        return pool

    def busy(self) -> dict[str, int]:
        return {kind: pool.busy for kind, pool in self._pools.items()}

    def close(self) -> None:
        for pool in self._pools.values():
            pool.close()
        self._pools.clear()
