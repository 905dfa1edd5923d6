"""The alert lifecycle: when, how and whether an open incident is told to a human.

The engine only opens, changes and resolves incidents (in the transaction of the transition);
:meth:`AlertLifecycle.tick` decides everything else from what is in the store, so every
decision survives a restart of the agent. The engine calls it at once after a hard transition
commits, at :attr:`AlertLifecycle.next_due` (the earliest deadline the pass knows of) and
periodically as a safety net:

* **suppression**, in this order (the first that applies is recorded in
  ``incidents.suppressed`` and as an audit event; nothing is sent while it holds):
  ``flapping`` (the check is FLAPPING: its notices stand for it), ``maintenance NAME`` (a
  window of the inventory is open), ``silence #ID`` (``agent silence``), ``inhibited by
  PARENT`` (a check it ``depends_on`` has an open incident on the same host; the parent's
  alert lists it), ``waiting for PARENT`` (the parent has not been seen healthy since this
  problem began, or recovered after this check's last reading: :mod:`agent.notify.dependency_hold`), ``digest`` (info severity: the scheduled digest reports it). When the
  suppression ends and the problem is still there, it is sent like a new one;
* **grouping** (Alertmanager's ``group_wait``/``group_interval``, per host): an incident that
  may be sent waits until the oldest unsent one of its host is ``group_wait`` old; then all
  unsent incidents of that host go out as one message per target. A route may set its own
  ``group_wait`` (e.g. 0 for pages): an incident waits the shortest ``group_wait`` of the routes
  it takes, and the host's message is due as soon as one of its unsent incidents is due. While the host has
  announced, unresolved incidents, the next message for it waits ``group_interval`` after the
  last one, except when a new problem takes a route with ``group_wait: 0`` (a page: a crash,
  a hang): it goes at once, with the host's other unsent problems. A state change of an
  announced incident (WARNING -> CRITICAL) is sent the same way. Resolves of announced incidents are grouped per host too (after ``group_wait``);
  an incident resolved before it was ever sent is never mentioned (no alert, no resolve);
* **escalation**: an announced incident, unresolved, unacknowledged and not suppressed, whose
  routes declare ``escalate: [{after, to}]``, is sent to route ``to`` once it has been open
  ``after``; each step once (``incidents.escalation_level``). ``agent ack`` stops it; a new
  hard transition clears the acknowledgement and escalation continues where it was;
* **digest**: :meth:`send_digest` sends one message listing the info-severity incidents open
  or resolved since the previous digest.

Every message is linked to every incident it covers (``notification_incidents``), so
``agent explain`` and repeats see grouped messages too.
"""
from __future__ import annotations

import hashlib
import logging
from collections import defaultdict
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, replace
from datetime import datetime, timedelta
from fnmatch import fnmatchcase
from typing import Any

from agent.core.states import State
from agent.core.values import format_duration
from agent.notify.dependency_hold import dependency_hold
from agent.notify.notifications import alert_title
from agent.notify.remediation_notes import WAITING, remediation_events, remediation_line, waits_for_outcome
from agent.notify.routing import RoutedMessage, RouteSpec
from agent.rendering import render_or_fallback
from agent.store import IncidentRecord, SilenceRecord, StoreTransaction

log = logging.getLogger(__name__)
EVIDENCE_RECHECK_S = 0.5
"""While an incident waits for its parents' evidence, the pass runs again this often."""
DIGEST_EVENT = "digest"
SILENCE_FIELDS = ("host", "play", "check", "severity", "tag")


@dataclass(frozen=True)
class LifecycleSettings:
    """The inventory's ``notify.group_wait`` and ``notify.group_interval``, in seconds."""

    group_wait: float = 5.0
    group_interval: float = 60.0
    inhibit_grace: float = 30.0
    """After a parent recovers, its dependents stay held back this long (a restarted bot needs a
    few seconds before its endpoints answer: that warm-up must not page)."""
    dependency_hold: float = 90.0
    remediation_wait: float = 5.0
    """The first alert of a problem that names ``remediate:`` waits at most this long for the
    remediation's outcome (:mod:`agent.notify.remediation_notes`)."""
    """At most this long after it opened, a dependent waits for its parents to be seen healthy
    (:mod:`agent.notify.dependency_hold`)."""


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


