"""Play runs cut short are never left unnoticed.

A *play run* is one run of a play's task list: ``agent run-playbook`` (and a web page's play),
the remediation budget's hand-over, a scheduled play. Its record (``play_runs``) is written
before its first task acts, names its owner process (host, pid and the process's start time,
so a reused pid is not mistaken for it), gains each finished task, and gets its end (``done``,
``failed``, or ``interrupted``: stopped between two tasks by SIGINT, SIGTERM or SIGHUP).
Remediation steps are not play runs (their start and outcome are the incident's events).

The resident agent looks, when it starts and every :data:`SWEEP_SECONDS`, for runs that were
cut short: no end recorded and an owner that is gone (killed, SIGKILL included), or an end
``interrupted``. Each is claimed once (two agents never handle one run twice) and:

* a play that says ``on_interrupt: resume`` (the shipped ``emergency``: its halt, cancels,
  flatten, stop and snapshot are idempotent, and every task after the halt needs the ones
  before) is run again from its first task on the hosts it had, by the agent, unless an
  operator stopped it with Ctrl-C (SIGINT: a decision, not an accident; told only). The run
  again says in its ``reason`` that it finishes a run cut short, and what that run had done:
  the emergency's own page quotes it, and is the one message. The run again's start is recorded
  with the claim (before it waits for its targets' locks): an agent killed before the run again
  began leaves a run again cut short, found by the next sweep. A message the run cut short had
  already queued is not queued again by the run again (its key is the first run's, the host, the
  task and the title: :meth:`RunRecord.message_key`), unless its title now says something else;
  only when no message was queued by either is the operator paged separately. A run again
  that is cut short too is resumed again, at most :data:`MAX_ATTEMPTS` runs in all; past that it is told only;
* any other play is told at once through the page route: which tasks finished on which host,
  which did not, and what to type to finish it.

A run superseded by a later run of its play on its hosts (:func:`superseded_by`: an operator's
run by hand after the cut, ended done or under way) is only recorded: running it again would
undo what was done since. A resumable run begun more than :data:`RESUME_WITHIN` ago is told,
not run again.
"""
from __future__ import annotations

import asyncio
import functools
import logging
import os
import socket
import uuid
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING, Any

import psutil

from agent.engine.internal_errors import costs
from agent.engine.locks import operator_lock_targets, target_locks
from agent.engine.store_thread import StoreThread, describe_store_error
from agent.engine.waits import stopped_within

if TYPE_CHECKING:
    from agent.engine.live_config import LiveConfig
    from agent.engine.play_runner import TaskOutcome
    from agent.engine.task_runner import TaskRunner
    from agent.notify import Notifications
    from agent.store import PlayRunRecord, Store

log = logging.getLogger("agent.play")

SWEEP_SECONDS = 5.0
MAX_ATTEMPTS = 3
"""Runs of one resumable play run in all (the first and the runs again) before it is told only:
a play that kills its own runner must not be run forever."""
RESUME_WITHIN = timedelta(minutes=15)
"""A resumable run that began longer ago than this is told, not run again: an agent that was
down for an hour must not flatten positions the operator opened since."""
RECENT_RUNS = 200
"""Runs read to find one that supersedes a run cut short."""
RECORD_WAIT_S = 0.5
"""How long a run waits for its start record before its first task acts anyway (a locked store
must not hold an emergency's halt)."""
START_TIME_SLACK_S = 1.0
"""How far a process's start time may read apart and still be the same process."""
ON_INTERRUPT = ("tell", "resume")

StoreCall = Callable[..., Any]


def this_process() -> tuple[str, int, float]:
    """``(host name, pid, start time)`` of this process."""
    return socket.gethostname(), os.getpid(), psutil.Process().create_time()


def owner_alive(run: PlayRunRecord) -> bool:
    """Whether the process that owns ``run`` may still be running it. A run owned on another
    host cannot be judged from here: it is taken as alive (its own host's agent judges it)."""
    if run.owner_host != socket.gethostname():
        return True
    try:
        proc = psutil.Process(run.owner_pid)
        started = float(proc.create_time())
        if proc.status() == psutil.STATUS_ZOMBIE:
            return False  # dead, not reaped yet
    except psutil.NoSuchProcess:  # ZombieProcess included
        return False
    except psutil.Error:
        return True  # cannot read it (permissions): not known to be gone
    return abs(started - run.owner_started) <= START_TIME_SLACK_S


