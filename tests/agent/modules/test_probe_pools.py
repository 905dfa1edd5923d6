"""The bounded probe pools: many probes of one kind at once wait their turn (a start or a reload
runs every check together), only threads stuck past ``stuck_after`` make a probe fail fast."""
from __future__ import annotations

import asyncio
import threading
import time

import pytest

from agent.modules.probe_pools import ProbePool, ProbesStuck


def test_more_concurrent_probes_than_threads_all_succeed() -> None:
    """Twice as many probes as threads, all started together: every one answers (none UNKNOWN)."""
    pool = ProbePool("exchange", threads=2, stuck_after=30)
    gate = threading.Barrier(2, timeout=5)  # the first two overlap for sure

    def probe(i: int) -> int:
        if i < 2:
            gate.wait()
        time.sleep(0.05)
        return i

    async def main() -> list[int]:
        return list(await asyncio.gather(*(asyncio.wait_for(pool.run(probe, i), 10) for i in range(4))))

    try:
        assert asyncio.run(main()) == [0, 1, 2, 3]
        assert pool.busy == 0
    finally:
        pool.close()


def test_threads_stuck_past_the_limit_fail_a_new_probe_at_once_and_recover() -> None:
    pool = ProbePool("file", threads=1, stuck_after=0.2)
    release = threading.Event()

    async def main() -> None:
        stuck = asyncio.ensure_future(pool.run(release.wait, 10))
        await asyncio.sleep(0.3)  # the only thread is now past stuck_after
        t0 = time.monotonic()
        with pytest.raises(ProbesStuck, match="all 1 file probe threads are stuck"):
            await asyncio.wait_for(pool.run(lambda: 1), 5)
        assert time.monotonic() - t0 < 2  # at once, not after the caller's timeout
        release.set()
        assert await stuck is True
        assert await asyncio.wait_for(pool.run(lambda: 7), 5) == 7

    try:
        asyncio.run(main())
    finally:
        release.set()
        pool.close()


def test_a_waiting_probe_is_bounded_by_its_callers_timeout_and_leaves_nothing_behind() -> None:
    pool = ProbePool("process", threads=1, stuck_after=30)
    release = threading.Event()

    async def main() -> None:
        busy = asyncio.ensure_future(pool.run(release.wait, 10))
        await asyncio.sleep(0.05)
        with pytest.raises(TimeoutError):
            await asyncio.wait_for(pool.run(lambda: 1), 0.2)
        assert pool.busy == 1  # the timed-out waiter never took a thread
        release.set()
        await busy
        assert pool.busy == 0
        assert await asyncio.wait_for(pool.run(lambda: 2), 5) == 2

    try:
        asyncio.run(main())
    finally:
        release.set()
        pool.close()
