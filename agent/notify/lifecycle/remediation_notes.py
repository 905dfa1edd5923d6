"""What the agent did about an incident, as its messages say it.

The remediator records, on the incident, when a remediation started
(``remediation-started``) and how it ended (``remediation-outcome``: restarted with the new pid
and how long it took, refused with the cooldown's end or the budget used and the playbook it
handed over to, nothing done and why, failed and why). The messages quote the latest of them,
and never claim more than is recorded:

* the **first alert** of a problem whose check names ``remediate:`` waits for the outcome, at
  most ``notify.remediation_wait`` after the incident could be sent (the page says "bot crashed,
  restarted: pid 4242, running after 1.3s" instead of a bare "crashed" followed a second later
  by a resolve). Past that bound it goes out saying the remediation is *running* and that its
  outcome follows: the resolve states it;
* a problem fixed by the agent before its alert went out (while it waited for the outcome, or
  for its ``group_wait`` after it) is still told, once, as **fixed** (a crash the agent repaired
  is a crash the operator must hear about), and gets no resolve;
* the **resolve** says what the agent did while it lasted.
"""
from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime, timedelta

from agent.core.values import format_duration
from agent.notify.lifecycle.checks import CheckCatalog
from agent.notify.lifecycle.inhibition import EVIDENCE_RECHECK_S
from agent.notify.lifecycle.settings import Deadlines, LifecycleSettings
from agent.notify.notifications import AlertInfo, Notifications
from agent.store import EventRecord, IncidentRecord, StoreTransaction

STARTED_EVENT = "remediation-started"
OUTCOME_EVENT = "remediation-outcome"
"""What the agent did about an incident, one line the operator's messages quote (the
remediator records it; ``data``: ``outcome`` = done | failed | nothing | refused | handed-over |
not-needed, ``remediation``)."""
WAITING = "waiting for the outcome of "
"""How an incident held for its remediation's outcome is marked (``incidents.suppressed``)."""


def remediation_events(tx: StoreTransaction, incident_id: int) -> list[EventRecord]:
    """The incident's remediation events, oldest first."""
    rows = tx.recent_events(incident_id=incident_id, limit=200)
    return [e for e in reversed(rows) if e.kind in (STARTED_EVENT, OUTCOME_EVENT)]


def remediation_line(events: Sequence[EventRecord]) -> str | None:
    """What the agent did (the latest outcome; outcomes of several runs are joined), or that a
    run is under way, or ``None`` when it did nothing yet."""
    if not events:
        return None
    last = events[-1]
    done = [e.message for e in events if e.kind == OUTCOME_EVENT]
    if last.kind == STARTED_EVENT:
        return "; ".join([*done[-2:], f"{last.message}, its outcome follows"])
    return "; ".join(done[-3:])


def waits_for_outcome(inc: IncidentRecord, remediations: Sequence[str], events: Sequence[EventRecord],
                      wait: float, now: datetime) -> tuple[str, datetime] | None:
    """``(reason, until)`` while the first alert of ``inc`` waits for the outcome of its check's
    remediations, else ``None``. Only a never-announced incident waits, and only ``wait``
    seconds from when it opened."""
    if not remediations or wait <= 0 or inc.announced_state is not None:
        return None
    until = inc.opened_at + timedelta(seconds=wait)
    if now >= until:
        return None
    if events and events[-1].kind == OUTCOME_EVENT:
        return None
    return f"{WAITING}{', '.join(remediations)} (at most {wait:g}s)", until


class RemediationNotes:
    """Reads the remediation events of incidents for the lifecycle's messages, holds a first
    alert for its outcome, and tells the problems fixed before they were told."""

    def __init__(self, notifications: Notifications, catalog: CheckCatalog) -> None:
        self._notes = notifications
        self._catalog = catalog

    def line(self, tx: StoreTransaction, incident_id: int) -> str | None:
        """What the agent did about the incident (:func:`remediation_line`)."""
        return remediation_line(remediation_events(tx, incident_id))

    def waiting(self, tx: StoreTransaction, inc: IncidentRecord, cfg: LifecycleSettings,
                deadlines: Deadlines) -> str | None:
        """Why the first alert of ``inc`` waits for its remediation's outcome, or ``None``
        (the pass looks again soon: the outcome is stored without waking it)."""
        remediations = self._catalog.remediations(inc.key)
        if not remediations or inc.announced_state is not None:
            return None
        waiting = waits_for_outcome(inc, remediations, remediation_events(tx, inc.id), cfg.remediation_wait,
                                    deadlines.now)
        if waiting is None:
            return None
        reason, until = waiting
        deadlines.add(min(until, deadlines.now + timedelta(seconds=EVIDENCE_RECHECK_S)))
        return reason

    def send_fixed(self, tx: StoreTransaction, deadlines: Deadlines) -> int:
        """Problems that ended before their first alert went out although the agent acted on
        them (the alert waited for the outcome, or for its ``group_wait`` after it): told once
        (and never resolved: that message says it is OK again); returns how many rows. One that
        a silence, a window, flapping or a parent held back stays untold, as it would have."""
        now = deadlines.now
        notes = self._notes
        queued = 0
        for inc in tx.find_incidents(since=now - timedelta(hours=1), limit=200):
            if inc.resolved_at is None or inc.announced_state is not None \
                    or not (inc.suppressed is None or inc.suppressed.startswith(WAITING)):
                continue
            line = self.line(tx, inc.id)
            if line is None:
                continue  # it went away by itself before the agent did anything: never mentioned
            duration = format_duration((inc.resolved_at - inc.opened_at).total_seconds())
            title = f"[{inc.state.name}, now OK] {inc.check} on {inc.host}"
            vars = {**notes.alert_vars(AlertInfo.from_incident(inc), repeat=False, count=0), "dependents": [],
                    "remediation": line, "resolved_after": duration}
            ids = notes.enqueue(tx, "alert", notes.router.route(self._catalog.routed(inc)), title,
                                notes.render("alert", vars), inc.severity, f"fixed:{inc.id}", inc.id, now)
            if ids:
                tx.link_notifications(ids, [inc.id])
            tx.set_incident_lifecycle(inc.id, announced_state="OK", announced_at=now)
            tx.add_event("notified", inc.key, inc.id, f"{inc.state.name}, fixed by the agent, queued once "
                         f"({len(ids)} message(s)): {line}", {"notifications": ids}, at=now)
            queued += len(ids)
        return queued
