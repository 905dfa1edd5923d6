"""Schedule bound checks with APScheduler (asyncio) and run each in isolation.

One APScheduler job per (play, host, schedule). A job does not await its checks: it starts
each one as its own task, unless that check is still in flight (no overlapping runs of the same
check). So a slow, hung or crashing check never delays or kills the others; its own timeout
ends it and it reports UNKNOWN. Lateness (actual start minus scheduled start) is measured for
every check a job starts (when its task actually begins) and exported as a metric
(agent/engine/metrics.py).

Spreading (as Prometheus staggers scrapes and Nagios interleaves service checks): the checks of
an interval job all run at once when the job is installed (agent start, reload), so every state
is fresh immediately; after that each check runs at its own fixed phase within the interval,
evenly spaced within its job, the job's phases rotated by a stable hash of its id. A thousand
checks every second then start one per millisecond instead of a thousand in the same instant:
a burst makes the last check of it late by the whole burst's work (measured at 1000 checks/s:
lateness p99 in the <= 250 ms bucket started together, <= 10 ms spread). Each check still runs
every ``interval``; only the gap between its first and second run is longer, by its phase (less
than one interval).
Cron jobs run their checks at the times they name, all at once.
"""
from __future__ import annotations

import asyncio
import logging
import time
import zlib
from collections import defaultdict
from collections.abc import Awaitable, Callable, Iterable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from apscheduler.events import EVENT_JOB_SUBMITTED, JobSubmissionEvent
from apscheduler.schedulers.asyncio import AsyncIOScheduler
from apscheduler.triggers.interval import IntervalTrigger

from agent.engine.internal_errors import costs
from agent.modules.base import BlockingRunner, CheckModule, CheckResult, Notifier, RunContext
from agent.modules.probe_pools import ProbePools
from agent.playbook.binding import BoundCheck
from botwarden.errors import BotwardenError

log = logging.getLogger("agent.scheduler")

ResultHandler = Callable[[BoundCheck, CheckResult, datetime, float], Awaitable[None]]
ResultListener = Callable[[BoundCheck, CheckResult, float], None]
"""Called after a result was handled: (bound check, result, duration_ms). Must not block."""


@dataclass
class LatenessStats:
    """Scheduler lateness in seconds, kept small: a bounded reservoir plus counters."""

    count: int = 0
    total: float = 0.0
    max: float = 0.0
    recent: list[float] = field(default_factory=list)
    skipped_in_flight: int = 0
    observers: list[Callable[[float], None]] = field(default_factory=list)
    """Called with every sample (the Prometheus histogram of agent.engine.metrics)."""

    def add(self, seconds: float) -> None:
        for observe in self.observers:
            observe(seconds)
        self.count += 1
        self.total += seconds
        self.max = max(self.max, seconds)
        self.recent.append(seconds)
        if len(self.recent) > 2048:
            del self.recent[:1024]

    def quantile(self, q: float) -> float:
        if not self.recent:
            return 0.0
        data = sorted(self.recent)
        return data[min(len(data) - 1, int(q * len(data)))]


