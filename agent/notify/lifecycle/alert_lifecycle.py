"""One pass of the alert lifecycle over the store: suppression, grouped resolves, problems
fixed before they were told, grouped alerts, updates on what the agent did since, escalation,
in that order, in one transaction."""
from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from datetime import datetime

from agent.notify.lifecycle.checks import CheckCatalog, WatchedCheck
from agent.notify.lifecycle.dependency_hold import Evidence
from agent.notify.lifecycle.digest import Digest
from agent.notify.lifecycle.escalation import Escalation
from agent.notify.lifecycle.grouping import GroupedAlerts
from agent.notify.lifecycle.inhibition import Inhibition, no_evidence
from agent.notify.lifecycle.remediation_notes import RemediationNotes
from agent.notify.lifecycle.resolves import GroupedResolves
from agent.notify.lifecycle.settings import Deadlines, LifecycleSettings
from agent.notify.lifecycle.suppression import MaintenanceWindow, Suppression
from agent.notify.notifications import Notifications


class AlertLifecycle:
    """Decides and queues alert, grouped, resolve and escalation messages. Store thread only.

    ``checks()`` returns the current bound checks by key (for tags, ``depends_on``, flapping),
    ``maintenance()`` the inventory's windows, ``is_flapping(key)`` whether a check is FLAPPING,
    ``settings()`` the inventory's grouping settings (read once per pass), ``evidence(key)``
    what check ``key`` last saw in this run of the agent (for the dependency hold).
    """

    def __init__(self, notifications: Notifications, *, checks: Callable[[], Mapping[str, WatchedCheck]],
                 maintenance: Callable[[], Sequence[MaintenanceWindow]], is_flapping: Callable[[str], bool],
                 settings: Callable[[], LifecycleSettings],
                 evidence: Callable[[str], Evidence | None] = no_evidence, here: str | None = None) -> None:
        self.notifications = notifications
        self.settings = settings
        catalog = CheckCatalog(checks)
        self.inhibition = Inhibition(catalog, evidence)
        self.remediation = RemediationNotes(notifications, catalog, here=here)
        self.suppression = Suppression(catalog, self.inhibition, self.remediation, maintenance=maintenance,
                                       is_flapping=is_flapping)
        self.alerts = GroupedAlerts(notifications, catalog, self.remediation)
        self.resolves = GroupedResolves(notifications, self.remediation, catalog)
        self.escalation = Escalation(notifications, catalog)
        self.digest = Digest(notifications)
        self.next_due: datetime | None = None
        """After :meth:`tick`: the earliest moment a later pass would queue something that is
        waiting now (``None``: nothing is waiting on a known deadline)."""

    def tick(self, now: datetime) -> int:
        """Re-decide every open incident and queue what is due; returns how many rows were queued."""
        cfg = self.settings()
        deadlines = Deadlines(now)
        queued = 0
        with self.notifications.store.transaction() as tx:
            silences = tx.silences(active_at=now)
            for s in silences:
                deadlines.add(s.ends_at)
            incidents = tx.open_incidents()
            parents = self.inhibition.parents(tx, incidents, cfg.inhibit_grace, deadlines)
            fresh = [self.suppression.decide(tx, inc, silences, parents, cfg, deadlines) for inc in incidents]
            due = self.alerts.due(tx, fresh, cfg, deadlines)
            # Resolves first, the held ones of a host about to be alerted included: per target,
            # messages go out in the order of the events they tell.
            queued += self.resolves.send(tx, cfg, deadlines, flush=due.keys())
            queued += self.remediation.send_fixed(tx, deadlines, cfg)
            queued += self.alerts.send(tx, due, fresh, now)
            queued += self.remediation.send_updates(tx, fresh, cfg, deadlines)
            queued += self.escalation.send(tx, fresh, deadlines)
        self.next_due = deadlines.earliest
        return queued

    def send_digest(self, since: datetime, now: datetime) -> int:
        """See :meth:`Digest.send`."""
        return self.digest.send(since, now)
