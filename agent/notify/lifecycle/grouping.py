"""Grouped alerts (Alertmanager's ``group_wait``/``group_interval``, per host).

An incident that may be sent waits until the oldest unsent one of its host is ``group_wait``
old; then all unsent incidents of that host go out as one message per target. A route may set
its own ``group_wait`` (e.g. 0 for pages): an incident waits the shortest ``group_wait`` of the
routes it takes, and the host's message is due as soon as one of its unsent incidents is due.
While the host has announced, unresolved incidents, the next message for it waits
``group_interval`` after the last one, except when a new problem takes a route with
``group_wait: 0`` (a page: a crash, a hang): it goes at once, with the host's other unsent
problems (``group_interval`` paces updates; it must not delay a page). A state change of an announced incident (WARNING ->
CRITICAL) is sent the same way; a return to a state told before (WARNING -> UNKNOWN ->
WARNING) is its own message, not taken for the first one, and always paced by ``group_interval``
(a check changing between two bad states would page at every change), twice as long after each
such return told in the incident, up to :data:`RETURN_PACING_MAX` times (an exchange slow and
answering 429 by turns for an hour was one message a minute). A message says what the agent did about each problem when a
remediation outcome is recorded (:mod:`.remediation_notes`).
"""
from __future__ import annotations

import hashlib
from collections import defaultdict
from collections.abc import Mapping, Sequence
from datetime import UTC, datetime, timedelta
from typing import Any

from agent.core.states import State
from agent.notify.lifecycle.checks import CheckCatalog
from agent.notify.lifecycle.remediation_notes import RemediationNotes
from agent.notify.lifecycle.settings import Deadlines, LifecycleSettings
from agent.notify.notifications import AlertInfo, Notifications, alert_title
from agent.notify.routing import RouteSpec
from agent.store import IncidentRecord, StoreTransaction

RETURN_PACING_MAX = 16
"""A return to a state told before waits ``group_interval`` after the host's last message, twice
that after the next return told in the same incident, and so on up to this many
``group_interval`` (16 minutes with the shipped 1m): the operator's last message still catches up
with the state, without a message per change."""


def _rank(state: State) -> tuple[bool, State]:
    """How much ``state`` tells (UNKNOWN ranks below every known bad state)."""
    return state is not State.UNKNOWN, state


def _worse_than_told(inc: IncidentRecord) -> bool:
    """Whether ``inc``'s state is worse than the one its last message told: it ranks higher
    (WARNING -> CRITICAL, UNKNOWN -> CRITICAL), or it pages where the told one did not (WARNING
    -> the UNKNOWN of a critical check: the exchange no longer answers at all)."""
    told = State.__members__.get(inc.announced_state or "")
    if told is None or told is State.OK:
        return False
    return _rank(inc.state) > _rank(told) or (told is State.WARNING and inc.severity == "critical")


def worst_of(incidents: Sequence[IncidentRecord]) -> IncidentRecord:
    """The incident whose state tells most (UNKNOWN ranks below every known bad state)."""
    return max(incidents, key=lambda i: _rank(i.state))


def _after(inc: IncidentRecord) -> str:
    """Which announcement of ``inc`` a message of its state follows (none: its first)."""
    if inc.announced_state is None or inc.announced_at is None:
        return ""
    at = inc.announced_at if inc.announced_at.tzinfo else inc.announced_at.replace(tzinfo=UTC)
    return f"@{int(at.timestamp() * 1000)}"


