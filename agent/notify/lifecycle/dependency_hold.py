"""``depends_on`` when told: one fault, one message (the root cause's), whatever the timing.

A check that depends on another (a *parent*) is not told on its own while the parent explains
it. Inhibition alone (the parent has an open incident) is not enough, because the dependent is
often hard first: the exchange's margin check runs once and is UNKNOWN at once, while the
exchange API check needs two failures; a hung bot's /health times out 10 s into the hang, its
heartbeat is overdue only at its 60 s deadline. So a dependent's incident is also *held*:

* **not seen healthy since**: while a parent has not been seen healthy after the dependent's
  problem began (its probe started after it, or a heartbeat beat after it), the parent may be
  the cause: wait for it. The engine runs the parent at once when a dependent fails
  (:class:`agent.engine.dependencies.DependencyProbes`), so this costs one probe of the parent;
  a heartbeat answers at its deadline (that is the hang's message);
* **not read since the parent recovered**: a dependent whose latest failing reading started
  before its parent recovered is stale (an UNKNOWN read while the exchange was down): the
  engine runs it again at once; it is told only if it still fails then. A check that looks
  back over a ``window`` (errors in the bot's log over the last hour) still counts what the
  parent's fault caused until that window has passed since the recovery: a WARNING or UNKNOWN
  of it waits that long (a CRITICAL it reads is told at once: real trouble is never held back).

A chain folds whole: an open problem of a parent's parent (the bot process, for the websocket
check read from the bot's /health) holds the dependent too, as the root's alert lists the whole
chain. Incidents are stored, so this survives an agent restart (the evidence below is of this
run of the agent only).

The first hold, and a recovery hold without a window, end at the latest ``dependency_hold``
after the dependent's incident opened, or after its current state began (a told CRITICAL that
reads UNKNOWN while its parent stutters is a new problem the parent may explain): a parent that never answers must not keep a problem from
the operator for ever. That bound is for a parent not yet seen healthy: while the parent's own
latest reading fails (and its state folds the dependent's) the dependent stays held, whatever
the time: the parent is the cause, and its own alert (when it turns hard) is the message.

**The same fault, read by both.** A dependent UNKNOWN for the reason its parent failed with during
its hold (the parent's latest failure started at most ``dependency_hold`` before the dependent's
problem began, or after it: both read ``HTTP 500 server error`` from the exchange) waits, up to the
same bound, even while the parent reads healthy between its own errors: an upstream that fails
intermittently gives every check reading it its share of the errors, and the parent's alert (once
its failures turn hard) is the one message; when the upstream recovers, the dependent's next
reading (its retry) resolves it untold. Only a failure that outlasts the bound is told as the
dependent's own (Alertmanager's inhibition, with the failure's cause as the equal label). And
one reading of each is not enough to tell them apart: a dependent that cannot read (any class
but ``check error``) whose parent read healthy is told as its own problem only once it failed
again (its retry) and its parent, run at once for that reading
(:class:`agent.engine.dependencies.DependencyProbes`), was read healthy after it, and has not
failed the same way meanwhile; up to the same bound.

Which parent state folds which dependent: a parent that cannot work (CRITICAL or UNKNOWN: down,
refused, timing out) folds every state of its dependents; a parent that still works but is
degraded (WARNING: a slow exchange) folds only dependents that are UNKNOWN or WARNING, never a
CRITICAL its dependent actually read (margin usage at 85 % is not explained by a slow API).
"""
from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Protocol

from agent.core.causes import CHECK_ERROR
from agent.core.states import State
from agent.store import IncidentRecord


