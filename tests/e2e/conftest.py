from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.e2e.harness import AgentWorld
from tests.support.receivers import JsonReceiver
from tests.support.stack import running_stack  # noqa: F401 (fixture: the whole stack, for every e2e suite)
from tests.support.supervisord import python_command, supervisord_factory  # noqa: F401 (fixture)


@pytest.fixture
def receiver() -> Iterator[JsonReceiver]:
    with JsonReceiver() as r:
        yield r


@pytest.fixture
def supervisor(supervisord_factory):
    """A real supervisord running one long-lived program, ``worker``."""
    sup = supervisord_factory({"worker": {"command": python_command()}})
    sup.wait_for_state("worker", "RUNNING")
    return sup


@pytest.fixture
def world(tmp_path: Path, supervisor, receiver) -> Iterator[AgentWorld]:
    w = AgentWorld(tmp_path / "world", supervisor.url, receiver.url)
    try:
        yield w
    finally:
        w.stop()
