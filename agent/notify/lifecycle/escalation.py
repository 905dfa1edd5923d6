"""Escalation: an announced incident, unresolved, unacknowledged and not suppressed, whose
routes declare ``escalate: [{after, to}]``, is sent to route ``to`` once it has been open
``after``; each step once (``incidents.escalation_level``). ``agent ack`` stops it; a new hard
transition clears the acknowledgement and escalation continues where it was.
"""
from __future__ import annotations

from collections.abc import Sequence
from datetime import timedelta

from agent.core.values import format_duration
from agent.notify.lifecycle.checks import CheckCatalog
from agent.notify.lifecycle.settings import Deadlines
from agent.notify.notifications import AlertInfo, Notifications, alert_title
from agent.notify.routing import RouteSpec
from agent.store import IncidentRecord, StoreTransaction


class Escalation:
    def __init__(self, notifications: Notifications, catalog: CheckCatalog) -> None:
        self._notes = notifications
        self._catalog = catalog

    def send(self, tx: StoreTransaction, incidents: Sequence[IncidentRecord], deadlines: Deadlines) -> int:
        """Queue the escalation steps that are due; returns how many rows were queued."""
        now = deadlines.now
        notes = self._notes
        queued = 0
        for inc in incidents:
            if inc.acknowledged_at is not None or inc.suppressed:
                continue
            routes = {r.name: r for r, _ in notes.router.route(self._catalog.routed(inc))}
            steps = sorted((s for r in routes.values() for s in r.escalate), key=lambda s: s[0])
            level = inc.escalation_level
            if inc.announced_state in (None, "OK"):  # maybe announced in this very pass: look again then
                if level < len(steps):
                    deadlines.add(inc.opened_at + timedelta(seconds=steps[level][0]))
                continue
            age = (now - inc.opened_at).total_seconds()
            while level < len(steps) and age >= steps[level][0]:
                after, to = steps[level]
                try:
                    pairs: list[tuple[RouteSpec, str]] = notes.router.named(to)
                except KeyError:
                    pairs = []
                title = f"[ESCALATED] {alert_title(inc.state.name, inc.check, inc.host, inc.summary)}: not " \
                        f"acknowledged within {format_duration(after)}"
                vars = {**notes.alert_vars(AlertInfo.from_incident(inc), repeat=False, count=0),
                        "dependents": []}
                body = notes.render("alert", vars)
                ids = notes.enqueue(tx, "alert", pairs, title, body, inc.severity,
                                    f"escalate:{inc.id}:{level}", inc.id, now)
                tx.add_event("escalated", inc.key, inc.id, f"escalated to route {to} after {format_duration(after)} "
                             f"unacknowledged: {', '.join(t for _, t in pairs) or 'no deliverable target'}",
                             {"route": to, "notifications": ids, "level": level + 1}, at=now)
                queued += len(ids)
                level += 1
            if level < len(steps):
                deadlines.add(inc.opened_at + timedelta(seconds=steps[level][0]))
            if level != inc.escalation_level:
                tx.set_incident_lifecycle(inc.id, escalation_level=level)
        return queued
