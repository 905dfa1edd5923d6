"""Store operations: play runs (their start, each finished task, their end, and who handled a
run cut short). See :mod:`agent.engine.play_runs`."""
from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from datetime import datetime
from typing import Any

from sqlalchemy import or_, select, update

from agent.store._ops_common import OperationsBase, aware
from agent.store.models import PlayRunRow
from agent.store.records import PlayRunRecord


def _record(row: PlayRunRow) -> PlayRunRecord:
    return PlayRunRecord(
        id=row.id, run=row.run, play=row.play, hosts=tuple(row.hosts or ()), tasks=tuple(row.tasks or ()),
        done=tuple(dict(d) for d in row.done or ()), actor=row.actor, reason=row.reason,
        on_interrupt=row.on_interrupt, owner_host=row.owner_host, owner_pid=row.owner_pid,
        owner_started=row.owner_started, attempt=row.attempt, resumed_from=row.resumed_from,
        started_at=row.started_at, ended_at=row.ended_at, outcome=row.outcome, signal=row.signal,
        handled_at=row.handled_at, handled=row.handled)


def _start_row(*, run: str, play: str, hosts: Sequence[str], tasks: Sequence[str], actor: str, reason: str,
               on_interrupt: str, owner_host: str, owner_pid: int, owner_started: float, started_at: datetime,
               attempt: int = 1, resumed_from: str | None = None) -> PlayRunRow:
    return PlayRunRow(run=run, play=play, hosts=list(hosts), tasks=list(tasks), done=[], actor=actor, reason=reason,
                      on_interrupt=on_interrupt, owner_host=owner_host, owner_pid=owner_pid,
                      owner_started=owner_started, attempt=attempt, resumed_from=resumed_from,
                      started_at=aware(started_at))


class PlayRunOperations(OperationsBase):
    """Play runs, written by whoever runs a play and read by the resident agent's sweep."""

    def start_play_run(self, *, run: str, play: str, hosts: Sequence[str], tasks: Sequence[str], actor: str,
                       reason: str, on_interrupt: str, owner_host: str, owner_pid: int, owner_started: float,
                       started_at: datetime, attempt: int = 1, resumed_from: str | None = None) -> None:
        """Record that a run starts (before its first task acts)."""
        with self._session() as s:
            s.add(_start_row(run=run, play=play, hosts=hosts, tasks=tasks, actor=actor, reason=reason,
                             on_interrupt=on_interrupt, owner_host=owner_host, owner_pid=owner_pid,
                             owner_started=owner_started, started_at=started_at, attempt=attempt,
                             resumed_from=resumed_from))

    def play_run_task_done(self, run: str, entry: Mapping[str, Any]) -> None:
        """Append one finished task (``{host, task, status, msg}``) to the run's record."""
        with self._session() as s:
            row = s.scalars(select(PlayRunRow).where(PlayRunRow.run == run)).first()
            if row is not None:
                row.done = [*(row.done or []), json.loads(json.dumps(dict(entry), default=str))]

    def end_play_run(self, run: str, *, outcome: str, at: datetime, signal: str | None = None) -> None:
        """Record how the run ended (``done``, ``failed`` or ``interrupted``)."""
        with self._session() as s:
            s.execute(update(PlayRunRow).where(PlayRunRow.run == run)
                      .values(outcome=outcome, ended_at=aware(at), signal=signal))

    def play_runs_to_look_at(self, limit: int = 100) -> list[PlayRunRecord]:
        """Runs nobody handled that did not end, or ended interrupted (oldest first)."""
        with self._session() as s:
            rows = s.scalars(select(PlayRunRow).where(
                PlayRunRow.handled_at.is_(None),
                or_(PlayRunRow.ended_at.is_(None), PlayRunRow.outcome == "interrupted"))
                .order_by(PlayRunRow.id).limit(limit)).all()
            return [_record(r) for r in rows]

    def claim_play_run(self, run: str, *, at: datetime, handled: str,
                       then_start: Mapping[str, Any] | None = None) -> bool:
        """Take a run cut short to handle it; False when someone else did already.

        ``then_start`` (the :meth:`start_play_run` arguments of its run again) records the run
        again's start in the same transaction: a run claimed is never left without one (the
        agent killed before its run again began, waiting for a lock: nobody finished or told it)."""
        with self._session() as s:
            result = s.execute(update(PlayRunRow).where(PlayRunRow.run == run, PlayRunRow.handled_at.is_(None))
                               .values(handled_at=aware(at), handled=handled))
            claimed = bool(getattr(result, "rowcount", 0))
            if claimed and then_start is not None:
                s.add(_start_row(**then_start))
            return claimed

    def note_play_run_handled(self, run: str, handled: str) -> None:
        """Say what became of a claimed run (told; resumed as run X and how that ended)."""
        with self._session() as s:
            s.execute(update(PlayRunRow).where(PlayRunRow.run == run).values(handled=handled))

    def play_runs(self, *, limit: int = 50) -> list[PlayRunRecord]:
        """The newest runs, newest first."""
        with self._session() as s:
            return [_record(r) for r in s.scalars(select(PlayRunRow).order_by(PlayRunRow.id.desc()).limit(limit))]
