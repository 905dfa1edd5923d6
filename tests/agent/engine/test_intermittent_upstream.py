"""An upstream that fails part of its requests gives one message and one resolve (issue 13 item 6).

exchange-5xx (tests/faults): the exchange answers HTTP 500 to 30-100 % of requests for a few
seconds. Every check reading it gets its share of the errors and of the answers, so two shapes
gave two alerts for one fault:

* the exchange credentials check (a dependent) read UNKNOWN "HTTP 500" and was told on its own,
  because its parent, the exchange latency check, happened to read healthy between its own
  errors; then the parent's own UNKNOWN followed (seed 3097992757);
* the latency check, hard UNKNOWN, resolved on one lucky answer and alerted again at its next
  two failures (seed 2137957582, 59 % errors: UNKNOWN, RESOLVED, UNKNOWN, RESOLVED).

Driven through the real result pipeline (with the evidence the engine records), store and alert
lifecycle: the dependent UNKNOWN for the cause its parent failed with waits for the parent
(agent/notify/lifecycle/dependency_hold.py, ``same_fault``), and a check with ``recover_after: 2``
recovers only on its second OK reading in a row (agent/engine/evaluator.py), which the retries
run soon (agent/engine/retries.py).
"""
from __future__ import annotations

import asyncio
from datetime import UTC, datetime
from pathlib import Path

import pytest

from agent.core.states import State
from agent.engine.evaluator import CheckStatus, Observation
from agent.engine.retries import FIRST_RETRY_S, Retries
from agent.engine.store_thread import StoreThread
from agent.modules.base import CheckResult
from agent.notify.lifecycle import AlertLifecycle, LifecycleSettings
from tests.agent.engine.pipeline_world import PipelineWorld

PARENT, CHILD = "p/local/exchange API latency", "p/local/exchange credentials valid"
PLAY = """
version: 1
name: p
hosts: local
schedule: {every: 10s}
checks:
  - name: exchange API latency
    http: {url: "http://127.0.0.1:9/info", timeout: 2s}
    expect: "status_code == 200"
    severity: warning
    after: 2
    recover_after: 2
  - name: exchange credentials valid
    http: {url: "http://127.0.0.1:9/exchange", timeout: 2s}
    expect: "status_code == 200"
    severity: critical
    depends_on: [exchange API latency]
"""
ANSWERS = CheckResult(facts={"status_code": 200})
FAILS = CheckResult.failed("api_latency: exchange http://127.0.0.1:9 answered HTTP 500")


class World(PipelineWorld):
    def __init__(self, root: Path, thread: StoreThread) -> None:
        super().__init__(root, thread, PLAY, "{group_wait: 0s, targets: {inbox: {url: 'json://127.0.0.1:9/'}}, "
                         "routes: [{name: default, targets: [inbox]}]}", group_wait=0.0, group_interval=60.0)

    def restart(self) -> None:
        super().restart()
        self.lifecycle = AlertLifecycle(
            self.notifications, checks=self.live.checks, maintenance=list, is_flapping=lambda key: False,
            evidence=self.pipeline.evidence.get,
            settings=lambda: LifecycleSettings(group_wait=0.0, group_interval=60.0, inhibit_grace=30.0,
                                               dependency_hold=90.0, remediation_wait=0.0))

    async def read(self, key: str, *answers: bool) -> None:
        """Readings of ``key`` (True: answered, False: HTTP 500), each followed by a lifecycle pass."""
        for answered in answers:
            await self.handle(ANSWERS if answered else FAILS, key)
            await self.thread.call(self.lifecycle.tick, datetime.now(UTC))

    def hard(self, key: str) -> State | None:
        status = self.pipeline.status(key)
        return status.hard if status is not None else None

    def told(self) -> list[str]:
        return [n.title for n in sorted(self.store.list_notifications(), key=lambda n: n.id)]


@pytest.fixture
def world(tmp_path: Path, thread: StoreThread):  # type: ignore[no-untyped-def]
    w = World(tmp_path, thread)
    yield w
    w.close()


async def test_an_exchange_failing_part_of_its_requests_gives_one_message_and_one_resolve(world: World) -> None:
    await world.read(PARENT, True)
    await world.read(CHILD, True)
    # the fault begins: the latency check gets one error and one answer (never hard yet)...
    await world.read(PARENT, False, True)
    # ...the credentials check gets an error: hard at once (after: 1); the engine runs its parent
    # now, which happens to be answered
    await world.read(CHILD, False)
    await world.read(PARENT, True)
    assert world.told() == [], "the dependent read the parent's fault: not told on its own"
    # the latency check's errors turn hard: the one message
    await world.read(PARENT, False, False)
    assert world.told() == ["[UNKNOWN] exchange API latency on local: HTTP 500 server error"]
    # one lucky answer amid the errors is not the end of the fault, nor are the errors after it a new one
    await world.read(PARENT, True, False, False, True, False)
    assert world.hard(PARENT) is State.UNKNOWN
    assert len(world.told()) == 1, world.told()
    # the exchange answers again: the dependent's retry reads it (resolved, never told), the
    # latency check's second answer in a row is its recovery: the one resolve
    await world.read(CHILD, True)
    await world.read(PARENT, True, True)
    assert world.hard(PARENT) is State.UNKNOWN  # recovering: two answers, but no retry apart
    await asyncio.sleep(FIRST_RETRY_S)  # the retry's reading
    await world.read(PARENT, True)
    told = world.told()
    assert len(told) == 2 and told[1].startswith("[RESOLVED] exchange API latency on local"), told