class Evidence(Protocol):
    """What one check last saw (:class:`agent.engine.dependencies.Evidence`)."""

    @property
    def healthy_at(self) -> datetime | None: ...
    @property
    def problem_since(self) -> datetime | None: ...
    @property
    def problem_at(self) -> datetime | None: ...
    @property
    def recovered_at(self) -> datetime | None:
        """When its hard state last returned to OK."""
    @property
    def back_at(self) -> datetime | None:
        """When it last read healthy after a failing reading (hard or not)."""
    @property
    def state(self) -> State:
        """The latest reading's (soft) state."""
    @property
    def failed_at(self) -> datetime | None:
        """When its latest failing reading started."""
    @property
    def cause(self) -> str | None:
        """The failure class of that reading (:func:`agent.core.causes.failure_cause`)."""
    @property
    def failures(self) -> int:
        """Failing readings in a row."""
    @property
    def newest_event(self) -> datetime | None:
        """Of a failing count over a window: when its newest counted event happened."""
    @property
    def oldest_event(self) -> datetime | None:
        """And when its oldest did (``None``: not known)."""
    @property
    def fault_after(self) -> datetime | None:
        """Its last healthy reading before its latest fault began (``None``: none seen)."""


EVENTS_AFTER_RECOVERY_S = 10.0
"""Events a dependent counts up to this long after its parent's recovery are still the parent's
fault: its last failing requests end as the parent's recovery is read (a check that confirms its
recovery over several readings records it seconds after the upstream came back)."""


@dataclass(frozen=True)
class Held:
    """Why an incident is not told now, and until when at the latest (``None``: while it lasts)."""

    reason: str
    until: datetime | None = None
    evidence: bool = False
    """Held on evidence, which is not stored: nothing wakes the pass when it changes, look again soon."""


def folds(parent: IncidentRecord, child: IncidentRecord) -> bool:
    """Whether ``parent``'s open problem explains ``child``'s (see the module docstring)."""
    return state_folds(parent.state, child.state)


def state_folds(parent: State, child: State) -> bool:
    """Whether a parent in ``parent`` explains a dependent in ``child``."""
    if not parent.is_problem:
        return False
    if parent is State.WARNING:
        return child in (State.UNKNOWN, State.WARNING)
    return True


def dependency_hold(inc: IncidentRecord, parents: Mapping[str, str], *,
                    open_by_key: Mapping[str, IncidentRecord], evidence: Callable[[str], Evidence | None],
                    hold: float, now: datetime, window: float = 0.0,
                    ancestors: Mapping[str, str] | None = None) -> Held | None:
    """Why ``inc`` must wait for its ``parents`` (name -> check key), or ``None``. ``window``:
    how far back the dependent's readings look (0: only the moment of the probe); ``ancestors``:
    the parents' parents through the whole chain (how reached -> check key)."""
    for name, key in [*parents.items(), *(ancestors or {}).items()]:
        pinc = open_by_key.get(key)
        if pinc is not None and folds(pinc, inc):
            recovering = " (recovering)" if pinc.resolved_at is not None else ""
            return Held(f"inhibited by {name} (#{pinc.id}){recovering}")
    mine = evidence(inc.key)
    if mine is None or mine.problem_since is None:
        return None  # no reading this run of the agent (or it is healthy again): nothing to wait for
    # from when this state's streak began: a told problem that changes state (CRITICAL -> UNKNOWN)
    # waits for its parents as a new one does
    until = max(inc.opened_at, mine.problem_since) + timedelta(seconds=hold)
    looks_back = timedelta(seconds=window if inc.state in (State.WARNING, State.UNKNOWN) else 0.0)
    for name, key in parents.items():
        theirs = evidence(key)
        if theirs is not None and state_folds(theirs.state, inc.state):
            return Held(f"waiting for {name}: failing itself", evidence=True)  # not bounded: the cause
        if theirs is None or theirs.healthy_at is None or theirs.healthy_at < mine.problem_since:
            if now < until:
                return Held(f"waiting for {name}: not seen healthy since this began", until)
            continue
        if same_fault(inc.state, mine, theirs, since=mine.problem_since - timedelta(seconds=hold)) and now < until:
            return Held(f"waiting for {name}: it failed the same way ({mine.cause}) at "
                        f"{theirs.failed_at:%H:%M:%S} UTC", until)
        if cannot_read(inc.state, mine) and now < until:
            if mine.failures < 2:
                return Held(f"waiting for a second reading: {name} read healthy once", until, evidence=True)
            if mine.problem_at is not None and theirs.healthy_at < mine.problem_at:
                return Held(f"waiting for {name}: not read since this read {mine.cause} again", until, evidence=True)
        if mine.problem_at is None:
            continue
        recovered = theirs.recovered_at
        if recovered is not None and mine.newest_event is not None and \
                mine.newest_event <= recovered + timedelta(seconds=EVENTS_AFTER_RECOVERY_S) and \
                (theirs.fault_after is None or mine.oldest_event is None or mine.oldest_event > theirs.fault_after):
            # every event it counts happened during the parent's fault (or as it ended): still the
            # parent's fault, whatever its state, until a newer one comes or the window forgets them.
            # Not events older than the parent's last healthy reading before that fault (a burst of
            # the bot's own errors, then a blip of the exchange: held for the window, never told)
            return Held(f"what it counts happened before {name} recovered ({recovered:%H:%M:%S} UTC)",
                        evidence=True)
        if recovered is not None and looks_back and now < recovered + looks_back:
            return Held(f"its window still covers {name}'s fault (recovered {recovered:%H:%M:%S} UTC)",
                        recovered + looks_back)
        back = max((t for t in (recovered, theirs.back_at) if t is not None), default=None)
        if back is not None and mine.problem_at < back and now < until:
            return Held(f"waiting for a reading taken after {name} recovered", until)
    return None


