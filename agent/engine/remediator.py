"""The remediator: what the agent does about a problem, under its guards.

It listens to the result pipeline's stored decisions and remediates a check that names
``remediate:`` when:

* its hard state turns into a problem (or changes between problems);
* the problem happened again without a state change (a *recurrence*: a restarted program that
  died before any check saw it running): every exit of a new process is a new crash;
* a standing problem must be looked at again: after an agent restart, or when the check settled
  from flapping into it.

First the steps' ``when`` decide whether the remediation applies to this problem at all: when
every step would be skipped (restart-bot's step reads a deliberate ``supervisorctl stop`` as not
a crash), nothing runs and nothing is counted, and the guard is not asked, so a spent budget
never hands a deliberate stop over to the emergency playbook. Then each remediation is admitted
by the guard (:mod:`agent.engine.remediation`): the budget (past
it: the ``then`` playbook runs once and a human is paged), the cooldown (refused now: decided
again when it ends, if the problem is still there: nothing is dropped), single flight per
target. A run waits for the target's lock and then looks again: a problem fixed meanwhile (by
the run it waited for, or by an operator) is not remediated twice. A check that is FLAPPING has
its remediation paused until it settles.
"""
from __future__ import annotations

import asyncio
import logging
import time
import uuid
from collections.abc import Callable, Mapping, Sequence
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

from agent.core.values import format_duration
from agent.engine import flapping
from agent.engine.evaluator import CheckStatus, Observation
from agent.engine.internal_errors import costs
from agent.engine.locks import LockTimeout
from agent.engine.play_runner import TaskOutcome
from agent.engine.remediation import Decision as Admission
from agent.engine.remediation import RemediationGuard
from agent.engine.store_thread import StoreThread, describe_store_error
from agent.engine.task_runner import TaskRunner
from agent.notify.lifecycle.remediation_notes import (
    OUTCOME_EVENT,
    PAGED,
    SPENT_BEFORE,
    STARTED_EVENT,
    THIS_AGENT,
    UNCHANGED,
)
from agent.notify.routing import RoutedMessage

if TYPE_CHECKING:
    from agent.engine.direct_alerts import DirectAlerts
    from agent.engine.live_config import LiveConfig
    from agent.engine.pipeline import Decision
    from agent.notify import Notifications
    from agent.playbook.binding import BoundCheck
    from agent.playbook.models import Remediation
    from agent.store import Store


START_RECORD_WAIT_S = 0.5
"""How long a remediation waits for the record of its start before its steps act."""

log = logging.getLogger("agent")

DEFER_SLACK_S = 0.05
"""A deferred decision runs this long after the cooldown ends, so the guard sees it ended."""


def check_vars(bc: BoundCheck, state: str, previous: str, obs: Observation | None) -> dict[str, Any]:
    """What remediation steps see as ``check``: the check that fired and what it observed."""
    return {"check": {"name": bc.check.name, "key": bc.key, "play": bc.play.name, "state": state,
                      "previous_state": previous, "value": obs.value if obs else None,
                      "error": obs.error if obs else None, "facts": dict(obs.facts) if obs else {}}}