class GroupedAlerts:
    def __init__(self, notifications: Notifications, catalog: CheckCatalog, remediation: RemediationNotes) -> None:
        self._notes = notifications
        self._catalog = catalog
        self._remediation = remediation

    def group_wait(self, inc: IncidentRecord, cfg: LifecycleSettings) -> float:
        """The shortest ``group_wait`` of the routes ``inc`` takes (the inventory's when a route
        sets none)."""
        waits = [cfg.group_wait if r.group_wait is None else float(r.group_wait)
                 for r, _ in self._notes.router.route(self._catalog.routed(inc))]
        return min(waits, default=cfg.group_wait)

    @staticmethod
    def _told(tx: StoreTransaction, inc: IncidentRecord) -> tuple[set[State], int]:
        """The states told in ``inc``'s current episode (since its last resolve), and how many
        messages told a state."""
        announced = inc.announced_state or ""
        told = {State[announced]} if announced in State.__members__ else set()
        count = 0
        for e in tx.recent_events(kind="notified", incident_id=inc.id, limit=200):  # newest first
            word = e.message.split(" ", 1)[0].rstrip(",")
            if word == "RESOLVED" or "fixed by the agent" in e.message:
                break  # what came before was another episode (the incident reopened since)
            if word in State.__members__:  # (an update of the incident tells no state)
                told.add(State[word])
                count += 1
        return told, count

    @classmethod
    def _pages(cls, tx: StoreTransaction, inc: IncidentRecord) -> bool:
        """Whether ``inc``'s unsent state may page (not held by ``group_interval``): its problem
        was not told yet (new, or reopened after its resolve), or its state was not told in this
        incident (WARNING -> CRITICAL). A return to a state told before (CRITICAL -> UNKNOWN ->
        CRITICAL: an exchange answering slowly and with 429s by turns) is an update, paced: each
        change of such a check paged at once, one message per change."""
        if inc.announced_state in (None, "OK"):
            return True
        return inc.state not in cls._told(tx, inc)[0]

    @classmethod
    def _interval(cls, tx: StoreTransaction, inc: IncidentRecord, cfg: LifecycleSettings) -> float:
        """How long after the host's last message ``inc``'s unsent state may go: ``group_interval``,
        doubled for each return to a state told before already told in this incident (at most
        :data:`RETURN_PACING_MAX` times). A return to a state worse than the last one told is not
        doubled: a check changing between WARNING and CRITICAL whose last message read WARNING
        held its CRITICAL for up to 16 group_intervals, the operator reading WARNING meanwhile."""
        if inc.announced_state in (None, "OK"):
            return cfg.group_interval
        told, count = cls._told(tx, inc)
        if inc.state not in told or _worse_than_told(inc):
            return cfg.group_interval  # a new state, or worse than the operator's last message
        returns = max(0, count - len(told))
        return float(cfg.group_interval * min(2 ** min(returns, 16), RETURN_PACING_MAX))

    def due(self, tx: StoreTransaction, incidents: Sequence[IncidentRecord], cfg: LifecycleSettings,
            deadlines: Deadlines) -> dict[str, tuple[list[IncidentRecord], list[IncidentRecord]]]:
        """The hosts whose message is due now: ``host -> (new or changed incidents, those still
        open that were told before)``; the others add their deadline."""
        now = deadlines.now
        by_host: dict[str, list[IncidentRecord]] = defaultdict(list)
        for inc in incidents:
            by_host[inc.host].append(inc)
        out: dict[str, tuple[list[IncidentRecord], list[IncidentRecord]]] = {}
        for host, incs in by_host.items():
            unsent = [i for i in incs if i.suppressed is None and i.eligible_since is not None
                      and i.announced_state != i.state.name]
            if not unsent:
                continue
            due = min(i.eligible_since + timedelta(seconds=self.group_wait(i, cfg)) for i in unsent
                      if i.eligible_since is not None)
            if due > now:
                deadlines.add(due)
                continue
            announced = [i.announced_at for i in incs
                         if i.announced_state not in (None, "OK") and i.announced_at is not None]
            urgent = any(self.group_wait(i, cfg) == 0 and self._pages(tx, i) for i in unsent)
            interval = min(self._interval(tx, i, cfg) for i in unsent)
            if announced and not urgent and (now - max(announced)).total_seconds() < interval:
                deadlines.add(max(announced) + timedelta(seconds=interval))
                continue
            still = [i for i in incs if i.announced_state not in (None, "OK") and i not in unsent
                     and i.suppressed is None]
            out[host] = (unsent, still)
        return out

    def send(self, tx: StoreTransaction, due: Mapping[str, tuple[list[IncidentRecord], list[IncidentRecord]]],
             incidents: Sequence[IncidentRecord], now: datetime) -> int:
        """Queue the messages of the hosts in ``due`` (from :meth:`due`); returns how many rows."""
        return sum(self._send_group(tx, host, unsent, still, incidents, now) for host, (unsent, still) in due.items())

    def _send_group(self, tx: StoreTransaction, host: str, new: Sequence[IncidentRecord],
                    still: Sequence[IncidentRecord], all_open: Sequence[IncidentRecord], now: datetime) -> int:
        # One message per target, whichever routes take the host's problems there (a WARNING on
        # the default route and a CRITICAL on the critical route, both to the inbox, were two
        # messages there in the same second); the message takes the route of the worst problem
        # it tells (its reminders and send_resolved at that target; escalation still follows each
        # incident's own routes, Escalation.send).
        per_target: dict[str, tuple[RouteSpec, list[IncidentRecord]]] = {}
        for inc in sorted(new, key=lambda i: _rank(i.state), reverse=True):
            for route, target in self._notes.router.route(self._catalog.routed(inc)):
                per_target.setdefault(target, (route, []))[1].append(inc)
        order = {inc.id: n for n, inc in enumerate(new)}
        per_pair = {(route.name, target): (route, sorted(incs, key=lambda i: order[i.id]))
                    for target, (route, incs) in per_target.items()}
        ids_by_incident: dict[int, list[int]] = defaultdict(list)
        queued = 0
        for (_route_name, target), (route, incs) in per_pair.items():
            title, body = self._text(tx, host, incs, still, all_open, now)
            # one message per announcement of a state: a state told before in the same incident
            # (WARNING -> UNKNOWN -> WARNING, the bot dead meanwhile) is told again, after the
            # announcement it follows (each marks announced_at); the same announcement queued
            # twice keeps one key
            signature = "+".join(f"{i.id}{i.state.name[0]}{_after(i)}" for i in incs)
            if len(signature) > 120:
                signature = hashlib.sha256(signature.encode()).hexdigest()[:24]
            ids = self._notes.enqueue(tx, "alert", [(route, target)], title, body, worst_of(incs).severity,
                                      f"alert:{host}:{signature}", incs[0].id, now)
            if ids:
                tx.link_notifications(ids, [i.id for i in incs])
                queued += len(ids)
                for i in incs:
                    ids_by_incident[i.id] += ids
        for inc in new:
            tx.set_incident_lifecycle(inc.id, announced_state=inc.state.name, announced_at=now)
            targets = [t for (r, t), (_, incs) in per_pair.items() if inc in incs]
            tx.add_event("notified", inc.key, inc.id,
                         f"{inc.state.name} queued for {', '.join(targets) or 'nobody (no route)'}"
                         + (f" in a message about {len(new)} problems on {host}" if len(new) > 1 else ""),
                         {"notifications": ids_by_incident.get(inc.id, []), "targets": targets,
                          "group": [i.id for i in new]}, at=now)
        return queued

    def _text(self, tx: StoreTransaction, host: str, incs: Sequence[IncidentRecord],
              still: Sequence[IncidentRecord], all_open: Sequence[IncidentRecord], now: datetime) -> tuple[str, str]:
        items = [{**self._item(i, all_open), "remediation": self._remediation.line(tx, i.id)} for i in incs]
        if len(incs) == 1:
            inc, item = incs[0], items[0]
            title = alert_title(inc.state.name, inc.check, host, inc.summary)
            vars = {**self._notes.alert_vars(AlertInfo.from_incident(inc), repeat=False, count=0),
                    "dependents": item["dependents"], "remediation": item["remediation"]}
            return title, self._notes.render("alert", vars)
        worst = worst_of(incs)
        names = ", ".join(i.check for i in incs)
        title = f"[{worst.state.name}] {len(incs)} problems on {host}: {names}"
        if len(title) > 200:
            title = title[:199] + "…"
        vars = {"host": host, "resolved": False, "items": items, "count": len(incs),
                "still": [self._item(i, all_open) for i in still]}
        return title, self._notes.render("grouped", vars)

    def _item(self, inc: IncidentRecord, all_open: Sequence[IncidentRecord]) -> dict[str, Any]:
        return {"check": inc.check, "play": inc.play, "state": inc.state.name, "severity": inc.severity,
                "since": inc.opened_at.strftime("%Y-%m-%d %H:%M:%S UTC"),
                "summary": inc.summary, "incident_id": inc.id,
                "dependents": self._catalog.dependents(inc, all_open), "remediation": None}
