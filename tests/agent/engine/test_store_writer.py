"""Group commit of plain results (agent/engine/store_writer.py) on a real SQLite store."""
from __future__ import annotations

import asyncio
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime, timedelta
from types import SimpleNamespace as NS
from typing import Any

from agent.core.states import State
from agent.engine.evaluator import CheckStatus
from agent.engine.status_records import record_from_status
from agent.engine.store_writer import ResultBatcher
from agent.store import Store

T0 = datetime(2025, 1, 6, 12, 0, tzinfo=UTC)


def bound(name: str) -> Any:
    return NS(key=f"p/h/{name}", play=NS(name="p"), host=NS(name="h"), check=NS(name=name))


def row(name: str, i: int) -> dict[str, Any]:
    return dict(play="p", host="h", check=name, state=State.OK, value=str(i), error=None, duration_ms=1.0,
                observed_at=T0 + timedelta(seconds=i))


def batcher_on(store: Store, pool: ThreadPoolExecutor, **kw: Any) -> ResultBatcher:
    async def submit(fn: Callable[..., Any], *args: Any) -> Any:
        return await asyncio.get_running_loop().run_in_executor(pool, fn, *args)

    return ResultBatcher(store, submit, record_from_status, **kw)


def status(name: str, i: int) -> CheckStatus:
    return CheckStatus(f"p/h/{name}", hard=State.OK, soft=State.OK, hard_since=T0, consecutive=i,
                       last_value=str(i), last_at=T0 + timedelta(seconds=i))


def test_results_are_written_in_one_batch_after_the_delay_with_the_latest_state(store: Store) -> None:
    async def scenario() -> None:
        with ThreadPoolExecutor(max_workers=1) as pool:
            b = batcher_on(store, pool, max_delay=0.2, max_rows=1000)
            st = status("a", 0)
            for i in range(10):
                st.consecutive, st.last_value = i + 1, str(i)
                b.add(bound("a"), st, row("a", i))
            b.add(bound("b"), status("b", 3), row("b", 0))
            assert store.recent_results() == [] and store.load_check_states() == {}  # buffered, not written
            for _ in range(100):
                await asyncio.sleep(0.02)
                if store.recent_results(limit=100):
                    break
            assert len(store.recent_results(limit=100)) == 11
            assert b.batches_written == 1 and b.rows_written == 11
            states = store.load_check_states()
            assert states["p/h/a"].consecutive == 10 and states["p/h/a"].last_value == "9"
            assert states["p/h/b"].consecutive == 3

    asyncio.run(scenario())


def test_a_full_batch_is_written_at_once_and_flush_writes_the_rest(store: Store) -> None:
    async def scenario() -> None:
        with ThreadPoolExecutor(max_workers=1) as pool:
            b = batcher_on(store, pool, max_delay=60.0, max_rows=5)
            for i in range(7):
                b.add(bound("a"), status("a", i), row("a", i))
            assert len(b) == 2  # the first five went on their way without waiting 60 s
            await b.flush()
            assert len(b) == 0 and b.batches_written == 2
            assert [r.value for r in store.recent_results(limit=100)] == [str(i) for i in reversed(range(7))]
            await b.flush()  # nothing buffered: nothing written
            assert b.batches_written == 2

    asyncio.run(scenario())


def test_take_hands_the_batch_to_a_transition_transaction_in_order(store: Store) -> None:
    async def scenario() -> None:
        with ThreadPoolExecutor(max_workers=1) as pool:
            b = batcher_on(store, pool, max_delay=60.0)
            b.add(bound("a"), status("a", 1), row("a", 1))
            b.add(bound("gone"), status("gone", 1), row("gone", 2))
            b.forget("p/h/gone")
            batch = b.take()
            assert len(b) == 0 and len(batch.results) == 2 and [s.check for s in batch.states] == ["a"]
            with store.transaction() as tx:
                b.write(batch, tx)
                tx.record_result(**row("a", 3))
            assert [r.value for r in store.recent_results()] == ["3", "2", "1"]
            assert list(store.load_check_states()) == ["p/h/a"]
            await b.flush()
            assert b.batches_written == 1

    asyncio.run(scenario())
