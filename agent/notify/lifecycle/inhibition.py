"""Inhibition: a check's incident is held back while a check it ``depends_on`` explains it.

A parent inhibits while its incident is open and for ``inhibit_grace`` after it resolved (a
restarted bot needs a few seconds before its endpoints answer); so does a parent's parent, through
the whole chain. A dependent is also held while
its parent has not been seen healthy since its problem began, or its latest reading predates the
parent's recovery (:mod:`.dependency_hold`: one fault, one message, whichever check turned hard
first). The parent's alert lists its dependents (:meth:`CheckCatalog.dependents`).
"""
from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from datetime import timedelta

from agent.notify.lifecycle.checks import CheckCatalog
from agent.notify.lifecycle.dependency_hold import Evidence, dependency_hold
from agent.notify.lifecycle.settings import Deadlines
from agent.store import IncidentRecord, StoreTransaction

EVIDENCE_RECHECK_S = 0.5
"""While an incident waits for its parents' evidence, the pass runs again this often (the
evidence is not in the store: no commit wakes the pass when it arrives)."""


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
                deadlines: Deadlines) -> dict[str, IncidentRecord]:
        """Incidents that inhibit, by key: the open ones, and those resolved less than the grace
        ago (the pass is due again when that grace ends)."""
        now = deadlines.now
        grace = timedelta(seconds=grace_seconds)
        parents: dict[str, IncidentRecord] = {}
        if grace:
            for old in tx.find_incidents(since=now - grace, limit=500):
                if old.resolved_at is not None and now - old.resolved_at < grace:
                    parents.setdefault(old.key, old)
                    deadlines.add(old.resolved_at + grace)  # re-decide when the grace ends
        parents.update({i.key: i for i in open_incidents})
        return parents

    def inhibited_by(self, inc: IncidentRecord, parents: Mapping[str, IncidentRecord], hold: float,
                     deadlines: Deadlines) -> str | None:
        """Why a parent of ``inc``'s check holds it back (``inhibited by PARENT (#ID)``, ``waiting
        for PARENT: ...``), or ``None``; ``hold`` is ``notify.dependency_hold``."""
        by_name = dict(self._catalog.parents(inc.key, inc.host))
        if not by_name:
            return None
        now = deadlines.now
        held = dependency_hold(inc, by_name, open_by_key=parents, evidence=self._evidence, hold=hold, now=now,
                               window=self._catalog.window(inc.key),
                               ancestors=dict(self._catalog.ancestors(inc.key, inc.host)))
        if held is None:
            return None
        if held.until is not None or held.evidence:  # evidence may come any moment: look again soon
            soon = now + timedelta(seconds=EVIDENCE_RECHECK_S)
            deadlines.add(min(held.until, soon) if held.until is not None else soon)
        return held.reason