class RunRecord:
    """The record of one play run, written through ``call(fn, *args)`` on the caller's store
    thread. A store that cannot be written never stops the run (logged; the run goes on)."""

    def __init__(self, store: Store, call: StoreCall, *, actor: str, reason: str, on_interrupt: str = "tell",
                 attempt: int = 1, resumed_from: str | None = None) -> None:
        self._store, self._call = store, call
        self.actor, self.reason, self.on_interrupt = actor, reason, on_interrupt
        self.attempt, self.resumed_from = attempt, resumed_from
        self.root = (resumed_from or "").partition(".")[0] or uuid.uuid4().hex[:16]
        """The first run of a chain of runs again (this run when it is not one): a run again is
        ``ROOT.ATTEMPT``, so a message one run of the chain sent is not sent again by the next."""
        self.run = f"{self.root}.{attempt}" if resumed_from else self.root
        self._pending: list[asyncio.Future[Any]] = []
        self._uses: dict[tuple[str, str, int | None], int] = {}
        self._begun = False
        self.ended = False

    def start_fields(self, play: str, hosts: Sequence[str], tasks: Sequence[str]) -> dict[str, Any]:
        """The arguments of the store's ``start_play_run`` for this run, owned by this process."""
        owner_host, pid, started = this_process()
        return dict(run=self.run, play=play, hosts=list(hosts), tasks=list(tasks), actor=self.actor,
                    reason=self.reason, on_interrupt=self.on_interrupt, owner_host=owner_host, owner_pid=pid,
                    owner_started=started, started_at=datetime.now(UTC), attempt=self.attempt,
                    resumed_from=self.resumed_from)

    def started_elsewhere(self) -> None:
        """Its start is recorded already (with the claim of the run it finishes): :meth:`begin`
        writes nothing."""
        self._begun = True

    async def begin(self, play: str, hosts: Sequence[str], tasks: Sequence[str]) -> None:
        """Written before the first task acts (waiting :data:`RECORD_WAIT_S` at most)."""
        if self._begun:
            return
        self._begun = True
        job = asyncio.ensure_future(self._call(functools.partial(
            self._store.start_play_run, **self.start_fields(play, hosts, tasks))))
        self._pending.append(job)
        job.add_done_callback(self._logged("start"))
        await asyncio.wait({job}, timeout=RECORD_WAIT_S)

    def message_key(self, host: str, task: str, line: int | None) -> str:
        """The key under which a message of ``task`` (written at ``line`` of its file: two tasks
        of one name are two tasks) on ``host`` is queued once for the whole chain (:attr:`root`).

        Each call is the task's next run on the host in this run (a YAML anchor used again, a
        retry of ``until``): the N-th is its own message (``#N``), as the N-th of the run again
        is the same one, so a run sends as many messages as it runs such tasks, and the run
        again only those the run cut short had not sent."""
        where = (host, task, line)
        self._uses[where] = n = self._uses.get(where, 0) + 1
        return f"play-run:{self.root}:{host}:{task}:{line or ''}" + (f"#{n}" if n > 1 else "")

    def task_done(self, outcome: TaskOutcome) -> None:
        """Queue one finished task (in order after the start; not waited for)."""
        entry = {"host": outcome.host, "task": outcome.task, "status": outcome.status, "msg": outcome.msg[:300]}
        job = asyncio.ensure_future(self._call(self._store.play_run_task_done, self.run, entry))
        job.add_done_callback(self._logged("task"))
        self._pending.append(job)

    async def end(self, outcome: str, signal: str | None = None, *, wait: float = 5.0) -> None:
        """Record the end (after everything queued before it)."""
        self.ended = True
        job = asyncio.ensure_future(self._call(functools.partial(
            self._store.end_play_run, self.run, outcome=outcome, at=datetime.now(UTC), signal=signal)))
        job.add_done_callback(self._logged("end"))
        self._pending.append(job)
        await asyncio.wait(set(self._pending), timeout=wait)
        self._pending.clear()

    def _logged(self, what: str) -> Callable[[asyncio.Future[Any]], None]:
        def done(f: asyncio.Future[Any]) -> None:
            exc = None if f.cancelled() else f.exception()
            if exc is not None:
                log.error("play run %s: its %s was not recorded: %s", self.run, what, describe_store_error(exc))
        return done


def superseded_by(run: PlayRunRecord, recent: Sequence[PlayRunRecord]) -> PlayRunRecord | None:
    """A run of the same play on (at least) the same hosts begun after ``run`` that ended done or
    is under way (an operator's `agent run-playbook` after the cut, a run again): ``run`` needs
    nothing more, and running it again would undo what was done since (a bot started again)."""
    for later in recent:
        if later.run == run.run or later.play != run.play or later.started_at <= run.started_at:
            continue
        if not set(run.hosts) <= set(later.hosts):
            continue
        if later.outcome == "done" or (later.ended_at is None and owner_alive(later)):
            return later
    return None


def describe(run: PlayRunRecord, *, alive: bool) -> str:
    """How ``run`` ended, in the operator's words."""
    if run.outcome == "interrupted":
        return f"stopped by {run.signal or 'a signal'} between two tasks"
    if run.owner_host != socket.gethostname() or alive:
        return "its end was never recorded"
    return f"its process (pid {run.owner_pid} on {run.owner_host}) died during it"


