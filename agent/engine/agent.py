"""The resident agent: start-up, reload and shutdown of its collaborators (docs/architecture.md).

``Agent`` does no work of its own. :meth:`Agent.start` builds the collaborators and passes each
one what it uses, explicitly (no back-references to the agent):

* :class:`CheckScheduler` runs the checks (APScheduler; blocking probes on pools per module kind)
  and hands every result to the :class:`ResultPipeline`, the one place a result becomes a
  decision (classify -> persist -> apply -> hand on);
* stored decisions go to the :class:`AlertLoop` (when and how the operator is told:
  :mod:`agent.notify`) and to the :class:`Remediator` (guards, budget, hand-over, runs through
  the :class:`TaskRunner`);
* the :class:`Outbox` delivers queued messages through apprise; :class:`DirectAlerts` delivers
  when the store cannot be written;
* the watchers (:class:`Detection`: process exits, supervisord events, heartbeat deadlines,
  /metrics), :class:`Housekeeping`, the :class:`DeadMansSwitch`, :class:`ScheduledPlays`, and the
  guards of the agent itself: :class:`StoreFileWatch` (the database deleted under it) and
  :class:`ClockWatch` (a step of the wall clock).
"""
from __future__ import annotations

import asyncio
import functools
import gc
import hashlib
import logging
import signal
from collections.abc import Callable, Coroutine
from dataclasses import dataclass, replace
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from agent.core.redaction import RedactingFilter
from agent.engine.alert_loop import AlertLoop
from agent.engine.clock import ClockWatch
from agent.engine.config_source import START_ORDER, Chosen, ConfigSource, Fingerprint, settled
from agent.engine.dependencies import DependencyProbes
from agent.engine.direct_alerts import DirectAlerts
from agent.engine.handover_changes import message as handover_message
from agent.engine.handover_changes import removed_handover_tasks
from agent.engine.heartbeat import DeadMansSwitch
from agent.engine.housekeeping import Housekeeping
from agent.engine.internal_errors import InternalErrors
from agent.engine.live_config import LiveConfig
from agent.engine.pipeline import ResultPipeline
from agent.engine.play_runs import InterruptedRuns
from agent.engine.remediation import RemediationGuard
from agent.engine.remediator import Remediator
from agent.engine.retries import Retries
from agent.engine.scheduled_plays import ScheduledPlayRunner, ScheduledPlays
from agent.engine.scheduler import CheckScheduler
from agent.engine.settings_changes import (
    as_started,
    settings_changed,
    settings_changes,
    started_on_other_settings,
)
from agent.engine.status_records import record_from_status
from agent.engine.store_file import EXIT_STORE_LOST, StoreFileWatch, sqlite_file
from agent.engine.store_handover import (
    Told,
    handover_path,
    merge,
    receive_handover,
    told_directly,
    told_in_store,
    told_with,
    write_handover,
)
from agent.engine.store_thread import StoreThread
from agent.engine.store_writer import ResultBatcher
from agent.engine.task_runner import TaskRunner
from agent.engine.watchers import Detection
from agent.notify import Notifications, Outbox
from agent.notify.lifecycle.checks import CheckCatalog
from agent.notify.notifications import CONFIG_REJECTED
from agent.notify.routing import RoutedMessage
from agent.notify.unsaid import Unsaid, fold_dependents, problem_message, take_unsaid
from agent.playbook.loader import Config, skipped_target_message
from agent.stack.files import secure_state
from agent.store import IncidentRecord, Store
from botwarden.errors import ConfigError

__all__ = ["Agent", "Collaborators", "ConfigSource", "settle_heap"]


UNSAID_READ_S = 3.0
"""How long the agent reads, from a database file that was deleted, what it had not said yet."""

log = logging.getLogger("agent")
RELOAD_POLL_SECONDS = 1.0
TASK_RESTART_MAX_S = 60.0