def cannot_read(state: State, mine: Evidence) -> bool:
    """Whether a dependent in ``state`` could not read for a reason its parent may share (an
    upstream error: HTTP 5xx or 429, a timeout, a refused or failed connection; not a ``check
    error``)."""
    return state is State.UNKNOWN and mine.state is State.UNKNOWN and mine.cause not in (None, CHECK_ERROR)


def same_fault(state: State, mine: Evidence, theirs: Evidence, *, since: datetime) -> bool:
    """Whether a dependent in ``state`` that cannot read (``mine``) fails for the reason its parent
    (``theirs``) failed with at ``since`` or later: an upstream that fails intermittently (an
    exchange answering HTTP 500 to some requests) gives each check reading it its share of the
    errors, so a parent's healthy reading between two of its own errors does not make the
    dependent's error a fault of its own. A ``check error`` (an expression, a missing metric) is
    each check's own: never the same fault."""
    return (cannot_read(state, mine) and theirs.cause == mine.cause and theirs.failed_at is not None
            and theirs.failed_at >= since)


def folded_without_store(state: State, mine: Evidence | None, chain: Sequence[tuple[str, str]], *,
                         hard: Callable[[str], State | None], evidence: Callable[[str], Evidence | None]) -> str | None:
    """Why a dependent's problem must not be sent straight through apprise while the store cannot
    be written (:class:`agent.engine.direct_alerts.DirectAlerts`), or ``None``: the same rule as
    :func:`dependency_hold`, read from memory instead of the stored incidents. ``chain``: (name,
    check key) of its parents and their parents; ``hard``/``evidence``: a check's hard state and
    what it last saw, in this run of the agent.

    Folded when a check of the chain explains it now (its hard state, or its latest reading,
    folds this state: the parent's own alert is the one message) or recovered after this check's
    latest failing reading began (that reading is stale). Not folded when nothing is known of the
    chain: without evidence a problem is told. The decision is still stored when the store
    comes back, and the alert lifecycle then decides it like any other."""
    for name, key in chain:
        theirs_hard = hard(key)
        if theirs_hard is not None and state_folds(theirs_hard, state):
            return f"{name} is {theirs_hard.name}"
        theirs = evidence(key)
        if theirs is None:
            continue
        if state_folds(theirs.state, state):
            return f"{name} is failing itself ({theirs.state.name})"
        back = max((t for t in (theirs.recovered_at, theirs.back_at) if t is not None), default=None)
        if back is not None and mine is not None and mine.problem_at is not None and mine.problem_at <= back:
            return f"{name} recovered ({back:%H:%M:%S} UTC) after this was read"
    return None