class CheckScheduler:
    """Owns the APScheduler instance and the in-flight set."""

    def __init__(self, on_result: ResultHandler, *, notifier: Notifier | None = None,
                 pools: ProbePools | None = None) -> None:
        self._on_result = on_result
        self._notifier = notifier
        self._owns_pools = pools is None
        self.pools = pools or ProbePools()
        """The blocking calls of checks run on these, one bounded pool per module kind."""
        self._scheduler = AsyncIOScheduler(timezone=UTC)
        self._scheduler.add_listener(self._submitted, EVENT_JOB_SUBMITTED)
        self._in_flight: dict[str, asyncio.Task[None]] = {}
        # Checks an event asked to run while they were already in flight: the running probe may
        # have looked before the event (a RUNNING pid that has just died), so run them once more.
        self._rerun: dict[str, BoundCheck] = {}
        self.result_listeners: list[ResultListener] = []
        self._due: dict[str, float] = {}  # job id -> scheduled time (epoch s) of its current run
        self._modules: dict[type[CheckModule], CheckModule] = {}
        self._groups: dict[str, list[BoundCheck]] = {}
        self._phases: dict[str, list[float]] = {}  # interval job id -> each check's phase (s)
        self._first_run: set[str] = set()  # jobs whose next run is their first: all checks at once
        self._spread: dict[str, list[asyncio.TimerHandle]] = {}  # job id -> its pending phased starts
        self.lateness = LatenessStats()

    # -- lifecycle -----------------------------------------------------------------------------
    def start(self, bound_checks: Sequence[BoundCheck]) -> None:
        self._install(bound_checks)
        self._scheduler.start()

    def replace(self, bound_checks: Sequence[BoundCheck]) -> None:
        """Swap in a new set of checks (after a reload). Checks in flight finish normally."""
        for job in self._scheduler.get_jobs():
            job.remove()
        self._cancel_spread()
        self._groups.clear()
        self._phases.clear()
        self._first_run.clear()
        self._install(bound_checks)

    async def shutdown(self, grace: float = 5.0) -> None:
        if self._scheduler.running:
            self._scheduler.shutdown(wait=False)
        self._cancel_spread()
        tasks = list(self._in_flight.values())
        if tasks:
            _, pending = await asyncio.wait(tasks, timeout=grace)
            for t in pending:
                t.cancel()
        if self._owns_pools:
            self.pools.close()

    @property
    def apscheduler(self) -> AsyncIOScheduler:
        """The underlying scheduler, shared with :mod:`agent.engine.scheduled_plays`."""
        return self._scheduler

    @property
    def in_flight(self) -> int:
        return len(self._in_flight)

    @property
    def running(self) -> bool:
        """True between :meth:`start` and :meth:`shutdown`."""
        return bool(self._scheduler.running)

    # -- scheduling ----------------------------------------------------------------------------
    def _install(self, bound_checks: Iterable[BoundCheck]) -> None:
        groups: dict[tuple[str, str, str], list[BoundCheck]] = defaultdict(list)
        triggers: dict[tuple[str, str, str], Any] = {}
        for bc in bound_checks:
            trigger, label = self._trigger_for(bc)
            if trigger is None:
                continue  # on-demand play: nothing to schedule
            gk = (bc.play.name, bc.host.name, label)
            groups[gk].append(bc)
            triggers[gk] = trigger
        now = datetime.now(UTC)
        for gk, checks in groups.items():
            job_id = "/".join(gk)
            self._groups[job_id] = checks
            first = None
            interval = checks[0].interval
            if isinstance(triggers[gk], IntervalTrigger) and interval is not None:
                first = now
                self._first_run.add(job_id)
                self._phases[job_id] = spread_phases(job_id, len(checks), interval)
            self._scheduler.add_job(
                self._run_group, trigger=triggers[gk], args=[job_id], id=job_id, name=job_id,
                max_instances=1, coalesce=True, misfire_grace_time=None, next_run_time=first,
                replace_existing=True,
            )
        log.info("scheduled %d checks in %d jobs", sum(map(len, groups.values())), len(groups))

    @staticmethod
    def _trigger_for(bc: BoundCheck) -> tuple[Any, str]:
        if bc.interval:
            return IntervalTrigger(seconds=bc.interval, timezone=UTC), f"every {bc.interval:g}s"
        sched = getattr(bc.play, "schedule", None)
        if sched is not None and getattr(sched, "cron", None):
            # Schedule.trigger() maps crontab weekdays (0=Sunday) to names: APScheduler 3 counts
            # 0=Monday, so a raw from_crontab("0 8 * * 1-5") would fire Tuesday to Saturday.
            return sched.trigger(), f"cron {sched.cron} {sched.timezone}"
        return None, ""

    def _submitted(self, event: JobSubmissionEvent) -> None:
        if event.scheduled_run_times:
            self._due[event.job_id] = event.scheduled_run_times[-1].timestamp()

    async def _run_group(self, job_id: str) -> None:
        due = self._due.pop(job_id, None)
        checks = self._groups.get(job_id, ())
        phases = self._phases.get(job_id)
        if phases is None or due is None or job_id in self._first_run:
            self._first_run.discard(job_id)
            for bc in checks:
                self.run_now(bc, due=due)
            return
        # Phased starts, timed from the scheduled time (not from this late-or-not job run).
        loop = asyncio.get_running_loop()
        now, loop_now = time.time(), loop.time()
        handles = self._spread[job_id] = []
        for bc, phase in zip(checks, phases, strict=True):
            at = due + phase
            if at <= now:
                self.run_now(bc, due=at)
            else:
                handles.append(loop.call_at(loop_now + (at - now), self._phased_start, bc, at))

    def _phased_start(self, bc: BoundCheck, due: float) -> None:
        if self._scheduler.running:
            self.run_now(bc, due=due)

    def _cancel_spread(self) -> None:
        for handles in self._spread.values():
            for handle in handles:
                handle.cancel()
        self._spread.clear()

    def run_now(self, bc: BoundCheck, *, rerun_if_busy: bool = False, due: float | None = None) -> bool:
        """Start one check unless it is already running. Returns whether it was started.

        ``rerun_if_busy`` (event-driven triggers): if the check is in flight, run it once more
        as soon as that run ends, because the running probe may predate the event.
        ``due`` (scheduled runs): the epoch time the run was scheduled for; lateness is measured
        when the check's task starts.
        """
        if bc.key in self._in_flight:
            if rerun_if_busy:
                self._rerun[bc.key] = bc
            else:
                self.lateness.skipped_in_flight += 1
            return False
        task = asyncio.get_running_loop().create_task(self._run_one(bc, due), name=f"check:{bc.key}")
        self._in_flight[bc.key] = task
        key: str = bc.key
        task.add_done_callback(lambda _t: self._finished(key))
        return True

    def _finished(self, key: str) -> None:
        self._in_flight.pop(key, None)
        again = self._rerun.pop(key, None)
        if again is not None and self._scheduler.running:
            self.run_now(again)

    def _module(self, cls: type[CheckModule]) -> CheckModule:
        inst = self._modules.get(cls)
        if inst is None:
            inst = self._modules[cls] = cls()  # one instance per type: shared clients, pools
        return inst

    async def _run_one(self, bc: BoundCheck, due: float | None = None) -> None:
        started = datetime.now(UTC)
        if due is not None:
            self.lateness.add(max(0.0, started.timestamp() - due))
        t0 = time.monotonic()
        result = await run_check(self._module(bc.module), bc, notifier=self._notifier,
                                 blocking=self.pools.for_kind(bc.module.name))
        duration_ms = (time.monotonic() - t0) * 1000
        try:
            await self._on_result(bc, result, started, duration_ms)
        except Exception:  # recording must never kill the scheduler
            log.exception("handling the result of %s failed", bc.key, extra=costs(
                "that result was not acted on (no state change, alert or remediation from it), nor will the "
                "next ones be while this lasts"))
        for listener in self.result_listeners:
            try:
                listener(bc, result, duration_ms)
            except Exception:  # a listener's bug must not stop checks
                log.exception("result listener failed for %s", bc.key, extra=costs(
                    "that result was not passed on to its listeners: the retries that confirm a failing check "
                    "and the probes of what it depends on may not run, and its metrics are not counted"))


