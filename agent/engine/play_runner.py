"""Run a play's task list once, Ansible-style, through the action modules.

Used by ``agent run-playbook`` and by remediations. Per task: ``when`` -> bind params (templates
rendered now, so registered results are visible) -> run with a timeout, ``retries``/``until``/
``delay`` -> ``changed_when``/``failed_when`` -> ``register`` -> ``notify`` handlers on change.
``block``/``rescue``/``always`` behave as in Ansible: a failure in ``block`` runs ``rescue``
(success there recovers the host), ``always`` runs regardless. An unrescued failure stops that
host's remaining tasks (handlers do not run for it). Check mode is passed to every module, which
computes what would change and guards only the side effect. Every outcome and its parameters are
redacted (secret fields masked, known secrets replaced) before they are printed or audited.
"""
from __future__ import annotations

import asyncio
import functools
import logging
import time
from collections.abc import Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING, Any

from agent.core.values import DEFAULT_TASK_TIMEOUT
from agent.modules.base import ActionResult, HostContext, Notifier, RunContext, audit_view
from agent.modules.registry import Registry
from botwarden.errors import BotwardenError

if TYPE_CHECKING:
    from agent.engine.play_runs import RunRecord

log = logging.getLogger("agent.play")


@dataclass(frozen=True)
class TaskOutcome:
    """One task on one host, as the recap and the audit trail see it."""

    host: str
    task: str
    module: str | None
    status: str  # ok | changed | failed | skipped | ignored (failed, ignore_errors)
    msg: str = ""
    attempts: int = 1
    data: Mapping[str, Any] = field(default_factory=dict)
    check_mode: bool = False


@dataclass
class HostRecap:
    ok: int = 0
    changed: int = 0
    failed: int = 0
    skipped: int = 0
    ignored: int = 0
    rescued: int = 0

    def count(self, status: str) -> None:
        setattr(self, status, getattr(self, status) + 1)
        if status == "changed":
            self.ok += 1  # Ansible counts a changed task as ok too


@dataclass
class PlayRecap:
    hosts: dict[str, HostRecap] = field(default_factory=dict)
    outcomes: list[TaskOutcome] = field(default_factory=list)
    interrupted: str | None = None
    """The signal that stopped the run between two tasks (None: it ran to its end)."""
    left: dict[str, list[str]] = field(default_factory=dict)
    """Per host, the play's tasks an interruption left undone."""

    @property
    def failed(self) -> bool:
        return any(r.failed for r in self.hosts.values())


OutcomeCallback = Callable[[TaskOutcome], None]
AuditHook = Callable[[TaskOutcome, datetime, datetime, Mapping[str, Any]], Awaitable[None] | None]
StoreCall = Callable[..., Awaitable[Any]]
SILENCE_WRITE_WAIT_S = 0.5
"""How long a task waits for its ``silence_until_ok`` to be written before it acts anyway (a
locked or full store must not hold an emergency's halt; the alert it meant to hold goes out)."""


class StoreSilences:
    """Writes a task's ``silence_until_ok`` into the agent's store: before the task acts, a
    silence of each check on the host (so an alert of the state it is about to cause is never
    sent first), in force until the check reads OK after the task finished (a reading taken
    while it acts ends nothing). ``call(fn, *args)`` runs a store method on the caller's store
    thread. A store that cannot be written never stops the task: its alert is then sent."""

    def __init__(self, store: Any, call: StoreCall, *, actor: str, play: str) -> None:
        self._store, self._call, self._actor, self._play = store, call, actor, play

    async def begin(self, host: str, task: str, checks: Sequence[tuple[str, str]], started: datetime,
                    longest: float) -> list[int]:
        try:
            return list(await asyncio.wait_for(self._call(functools.partial(
                self._store.silence_until_ok, host=host, checks=checks, reason=f"{self._play}: {task}",
                created_by=self._actor, starts_at=started, ok_after=started + timedelta(seconds=longest))),
                SILENCE_WRITE_WAIT_S))
        except Exception as exc:  # noqa: BLE001 - the task acts anyway; its checks alert as usual
            log.error("silence_until_ok of task %r not stored (its checks will alert): %s", task, exc)
            return []

    async def end(self, ids: Sequence[int], at: datetime) -> None:
        if not ids:
            return
        try:
            await self._call(self._store.silences_ok_after, ids, at)
        except Exception as exc:  # noqa: BLE001 - the silences end at the bound written at begin
            log.error("end of task for silences %s not stored: %s", list(ids), exc)


