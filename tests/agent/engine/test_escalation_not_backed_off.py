"""A return to a worse state than the operator's last message is not backed off (issue 16).

Returns to a state told before wait twice as long each time, up to RETURN_PACING_MAX
group_intervals (tests/agent/engine/test_state_flaps_paced.py): right for a change back to a
milder state, but a check changing between WARNING and CRITICAL for a while whose last message
read WARNING held its CRITICAL (the position's loss, the exchange refusing) for up to 16 minutes
with the shipped 1m group_interval, the operator reading WARNING meanwhile. A change to a state
worse than the last one told waits ``group_interval`` as before the back-off; the changes back
to milder states still back off. Driven through the real result pipeline, store and alert
lifecycle (the outbox rows are what would be sent), on the lifecycle's clock.
"""
from __future__ import annotations

import random
from pathlib import Path

import pytest

from agent.engine.store_thread import StoreThread
from agent.modules.base import CheckResult
from tests.agent.engine.test_state_flaps import GROUP_INTERVAL, LIMITED, SLOW, VERY_SLOW, World


@pytest.fixture
def world(tmp_path: Path, thread: StoreThread):  # type: ignore[no-untyped-def]
    w = World(tmp_path, thread)
    yield w
    w.close()


async def flap_until_told_warning(world: World, every: int, after: float, bad: CheckResult = VERY_SLOW) -> float:
    """WARNING and CRITICAL by turns every ``every`` s, past ``after`` s and until a message told
    WARNING; returns when it was told (the state is WARNING then)."""
    i = 0
    while True:
        warning = i % 2 == 0
        await world.result(SLOW if warning else bad)
        before = len(world.told())
        world.run(every)
        told = world.told()
        if world.t > after and len(told) > before and told[-1][1].startswith("[WARNING]"):
            return told[-1][0]
        i += 1
        assert world.t < after + 40 * GROUP_INTERVAL, told


async def test_a_critical_after_a_warning_told_waits_one_group_interval_however_long_the_flap(
        world: World) -> None:
    told_at = await flap_until_told_warning(world, every=20, after=40 * 60)
    await world.result(VERY_SLOW)  # and it stays CRITICAL
    world.run(GROUP_INTERVAL + 10)
    last_at, last = world.told()[-1]
    assert last == "[CRITICAL] exchange API latency on local", world.told()[-6:]
    assert last_at - told_at <= GROUP_INTERVAL + 5, world.told()[-6:]


async def test_the_changes_back_to_the_milder_state_still_back_off(world: World) -> None:
    hour, every = 3600, 20
    for i in range(hour // every):  # WARNING and CRITICAL by turns
        await world.result(SLOW if i % 2 == 0 else VERY_SLOW)
        world.run(every)
    told = world.told()
    warnings = [at for at, title in told if title.startswith("[WARNING]")]
    # each WARNING told waits longer than the one before, up to the cap: a handful an hour
    assert len(warnings) <= 8, told
    assert len(told) <= 2 * len(warnings) + 1, told


@pytest.mark.parametrize("seed", [1, 2, 3])
async def test_randomized_flaps_never_hold_a_critical_past_one_group_interval(world: World, seed: int) -> None:
    rnd = random.Random(seed)
    every, after = rnd.randint(10, 90), rnd.randint(5, 25)
    told_at = await flap_until_told_warning(world, every=every, after=after * 60)
    await world.result(VERY_SLOW)
    world.run(GROUP_INTERVAL + 10)
    last_at, last = world.told()[-1]
    assert last.startswith("[CRITICAL]") and last_at - told_at <= GROUP_INTERVAL + 5, (every, after, world.told()[-6:])


async def test_the_unknown_of_a_critical_check_after_a_warning_told_is_not_backed_off(world: World) -> None:
    """The exchange slow and answering 429 by turns: the UNKNOWN pages (the critical route) where
    the WARNING did not; the last message read WARNING, the exchange no longer answers at all."""
    told_at = await flap_until_told_warning(world, every=20, after=40 * 60, bad=LIMITED)
    await world.result(LIMITED)
    world.run(GROUP_INTERVAL + 10)
    last_at, last = world.told()[-1]
    assert last.startswith("[UNKNOWN] exchange API latency on local"), world.told()[-6:]
    assert last_at - told_at <= GROUP_INTERVAL + 5, world.told()[-6:]