@dataclass
class Collaborators:
    """What a started agent is made of (see the module docstring)."""

    config: LiveConfig
    store: Store
    store_thread: StoreThread
    notifications: Notifications
    outbox: Outbox
    direct: DirectAlerts
    batcher: ResultBatcher
    pipeline: ResultPipeline
    guard: RemediationGuard
    tasks: TaskRunner
    remediator: Remediator
    alerts: AlertLoop
    scheduler: CheckScheduler
    scheduled_plays: ScheduledPlays
    detection: Detection
    housekeeping: Housekeeping
    play_runs: InterruptedRuns
    heartbeat: DeadMansSwitch
    store_file: StoreFileWatch | None
    clock: ClockWatch


class Agent:
    """``agent run``. Construct, then ``await run(stop)``; it returns the process's exit code."""

    def __init__(self, source: ConfigSource, *, store_url: str | None = None, check_mode: bool = False) -> None:
        self.source = source
        self.store_url = store_url
        self.check_mode = check_mode
        self.parts: Collaborators | None = None
        self.exit_code = 0
        self._stop = asyncio.Event()
        self._reload_requested = asyncio.Event()
        self._background: set[asyncio.Task[None]] = set()
        self._fingerprint: Fingerprint = ()
        self._last_reload_error: str | None = None
        self._redaction: RedactingFilter | None = None
        self._internal: InternalErrors | None = None
        self.origin = "disk"
        """What the agent runs (:class:`~agent.engine.config_source.Chosen`): ``disk`` unless the
        files on disk did not load at start-up and none has loaded since."""
        self._good_version = "none"
        """Which good configuration runs (when it was loaded from disk): a broken version is
        told once per good one it stands against."""
        self._supervised: dict[str, Callable[[], Coroutine[Any, Any, None]]] = {}
        self._lost: str | None = None
        self._told: list[Told] = []
        self._said: list[Told] = []
        """Problems of the lost database told directly as it was lost (in no outbox row)."""
        """What the lost database said was told and not resolved, read when it was lost (kept in
        case it can no longer be read when the agent stops: :meth:`_hand_over`)."""
        self._task_failures: dict[str, int] = {}

    @property
    def running(self) -> Collaborators:
        """The collaborators (after :meth:`start`)."""
        if self.parts is None:
            raise RuntimeError("the agent is not started")
        return self.parts

    # -- start-up ------------------------------------------------------------------------------
    def _choose_or_raise(self) -> Chosen:
        chosen, disk = self.source.choose(START_ORDER)
        for d in disk.diagnostics:
            log.error("%s", d)
        for d in disk.warnings:
            log.warning("%s", d)
        if chosen is None:
            raise ConfigError(f"{len(disk.diagnostics)} error(s) in the configuration, no last good configuration "
                              "and not even the built-in one loads; the agent did not start",
                              hint="run `agent validate` and fix the lines it names")
        if (chosen.origin in ("disk", "as-read", "valid-part")
                and (held := started_on_other_settings(self.source, chosen.config)) is not None):
            log.error("the stack settings on disk are not those the programs were started with: %s", held.summary())
            return held
        if chosen.origin != "disk":
            log.error("the configuration on disk does not load: %s", chosen.summary())
        return chosen

    async def start(self) -> None:
        from agent.notify import install as install_redaction

        before = await asyncio.to_thread(self.source.fingerprint)
        chosen = await asyncio.to_thread(self._choose_or_raise)
        after = await asyncio.to_thread(self.source.fingerprint)
        # Taken before loading, so an edit made while it loads is noticed; unless loading named
        # another file to watch (the settings file the inventory names), which only this one has.
        same_files = [name for name, _ in before] == [name for name, _ in after]
        self._fingerprint = before if same_files else after
        self.origin = chosen.origin
        live = LiveConfig(chosen.config)
        settings = live.current.settings
        db_path = Path(settings.path(settings.agent.db))
        url = self.store_url or f"sqlite:///{db_path}"
        await asyncio.to_thread(secure_state, settings)  # var/ 0700, agent.db & co 0600, or a clear error
        store = Store(url, redact=live.current.templating.redactor.redact)  # every row redacted on the way in
        thread = StoreThread()
        # A due migration runs in a child interpreter: the resident process never holds Alembic.
        await thread.call(store.migrate, in_child_process=True)
        notifications = Notifications.from_config(live.current, store)
        self._redaction = install_redaction(logging.getLogger(), notifications.redactor)  # before a URL is logged
        outbox = Outbox(store, notifications.targets)
        notifications.on_enqueued = outbox.queued  # every queued message wakes the outbox
        direct = DirectAlerts(notifications, outbox)
        batcher = ResultBatcher(store, thread.call, record_from_status)
        pipeline = ResultPipeline(config=live, store=store, store_thread=thread, notifications=notifications,
                                  batcher=batcher, direct=direct, grace=float(settings.agent.store_grace))
        store_path = sqlite_file(url)
        if store_path is not None:  # what the agent before us told and had not resolved (its database lost)
            await thread.call(receive_handover, handover_path(store_path), store, notifications,
                              {bc.key for bc in live.current.bound_checks}, datetime.now(UTC))
        pipeline.load(await thread.call(store.load_check_states))
        guard = RemediationGuard(store, thread, lock_dir=live.lock_dir,
                                 render=lambda text, vars: live.current.templating.render_str(text, vars))
        await guard.load()
        tasks = TaskRunner(config=live, registry=self.source.registry, store=store, store_thread=thread,
                           notifier=notifications, check_mode=self.check_mode)
        alerts = AlertLoop(config=live, notifications=notifications, store=store, store_thread=thread,
                           is_flapping=pipeline.is_flapping, evidence=pipeline.evidence.get,
                           backlog=lambda: (pipeline.waiting, pipeline.store_error is not None, pipeline.stored))
        remediator = Remediator(config=live, guard=guard, tasks=tasks, store=store, store_thread=thread,
                                notifications=notifications, status=pipeline.status,
                                last_observation=pipeline.last_observation, direct=direct, recorded=alerts.wake)
        scheduler = CheckScheduler(pipeline.handle, notifier=notifications)

        def soft_problem(key: str) -> bool:
            status = pipeline.status(key)
            return status is not None and status.soft.is_problem

        probes = DependencyProbes(checks=live.checks, run_now=lambda bc: scheduler.run_now(bc, rerun_if_busy=True),
                                  is_problem=soft_problem)
        # The remediator first: its run (and the record of its start) is queued on the store thread
        # before the alert loop's pass, which for a check with `remediate:` only waits for its outcome.
        pipeline.listeners += [remediator, alerts, probes]
        scheduler.result_listeners.append(probes.on_result)
        retries = Retries(status=pipeline.status, check=live.check,
                          run_now=lambda bc: scheduler.run_now(bc) if scheduler.running else None)
        scheduler.result_listeners.append(retries.on_result)
        scheduled_plays = ScheduledPlays(scheduler.apscheduler, ScheduledPlayRunner(
            config=live, tasks=tasks, notifications=notifications, store=store, store_thread=thread))

        def state_of(key: str) -> str | None:
            status = pipeline.status(key)
            return status.soft.name if status is not None else None

        from agent.engine.metrics import notification_counts

        detection = Detection(config=live, scheduler=scheduler, state_of=state_of,
                              notification_counts=lambda: thread.call(notification_counts, store))
        store_file = StoreFileWatch(store_path, self._store_lost) if store_path is not None else None
        self._internal = InternalErrors(direct, asyncio.get_running_loop())
        logging.getLogger("agent").addHandler(self._internal)  # the failures it survives are told
        self.parts = Collaborators(
            config=live, store=store, store_thread=thread, notifications=notifications, outbox=outbox, direct=direct,
            batcher=batcher, pipeline=pipeline, guard=guard, tasks=tasks, remediator=remediator, alerts=alerts,
            scheduler=scheduler, scheduled_plays=scheduled_plays, detection=detection,
            housekeeping=Housekeeping(notifications=notifications, store=store, store_thread=thread),
            play_runs=InterruptedRuns(config=live, tasks=tasks, notifications=notifications, store=store,
                                      store_thread=thread),
            heartbeat=DeadMansSwitch(config=live, notifications=notifications, store=store, store_thread=thread),
            store_file=store_file, clock=ClockWatch(self._clock_stepped))
        if store_file is not None:
            await store_file.start()
        scheduler.start(live.current.bound_checks)
        scheduled_plays.install(live.current.playbooks)
        skipped = live.current.skipped_targets()  # optional targets rendered empty: said once, and stored
        for name, variables in skipped.items():
            log.warning("%s", skipped_target_message(name, variables))
        on = "" if chosen.origin == "disk" else f" ({chosen.summary()})"
        await thread.call(store.add_event, "start", None, None,
                          f"agent started with {len(live.current.bound_checks)} checks{on}"
                          + "".join(f"; {skipped_target_message(n, v)}" for n, v in skipped.items()),
                          {"skipped_targets": skipped, "config": chosen.origin})
        if chosen.origin == "disk":
            await self._loaded_from_disk(live.current)
        else:
            await self._tell_not_on_disk(chosen)
        settle_heap()
        log.info("agent started: %d playbooks, %d checks", len(live.current.playbooks), len(live.current.bound_checks))

    async def run(self, stop: asyncio.Event) -> int:
        """Run until ``stop`` is set (or the agent must stop itself); returns the exit code."""
        await self.start()
        parts = self.running
        loop = asyncio.get_running_loop()
        try:
            loop.add_signal_handler(signal.SIGHUP, self._reload_requested.set)
        except (NotImplementedError, RuntimeError):  # not the main thread (tests): reload by file change
            pass
        self._supervise("outbox", lambda: parts.outbox.run(self._stop))
        self._supervise("reload", lambda: self._watch_config(self._stop))
        self._supervise("housekeeping", lambda: parts.housekeeping.run(self._stop))
        self._supervise("play-runs", lambda: parts.play_runs.run(self._stop))  # runs cut short: told, finished
        self._supervise("alerts", lambda: parts.alerts.run(self._stop))
        self._supervise("heartbeat", lambda: parts.heartbeat.run(self._stop))
        self._supervise("detection", lambda: parts.detection.run(self._stop))
        self._supervise("clock", lambda: parts.clock.run(self._stop))
        store_file = parts.store_file
        if store_file is not None:
            self._supervise("store-file", lambda: store_file.run(self._stop))
        waiters = [asyncio.ensure_future(stop.wait()), asyncio.ensure_future(self._stop.wait())]
        try:
            await asyncio.wait(waiters, return_when=asyncio.FIRST_COMPLETED)
        finally:
            for w in waiters:
                w.cancel()
            self._stop.set()
            await self.shutdown()
        return self.exit_code

    def _spawn(self, coro: Coroutine[Any, Any, None], name: str) -> None:
        task = asyncio.get_running_loop().create_task(coro, name=name)
        self._background.add(task)
        task.add_done_callback(self._task_done)

    def _supervise(self, name: str, factory: Callable[[], Coroutine[Any, Any, None]]) -> None:
        """Run ``factory()`` as background task ``name`` for as long as the agent runs: if it
        ever ends before the agent stops, that is logged, the operator is told once, and it is
        started again (after 1 s, doubling up to a minute while it keeps failing)."""
        self._supervised[name] = factory
        self._spawn(factory(), name)

    def _task_done(self, task: asyncio.Task[None]) -> None:
        self._background.discard(task)
        name = task.get_name()
        error = task.exception() if not task.cancelled() else None
        if error is not None:
            log.error("background task %s failed", name, exc_info=error)
        if name not in self._supervised or self._stop.is_set() or task.cancelled():
            return
        failures = self._task_failures[name] = self._task_failures.get(name, 0) + 1
        why = f"{type(error).__name__}: {error}" if error is not None else "it ended"
        delay = min(TASK_RESTART_MAX_S, 2.0 ** (failures - 1))
        log.error("background task %s stopped (%s); starting it again in %.0fs (failure %d)", name, why, delay,
                  failures)
        if failures == 1 and self.parts is not None:
            self.parts.direct.deliver(
                f"[AGENT] the agent's {name} task failed and was restarted",
                f"The resident agent's background task {name!r} stopped unexpectedly ({why}). It is started "
                "again (backing off while it keeps failing); the agent's log has the traceback. This is a bug: "
                "please report it.", "critical", RoutedMessage("critical", tags=("p0",)))
        asyncio.get_running_loop().call_later(delay, self._restart, name)

    def _restart(self, name: str) -> None:
        if not self._stop.is_set():
            self._spawn(self._supervised[name](), name)

    # -- the agent's own guards ----------------------------------------------------------------
    def _store_lost(self, reason: str) -> None:
        """The database file is gone: tell everyone directly, with everything the old file held
        and had not said yet (:mod:`agent.notify.unsaid`), then stop (supervisord restarts us)."""
        self.exit_code = EXIT_STORE_LOST
        self._lost = reason
        # Act on nothing more: a crash from now on is left for the next agent (it starts in a
        # moment on the file that is there) to tell and fix; acted on here it would be neither
        # recorded nor told (a fault run lost one restarted 0.5 s after this point).
        self.running.pipeline.freeze(reason)
        self._spawn(self._say_all_and_stop(reason), "store-lost")

    async def _say_all_and_stop(self, reason: str) -> None:
        parts = self.running
        unsaid: Unsaid | None = None
        try:
            unsaid = await asyncio.wait_for(
                parts.store_thread.call(take_unsaid, parts.store, datetime.now(UTC), parts.outbox.owner),
                UNSAID_READ_S)
        except Exception:  # the notice below goes out whatever the old file says
            log.warning("what the lost database had not said yet could not be read", exc_info=True)
        try:
            self._told = await asyncio.wait_for(parts.store_thread.call(told_in_store, parts.store), UNSAID_READ_S)
        except Exception:  # read again as the agent stops (_hand_over)
            log.warning("what the lost database told and had not resolved could not be read", exc_info=True)
        try:
            told = ""
            if unsaid is not None and (unsaid.messages or unsaid.problems):
                told = (f" Sent directly with this notice: {len(unsaid.messages)} message(s) the outbox had not "
                        f"delivered yet and {len(unsaid.problems)} problem(s) not told yet.")
            if unsaid is not None and unsaid.stuck:
                told += (f" Not delivered, their targets failing: "
                         f"{'; '.join(f'{m.title} (to {m.target})' for m in unsaid.stuck[:10])}.")
            parts.direct.deliver(
                f"[AGENT] {reason}: the agent restarts",
                f"{reason} while the agent was running. The agent stops now so that supervisord starts it again "
                "on the database that is there; problems told and not yet told resolved are handed over to the agent that "
                "starts, which tells their resolve; checks that fail again are alerted again after the restart. "
                f"Acknowledgements and silences made since the file disappeared are lost.{told}",
                "critical", RoutedMessage("critical", tags=("p0",)))
            if unsaid is not None:
                for m in unsaid.messages:
                    parts.direct.deliver_to(m.target, m.title, m.body, m.severity)
                catalog = CheckCatalog(parts.config.checks)
                def lineage(inc: IncidentRecord) -> list[str]:
                    return [k for _, k in [*catalog.parents(inc.key, inc.host), *catalog.ancestors(inc.key, inc.host)]]

                for inc, dependents in fold_dependents(unsaid.problems, lineage):  # one message per root cause
                    title, body = problem_message(inc, reason, dependents)
                    sent = parts.direct.deliver(title, body, inc.severity, catalog.routed(inc))
                    if (said := told_with(inc, sent)) is not None:
                        self._said.append(said)
        finally:
            asyncio.get_running_loop().call_later(1.0, self._stop.set)  # a moment for the messages to leave

    def _clock_stepped(self, step: float) -> None:
        parts = self.running
        parts.scheduler.replace(parts.config.current.bound_checks)
        parts.scheduled_plays.install(parts.config.current.playbooks)
        self._spawn(self._record_clock_step(step), "clock-step")

    async def _record_clock_step(self, step: float) -> None:
        parts = self.running
        try:
            await parts.store_thread.call(parts.store.add_event, "clock-step", None, None,
                                          f"the wall clock stepped {step:+.1f}s; checks scheduled again from now",
                                          {"step_s": round(step, 3)})
        except Exception:  # recorded when possible; the rescheduling is what matters
            log.warning("clock step not recorded", exc_info=True)

    # -- reload --------------------------------------------------------------------------------
    async def _watch_config(self, stop: asyncio.Event) -> None:
        """Reload on SIGHUP and when :meth:`ConfigSource.fingerprint` changes. One failed round
        (whatever fails) is logged and the next one runs: the watcher never ends before the agent."""
        told = False
        while not stop.is_set():
            try:
                await asyncio.wait_for(self._reload_requested.wait(), timeout=RELOAD_POLL_SECONDS)
                forced = True
            except TimeoutError:
                forced = False
            self._reload_requested.clear()
            try:
                fp = await asyncio.to_thread(self.source.fingerprint)
                if not forced and fp != self._fingerprint:  # an edit: load it once it is written
                    fp = await settled(lambda: asyncio.to_thread(self.source.fingerprint), fp, self._settle_sleep)
                if forced or fp != self._fingerprint:
                    self._fingerprint = fp
                    await self.reload()
            except Exception as exc:
                log.exception("configuration reload failed")
                self._fingerprint = ()  # try again at the next round
                if not told and self.parts is not None:
                    told = True
                    self.parts.direct.deliver(
                        "[CONFIG] a configuration reload failed: the last good configuration keeps running",
                        f"Reloading the configuration failed unexpectedly ({type(exc).__name__}: {exc}). The "
                        "agent keeps running the configuration it has and tries again; the agent's log has the "
                        "traceback. This is a bug: please report it.", "warning", RoutedMessage("warning"))
                await asyncio.sleep(RELOAD_POLL_SECONDS)

    async def _settle_sleep(self, seconds: float) -> None:
        try:  # a stop or a SIGHUP ends the wait: SIGHUP means "load it now"
            await asyncio.wait_for(self._reload_requested.wait(), timeout=seconds)
        except TimeoutError:
            pass

    async def reload(self) -> bool:
        """Load the configuration again. An invalid version is rejected; the last good one runs on.

        Running on a part of the files (``as-read`` or ``valid-part``: no last good configuration
        at start-up), a rejected version still brings in the playbooks that became valid."""
        parts = self.running
        result = await asyncio.to_thread(self.source.load)
        if result.config is not None and not result.diagnostics and (changes := self._settings_edited(result.config)):
            # the supervised programs run on the settings they started with
            result = replace(result, config=None, diagnostics=[settings_changed(result.settings_path, changes)])
        if result.diagnostics or result.config is None:
            fallback: Chosen | None = None
            if self.origin in ("as-read", "valid-part", "built-in"):
                fallback, _ = await asyncio.to_thread(self.source.choose, ("as-read", "valid-part"), first=result)
                if fallback is not None and (changes := self._settings_edited(fallback.config)):
                    # the part of the files that loads carries the edited settings too: not taken
                    # either (its checks pointed at the edited bot.port, nothing serving it)
                    result = replace(result, diagnostics=[*result.diagnostics,
                                                          settings_changed(result.settings_path, changes)])
                    fallback = None
            text = "\n".join(str(d) for d in result.diagnostics)
            for d in result.diagnostics:
                log.error("reload rejected: %s", d)
            if text != self._last_reload_error:  # alert once per distinct broken version
                self._last_reload_error = text
                await parts.store_thread.call(parts.notifications.config_rejected, text, self._digest(text))
            if fallback is not None:
                self._apply(fallback.config)
                self.origin = fallback.origin
                log.info("running %s: %s", "the files as written" if fallback.origin == "as-read"
                         else "the valid part of the configuration", fallback.summary())
            return False
        self._last_reload_error = None
        self.origin = "disk"
        config = result.config
        removed = removed_handover_tasks(parts.config.current.playbooks, config.playbooks)
        if removed:  # a truncated emergency loads: it is told (issue 15, F5)
            title, body = handover_message(removed)
            log.warning("%s: %s", title, body)
            await parts.store_thread.call(functools.partial(parts.notifications.notice, None, title=title, body=body,
                                                            severity="warning"))
        for d in result.warnings:
            log.warning("reload: %s", d)
        self._apply(config)
        # The breakage told before is over (and the files kept as the last good configuration)
        # before the reload is recorded: an agent stopped right after the record would otherwise
        # start again with that episode still open, and the same breakage would not be paged again.
        await self._loaded_from_disk(config)
        keys = {bc.key for bc in config.bound_checks}
        await parts.store_thread.call(parts.store.add_event, "reload", None, None,
                                      f"configuration reloaded: {len(keys)} checks", {})
        log.info("configuration reloaded: %d checks", len(keys))
        settle_heap()
        return True

    def _settings_edited(self, config: Config) -> list[str]:
        """What of ``config``'s stack settings differs from those the supervised programs run
        (empty: it may be applied; :mod:`agent.engine.settings_changes`). Compared with what runs
        when that came from the disk, or holds the settings the programs were started with (on the
        last good configuration after a restart past an edit: one edit after another is no way
        around); every configuration a reload applies (the files, their part as read or valid)."""
        current = self.running.config.current
        if as_started(self.source, config):
            return []
        if self.origin in ("disk", "as-read", "valid-part") or as_started(self.source, current):
            return settings_changes(current.settings, config.settings)
        return []

    def _apply(self, config: Config) -> None:
        parts = self.running
        parts.config.replace(config)
        parts.notifications.update_config(config)
        parts.outbox.update_targets(parts.notifications.targets)
        parts.scheduler.replace(config.bound_checks)
        parts.scheduled_plays.install(config.playbooks)
        keys = {bc.key for bc in config.bound_checks}
        parts.pipeline.forget([k for k in parts.pipeline.statuses if k not in keys])
        parts.alerts.wake()  # routes, group waits or depends_on may have changed

    # -- the last good configuration -----------------------------------------------------------
    def _digest(self, text: str) -> str:
        """Dedup key of a broken version: told once while the same good configuration runs
        (across restarts of the agent on it too), again when it stands against a newer one. The
        files loading again ends every such key (:meth:`_loaded_from_disk`): that holds without a
        last good configuration too, where the version is ``"none"`` after a restart."""
        return hashlib.sha256(f"{self._good_version}\n{text}".encode()).hexdigest()[:16]

    async def _loaded_from_disk(self, config: Config) -> None:
        """The files on disk loaded (at start or by a reload): kept as the last good configuration,
        and the breakage told before is over: the same break again is paged again (a new
        episode), even when no last good configuration could be kept (``_good_version`` then
        says nothing after a restart)."""
        await self._saved_last_good(config)
        parts = self.running
        ended = await parts.store_thread.call(parts.notifications.config_loaded)
        if ended:
            log.info("the configuration loads: a new breakage will be told again")

    async def _saved_last_good(self, config: Config) -> None:
        now = datetime.now(UTC)
        self._good_version = now.isoformat()  # the snapshot's saved_at: the same after a restart on it
        problem = await asyncio.to_thread(self.source.save_last_good, config, now=now)
        if problem is not None:
            log.warning("%s; after a restart with broken files the agent would have no last good one to run", problem)

    async def _tell_not_on_disk(self, chosen: Chosen) -> None:
        """Started on something else than the files on disk: say so once (see :func:`_digest`)."""
        parts = self.running
        text = chosen.details()
        self._last_reload_error = text
        if chosen.snapshot is not None:
            self._good_version = chosen.snapshot.saved_at.isoformat()
        digest = self._digest(text)
        tags: tuple[str, ...] = ()
        if chosen.origin == "as-started":
            title, severity = f"[CONFIG] {chosen.summary()}", "warning"
            why = ("The stack settings file was edited after `agent stack up` started the programs; the agent "
                   "restarted since and runs the files on disk with the settings the programs run (kept by "
                   "`agent stack up`), not the edit. Run `agent stack up` to apply it (or undo the edit).")
        elif chosen.origin == "last-good":
            title, severity = f"[CONFIG] {chosen.summary()}", "warning"
            why = ("The configuration files on disk do not load, so the agent started on the last configuration "
                   "that loaded (kept under var/). Fix the files (`agent validate`); the agent loads them as soon "
                   "as they are valid.")
        else:
            title, severity, tags = f"[CONFIG] {chosen.summary()}", "critical", ("p0",)
            why = ("The configuration files on disk do not load and there is no last good configuration to run "
                   "instead: " + ("they run as they read: what the errors below say is not done as written "
                                  "(an empty when: runs its step unconditionally)"
                                  + (", and the playbooks that still do not load are left out." if chosen.left_out
                                     else ".") if chosen.origin == "as-read" else
                                  "only the playbooks that are valid run." if chosen.origin == "valid-part" else
                                  "NOTHING IS GUARDED (no check runs); only this message could be sent.")
                   + " Fix the files (`agent validate`); the agent loads them as soon as they are valid.")
        await parts.store_thread.call(lambda: parts.notifications.notice(
            None, title=title[:300], body=f"{why}\n\n{text}", severity=severity, tags=tags,
            dedup=f"{CONFIG_REJECTED}:{digest}"))

    # -- shutdown ------------------------------------------------------------------------------
    async def shutdown(self) -> None:
        parts = self.parts
        if parts is not None:
            await parts.scheduler.shutdown()
            await parts.pipeline.close()  # decisions still waiting for the store: one last attempt
            await parts.batcher.flush()  # nothing buffered is lost on a clean stop
            await parts.remediator.close()
        for t in list(self._background):
            t.cancel()
        if self._background:
            await asyncio.gather(*self._background, return_exceptions=True)
        # After the watchers are gone: a check they start can no longer open a new session.
        from agent.http import close_shared_clients

        await close_shared_clients()
        if parts is not None:
            await parts.direct.drain(timeout=5.0)
            if self._lost is not None:
                await self._hand_over(parts, self._lost)
            try:
                await parts.store_thread.call(parts.store.add_event, "stop", None, None, "agent stopped", {})
            except Exception:  # the store may be the reason we stop
                log.warning("agent stop not recorded", exc_info=True)
            await parts.store_thread.call(parts.store.close)
            parts.store_thread.shutdown()
        if self._internal is not None:
            logging.getLogger("agent").removeHandler(self._internal)
            self._internal = None
        if self._redaction is not None:  # several agents in one process (tests)
            from agent.notify import uninstall

            uninstall(logging.getLogger(), self._redaction)
            self._redaction = None


    async def _hand_over(self, parts: Collaborators, reason: str) -> None:
        """The database was lost: leave the next agent what was told and not resolved-told (the
        old file's incidents, read once more now, and the alerts sent without the store), so it
        tells their resolve (:mod:`agent.engine.store_handover`)."""
        path = parts.store_file.path if parts.store_file is not None else None
        if path is None:
            return
        try:
            told = await asyncio.wait_for(parts.store_thread.call(told_in_store, parts.store), UNSAID_READ_S)
        except Exception:  # what was read when it was lost, then
            log.warning("the lost database could not be read again; handing over what it said when it was lost",
                        exc_info=True)
            told = self._told
        told = merge(told, [*self._said, *told_directly(parts.pipeline.told_without_store())])
        catalog = CheckCatalog(parts.config.checks)
        for i, t in enumerate(told):  # told by no outbox row we know of: where it would be routed now
            if not t.routes:
                pairs = parts.notifications.router.route(
                    RoutedMessage(t.severity, t.host, t.play, t.check, catalog.tags(t.key)))
                told[i] = replace(t, routes=tuple((r.name, target) for r, target in pairs))
        if not told:
            return
        try:
            await asyncio.to_thread(write_handover, handover_path(path), told, reason, datetime.now(UTC),
                                    parts.notifications.redactor.redact)
        except Exception:  # told in the log; the next agent finds no file (or a temporary one) and says so
            log.exception("the hand-over to the next agent could not be written: %d problem(s) told and not "
                          "resolved will not be told resolved", len(told))
            return
        log.warning("handed over to the next agent: %d problem(s) told and not yet told resolved", len(told))


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
