"""Inhibition: a check's incident is held back while a check it ``depends_on`` is failing.

A parent inhibits while its incident is open and for ``inhibit_grace`` after it resolved (a
restarted bot needs a few seconds before its endpoints answer). The parent's alert lists its
dependents (:meth:`CheckCatalog.dependents`).
"""
from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import timedelta

from agent.notify.lifecycle.checks import CheckCatalog
from agent.notify.lifecycle.settings import Deadlines
from agent.store import IncidentRecord, StoreTransaction


class Inhibition:
    def __init__(self, catalog: CheckCatalog) -> None:
        self._catalog = catalog

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

    def inhibited_by(self, inc: IncidentRecord, parents: Mapping[str, IncidentRecord]) -> str | None:
        """``inhibited by PARENT (#ID)`` when a parent of ``inc``'s check inhibits it."""
        for parent, key in self._catalog.parents(inc.key, inc.host):
            pinc = parents.get(key)
            if pinc is not None:
                recovering = " (recovering)" if pinc.resolved_at is not None else ""
                return f"inhibited by {parent} (#{pinc.id}){recovering}"
        return None
