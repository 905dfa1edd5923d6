"""Dependencies between checks at run time: what each check last saw, and when to look again.

A check that ``depends_on`` another (the exchange's positions on the exchange API answering,
the bot's loop age on the bot answering /health at all) fails whenever its parent fails. One
fault must give one message: the parent's, listing its dependents. The alert lifecycle folds a
dependent under its parent (``agent.notify`` inhibition); for that it needs to know, per check,
*when* it was last seen healthy and *when* its problem began, which this module records from the
result pipeline:

* ``healthy_at``: the moment the check's latest good result speaks for. For most checks that is
  when the probe started; a heartbeat speaks for its last beat (``CheckResult.seen_at``), so a
  hung bot whose last beat predates a dependent's timeout has not been seen healthy since;
* ``problem_since``/``problem_at``: when the first and the latest run of the current problem
  streak started (a streak of one state: a change to another problem state starts a new one) (an in-flight probe that started during a fault and ends after it is dated by
  its start, so it never looks newer than the recovery);
* ``recovered_at``: when the hard state last returned to OK;
* ``back_at``: when the check last read healthy after a failing reading, whether or not the
  failure had turned hard: a parent that needs two failures (``after: 2``) and failed once, while
  a dependent read the same outage, is back all the same (the dependent's reading is stale).
* ``failed_at``/``cause``: when the latest failing reading started and the class of its failure
  (:func:`agent.core.causes.failure_cause`: ``HTTP 500 server error``, ``timed out``, ...; ``None``
  for a problem read from a value): a dependent that cannot read for the reason its parent just
  failed with is most likely the same fault (an exchange answering 500 to some requests: each
  check gets its share of them), whatever the parent read in between.

:class:`DependencyProbes` listens to stored decisions and runs checks at once when a dependency
question is open, instead of waiting for their schedule (Nagios' on-demand host checks):

* a dependent turned into a problem (or into another problem state): its parents run now, so the lifecycle learns whether the
  parent is the cause (then the dependent is folded) or healthy (then the dependent is told);
* a dependent that cannot read again (a failing retry with an error: HTTP 500, timed out): its
  parents run now, so each of its readings meets a fresh one of its parent's
  (:func:`agent.notify.lifecycle.dependency_hold.same_fault`);
* a parent recovered (read healthy after a failing reading, whether or not it had turned hard):
  its failing dependents run now, so a dependent whose only cause was the parent resolves without
  ever being told, and one still failing is told with a fresh reason (not a stale UNKNOWN read
  while the parent was down).
"""
from __future__ import annotations

import logging
from collections.abc import Callable, Iterable
from dataclasses import dataclass, replace
from datetime import UTC, datetime
from typing import TYPE_CHECKING

from agent.core.causes import failure_cause
from agent.core.states import State
from agent.notify.lifecycle.checks import parent_key

if TYPE_CHECKING:
    from agent.engine.pipeline import Decision
    from agent.playbook.binding import BoundCheck

log = logging.getLogger("agent")


@dataclass(frozen=True)
class Evidence:
    """What one check last saw, on the wall clock (see the module docstring)."""

    healthy_at: datetime | None = None
    problem_since: datetime | None = None
    problem_at: datetime | None = None
    recovered_at: datetime | None = None
    back_at: datetime | None = None
    state: State = State.OK
    """The latest raw (soft) state."""
    failed_at: datetime | None = None
    cause: str | None = None
    """The failure class of the latest failing reading (started at ``failed_at``), kept after it."""
    failures: int = 0
    """Failing readings in a row (0 once healthy): a dependent's second one confirms its failure."""
    newest_event: datetime | None = None
    """Of the latest failing reading of a count over a window: its newest event (``evidence_at``)."""
    oldest_event: datetime | None = None
    """And its oldest (``evidence_since``)."""
    fault_after: datetime | None = None
    """Its last healthy reading before its latest fault began (``None``: not seen healthy before it)."""


