"""Why an incident must not be sent now: flapping, maintenance, silence, inhibition (and the
dependency hold), digest, and for the first alert of a check that names ``remediate:`` the wait
for the remediation's outcome (:mod:`.remediation_notes`).

The first reason that applies is recorded in ``incidents.suppressed`` and as an audit event;
nothing is sent while it holds. When it ends and the problem is still there, the incident
becomes eligible (``eligible_since``) and is sent like a new one.
"""
from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import replace
from datetime import datetime
from fnmatch import fnmatchcase
from typing import Protocol

from agent.notify.lifecycle.checks import CheckCatalog
from agent.notify.lifecycle.inhibition import Inhibition, Parents
from agent.notify.lifecycle.remediation_notes import RemediationNotes
from agent.notify.lifecycle.settings import Deadlines, LifecycleSettings
from agent.store import IncidentRecord, SilenceRecord, StoreTransaction

SILENCE_FIELDS = ("host", "play", "check", "severity", "tag")


class WindowMatch(Protocol):
    def matches(self, *, severity: str, host: str, play: str, check: str, tags: Sequence[str] = ()) -> bool: ...


class MaintenanceWindow(Protocol):
    """A window of the inventory's ``maintenance`` (``agent.playbook.inventory.MaintenanceWindow``)."""

    @property
    def name(self) -> str: ...
    @property
    def match(self) -> WindowMatch: ...
    def active(self, now: datetime) -> bool: ...


def silence_matches(matchers: Mapping[str, str], *, host: str, play: str, check: str, severity: str,
                    tags: Sequence[str] = ()) -> bool:
    """Every matcher holds (shell-style globs; ``tag`` holds when any tag matches)."""
    fields = {"host": host, "play": play, "check": check, "severity": severity}
    for name, pattern in matchers.items():
        if name == "tag":
            if not any(fnmatchcase(t, pattern) for t in tags):
                return False
        elif not fnmatchcase(fields.get(name, ""), pattern):
            return False
    return True


class Suppression:
    """``maintenance()`` returns the inventory's windows, ``is_flapping(key)`` whether a check
    is FLAPPING (its notices stand for it)."""

    def __init__(self, catalog: CheckCatalog, inhibition: Inhibition, remediation: RemediationNotes, *,
                 maintenance: Callable[[], Sequence[MaintenanceWindow]],
                 is_flapping: Callable[[str], bool]) -> None:
        self._catalog = catalog
        self._inhibition = inhibition
        self._remediation = remediation
        self._maintenance = maintenance
        self._is_flapping = is_flapping

    def reason(self, inc: IncidentRecord, silences: Sequence[SilenceRecord],
               parents: Parents, cfg: LifecycleSettings, deadlines: Deadlines) -> str | None:
        """Why ``inc`` must not be sent now, or ``None`` (the remediation wait aside: :meth:`decide`)."""
        now = deadlines.now
        tags = self._catalog.tags(inc.key)
        if self._is_flapping(inc.key):
            return "flapping"
        for window in self._maintenance():
            if window.active(now) and window.match.matches(severity=inc.severity, host=inc.host, play=inc.play,
                                                           check=inc.check, tags=tags):
                return f"maintenance {window.name}"
        for s in silences:
            if silence_matches(s.matchers, host=inc.host, play=inc.play, check=inc.check, severity=inc.severity,
                               tags=tags):
                return f"silence #{s.id}" + (f": {s.reason}" if s.reason else "")
        inhibited = self._inhibition.inhibited_by(inc, parents, cfg.dependency_hold, deadlines)
        if inhibited is not None:
            return inhibited
        if inc.severity == "info":
            return "digest"
        return None

    def decide(self, tx: StoreTransaction, inc: IncidentRecord, silences: Sequence[SilenceRecord],
               parents: Parents, cfg: LifecycleSettings, deadlines: Deadlines) -> IncidentRecord:
        """Record whether ``inc`` is suppressed now (and since when it is eligible); returns it
        as stored."""
        now = deadlines.now
        reason = self.reason(inc, silences, parents, cfg, deadlines)
        if reason is None:
            reason = self._remediation.waiting(tx, inc, cfg, deadlines)
        if reason == inc.suppressed and (reason is not None or inc.eligible_since is not None):
            return inc
        eligible = None if reason else now
        tx.set_incident_lifecycle(inc.id, suppressed=reason, eligible_since=eligible)
        if reason != inc.suppressed:
            if reason:
                tx.add_event("suppressed", inc.key, inc.id, f"not sent: {reason}", {"reason": reason}, at=now)
            elif inc.suppressed:
                tx.add_event("unsuppressed", inc.key, inc.id, f"{inc.suppressed} ended; still {inc.state.name}: "
                             "it will be sent", {"was": inc.suppressed}, at=now)
        return replace(inc, suppressed=reason, eligible_since=eligible)
