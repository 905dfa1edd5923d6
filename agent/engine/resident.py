"""The resident agent: schedule checks, decide, persist, alert, remediate, reload.

Data flow of one result (see DESIGN.md):
  scheduler -> :func:`classify` -> :meth:`CheckStatus.advance` -> a result without a transition
  is buffered and group-committed (:mod:`agent.engine.store_writer`, at most 50 ms later); a
  transition is one store transaction at once (the buffered batch first, then result, state,
  incident, audit event) -> the alert lifecycle pass wakes -> outbox wakes -> remediation task.

Everything that touches SQLite runs on one dedicated writer thread, so the event loop never
blocks on the database and writes never race each other. Task running (remediation, scheduled
playbooks, handover) is in :mod:`agent.engine.resident_tasks`, the background loops (alert
lifecycle, heartbeat, housekeeping) in :mod:`agent.engine.resident_loops`.
"""
from __future__ import annotations

import asyncio
import gc
import hashlib
import logging
import signal
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any, TypeVar

from agent.engine import flapping
from agent.engine.config_source import ConfigSource
from agent.engine.evaluator import CheckStatus, Transition, classify
from agent.engine.remediation import RemediationGuard
from agent.engine.resident_loops import BackgroundLoops
from agent.engine.resident_tasks import TaskRunning
from agent.engine.scheduled_plays import ScheduledPlays
from agent.engine.scheduler import CheckScheduler
from agent.engine.status_records import record_from_status, result_row, status_from_record
from agent.engine.store_writer import Batch, ResultBatcher
from agent.errors import ConfigError
from agent.modules.base import CheckResult

if TYPE_CHECKING:
    from agent.redaction import RedactingFilter

__all__ = ["ConfigSource", "ResidentAgent", "record_from_status", "settle_heap"]

log = logging.getLogger("agent")
T = TypeVar("T")
RELOAD_POLL_SECONDS = 1.0


