"""Fixtures of the engine's tests: a real SQLite store and the store thread the engine writes on."""
from __future__ import annotations

import pytest

from agent.engine.store_thread import StoreThread
from agent.store import Store


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
