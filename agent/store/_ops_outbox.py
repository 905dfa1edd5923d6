"""Store operations: the notification outbox."""
from __future__ import annotations

from collections.abc import Collection, Sequence
from datetime import UTC, datetime, timedelta

from sqlalchemy import String, cast, func, select, update

from agent.store._ops_common import OperationsBase, aware
from agent.store.models import EventRow, IncidentRow, NotificationIncidentRow, NotificationRow
from agent.store.records import NOTIFICATION_KINDS, NotificationRecord, check_key

_RETRYABLE = ("pending", "failed")
DEFAULT_LEASE_SECONDS = 60.0
"""How long a claim holds unless renewed (the outbox sets its own, above its delivery timeout)."""
_UNCLAIMED = {"claimed_by": None, "claim_expires_at": None}
REPEAT_NOTE = ("\n\n(Sent again: the process sending this stopped before the target confirmed it; "
               "you may have received it already.)")
"""Appended to a message whose delivery was interrupted (its sender died holding the claim): it
is sent again (at-least-once: a lost alert costs more than a repeated one), saying so."""


def _sent_again(row: NotificationRow) -> None:
    if not row.body.endswith(REPEAT_NOTE):
        row.body = row.body + REPEAT_NOTE


def as_utc(value: datetime) -> datetime:
    # Aggregates (min/max) bypass the column type, so SQLite hands back a naive value or text.
    if isinstance(value, str):
        value = datetime.fromisoformat(value)
    return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)


def _notification(row: NotificationRow) -> NotificationRecord:
    return NotificationRecord(
        id=row.id, incident_id=row.incident_id, kind=row.kind, route=row.route, target=row.target,
        title=row.title, body=row.body, severity=row.severity, dedup_key=row.dedup_key,
        status=row.status, attempts=row.attempts, next_attempt_at=row.next_attempt_at,
        last_error=row.last_error, created_at=row.created_at, sent_at=row.sent_at,
        attachments=tuple(row.attachments or ()), claimed_by=row.claimed_by,
        claim_expires_at=row.claim_expires_at,
    )