class Remediator:
    """Decides and runs remediations (see the module docstring). Event loop only."""

    def __init__(self, *, config: LiveConfig, guard: RemediationGuard, tasks: TaskRunner, store: Store,
                 store_thread: StoreThread, notifications: Notifications,
                 status: Callable[[str], CheckStatus | None],
                 last_observation: Callable[[str], Observation | None], direct: DirectAlerts | None = None,
                 recorded: Callable[[], None] = lambda: None) -> None:
        """``recorded()`` is called on the event loop after each event is stored (the alert loop's
        wake: a first alert waiting for this remediation's outcome goes out as soon as it is in,
        not at the lifecycle's next look)."""
        self._config = config
        self._recorded = recorded
        self._guard = guard
        self._tasks = tasks
        self._store = store
        self._thread = store_thread
        self._notifications = notifications
        self._status = status
        self._last_observation = last_observation
        self._direct = direct
        self._running: set[asyncio.Task[None]] = set()
        self._deferred: dict[tuple[str, str], asyncio.TimerHandle] = {}
        self.runs_started = 0
        """Remediation runs started (for tests and the log)."""

    # -- the pipeline's listener ---------------------------------------------------------------
    def on_decision(self, decision: Decision) -> None:
        bc = decision.bc
        if not bc.check.remediate:
            return
        status, obs = decision.status, decision.obs
        tr = decision.transition
        if tr is not None:
            if not tr.new.is_problem:
                self._cancel_deferred(bc.key)
                self._spawn(self._guard.recovered(bc), bc.key)
                return
            why = f"{bc.key} went {tr.new.name}" + (f": {obs.error}" if obs.error else "")
            vars_ = check_vars(bc, tr.new.name, tr.old.name, obs)
        elif decision.recurrence is not None:
            why = f"{bc.key} {decision.recurrence}"
            vars_ = check_vars(bc, status.hard.name, status.hard.name, obs)
        elif decision.again is not None:
            log.warning("%s: still %s %s; remediation decides again", bc.key, status.hard.name, decision.again)
            why = f"{bc.key} still {status.hard.name} {decision.again}"
            vars_ = check_vars(bc, status.hard.name, status.hard.name, obs)
        else:
            return
        if flapping.is_flapping(status.extra):
            self._spawn(self._event("remediation-paused", bc, status.incident_id,
                                    "remediation paused: the check is flapping"), bc.key)
            return
        self._spawn(self._remediate(bc, why, vars_, list(bc.check.remediate), status.incident_id), bc.key)

    # -- running -------------------------------------------------------------------------------
    def _spawn(self, coro: Any, key: str) -> None:
        task = asyncio.get_running_loop().create_task(coro, name=f"remediate:{key}")
        self._running.add(task)
        task.add_done_callback(self._done)

    def _done(self, task: asyncio.Task[None]) -> None:
        self._running.discard(task)
        if not task.cancelled() and task.exception() is not None:
            log.error("remediation task %s failed", task.get_name(), exc_info=task.exception(), extra=costs(
                "a remediation ended in an error: what it did may be neither recorded nor told"))

    async def _remediate(self, bc: BoundCheck, why: str, vars_: Mapping[str, Any], names: Sequence[str],
                         decided_for: int | None = None) -> None:
        """``decided_for``: the incident of the decision (its status when it was stored). What is
        recorded belongs to it even when the problem ended meanwhile: a bot that supervisord's own
        autorestart had running again before the agent's start decided found the incident already
        resolved, its outcome was recorded on no incident, and the crash was never told."""
        incident_id = decided_for or self._incident(bc.key)
        for name in names:
            remediation = bc.play.remediations[name]
            # The steps' `when` decides first: a problem they do not apply to (a deliberate
            # `supervisorctl stop`) is not the remediation's business, so neither its budget (past
            # which it would hand over to the emergency and flatten) nor its cooldown may speak.
            skipped = self._tasks.skipped_before_running(bc.play, bc.host, remediation.steps, vars_)
            if skipped is not None:
                await self._nothing_to_do(bc, name, skipped, vars_, incident_id)
                continue
            # Admitted holding the target's lock, so a run under way is counted before the
            # budget and the cooldown decide (they are recorded when a run ends).
            async with self._guard.lock_for(bc, name, remediation):
                admission = await self._guard.admit(bc, name, remediation)
                if admission.allowed:
                    await self._run_admitted(bc, name, remediation, why, vars_, incident_id)
                    continue
            await self._refused(bc, name, admission, incident_id)

    async def _run_admitted(self, bc: BoundCheck, name: str, remediation: Remediation, why: str,
                            vars_: Mapping[str, Any], incident_id: int | None) -> None:
        """Run an admitted remediation (the caller holds the target's single-flight lock)."""
        try:
            await self._run_locked(bc, name, remediation, why, vars_, incident_id)
        except LockTimeout as exc:
            # An operator's run holds the program past the wait: not a bug (no "[AGENT] internal
            # error"), a remediation not run, told as its outcome (urgent: the problem is not fixed).
            line = f"{name}: not run: {exc}"
            log.warning("remediation %s for %s not run: %s", name, bc.key, exc)
            await self._event(OUTCOME_EVENT, bc, incident_id, line, {"outcome": "refused", "remediation": name})

    async def _run_locked(self, bc: BoundCheck, name: str, remediation: Remediation, why: str,
                          vars_: Mapping[str, Any], incident_id: int | None) -> None:
        async with self._guard.tasks_lock(bc, remediation.steps, owner=f"agent: {name} for {bc.key}"):
            status = self._status(bc.key)
            if status is None or not status.hard.is_problem:  # fixed while we waited for the target
                line = f"{name}: not run, {bc.check.name} is {status.hard.name if status else 'gone'} again"
                await self._event("remediation-not-needed", bc, incident_id, line)
                await self._event(OUTCOME_EVENT, bc, incident_id, line,
                                  {"outcome": "not-needed", "remediation": name})
                return
            started_mono, started_at = time.monotonic(), datetime.now(UTC)
            self.runs_started += 1
            run = uuid.uuid4().hex[:12]  # pairs this run's outcome with its start (runs may overlap)
            # Recorded before the steps act, waiting START_RECORD_WAIT_S at most: an agent killed
            # during the restart leaves the record its successor tells the crash by (without it
            # the crash, fixed by the dead agent's restart, looked as if it had gone away by
            # itself and was never told: agent-killed-mid-remediation, seed 3185427286). While
            # the store is locked the restart does not wait longer for this audit; it lands later.
            started = self._event_soon(STARTED_EVENT, bc, incident_id, f"{name}: running since "
                                       f"{started_at.strftime('%H:%M:%S UTC')}",
                                       {"remediation": name, "run": run, "agent": THIS_AGENT})
            await asyncio.wait({started}, timeout=START_RECORD_WAIT_S)
            recap = await self._tasks.run(bc.play, [bc.host], remediation.steps, why, label=f"{name}: ",
                                          incident_id=incident_id, extra_vars=vars_)
            outcome, line = run_outcome(name, recap.outcomes, time.monotonic() - started_mono)
            runs = None
            # A run that changed nothing (its steps skipped, or every one ``ok``: the bot already
            # starting, supervisord's own retry under way) restarted nothing: it is not one of the
            # budget's runs, which hand over to the emergency (flatten) when spent.
            if outcome != "nothing":
                runs = await self._guard.record(bc, name, started_mono, started_at)
            if outcome == "nothing":
                line += _what_it_saw(bc, vars_)
            if runs is not None and remediation.budget is not None:
                line += f" (run {runs} of {remediation.budget.max} within {format_duration(remediation.budget.within)})"
            # the crash loop being handled (folded): every step ran and found its work done; a step
            # skipped (its `when` false: the restart did not apply) beside a read-only one that
            # answered is a recurrence the agent did nothing about, told
            unchanged = outcome == "nothing" and bool(recap.outcomes) and all(o.status == "ok" for o in recap.outcomes)
            await self._event(OUTCOME_EVENT, bc, incident_id, line,
                              {"outcome": outcome, "remediation": name, "run": run, **({UNCHANGED: True} if unchanged
                                                                                       else {})})

    async def _nothing_to_do(self, bc: BoundCheck, name: str, skipped: Sequence[TaskOutcome],
                             vars_: Mapping[str, Any], incident_id: int | None) -> None:
        """No step of ``name`` applies to this problem: nothing runs, nothing is counted."""
        _outcome, line = run_outcome(name, skipped, 0.0)
        line += _what_it_saw(bc, vars_)
        log.info("remediation %s for %s not run: %s", name, bc.key, line)
        await self._event(OUTCOME_EVENT, bc, incident_id, line, {"outcome": "nothing", "remediation": name})

    async def _refused(self, bc: BoundCheck, name: str, admission: Admission, incident_id: int | None) -> None:
        log.warning("remediation %s for %s not run: %s", name, bc.key, admission.reason)
        detail = admission.reason
        outcome = "refused"
        if admission.retry_in is not None:
            detail = (f"cooling down until {_clock_in(admission.retry_in)}"
                      + (f" ({admission.runs} of {admission.budget_max} runs used)" if admission.budget_max else "")
                      + "; decided again then if the problem lasts")
            outcome = "deferred"
            self._defer(bc.key, name, admission.retry_in)
        elif admission.handover:
            detail += f"; handed over to playbook {admission.handover} and a human paged"
            outcome = "handed-over"
        await self._event("remediation-skipped", bc, incident_id, f"{name}: {detail}")
        data: dict[str, Any] = {"outcome": outcome, "remediation": name}
        if admission.spent_before:
            data[SPENT_BEFORE] = True  # told once already (the hand-over's page, or its first refusal)
        if admission.handover and self._notifications.page_targets(bc):
            # told by the hand-over's page (the playbook's own, or the agent's); a page route that
            # reaches nobody (its targets optional and unset) tells nothing: the update does
            data[PAGED] = True
        # Recorded before the hand-over runs: an agent killed during the emergency (seconds of
        # flatten) left the crash that spent the budget without an answer, and the next agent
        # told it as an update before the resumed emergency had silenced the check
        # (agent-killed-mid-handover, seed 2010257165).
        await self._event(OUTCOME_EVENT, bc, incident_id, f"{name} not run: {detail}", data)
        if admission.handover:
            await self._handover(bc, name, admission, incident_id)

    def _defer(self, key: str, name: str, delay: float) -> None:
        """Decide ``name`` for ``key`` again when its cooldown ends (once per pair)."""
        if (key, name) in self._deferred:
            return
        loop = asyncio.get_running_loop()
        self._deferred[(key, name)] = loop.call_later(delay + DEFER_SLACK_S, self._deferred_due, key, name)

    def _deferred_due(self, key: str, name: str) -> None:
        self._deferred.pop((key, name), None)
        bc = self._config.check(key)
        status = self._status(key)
        if bc is None or name not in bc.check.remediate or status is None or not status.hard.is_problem:
            return  # reloaded away, or the problem is over
        if flapping.is_flapping(status.extra):
            return  # settling decides again
        obs = self._last_observation(key)
        why = f"{key} still {status.hard.name} when the cooldown of {name} ended"
        self._spawn(self._remediate(bc, why, check_vars(bc, status.hard.name, status.hard.name, obs), [name]), key)

    def _cancel_deferred(self, key: str) -> None:
        for pair in [p for p in self._deferred if p[0] == key]:
            self._deferred.pop(pair).cancel()

    async def _handover(self, bc: BoundCheck, name: str, admission: Admission, incident_id: int | None) -> None:
        """Past the budget: run the named playbook (e.g. emergency) once and page a human."""
        then = admission.handover
        assert then is not None
        play = self._config.current.playbooks.get(then)
        reason = f"{name} for {bc.key}: {admission.reason}"
        told: set[str] = set()
        if play is not None:
            # The hand-over is recorded as told by its page (PAGED) before this runs: whatever
            # stops the playbook (its target's lock held past the wait, a bug), the page goes out.
            try:
                async with self._guard.tasks_lock(bc, play.tasks, owner=f"agent: handover {then} for {bc.key}"):
                    recap = await self._tasks.run(play, [bc.host], play.tasks, reason, label=f"handover:{then}: ",
                                                  incident_id=incident_id, extra_vars={"reason": reason},
                                                  record=True)
                told = paged_by(recap.outcomes)
            except LockTimeout as exc:
                log.error("hand-over playbook %s for %s did not run: %s", then, bc.key, exc)
                reason += f"; playbook {then} did not run: {exc}"
            except Exception as exc:
                log.exception("hand-over playbook %s for %s failed", then, bc.key, extra=costs(
                    f"the hand-over playbook {then} did not run to its end (the page says so)"))
                reason += f"; playbook {then} did not run to its end: {type(exc).__name__}: {exc}"
        page_targets = self._notifications.page_targets(bc)
        if page_targets and page_targets <= told:
            # The playbook's own message (the emergency's page, which quotes `reason`) reached
            # every target the page would: one page, not two.
            await self._event("page", bc, incident_id,
                              f"paged by playbook {then}'s own message (to {', '.join(sorted(page_targets))})")
            return
        try:
            await self._thread.call(self._notifications.page, bc, reason)
        except Exception as exc:  # noqa: BLE001 - the store cannot take it: the page goes out directly
            log.error("page for %s not queued (%s); sending it directly", bc.key, describe_store_error(exc))
            if self._direct is not None:
                self._direct.deliver(
                    f"[PAGE] {bc.play.name} on {bc.host.name}: a human is needed",
                    f"{reason}\n\nSent directly: the agent cannot write its own database "
                    f"({describe_store_error(exc)}).", "critical",
                    RoutedMessage("critical", bc.host.name, bc.play.name, tags=("p0",)))

    async def _event(self, kind: str, bc: BoundCheck, incident_id: int | None, text: str,
                     data: Mapping[str, Any] | None = None) -> None:
        try:
            await self._thread.call(self._store.add_event, kind, bc.key, incident_id, text, dict(data or {}))
        except Exception as exc:  # noqa: BLE001 - audit is best effort while the store is in trouble
            log.error("%s event for %s not stored: %s", kind, bc.key, describe_store_error(exc))
            return
        self._recorded()

    def _event_soon(self, kind: str, bc: BoundCheck, incident_id: int | None, text: str,
                    data: Mapping[str, Any] | None = None) -> asyncio.Future[Any]:
        """:meth:`_event` queued on the store thread now, without waiting for it (returned: to
        wait for it a bounded while)."""
        fut = self._thread.submit(self._store.add_event, kind, bc.key, incident_id, text, dict(data or {}))

        def _stored(f: asyncio.Future[Any]) -> None:
            exc = None if f.cancelled() else f.exception()
            if exc is not None:
                log.error("%s event for %s not stored: %s", kind, bc.key, describe_store_error(exc))

        fut.add_done_callback(_stored)
        return fut

    def _incident(self, key: str) -> int | None:
        status = self._status(key)
        return status.incident_id if status is not None else None

    # -- shutdown ------------------------------------------------------------------------------
    async def close(self, grace: float = 5.0) -> None:
        """Cancel deferred decisions; give running remediations ``grace`` seconds, then cancel."""
        for handle in self._deferred.values():
            handle.cancel()
        self._deferred.clear()
        tasks = list(self._running)
        if tasks:
            _done, pending = await asyncio.wait(tasks, timeout=grace)
            for t in pending:
                t.cancel()
            await asyncio.gather(*pending, return_exceptions=True)