class EvidenceLog:
    """Per check key: its :class:`Evidence`. Written on the event loop, read from the store
    thread (each entry is replaced whole, never mutated)."""

    def __init__(self) -> None:
        self._by_key: dict[str, Evidence] = {}

    def record(self, key: str, state: State, started: datetime, *, seen_at: float | None = None,
               recovered: bool = False, error: str | None = None, evidence_at: float | None = None,
               evidence_since: float | None = None) -> Evidence:
        """A result of ``key`` whose probe started at ``started``; ``recovered``: its hard state
        returned to OK with it (dated like its health, by ``seen_at`` if given); ``error``: why a
        failing probe could not read (its class is ``cause``); ``evidence_at``: the newest event a
        failing count over a window rests on. A healthy result after a failing one is ``back_at``
        (see the module docstring)."""
        old = self._by_key.get(key, Evidence())
        if state is State.OK:
            healthy = datetime.fromtimestamp(seen_at, UTC) if seen_at is not None else started
            healthy = max(healthy, old.healthy_at) if old.healthy_at else healthy
            back = recovered or old.state.is_problem
            new = replace(old, healthy_at=healthy, problem_since=None, state=state, failures=0, newest_event=None,
                          oldest_event=None,
                          recovered_at=healthy if recovered else old.recovered_at,
                          back_at=healthy if back else old.back_at)
        else:
            # A change to another problem state starts a streak of its own: a dependent told
            # CRITICAL (the bot's key refused) that reads UNKNOWN (its /health timed out) has a
            # new problem, which its parent may explain (see dependency_hold).
            same = old.problem_since is not None and old.state is state
            new = replace(old, problem_since=old.problem_since if same else started, problem_at=started, state=state,
                          failed_at=started, cause=failure_cause(error),
                          failures=old.failures + 1 if old.state.is_problem else 1,
                          newest_event=datetime.fromtimestamp(evidence_at, UTC) if evidence_at is not None else None,
                          oldest_event=datetime.fromtimestamp(evidence_since, UTC) if evidence_since is not None
                          else None,
                          fault_after=old.fault_after if old.state.is_problem else old.healthy_at)
        self._by_key[key] = new
        return new

    def get(self, key: str) -> Evidence | None:
        return self._by_key.get(key)

    def forget(self, keys: Iterable[str]) -> None:
        for key in keys:
            self._by_key.pop(key, None)


class DependencyProbes:
    """A :class:`~agent.engine.pipeline.DecisionListener` and a result listener of the scheduler:
    runs parents when a dependent fails and dependents when a parent recovers (see the module
    docstring). Event loop only."""

    def __init__(self, *, checks: Callable[[], dict[str, BoundCheck]],
                 run_now: Callable[[BoundCheck], object], is_problem: Callable[[str], bool]) -> None:
        self._checks = checks
        self._run_now = run_now
        self._is_problem = is_problem
        self._failing: set[str] = set()
        """Checks whose latest reading failed (soft): their next healthy one is a recovery."""

    def on_decision(self, decision: Decision) -> None:
        tr = decision.transition
        if tr is None or not tr.new.is_problem or tr.new is tr.old:
            return  # a new problem, or a change to another problem state: is a parent the cause?
        self._run_parents(decision.bc)

    def _run_parents(self, bc: BoundCheck) -> None:
        checks = self._checks()
        for parent in bc.check.depends_on:
            pbc = checks.get(parent_key(bc, parent, bc.host.name))
            if pbc is not None:
                self._run_now(pbc)

    def on_result(self, bc: BoundCheck, result: object, duration_ms: float) -> None:
        """Every result, as soon as it is classified: a healthy reading after a failing one (the
        hard state may never have changed) runs the failing dependents again at once."""
        if self._is_problem(bc.key):
            if bc.key in self._failing and bc.check.depends_on and getattr(result, "error", None):
                # failing again, unable to read (its retry): is a parent failing the same way? (the
                # first failing reading asks when it turns hard, see on_decision)
                self._run_parents(bc)
            self._failing.add(bc.key)
            return
        if bc.key not in self._failing:
            return
        self._failing.discard(bc.key)
        for key, child in self._checks().items():
            if key == bc.key or child.host.name != bc.host.name or not self._is_problem(key):
                continue
            if any(parent_key(child, p, child.host.name) == bc.key for p in child.check.depends_on):
                self._run_now(child)