class ResidentAgent(TaskRunning, BackgroundLoops):
    """``agent run``. Construct, then ``await run(stop_event)``."""

    _redaction_filter: RedactingFilter | None  # set by start()

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
        from agent.playbook.loader import skipped_target_message
        from agent.store import Store

        self._fingerprint = self.source.fingerprint()
        self.config = self._load_or_raise()
        url = self.store_url or f"sqlite:///{self.config.settings.path(self.config.settings.agent.db)}"
        from agent.stack.files import secure_state

        secure_state(self.config.settings)  # var/ 0700, agent.db & co 0600, or a clear error
        self.store = Store(url, redact=self.config.templating.redactor.redact)  # every row redacted
        # A due migration runs in a child interpreter: the resident process never holds Alembic.
        await self.db(lambda: self.store.migrate(in_child_process=True))
        self.notifications = Notifications.from_config(self.config, self.store)
        self._redaction_filter = install_redaction(logging.getLogger(), self.notifications.redactor)  # before anything logs a URL
        self.outbox = Outbox(self.store, self.notifications.targets)
        self.notifications.on_enqueued = self.outbox.wake  # every queued message wakes the outbox
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
        skipped = self.config.skipped_targets()  # optional targets rendered empty: said once, and stored
        for name, variables in skipped.items():
            log.warning("%s", skipped_target_message(name, variables))
        await self.db(self.store.add_event, "start", None, None,
                      f"agent started with {len(self.config.bound_checks)} checks"
                      + "".join(f"; {skipped_target_message(n, v)}" for n, v in skipped.items()),
                      {"skipped_targets": skipped})
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
        for t in list(self._background):
            t.cancel()
        if self._background:
            await asyncio.gather(*self._background, return_exceptions=True)
        # After the watchers are gone: a check they start can no longer open a new session.
        from agent.http import close_shared_clients

        await close_shared_clients()
        if self.store is not None:
            await self.db(self.store.add_event, "stop", None, None, "agent stopped", {})
            await self.db(self.store.close)
        self._writer.shutdown(wait=True)
        redaction_filter = getattr(self, "_redaction_filter", None)
        if redaction_filter is not None:  # several agents in one process (tests)
            from agent.notify import uninstall

            uninstall(logging.getLogger(), redaction_filter)
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
        at = datetime.now(UTC)
        obs = classify(bc, result, self.config.templating, status.soft, at, duration_ms)
        transition = status.advance(obs, after=bc.check.after, for_seconds=bc.check.for_)
        flap = None
        if bc.check.flapping is not None:
            f = bc.check.flapping
            flap = flapping.fold(status.extra, obs.state.name, window=f.window, start=f.start, stop=f.stop)
        if transition is None and flap is None:
            assert self.batcher is not None
            self.batcher.add(bc, status, result_row(bc, obs))
        else:
            batch = self.batcher.take() if self.batcher is not None else Batch()
            await self.db(self._persist, bc, status, obs, transition, flap, batch)
            self.wake_lifecycle()  # committed: decide the alert now, not at the next tick
        if flap is not None:
            log.warning("%s: %s flapping (%.0f%% state changes)", bc.key, "started" if flap.started else "stopped",
                        flap.percent)
        if transition is None:
            again = "settled from flapping" if flap is not None and not flap.started else None
            if bc.key in self._resumed_problems:
                self._resumed_problems.discard(bc.key)
                if not flapping.is_flapping(status.extra):
                    again = again or "after an agent restart"
            if again:
                self._remediate_again(bc, status, obs, again)
            return
        self._resumed_problems.discard(bc.key)
        log.warning("%s: %s -> %s%s", bc.key, transition.old.name, transition.new.name,
                    f" ({obs.error})" if obs.error else "")
        # A transition queues nothing (the lifecycle pass decides, and what it queues wakes the
        # outbox): waking it here would put a needless claim on the store thread ahead of the pass.
        if transition.new.is_problem and bc.check.remediate:
            if flapping.is_flapping(status.extra):
                await self.db(self.store.add_event, "remediation-paused", bc.key, status.incident_id,
                              "remediation paused: the check is flapping", {})
                return
            self._spawn(self._remediate(bc, transition), f"remediate:{bc.key}")

    def _remediate_again(self, bc: Any, status: CheckStatus, obs: Any, why: str) -> None:
        """A hard problem that no new transition announces (the agent restarted while it was
        hard, or the check settled from flapping into it): remediation decides again, under its
        budget, if this result still fails."""
        if not (bc.check.remediate and obs.state.is_problem and status.hard.is_problem):
            return
        log.warning("%s: still %s %s; remediation decides again", bc.key, status.hard.name, why)
        self._spawn(self._remediate(bc, Transition(bc.key, status.hard, status.hard, obs.at, obs)),
                    f"remediate:{bc.key}")

    def _persist(self, bc: Any, status: CheckStatus, obs: Any, tr: Transition | None,
                 flap: flapping.FlapChange | None = None, batch: Batch | None = None) -> None:
        """One transaction: the buffered plain results before it (observation order), the
        result, the state (flapping window included), and on a transition the incident and
        audit; a flapping notice when flapping starts or stops."""
        with self.store.transaction() as tx:
            if batch:
                assert self.batcher is not None
                self.batcher.write(batch, tx)
            tx.record_result(**result_row(bc, obs))
            if tr is not None:
                self.notifications.on_transition(tx, bc, status, tr)
            if flap is not None:
                self.notifications.flapping(tx, bc, status.incident_id, started=flap.started, percent=flap.percent,
                                            state=status.hard.name, at=obs.at)
            tx.save_check_state(record_from_status(bc, status))

    # -- reload --------------------------------------------------------------------------------
    async def _watch_config(self, stop: asyncio.Event) -> None:
        while not stop.is_set():
            try:
                await asyncio.wait_for(self._reload_requested.wait(), timeout=RELOAD_POLL_SECONDS)
                forced = True
            except TimeoutError:
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


