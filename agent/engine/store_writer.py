"""Group commit of plain check results: many results, one SQLite transaction.

Every result used to be one transaction on the agent's single store thread; at about 400
results/s that thread was the bottleneck. A result WITHOUT a transition (no incident, no
outbox row, no flapping notice) changes nothing a human is told, so it is buffered here and
written with the others of its batch; a result WITH a transition is written at once by the
engine, in the same transaction as the batch it takes with :meth:`ResultBatcher.take`
(so rows land in the order they were observed).

Contract:

* the in-memory :class:`~agent.engine.evaluator.CheckStatus` stays the source of truth; the
  ``check_states`` row of a check is written once per batch with its state at the flush (the
  store thread never reads a status the event loop is changing: records are taken on the loop);
* a batch is written at the latest ``max_delay`` seconds after its first row, or at once when it
  holds ``max_rows`` rows;
* :meth:`flush` (a clean shutdown) writes everything buffered and waits for it;
* on a crash (SIGKILL, power loss) at most the last ``max_delay`` seconds of plain results and
  state rows are lost: the agent resumes from a slightly older ``check_states`` row, which is
  what it would have read had it crashed that much earlier. Transitions are never buffered;
* a batch the store refuses (locked by another process, full) is put back and written with the
  next one (:meth:`ResultBatcher.put_back`); while the store keeps refusing, at most
  ``max_buffered`` result rows are kept (the oldest results go first; every check's latest state
  row is always kept).

Event loop only, except :meth:`write`, which runs on the store thread.
"""
from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

log = logging.getLogger("agent")

DEFAULT_MAX_DELAY = 0.05
"""Checks start spread over their interval (agent/engine/scheduler.py), so results arrive
steadily and a batch holds about max_delay's worth of them: 50 results at 1000 checks/s. A
shorter delay mostly adds transactions (measured at 1000 checks/s, spread: 10 ms used about 1.5x
the agent CPU of 50 ms, at the same lateness). It was 10 ms while checks started in bursts, when
a large batch written during a burst held the GIL long enough to delay the next checks."""
DEFAULT_MAX_ROWS = 500
DEFAULT_MAX_BUFFERED = 100_000
RETRY_DELAY = 1.0
"""Seconds before a refused batch is tried again (when no new result arms the timer sooner)."""


@dataclass
class Batch:
    """What one group commit writes: result rows in observation order, the latest state per check."""

    results: list[Mapping[str, Any]] = field(default_factory=list)
    states: list[Any] = field(default_factory=list)

    def __bool__(self) -> bool:
        return bool(self.results or self.states)


class ResultBatcher:
    """Buffers plain results and writes them in one transaction per batch.

    ``submit(fn, *args)`` runs ``fn`` on the store thread and returns an awaitable (the agent's
    ``db``); ``record_state(bc, status)`` snapshots a status as a ``CheckStateRecord`` (called
    on the event loop when the batch is taken).
    """

    def __init__(self, store: Any, submit: Callable[..., Awaitable[Any]],
                 record_state: Callable[[Any, Any], Any], *, max_delay: float = DEFAULT_MAX_DELAY,
                 max_rows: int = DEFAULT_MAX_ROWS, max_buffered: int = DEFAULT_MAX_BUFFERED) -> None:
        self.store = store
        self.submit = submit
        self.record_state = record_state
        self.max_delay = max_delay
        self.max_rows = max_rows
        self.max_buffered = max_buffered
        self._results: list[Mapping[str, Any]] = []
        self._states: dict[str, tuple[Any, Any]] = {}
        self._refused_states: list[Any] = []  # state records of refused batches (older than _states)
        self._timer: asyncio.TimerHandle | None = None
        self._writing: set[asyncio.Future[Any]] = set()
        self.batches_written = 0
        self.rows_written = 0

    def __len__(self) -> int:
        return len(self._results)

    def __repr__(self) -> str:
        return f"ResultBatcher({len(self._results)} results buffered)"

    def add(self, bc: Any, status: Any, result_row: Mapping[str, Any]) -> None:
        """Buffer one plain result and remember that ``bc``'s state row is due."""
        self._results.append(result_row)
        self._states[bc.key] = (bc, status)
        if len(self._results) >= self.max_rows:
            self._start_write()
        elif self._timer is None:
            self._timer = asyncio.get_running_loop().call_later(self.max_delay, self._start_write)

    def forget(self, key: str) -> None:
        """A check left the configuration: do not write its state row again."""
        self._states.pop(key, None)

    def take(self) -> Batch:
        """Everything buffered, with each check's state as of now; the buffer is empty after."""
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None
        fresh = [self.record_state(bc, st) for bc, st in self._states.values()]
        keys = {(r.play, r.host, r.check) for r in fresh}
        older = [r for r in self._refused_states if (r.play, r.host, r.check) not in keys]
        batch = Batch(self._results, older + fresh)
        self._results, self._states, self._refused_states = [], {}, []
        return batch

    def put_back(self, batch: Batch) -> None:
        """A batch the store refused: written with the next one (oldest results dropped past
        ``max_buffered``; state rows newer than the batch's win)."""
        if not batch:
            return
        self._results = [*batch.results, *self._results][-self.max_buffered:]
        self._refused_states = [*batch.states, *self._refused_states]
        if self._timer is None:
            self._timer = asyncio.get_running_loop().call_later(RETRY_DELAY, self._start_write)

    def write(self, batch: Batch, tx: Any = None) -> None:
        """Store thread: write ``batch`` in ``tx``, or in a transaction of its own."""
        if not batch:
            return
        if tx is None:
            with self.store.transaction() as own:
                self.write(batch, own)
            return
        tx.record_results(batch.results)
        tx.save_check_states(batch.states)
        self.batches_written += 1
        self.rows_written += len(batch.results)

    def _start_write(self) -> None:
        self._timer = None
        batch = self.take()
        if not batch:
            return
        fut = asyncio.ensure_future(self.submit(self.write, batch))
        self._writing.add(fut)
        fut.add_done_callback(lambda f: self._written(f, batch))

    def _written(self, fut: asyncio.Future[Any], batch: Batch) -> None:
        self._writing.discard(fut)
        if not fut.cancelled() and fut.exception() is not None:
            exc = fut.exception()
            log.warning("a batch of %d check results could not be stored (%s); it is kept and retried",
                        len(batch.results), str(getattr(exc, "orig", exc)).splitlines()[0] if exc else "")
            self.put_back(batch)

    async def flush(self) -> None:
        """Write everything buffered now and wait until every batch started so far is stored."""
        self._start_write()
        if self._writing:
            await asyncio.gather(*list(self._writing), return_exceptions=True)

    @property
    def pending(self) -> Sequence[Mapping[str, Any]]:
        """The buffered result rows (for tests and metrics)."""
        return tuple(self._results)
