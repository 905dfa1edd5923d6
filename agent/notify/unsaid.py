"""What the operator has not been told yet, for the moment the agent's database is lost.

When the database file is deleted or replaced under the running agent
(:mod:`agent.engine.store_file`), the agent restarts on a new, empty file: whatever the old one
held and had not yet said would be forgotten. A crash the agent saw a moment before (its
incident held for the restart's outcome, or its message still in the outbox) would then never
reach anyone, and the bot, restarted meanwhile, would look as if nothing had happened.

So, before it stops, the agent reads the old file through the connection it still holds (SQLite
keeps an unlinked file readable) and takes what is unsaid:

* **outbox messages not delivered**: claimed like any delivery (a message under the outbox's own
  live claim is in flight: the outbox finishes it), delivered straight through apprise by the
  caller, then marked sent;
* **problems never told** that were only waiting for their turn: in group wait, or held for their
  remediation's outcome. A problem held back on purpose (a silence, a maintenance window,
  flapping, folded under its parent or waiting for evidence about it, an ``info`` finding for the
  digest) stays untold, as it would have.
"""
from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from agent.notify.lifecycle.remediation_notes import WAITING, fixed_title
from agent.store import IncidentRecord, NotificationRecord, Store

LOOK_BACK = timedelta(hours=1)
"""How far back an untold problem is still worth telling (a group wait is seconds to minutes)."""

CLAIM_LEASE_S = 60.0


@dataclass(frozen=True)
class Unsaid:
    messages: list[NotificationRecord]
    """Outbox messages claimed for direct delivery (``claimed_by`` the taker)."""
    stuck: list[NotificationRecord]
    """Outbox messages not delivered and not claimable now (their target is failing or busy)."""
    problems: list[IncidentRecord]
    """Problems never told, that were only waiting for their turn."""


def untold(inc: IncidentRecord) -> bool:
    """Whether ``inc`` was never told and only waited for its turn (see the module docstring)."""
    if inc.announced_state is not None or inc.severity == "info":
        return False
    return inc.suppressed is None or inc.suppressed.startswith(WAITING)


def take_unsaid(store: Store, now: datetime, owner: str) -> Unsaid:
    """Claim the undelivered outbox messages and take the untold problems, marked as told (the
    caller tells them; the alert lifecycle, still running for a moment, then follows them with
    their resolve, not with a second alert). Store thread, one transaction."""
    with store.transaction() as tx:
        messages = tx.claim_due_notifications(now, limit=500, owner=owner, lease=CLAIM_LEASE_S)
        claimed = {m.id for m in messages}
        stuck = [n for status in ("pending", "failed") for n in tx.list_notifications(status=status, limit=500)
                 if n.id not in claimed]
        problems = [i for i in tx.find_incidents(since=now - LOOK_BACK, limit=500) if untold(i)]
        for inc in problems:
            tx.set_incident_lifecycle(inc.id, announced_state=inc.state.name if inc.is_open else "OK",
                                      announced_at=now, suppressed=None)
    return Unsaid(messages, stuck, list(reversed(problems)))


def fold_dependents(problems: Sequence[IncidentRecord], lineage: Callable[[IncidentRecord], Sequence[str]]
                    ) -> list[tuple[IncidentRecord, list[IncidentRecord]]]:
    """One message per root cause: each problem whose ``depends_on`` chain (``lineage``: the
    incident keys of its parents, then their parents) reaches another of ``problems`` is told in
    that root's message, not on its own (as the alert lifecycle folds a dependent under its
    parent). Returns ``(root, its dependents)`` in the order of ``problems``."""
    keys = {inc.key: inc for inc in problems}
    parent_of = {inc.key: next((k for k in lineage(inc) if k in keys and k != inc.key), None) for inc in problems}

    def root(key: str) -> str:
        seen = {key}
        while (up := parent_of.get(key)) is not None and up not in seen:
            seen.add(up)
            key = up
        return key

    out: dict[str, list[IncidentRecord]] = {inc.key: [] for inc in problems if parent_of[inc.key] is None}
    for inc in problems:
        top = root(inc.key)
        if top != inc.key:
            out.setdefault(top, []).append(inc)
    return [(keys[k], deps) for k, deps in out.items()]


def problem_message(inc: IncidentRecord, why: str, dependents: Sequence[IncidentRecord] = ()) -> tuple[str, str]:
    """Title and body of a problem told directly because ``why`` (the title follows the alert
    template's: ``[CRITICAL] check on host``, ``[CRITICAL, now OK] ...`` once it recovered), with
    the ``dependents`` it explains (:func:`fold_dependents`) listed in its body."""
    state = inc.state.name
    fixed = inc.resolved_at is not None
    title = fixed_title(inc) if fixed else f"[{state}] {inc.check} on {inc.host}"
    body = (f"{inc.check} on {inc.host} (playbook {inc.play}) was {state} at "
            f"{inc.opened_at.astimezone(UTC):%Y-%m-%d %H:%M:%S} UTC: {inc.summary or 'no detail'}")
    if fixed:
        assert inc.resolved_at is not None
        body += f"; OK again since {inc.resolved_at.astimezone(UTC):%H:%M:%S} UTC"
    if dependents:
        body += ".\n\nExplained by it (depends_on), not told separately: " + "; ".join(
            f"{d.check} {d.state.name}{', now OK' if d.resolved_at is not None else ''}" for d in dependents)
    body += (f".\n\nSent directly: {why} before this was told. The agent restarts on a new database; "
             "a problem still open is handed over to the agent that starts next, which tells its resolve. See the "
             "agent's log for what it did about it.")
    return title, body
