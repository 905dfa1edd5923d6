"""CheckScheduler: first run at once, then each check at its own phase of the interval; no overlap."""
from __future__ import annotations

import asyncio
import itertools
import time
from collections import defaultdict
from types import SimpleNamespace
from typing import Any

from agent.engine.scheduler import CheckScheduler, spread_phases
from agent.modules.base import CheckModule, CheckResult, HostContext, Params, RunContext

STARTS: dict[str, list[float]] = defaultdict(list)


class _Recorder(CheckModule):
    name = "recorder"
    Params = Params
    description = "records when it starts"

    async def run(self, params: Any, ctx: RunContext) -> CheckResult:
        STARTS[ctx.reason.removeprefix("scheduled check ")].append(time.monotonic())
        return CheckResult(value=1)


def _bc(play: str, i: int, interval: float) -> Any:
    return SimpleNamespace(key=f"{play}/h/c{i}", module=_Recorder, params=Params(), interval=interval, timeout=1.0,
                           vars={}, host=HostContext("h"), play=SimpleNamespace(name=play, schedule=None))


async def _noop(*_: Any) -> None:
    return None


def test_phases_are_evenly_spaced_within_the_interval_and_stable() -> None:
    phases = spread_phases("cap0/local/every 1s", 100, 1.0)
    assert phases == spread_phases("cap0/local/every 1s", 100, 1.0)
    assert all(0.0 <= p < 1.0 for p in phases)
    gaps = sorted(phases)
    steps = [b - a for a, b in itertools.pairwise(gaps)]
    assert min(steps) > 0.0099 and max(steps) < 0.0101
    # Jobs of the same interval are rotated differently, so they do not start together.
    assert spread_phases("cap0/local/every 1s", 1, 1.0) != spread_phases("cap1/local/every 1s", 1, 1.0)


async def test_first_run_is_immediate_then_checks_start_at_their_phases() -> None:
    STARTS.clear()
    interval, n = 0.6, 12
    checks = [_bc("spread", i, interval) for i in range(n)]
    scheduler = CheckScheduler(_noop)
    t0 = time.monotonic()
    scheduler.start(checks)
    try:
        while min((len(STARTS[bc.key]) for bc in checks), default=0) < 3:
            await asyncio.sleep(0.02)
            assert time.monotonic() - t0 < 20, dict(STARTS)
    finally:
        await scheduler.shutdown()
    first = [STARTS[bc.key][0] for bc in checks]
    second = [STARTS[bc.key][1] for bc in checks]
    # The first round runs every check at once: the state is fresh right after a start or reload.
    assert max(first) - min(first) < interval / 4
    # Later rounds are spread over the interval (12 checks 50 ms apart), not started together.
    assert max(second) - min(second) > interval / 2
    # Each check keeps its own interval from the second run on (its phase is fixed).
    for bc in checks:
        runs = STARTS[bc.key]
        assert abs((runs[2] - runs[1]) - interval) < interval / 3, runs
        assert runs[1] - runs[0] < 2 * interval + interval / 3, runs
    assert scheduler.lateness.count >= 3 * n


async def test_replace_cancels_the_old_checks_pending_phased_starts() -> None:
    STARTS.clear()
    interval = 0.4
    old = [_bc("old", i, interval) for i in range(8)]
    scheduler = CheckScheduler(_noop)
    scheduler.start(old)
    try:
        # Wait until the old job has fired its second (phased) round, then replace everything.
        while sum(len(STARTS[bc.key]) for bc in old) < len(old) + 1:
            await asyncio.sleep(0.005)
        new = [_bc("new", 0, interval)]
        scheduler.replace(new)
        # A run the old job began before the replace finishes normally: on a loaded machine its
        # module may not have started yet, so count once those runs are over.
        begun = [t for t in asyncio.all_tasks() if t.get_name().startswith("check:old/")]
        await asyncio.gather(*begun, return_exceptions=True)
        after = {bc.key: len(STARTS[bc.key]) for bc in old}
        await asyncio.sleep(interval * 2.5)
        assert {bc.key: len(STARTS[bc.key]) for bc in old} == after
        assert len(STARTS[new[0].key]) >= 2
    finally:
        await scheduler.shutdown()


async def test_a_check_still_in_flight_is_skipped_not_overlapped() -> None:
    gate = asyncio.Event()
    runs: list[float] = []

    class _Slow(CheckModule):
        name = "slow"
        Params = Params
        description = "waits for the gate"

        async def run(self, params: Any, ctx: RunContext) -> CheckResult:
            runs.append(time.monotonic())
            await gate.wait()
            return CheckResult(value=1)

    bc = SimpleNamespace(key="slow/h/c", module=_Slow, params=Params(), interval=0.05, timeout=5.0, vars={},
                         host=HostContext("h"), play=SimpleNamespace(name="slow", schedule=None))
    scheduler = CheckScheduler(_noop)
    scheduler.start([bc])
    try:
        while scheduler.lateness.skipped_in_flight < 3:
            await asyncio.sleep(0.02)
        assert len(runs) == 1
        gate.set()
        while len(runs) < 2:
            await asyncio.sleep(0.02)
    finally:
        await scheduler.shutdown()
