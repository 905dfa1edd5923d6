"""A problem changing between two bad states for an hour is not a message a minute (issue 16).

A return to a state told before is an update paced by ``group_interval`` (tests/agent/engine/
test_state_flaps.py); each further return told in the same incident waits twice as long, up to
RETURN_PACING_MAX group_intervals: the exchange slow and answering 429 by turns for an hour (a
change every 20 s, the shipped 1m group_interval) was about 60 messages. The operator's last
message still catches up with the state once the changes stop. Driven through the real result
pipeline, store and alert lifecycle (the outbox rows are what would be sent), on the lifecycle's
clock.
"""
from __future__ import annotations

import itertools
import math
from pathlib import Path

import pytest

from agent.engine.store_thread import StoreThread
from agent.notify.lifecycle.grouping import RETURN_PACING_MAX
from tests.agent.engine.test_state_flaps import GROUP_INTERVAL, LIMITED, VERY_SLOW, World


@pytest.fixture
def world(tmp_path: Path, thread: StoreThread):  # type: ignore[no-untyped-def]
    w = World(tmp_path, thread)
    yield w
    w.close()


async def test_an_hour_of_changes_between_two_bad_states_is_a_few_messages_and_ends_on_the_state(
        world: World) -> None:
    hour, every = 3600, 20
    for i in range(hour // every):  # CRITICAL and UNKNOWN by turns
        await world.result(VERY_SLOW if i % 2 == 0 else LIMITED)
        world.run(every)
    told = world.told()
    assert [t for _, t in told[:2]] == ["[CRITICAL] exchange API latency on local",
                                        "[UNKNOWN] exchange API latency on local: HTTP 429 rate limited"], told
    gaps = [b[0] - a[0] for a, b in itertools.pairwise(told[1:])]
    assert all(g >= GROUP_INTERVAL for g in gaps), told
    doubling = math.ceil(math.log2(RETURN_PACING_MAX)) + 1
    assert len(told) <= 2 + doubling + hour / (RETURN_PACING_MAX * GROUP_INTERVAL) + 1, told
    # the changes stop on the state the last message does not say: it is told, within the pacing
    last = told[-1][1]
    await world.result(LIMITED if last.startswith("[CRITICAL]") else VERY_SLOW)
    world.run(RETURN_PACING_MAX * GROUP_INTERVAL + 10)
    assert world.told()[-1][1] != last and len(world.told()) == len(told) + 1, world.told()[len(told) - 1:]