class _HostFailed(Exception):
    """Internal: a task failed and was not ignored; unwind to the nearest rescue."""


class _Interrupted(Exception):  # not an error: the run was asked to stop
    """Internal: the run was asked to stop (:meth:`PlayRunner.interrupt`); no task starts."""


class PlayRunner:
    """Runs tasks for hosts. One instance per play run."""

    def __init__(
        self,
        registry: Registry,
        templating: Any,
        *,
        check_mode: bool = False,
        notifier: Notifier | None = None,
        on_outcome: OutcomeCallback | None = None,
        audit: AuditHook | None = None,
        reason: str = "",
        task_timeout: float = DEFAULT_TASK_TIMEOUT,
        silences: StoreSilences | None = None,
        record: RunRecord | None = None,
    ) -> None:
        self.registry = registry
        self.templating = templating
        self.check_mode = check_mode
        self.notifier = notifier
        self.on_outcome = on_outcome
        self.audit = audit
        self.reason = reason
        self.task_timeout = task_timeout
        self.silences = silences
        self.record = record
        self._play_name = ""
        self._interrupted: str | None = None

    def interrupt(self, signal: str) -> None:
        """Stop the run between two tasks: the task under way finishes, no other starts (not even
        ``always`` or handlers), and the recap says what was left (:attr:`PlayRecap.left`)."""
        self._interrupted = self._interrupted or signal

    async def run(self, play: Any, hosts: Sequence[HostContext], extra_vars: Mapping[str, Any] | None = None,
                  tasks: Sequence[Any] | None = None) -> PlayRecap:
        """Run ``tasks`` (default: the play's tasks) on every host concurrently."""
        from agent.engine.play_runs import task_names

        recap = PlayRecap()
        task_list = list(play.tasks if tasks is None else tasks)
        names = task_names(task_list)
        self._play_name = str(getattr(play, "name", "") or "")
        if self.record is not None and not self.check_mode:
            await self.record.begin(self._play_name, [h.name for h in hosts], names)

        async def one(host: HostContext) -> None:
            vars_ = self._host_vars(play, host, extra_vars)
            hr = recap.hosts.setdefault(host.name, HostRecap())
            notified: list[str] = []
            at = 0
            try:
                for at, task in enumerate(task_list):
                    await self._run_list([task], host, vars_, hr, recap, notified)
                    if getattr(task, "block", None) and self.record is not None and not self.check_mode:
                        self.record.task_done(TaskOutcome(host.name, names[at], None, "ok", "block finished"))
                for handler in getattr(play, "handlers", None) or []:
                    if handler.name in notified:
                        await self._run_list([handler], host, vars_, hr, recap, notified)
            except _HostFailed:
                return
            except _Interrupted:
                recap.left[host.name] = names[at:]

        await asyncio.gather(*(one(h) for h in hosts))
        recap.interrupted = self._interrupted if recap.left else None
        if self.record is not None and not self.check_mode:
            outcome = "interrupted" if recap.interrupted else ("failed" if recap.failed else "done")
            await self.record.end(outcome, recap.interrupted)
        return recap

    def skipped_before_running(self, play: Any, host: HostContext, tasks: Sequence[Any],
                               extra_vars: Mapping[str, Any] | None = None) -> list[TaskOutcome] | None:
        """The outcomes of ``tasks`` on ``host`` if their ``when`` skips every one of them before
        anything ran (each ``skipped``, ``when was false``), else ``None``: some task may act. A
        task without ``when``, or whose ``when`` cannot be decided yet (it reads a result an
        earlier task registers, or fails), may act. Runs nothing."""
        vars_ = self._host_vars(play, host, extra_vars)
        out = []
        for task in tasks:
            try:
                skipped = bool(task.when) and not self._truthy(task.when, vars_)
            except Exception:  # noqa: BLE001 - undecidable before the run: the run decides
                skipped = False
            if not skipped:
                return None
            name = task.name or task.module or ("block" if getattr(task, "block", None) else "task")
            out.append(TaskOutcome(host.name, name, task.module, "skipped", "when was false",
                                   check_mode=self.check_mode))
        return out

    def _host_vars(self, play: Any, host: HostContext, extra_vars: Mapping[str, Any] | None) -> dict[str, Any]:
        return {**host.vars, **(play.vars or {}), **(extra_vars or {}), "host": host.name,
                "check_mode": self.check_mode}

    async def _run_list(self, tasks: Sequence[Any], host: HostContext, vars_: dict[str, Any],
                        hr: HostRecap, recap: PlayRecap, notified: list[str]) -> None:
        for task in tasks:
            if self._interrupted is not None:
                raise _Interrupted(self._interrupted)
            if getattr(task, "block", None):
                await self._run_block(task, host, vars_, hr, recap, notified)
            else:
                await self._run_task(task, host, vars_, hr, recap, notified)

    async def _run_block(self, task: Any, host: HostContext, vars_: dict[str, Any], hr: HostRecap,
                         recap: PlayRecap, notified: list[str]) -> None:
        if task.when and not self._truthy(task.when, vars_):
            self._emit(TaskOutcome(host.name, task.name or "block", None, "skipped", "when was false",
                                   check_mode=self.check_mode), hr, recap)
            return
        failure: _HostFailed | None = None
        try:
            await self._run_list(task.block, host, vars_, hr, recap, notified)
        except _HostFailed as exc:
            failure = exc
            if task.rescue:
                try:
                    await self._run_list(task.rescue, host, vars_, hr, recap, notified)
                    failure = None
                    hr.rescued += 1
                    hr.failed = max(0, hr.failed - 1)  # the block's failure was handled
                except _HostFailed as exc2:
                    failure = exc2
        finally:
            if task.always:
                await self._run_list(task.always, host, vars_, hr, recap, notified)
        if failure is not None:
            raise failure

    def _truthy(self, expr: str, vars_: Mapping[str, Any]) -> bool:
        return bool(self.templating.evaluate(expr, vars_))

    async def _run_task(self, task: Any, host: HostContext, vars_: dict[str, Any], hr: HostRecap,
                        recap: PlayRecap, notified: list[str]) -> None:
        from agent.playbook import bind_task_params

        name = task.name or task.module or "task"
        started = datetime.now(UTC)
        try:
            if task.when and not self._truthy(task.when, vars_):
                self._emit(TaskOutcome(host.name, name, task.module, "skipped", "when was false",
                                       check_mode=self.check_mode), hr, recap)
                return
            module_cls = self.registry.action(task.module)
            params = bind_task_params(task, self.registry, self.templating, vars_)
        except BotwardenError as exc:
            outcome = TaskOutcome(host.name, name, task.module, "failed", exc.message, check_mode=self.check_mode)
            await self._finish(task, outcome, host, vars_, hr, recap, started, {})
            return
        except Exception as exc:  # noqa: BLE001 - a template error etc. fails the task, not the run
            outcome = TaskOutcome(host.name, name, task.module, "failed", str(exc), check_mode=self.check_mode)
            await self._finish(task, outcome, host, vars_, hr, recap, started, {})
            return

        if self.check_mode and not module_cls.supports_check_mode:
            outcome = TaskOutcome(host.name, name, task.module, "skipped",
                                  f"{task.module} does not support check mode", check_mode=True)
            await self._finish(task, outcome, host, vars_, hr, recap, started, audit_view(params))
            return

        retries = task.effective_retries
        delay = task.delay
        timeout = task.timeout or self.task_timeout
        module = module_cls()
        result = ActionResult(failed=True, msg="not run")
        attempts = 0
        silenced = await self._silence(task, host, name, started, (timeout + delay) * (retries + 1))
        for attempt in range(retries + 1):
            attempts = attempt + 1
            result = await self._call(module, params, host, vars_, timeout, self._message_key(task, name, host))
            if not task.until:
                if not result.failed:
                    break
                if task.retries is None:
                    break  # without until, only an explicit `retries` retries a failure
            else:
                reg = {**vars_, "result": result.as_dict()}
                try:
                    if not result.failed and self._truthy(task.until, reg):
                        break
                except Exception as exc:  # noqa: BLE001
                    result = ActionResult(failed=True, msg=f"until: {exc}", data=result.data)
                    break
                if attempt == retries:
                    result = ActionResult(changed=result.changed, failed=True, data=result.data,
                                          msg=f"until not met after {attempts} attempts: {result.msg}".strip())
                    break
            if attempt < retries:
                await asyncio.sleep(delay)
        if self.silences is not None:
            await self.silences.end(silenced, datetime.now(UTC))
        rdict = result.as_dict()
        changed, failed = result.changed, result.failed
        try:
            scope = {**vars_, "result": rdict}
            if task.changed_when is not None:
                changed = self._truthy(str(task.changed_when), scope)
            if task.failed_when is not None:
                failed = self._truthy(str(task.failed_when), scope)
        except Exception as exc:  # noqa: BLE001
            failed, rdict["msg"] = True, f"changed_when/failed_when: {exc}"
        rdict.update(changed=changed, failed=failed)
        if task.register:
            vars_[task.register] = rdict
        status = "failed" if failed else ("skipped" if result.skipped else ("changed" if changed else "ok"))
        if changed and not failed and task.notify:
            notified.extend(n for n in task.notify if n not in notified)
        outcome = TaskOutcome(host.name, name, task.module, status, rdict.get("msg", ""), attempts,
                              rdict, self.check_mode)
        await self._finish(task, outcome, host, vars_, hr, recap, started, audit_view(params))

    async def _silence(self, task: Any, host: HostContext, name: str, started: datetime, longest: float) -> list[int]:
        """The silences of ``task.silence_until_ok`` (CHECK of this play, or PLAYBOOK/CHECK),
        written before it acts; none in check mode."""
        refs = getattr(task, "silence_until_ok", None) or ()
        if self.silences is None or self.check_mode or not refs:
            return []
        checks = []
        for ref in refs:
            play, slash, check = ref.partition("/")
            checks.append((play, check) if slash else (self._play_name, ref))
        return await self.silences.begin(host.name, name, checks, started, longest)

    def _message_key(self, task: Any, name: str, host: HostContext) -> str | None:
        if self.record is None:
            return None
        source = getattr(task, "source", None)
        return self.record.message_key(host.name, name, getattr(source, "line", None))

    async def _call(self, module: Any, params: Any, host: HostContext, vars_: Mapping[str, Any],
                    timeout: float, key: str | None = None) -> ActionResult:
        ctx = RunContext(host=host, timeout=timeout, check_mode=self.check_mode,
                         notifier=self.notifier, template_vars=vars_, reason=self.reason, message_key=key)
        t0 = time.monotonic()
        try:
            return await asyncio.wait_for(module.run(params, ctx), timeout=timeout)
        except TimeoutError:
            return ActionResult(failed=True, msg=f"timed out after {timeout:g}s")
        except BotwardenError as exc:
            return ActionResult(failed=True, msg=exc.message)
        except Exception as exc:  # a module bug fails the task, not the agent
            log.exception("module %s raised after %.0f ms", getattr(module, "name", "?"),
                          (time.monotonic() - t0) * 1000)
            return ActionResult(failed=True, msg=f"module error: {type(exc).__name__}: {exc}")

    async def _finish(self, task: Any, outcome: TaskOutcome, host: HostContext, vars_: dict[str, Any],
                      hr: HostRecap, recap: PlayRecap, started: datetime, params: Mapping[str, Any]) -> None:
        if outcome.status == "failed" and task.ignore_errors:
            outcome = TaskOutcome(outcome.host, outcome.task, outcome.module, "ignored", outcome.msg,
                                  outcome.attempts, outcome.data, outcome.check_mode)
        # What leaves the runner (console, recap, audit trail) is redacted; registered results
        # (vars_) keep the real values for the tasks that follow.
        outcome, params = self._redacted(outcome), self._redact_data(params)
        self._emit(outcome, hr, recap)
        if self.record is not None and not self.check_mode:
            self.record.task_done(outcome)
        if self.audit is not None:
            maybe = self.audit(outcome, started, datetime.now(UTC), params)
            if asyncio.iscoroutine(maybe):
                await maybe
        if outcome.status == "failed":
            raise _HostFailed(outcome.msg)

    def _redact_data(self, value: Any) -> Any:
        redactor = getattr(self.templating, "redactor", None)
        return value if redactor is None else redactor.redact_data(value)

    def _redacted(self, o: TaskOutcome) -> TaskOutcome:
        return TaskOutcome(o.host, o.task, o.module, o.status, self._redact_data(o.msg), o.attempts,
                           self._redact_data(o.data), o.check_mode)

    def _emit(self, outcome: TaskOutcome, hr: HostRecap, recap: PlayRecap) -> None:
        hr.count(outcome.status)
        recap.outcomes.append(outcome)
        if self.on_outcome is not None:
            self.on_outcome(outcome)
