"""The resident agent: schedule checks, decide, persist, alert, remediate, reload.

Data flow of one result (see DESIGN.md):
  scheduler -> :func:`classify` -> :meth:`CheckStatus.advance` -> a result without a transition
  is buffered and group-committed (:mod:`agent.engine.store_writer`, about 10 ms later); a
  transition is one store transaction at once (the buffered batch first, then result, state,
  incident, audit event) -> the alert lifecycle pass wakes -> outbox wakes -> remediation task.

Everything that touches SQLite runs on one dedicated writer thread, so the event loop never
blocks on the database and writes never race each other.
"""
from __future__ import annotations

import asyncio
import gc
import hashlib
import logging
import os
import signal
from collections.abc import Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any, Callable, TypeVar

from agent.engine import flapping
from agent.engine.evaluator import CheckStatus, Transition, classify
from agent.engine.play_runner import PlayRunner, TaskOutcome
from agent.engine.remediation import RemediationGuard
from agent.engine.scheduled_plays import ScheduledPlays
from agent.engine.scheduler import CheckScheduler
from agent.engine.state import State
from agent.engine.store_writer import Batch, ResultBatcher
from agent.errors import ConfigError
from agent.modules.base import CheckResult
from agent.modules.registry import Registry, default_registry

log = logging.getLogger("agent")
T = TypeVar("T")

RESULT_RETENTION = timedelta(days=7)
REPEAT_SCAN_SECONDS = 15.0
RELOAD_POLL_SECONDS = 1.0
LIFECYCLE_TICK_SECONDS = 5.0
"""Safety net of the alert lifecycle pass: it is woken by every transition and at its next
deadline; this periodic pass catches what it cannot foresee (a maintenance window ending, a
silence expired or an incident acknowledged from another process)."""
LIFECYCLE_MIN_SLEEP_SECONDS = 0.005


class ConfigSource:
    """Where the configuration comes from, and a cheap fingerprint to notice changes."""

    def __init__(self, inventory: Path, playbook_paths: Sequence[Path], *, env: Mapping[str, str] | None = None,
                 registry: Registry | None = None, templates_dir: Path | None = None) -> None:
        self.inventory = inventory
        self.playbook_paths = list(playbook_paths)
        self.env = dict(env if env is not None else os.environ)
        self.registry = registry or default_registry()
        self.templates_dir = templates_dir or inventory.resolve().parent / "templates"

    def load(self) -> Any:
        from agent.playbook import load_config

        return load_config(self.inventory, self.playbook_paths, self.registry, env=self.env,
                           templates_dir=self.templates_dir)

    def fingerprint(self) -> tuple[tuple[str, float, int], ...]:
        files: list[Path] = [self.inventory]
        for p in self.playbook_paths:
            if p.is_dir():
                files.extend(sorted(q for q in p.iterdir() if q.suffix in (".yaml", ".yml")))
            else:
                files.append(p)
        if self.templates_dir.is_dir():
            files.extend(sorted(self.templates_dir.iterdir()))
        out = []
        for f in files:
            try:
                st = f.stat()
                out.append((str(f), st.st_mtime, st.st_size))
            except FileNotFoundError:
                out.append((str(f), 0.0, -1))
        return tuple(out)


