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
  is a crash the operator must hear about), and gets no resolve. That message is held like a
  resolve (the remediation's cooldown, at most ``group_interval``): a crash within it reopens
  the incident, never told yet, and its one message tells both;
* an outcome recorded **after the alert went out** (the bot crashed again before any check saw
  it running: a recurrence of the told incident, refused by the cooldown until 14:02:11 UTC; a
  run that outlasted ``remediation_wait``) is told as one **update** on the same
  incident, to the targets its alert went to (Alertmanager's update of a group, not a new
  problem; a ``notice`` row linked to the incident, like a flapping notice): at once (after the
  route's ``group_wait``) when it says the problem is not being fixed (refused for good,
  failed; a hand-over is told by its page, :data:`PAGED`), else no sooner than ``group_interval`` after the incident's last message (a
  run done; a run deferred by the cooldown, whose own outcome follows when it ends: a crash loop
  is told in updates paced by ``group_interval``, not one per crash); outcomes that come
  together are told together. An incident that
  resolves first gets no update: its resolve says what was done;
* a **recurrence** (the problem happened again with no state change: a restarted program dead
  again before any check saw it running, or a new cause named by the check's ``occurrence``, such
  as a halt added on top of the one alerted) is told the same way, as an update paced by
  ``group_interval``, whether or not the check has a remediation (``RECURRENCE_EVENT``); when it
  has one, the update waits (at most ``remediation_wait``) for what the agent did about it and
  tells both. A crash loop being handled is **folded** (:data:`FOLDED_OUTCOMES`): a recurrence
  or a reopening of a remediated check answered by a restart done or deferred makes no update;
  the incident's next message counts it, or, when that message is long in coming (a loop that
  neither resolves nor spends a budget), an update past :data:`FOLD_AT_MOST` group_intervals;
* the **resolve** says what the agent did while it lasted.
"""
from __future__ import annotations

import dataclasses
import uuid
from collections.abc import Sequence
from datetime import datetime, timedelta
from typing import Any

from agent.core.values import format_duration
from agent.notify.lifecycle.checks import CheckCatalog
from agent.notify.lifecycle.inhibition import EVIDENCE_RECHECK_S
from agent.notify.lifecycle.settings import Deadlines, LifecycleSettings
from agent.notify.notifications import REOPENED_EVENT, AlertInfo, Notifications
from agent.store import EventRecord, IncidentRecord, StoreTransaction

STARTED_EVENT = "remediation-started"
OUTCOME_EVENT = "remediation-outcome"
"""What the agent did about an incident, one line the operator's messages quote (the
remediator records it; ``data``: ``outcome`` = done | failed | nothing | refused | deferred |
handed-over | not-needed, ``remediation``). ``deferred``: refused by the cooldown and decided
again when it ends (its outcome follows); ``refused``: refused for good."""
RECURRENCE_EVENT = "recurred"
"""The problem happened again while its incident stood, with no state change (the result pipeline
records it): a restarted program dead again before any check saw it running, or a new cause named
by the check's ``occurrence`` (a halt added on top of another). Told as an update of the incident,
whether or not the check has a remediation; when it has, with the outcome of what the agent did."""
CAUSES = "causes"
"""The causes a check's ``occurrence`` expression named: its last ones (``CheckStatus.extra`` key,
stored with the check's state) and, in a recurrence event's data, those named for the first time.
An update tells a recurrence of causes only while one of them still stands: a halt that ended
before the update went out (its incident held back meanwhile under another alert) is not told as
news."""
UPDATE_OUTCOMES = ("done", "failed", "refused", "deferred", "handed-over")
"""Outcomes an update tells (``nothing``/``not-needed`` after an alert change nothing for the operator)."""
URGENT_OUTCOMES = ("failed", "refused", "handed-over")
"""Outcomes saying the problem is not being fixed: their update is not paced by ``group_interval``."""
FOLDED_OUTCOMES = ("done", "deferred")
"""Outcomes of a recurrence that make no update of their own: a restarted program dead again and
restarted again (or its restart waiting for the cooldown) is the crash loop the alert told, being
handled (Alertmanager sends nothing for a firing group whose alerts did not change). They are told
in the incident's next message: its resolve, an urgent update (the budget spent, a failure) or the
hand-over's page, which count them."""
UNCHANGED = "unchanged"
"""Data of a ``nothing`` outcome whose steps ran and found what they would do already done (the
program already STARTING: supervisord's own retry of a bot dead before RUNNING): the crash loop
being handled, folded like a restart (each one was an update "nothing to change")."""
PAGED = "paged"
"""An outcome that the hand-over's page tells (the budget spent: the ``then`` playbook's own
message, or the agent's page): no update repeats it, like :data:`SPENT_BEFORE`. Not set when the
page route reaches no target (its targets optional and unset): the update tells the hand-over."""
SPENT_BEFORE = "spent_before"
"""Data of a refusal by a budget spent before it (its first refusal in the window handed over or was
told): a crash after the hand-over's page is the loop the page told, no update of its own (each
one was an urgent update: a bot that cannot start, or the restarted agent's refusal after a
hand-over it resumed, made a message more after the page)."""
FOLD_AT_MOST = 10
"""How many ``group_interval``s after the incident's last message a crash loop stays folded: one
that neither resolves nor spends a budget (no budget, a long one, a restart that never holds) is
then told as an update counting the crashes, and again each ``FOLD_AT_MOST`` while it lasts."""
CAME_BACK = (RECURRENCE_EVENT, REOPENED_EVENT)
"""The problem came back while its incident stood: again with no state change, or after its check
read healthy, before its held resolve went out."""
QUIET_OUTCOMES = ("nothing", "not-needed")
"""Outcomes that say nothing was to be done."""
NOTIFIED_EVENT = "notified"
"""The audit event of every message queued about an incident (the lifecycle's modules record it)."""
WAITING = "waiting for the outcome of "
"""How an incident held for its remediation's outcome is marked (``incidents.suppressed``)."""


