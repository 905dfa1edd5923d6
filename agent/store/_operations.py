"""The store's operations, written once for :class:`Store` and :class:`StoreTransaction`.

Each method obtains a session from ``self._session()``: a fresh committed transaction on
the store, the open one on a transaction object.
"""
from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from contextlib import AbstractContextManager
from datetime import datetime, timezone
from typing import Any

from sqlalchemy import delete, func, insert, select, update
from sqlalchemy.orm import Session

from agent.engine.state import State
from agent.store.models import (
    ActionRunRow,
    CheckResultRow,
    CheckStateRow,
    EventRow,
    IncidentRow,
    NotificationIncidentRow,
    NotificationRow,
    SilenceRow,
)
from agent.store.records import (
    CHECK_STATE_VERSION,
    NOTIFICATION_KINDS,
    ActionRunRecord,
    CheckResultRecord,
    CheckStateRecord,
    EventRecord,
    IncidentRecord,
    NotificationRecord,
    SilenceRecord,
    check_key,
)

_RETRYABLE = ("pending", "failed")


def _aware(value: datetime) -> datetime:
    if value.tzinfo is None:
        raise ValueError(f"naive datetime {value!r}: pass a timezone-aware UTC datetime")
    return value.astimezone(timezone.utc)


def value_text(value: Any) -> str | None:
    """The text stored for a check value: strings as they are, the rest as JSON (or repr)."""
    if value is None or isinstance(value, str):
        return value
    try:
        return json.dumps(value, default=str, sort_keys=True)
    except (TypeError, ValueError):
        return repr(value)


def _incident(row: IncidentRow) -> IncidentRecord:
    return IncidentRecord(
        id=row.id, key=row.key, play=row.play, host=row.host, check=row.check,
        state=State[row.state], severity=row.severity, opened_at=row.opened_at,
        resolved_at=row.resolved_at, summary=row.summary, acknowledged_at=row.acknowledged_at,
        acknowledged_by=row.acknowledged_by, ack_comment=row.ack_comment,
        last_notified_at=row.last_notified_at, notify_count=row.notify_count,
        announced_state=row.announced_state, announced_at=row.announced_at, eligible_since=row.eligible_since,
        suppressed=row.suppressed, escalation_level=row.escalation_level or 0,
    )


def _silence(row: SilenceRow) -> SilenceRecord:
    return SilenceRecord(id=row.id, matchers=dict(row.matchers or {}), reason=row.reason, created_by=row.created_by,
                         created_at=row.created_at, starts_at=row.starts_at, ends_at=row.ends_at,
                         expired_at=row.expired_at)


def _notification(row: NotificationRow) -> NotificationRecord:
    return NotificationRecord(
        id=row.id, incident_id=row.incident_id, kind=row.kind, route=row.route, target=row.target,
        title=row.title, body=row.body, severity=row.severity, dedup_key=row.dedup_key,
        status=row.status, attempts=row.attempts, next_attempt_at=row.next_attempt_at,
        last_error=row.last_error, created_at=row.created_at, sent_at=row.sent_at,
    )


def _check_state(row: CheckStateRow) -> CheckStateRecord:
    return CheckStateRecord(
        play=row.play, host=row.host, check=row.check, hard_state=State[row.hard_state],
        soft_state=State[row.soft_state], since=row.since, soft_since=row.soft_since,
        consecutive=row.consecutive, last_value=row.last_value, last_error=row.last_error,
        last_observed_at=row.last_observed_at, incident_id=row.incident_id,
        extras=dict(row.extras or {}), version=row.version,
    )


def _event(row: EventRow) -> EventRecord:
    return EventRecord(id=row.id, at=row.at, kind=row.kind, key=row.key, incident_id=row.incident_id,
                       message=row.message, data=dict(row.data or {}))


def _result(row: CheckResultRow) -> CheckResultRecord:
    return CheckResultRecord(
        id=row.id, play=row.play, host=row.host, check=row.check, state=State[row.state],
        value=row.value, error=row.error, duration_ms=row.duration_ms, observed_at=row.observed_at,
    )


