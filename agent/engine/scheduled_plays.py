"""Run the tasks of scheduled playbooks on their schedule (daily report, backup, maintenance).

A playbook's ``schedule`` drives its checks (those without their own ``every``) *and* its
``tasks``. Checks are the scheduler's business (:mod:`agent.engine.scheduler`); this module adds
one APScheduler job per playbook that has both a schedule and tasks, on the same scheduler.

Semantics an operator can rely on:
* an interval schedule first runs the tasks one interval after the agent starts (not at once:
  a restart loop of the agent must not become a loop of backups);
* a run never overlaps the previous run of the same playbook (a late run is skipped, counted);
* runs missed while the agent was down are not caught up (APScheduler's memory job store),
  except that a run up to ``MISFIRE_GRACE_SECONDS`` late still happens;
* destructive plays (``confirm:``) run unattended only because their playbook schedules them.
"""
from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable, Mapping
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING, Any

from apscheduler.triggers.interval import IntervalTrigger

from agent.engine.internal_errors import costs
from agent.engine.locks import operator_lock_targets, target_locks
from agent.engine.store_thread import StoreThread
from agent.engine.task_runner import TaskRunner

if TYPE_CHECKING:
    from agent.engine.live_config import LiveConfig
    from agent.notify import Notifications
    from agent.playbook.models import Playbook
    from agent.store import Store

log = logging.getLogger("agent.scheduled_plays")

JOB_PREFIX = "tasks:"
MISFIRE_GRACE_SECONDS = 300

RunPlay = Callable[[Any], Awaitable[None]]


def has_scheduled_tasks(play: Any) -> bool:
    sched = getattr(play, "schedule", None)
    return bool(getattr(play, "tasks", None)) and sched is not None and bool(sched.every or sched.cron)


class ScheduledPlays:
    """Owns the task jobs on a running APScheduler instance."""

    def __init__(self, apscheduler: Any, run_play: RunPlay) -> None:
        self._apscheduler = apscheduler
        self._run_play = run_play
        self._plays: dict[str, Any] = {}

    def install(self, playbooks: Mapping[str, Any]) -> list[str]:
        """(Re)install one job per scheduled playbook with tasks; returns their names."""
        for job in self._apscheduler.get_jobs():
            if job.id.startswith(JOB_PREFIX):
                job.remove()
        self._plays = {name: p for name, p in playbooks.items() if has_scheduled_tasks(p)}
        for name, play in self._plays.items():
            sched = play.schedule
            if sched.cron:
                trigger = sched.trigger()  # weekday numbering handled there (0 = Sunday)
            else:
                trigger = IntervalTrigger(seconds=sched.every, timezone=UTC,
                                          start_date=datetime.now(UTC) + timedelta(seconds=sched.every))
            self._apscheduler.add_job(self._run, trigger=trigger, args=[name], id=JOB_PREFIX + name,
                                      name=f"tasks of {name}", max_instances=1, coalesce=True,
                                      misfire_grace_time=MISFIRE_GRACE_SECONDS, replace_existing=True)
        if self._plays:
            log.info("scheduled the tasks of %s", ", ".join(sorted(self._plays)))
        return sorted(self._plays)

    def next_runs(self) -> dict[str, datetime | None]:
        return {job.id.removeprefix(JOB_PREFIX): job.next_run_time for job in self._apscheduler.get_jobs()
                if job.id.startswith(JOB_PREFIX)}

    async def _run(self, name: str) -> None:
        play = self._plays.get(name)
        if play is None:  # removed by a reload between trigger and run
            return
        try:
            await self._run_play(play)
        except Exception:  # a broken run must not unschedule the playbook
            log.exception("scheduled run of %s failed", name, extra=costs("a scheduled playbook run did not run"))


class ScheduledPlayRunner:
    """What a playbook's schedule runs: its tasks like an operator would (audited, locked), and
    a ``[FAILED] scheduled playbook`` notice when a task fails."""

    def __init__(self, *, config: LiveConfig, tasks: TaskRunner, notifications: Notifications, store: Store,
                 store_thread: StoreThread) -> None:
        self._config = config
        self._tasks = tasks
        self._notifications = notifications
        self._store = store
        self._thread = store_thread

    async def __call__(self, play: Playbook) -> None:
        config = self._config.current
        hosts = config.hosts_of(play)
        reason = f"schedule of playbook {play.name}"
        targets = [] if self._tasks.check_mode else operator_lock_targets(config, play, hosts)
        async with target_locks(self._config.lock_dir, targets, owner=f"agent: scheduled {play.name}"):
            recap = await self._tasks.run(play, hosts, play.tasks, reason, actor="agent (schedule)", record=True)
        failed = [o for o in recap.outcomes if o.status == "failed"]
        await self._thread.call(self._store.add_event, "scheduled-play", None, None,
                                f"{play.name}: {'failed' if failed else 'ok'}",
                                {"play": play.name, "failed": len(failed)})
        if failed:
            body = "\n".join(f"- {o.host}: {o.task}: {o.msg}" for o in failed)
            await self._thread.call(lambda: self._notifications.notice(
                None, title=f"[FAILED] scheduled playbook {play.name}", body=body, severity="warning",
                play=play.name, host=", ".join(h.name for h in hosts)))