def untold_recurrences(rows: Sequence[EventRecord]) -> int:
    """How many recurrences among an incident's events ``rows`` (newest first) came after its last
    message (folded: see :data:`FOLDED_OUTCOMES`)."""
    count = 0
    for e in rows:
        if e.kind == NOTIFIED_EVENT:
            break
        count += e.kind in CAME_BACK
    return count


def remediation_events(tx: StoreTransaction, incident_id: int) -> list[EventRecord]:
    """The incident's remediation events, oldest first."""
    return _remediation_only(tx.recent_events(incident_id=incident_id, limit=200))


def _remediation_only(rows: Sequence[EventRecord]) -> list[EventRecord]:
    """The remediation events among ``rows`` (newest first), oldest first."""
    return [e for e in reversed(rows) if e.kind in (STARTED_EVENT, OUTCOME_EVENT)]


THIS_AGENT = uuid.uuid4().hex[:12]
"""This agent process: the remediator names it in each run's start (``data.agent``), so a run
started by an agent that is gone (killed during a restart) is known not to be under way."""


def under_way(events: Sequence[EventRecord], *, here: str | None = None) -> list[EventRecord]:
    """The runs started and not finished: ``remediation-started`` events whose ``run`` no
    outcome names (runs of one incident may overlap: a decision that nothing applies is
    recorded while an earlier run still works; a started event without a run id, from an older
    agent, is under way only while it is the latest event)."""
    finished = {(e.data or {}).get("run") for e in events if e.kind == OUTCOME_EVENT} - {None}
    return [e for e in events if e.kind == STARTED_EVENT and not interrupted(e, here)
            and ((e.data or {}).get("run") not in finished if (e.data or {}).get("run") else e is events[-1])]


def interrupted(started: EventRecord, here: str | None) -> bool:
    """A run started by another agent process than ``here`` (None: not known), which is gone
    without telling its outcome: no outcome will come."""
    agent = (started.data or {}).get("agent")
    return here is not None and agent is not None and agent != here


def remediation_line(events: Sequence[EventRecord], *, follows: bool = True, here: str | None = None) -> str | None:
    """What the agent did (the latest outcomes, several joined), and any run still under way,
    or ``None`` when it did nothing yet. Decisions that nothing was to be done (its steps do
    not apply, the problem was gone) are said only when they are all there is to say: beside a
    run that acted or was refused they are no news (``agent explain`` lists them). ``follows``:
    a message that will be followed (an alert: its update or resolve) promises the outcome of a
    run under way; one that will not (told as fixed) says where to read it."""
    if not events:
        return None
    outcomes = [e for e in events if e.kind == OUTCOME_EVENT]
    acted = [e for e in outcomes if (e.data or {}).get("outcome") not in QUIET_OUTCOMES]
    running = under_way(events, here=here)
    finished = {(e.data or {}).get("run") for e in outcomes} - {None}
    cut = [e for e in events if e.kind == STARTED_EVENT and interrupted(e, here)
           and (e.data or {}).get("run") not in finished]
    acted += [_cut_short(e) for e in cut]
    done = [e.message for e in (acted if acted or running else outcomes)]
    if running:
        then = "its outcome follows" if follows else "still under way when this was sent (`agent explain` tells how it ended)"
        return "; ".join([*done[-2:], f"{running[-1].message}, {then}"])
    return "; ".join(done[-3:])


