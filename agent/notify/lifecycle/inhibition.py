"""Inhibition: a check's incident is held back while a check it ``depends_on`` explains it.

A parent inhibits while its incident is open and for ``inhibit_grace`` after it resolved (a
restarted bot needs a few seconds before its endpoints answer); so does a parent's parent, through
the whole chain. The grace is the parent's time back to health, counted once per trouble of the
parent: it ends when the parent has been OK for ``inhibit_grace`` in all since the dependent's
incident opened and since the parent was last healthy for a whole grace, however many times it
failed in between. A parent that stutters (a bot whose
/health answers and fails by turns) recovers at every answer: a grace counted from its latest
recovery started again each time and held the dependent (the bot's key refused) for as long as
the stutter lasted. A dependent is also held while
its parent has not been seen healthy since its problem began, or its latest reading predates the
parent's recovery (:mod:`.dependency_hold`: one fault, one message, whichever check turned hard
first). The parent's alert lists its dependents (:meth:`CheckCatalog.dependents`).
"""
from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta

from agent.core.states import State
from agent.notify.lifecycle.checks import CheckCatalog
from agent.notify.lifecycle.dependency_hold import Evidence, dependency_hold
from agent.notify.lifecycle.settings import Deadlines
from agent.store import EventRecord, IncidentRecord, StoreTransaction

EVIDENCE_RECHECK_S = 0.5
"""While an incident waits for its parents' evidence, the pass runs again this often (the
evidence is not in the store: no commit wakes the pass when it arrives)."""


TRANSITIONS_READ = 200
"""Per recovering parent and pass, at most this many of its latest transitions are read: a parent
that changed state more often since its dependent's problem began has been back often enough."""


def no_evidence(key: str) -> Evidence | None:
    """The evidence of a lifecycle that has no engine behind it (tests, one-shot commands)."""
    return None


class Inhibition:
    """``evidence(key)`` is what check ``key`` last saw in this run of the agent
    (:class:`agent.engine.dependencies.EvidenceLog`)."""

    def __init__(self, catalog: CheckCatalog, evidence: Callable[[str], Evidence | None] = no_evidence) -> None:
        self._catalog = catalog
        self._evidence = evidence

    def parents(self, tx: StoreTransaction, open_incidents: Sequence[IncidentRecord], grace_seconds: float,
                deadlines: Deadlines) -> Parents:
        """Incidents that inhibit, by key: the open ones, and those resolved less than the grace
        ago (the pass is due again when that grace ends), with the spans the recovering ones were
        OK since the oldest open incident opened."""
        now = deadlines.now
        grace = timedelta(seconds=grace_seconds)
        found = Parents(grace)
        if grace:
            for old in tx.find_incidents(since=now - grace, limit=500):
                if old.resolved_at is not None and now - old.resolved_at < grace and old.key not in found.by_key:
                    found.by_key[old.key] = old
                    deadlines.add(old.resolved_at + grace)  # re-decide when the grace ends
            since = min((i.opened_at for i in open_incidents), default=now)
            for key in list(found.by_key):
                found.ok_spans[key] = ok_spans(
                    found.by_key[key], tx.recent_events(kind="transition", key=key, since=since, limit=TRANSITIONS_READ),
                    now=now, since=since)
        found.by_key.update({i.key: i for i in open_incidents})
        return found

    def inhibited_by(self, inc: IncidentRecord, parents: Parents, hold: float, deadlines: Deadlines) -> str | None:
        """Why a parent of ``inc``'s check holds it back (``inhibited by PARENT (#ID)``, ``waiting
        for PARENT: ...``), or ``None``; ``hold`` is ``notify.dependency_hold``."""
        by_name = dict(self._catalog.parents(inc.key, inc.host))
        if not by_name:
            return None
        now = deadlines.now
        held = dependency_hold(inc, by_name, open_by_key=parents.holding(inc, deadlines), evidence=self._evidence, hold=hold, now=now,
                               window=self._catalog.window(inc.key),
                               ancestors=dict(self._catalog.ancestors(inc.key, inc.host)))
        if held is None:
            return None
        if held.until is not None or held.evidence:  # evidence may come any moment: look again soon
            soon = now + timedelta(seconds=EVIDENCE_RECHECK_S)
            deadlines.add(min(held.until, soon) if held.until is not None else soon)
        return held.reason


@dataclass
class Parents:
    """The incidents that may inhibit in one pass (:meth:`Inhibition.parents`)."""

    grace: timedelta
    by_key: dict[str, IncidentRecord] = field(default_factory=dict)
    """Open incidents, and those resolved less than the grace ago, by check key."""
    ok_spans: dict[str, OkSpans] = field(default_factory=dict)
    """For each resolved one: when its check was OK."""

    def holding(self, inc: IncidentRecord, deadlines: Deadlines) -> dict[str, IncidentRecord]:
        """The incidents that may hold ``inc``: the open ones, and the recovering ones whose check
        has not been OK for the grace in all since ``inc`` opened (the pass is due again when
        that grace would be spent)."""
        out: dict[str, IncidentRecord] = {}
        for key, pinc in self.by_key.items():
            spans = self.ok_spans.get(key)
            if pinc.resolved_at is not None and spans is not None:
                ok = spans.ok_for(since=inc.opened_at, now=deadlines.now, grace=self.grace)
                if ok >= self.grace:
                    continue
                deadlines.add(deadlines.now + (self.grace - ok))
            out[key] = pinc
        return out


@dataclass(frozen=True)
class OkSpans:
    """When one check's hard state was OK, from its ``transition`` events: ``spans`` (start,
    end), newest first; before ``known_from`` nothing was read (``None``: everything was)."""

    spans: tuple[tuple[datetime, datetime], ...]
    known_from: datetime | None

    def ok_for(self, *, since: datetime, now: datetime, grace: timedelta) -> timedelta:
        """How long the check was OK in its current trouble, between ``since`` and ``now``: its
        OK spans back to one that lasted the whole ``grace`` (healthy that long before, it had
        no trouble then: that time is not this trouble's grace). A check whose transitions were
        not all read back that far changed state that often: its grace is spent."""
        total = timedelta(0)
        for i, (start, end) in enumerate(self.spans):  # newest first
            if i and end - start >= grace:
                return total
            start, end = max(start, since), min(end, now)
            if end > start:
                total += end - start
        if self.known_from is not None and self.known_from > since:
            return timedelta.max
        return total


def ok_spans(parent: IncidentRecord, transitions: Sequence[EventRecord], *, now: datetime, since: datetime) -> OkSpans:
    """When the check of ``parent`` (resolved) was OK since ``since``: ``transitions`` are its
    ``transition`` events at or after ``since``, newest first (``OLD -> NEW``, as
    :meth:`agent.notify.Notifications.on_transition` records them). Its resolve is a recovery
    whatever they say (an incident handed over from a lost store has no transitions)."""
    spans: list[tuple[datetime, datetime]] = []
    end = now
    before: State | None = None
    for ev in transitions:
        old, _, new = ev.message.partition(" -> ")
        if new in State.__members__ and State[new] is State.OK:
            spans.append((ev.at, end))
        end, before = ev.at, State[old] if old in State.__members__ else None
    if before is State.OK:  # OK before the oldest transition read
        spans.append((since, end))
    resolved = parent.resolved_at
    if resolved is not None:
        if spans and spans[0][1] == now:
            spans[0] = (min(spans[0][0], resolved), now)
        else:
            spans.insert(0, (resolved, now))
    cut = len(transitions) >= TRANSITIONS_READ
    return OkSpans(tuple(spans), known_from=end if cut else None)
