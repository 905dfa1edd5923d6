"""Event-driven detection for the resident agent, and its /metrics endpoint.

:class:`Detection` is one of the agent's collaborators, run as one background task. It derives
what to watch from the loaded configuration, declaratively, and re-derives it after a reload:

* every ``supervisor`` check with ``watch: true`` (the default): a :class:`ProgramWatcher` per
  (supervisord URL, program), fed by a pidfd and by supervisord's PROCESS_STATE events (the
  ``agent events-listener`` program forwards them to the ``agent.events_socket``); on an exit
  every check of that program runs at once. The alert goes out from that result and the
  remediation's XML-RPC call reaches a supervisord that has already reaped the child;
* every ``heartbeat`` check: a :class:`HeartbeatWatcher` runs it at the deadline of the last beat;
* :class:`AgentMetrics` observes the scheduler and serves /metrics on 127.0.0.1.

It is given what it uses (the live configuration, the scheduler, a way to read a check's state
and the outbox's counts), never the agent itself.
"""
from __future__ import annotations

import asyncio
import logging
from collections import defaultdict
from collections.abc import Awaitable, Callable, Coroutine, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

from agent.engine.metrics import AgentMetrics
from agent.engine.waits import stopped_within
from agent.engine.watchers.heartbeat import HeartbeatWatcher
from agent.engine.watchers.process_exit import ProgramWatcher
from agent.engine.watchers.supervisor_events import (
    EXIT_STATES,
    START_STATES,
    SupervisorEvent,
    open_event_socket,
)
from agent.modules.checks.heartbeat import HeartbeatCheck
from agent.modules.checks.supervisor import SupervisorCheck
from agent.playbook.binding import BoundCheck

if TYPE_CHECKING:
    from agent.engine.live_config import LiveConfig
    from agent.engine.scheduler import CheckScheduler
    from botwarden.settings import StackSettings

log = logging.getLogger("agent.watch")

CONFIG_POLL_S = 0.5
NOTIFICATION_REFRESH_S = 5.0