def run_outcome(name: str, outcomes: Sequence[TaskOutcome], seconds: float) -> tuple[str, str]:
    """What a finished run of remediation ``name`` did, as (outcome, the operator's line). A run
    whose steps all ran and changed nothing (``ok``: the halt already recorded, the bot already
    running) did ``nothing``: it is no news for an update (a run again after an agent restart,
    the problem still standing, told "already recorded" as if it were an action)."""
    failed = [o for o in outcomes if o.status == "failed"]
    acted = [o for o in outcomes if o.status in ("changed", "ok", "ignored")]
    if failed:
        return "failed", f"{name} failed after {_took(seconds)}: " + "; ".join(f"{o.task}: {o.msg}" for o in failed)
    if not acted:
        skipped = "; ".join(f"{o.task}: {o.msg}" for o in outcomes) or "no steps"
        return "nothing", f"{name}: nothing done, its steps do not apply ({skipped})"
    ignored = [o for o in acted if o.status == "ignored"]
    if ignored and not any(o.status == "changed" for o in acted):
        # every step that acted failed (``ignore_errors`` let the run go on), the others only found
        # their work done (a read, a halt already recorded): nothing was done
        return "failed", (f"{name} failed after {_took(seconds)} (errors ignored): "
                          + "; ".join(f"{o.task}: {o.msg}" for o in ignored))
    said = "; ".join(f"{o.task} failed (ignored): {o.msg}" if o.status == "ignored" else o.msg or o.task
                     for o in acted)
    if all(o.status == "ok" for o in acted):
        return "nothing", f"{name}: nothing to change ({said})"
    return "done", f"{name}: {said} in {_took(seconds)}"


def _took(seconds: float) -> str:
    """How long a run took, as the operator reads it: ``12ms`` (a restart that does not wait for
    supervisord's ``startsecs``: "0.0s" said nothing), ``2.4s``."""
    return format_duration(seconds) if seconds < 1 else f"{seconds:.1f}s"


def _what_it_saw(bc: BoundCheck, vars_: Mapping[str, Any]) -> str:
    """``; CHECK saw STATE`` when the check's facts name a state (a supervisor check: STOPPED)."""
    seen = (vars_.get("check") or {}).get("facts", {}).get("state")
    return f"; {bc.check.name} saw {seen}" if seen else ""


def paged_by(outcomes: Sequence[TaskOutcome]) -> set[str]:
    """The targets a run's ``notify`` tasks queued a message for (or found already sent by the
    run cut short this run finishes)."""
    out: set[str] = set()
    for o in outcomes:
        if o.module == "notify" and o.status in ("ok", "changed") and (o.data.get("queued") or o.data.get("already_sent")):
            out.update(str(t) for t in o.data.get("targets") or ())
    return out


def _clock_in(seconds: float) -> str:
    return datetime.fromtimestamp(time.time() + seconds, UTC).strftime("%H:%M:%S UTC")