class ResidentAgent:
    """``agent run``. Construct, then ``await run(stop_event)``."""

    def __init__(self, source: ConfigSource, *, store_url: str | None = None, check_mode: bool = False) -> None:
        self.source = source
        self.store_url = store_url
        self.check_mode = check_mode
        self.config: Any = None
        self.store: Any = None
        self.notifications: Any = None
        self.outbox: Any = None
        self.scheduler: CheckScheduler | None = None
        self.scheduled_plays: ScheduledPlays | None = None
        self.statuses: dict[str, CheckStatus] = {}
        self.guard: RemediationGuard | None = None
        self.lifecycle: Any = None
        self.batcher: ResultBatcher | None = None
        self._lifecycle_wake = asyncio.Event()
        self._resumed_problems: set[str] = set()
        self._writer = ThreadPoolExecutor(max_workers=1, thread_name_prefix="store")
        self._reload_requested = asyncio.Event()
        self._background: set[asyncio.Task[Any]] = set()
        self._fingerprint: Any = None
        self._last_reload_error: str | None = None

    # -- database on its own thread ------------------------------------------------------------
    async def db(self, fn: Callable[..., T], *args: Any) -> T:
        return await asyncio.get_running_loop().run_in_executor(self._writer, fn, *args)

    # -- start-up ------------------------------------------------------------------------------
    def _load_or_raise(self) -> Any:
        result = self.source.load()
        if result.diagnostics:
            for d in result.diagnostics:
                log.error("%s", d)
            raise ConfigError(f"{len(result.diagnostics)} error(s) in the configuration; the agent did not start",
                              hint="run `agent validate` and fix the lines it names")
        return result.config

    async def start(self) -> None:
        from agent.notify import Notifications, Outbox
        from agent.notify import install as install_redaction
        from agent.store import Store

        self._fingerprint = self.source.fingerprint()
        self.config = self._load_or_raise()
        url = self.store_url or f"sqlite:///{self.config.settings.path(self.config.settings.agent.db)}"
        Path(self.config.settings.path(self.config.settings.var_dir)).mkdir(parents=True, exist_ok=True)
        self.store = Store(url)
        # A due migration runs in a child interpreter: the resident process never holds Alembic.
        await self.db(lambda: self.store.migrate(in_child_process=True))
        self.notifications = Notifications.from_config(self.config, self.store)
        self._redaction_filter = install_redaction(logging.getLogger(), self.notifications.redactor)  # before anything logs a URL
        self.outbox = Outbox(self.store, self.notifications.targets)
        records = await self.db(self.store.load_check_states)
        self.statuses = {k: status_from_record(r) for k, r in records.items()}
        # Problems that were hard when the agent stopped: the first result after start decides
        # again whether to remediate (the fix may not have held while nobody watched).
        self._resumed_problems = {k for k, st in self.statuses.items() if st.hard.is_problem}
        self.guard = RemediationGuard(self.store, self.db, lock_dir=self.lock_dir,
                                      render=lambda text, vars: self.config.templating.render_str(text, vars))
        await self.guard.load()
        self.lifecycle = self._make_lifecycle()
        self.batcher = ResultBatcher(self.store, self.db, record_from_status)
        self.scheduler = CheckScheduler(self._on_result, notifier=self.notifications)
        self.scheduler.start(self.config.bound_checks)
        self.scheduled_plays = ScheduledPlays(self.scheduler.apscheduler, self._run_scheduled_play)
        self.scheduled_plays.install(self.config.playbooks)
        await self.db(self.store.add_event, "start", None, None,
                      f"agent started with {len(self.config.bound_checks)} checks", {})
        settle_heap()
        log.info("agent started: %d playbooks, %d checks, store %s", len(self.config.playbooks),
                 len(self.config.bound_checks), self.store.url_redacted if hasattr(self.store, "url_redacted") else "")

    async def run(self, stop: asyncio.Event) -> None:
        await self.start()
        loop = asyncio.get_running_loop()
        try:
            loop.add_signal_handler(signal.SIGHUP, self._reload_requested.set)
        except (NotImplementedError, RuntimeError):  # not the main thread (tests): reload by file change
            pass
        self._spawn(self.outbox.run(stop), "outbox")
        self._spawn(self._watch_config(stop), "reload")
        self._spawn(self._housekeeping(stop), "housekeeping")
        self._spawn(self._lifecycle_loop(stop), "lifecycle")
        self._spawn(self._heartbeat(stop), "heartbeat")
        # issue 6 (detection): pidfd + supervisord events + heartbeat deadlines, and /metrics.
        from agent.engine.watchers import run_detection

        self._spawn(run_detection(self, stop), "detection")
        try:
            await stop.wait()
        finally:
            await self.shutdown()

    async def shutdown(self) -> None:
        if self.scheduler is not None:
            await self.scheduler.shutdown()
        if self.batcher is not None:  # nothing buffered is lost on a clean stop
            await self.batcher.flush()
        from agent.modules.checks._http_clients import close_shared_clients

        await close_shared_clients()
        for t in list(self._background):
            t.cancel()
        if self._background:
            await asyncio.gather(*self._background, return_exceptions=True)
        if self.store is not None:
            await self.db(self.store.add_event, "stop", None, None, "agent stopped", {})
            await self.db(self.store.close)
        self._writer.shutdown(wait=True)
        if getattr(self, "_redaction_filter", None) is not None:  # several agents in one process (tests)
            from agent.notify import uninstall

            uninstall(logging.getLogger(), self._redaction_filter)
            self._redaction_filter = None

    def _spawn(self, coro: Any, name: str) -> None:
        task = asyncio.get_running_loop().create_task(coro, name=name)
        self._background.add(task)
        task.add_done_callback(self._task_done)

    def _task_done(self, task: asyncio.Task[Any]) -> None:
        self._background.discard(task)
        if not task.cancelled() and task.exception() is not None:
            log.error("background task %s failed", task.get_name(), exc_info=task.exception())

    # -- one result ----------------------------------------------------------------------------
    async def _on_result(self, bc: Any, result: CheckResult, started: datetime, duration_ms: float) -> None:
        status = self.statuses.get(bc.key)
        if status is None:
            status = self.statuses[bc.key] = CheckStatus(bc.key)
        at = datetime.now(timezone.utc)
        obs = classify(bc, result, self.config.templating, status.soft, at, duration_ms)
        transition = status.advance(obs, after=bc.check.after, for_seconds=bc.check.for_)
        flap = None
        if bc.check.flapping is not None:
            f = bc.check.flapping
            flap = flapping.fold(status.extra, obs.state.name, window=f.window, start=f.start, stop=f.stop)
        if transition is None and flap is None:
            assert self.batcher is not None
            self.batcher.add(bc, status, _result_row(bc, obs))
        else:
            batch = self.batcher.take() if self.batcher is not None else Batch()
            await self.db(self._persist, bc, status, obs, transition, flap, batch)
            self.wake_lifecycle()  # committed: decide the alert now, not at the next tick
        if flap is not None:
            log.warning("%s: %s flapping (%.0f%% state changes)", bc.key, "started" if flap.started else "stopped",
                        flap.percent)
            self.outbox.wake()
        if transition is None and bc.key in self._resumed_problems:
            self._resumed_problems.discard(bc.key)
            if obs.state.is_problem and status.hard.is_problem and bc.check.remediate:
                log.warning("%s: still %s after an agent restart; remediation decides again", bc.key, status.hard.name)
                transition = Transition(bc.key, status.hard, status.hard, obs.at, obs)
                if not flapping.is_flapping(status.extra):
                    self._spawn(self._remediate(bc, transition), f"remediate:{bc.key}")
            return
        if transition is None:
            return
        self._resumed_problems.discard(bc.key)
        log.warning("%s: %s -> %s%s", bc.key, transition.old.name, transition.new.name,
                    f" ({obs.error})" if obs.error else "")
        self.outbox.wake()
        if transition.new.is_problem and bc.check.remediate:
            if flapping.is_flapping(status.extra):
                await self.db(self.store.add_event, "remediation-paused", bc.key, status.incident_id,
                              "remediation paused: the check is flapping", {})
                return
            self._spawn(self._remediate(bc, transition), f"remediate:{bc.key}")

    def _persist(self, bc: Any, status: CheckStatus, obs: Any, tr: Transition | None,
                 flap: flapping.FlapChange | None = None, batch: Batch | None = None) -> None:
        """One transaction: the buffered plain results before it (observation order), the
        result, the state (flapping window included), and on a transition the incident and
        audit; a flapping notice when flapping starts or stops."""
        with self.store.transaction() as tx:
            if batch:
                assert self.batcher is not None
                self.batcher.write(batch, tx)
            tx.record_result(**_result_row(bc, obs))
            if tr is not None:
                self.notifications.on_transition(tx, bc, status, tr)
            if flap is not None:
                self.notifications.flapping(tx, bc, status.incident_id, started=flap.started, percent=flap.percent,
                                            state=status.hard.name, at=obs.at)
            tx.save_check_state(record_from_status(bc, status))

    # -- remediation ---------------------------------------------------------------------------
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
                started = datetime.now(timezone.utc)
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
            self.outbox.wake()

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
            self.outbox.wake()

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
        self.outbox.wake()

    # -- reload --------------------------------------------------------------------------------
    async def _watch_config(self, stop: asyncio.Event) -> None:
        while not stop.is_set():
            try:
                await asyncio.wait_for(self._reload_requested.wait(), timeout=RELOAD_POLL_SECONDS)
                forced = True
            except asyncio.TimeoutError:
                forced = False
            self._reload_requested.clear()
            fp = await asyncio.to_thread(self.source.fingerprint)
            if forced or fp != self._fingerprint:
                self._fingerprint = fp
                await self.reload()

    async def reload(self) -> bool:
        """Load the configuration again. An invalid version is rejected; the last good one runs on."""
        result = await asyncio.to_thread(self.source.load)
        if result.diagnostics:
            text = "\n".join(str(d) for d in result.diagnostics)
            for d in result.diagnostics:
                log.error("reload rejected: %s", d)
            if text != self._last_reload_error:  # alert once per distinct broken version
                self._last_reload_error = text
                digest = hashlib.sha256(text.encode()).hexdigest()[:16]
                await self.db(self.notifications.config_rejected, text, digest)
                self.outbox.wake()
            return False
        self._last_reload_error = None
        self.config = result.config
        self.notifications.update_config(self.config)
        self.outbox.update_targets(self.notifications.targets)
        assert self.scheduler is not None
        self.scheduler.replace(self.config.bound_checks)
        assert self.scheduled_plays is not None
        self.scheduled_plays.install(self.config.playbooks)
        keys = {bc.key for bc in self.config.bound_checks}
        for gone in [k for k in self.statuses if k not in keys]:
            self.statuses.pop(gone)
            if self.batcher is not None:
                self.batcher.forget(gone)
        self.wake_lifecycle()  # routes, group waits or depends_on may have changed
        await self.db(self.store.add_event, "reload", None, None,
                      f"configuration reloaded: {len(keys)} checks", {})
        log.info("configuration reloaded: %d checks", len(keys))
        settle_heap()
        return True

    # -- alert lifecycle (grouping, silences, inhibition, escalation, digest), heartbeat --------
    @property
    def lock_dir(self) -> Path:
        """Cross-process single-flight locks (shared with `agent run-playbook`)."""
        return Path(self.config.settings.path(self.config.settings.var_dir)) / "locks"

    def _make_lifecycle(self) -> Any:
        from agent.notify.lifecycle import AlertLifecycle, LifecycleSettings

        def settings() -> LifecycleSettings:
            n = self.config.inventory.notify
            return LifecycleSettings(group_wait=float(n.group_wait), group_interval=float(n.group_interval),
                                     inhibit_grace=float(n.inhibit_grace))

        return AlertLifecycle(
            self.notifications, checks=lambda: {bc.key: bc for bc in self.config.bound_checks},
            maintenance=lambda: self.config.inventory.maintenance,
            is_flapping=lambda key: key in self.statuses and flapping.is_flapping(self.statuses[key].extra),
            settings=settings)

    def wake_lifecycle(self) -> None:
        """Run the alert lifecycle pass now (after a transition has committed)."""
        self._lifecycle_wake.set()

    async def _lifecycle_loop(self, stop: asyncio.Event) -> None:
        """Decide and queue alerts: at once after a transition, at the pass's next deadline
        (group_wait end, group_interval, resolve grouping, silence end, escalation), and every
        :data:`LIFECYCLE_TICK_SECONDS` as a safety net; send the info digest on its schedule."""
        from agent.notify.lifecycle import DIGEST_EVENT

        last = await self.db(lambda: self.store.recent_events(kind=DIGEST_EVENT, limit=1))
        last_digest = last[0].at if last else datetime.now(timezone.utc)
        while not stop.is_set():
            self._lifecycle_wake.clear()  # a transition committed from here on gets a pass of its own
            now = datetime.now(timezone.utc)
            timeout = LIFECYCLE_TICK_SECONDS
            try:
                if await self.db(self.lifecycle.tick, now):
                    self.outbox.wake()
                trigger = self.config.inventory.notify.digest.trigger()
                # The previous fire time is the last digest: an IntervalTrigger asked with None
                # answers "one interval from its creation", which never comes as it is rebuilt here.
                due = trigger.get_next_fire_time(last_digest, now)
                if due is not None and due <= now:
                    if await self.db(self.lifecycle.send_digest, last_digest, now):
                        self.outbox.wake()
                    last_digest = now
                    due = trigger.get_next_fire_time(last_digest, now)
                for deadline in (self.lifecycle.next_due, due):
                    if deadline is not None:
                        timeout = min(timeout, (deadline - datetime.now(timezone.utc)).total_seconds())
            except Exception:  # noqa: BLE001 - one bad pass must not silence every later alert
                log.exception("alert lifecycle pass failed")
            await _first_of(stop, self._lifecycle_wake, max(LIFECYCLE_MIN_SLEEP_SECONDS, timeout))

    async def _heartbeat(self, stop: asyncio.Event) -> None:
        from agent.engine.heartbeat import run_heartbeat

        async def on_result(ok: bool, detail: str) -> None:
            await self.db(self.store.add_event, "heartbeat", None, None,
                          f"heartbeat {'delivered' if ok else 'failed'}: {detail}", {"ok": ok})

        from agent.engine.heartbeat import heartbeat_url
        from agent.notify.redact import url_secrets

        self.notifications.redactor.add(url_secrets(heartbeat_url(self.config)) if heartbeat_url(self.config) else set())
        await run_heartbeat(lambda: self.config, stop, redact=self.notifications.redactor.redact,
                            on_result=on_result)

    # -- housekeeping --------------------------------------------------------------------------
    async def _housekeeping(self, stop: asyncio.Event) -> None:
        last_prune = datetime.min.replace(tzinfo=timezone.utc)
        while not stop.is_set():
            now = datetime.now(timezone.utc)
            try:
                if await self.db(self.notifications.enqueue_due_repeats, now):
                    self.outbox.wake()
                if now - last_prune > timedelta(hours=1):
                    await self.db(self.store.prune_results, now - RESULT_RETENTION)
                    last_prune = now
            except Exception:  # noqa: BLE001 - housekeeping must never take the agent down
                log.exception("housekeeping failed")
            try:
                await asyncio.wait_for(stop.wait(), timeout=REPEAT_SCAN_SECONDS)
            except asyncio.TimeoutError:
                pass