def progress_lines(run: PlayRunRecord) -> list[str]:
    """Per host: the tasks that finished (with their status) and the ones that did not."""
    out = []
    for host in run.hosts:
        finished = [f"{d.get('task')} ({d.get('status')})" for d in run.done if d.get("host") == host]
        out.append(f"{host}: done: {'; '.join(finished) or 'nothing'}")
        out.append(f"{host}: NOT done: {'; '.join(run.left(host)) or 'nothing'}")
    return out


def retry_command(run: PlayRunRecord) -> str:
    limit = f" --limit {','.join(run.hosts)}" if run.hosts else ""
    return f"agent run-playbook {run.play}{limit} --yes"


class InterruptedRuns:
    """The resident agent's sweep of play runs cut short (see the module docstring)."""

    def __init__(self, *, config: LiveConfig, tasks: TaskRunner, notifications: Notifications, store: Store,
                 store_thread: StoreThread) -> None:
        self._config = config
        self._tasks = tasks
        self._notifications = notifications
        self._store = store
        self._thread = store_thread
        self.handled = 0
        """Runs handled (for tests and the log)."""

    async def run(self, stop: asyncio.Event) -> None:
        while not stop.is_set():
            try:
                await self.sweep()
            except Exception:  # a failed sweep is retried at the next one
                log.exception("sweep of play runs cut short failed", extra=costs(
                    "play runs cut short (an emergency killed half-way) are not finished or told until a sweep "
                    "works"))
            if await stopped_within(stop, SWEEP_SECONDS):
                return

    async def sweep(self) -> int:
        """Handle every run cut short now; returns how many."""
        count = 0
        recent: list[PlayRunRecord] | None = None
        for run in await self._thread.call(self._store.play_runs_to_look_at):
            alive = owner_alive(run)
            if run.ended_at is None and alive:
                continue  # under way (here, in another process, or on another host)
            if recent is None:
                recent = await self._thread.call(functools.partial(self._store.play_runs, limit=RECENT_RUNS))
            later = superseded_by(run, recent)
            stale = datetime.now(UTC) - run.started_at > RESUME_WITHIN
            resume = later is None and not stale and self._resumable(run)
            how = (f"superseded by run {later.run}" if later is not None
                   else "resuming it" if resume else "told")
            what = describe(run, alive=alive)
            again = self._run_again(run, what) if resume else None
            # The run again's start is written with the claim: killed before it began (waiting for
            # a lock), the agent started again finds the run again cut short and runs it.
            then_start = again.record.start_fields(again.play.name, [h.name for h in again.hosts],
                                                   task_names(again.play.tasks)) if again else None
            if not await self._thread.call(functools.partial(self._store.claim_play_run, run.run,
                                                             at=datetime.now(UTC), handled=how,
                                                             then_start=then_start)):
                continue  # another agent took it
            if again is not None:
                again.record.started_elsewhere()
            count += 1
            self.handled += 1
            log.warning("play run %s of %s by %s cut short (%s); %s", run.run, run.play, run.actor, what, how)
            try:
                await self._thread.call(self._store.add_event, "play-run-cut-short", None, None,
                                        f"{run.play} run by {run.actor} cut short: {what}; {how}",
                                        {"run": run.run, "play": run.play,
                                         "left": {h: run.left(h) for h in run.hosts}})
            except Exception as exc:  # noqa: BLE001 - the run claimed is handled all the same
                log.error("event of play run %s cut short not stored: %s", run.run, describe_store_error(exc))
            if again is not None:
                await self._resume(run, what, again)
                # The run again may supersede a run cut short still to look at in this sweep (the
                # same play on the same hosts cut short twice): read the runs again.
                recent = None
            elif later is not None:
                log.info("play run %s of %s needs nothing more: run %s of it, begun later on its hosts, %s",
                         run.run, run.play, later.run, "ended done" if later.outcome == "done" else "is under way")
            elif stale and self._resumable(run):
                await self._tell(run, what, why_not_resumed=(
                    f"it began at {run.started_at.strftime('%H:%M UTC')}, more than "
                    f"{RESUME_WITHIN.total_seconds() / 60:.0f} minutes ago (the agent was not running since): the "
                    "agent does not act on an old run by itself, as positions and orders may have been changed "
                    "on purpose since"))
            else:
                await self._tell(run, what, why_not_resumed=self._why_not(run))
        return count

    def _resumable(self, run: PlayRunRecord) -> bool:
        play = self._config.current.playbooks.get(run.play)
        return (play is not None and getattr(play, "on_interrupt", "tell") == "resume"
                and run.on_interrupt == "resume" and run.signal != "SIGINT" and run.attempt < MAX_ATTEMPTS
                and not self._tasks.check_mode)

    def _why_not(self, run: PlayRunRecord) -> str:
        play = self._config.current.playbooks.get(run.play)
        if play is None:
            return f"playbook {run.play} is no longer loaded"
        if run.on_interrupt != "resume" or getattr(play, "on_interrupt", "tell") != "resume":
            return f"playbook {run.play} is not re-run by the agent (it has no `on_interrupt: resume`)"
        if run.signal == "SIGINT":
            return "an operator stopped it with Ctrl-C"
        if run.attempt >= MAX_ATTEMPTS:
            return f"it was run {run.attempt} times and cut short each time"
        return "the agent runs in check mode"

    async def _tell(self, run: PlayRunRecord, what: str, *, why_not_resumed: str, extra: str = "") -> None:
        body = "\n".join([
            f"Playbook {run.play}, run by {run.actor} at {run.started_at.strftime('%Y-%m-%d %H:%M:%S UTC')}, "
            f"was cut short: {what}.", *(f"- {line}" for line in progress_lines(run)),
            *( [extra] if extra else []),
            f"Nothing re-runs it: {why_not_resumed}.",
            f"To finish it: `{retry_command(run)}`."])
        await self._page(run, f"[PAGE] playbook {run.play} cut short on {', '.join(run.hosts) or 'no host'}: "
                              "tasks NOT done", body)

    async def _page(self, run: PlayRunRecord, title: str, body: str) -> None:
        n = self._notifications
        await self._thread.call(lambda: n.notice(None, title=title, body=body, severity=n.PAGE_SEVERITY,
                                                 host=", ".join(run.hosts), play=run.play, tags=n.PAGE_TAGS,
                                                 dedup=f"play-run-cut-short:{run.run}"))

    def _run_again(self, run: PlayRunRecord, what: str) -> _RunAgain:
        config = self._config.current
        play = config.playbooks[run.play]
        hosts = [h for h in config.hosts_of(play) if h.name in run.hosts]
        note = (f"finishing run {run.run} of {run.play} by {run.actor}, cut short ({what}); it had done: "
                + "; ".join(f"{d.get('host')}: {d.get('task')} ({d.get('status')})" for d in run.done)
                if run.done else f"finishing run {run.run} of {run.play} by {run.actor}, cut short ({what}) "
                                 "before any task finished")
        reason = f"{run.reason}; {note}" if run.reason else note
        record = RunRecord(self._store, self._thread.call, actor="agent (resume)", reason=reason,
                           on_interrupt="resume", attempt=run.attempt + 1, resumed_from=run.run)
        return _RunAgain(config, play, hosts, reason, record)

    async def _resume(self, run: PlayRunRecord, what: str, again: _RunAgain) -> None:
        from agent.engine.play_runner import PlayRecap
        from agent.engine.remediator import paged_by

        config, play, hosts, reason, record = again.config, again.play, again.hosts, again.reason, again.record
        recap = PlayRecap()
        try:
            targets = operator_lock_targets(config, play, hosts)
            async with target_locks(self._config.lock_dir, targets, owner=f"agent: resume {run.play}"):
                recap = await self._tasks.run(play, hosts, play.tasks, reason, actor="agent (resume)",
                                              extra_vars={"reason": reason}, record=record)
            failed = [o for o in recap.outcomes if o.status == "failed"]
            outcome = f"resumed as run {record.run}: " + (f"{len(failed)} task(s) failed" if failed else "done")
        except Exception as exc:  # it is told below whatever happened
            log.exception("resuming play run %s failed", run.run)
            outcome = f"resuming failed: {type(exc).__name__}: {exc}"
            if not record.ended:  # told below: not to be found cut short and run again later
                await record.end("failed")
        await self._thread.call(self._store.note_play_run_handled, run.run, outcome)
        if hosts and paged_by(recap.outcomes):
            return  # the play's own message (which quotes `reason`) is the one page
        await self._tell(run, what, why_not_resumed=f"the agent ran it again ({outcome}) but that run "
                         "sent no message of its own", extra=_recap_line(recap.outcomes))


@dataclass(frozen=True)
class _RunAgain:
    """What a run again of a run cut short runs, prepared before the claim."""

    config: Any
    play: Any
    hosts: list[Any]
    reason: str
    record: RunRecord


def _recap_line(outcomes: Sequence[TaskOutcome]) -> str:
    if not outcomes:
        return "The run again did nothing (no host of the run is in the inventory now)."
    return "The run again: " + "; ".join(f"{o.host}: {o.task} ({o.status})" for o in outcomes)


def task_names(tasks: Sequence[Any]) -> list[str]:
    """The names a run's record lists for ``tasks`` (as the runner names their outcomes)."""
    return [t.name or t.module or ("block" if getattr(t, "block", None) else "task") for t in tasks]
