"""One message per target, whichever routes an incident's messages took to it.

Seen live (the exchange slow and answering 503 by turns): ``exchange API latency`` was told
WARNING on the default route and UNKNOWN on the critical route, both to ``inbox``; its resolve
went to every (route, target) its alerts took, and the inbox got the same resolve twice. Driven
through the real result pipeline, store and alert lifecycle (the outbox rows are what would be
sent).
"""
from __future__ import annotations

from collections import Counter
from pathlib import Path

import pytest

from agent.engine.store_thread import StoreThread
from agent.modules.base import CheckResult
from tests.agent.engine.test_state_flaps import GROUP_INTERVAL, GROUP_WAIT, LIMITED, SLOW, World

FAST = CheckResult(facts={"status_code": 200, "json": {"ms": 100}})


@pytest.fixture
def world(tmp_path: Path, thread: StoreThread):  # type: ignore[no-untyped-def]
    w = World(tmp_path, thread)
    yield w
    w.close()


def per_target(world: World, kind: str) -> Counter[str]:
    return Counter(n.target for n in world.store.list_notifications() if n.kind == kind)


async def test_a_resolve_goes_once_to_a_target_two_routes_of_the_incident_reach(world: World) -> None:
    await world.result(SLOW)  # WARNING: the default route
    world.run(GROUP_WAIT + 5)
    await world.result(LIMITED)  # UNKNOWN of the check: the critical route, at once
    world.run(5)
    routes = {n.route for n in world.store.list_notifications() if n.kind == "alert"}
    assert routes == {"default", "critical"}, world.told()
    await world.result(FAST)
    world.run(GROUP_INTERVAL)
    assert per_target(world, "resolve") == Counter({"inbox": 1}), world.told()