def settle_heap() -> None:
    """Take the loaded configuration's objects out of the cyclic collector's way (``gc.freeze``).

    The agent holds a large, long-lived object graph (playbooks, models, libraries); every full
    collection walked all of it and stopped the event loop for about 100 ms, once a second at
    1000 checks/s (measured), which is what made checks start late. Frozen objects are still
    freed by reference counting; on a reload the old configuration is unfrozen and collected
    first, so it is not kept.
    """
    gc.unfreeze()
    gc.collect()
    gc.freeze()


async def _first_of(a: asyncio.Event, b: asyncio.Event, timeout: float) -> None:
    """Return when ``a`` or ``b`` is set, or after ``timeout`` seconds."""
    if a.is_set() or b.is_set():
        return
    waiters = [asyncio.ensure_future(a.wait()), asyncio.ensure_future(b.wait())]
    try:
        await asyncio.wait(waiters, timeout=timeout, return_when=asyncio.FIRST_COMPLETED)
    finally:
        for w in waiters:
            w.cancel()


def check_vars(bc: Any, tr: Transition) -> dict[str, Any]:
    """What remediation steps see as ``check``: the check that fired and what it observed."""
    obs = tr.observation
    return {"check": {"name": bc.check.name, "key": bc.key, "play": bc.play.name, "state": tr.new.name,
                      "previous_state": tr.old.name, "value": obs.value, "error": obs.error,
                      "facts": dict(obs.facts)}}


