"""Run a list of tasks the way the resident agent does: through the play runner, audited.

Remediations, the budget's hand-over and scheduled playbooks all run their tasks here. Every
task lands in the audit trail (``action_runs``) with its actor and reason; a store that cannot
be written does not stop a task (the audit row is logged as lost instead): the guard acts even
when its own database is in trouble.
"""
from __future__ import annotations

import logging
from collections.abc import Mapping, Sequence
from datetime import datetime
from typing import TYPE_CHECKING, Any

from agent.engine.play_runner import PlayRecap, PlayRunner, StoreSilences, TaskOutcome
from agent.engine.play_runs import RunRecord
from agent.engine.store_thread import StoreThread, describe_store_error
from agent.modules.base import HostContext, Notifier
from agent.modules.registry import Registry

if TYPE_CHECKING:
    from agent.engine.live_config import LiveConfig
    from agent.playbook.models import Playbook
    from agent.store import Store

log = logging.getLogger("agent")


class TaskRunner:
    """Runs tasks for the resident agent (see the module docstring)."""

    def __init__(self, *, config: LiveConfig, registry: Registry, store: Store, store_thread: StoreThread,
                 notifier: Notifier, check_mode: bool = False) -> None:
        self._config = config
        self._registry = registry
        self._store = store
        self._thread = store_thread
        self._notifier = notifier
        self.check_mode = check_mode

    async def run(self, play: Playbook, hosts: Sequence[HostContext], tasks: Sequence[Any], reason: str, *,
                  label: str = "", incident_id: int | None = None, actor: str = "agent",
                  extra_vars: Mapping[str, Any] | None = None, record: RunRecord | bool = False) -> PlayRecap:
        """Run ``tasks`` of ``play`` on ``hosts``; every task is audited under ``actor``. ``record``:
        a play run (the hand-over, a scheduled play, a resume; not a remediation's steps) is
        recorded so that one cut short is found (:mod:`agent.engine.play_runs`); ``True`` records
        it under ``actor`` and ``reason`` with the play's ``on_interrupt``."""
        if record is True:
            record = RunRecord(self._store, self._thread.call, actor=actor, reason=reason,
                               on_interrupt=play.on_interrupt)

        async def audit(o: TaskOutcome, started: datetime, finished: datetime, params: Mapping[str, Any]) -> None:
            row = dict(incident_id=incident_id, play=play.name, host=o.host, task=f"{label}{o.task}",
                       module=o.module or "", params=params, reason=reason, actor=actor,
                       check_mode=o.check_mode, changed=o.status == "changed", failed=o.status == "failed",
                       msg=o.msg, started_at=started, finished_at=finished)
            try:
                await self._thread.call(self._store.record_action_run, row)
            except Exception as exc:  # noqa: BLE001 - the task ran; only its audit row is missing
                log.error("audit of task %r (%s) not stored: %s", row["task"], o.status, describe_store_error(exc))

        silences = StoreSilences(self._store, self._thread.call, actor=actor, play=play.name)
        runner = PlayRunner(self._registry, self._config.current.templating, check_mode=self.check_mode,
                            notifier=self._notifier, audit=audit, reason=reason, silences=silences,
                            record=record or None)
        return await runner.run(play, hosts, extra_vars=extra_vars, tasks=tasks)

    def skipped_before_running(self, play: Playbook, host: HostContext, tasks: Sequence[Any],
                               extra_vars: Mapping[str, Any] | None = None) -> list[TaskOutcome] | None:
        """See :meth:`PlayRunner.skipped_before_running` (nothing runs, nothing is audited)."""
        runner = PlayRunner(self._registry, self._config.current.templating, check_mode=self.check_mode)
        return runner.skipped_before_running(play, host, tasks, extra_vars)
