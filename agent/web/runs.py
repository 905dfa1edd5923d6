"""Plays an operator runs from the page, through :func:`agent.engine.operator_run.run_play_once`
(the code of ``agent run-playbook``): the same modules, target locks, audit trail (actor
``web:<user>``) and delivery. Each run's lines are kept here for its page (the last
``KEPT_RUNS`` runs, in this process only; the audit trail keeps them for good).
"""
from __future__ import annotations

import asyncio
import itertools
import logging
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

log = logging.getLogger("agent.web")
KEPT_RUNS = 20


@dataclass
class PlayRun:
    id: int
    play: str
    hosts: list[str]
    check_mode: bool
    actor: str
    started_at: datetime
    lines: list[tuple[str, str]] = field(default_factory=list)
    recap: list[tuple[str, str]] = field(default_factory=list)
    finished_at: datetime | None = None
    failed: bool = False
    error: str | None = None

    @property
    def done(self) -> bool:
        return self.finished_at is not None


class PlayRuns:
    def __init__(self, store_url: str, *, on_finished: Callable[[PlayRun], None] | None = None) -> None:
        """``on_finished(run)``: called when a run ends (the page re-reads what it changed)."""
        self.store_url = store_url
        self._on_finished = on_finished
        self._runs: OrderedDict[int, PlayRun] = OrderedDict()
        self._ids = itertools.count(1)
        self._tasks: set[asyncio.Task[None]] = set()
        self.changed = asyncio.Condition()

    def get(self, run_id: int) -> PlayRun | None:
        return self._runs.get(run_id)

    def start(self, config: Any, play: Any, hosts: list[Any], *, check_mode: bool, actor: str) -> PlayRun:
        run = PlayRun(next(self._ids), play.name, [h.name for h in hosts], check_mode, actor, datetime.now(UTC))
        self._runs[run.id] = run
        while len(self._runs) > KEPT_RUNS:
            self._runs.popitem(last=False)
        task = asyncio.get_running_loop().create_task(self._run(run, config, play, hosts), name=f"play:{play.name}")
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)
        return run

    async def _notify(self) -> None:
        async with self.changed:
            self.changed.notify_all()

    async def _run(self, run: PlayRun, config: Any, play: Any, hosts: list[Any]) -> None:
        from agent.engine.operator_actions import outcome_line, recap_lines
        from agent.engine.operator_run import run_play_once

        loop = asyncio.get_running_loop()

        def on_outcome(outcome: Any) -> None:
            run.lines.append(outcome_line(outcome))
            task = loop.create_task(self._notify())
            self._tasks.add(task)
            task.add_done_callback(self._tasks.discard)

        try:
            recap = await run_play_once(config, play, hosts, check_mode=run.check_mode, on_outcome=on_outcome,
                                        store_url=self.store_url, actor=run.actor)
            run.recap = recap_lines(recap)
            run.failed = bool(recap.failed)
        except Exception as exc:
            log.exception("play %s run from the web page failed", play.name)
            run.error, run.failed = f"{type(exc).__name__}: {exc}", True
        finally:
            run.finished_at = datetime.now(UTC)
            if self._on_finished is not None:
                try:
                    self._on_finished(run)
                except Exception:  # the run is over whatever the page does about it
                    log.exception("after the run of %s", play.name)
            await self._notify()

    async def wait_changed(self, timeout: float) -> None:
        async with self.changed:
            try:
                await asyncio.wait_for(self.changed.wait(), timeout)
            except TimeoutError:
                pass

    async def close(self) -> None:
        """Wait for runs in progress (a half-done emergency must not be cut off by a page restart)."""
        if self._tasks:
            await asyncio.gather(*self._tasks, return_exceptions=True)
