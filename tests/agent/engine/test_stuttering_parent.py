"""A parent that stutters does not hold its dependent back for as long as it stutters (issue 16).

A bot whose /health answers and fails by turns at short intervals: each failure is a short
incident of ``bot health endpoint``, each answer its recovery. ``bot exchange access`` (the bot's
key refused: read CRITICAL from every /health that answered) depends on it. The inhibit grace
after a parent's recovery is for the warm-up of what depends on it; it must not start again at
every recovery of a parent that keeps coming back, or the dependent's alert waits for the end of
the stutter. Driven through the real result pipeline (with the evidence the engine records),
store and alert lifecycle, on the wall clock, with randomized stutter timings.
"""
from __future__ import annotations

import asyncio
import random
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from agent.core.states import State
from agent.engine.store_thread import StoreThread
from agent.modules.base import CheckResult
from agent.notify.lifecycle import AlertLifecycle, LifecycleSettings
from tests.agent.engine.pipeline_world import PipelineWorld

PARENT, CHILD = "p/local/bot health endpoint", "p/local/bot exchange access"
PLAY = """
version: 1
name: p
hosts: local
schedule: {every: 10s}
checks:
  - name: bot health endpoint
    http: {url: "http://127.0.0.1:9/health", timeout: 2s}
    expect: "status_code == 200"
    severity: critical
  - name: bot exchange access
    http: {url: "http://127.0.0.1:9/health", timeout: 2s}
    value: "json.exchange_refusal or ''"
    expect: "not value"
    severity: critical
    depends_on: [bot health endpoint]
"""
GRACE = 1.0
ANSWERS = CheckResult(facts={"status_code": 200, "json": {"status": "degraded",
                                                          "exchange_refusal": "User or API Wallet 0xab does not exist."}})
FAILS = CheckResult.failed("GET http://127.0.0.1:9/health timed out after 2s")


class World(PipelineWorld):
    def __init__(self, root: Path, thread: StoreThread) -> None:
        super().__init__(root, thread, PLAY, "{group_wait: 0s, targets: {inbox: {url: 'json://127.0.0.1:9/'}}, "
                         "routes: [{name: default, targets: [inbox]}]}", group_wait=0.0, group_interval=60.0)

    def restart(self) -> None:
        super().restart()
        self.lifecycle = AlertLifecycle(
            self.notifications, checks=self.live.checks, maintenance=list, is_flapping=lambda key: False,
            evidence=self.pipeline.evidence.get,
            settings=lambda: LifecycleSettings(group_wait=0.0, group_interval=60.0, inhibit_grace=GRACE,
                                               dependency_hold=GRACE, remediation_wait=0.0))

    async def health(self, answers: bool) -> None:
        """One reading of /health by both checks, the parent first, then a lifecycle pass."""
        for key in (PARENT, CHILD):
            await self.handle(ANSWERS if answers else FAILS, key)
        await self.thread.call(self.lifecycle.tick, datetime.now(UTC))

    def told(self) -> list[str]:
        return [n.title for n in sorted(self.store.list_notifications(), key=lambda n: n.id)]


@pytest.fixture
def world(tmp_path: Path, thread: StoreThread):  # type: ignore[no-untyped-def]
    w = World(tmp_path, thread)
    yield w
    w.close()


@pytest.mark.parametrize("seed", [1, 2, 3])
async def test_a_dependent_is_told_while_its_parent_stutters(world: World, seed: int) -> None:
    """Failing and answering phases of random lengths, each shorter than the grace (the answers
    are from 10 % to 50 % of the time): every recovery of the parent is followed by a failure
    before its grace ends. The dependent's one alert names its own cause, while the stutter lasts."""
    rnd = random.Random(seed)
    loop = asyncio.get_running_loop()
    end = loop.time() + 10 * GRACE
    fail_for, answer_for = rnd.uniform(0.3, 0.9) * GRACE, rnd.uniform(0.1, 0.3) * GRACE
    answers = False  # the stutter begins with a failure: the dependent's problem opens under it
    while loop.time() < end:
        phase_end = loop.time() + rnd.uniform(0.5, 1.0) * (answer_for if answers else fail_for)
        while loop.time() < phase_end:
            await world.health(answers)
            await asyncio.sleep(rnd.uniform(0.02, 0.08) * GRACE)
        answers = not answers
    told = [t for t in world.told() if "bot exchange access" in t]
    assert told == ["[CRITICAL] bot exchange access on local"], (seed, world.told())


async def test_a_parent_back_after_one_fault_still_holds_its_dependent_for_the_grace(world: World) -> None:
    """The grace is still the warm-up after a parent's fault: a dependent that fails for a
    moment after its parent came back is not told before the parent has been OK for the grace,
    however long the fault lasted."""
    loop = asyncio.get_running_loop()
    end = loop.time() + 1.5 * GRACE
    while loop.time() < end:
        await world.health(False)
        await asyncio.sleep(0.1 * GRACE)
    await world.handle(ANSWERS, PARENT)  # /health answers again; the dependent has not read it yet
    back = world.store.find_incidents(check="bot health endpoint")[0].resolved_at
    assert back is not None
    await world.thread.call(world.lifecycle.tick, back + timedelta(seconds=0.9 * GRACE))
    assert not [t for t in world.told() if "bot exchange access" in t], world.told()
    await world.thread.call(world.lifecycle.tick, back + timedelta(seconds=GRACE))
    assert [t for t in world.told() if "bot exchange access" in t] == ["[UNKNOWN] bot exchange access on local: "
                                                                       "timed out"], world.told()


