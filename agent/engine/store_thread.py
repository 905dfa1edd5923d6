"""The engine's store thread: the agent's decisions reach SQLite on one thread, in order.

The result pipeline, the result batcher, the remediator's audit and the alert lifecycle pass
submit their store work here, so the event loop never blocks on the database and the engine's
writes land in the order the engine made them. Other writers exist and SQLite's write lock
orders them against this thread: the outbox worker (its own thread, so delivery is never queued
behind a slow pass), the CLI (``agent ack``, ``agent silence``) and the web page in other
processes.
"""
from __future__ import annotations

import asyncio
import functools
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from typing import Any, ParamSpec, TypeVar

P = ParamSpec("P")
T = TypeVar("T")


class StoreThread:
    """``await store_thread.call(fn, *args)`` runs ``fn(*args)`` on the one store thread."""

    def __init__(self, name: str = "store") -> None:
        self._executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix=name)

    async def call(self, fn: Callable[P, T], /, *args: P.args, **kwargs: P.kwargs) -> T:
        return await self.submit(fn, *args, **kwargs)

    def submit(self, fn: Callable[P, T], /, *args: P.args, **kwargs: P.kwargs) -> asyncio.Future[T]:
        """Queue ``fn(*args)`` now (it runs after everything queued before it, before everything
        queued after it) without waiting for it: for a record that must not hold up what the
        caller does next while the store is slow or locked."""
        job: Callable[[], T] = functools.partial(fn, *args, **kwargs)
        return asyncio.get_running_loop().run_in_executor(self._executor, job)

    def shutdown(self) -> None:
        """Wait for the submitted work, then stop the thread."""
        self._executor.shutdown(wait=True)


def describe_store_error(exc: BaseException) -> str:
    """One line an operator understands for a failed store call (``database is locked``...)."""
    orig: Any = getattr(exc, "orig", None)
    text = str(orig if orig is not None else exc).strip().splitlines()
    return text[0] if text else type(exc).__name__
