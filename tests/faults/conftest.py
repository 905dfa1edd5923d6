"""One fault stack per pytest-xdist worker, shared by every fault scenario that worker runs.

Sound to share: before each run the stack is reset (exchange faults cleared, receivers up, the bot
resumed and running, the agent on a fresh database, every check OK, nothing in flight), so no run
sees another's incidents, budgets or cooldowns. A stack a run broke (it does not settle) is
replaced before the next run.
"""
from __future__ import annotations

from collections.abc import Iterator

import pytest

from tests.faults.scenarios import StackPool


@pytest.fixture(scope="session")
def fault_stacks() -> Iterator[StackPool]:
    pool = StackPool()
    try:
        yield pool
    finally:
        pool.close()
