"""Fixtures for the notify suite: a migrated store, real loopback receivers, a running outbox."""
from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Callable, Iterator
from contextlib import asynccontextmanager
from pathlib import Path

import pytest

from agent.notify import Outbox, TargetSpec
from agent.store import Store
from tests.support.receivers import JsonReceiver, SmtpReceiver


@pytest.fixture
def db_url(tmp_path: Path) -> str:
    return f"sqlite:///{tmp_path / 'var' / 'agent.db'}"


@pytest.fixture
def store(db_url: str) -> Iterator[Store]:
    s = Store(db_url)
    s.migrate()
    yield s
    s.close()


@pytest.fixture
def inbox() -> Iterator[JsonReceiver]:
    with JsonReceiver() as r:
        yield r


@pytest.fixture
def mailbox() -> Iterator[SmtpReceiver]:
    with SmtpReceiver() as r:
        yield r


RunningOutbox = Callable[..., "asynccontextmanager[Outbox]"]


@asynccontextmanager
async def running_outbox(store: Store, targets: dict[str, TargetSpec], **kw: float) -> AsyncIterator[Outbox]:
    """An outbox delivering in the background with short backoffs; stopped on exit."""
    kw = {"backoff_base": 0.05, "backoff_cap": 0.2, "poll_interval": 1.0, **kw}
    outbox = Outbox(store, targets, **kw)  # type: ignore[arg-type]
    stop = asyncio.Event()
    task = asyncio.create_task(outbox.run(stop))
    try:
        yield outbox
    finally:
        stop.set()
        await asyncio.wait_for(task, 30)


async def wait_until(predicate: Callable[[], bool], timeout: float = 15.0) -> None:
    """Poll ``predicate`` (store state) until it holds; fail the test with a clear message otherwise."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    while not predicate():
        if loop.time() > deadline:
            raise AssertionError("condition not reached in time")
        await asyncio.sleep(0.02)