def test_a_success_threshold_counts_consecutive_ok_readings_of_a_hard_problem() -> None:
    at = datetime(2026, 1, 5, 12, 0, tzinfo=UTC)

    def obs(state: State) -> Observation:
        return Observation(state, None, None if state is State.OK else "HTTP 500", "", at)

    st = CheckStatus("k")
    seen = [st.advance(obs(s), after=2, recover_after=2) for s in
            (State.UNKNOWN, State.UNKNOWN, State.OK, State.UNKNOWN, State.OK, State.OK)]
    assert [(t.old, t.new) if t else None for t in seen] == [
        None, (State.OK, State.UNKNOWN), None, None, None, (State.UNKNOWN, State.OK)]
    # a problem that changes state while recovering is told as a change, and counts again from 0
    st = CheckStatus("k")
    seen = [st.advance(obs(s), recover_after=2) for s in (State.WARNING, State.OK, State.CRITICAL, State.OK)]
    assert [(t.old, t.new) if t else None for t in seen] == [
        (State.OK, State.WARNING), None, (State.WARNING, State.CRITICAL), None]
    assert st.recovering and st.hard is State.CRITICAL
    # recovering, another problem is judged like a new one (after: 2): exchange-outage, seed 2989002227,
    # the first answer after the outage was slow (WARNING) and was told at once as a change
    st = CheckStatus("k")
    seen = [st.advance(obs(s_), after=2, recover_after=2) for s_ in
            (State.UNKNOWN, State.UNKNOWN, State.OK, State.WARNING, State.OK, State.OK)]
    assert [(t.old, t.new) if t else None for t in seen] == [
        None, (State.OK, State.UNKNOWN), None, None, None, (State.UNKNOWN, State.OK)]
    st = CheckStatus("k")
    seen = [st.advance(obs(s_), after=2, recover_after=2) for s_ in
            (State.UNKNOWN, State.UNKNOWN, State.OK, State.WARNING, State.WARNING)]
    assert [(t.old, t.new) if t else None for t in seen][-1] == (State.UNKNOWN, State.WARNING)
    # OK readings taken sooner than the span (a dependent asking) confirm nothing by their number alone
    def at_mono(state: State, mono: float) -> Observation:
        return Observation(state, None, None if state is State.OK else "HTTP 500", "", at, mono=mono)

    st = CheckStatus("k")
    readings = [(State.UNKNOWN, 0.0), (State.OK, 1.0), (State.OK, 1.2), (State.OK, 1.5), (State.UNKNOWN, 2.0),
                (State.OK, 3.0), (State.OK, 5.0), (State.OK, 7.0)]
    seen = [st.advance(at_mono(s_, m), recover_after=3, recover_span=4.0) for s_, m in readings]
    assert [(t.old, t.new) if t else None for t in seen] == [
        (State.OK, State.UNKNOWN), None, None, None, None, None, None, (State.UNKNOWN, State.OK)]
    # the default (1): one OK recovers, as before
    st = CheckStatus("k")
    assert st.advance(obs(State.UNKNOWN)) is not None and st.advance(obs(State.OK)) is not None


async def test_a_recovering_check_is_read_again_soon(world: World) -> None:
    """The confirming reading of ``recover_after`` is a retry, not the next interval."""
    bc = world.live.check(PARENT)
    assert bc is not None
    ran: list[str] = []
    retries = Retries(status=world.pipeline.status, check=world.live.check, run_now=lambda b: ran.append(b.key))
    try:
        await world.read(PARENT, False, False, True)
        status = world.pipeline.status(PARENT)
        assert status is not None and status.recovering
        retries.on_result(bc, ANSWERS, 1.0)
        assert retries.scheduled == 1
    finally:
        retries.close()
    await asyncio.sleep(0)


async def test_a_dependent_failing_before_its_parent_ever_did_waits_for_a_second_reading(world: World) -> None:
    """exchange-5xx, seed 4200015721 (59 % errors): the credentials check's first error came
    before the latency check had met any, and the latency check, run at once, was answered: the
    credentials UNKNOWN was told on its own, the latency check's own alert followed. One reading
    of each does not tell a shared fault from the dependent's own: the dependent's retry fails
    too, its parent runs again (DependencyProbes) and now meets an error: the same fault."""
    await world.read(PARENT, True)
    await world.read(CHILD, True)
    await world.read(CHILD, False)  # hard at once (after: 1); its parent runs now...
    await world.read(PARENT, True)  # ...and is answered
    assert world.told() == [], "one reading of each: not told yet"
    await world.read(CHILD, False)  # its retry; its parent runs again...
    await world.read(PARENT, False, False)  # ...and fails, and fails again: hard, the one message
    await world.read(CHILD, False)
    assert world.told() == ["[UNKNOWN] exchange API latency on local: HTTP 500 server error"]


async def test_a_dependent_that_cannot_read_while_its_parent_reads_fine_is_told_once_confirmed(
        world: World) -> None:
    """The dependent's own problem (the exchange's signing endpoint failing, its info endpoint
    fine): told once its retry fails too and its parent, read after it, is still healthy."""
    await world.read(PARENT, True)
    await world.read(CHILD, True)
    await world.read(CHILD, False)
    await world.read(PARENT, True)
    await world.read(CHILD, False)
    assert world.told() == [], "its parent not read since this reading"
    await world.read(PARENT, True)
    assert world.told() == ["[UNKNOWN] exchange credentials valid on local: HTTP 500 server error"]
