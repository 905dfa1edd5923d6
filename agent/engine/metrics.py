"""The agent's own Prometheus metrics, served on 127.0.0.1 (settings ``agent.metrics_port``).

Exported (one private registry per agent, never the process-global default one):

* ``botwarden_scheduler_lateness_seconds`` (histogram): actual start minus scheduled start of
  every job run; a polled check that keeps its interval under load stays in the low buckets;
* ``botwarden_scheduler_skipped_in_flight_total``: runs skipped because the previous run of
  that check had not finished;
* ``botwarden_checks_in_flight``: checks running right now;
* ``botwarden_check_results_total{state}``: results by soft state (OK, WARNING, CRITICAL, UNKNOWN);
* ``botwarden_notifications{status}``: outbox rows by status (pending, sending, sent, failed,
  dead), refreshed every few seconds from the store;
* ``botwarden_exit_detections_total{source}``: program exits noticed by the pidfd watcher or the
  supervisord event listener (whichever was first);
* ``botwarden_heartbeat_deadlines_missed_total``;
* ``botwarden_agent_loop_alive_timestamp_seconds``: Unix time at which the agent's event loop
  last ran :meth:`AgentMetrics.beat_loop` (every ``LOOP_BEAT_S``). /metrics is served from its own
  thread and answers while the loop is blocked (a sync call in a coroutine, a deadlock): this
  figure is what says the loop itself still runs (the status page judges its age);
* ``process_resident_memory_bytes``, ``process_cpu_seconds_total``...: the agent process itself.

The HTTP server is prometheus_client's (a daemon thread): a scrape never waits for the event
loop, so /metrics answers even while the loop is busy, which is when it matters (and why an
answer alone does not say the loop runs: ``botwarden_agent_loop_alive_timestamp_seconds`` does).
"""
from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable, Iterator, Mapping
from typing import Any

from prometheus_client import (
    CollectorRegistry,
    Counter,
    Gauge,
    Histogram,
    ProcessCollector,
    start_http_server,
)
from prometheus_client.core import CounterMetricFamily, Metric
from prometheus_client.registry import Collector

log = logging.getLogger("agent.metrics")

LATENCY_BUCKETS = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0)
NOTIFICATION_STATUSES = ("pending", "sending", "sent", "failed", "dead")
LOOP_BEAT_S = 1.0
"""How often the event loop sets ``botwarden_agent_loop_alive_timestamp_seconds``."""


class AgentMetrics:
    """The metric objects; feed them, then :meth:`serve` them."""

    def __init__(self) -> None:
        self.registry = CollectorRegistry()
        r = self.registry
        self.lateness = Histogram("botwarden_scheduler_lateness_seconds",
                                  "Scheduler lateness: actual start minus scheduled start of each job run",
                                  buckets=LATENCY_BUCKETS, registry=r)
        self._skipped_in_flight: Callable[[], float] = lambda: 0.0
        r.register(_SkippedRuns(lambda: self._skipped_in_flight()))
        self.in_flight = Gauge("botwarden_checks_in_flight", "Checks running right now", registry=r)
        self.results = Counter("botwarden_check_results", "Check results by soft state", ["state"], registry=r)
        self.durations = Histogram("botwarden_check_duration_seconds", "Duration of each check run",
                                   buckets=LATENCY_BUCKETS, registry=r)
        self.notifications = Gauge("botwarden_notifications", "Outbox rows by status", ["status"], registry=r)
        self.exit_detections = Counter("botwarden_exit_detections", "Program exits noticed, by first source",
                                       ["source"], registry=r)
        self.heartbeat_missed = Counter("botwarden_heartbeat_deadlines_missed",
                                        "Heartbeat deadlines that passed without a beat", registry=r)
        self.loop_alive = Gauge("botwarden_agent_loop_alive_timestamp_seconds",
                                "Unix time the agent's event loop last ran (set by a task on the loop every second)",
                                registry=r)
        ProcessCollector(registry=r)  # process_resident_memory_bytes, process_cpu_seconds_total...
        self._server: Any = None

    def bind_scheduler(self, scheduler: Any, state_of: Callable[[Any], str | None]) -> None:
        """Observe ``scheduler``: lateness samples, in-flight count, and each result's state.

        ``state_of(bc)`` returns the soft state name the engine decided for ``bc``'s last result.
        """
        scheduler.lateness.observers.append(self.lateness.observe)
        self.in_flight.set_function(lambda: scheduler.in_flight)
        self._skipped_in_flight = lambda: float(scheduler.lateness.skipped_in_flight)

        def on_result(bc: Any, _result: Any, duration_ms: float) -> None:
            self.results.labels(state_of(bc) or "UNKNOWN").inc()
            self.durations.observe(duration_ms / 1000.0)

        scheduler.result_listeners.append(on_result)

    async def beat_loop(self, stop: asyncio.Event, every: float = LOOP_BEAT_S) -> None:
        """Set ``botwarden_agent_loop_alive_timestamp_seconds`` to now every ``every`` seconds,
        from the event loop itself, until ``stop`` is set (or the task is cancelled)."""
        while not stop.is_set():
            self.loop_alive.set_to_current_time()
            try:
                await asyncio.wait_for(stop.wait(), every)
            except TimeoutError:
                pass

    def set_notification_counts(self, counts: Mapping[str, int]) -> None:
        for status in NOTIFICATION_STATUSES:
            self.notifications.labels(status).set(counts.get(status, 0))

    def serve(self, port: int, host: str = "127.0.0.1") -> int | None:
        """Start the HTTP endpoint; returns the bound port, or None (logged) if it cannot bind."""
        try:
            server, _thread = start_http_server(port, addr=host, registry=self.registry)
        except OSError as exc:
            log.warning("agent /metrics not served on %s:%d: %s", host, port, exc)
            return None
        self._server = server
        bound = int(server.server_address[1])
        log.info("agent metrics on http://%s:%d/metrics", host, bound)
        return bound

    def close(self) -> None:
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
            self._server = None


class _SkippedRuns(Collector):
    """``botwarden_scheduler_skipped_in_flight_total``, a counter read from the scheduler's own
    count at scrape time (prometheus_client's Counter cannot be fed by a function)."""

    def __init__(self, read: Callable[[], float]) -> None:
        self._read = read

    def collect(self) -> Iterator[Metric]:
        yield CounterMetricFamily("botwarden_scheduler_skipped_in_flight",
                                  "Check runs skipped because the previous run was still in flight",
                                  value=self._read())


def notification_counts(store: Any) -> dict[str, int]:
    """Outbox rows by status, in one GROUP BY query (runs on the store's writer thread)."""
    from sqlalchemy import func, select
    from sqlalchemy.orm import Session

    from agent.store.models import NotificationRow

    with Session(store.engine) as session:
        rows = session.execute(select(NotificationRow.status, func.count()).group_by(NotificationRow.status))
        return {str(status): int(n) for status, n in rows}