def fixed_title(inc: IncidentRecord) -> str:
    """The title of a problem told once it is already OK again (``[CRITICAL, now OK] ...``)."""
    return f"[{inc.state.name}, now OK] {inc.check} on {inc.host}"


def _cut_short(started: EventRecord) -> EventRecord:
    """The outcome a run never told: its agent was stopped during it."""
    return dataclasses.replace(started, kind=OUTCOME_EVENT,
                               message=f"{started.message}, cut short: the agent restarted during it")


def waits_for_outcome(inc: IncidentRecord, remediations: Sequence[str], events: Sequence[EventRecord],
                      wait: float, now: datetime, *, here: str | None = None) -> tuple[str, datetime] | None:
    """``(reason, until)`` while the first alert of ``inc`` waits for the outcome of its check's
    remediations (none recorded yet, or a run is under way), else ``None``. Only a
    never-announced incident waits, and only ``wait`` seconds from when it opened."""
    if not remediations or wait <= 0 or inc.announced_state is not None:
        return None
    until = inc.opened_at + timedelta(seconds=wait)
    if now >= until:
        return None
    if any(e.kind == OUTCOME_EVENT for e in events) and not under_way(events, here=here):
        return None
    return f"{WAITING}{', '.join(remediations)} (at most {wait:g}s)", until


