"""Problems of one host told together are one message per target, whichever routes take them.

tests/agent/engine/test_one_message_per_target.py: a resolve goes once to a target two routes of
the incident reach. The alert itself was still queued per (route, target): a host whose latency
turned WARNING (the default route) and whose bot process went CRITICAL (the critical route) in
the same pass, both routes to the inbox, was two messages there at the same second, each naming
one problem, not one listing both. Driven through the real result pipeline, store and alert
lifecycle (the outbox rows are what would be sent).
"""
from __future__ import annotations

from collections import Counter
from datetime import UTC, datetime
from pathlib import Path

import pytest

from agent.engine.store_thread import StoreThread
from agent.modules.base import CheckResult
from tests.agent.engine.pipeline_world import PipelineWorld
from tests.agent.engine.test_state_flaps import GROUP_INTERVAL, GROUP_WAIT, SLOW, World

PLAY = """
version: 1
name: exchange
hosts: local
schedule: {every: 15s}
checks:
  - name: exchange API latency
    http: {url: "http://127.0.0.1:9/", timeout: 8s}
    value: "json.ms"
    warning: "> 1000"
    critical: "> 5000"
  - name: exchange process
    http: {url: "http://127.0.0.1:9/", timeout: 8s}
    expect: "status_code == 200"
    severity: critical
"""
DOWN = CheckResult(facts={"status_code": 503, "json": {}})
FAST = CheckResult(facts={"status_code": 200, "json": {"ms": 100}})


class TwoChecks(World):
    def __init__(self, root: Path, thread: StoreThread) -> None:
        PipelineWorld.__init__(
            self, root, thread, PLAY,
            f"{{group_wait: {GROUP_WAIT:g}s, group_interval: {GROUP_INTERVAL:g}s, "
            "targets: {inbox: {url: 'json://127.0.0.1:9/'}}, "
            "routes: [{name: critical, match: {severity: [critical]}, targets: [inbox], group_wait: 0s},"
            " {name: default, targets: [inbox]}]}", group_wait=GROUP_WAIT, group_interval=GROUP_INTERVAL)
        self.start, self.t = datetime.now(UTC), 0.0


@pytest.fixture
def world(tmp_path: Path, thread: StoreThread):  # type: ignore[no-untyped-def]
    w = TwoChecks(tmp_path, thread)
    yield w
    w.close()


def rows(world: World, kind: str) -> list[tuple[str, str]]:
    return [(n.target, n.title) for n in sorted(world.store.list_notifications(), key=lambda n: n.id) if n.kind == kind]


async def test_a_warning_and_a_critical_of_one_host_told_together_are_one_message_to_the_inbox(world: World) -> None:
    await world.handle(SLOW, "exchange/local/exchange API latency")
    await world.handle(DOWN, "exchange/local/exchange process")
    world.run(GROUP_WAIT + 5)
    alerts = rows(world, "alert")
    assert Counter(t for t, _ in alerts) == Counter({"inbox": 1}), alerts
    assert "2 problems on local" in alerts[0][1], alerts
    await world.handle(FAST, "exchange/local/exchange API latency")
    await world.handle(FAST, "exchange/local/exchange process")
    world.run(GROUP_INTERVAL + 5)
    assert Counter(t for t, _ in rows(world, "resolve")) == Counter({"inbox": 1}), world.told()


async def test_problems_told_on_two_routes_resolving_together_are_one_resolve_to_the_inbox(world: World) -> None:
    await world.handle(SLOW, "exchange/local/exchange API latency")  # WARNING: the default route
    world.run(GROUP_WAIT + 5)
    await world.handle(DOWN, "exchange/local/exchange process")  # CRITICAL: the critical route
    world.run(5)
    assert {n.route for n in world.store.list_notifications() if n.kind == "alert"} == {"default", "critical"}, \
        world.told()
    await world.handle(FAST, "exchange/local/exchange API latency")
    await world.handle(FAST, "exchange/local/exchange process")
    world.run(GROUP_INTERVAL + 5)
    resolves = rows(world, "resolve")
    assert Counter(t for t, _ in resolves) == Counter({"inbox": 1}), resolves
    assert "2 problems on local" in resolves[0][1], resolves