class AlertLifecycle:
    """Decides and queues alert, grouped, resolve and escalation messages. Store thread only.

    ``checks()`` returns the current bound checks by key (for tags, ``depends_on``, flapping),
    ``maintenance()`` the inventory's windows, ``is_flapping(key)`` whether a check is FLAPPING.
    """

    def __init__(self, notifications: Any, *, checks: Callable[[], Mapping[str, Any]],
                 maintenance: Callable[[], Sequence[Any]], is_flapping: Callable[[str], bool],
                 settings: Callable[[], LifecycleSettings],
                 evidence: Callable[[str], Any] = lambda key: None) -> None:
        self.notifications = notifications
        self.evidence = evidence
        """What each check last saw, by key (:class:`agent.engine.dependencies.Evidence`)."""
        self.checks = checks
        self.maintenance = maintenance
        self.is_flapping = is_flapping
        self.settings = settings
        self.next_due: datetime | None = None
        """After :meth:`tick`: the earliest moment a later pass would queue something that is
        waiting now (``None``: nothing is waiting on a known deadline)."""
        self._deadlines: list[datetime] = []

    def _due_at(self, when: datetime, now: datetime) -> None:
        if when > now:
            self._deadlines.append(when)

    # -- one pass ------------------------------------------------------------------------------
    def tick(self, now: datetime) -> int:
        """Re-decide every open incident and queue what is due; returns how many rows were queued."""
        queued = 0
        self._deadlines = []
        with self.notifications.store.transaction() as tx:
            silences = tx.silences(active_at=now)
            for s in silences:
                self._due_at(s.ends_at, now)
            incidents = tx.open_incidents()
            # Parents that inhibit: open incidents, and those resolved less than inhibit_grace ago.
            grace = timedelta(seconds=self.settings().inhibit_grace)
            parents: dict[str, IncidentRecord] = {}
            if grace:
                for old in tx.find_incidents(since=now - grace, limit=500):
                    if old.resolved_at is not None and now - old.resolved_at < grace:
                        parents.setdefault(old.key, old)
                        self._due_at(old.resolved_at + grace, now)  # re-decide when the grace ends
            parents.update({i.key: i for i in incidents})
            fresh: list[IncidentRecord] = []
            for inc in incidents:
                inc = self._decide_suppression(tx, inc, silences, parents, now)
                fresh.append(inc)
            queued += self._send_groups(tx, fresh, now)
            queued += self._send_resolves(tx, now)
            queued += self._send_fixed(tx, now)
            queued += self._escalate(tx, list(fresh), now)
        self.next_due = min(self._deadlines, default=None)
        return queued

    # -- suppression ---------------------------------------------------------------------------
    def suppression(self, inc: IncidentRecord, silences: Sequence[SilenceRecord],
                    open_by_key: Mapping[str, IncidentRecord], now: datetime) -> str | None:
        """Why ``inc`` must not be sent now, or ``None``."""
        bc = self.checks().get(inc.key)
        tags = tuple(getattr(bc.check, "tags", ()) or ()) if bc is not None else ()
        if self.is_flapping(inc.key):
            return "flapping"
        for window in self.maintenance():
            m = window.match
            if window.active(now) and m.matches(severity=inc.severity, host=inc.host, play=inc.play,
                                                check=inc.check, tags=tags):
                return f"maintenance {window.name}"
        for s in silences:
            if silence_matches(s.matchers, host=inc.host, play=inc.play, check=inc.check, severity=inc.severity,
                               tags=tags):
                return f"silence #{s.id}" + (f": {s.reason}" if s.reason else "")
        parents = {p: parent_key(bc, p, inc.host) for p in (getattr(bc.check, "depends_on", ()) or ())} \
            if bc is not None else {}
        if parents:
            window = getattr(getattr(bc, "params", None), "window", None)
            held = dependency_hold(inc, parents, open_by_key=open_by_key, evidence=self.evidence,
                                   hold=self.settings().dependency_hold, now=now,
                                   window=float(window) if isinstance(window, (int, float)) else 0.0)
            if held is not None:
                if held.until is not None:  # evidence may come any moment: look again soon
                    self._due_at(min(held.until, now + timedelta(seconds=EVIDENCE_RECHECK_S)), now)
                return held.reason
        if inc.severity == "info":
            return "digest"
        return None

    def _decide_suppression(self, tx: StoreTransaction, inc: IncidentRecord, silences: Sequence[SilenceRecord],
                            open_by_key: Mapping[str, IncidentRecord], now: datetime) -> IncidentRecord:
        reason = self.suppression(inc, silences, open_by_key, now)
        if reason is None:
            bc = self.checks().get(inc.key)
            remediations = list(getattr(bc.check, "remediate", ()) or ()) if bc is not None else []
            if remediations and inc.announced_state is None:
                waiting = waits_for_outcome(inc, remediations, remediation_events(tx, inc.id),
                                            self.settings().remediation_wait, now)
                if waiting is not None:
                    reason = waiting[0]
                    self._due_at(min(waiting[1], now + timedelta(seconds=EVIDENCE_RECHECK_S)), now)
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

    # -- grouped alerts ------------------------------------------------------------------------
    def _send_groups(self, tx: StoreTransaction, incidents: Sequence[IncidentRecord], now: datetime) -> int:
        cfg = self.settings()
        by_host: dict[str, list[IncidentRecord]] = defaultdict(list)
        for inc in incidents:
            by_host[inc.host].append(inc)
        queued = 0
        for host, incs in by_host.items():
            unsent = [i for i in incs if i.suppressed is None and i.eligible_since is not None
                      and i.announced_state != i.state.name]
            if not unsent:
                continue
            due = min(i.eligible_since + timedelta(seconds=self._group_wait(i, cfg)) for i in unsent
                      if i.eligible_since is not None)
            if due > now:
                self._due_at(due, now)
                continue
            announced = [i.announced_at for i in incs
                         if i.announced_state not in (None, "OK") and i.announced_at is not None]
            # A page (a route with group_wait 0: a crash, a hang) is not batched behind an update
            # window either: Alertmanager's group_interval paces updates, it must not delay a page.
            urgent = any(self._group_wait(i, cfg) == 0 for i in unsent)
            if announced and not urgent and (now - max(announced)).total_seconds() < cfg.group_interval:
                self._due_at(max(announced) + timedelta(seconds=cfg.group_interval), now)
                continue
            still = [i for i in incs if i.announced_state not in (None, "OK") and i not in unsent
                     and i.suppressed is None]
            queued += self._send_group(tx, host, unsent, still, incidents, now)
        return queued

    def _group_wait(self, inc: IncidentRecord, cfg: LifecycleSettings) -> float:
        """The shortest ``group_wait`` of the routes ``inc`` takes (the inventory's when a route
        sets none)."""
        waits = [cfg.group_wait if getattr(r, "group_wait", None) is None else float(r.group_wait)
                 for r, _ in self.notifications.router.route(self._routed(inc))]
        return min(waits, default=cfg.group_wait)

    def _send_group(self, tx: StoreTransaction, host: str, new: Sequence[IncidentRecord],
                    still: Sequence[IncidentRecord], all_open: Sequence[IncidentRecord], now: datetime) -> int:
        notes = self.notifications
        per_pair: dict[tuple[str, str], tuple[RouteSpec, list[IncidentRecord]]] = {}
        for inc in new:
            for route, target in notes.router.route(self._routed(inc)):
                per_pair.setdefault((route.name, target), (route, []))[1].append(inc)
        ids_by_incident: dict[int, list[int]] = defaultdict(list)
        queued = 0
        for (_route_name, target), (route, incs) in per_pair.items():
            title, body = self._group_text(host, incs, still, all_open, now, tx)
            signature = "+".join(f"{i.id}{i.state.name[0]}" for i in incs)
            if len(signature) > 120:
                signature = hashlib.sha256(signature.encode()).hexdigest()[:24]
            worst = max(incs, key=lambda i: (i.state is not State.UNKNOWN, i.state))
            ids = notes._enqueue(tx, "alert", [(route, target)], title, body, worst.severity,
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
                         f"{inc.state.name} sent to {', '.join(targets) or 'nobody (no route)'}"
                         + (f" in a message about {len(new)} problems on {host}" if len(new) > 1 else ""),
                         {"notifications": ids_by_incident.get(inc.id, []), "targets": targets,
                          "group": [i.id for i in new]}, at=now)
        return queued

    def _group_text(self, host: str, incs: Sequence[IncidentRecord], still: Sequence[IncidentRecord],
                    all_open: Sequence[IncidentRecord], now: datetime, tx: StoreTransaction) -> tuple[str, str]:
        notes = self.notifications
        items = [{**self._item(i, all_open, now), "remediation": remediation_line(remediation_events(tx, i.id))}
                 for i in incs]
        if len(incs) == 1:
            inc, item = incs[0], items[0]
            title = alert_title(inc.state.name, inc.check, host, inc.summary)
            vars = {**notes._alert_vars(_alert_info(inc), now, repeat=False, count=0),
                    "dependents": item["dependents"], "remediation": item["remediation"]}
            return title, render_or_fallback(notes.templating, notes.templates["alert"], vars)
        worst = max(incs, key=lambda i: (i.state is not State.UNKNOWN, i.state))
        names = ", ".join(i.check for i in incs)
        title = f"[{worst.state.name}] {len(incs)} problems on {host}: {names}"
        if len(title) > 200:
            title = title[:199] + "…"
        vars = {"host": host, "resolved": False, "items": items, "count": len(incs),
                "still": [self._item(i, all_open, now) for i in still]}
        return title, render_or_fallback(notes.templating, notes.templates["grouped"], vars)

    def _item(self, inc: IncidentRecord, all_open: Sequence[IncidentRecord], now: datetime) -> dict[str, Any]:
        dependents = []
        bc = self.checks().get(inc.key)
        if bc is not None:  # dependents in this play and in others, and theirs (a chain folds whole)
            open_keys = {i.key: i for i in all_open}
            seen, frontier = {inc.key}, [inc.key]
            while frontier:
                parent = frontier.pop(0)
                for key, child_bc in self.checks().items():
                    if key in seen or not key.startswith(f"{child_bc.play.name}/{inc.host}/"):
                        continue
                    if any(parent_key(child_bc, p, inc.host) == parent
                           for p in (getattr(child_bc.check, "depends_on", ()) or ())):
                        seen.add(key)
                        frontier.append(key)
                        child = open_keys.get(key)
                        name = child_bc.check.name if child_bc.play.name == inc.play else \
                            f"{child_bc.play.name}/{child_bc.check.name}"
                        dependents.append({"check": name, "failing": child is not None,
                                           "state": child.state.name if child else "OK"})
        return {"check": inc.check, "play": inc.play, "state": inc.state.name, "severity": inc.severity,
                "since": inc.opened_at.strftime("%Y-%m-%d %H:%M:%S UTC"),
                "for": format_duration(max(0.0, (now - inc.opened_at).total_seconds())),
                "summary": inc.summary, "incident_id": inc.id, "dependents": dependents, "remediation": None}

    # -- grouped resolves ----------------------------------------------------------------------
    def _send_resolves(self, tx: StoreTransaction, now: datetime) -> int:
        notes = self.notifications
        by_host: dict[str, list[IncidentRecord]] = defaultdict(list)
        for inc in tx.incidents_to_close():
            by_host[inc.host].append(inc)
        queued = 0
        for host, incs in by_host.items():
            oldest = min(i.resolved_at for i in incs if i.resolved_at is not None)
            if (now - oldest).total_seconds() < self.settings().group_wait:
                self._due_at(oldest + timedelta(seconds=self.settings().group_wait), now)
                continue
            if len(incs) == 1:
                inc = incs[0]
                ids = notes.resolve(tx, inc, inc.resolved_at or now,
                                    remediation=remediation_line(remediation_events(tx, inc.id)))
            else:
                ids = self._grouped_resolve(tx, host, incs, now)
            queued += len(ids)
            for inc in incs:
                tx.set_incident_lifecycle(inc.id, announced_state="OK", announced_at=now)
                tx.add_event("notified", inc.key, inc.id, f"RESOLVED sent ({len(ids)} message(s))",
                             {"notifications": ids, "group": [i.id for i in incs]}, at=now)
        return queued

    def _grouped_resolve(self, tx: StoreTransaction, host: str, incs: Sequence[IncidentRecord],
                         now: datetime) -> list[int]:
        notes = self.notifications
        per_pair: dict[tuple[str | None, str], tuple[RouteSpec | None, list[IncidentRecord]]] = {}
        for inc in incs:
            for route, target in notes._alerted(tx, inc.id):
                if route is None or route.send_resolved:
                    per_pair.setdefault((route.name if route else None, target), (route, []))[1].append(inc)
        out: list[int] = []
        for (_, target), (route, group) in per_pair.items():
            items: list[dict[str, Any]] = [{"check": i.check, "play": i.play, "state": i.state.name, "incident_id": i.id,
                      "for": format_duration(((i.resolved_at or now) - i.opened_at).total_seconds()),
                      "since": i.opened_at.strftime("%Y-%m-%d %H:%M:%S UTC"), "summary": i.summary,
                      "severity": i.severity, "dependents": [],
                      "remediation": remediation_line(remediation_events(tx, i.id))} for i in group]
            if len(group) == 1:
                i = group[0]
                title = f"[RESOLVED] {i.check} on {host} after {items[0]['for']}"
            else:
                title = f"[RESOLVED] {len(group)} problems on {host}: {', '.join(i.check for i in group)}"
            body = render_or_fallback(notes.templating, notes.templates["grouped"],
                                      {"host": host, "resolved": True, "items": items, "count": len(group),
                                       "still": []})
            signature = hashlib.sha256("+".join(str(i.id) for i in group).encode()).hexdigest()[:24]
            ids = notes._enqueue(tx, "resolve", [(route, target)], title, body, "resolved",
                                 f"resolve:{host}:{signature}", group[0].id, now)
            if ids:
                tx.link_notifications(ids, [i.id for i in group])
            out += ids
        return out

    def _send_fixed(self, tx: StoreTransaction, now: datetime) -> int:
        """Problems the agent fixed while their first alert waited for the outcome: told once."""
        notes = self.notifications
        queued = 0
        for inc in tx.find_incidents(since=now - timedelta(hours=1), limit=200):
            if inc.resolved_at is None or inc.announced_state is not None or not (inc.suppressed or "").startswith(
                    WAITING):
                continue
            line = remediation_line(remediation_events(tx, inc.id))
            if line is None:
                continue  # it went away by itself before the agent did anything: never mentioned
            duration = format_duration((inc.resolved_at - inc.opened_at).total_seconds())
            title = f"[{inc.state.name}, now OK] {inc.check} on {inc.host}"
            vars = {**notes._alert_vars(_alert_info(inc), now, repeat=False, count=0), "dependents": [],
                    "remediation": line, "resolved_after": duration}
            body = render_or_fallback(notes.templating, notes.templates["alert"], vars)
            ids = notes._enqueue(tx, "alert", notes.router.route(self._routed(inc)), title, body, inc.severity,
                                 f"fixed:{inc.id}", inc.id, now)
            tx.set_incident_lifecycle(inc.id, announced_state="OK", announced_at=now)
            tx.add_event("notified", inc.key, inc.id, f"{inc.state.name}, fixed by the agent, sent once "
                         f"({len(ids)} message(s)): {line}", {"notifications": ids}, at=now)
            queued += len(ids)
        return queued

    # -- escalation ----------------------------------------------------------------------------
    def _escalate(self, tx: StoreTransaction, incidents: Sequence[IncidentRecord], now: datetime) -> int:
        notes = self.notifications
        queued = 0
        for inc in incidents:
            if inc.acknowledged_at is not None or inc.suppressed:
                continue
            routes = {r.name: r for r, _ in notes.router.route(self._routed(inc))}
            steps = sorted((s for r in routes.values() for s in r.escalate), key=lambda s: s[0])
            level = inc.escalation_level
            if inc.announced_state in (None, "OK"):  # maybe announced in this very pass: look again then
                if level < len(steps):
                    self._due_at(inc.opened_at + timedelta(seconds=steps[level][0]), now)
                continue
            age = (now - inc.opened_at).total_seconds()
            while level < len(steps) and age >= steps[level][0]:
                after, to = steps[level]
                try:
                    pairs = notes.router.named(to)
                except KeyError:
                    pairs = []
                title = f"[ESCALATED] {alert_title(inc.state.name, inc.check, inc.host, inc.summary)}: open " \
                        f"{format_duration(age)}, not acknowledged"
                vars = {**notes._alert_vars(_alert_info(inc), now, repeat=False, count=0), "dependents": []}
                body = render_or_fallback(notes.templating, notes.templates["alert"], vars)
                ids = notes._enqueue(tx, "alert", pairs, title, body, inc.severity,
                                     f"escalate:{inc.id}:{level}", inc.id, now)
                tx.add_event("escalated", inc.key, inc.id, f"escalated to route {to} after {format_duration(after)} "
                             f"unacknowledged: {', '.join(t for _, t in pairs) or 'no deliverable target'}",
                             {"route": to, "notifications": ids, "level": level + 1}, at=now)
                queued += len(ids)
                level += 1
            if level < len(steps):
                self._due_at(inc.opened_at + timedelta(seconds=steps[level][0]), now)
            if level != inc.escalation_level:
                tx.set_incident_lifecycle(inc.id, escalation_level=level)
        return queued

    # -- digest --------------------------------------------------------------------------------
    def send_digest(self, since: datetime, now: datetime) -> int:
        """One message listing info findings open or resolved since ``since``; records the digest."""
        notes = self.notifications
        with notes.store.transaction() as tx:
            found = [i for i in tx.find_incidents(since=since, limit=500) if i.severity == "info"]
            ids: list[int] = []
            if found:
                items = [{"check": i.check, "play": i.play, "host": i.host, "state": i.state.name,
                          "incident_id": i.id, "open": i.resolved_at is None,
                          "since": i.opened_at.strftime("%Y-%m-%d %H:%M:%S UTC"), "summary": i.summary}
                         for i in reversed(found)]
                title = f"[DIGEST] {len(found)} info finding(s) since {since.strftime('%Y-%m-%d %H:%M UTC')}"
                body = render_or_fallback(notes.templating, notes.templates["digest"],
                                          {"items": items, "since": since.strftime("%Y-%m-%d %H:%M:%S UTC")})
                pairs = notes.router.route(RoutedMessage("info"))
                ids = notes._enqueue(tx, "notice", pairs, title, body, "info", f"digest:{now.isoformat()}",
                                     found[0].id, now)
                if ids:
                    tx.link_notifications(ids, [i.id for i in found])
            tx.add_event(DIGEST_EVENT, None, None, f"digest: {len(found)} info finding(s)",
                         {"notifications": ids, "incidents": [i.id for i in found]}, at=now)
        return len(ids)

    def _routed(self, inc: IncidentRecord) -> RoutedMessage:
        bc = self.checks().get(inc.key)
        tags = tuple(getattr(bc.check, "tags", ()) or ()) if bc is not None else ()
        return RoutedMessage(inc.severity, inc.host, inc.play, inc.check, tags)


def _alert_info(inc: IncidentRecord) -> Any:
    from agent.notify.notifications import AlertInfo

    return AlertInfo(play=inc.play, host=inc.host, check=inc.check, state=inc.state, severity=inc.severity,
                     since=inc.opened_at, summary=inc.summary, incident_id=inc.id)


def parent_key(bc: Any, parent: str, host: str) -> str:
    """The incident key of a ``depends_on`` entry: a check of ``bc``'s play, or PLAYBOOK/CHECK."""
    local = {c.name for c in getattr(bc.play, "checks", ()) or ()}
    if parent in local or "/" not in parent:
        return f"{bc.play.name}/{host}/{parent}"
    play, _, check = parent.partition("/")
    return f"{play}/{host}/{check}"