def test_the_ok_time_of_a_parent_adds_up_across_its_recoveries() -> None:
    from agent.notify.lifecycle.inhibition import TRANSITIONS_READ, ok_spans
    from agent.store import EventRecord, IncidentRecord

    t0 = datetime(2026, 1, 5, 12, 0, tzinfo=UTC)

    def at(n: float) -> datetime:
        return t0 + timedelta(seconds=n)

    def tr(n: float, old: str, new: str) -> EventRecord:
        return EventRecord(id=0, at=at(n), kind="transition", key=PARENT, incident_id=None,
                           message=f"{old} -> {new}", data={})

    parent = IncidentRecord(id=1, key=PARENT, play="p", host="local", check="bot health endpoint",
                            state=State.UNKNOWN, severity="critical", opened_at=at(20), resolved_at=at(21), summary="",
                            acknowledged_at=None, acknowledged_by=None, ack_comment=None, last_notified_at=None,
                            notify_count=0)
    grace = timedelta(seconds=30)
    stutter = [tr(21, "UNKNOWN", "OK"), tr(20, "OK", "UNKNOWN"), tr(12, "UNKNOWN", "OK"), tr(10, "OK", "UNKNOWN")]
    spans = ok_spans(parent, stutter, now=at(30), since=at(0))
    assert spans.ok_for(since=at(0), now=at(30), grace=grace) == timedelta(seconds=10 + 8 + 9)
    assert spans.ok_for(since=at(15), now=at(30), grace=grace) == timedelta(seconds=5 + 9)
    # healthy for a whole grace before its trouble (0-10 s, a grace of 9 s): not this trouble's grace
    assert spans.ok_for(since=at(0), now=at(30), grace=timedelta(seconds=9)) == timedelta(seconds=8 + 9)
    # an incident without transitions (handed over from a lost store): OK since its resolve
    assert ok_spans(parent, [], now=at(30), since=at(0)).ok_for(since=at(0), now=at(30), grace=grace) == timedelta(seconds=9)
    # more changes than read since the dependent opened: back often enough, the grace is spent
    many = [tr(29 - i * 0.01, "UNKNOWN", "OK") for i in range(TRANSITIONS_READ)]
    assert ok_spans(parent, many, now=at(30), since=at(0)).ok_for(since=at(0), now=at(30), grace=grace) == timedelta.max


async def test_a_told_dependent_that_cannot_read_while_its_parent_stutters_is_not_told_again(world: World) -> None:
    """Seen live (SIGSTOP of the bot for 4-4.6 s, SIGCONT for 1-3 s, its key refused): the access
    alert told CRITICAL, then its reading timed out while /health's own probe was still under
    way (the parent's latest reading: healthy), and '[UNKNOWN] bot exchange access: timed out'
    went out, then the CRITICAL again. The UNKNOWN is a new problem its parent may explain: it
    waits for the parent's next reading like any new problem."""
    for _ in range(2):  # the parent read healthy after the dependent's problem began: told
        await world.health(True)
    assert world.told() == ["[CRITICAL] bot exchange access on local"]
    await world.handle(FAILS, CHILD)  # the dependent's probe timed out; the parent's is under way
    await world.thread.call(world.lifecycle.tick, datetime.now(UTC))
    await world.health(False)  # the parent's reading times out too: the stutter
    await world.health(True)  # both answer again
    await world.thread.call(world.lifecycle.tick, datetime.now(UTC))
    about = [t for t in world.told() if "bot exchange access" in t]
    assert about == ["[CRITICAL] bot exchange access on local"], world.told()


async def test_a_dependent_told_long_before_its_parent_failed_is_held_through_the_parents_warm_up(
        world: World) -> None:
    """The grace counts the parent's OK time of its current trouble only: a dependent told long
    before (the bot's key refused for a while, /health fine) whose reading fails while the bot is
    down and warming up again is not told UNKNOWN before the parent has been back for the grace
    (the parent's healthy time before its fault is not that grace)."""
    for _ in range(2):
        await world.health(True)
    assert world.told() == ["[CRITICAL] bot exchange access on local"]
    await asyncio.sleep(1.5 * GRACE)  # the parent healthy for longer than the grace
    await world.health(True)
    for _ in range(3):
        await world.health(False)  # the bot down: both cannot read
    await world.handle(ANSWERS, PARENT)  # /health answers again...
    await world.handle(FAILS, CHILD)  # ...the dependent's reading, taken during the warm-up, fails
    back = world.store.find_incidents(check="bot health endpoint")[0].resolved_at
    assert back is not None
    await world.thread.call(world.lifecycle.tick, back + timedelta(seconds=0.9 * GRACE))
    about = [t for t in world.told() if "bot exchange access" in t]
    assert about == ["[CRITICAL] bot exchange access on local"], world.told()