def _fill_check_state(row: CheckStateRow, rec: CheckStateRecord, now: datetime) -> None:
    row.play, row.host, row.check = rec.play, rec.host, rec.check
    row.hard_state, row.soft_state = State(rec.hard_state).name, State(rec.soft_state).name
    row.since = _aware(rec.since)
    row.soft_since = _aware(rec.soft_since) if rec.soft_since else None
    row.consecutive = rec.consecutive
    row.last_value, row.last_error = rec.last_value, rec.last_error
    row.last_observed_at = _aware(rec.last_observed_at) if rec.last_observed_at else None
    row.incident_id = rec.incident_id
    row.extras = dict(rec.extras)
    row.version = rec.version or CHECK_STATE_VERSION
    row.updated_at = now


class Operations:
    """Every store operation. Subclasses provide ``_session()``."""

    def _session(self) -> AbstractContextManager[Session]:  # pragma: no cover - abstract
        raise NotImplementedError

    # -- check results ---------------------------------------------------------------------

    def record_result(
        self, *, play: str, host: str, check: str, state: State, observed_at: datetime,
        value: Any = None, error: str | None = None, duration_ms: float | None = None,
    ) -> int:
        """Store one observation; ``value`` is kept as text (see :func:`value_text`)."""
        with self._session() as s:
            row = CheckResultRow(
                play=play, host=host, check=check, state=State(state).name, value=value_text(value),
                error=error, duration_ms=duration_ms, observed_at=_aware(observed_at),
            )
            s.add(row)
            s.flush()
            return row.id

    def record_results(self, rows: Sequence[Mapping[str, Any]]) -> int:
        """Store many observations in one statement (the engine's group commit); returns how many.

        Each row has the keyword arguments of :meth:`record_result`; the ids are not returned.
        """
        if not rows:
            return 0
        values = [dict(play=r["play"], host=r["host"], check=r["check"], state=State(r["state"]).name,
                       value=value_text(r.get("value")), error=r.get("error"), duration_ms=r.get("duration_ms"),
                       observed_at=_aware(r["observed_at"])) for r in rows]
        with self._session() as s:
            s.execute(insert(CheckResultRow), values)
        return len(values)

    def recent_results(
        self, *, play: str | None = None, host: str | None = None, check: str | None = None,
        since: datetime | None = None, limit: int = 100,
    ) -> list[CheckResultRecord]:
        """Newest first, optionally narrowed to a play, host and/or check."""
        q = select(CheckResultRow)
        for column, wanted in ((CheckResultRow.play, play), (CheckResultRow.host, host),
                               (CheckResultRow.check, check)):
            if wanted is not None:
                q = q.where(column == wanted)
        if since is not None:
            q = q.where(CheckResultRow.observed_at >= _aware(since))
        q = q.order_by(CheckResultRow.observed_at.desc(), CheckResultRow.id.desc()).limit(limit)
        with self._session() as s:
            return [_result(r) for r in s.scalars(q)]

    def prune_results(self, older_than: datetime) -> int:
        """Delete results observed before ``older_than``; returns how many were deleted."""
        with self._session() as s:
            res = s.execute(delete(CheckResultRow).where(CheckResultRow.observed_at < _aware(older_than)))
            return int(res.rowcount or 0)  # type: ignore[attr-defined]

    # -- check states ----------------------------------------------------------------------

    def load_check_states(self) -> dict[str, CheckStateRecord]:
        """Every saved check state, by ``play/host/check`` key (what the engine resumes from)."""
        with self._session() as s:
            return {r.key: _check_state(r) for r in s.scalars(select(CheckStateRow))}

    def save_check_state(self, rec: CheckStateRecord) -> None:
        """Insert or replace the state of ``rec.key``."""
        with self._session() as s:
            row = s.scalars(select(CheckStateRow).where(CheckStateRow.key == rec.key)).one_or_none()
            if row is None:
                row = CheckStateRow(key=rec.key)
                s.add(row)
            _fill_check_state(row, rec, datetime.now(timezone.utc))

    def save_check_states(self, recs: Sequence[CheckStateRecord]) -> None:
        """Insert or replace several check states at once (one query for the existing rows);
        when a key repeats, the last record wins."""
        if not recs:
            return
        latest = {r.key: r for r in recs}
        with self._session() as s:
            rows = {r.key: r for r in s.scalars(select(CheckStateRow).where(CheckStateRow.key.in_(list(latest))))}
            now = datetime.now(timezone.utc)
            for key, rec in latest.items():
                row = rows.get(key)
                if row is None:
                    row = CheckStateRow(key=key)
                    s.add(row)
                _fill_check_state(row, rec, now)

    def delete_check_state(self, key: str) -> bool:
        """Forget a check (it left the playbooks); returns whether it existed."""
        with self._session() as s:
            res = s.execute(delete(CheckStateRow).where(CheckStateRow.key == key))
            return bool(res.rowcount)  # type: ignore[attr-defined]

    # -- incidents ---------------------------------------------------------------------------

    def open_incident(
        self, *, play: str, host: str, check: str, state: State, severity: str,
        opened_at: datetime, summary: str = "",
    ) -> int:
        """Open an incident for the check and return its id.

        Idempotent per check: if one is already open for ``play/host/check`` its id is
        returned unchanged, so a replayed transition never opens a second incident.
        """
        key = check_key(play, host, check)
        with self._session() as s:
            existing = s.scalars(
                select(IncidentRow.id).where(IncidentRow.key == key, IncidentRow.resolved_at.is_(None))
            ).first()
            if existing is not None:
                return existing
            row = IncidentRow(
                key=key, play=play, host=host, check=check, state=State(state).name, severity=severity,
                opened_at=_aware(opened_at), summary=summary, notify_count=0,
            )
            s.add(row)
            s.flush()
            return row.id

    def update_incident(
        self, incident_id: int, *, state: State | None = None, severity: str | None = None,
        summary: str | None = None,
    ) -> None:
        """Record an escalation (WARNING -> CRITICAL) or a new summary of an open incident."""
        values: dict[str, Any] = {}
        if state is not None:
            values["state"] = State(state).name
        if severity is not None:
            values["severity"] = severity
        if summary is not None:
            values["summary"] = summary
        if values:
            with self._session() as s:
                s.execute(update(IncidentRow).where(IncidentRow.id == incident_id).values(**values))

    def resolve_incident(self, incident_id: int, at: datetime) -> bool:
        """Mark the incident resolved at ``at``; False if it was unknown or already resolved."""
        with self._session() as s:
            res = s.execute(
                update(IncidentRow)
                .where(IncidentRow.id == incident_id, IncidentRow.resolved_at.is_(None))
                .values(resolved_at=_aware(at))
            )
            return bool(res.rowcount)  # type: ignore[attr-defined]

    def acknowledge_incident(self, incident_id: int, *, by: str, at: datetime, comment: str | None = None) -> bool:
        """Record an operator's acknowledgement (it stops repeats); False if not open."""
        with self._session() as s:
            res = s.execute(
                update(IncidentRow)
                .where(IncidentRow.id == incident_id, IncidentRow.resolved_at.is_(None))
                .values(acknowledged_at=_aware(at), acknowledged_by=by, ack_comment=comment)
            )
            return bool(res.rowcount)  # type: ignore[attr-defined]

    _LIFECYCLE_FIELDS = frozenset({"announced_state", "announced_at", "eligible_since", "suppressed",
                                   "escalation_level", "acknowledged_at", "acknowledged_by", "ack_comment"})

    def set_incident_lifecycle(self, incident_id: int, **values: Any) -> None:
        """Update the alert-lifecycle columns of an incident (see :class:`IncidentRecord`).

        Accepted: announced_state, announced_at, eligible_since, suppressed, escalation_level,
        and acknowledged_at/acknowledged_by/ack_comment (``None`` clears an acknowledgement).
        """
        unknown = set(values) - self._LIFECYCLE_FIELDS
        if unknown:
            raise ValueError(f"not lifecycle fields: {', '.join(sorted(unknown))}")
        for k, v in list(values.items()):
            if isinstance(v, datetime):
                values[k] = _aware(v)
        if values:
            with self._session() as s:
                s.execute(update(IncidentRow).where(IncidentRow.id == incident_id).values(**values))

    def incidents_to_close(self) -> list[IncidentRecord]:
        """Resolved incidents whose problem was announced but whose resolve was not yet sent."""
        with self._session() as s:
            q = (select(IncidentRow).where(IncidentRow.resolved_at.is_not(None), IncidentRow.announced_state.is_not(None),
                                           IncidentRow.announced_state != "OK").order_by(IncidentRow.id))
            return [_incident(r) for r in s.scalars(q)]

    def find_incidents(self, *, since: datetime | None = None, host: str | None = None, check: str | None = None,
                       play: str | None = None, limit: int = 200) -> list[IncidentRecord]:
        """Incidents open at or after ``since`` (or still open), newest first, optionally narrowed."""
        q = select(IncidentRow)
        if since is not None:
            q = q.where((IncidentRow.resolved_at.is_(None)) | (IncidentRow.resolved_at >= _aware(since))
                        | (IncidentRow.opened_at >= _aware(since)))
        for column, wanted in ((IncidentRow.host, host), (IncidentRow.check, check), (IncidentRow.play, play)):
            if wanted is not None:
                q = q.where(column == wanted)
        with self._session() as s:
            return [_incident(r) for r in s.scalars(q.order_by(IncidentRow.id.desc()).limit(limit))]

    def link_notifications(self, notification_ids: Sequence[int], incident_ids: Sequence[int]) -> None:
        """Record that each message told about each of the incidents (grouped messages)."""
        with self._session() as s:
            for nid in notification_ids:
                for iid in dict.fromkeys(incident_ids):
                    s.merge(NotificationIncidentRow(notification_id=nid, incident_id=iid))

    # -- silences --------------------------------------------------------------------------

    def add_silence(self, *, matchers: Mapping[str, str], starts_at: datetime, ends_at: datetime, reason: str,
                    created_by: str, created_at: datetime | None = None) -> int:
        """Store a silence; returns its id."""
        with self._session() as s:
            row = SilenceRow(matchers=dict(matchers), starts_at=_aware(starts_at), ends_at=_aware(ends_at),
                             reason=reason, created_by=created_by,
                             created_at=_aware(created_at) if created_at else datetime.now(timezone.utc))
            s.add(row)
            s.flush()
            return row.id

    def silences(self, *, active_at: datetime | None = None, include_ended: bool = False) -> list[SilenceRecord]:
        """Silences, oldest first: those active at ``active_at``; else all not yet ended
        (unless ``include_ended``)."""
        q = select(SilenceRow)
        if active_at is not None:
            at = _aware(active_at)
            q = q.where(SilenceRow.expired_at.is_(None), SilenceRow.starts_at <= at, SilenceRow.ends_at > at)
        elif not include_ended:
            q = q.where(SilenceRow.expired_at.is_(None), SilenceRow.ends_at > datetime.now(timezone.utc))
        with self._session() as s:
            return [_silence(r) for r in s.scalars(q.order_by(SilenceRow.id))]

    def expire_silence(self, silence_id: int, at: datetime) -> bool:
        """End a silence now; False if unknown or already ended."""
        with self._session() as s:
            res = s.execute(update(SilenceRow).where(SilenceRow.id == silence_id, SilenceRow.expired_at.is_(None),
                                                     SilenceRow.ends_at > _aware(at))
                            .values(expired_at=_aware(at)))
            return bool(res.rowcount)  # type: ignore[attr-defined]

    def get_incident(self, incident_id: int) -> IncidentRecord | None:
        with self._session() as s:
            row = s.get(IncidentRow, incident_id)
            return _incident(row) if row else None

    def open_incidents(self) -> list[IncidentRecord]:
        """Unresolved incidents, oldest first."""
        with self._session() as s:
            q = select(IncidentRow).where(IncidentRow.resolved_at.is_(None)).order_by(IncidentRow.id)
            return [_incident(r) for r in s.scalars(q)]

    def open_incident_for(self, key: str) -> IncidentRecord | None:
        with self._session() as s:
            q = select(IncidentRow).where(IncidentRow.key == key, IncidentRow.resolved_at.is_(None))
            row = s.scalars(q).first()
            return _incident(row) if row else None

    # -- notifications (the outbox) ------------------------------------------------------------

    def enqueue_notification(
        self, *, kind: str, target: str, title: str, body: str, dedup_key: str, now: datetime,
        route: str | None = None, incident_id: int | None = None, severity: str = "info",
    ) -> int | None:
        """Add a message for one target; ``None`` if ``dedup_key`` was ever enqueued before.

        Enqueuing an ``alert`` or ``repeat`` of an incident also counts it in the incident's
        ``notify_count`` and ``last_notified_at``.
        """
        if kind not in NOTIFICATION_KINDS:
            raise ValueError(f"unknown notification kind {kind!r}; one of {', '.join(NOTIFICATION_KINDS)}")
        now = _aware(now)
        with self._session() as s:
            # Safe without ON CONFLICT: the write lock is held from BEGIN, nobody can race us.
            if s.scalars(select(NotificationRow.id).where(NotificationRow.dedup_key == dedup_key)).first():
                return None
            row = NotificationRow(
                incident_id=incident_id, kind=kind, route=route, target=target, title=title, body=body,
                severity=severity, dedup_key=dedup_key, status="pending", attempts=0,
                next_attempt_at=now, created_at=now,
            )
            s.add(row)
            if incident_id is not None and kind in ("alert", "repeat"):
                s.execute(
                    update(IncidentRow).where(IncidentRow.id == incident_id)
                    .values(last_notified_at=now, notify_count=IncidentRow.notify_count + 1)
                )
            s.flush()
            return row.id

    def claim_due_notifications(self, now: datetime, limit: int = 50) -> list[NotificationRecord]:
        """Move due messages to ``sending`` and return them, oldest first.

        A target is skipped while one of its messages is ``sending`` or waits out a retry
        backoff: messages to one target go out in order, and a target that is down is not
        hammered by each of its messages on its own schedule.
        """
        now = _aware(now)
        held = select(NotificationRow.target).where(
            (NotificationRow.status == "sending")
            | ((NotificationRow.status == "failed") & (NotificationRow.next_attempt_at > now))
        )
        q = (
            select(NotificationRow)
            .where(NotificationRow.status.in_(_RETRYABLE), NotificationRow.next_attempt_at <= now,
                   NotificationRow.target.not_in(held))
            .order_by(NotificationRow.id)
            .limit(limit)
        )
        with self._session() as s:
            rows = list(s.scalars(q))
            for row in rows:
                row.status = "sending"
            return [_notification(r) for r in rows]

    def next_notification_due_at(self) -> datetime | None:
        """When :meth:`claim_due_notifications` will next return something (None: nothing queued).

        Targets with a message in ``sending`` are left out: their delivery finishing is
        what makes them claimable again.
        """
        q = (
            select(NotificationRow.target, NotificationRow.status,
                   func.min(NotificationRow.next_attempt_at), func.max(NotificationRow.next_attempt_at))
            .where(NotificationRow.status.in_(("pending", "failed", "sending")))
            .group_by(NotificationRow.target, NotificationRow.status)
        )
        per_target: dict[str, dict[str, tuple[datetime, datetime]]] = {}
        with self._session() as s:
            for target, status, earliest, latest in s.execute(q):
                per_target.setdefault(target, {})[status] = (_as_utc(earliest), _as_utc(latest))
        due: list[datetime] = []
        for groups in per_target.values():
            if "sending" in groups:
                continue
            if "failed" in groups:  # held until its last backoff ends (see claim)
                due.append(groups["failed"][1])
            else:
                due.append(groups["pending"][0])
        return min(due) if due else None

    def mark_sent(self, notification_id: int, at: datetime) -> None:
        with self._session() as s:
            s.execute(
                update(NotificationRow).where(NotificationRow.id == notification_id)
                .values(status="sent", sent_at=_aware(at), attempts=NotificationRow.attempts + 1)
            )

    def mark_failed(
        self, notification_id: int, error: str, next_attempt_at: datetime, dead: bool = False,
    ) -> None:
        """Count a failed attempt; retried at ``next_attempt_at`` unless ``dead`` (never retried)."""
        with self._session() as s:
            s.execute(
                update(NotificationRow).where(NotificationRow.id == notification_id)
                .values(status="dead" if dead else "failed", last_error=error,
                        next_attempt_at=_aware(next_attempt_at), attempts=NotificationRow.attempts + 1)
            )

    def defer_notifications(self, ids: list[int], until: datetime) -> None:
        """Give claimed messages back without counting an attempt (their target just failed)."""
        if not ids:
            return
        with self._session() as s:
            for row in s.scalars(select(NotificationRow).where(NotificationRow.id.in_(ids))):
                row.status = "failed" if row.attempts else "pending"
                row.next_attempt_at = _aware(until)

    def expedite_target(self, target: str, now: datetime) -> int:
        """Make every waiting message of ``target`` due now (it just accepted a message)."""
        with self._session() as s:
            res = s.execute(
                update(NotificationRow)
                .where(NotificationRow.target == target, NotificationRow.status == "failed",
                       NotificationRow.next_attempt_at > _aware(now))
                .values(next_attempt_at=_aware(now))
            )
            return int(res.rowcount or 0)  # type: ignore[attr-defined]

    def requeue_interrupted(self, now: datetime) -> int:
        """Put rows left in ``sending`` by a crash back in the queue; returns how many.

        At-least-once in exactly this window: a message that was delivered but not yet
        marked sent when the agent died is sent again.
        """
        with self._session() as s:
            res = s.execute(
                update(NotificationRow).where(NotificationRow.status == "sending")
                .values(status="pending", next_attempt_at=_aware(now))
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

    # -- audit ---------------------------------------------------------------------------------

    def record_action_run(self, run: Mapping[str, Any] | None = None, /, **fields: Any) -> int:
        """Audit one task/step, given as keyword arguments or as one mapping of the same names.

        Fields: play, host, task, module, actor, started_at (required); params (already
        redacted: stored as given), reason, check_mode, changed, failed, msg, finished_at,
        incident_id.
        """
        return self._record_action_run(**{**dict(run or {}), **fields})

    def _record_action_run(
        self, *, play: str, host: str, task: str, module: str, actor: str, started_at: datetime,
        params: Mapping[str, Any] | None = None, reason: str = "", check_mode: bool = False,
        changed: bool = False, failed: bool = False, msg: str = "", finished_at: datetime | None = None,
        incident_id: int | None = None,
    ) -> int:
        with self._session() as s:
            row = ActionRunRow(
                incident_id=incident_id, play=play, host=host, task=task, module=module,
                params=json.loads(json.dumps(dict(params or {}), default=str)), reason=reason,
                actor=actor, check_mode=check_mode, changed=changed, failed=failed, msg=msg,
                started_at=_aware(started_at), finished_at=_aware(finished_at) if finished_at else None,
            )
            s.add(row)
            s.flush()
            return row.id

    def action_runs(self, *, incident_id: int | None = None, limit: int = 100) -> list[ActionRunRecord]:
        """Newest first."""
        q = select(ActionRunRow)
        if incident_id is not None:
            q = q.where(ActionRunRow.incident_id == incident_id)
        with self._session() as s:
            return [
                ActionRunRecord(
                    id=r.id, incident_id=r.incident_id, play=r.play, host=r.host, task=r.task,
                    module=r.module, params=dict(r.params or {}), reason=r.reason, actor=r.actor,
                    check_mode=r.check_mode, changed=r.changed, failed=r.failed, msg=r.msg,
                    started_at=r.started_at, finished_at=r.finished_at,
                )
                for r in s.scalars(q.order_by(ActionRunRow.id.desc()).limit(limit))
            ]

    def add_event(
        self, kind: str, key: str | None = None, incident_id: int | None = None, message: str = "",
        data: Mapping[str, Any] | None = None, *, at: datetime | None = None,
    ) -> int:
        """Append a decision to the audit trail (``data`` is stored as JSON, as given).

        ``at`` defaults to now. Positional order: kind, key, incident_id, message, data.
        """
        with self._session() as s:
            row = EventRow(
                at=_aware(at) if at else datetime.now(timezone.utc), kind=kind, key=key,
                incident_id=incident_id, message=message,
                data=json.loads(json.dumps(dict(data or {}), default=str)),
            )
            s.add(row)
            s.flush()
            return row.id

    def events_since(self, since: datetime, kinds: Sequence[str] | None = None) -> list[EventRecord]:
        """Events at or after ``since``, oldest first, optionally only of the given kinds."""
        q = select(EventRow).where(EventRow.at >= _aware(since))
        if kinds is not None:
            q = q.where(EventRow.kind.in_(list(kinds)))
        with self._session() as s:
            return [_event(r) for r in s.scalars(q.order_by(EventRow.id))]

    def recent_events(self, *, kind: str | None = None, key: str | None = None, limit: int = 100,
                      incident_id: int | None = None, since: datetime | None = None) -> list[EventRecord]:
        """Newest first."""
        q = select(EventRow)
        if incident_id is not None:
            q = q.where(EventRow.incident_id == incident_id)
        if since is not None:
            q = q.where(EventRow.at >= _aware(since))
        if kind is not None:
            q = q.where(EventRow.kind == kind)
        if key is not None:
            q = q.where(EventRow.key == key)
        with self._session() as s:
            return [_event(r) for r in s.scalars(q.order_by(EventRow.id.desc()).limit(limit))]


def _as_utc(value: datetime) -> datetime:
    # Aggregates (min/max) bypass the column type, so SQLite hands back a naive value or text.
    if isinstance(value, str):
        value = datetime.fromisoformat(value)
    return value.replace(tzinfo=timezone.utc) if value.tzinfo is None else value.astimezone(timezone.utc)