def spread_phases(job_id: str, n: int, interval: float) -> list[float]:
    """Each of ``n`` checks' phase (seconds into the interval): evenly spaced, rotated by a
    stable hash of the job id so that jobs of the same interval do not start together."""
    rotation = zlib.crc32(job_id.encode()) / 2**32
    return [((rotation + i / n) % 1.0) * interval for i in range(n)]


async def run_check(module: CheckModule, bc: BoundCheck, *, notifier: Notifier | None = None,
                    blocking: BlockingRunner | None = None) -> CheckResult:
    """Run one bound check with its timeout; every failure becomes a result with ``error``."""
    ctx = RunContext(host=bc.host, timeout=bc.timeout, notifier=notifier, template_vars=bc.vars,
                     reason=f"scheduled check {bc.key}", blocking=blocking)
    try:
        return await asyncio.wait_for(module.run(bc.params, ctx), timeout=bc.timeout)
    except TimeoutError:
        return CheckResult.failed(f"timed out after {bc.timeout:g}s")
    except BotwardenError as exc:
        return CheckResult.failed(exc.message)
    except asyncio.CancelledError:
        raise
    except Exception as exc:  # a module bug is UNKNOWN with the reason, not a crash
        log.exception("check module %s raised", module.name)
        return CheckResult.failed(f"module error: {type(exc).__name__}: {exc}")