class RemediationNotes:
    """Reads the remediation events of incidents for the lifecycle's messages, holds a first
    alert for its outcome, and tells the problems fixed before they were told."""

    def __init__(self, notifications: Notifications, catalog: CheckCatalog, *, here: str | None = None) -> None:
        """``here``: this agent process (:data:`THIS_AGENT`), when the passes run in the agent
        whose remediator records the runs; runs of another process are then known finished."""
        self._notes = notifications
        self._catalog = catalog
        self._here = here

    def line(self, tx: StoreTransaction, incident_id: int) -> str | None:
        """What the agent did about the incident (:func:`remediation_line`), and how often the
        problem came back meanwhile without an update of its own (:data:`FOLDED_OUTCOMES`)."""
        rows = tx.recent_events(incident_id=incident_id, limit=200)  # read once for both
        line = remediation_line(_remediation_only(rows), here=self._here)
        folded = untold_recurrences(rows)
        if line is not None and folded:
            line += f"; it happened again {folded} time{'s' if folded > 1 else ''} while it lasted, each handled so"
        return line

    def waiting(self, tx: StoreTransaction, inc: IncidentRecord, cfg: LifecycleSettings,
                deadlines: Deadlines) -> str | None:
        """Why the first alert of ``inc`` waits for its remediation's outcome, or ``None``
        (the pass looks again soon: the outcome is stored without waking it)."""
        remediations = self._catalog.remediations(inc.key)
        if not remediations or inc.announced_state is not None:
            return None
        waiting = waits_for_outcome(inc, remediations, remediation_events(tx, inc.id), cfg.remediation_wait,
                                    deadlines.now, here=self._here)
        if waiting is None:
            return None
        reason, until = waiting
        deadlines.add(min(until, deadlines.now + timedelta(seconds=EVIDENCE_RECHECK_S)))
        return reason

    def send_fixed(self, tx: StoreTransaction, deadlines: Deadlines, cfg: LifecycleSettings) -> int:
        """Problems that ended before their first alert went out although the agent acted on
        them (the alert waited for the outcome, or for its ``group_wait`` after it): told once
        (and never resolved: that message says it is OK again); returns how many rows. One that
        a silence, a window, flapping or a parent held back stays untold, as it would have.
        Nothing follows that message, so while a run is still under way it waits for the run's
        outcome, up to ``remediation_wait`` after the problem ended."""
        now = deadlines.now
        notes = self._notes
        queued = 0
        for inc in tx.find_incidents(since=now - timedelta(hours=1), limit=200):
            if inc.resolved_at is None or inc.announced_state is not None \
                    or not (inc.suppressed is None or inc.suppressed.startswith(WAITING)):
                continue
            events = remediation_events(tx, inc.id)
            if under_way(events, here=self._here) and now < inc.resolved_at + timedelta(seconds=cfg.remediation_wait):
                deadlines.add(min(inc.resolved_at + timedelta(seconds=cfg.remediation_wait),
                                  now + timedelta(seconds=EVIDENCE_RECHECK_S)))
                continue  # its outcome is recorded any moment (not in this transaction: look again soon)
            line = remediation_line(events, follows=False, here=self._here)
            if line is None:
                continue  # it went away by itself before the agent did anything: never mentioned
            # Held like a resolve (GroupedResolves.wait): for the remediation's cooldown, at most
            # group_interval. A crash within it is the same crash loop and reopens this incident
            # (Notifications.on_transition): one message, not "now OK" then an alert and a resolve.
            hold = inc.resolved_at + timedelta(seconds=min(self._catalog.cooldown(inc.key), cfg.group_interval))
            if now < hold:
                deadlines.add(hold)
                continue
            duration = format_duration((inc.resolved_at - inc.opened_at).total_seconds())
            title = fixed_title(inc)
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

    def send_updates(self, tx: StoreTransaction, incidents: Sequence[IncidentRecord], cfg: LifecycleSettings,
                     deadlines: Deadlines) -> int:
        """One update per open, told incident whose remediation outcomes or recurrences were
        recorded after its last message (see the module docstring); returns how many rows were
        queued."""
        now = deadlines.now
        queued = 0
        standing: dict[str, Any] | None = None  # the causes each check names now (read when needed)
        for inc in incidents:
            if inc.resolved_at is not None or inc.suppressed or inc.announced_state in (None, "OK"):
                continue
            events = list(reversed(tx.recent_events(incident_id=inc.id, limit=200)))
            told = [e for e in events if e.kind == NOTIFIED_EVENT]
            if not told:
                continue
            # Event ids are in commit order (one writer at a time): an outcome with a higher id
            # than the last message's event was not visible when that message was written.
            last = max(told, key=lambda e: e.id)
            new = [e for e in events if e.id > last.id and (e.kind == RECURRENCE_EVENT or (
                e.kind == OUTCOME_EVENT and ((e.data or {}).get("outcome") in UPDATE_OUTCOMES
                                             or (e.data or {}).get(UNCHANGED))))]
            if any(CAUSES in (e.data or {}) for e in new):
                if standing is None:
                    standing = {k: st.extras.get(CAUSES) for k, st in tx.load_check_states().items()}
                now_named = standing.get(inc.key)
                if isinstance(now_named, list):
                    new = [e for e in new if e.kind != RECURRENCE_EVENT or not isinstance(
                        causes := (e.data or {}).get(CAUSES), list) or any(c in now_named for c in causes)]
            if not new:
                continue
            if all(e.kind == OUTCOME_EVENT and _told_elsewhere(e) for e in new):
                continue  # the budget spent again: told already (the page, or its first refusal)
            # a reopening (the check read healthy between two crashes) is the problem back too
            came_back = sorted([*new, *(e for e in events if e.id > last.id and e.kind == REOPENED_EVENT)],
                               key=lambda e: e.id)
            awaited = self._awaits_outcome(inc, events, came_back, cfg, deadlines)
            if awaited is not None:
                deadlines.add(awaited)
                continue
            loop = 0
            if self._folded(inc, came_back):
                # the crash loop the alert told, handled: its next message counts it, unless that
                # message is long in coming (the loop neither resolves nor spends a budget)
                told_by = last.at + timedelta(seconds=FOLD_AT_MOST * cfg.group_interval)
                if told_by > now:
                    deadlines.add(told_by)
                    continue
                loop = sum(e.kind in CAME_BACK for e in came_back)
            due = new[0].at + timedelta(seconds=self._group_wait(tx, inc, cfg))
            if not any((e.data or {}).get("outcome") in URGENT_OUTCOMES for e in new):
                due = max(due, last.at + timedelta(seconds=cfg.group_interval))
            if due > now:
                deadlines.add(due)
                continue
            queued += self._update(tx, inc, new, now, loop=loop)
        return queued

    def _folded(self, inc: IncidentRecord, new: Sequence[EventRecord]) -> bool:
        """Whether ``new`` (what happened since the incident's last message) is only recurrences of
        a remediated check (:data:`CAME_BACK`), each followed by an outcome of
        :data:`FOLDED_OUTCOMES`, a refusal by a budget spent before or a run that found nothing to
        change (:data:`UNCHANGED`); a recurrence the agent did nothing about, as its steps do not
        apply, is told)."""
        if not any(e.kind in CAME_BACK for e in new) or not self._catalog.remediations(inc.key):
            return False
        answered = False  # every recurrence followed by a run that handles it
        for e in new:
            if e.kind in CAME_BACK:
                if CAUSES in (e.data or {}):
                    return False  # a new cause (a halt on top of the one told) is news, not a loop
                answered = False
            elif (e.data or {}).get("outcome") in FOLDED_OUTCOMES or _told_elsewhere(e) \
                    or (e.data or {}).get(UNCHANGED):
                answered = True
            else:
                return False
        return answered

    def _awaits_outcome(self, inc: IncidentRecord, events: Sequence[EventRecord], new: Sequence[EventRecord],
                        cfg: LifecycleSettings, deadlines: Deadlines) -> datetime | None:
        """When to look again while a recurrence of a remediated check waits for what the agent
        did about it (no outcome recorded after it yet, or a run under way), at most
        ``remediation_wait`` after it: one update tells both ("failed again" and "restarted"),
        not one each. ``None``: nothing to wait for."""
        recurrences = [e for e in new if e.kind in CAME_BACK]
        if not recurrences or not self._catalog.remediations(inc.key):
            return None
        latest = recurrences[-1]
        until = latest.at + timedelta(seconds=cfg.remediation_wait)
        if deadlines.now >= until:
            return None
        runs = [e for e in events if e.kind in (STARTED_EVENT, OUTCOME_EVENT)]
        answered = any(e.kind == OUTCOME_EVENT and e.id > latest.id for e in runs)
        if answered and not under_way(runs, here=self._here):
            return None
        # The outcome is stored without waking the pass: look again soon.
        return min(until, deadlines.now + timedelta(seconds=EVIDENCE_RECHECK_S))

    def _update(self, tx: StoreTransaction, inc: IncidentRecord, new: Sequence[EventRecord], now: datetime,
                *, loop: int = 0) -> int:
        """One update telling ``new``; ``loop``: how many times a crash loop folded past
        :data:`FOLD_AT_MOST` came back since the last message (said first)."""
        notes = self._notes
        said = new[-1].message
        if loop:
            said = f"still failing: it happened again {loop} time{'s' if loop > 1 else ''} since the last message, " \
                   f"each handled so; last: {said}"
        title = f"[UPDATE] {inc.check} on {inc.host}: {said}"
        if len(title) > 200:
            title = title[:199] + "…"
        outcomes: list[dict[str, Any]] = [{"at": e.at.strftime("%Y-%m-%d %H:%M:%S UTC"), "message": e.message}
                                          for e in new]
        vars = {**notes.alert_vars(AlertInfo.from_incident(inc), repeat=False, count=0), "outcomes": outcomes}
        pairs = notes.alerted(tx, inc.id)
        ids = notes.enqueue(tx, "notice", pairs, title, notes.render("update", vars), inc.severity,
                            f"update:{inc.id}:{new[-1].id}", inc.id, now)
        if ids:
            tx.link_notifications(ids, [inc.id])
        targets = [t for _, t in pairs]
        tx.add_event(NOTIFIED_EVENT, inc.key, inc.id, f"update queued for {', '.join(targets) or 'nobody'}: "
                     + "; ".join(e.message for e in new), {"notifications": ids, "outcomes": [e.id for e in new]},
                     at=now)
        return len(ids)

    def _group_wait(self, tx: StoreTransaction, inc: IncidentRecord, cfg: LifecycleSettings) -> float:
        """The shortest ``group_wait`` of the routes the incident's alerts took (the inventory's
        when a route sets none)."""
        waits = [cfg.group_wait if r is None or r.group_wait is None else float(r.group_wait)
                 for r, _ in self._notes.alerted(tx, inc.id)]
        return min(waits, default=cfg.group_wait)


def _told_elsewhere(e: EventRecord) -> bool:
    """An outcome an update would repeat: the budget spent before, or a hand-over (its page)."""
    data = e.data or {}
    return bool(data.get(SPENT_BEFORE) or data.get(PAGED))