class OutboxOperations(OperationsBase):
    """The outbox: notifications enqueued in the transaction that decided them, claimed, sent, retried."""

    # -- notifications (the outbox) ------------------------------------------------------------

    def enqueue_notification(
        self, *, kind: str, target: str, title: str, body: str, dedup_key: str, now: datetime,
        route: str | None = None, incident_id: int | None = None, severity: str = "info",
        attachments: Sequence[str] = (),
    ) -> int | None:
        """Add a message for one target; ``None`` if ``dedup_key`` was ever enqueued before.

        Enqueuing an ``alert`` or ``repeat`` of an incident also counts it in the incident's
        ``notify_count`` and ``last_notified_at``.
        """
        if kind not in NOTIFICATION_KINDS:
            raise ValueError(f"unknown notification kind {kind!r}; one of {', '.join(NOTIFICATION_KINDS)}")
        now = aware(now)
        with self._session() as s:
            # Safe without ON CONFLICT: the write lock is held from BEGIN, nobody can race us.
            if s.scalars(select(NotificationRow.id).where(NotificationRow.dedup_key == dedup_key)).first():
                return None
            row = NotificationRow(
                incident_id=incident_id, kind=kind, route=route, target=target, title=title, body=body,
                severity=severity, dedup_key=dedup_key, status="pending", attempts=0,
                next_attempt_at=now, created_at=now, attachments=list(attachments) or None,
            )
            s.add(row)
            if incident_id is not None and kind in ("alert", "repeat"):
                s.execute(
                    update(IncidentRow).where(IncidentRow.id == incident_id)
                    .values(last_notified_at=now, notify_count=IncidentRow.notify_count + 1)
                )
            s.flush()
            return row.id

    def end_dedup(self, prefix: str) -> int:
        """Let the messages whose dedup key starts with ``prefix`` be queued again (a new episode
        of what they told: the same key is told once more); returns how many keys were ended.

        The rows stay, for the record: their keys get ``:ended:<id>`` appended (still unique)."""
        key = NotificationRow.dedup_key
        with self._session() as s:
            done = s.execute(
                update(NotificationRow)
                .where(key.startswith(prefix, autoescape=True), ~key.contains(":ended:", autoescape=True))
                .values(dedup_key=key + ":ended:" + cast(NotificationRow.id, String))
                .execution_options(synchronize_session=False))
            return int(getattr(done, "rowcount", 0) or 0)

    def claim_due_notifications(self, now: datetime, limit: int = 50, *, owner: str = "",
                                lease: float = DEFAULT_LEASE_SECONDS,
                                only: Collection[int] | None = None) -> list[NotificationRecord]:
        """Move due messages to ``sending``, held by ``owner`` for ``lease`` seconds; oldest first.

        Due: ``pending`` or ``failed`` whose time has come, or ``sending`` under a claim that
        expired (its owner died or stopped renewing: anyone may take it). A target is skipped
        while one of its messages is under a live claim or waits out a retry backoff: messages
        to one target go out in order, and a target that is down is not hammered by each of its
        messages on its own schedule. ``only``: claim nothing but these rows (a one-shot run
        delivers what it queued itself, never the resident agent's messages).
        """
        now = aware(now)
        live_claim = (NotificationRow.status == "sending") & (NotificationRow.claim_expires_at > now)
        held = select(NotificationRow.target).where(
            live_claim | ((NotificationRow.status == "failed") & (NotificationRow.next_attempt_at > now))
        )
        expired_claim = (NotificationRow.status == "sending") & (
            NotificationRow.claim_expires_at.is_(None) | (NotificationRow.claim_expires_at <= now))
        q = (
            select(NotificationRow)
            .where((NotificationRow.status.in_(_RETRYABLE) & (NotificationRow.next_attempt_at <= now))
                   | expired_claim,
                   NotificationRow.target.not_in(held))
            .order_by(NotificationRow.id)
            .limit(limit)
        )
        if only is not None:
            q = q.where(NotificationRow.id.in_(list(only)))
        with self._session() as s:
            rows = list(s.scalars(q))
            for row in rows:
                if row.status == "sending":  # its claim expired: its sender may have delivered it
                    _sent_again(row)
                row.status = "sending"
                row.claimed_by = owner
                row.claim_expires_at = now + timedelta(seconds=lease)
            return [_notification(r) for r in rows]

    def renew_claims(self, ids: Collection[int], owner: str, until: datetime) -> set[int]:
        """Extend ``owner``'s claims on ``ids`` to ``until``; returns the ids it still holds
        (a claim that expired and was taken by another process is not renewed)."""
        if not ids:
            return set()
        with self._session() as s:
            rows = list(s.scalars(select(NotificationRow).where(
                NotificationRow.id.in_(list(ids)), NotificationRow.status == "sending",
                NotificationRow.claimed_by == owner)))
            for row in rows:
                row.claim_expires_at = aware(until)
            return {r.id for r in rows}

    def release_claims(self, now: datetime, owners: Collection[str] | None = None,
                       keep: Collection[int] = (), *, interrupted: bool = False) -> int:
        """Give ``sending`` rows of ``owners`` (``None``: of anyone) back to the queue, due
        ``now``, except ``keep``; returns how many. For an owner that is gone (a crash,
        ``interrupted``) this is at-least-once: a message delivered but not yet marked sent is
        sent again, saying so (:data:`REPEAT_NOTE`)."""
        q = select(NotificationRow).where(NotificationRow.status == "sending")
        if owners is not None:
            q = q.where(NotificationRow.claimed_by.in_(list(owners)))
        if keep:
            q = q.where(NotificationRow.id.not_in(list(keep)))
        with self._session() as s:
            rows = list(s.scalars(q))
            for row in rows:
                if interrupted:
                    _sent_again(row)
                row.status = "failed" if row.attempts else "pending"
                row.next_attempt_at = aware(now)
                row.claimed_by = row.claim_expires_at = None
            return len(rows)

    def claim_owners(self) -> set[str]:
        """The owners of the claims on ``sending`` rows (live or expired)."""
        with self._session() as s:
            found = s.scalars(select(NotificationRow.claimed_by).distinct()
                              .where(NotificationRow.status == "sending", NotificationRow.claimed_by.is_not(None)))
            return {o for o in found if o}

    def unfinished_notifications(self, ids: Collection[int]) -> list[NotificationRecord]:
        """Those of ``ids`` not yet sent nor given up (pending, sending or failed)."""
        if not ids:
            return []
        with self._session() as s:
            q = select(NotificationRow).where(NotificationRow.id.in_(list(ids)),
                                              NotificationRow.status.in_(("pending", "sending", "failed")))
            return [_notification(r) for r in s.scalars(q.order_by(NotificationRow.id))]

    def next_notification_due_at(self) -> datetime | None:
        """When :meth:`claim_due_notifications` will next return something (None: nothing queued).

        A target with a message in ``sending`` is due when its claims expire (the owner's
        delivery finishing is what normally makes it claimable again, sooner).
        """
        q = (
            select(NotificationRow.target, NotificationRow.status,
                   func.min(NotificationRow.next_attempt_at), func.max(NotificationRow.next_attempt_at))
            .where(NotificationRow.status.in_(("pending", "failed")))
            .group_by(NotificationRow.target, NotificationRow.status)
        )
        sending = (
            select(NotificationRow.target, func.max(func.coalesce(NotificationRow.claim_expires_at,
                                                                  NotificationRow.next_attempt_at)))
            .where(NotificationRow.status == "sending")
            .group_by(NotificationRow.target)
        )
        per_target: dict[str, dict[str, tuple[datetime, datetime]]] = {}
        with self._session() as s:
            for target, status, earliest, latest in s.execute(q):
                per_target.setdefault(target, {})[status] = (as_utc(earliest), as_utc(latest))
            for target, expires in s.execute(sending):
                per_target.setdefault(target, {})["sending"] = (as_utc(expires), as_utc(expires))
        due: list[datetime] = []
        for groups in per_target.values():
            if "sending" in groups:  # held until its claims expire
                due.append(groups["sending"][1])
            elif "failed" in groups:  # held until its last backoff ends (see claim)
                due.append(groups["failed"][1])
            else:
                due.append(groups["pending"][0])
        return min(due) if due else None

    def mark_sent(self, notification_id: int, at: datetime, *, owner: str | None = None) -> bool:
        """Record a delivery apprise reported, and a ``delivered`` audit event for every
        incident the message tells (``agent explain`` shows when it really went out). With
        ``owner`` (a dead outbox's receipt): only while the row is still ``sending`` under that
        owner's claim. Returns whether the row was marked."""
        with self._session() as s:
            q = update(NotificationRow).where(NotificationRow.id == notification_id)
            if owner is not None:
                q = q.where(NotificationRow.status == "sending", NotificationRow.claimed_by == owner)
            done = s.execute(
                q.values(status="sent", sent_at=aware(at), attempts=NotificationRow.attempts + 1, **_UNCLAIMED)
            )
            if not getattr(done, "rowcount", 1):
                return False
            row = s.get(NotificationRow, notification_id)
            if row is None:
                return False
            linked = select(NotificationIncidentRow.incident_id).where(
                NotificationIncidentRow.notification_id == notification_id)
            incidents = s.scalars(select(IncidentRow).where(
                (IncidentRow.id == row.incident_id) | IncidentRow.id.in_(linked)).order_by(IncidentRow.id))
            for inc in incidents:
                s.add(EventRow(at=aware(at), kind="delivered", key=check_key(inc.play, inc.host, inc.check),
                               incident_id=inc.id, message=f"{row.kind} #{row.id} delivered to {row.target}",
                               data={"notification": row.id, "target": row.target, "kind": row.kind}))
            return True

    def mark_failed(
        self, notification_id: int, error: str, next_attempt_at: datetime, dead: bool = False,
    ) -> None:
        """Count a failed attempt; retried at ``next_attempt_at`` unless ``dead`` (never retried)."""
        with self._session() as s:
            s.execute(
                update(NotificationRow).where(NotificationRow.id == notification_id)
                .values(status="dead" if dead else "failed", last_error=error,
                        next_attempt_at=aware(next_attempt_at), attempts=NotificationRow.attempts + 1,
                        **_UNCLAIMED)
            )

    def defer_notifications(self, ids: list[int], until: datetime) -> None:
        """Give claimed messages back without counting an attempt (their target just failed)."""
        if not ids:
            return
        with self._session() as s:
            for row in s.scalars(select(NotificationRow).where(NotificationRow.id.in_(ids))):
                row.status = "failed" if row.attempts else "pending"
                row.next_attempt_at = aware(until)
                row.claimed_by = row.claim_expires_at = None

    def expedite_target(self, target: str, now: datetime) -> int:
        """Make every waiting message of ``target`` due now (it just accepted a message)."""
        with self._session() as s:
            res = s.execute(
                update(NotificationRow)
                .where(NotificationRow.target == target, NotificationRow.status == "failed",
                       NotificationRow.next_attempt_at > aware(now))
                .values(next_attempt_at=aware(now))
            )
            return int(res.rowcount or 0)  # type: ignore[attr-defined]

    def list_notifications(
        self, *, incident_id: int | None = None, status: str | None = None, kind: str | None = None,
        limit: int = 1000,
    ) -> list[NotificationRecord]:
        """Outbox rows, oldest first (for status views, repeats and tests)."""
        q = select(NotificationRow)
        if incident_id is not None:
            linked = select(NotificationIncidentRow.notification_id).where(
                NotificationIncidentRow.incident_id == incident_id)
            q = q.where((NotificationRow.incident_id == incident_id) | NotificationRow.id.in_(linked))
        if status is not None:
            q = q.where(NotificationRow.status == status)
        if kind is not None:
            q = q.where(NotificationRow.kind == kind)
        with self._session() as s:
            return [_notification(r) for r in s.scalars(q.order_by(NotificationRow.id).limit(limit))]