def _result_row(bc: Any, obs: Any) -> dict[str, Any]:
    """The ``check_results`` row of one observation (keyword arguments of ``record_result``)."""
    return dict(play=bc.play.name, host=bc.host.name, check=bc.check.name, state=obs.state,
                value=_short(obs.value), error=obs.error, duration_ms=obs.duration_ms, observed_at=obs.at)


def _short(value: Any, limit: int = 500) -> str | None:
    if value is None:
        return None
    text = value if isinstance(value, str) else repr(value)
    return text if len(text) <= limit else text[: limit - 1] + "…"


def status_from_record(rec: Any) -> CheckStatus:
    return CheckStatus(
        key=rec.key, hard=rec.hard_state, soft=rec.soft_state, hard_since=rec.since,
        bad_since=rec.soft_since if rec.soft_state.is_problem else None, consecutive=rec.consecutive,
        last_value=rec.last_value, last_error=rec.last_error, last_at=rec.last_observed_at,
        incident_id=rec.incident_id, extra=dict(rec.extras or {}),
    )


def record_from_status(bc: Any, st: CheckStatus) -> Any:
    from agent.store.records import CheckStateRecord

    return CheckStateRecord(
        play=bc.play.name, host=bc.host.name, check=bc.check.name, hard_state=st.hard, soft_state=st.soft,
        since=st.hard_since or st.last_at or datetime.now(timezone.utc), soft_since=st.bad_since,
        consecutive=st.consecutive, last_value=_short(st.last_value), last_error=st.last_error,
        last_observed_at=st.last_at, incident_id=st.incident_id, extras=st.extra,
    )


