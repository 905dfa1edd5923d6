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
* a problem fixed by the agent before its alert went out is still told, once, as **fixed**
  (a crash the agent repaired is a crash the operator must hear about), and gets no resolve;
* the **resolve** says what the agent did while it lasted.
"""
from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime, timedelta
from typing import Any

from agent.store import EventRecord, IncidentRecord

STARTED_EVENT = "remediation-started"
OUTCOME_EVENT = "remediation-outcome"
WAITING = "waiting for the outcome of "
"""How an incident held for its remediation's outcome is marked (``incidents.suppressed``)."""


def remediation_events(tx: Any, incident_id: int) -> list[EventRecord]:
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
