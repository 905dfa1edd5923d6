"""Grouped resolves: announced incidents that resolved, told per host after ``group_wait``.

An incident resolved before it was ever sent is never mentioned (no alert, no resolve): the
store only lists announced ones (``incidents_to_close``). A resolve goes to every (route,
target) the incident's alerts went to whose route sends resolves, and says what the agent did
while it lasted (:mod:`.remediation_notes`).
"""
from __future__ import annotations

import hashlib
from collections import defaultdict
from collections.abc import Collection, Sequence
from datetime import datetime, timedelta
from typing import Any

from agent.core.values import format_duration
from agent.notify.lifecycle.checks import CheckCatalog
from agent.notify.lifecycle.remediation_notes import RemediationNotes
from agent.notify.lifecycle.settings import Deadlines, LifecycleSettings
from agent.notify.notifications import Notifications
from agent.notify.routing import RouteSpec
from agent.store import IncidentRecord, StoreTransaction


class GroupedResolves:
    def __init__(self, notifications: Notifications, remediation: RemediationNotes, catalog: CheckCatalog) -> None:
        self._notes = notifications
        self._remediation = remediation
        self._catalog = catalog

    def wait(self, tx: StoreTransaction, inc: IncidentRecord, cfg: LifecycleSettings) -> float:
        """The shortest ``group_wait`` of the routes the incident's alerts took (the inventory's
        when a route sets none): a resolve waits no longer than its alert did. For a check the
        agent remediates, at least its remediation's ``cooldown`` (at most ``group_interval``):
        a crash within it is the same crash loop, whose restart waits for the cooldown anyway,
        and reopens this incident (:meth:`Notifications.on_transition`) instead of a resolve
        then a new alert per crash."""
        waits = [cfg.group_wait if r is None or r.group_wait is None else float(r.group_wait)
                 for r, _ in self._notes.alerted(tx, inc.id)]
        return max(min(waits, default=cfg.group_wait), min(self._catalog.cooldown(inc.key), cfg.group_interval))

    def send(self, tx: StoreTransaction, cfg: LifecycleSettings, deadlines: Deadlines,
             flush: Collection[str] = ()) -> int:
        """Queue the resolves that are due, and every held resolve of the hosts in ``flush`` (an
        alert for that host is about to be queued: the resolve of the previous problem goes
        first, so the last message never reads RESOLVED while a new problem is open); returns
        how many rows were queued."""
        now = deadlines.now
        by_host: dict[str, list[IncidentRecord]] = defaultdict(list)
        for inc in tx.incidents_to_close():
            by_host[inc.host].append(inc)
        queued = 0
        for host, incs in by_host.items():
            due = min((i.resolved_at or now) + timedelta(seconds=self.wait(tx, i, cfg)) for i in incs)
            if due > now and host not in flush:
                deadlines.add(due)
                continue
            if len(incs) == 1:
                inc = incs[0]
                ids = self._notes.resolve(tx, inc, inc.resolved_at or now,
                                          remediation=self._remediation.line(tx, inc.id))
            else:
                ids = self._grouped(tx, host, incs, now)
            queued += len(ids)
            for inc in incs:
                tx.set_incident_lifecycle(inc.id, announced_state="OK", announced_at=now)
                tx.add_event("notified", inc.key, inc.id, f"RESOLVED queued ({len(ids)} message(s))",
                             {"notifications": ids, "group": [i.id for i in incs]}, at=now)
        return queued

    def _grouped(self, tx: StoreTransaction, host: str, incs: Sequence[IncidentRecord], now: datetime) -> list[int]:
        # one message per target, whichever routes took the alerts there (a WARNING on the
        # default route and a CRITICAL on the critical route, both to the inbox, resolving
        # together: one resolve listing both, not one per route)
        per_target: dict[str, tuple[RouteSpec | None, list[IncidentRecord]]] = {}
        for inc in incs:
            for route, target in self._notes.alerted(tx, inc.id):
                if route is None or route.send_resolved:
                    group = per_target.setdefault(target, (route, []))[1]
                    if inc not in group:
                        group.append(inc)
        out: list[int] = []
        for target, (route, group) in per_target.items():
            items = [self._item(tx, i, now) for i in group]
            if len(group) == 1:
                i = group[0]
                title = f"[RESOLVED] {i.check} on {host} after {items[0]['for']}"
            else:
                title = f"[RESOLVED] {len(group)} problems on {host}: {', '.join(i.check for i in group)}"
            body = self._notes.render("grouped", {"host": host, "resolved": True, "items": items,
                                                  "count": len(group), "still": []})
            signature = hashlib.sha256("+".join(str(i.id) for i in group).encode()).hexdigest()[:24]
            ids = self._notes.enqueue(tx, "resolve", [(route, target)], title, body, "resolved",
                                      f"resolve:{host}:{signature}", group[0].id, now)
            if ids:
                tx.link_notifications(ids, [i.id for i in group])
            out += ids
        return out

    def _item(self, tx: StoreTransaction, inc: IncidentRecord, now: datetime) -> dict[str, Any]:
        return {"check": inc.check, "play": inc.play, "state": inc.state.name, "incident_id": inc.id,
                "for": format_duration(((inc.resolved_at or now) - inc.opened_at).total_seconds()),
                "since": inc.opened_at.strftime("%Y-%m-%d %H:%M:%S UTC"), "summary": inc.summary,
                "severity": inc.severity, "dependents": [], "remediation": self._remediation.line(tx, inc.id)}
