"""The resident agent's task running: remediation, scheduled playbooks, the budget's handover.

Every task goes through :class:`~agent.engine.play_runner.PlayRunner` and lands in the audit
trail; remediations run under the guard's budget, cooldown and single-flight locks.
"""
from __future__ import annotations

import logging
from collections.abc import Mapping, Sequence
from datetime import UTC, datetime
from typing import Any

from agent.engine.evaluator import Transition
from agent.engine.play_runner import PlayRunner, TaskOutcome
from agent.engine.status_records import check_vars

log = logging.getLogger("agent")


class TaskRunning:
    """Mixin of :class:`~agent.engine.resident.ResidentAgent` (uses its store, config, guard)."""

    source: Any
    config: Any
    store: Any
    notifications: Any
    outbox: Any
    guard: Any
    statuses: dict[str, Any]
    check_mode: bool
    lock_dir: Any
    db: Any

    async def _remediate(self, bc: Any, tr: Transition) -> None:
        assert self.guard is not None
        for name in bc.check.remediate:
            remediation = bc.play.remediations[name]
            reason = f"{bc.key} went {tr.new.name}" + (f": {tr.observation.error}" if tr.observation.error else "")
            decision = await self.guard.admit(bc, name, remediation, tr.at)
            if not decision.allowed:
                log.warning("remediation %s for %s not run: %s", name, bc.key, decision.reason)
                await self.db(self.store.add_event, "remediation-skipped", bc.key, self.statuses[bc.key].incident_id,
                              f"{name}: {decision.reason}", {})
                if decision.handover:
                    await self._handover(bc, name, decision)
                continue
            async with decision.lock, self.guard.target_lock(bc, name, remediation, owner=f"agent: {name} for "
                                                              f"{bc.key}"):
                started = datetime.now(UTC)
                recap = await self._run_steps(bc, name, remediation.steps, reason, extra_vars=check_vars(bc, tr))
                if any(o.status != "skipped" for o in recap.outcomes):
                    await self.guard.record(bc, name, started)

    async def _run_steps(self, bc: Any, name: str, steps: Sequence[Any], reason: str,
                         play: Any = None, extra_vars: Mapping[str, Any] | None = None) -> Any:
        incident_id = self.statuses[bc.key].incident_id if bc.key in self.statuses else None
        return await self._run_tasks(play or bc.play, [bc.host], steps, reason, label=f"{name}: ",
                                     incident_id=incident_id, extra_vars=extra_vars)

    async def _run_tasks(self, play: Any, hosts: Sequence[Any], tasks: Sequence[Any], reason: str, *,
                         label: str = "", incident_id: int | None = None, actor: str = "agent",
                         extra_vars: Mapping[str, Any] | None = None) -> Any:
        """Run tasks through the play runner; every task lands in the audit trail."""

        async def audit(o: TaskOutcome, started: datetime, finished: datetime, params: Mapping[str, Any]) -> None:
            await self.db(self.store.record_action_run, dict(
                incident_id=incident_id, play=play.name, host=o.host, task=f"{label}{o.task}",
                module=o.module or "", params=params, reason=reason, actor=actor,
                check_mode=o.check_mode, changed=o.status == "changed", failed=o.status == "failed",
                msg=o.msg, started_at=started, finished_at=finished))

        runner = PlayRunner(self.source.registry,
                            self.config.templating, check_mode=self.check_mode, notifier=self.notifications,
                            audit=audit, reason=reason)
        return await runner.run(play, hosts, extra_vars=extra_vars, tasks=tasks)

    async def _run_scheduled_play(self, play: Any) -> None:
        """A playbook's schedule fired: run its tasks like an operator would (audited, locked)."""
        from agent.engine.locks import operator_lock_targets, target_locks

        hosts = self.config.hosts_of(play)
        reason = f"schedule of playbook {play.name}"
        targets = [] if self.check_mode else operator_lock_targets(self.config, play, hosts)
        async with target_locks(self.lock_dir, targets, owner=f"agent: scheduled {play.name}"):
            recap = await self._run_tasks(play, hosts, play.tasks, reason, actor="agent (schedule)")
        failed = [o for o in recap.outcomes if o.status == "failed"]
        await self.db(self.store.add_event, "scheduled-play", None, None,
                      f"{play.name}: {'failed' if failed else 'ok'}", {"play": play.name, "failed": len(failed)})
        if failed:
            body = "\n".join(f"- {o.host}: {o.task}: {o.msg}" for o in failed)
            await self.db(lambda: self.notifications.notice(
                None, title=f"[FAILED] scheduled playbook {play.name}", body=body, severity="warning",
                play=play.name, host=", ".join(h.name for h in hosts)))

    async def _handover(self, bc: Any, name: str, decision: Any) -> None:
        """Past the budget: run the named playbook (e.g. emergency) once and page a human."""
        then = decision.handover
        play = self.config.playbooks.get(then)
        reason = f"restart budget of {name} for {bc.key} exhausted: {decision.reason}"
        if play is not None:
            assert self.guard is not None
            async with self.guard.tasks_lock(bc, play.tasks, owner=f"agent: handover {then} for {bc.key}"):
                await self._run_steps(bc, f"handover:{then}", play.tasks, reason, play=play,
                                      extra_vars={"reason": reason})
        await self.db(self.notifications.page, bc, reason)
