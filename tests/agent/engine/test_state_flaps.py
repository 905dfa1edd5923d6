"""A problem that changes between bad states is paced, not paged at every change (issue 16).

A return to a state told before in the same incident is a message of its own (WARNING ->
UNKNOWN -> WARNING: the operator's last message must not stay the UNKNOWN). On a route with
``group_wait: 0s`` (the shipped ``critical``) a *new* problem and a change to a worse state than
any told (WARNING -> CRITICAL) page at once; a change back (CRITICAL -> UNKNOWN -> CRITICAL: the
exchange answering slowly and with 429s by turns) is an update, at most one per host per
``group_interval``: each change of such a check paged at once, about one message per change.
Driven through the real result pipeline, store and alert lifecycle (the outbox rows are what
would be sent).
"""
from __future__ import annotations

import itertools
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from agent.engine.store_thread import StoreThread
from agent.modules.base import CheckResult
from tests.agent.engine.pipeline_world import PipelineWorld

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
"""
GROUP_WAIT, GROUP_INTERVAL = 10.0, 60.0
SLOW, VERY_SLOW = CheckResult(facts={"status_code": 200, "json": {"ms": 2000}}), \
    CheckResult(facts={"status_code": 200, "json": {"ms": 6000}})
LIMITED = CheckResult.failed("HTTP 429 Too Many Requests")


class World(PipelineWorld):
    def __init__(self, root: Path, thread: StoreThread) -> None:
        super().__init__(root, thread, PLAY, f"{{group_wait: {GROUP_WAIT:g}s, group_interval: {GROUP_INTERVAL:g}s, "
                         "targets: {inbox: {url: 'json://127.0.0.1:9/'}}, "
                         "routes: [{name: critical, match: {severity: [critical]}, targets: [inbox], group_wait: 0s},"
                         " {name: default, targets: [inbox]}]}", group_wait=GROUP_WAIT, group_interval=GROUP_INTERVAL)
        self.start = datetime.now(UTC)
        self.t = 0.0  # seconds of the lifecycle's clock

    async def result(self, result: CheckResult) -> None:
        await self.handle(result, "exchange/local/exchange API latency")

    def run(self, seconds: float) -> None:
        """The lifecycle's passes every 5 s for ``seconds``."""
        end = self.t + seconds
        while self.t < end:
            self.lifecycle.tick(self.start + timedelta(seconds=self.t))
            self.t += 5

    def told(self) -> list[tuple[float, str]]:
        return [(round((n.created_at.replace(tzinfo=UTC) - self.start).total_seconds()), n.title)
                for n in sorted(self.store.list_notifications(), key=lambda n: n.id)]


@pytest.fixture
def world(tmp_path: Path, thread: StoreThread):  # type: ignore[no-untyped-def]
    w = World(tmp_path, thread)
    yield w
    w.close()


async def test_a_check_changing_between_bad_states_every_20s_is_told_at_most_once_per_group_interval(
        world: World) -> None:
    for i in range(20):  # CRITICAL and UNKNOWN by turns, 20 s each, for 400 s
        await world.result(VERY_SLOW if i % 2 == 0 else LIMITED)
        world.run(20)
    told = world.told()
    assert told[:2] == [(0, "[CRITICAL] exchange API latency on local"),
                        (20, "[UNKNOWN] exchange API latency on local: HTTP 429 rate limited")], told
    gaps = [b[0] - a[0] for a, b in itertools.pairwise(told[1:])]
    assert all(g >= GROUP_INTERVAL for g in gaps), told  # paced: a change back is an update
    assert len(told) <= 2 + 400 / GROUP_INTERVAL, told


async def test_a_change_to_a_worse_state_than_any_told_still_pages_at_once(world: World) -> None:
    await world.result(SLOW)
    world.run(GROUP_WAIT + 5)
    await world.result(LIMITED)  # UNKNOWN of a critical check: a page
    world.run(5)
    await world.result(SLOW)  # back to the WARNING told: paced
    world.run(5)
    await world.result(VERY_SLOW)  # CRITICAL, never told: at once, whatever the pacing
    world.run(5)
    assert world.told() == [(10, "[WARNING] exchange API latency on local"),
                            (15, "[UNKNOWN] exchange API latency on local: HTTP 429 rate limited"),
                            (25, "[CRITICAL] exchange API latency on local")], world.told()


async def test_a_return_after_an_update_of_the_incident_is_still_paced(world: World) -> None:
    """An update told in between (a new cause, a remediation's outcome) tells no state: the states
    told before it still count."""
    await world.result(VERY_SLOW)
    world.run(5)
    await world.result(LIMITED)
    world.run(5)
    inc = world.store.open_incident_for("exchange/local/exchange API latency")
    assert inc is not None
    world.store.add_event("notified", inc.key, inc.id, "update queued for inbox: restart: done", {},
                          at=world.start + timedelta(seconds=world.t))
    await world.result(VERY_SLOW)  # back to the CRITICAL told: paced
    world.run(GROUP_INTERVAL - 10)
    assert [title for _, title in world.told()] == [
        "[CRITICAL] exchange API latency on local",
        "[UNKNOWN] exchange API latency on local: HTTP 429 rate limited"], world.told()
    world.run(20)
    assert [title for _, title in world.told()][2:] == ["[CRITICAL] exchange API latency on local"], world.told()
