"""Fixtures of the engine's tests: a real SQLite store and the store thread the engine writes on, a
json:// receiver on loopback, and the root logger's filters restored after an in-process agent."""
from __future__ import annotations

import logging
from collections.abc import Iterator

import pytest

from agent.engine.store_thread import StoreThread
from agent.store import Store
from tests.support.receivers import JsonReceiver


@pytest.fixture
def store(tmp_path):
    s = Store(f"sqlite:///{tmp_path / 'a.db'}")
    s.migrate()
    yield s
    s.close()


@pytest.fixture
async def thread():
    t = StoreThread()
    yield t
    t.shutdown()


@pytest.fixture
def receiver() -> Iterator[JsonReceiver]:
    with JsonReceiver() as r:
        yield r


@pytest.fixture
def root_logger_filters() -> Iterator[None]:
    """The in-process agent installs its redaction filter on the root logger: take it off again."""
    root = logging.getLogger()
    before = {id(h): list(h.filters) for h in root.handlers}
    root_before = list(root.filters)
    yield
    root.filters[:] = root_before
    for h in root.handlers:
        h.filters[:] = before.get(id(h), [])