class Detection:
    """Owns the watchers of one resident agent; see the module docstring."""

    def __init__(self, *, config: LiveConfig, scheduler: CheckScheduler, state_of: Callable[[str], str | None],
                 notification_counts: Callable[[], Awaitable[dict[str, int]]]) -> None:
        self._live = config
        self._scheduler = scheduler
        self._state_of_key = state_of
        self._notification_counts = notification_counts
        self.metrics = AgentMetrics()
        self.programs: dict[tuple[str, str], ProgramWatcher] = {}
        self.heartbeats: dict[str, HeartbeatWatcher] = {}
        self._program_checks: dict[tuple[str, str], list[BoundCheck]] = {}
        self._tasks: dict[tuple[str, Any], asyncio.Task[None]] = {}
        self._generation = -1
        self.metrics_port: int | None = None

    async def run(self, stop: asyncio.Event) -> None:
        settings = self._live.current.settings
        self.metrics.bind_scheduler(self._scheduler, self._state_of)
        if settings.agent.metrics_port:
            self.metrics_port = self.metrics.serve(settings.agent.metrics_port)
        transport = await open_event_socket(settings.path(settings.agent.events_socket), self.on_event)
        self._start(("loop", "alive"), self.metrics.beat_loop(stop))
        try:
            refreshed = 0.0
            loop = asyncio.get_running_loop()
            while not stop.is_set():
                if self._live.generation != self._generation:
                    self._generation = self._live.generation
                    self._sync(self._live.current.bound_checks)
                if loop.time() - refreshed > NOTIFICATION_REFRESH_S:
                    refreshed = loop.time()
                    await self._refresh_notification_counts()
                if await stopped_within(stop, CONFIG_POLL_S):
                    break
        finally:
            for task in self._tasks.values():
                task.cancel()
            await asyncio.gather(*self._tasks.values(), return_exceptions=True)
            if transport is not None:
                transport.close()
            self.metrics.close()

    # -- configuration -> watchers ---------------------------------------------------------------
    def _sync(self, bound_checks: Sequence[BoundCheck]) -> None:
        programs: dict[tuple[str, str], list[BoundCheck]] = defaultdict(list)
        heartbeats: dict[str, BoundCheck] = {}
        for bc in bound_checks:
            if bc.module is SupervisorCheck and getattr(bc.params, "watch", False):
                url = getattr(bc.params, "url", None) or bc.host.supervisor_url
                if url:
                    programs[(url, str(getattr(bc.params, "program", "")))].append(bc)
            elif bc.module is HeartbeatCheck:
                heartbeats[bc.key] = bc
        # Checks of a program: every check on the same host whose params name that program (the
        # process check too), so an exit refreshes all of them.
        for (_url, program), bcs in programs.items():
            hosts = {bc.host.name for bc in bcs}
            keys = {bc.key for bc in bcs}
            for bc in bound_checks:
                if bc.key not in keys and bc.host.name in hosts and getattr(bc.params, "program", None) == program:
                    bcs.append(bc)
        self._program_checks = dict(programs)
        for key in [k for k in self.programs if k not in programs]:
            self._stop(("program", key))
            del self.programs[key]
        for key in programs:
            if key not in self.programs:
                watcher = self.programs[key] = ProgramWatcher(key[0], key[1], self._on_exit,
                                                              on_start=self._on_start)
                self._start(("program", key), watcher.run())
        for hb_key in list(self.heartbeats):  # params may have changed: restart every heartbeat watcher
            self._stop(("heartbeat", hb_key))
        self.heartbeats = {key: HeartbeatWatcher(bc, self._trigger_heartbeat) for key, bc in heartbeats.items()}
        for hb_key, hb in self.heartbeats.items():
            self._start(("heartbeat", hb_key), hb.run())
        log.info("watching %d program(s) and %d heartbeat(s)", len(self.programs), len(self.heartbeats))

    def _start(self, key: tuple[str, Any], coro: Coroutine[Any, Any, None]) -> None:
        self._tasks[key] = asyncio.get_running_loop().create_task(coro, name=f"watch:{key[0]}:{key[1]}")

    def _stop(self, key: tuple[str, Any]) -> None:
        task = self._tasks.pop(key, None)
        if task is not None:
            task.cancel()

    # -- triggers --------------------------------------------------------------------------------
    def _run_checks(self, bcs: list[BoundCheck]) -> None:
        scheduler = self._scheduler
        if not scheduler.running:
            return
        for bc in bcs:
            scheduler.run_now(bc, rerun_if_busy=True)

    async def _on_exit(self, watcher: ProgramWatcher, pid: int, source: str) -> None:
        self.metrics.exit_detections.labels(source).inc()
        self._run_checks(self._program_checks.get((watcher.url, watcher.program), []))

    def _on_start(self, watcher: ProgramWatcher, pid: int) -> None:
        self._run_checks(self._program_checks.get((watcher.url, watcher.program), []))

    def _trigger_heartbeat(self, bc: BoundCheck, why: str) -> None:
        if why == "heartbeat deadline missed":
            self.metrics.heartbeat_missed.inc()
        self._run_checks([bc])

    def on_event(self, event: SupervisorEvent) -> None:
        """A PROCESS_STATE event from the listener: an exit runs the checks, a start re-arms."""
        for (_url, program), watcher in self.programs.items():
            if program not in event.names():
                continue
            if event.state in START_STATES:
                watcher.nudge()
            elif event.state in EXIT_STATES:
                asyncio.get_running_loop().create_task(watcher.exited(event.pid, "event"))

    # -- helpers ---------------------------------------------------------------------------------
    def _state_of(self, bc: BoundCheck) -> str | None:
        return self._state_of_key(bc.key)

    async def _refresh_notification_counts(self) -> None:
        try:
            counts = await self._notification_counts()
        except Exception:  # a metric must never take the agent down
            log.debug("notification counts not refreshed", exc_info=True)
            return
        self.metrics.set_notification_counts(counts)


def events_socket_path(settings: StackSettings) -> Path:
    """Where the agent listens for supervisord events (settings ``agent.events_socket``)."""
    return Path(settings.path(settings.agent.events_socket))
