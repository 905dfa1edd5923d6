"""Store operations: incidents and silences."""
from __future__ import annotations

import glob
from collections.abc import Mapping, Sequence
from datetime import UTC, datetime, timedelta
from typing import Any

from sqlalchemy import select, update

from agent.core.states import State
from agent.store._ops_common import OperationsBase, aware
from agent.store.models import IncidentRow, NotificationIncidentRow, SilenceRow
from agent.store.records import IncidentRecord, SilenceRecord, check_key


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
                         expired_at=row.expired_at, ok_after=row.ok_after)


UNTIL_OK_BOUND = timedelta(days=7)
"""The longest a play's ``silence_until_ok`` holds when its check never reads OK again: a bot
left halted or stopped for a week is said again."""


class IncidentOperations(OperationsBase):
    """Incidents (one open per check at most) and silences."""

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
                opened_at=aware(opened_at), summary=summary, notify_count=0,
            )
            s.add(row)
            s.flush()
            return row.id

    def reopen_incident(self, *, play: str, host: str, check: str, state: State, severity: str,
                        summary: str = "", resolved_since: datetime | None = None,
                        untold: bool = False) -> IncidentRecord | None:
        """Reopen the check's last incident when it is resolved (at ``resolved_since`` or later)
        but its resolve was not told yet (its problem was): the problem came back before the
        operator read it was over, so it is the same incident. With ``untold`` (a remediated
        check, whose ``[X, now OK]`` message is held like a resolve) also one never told at all:
        its message is then the one message of both. Returns it as it was before (its
        ``resolved_at``: when it recovered), or None when there is nothing to reopen (a new
        incident is opened then)."""
        key = check_key(play, host, check)
        with self._session() as s:
            row = s.scalars(select(IncidentRow).where(IncidentRow.key == key).order_by(IncidentRow.id.desc())
                            .limit(1)).first()
            if (row is None or row.resolved_at is None or (row.announced_state is None and not untold)
                    or row.announced_state == "OK"
                    or (resolved_since is not None and aware(row.resolved_at) < aware(resolved_since))):
                return None
            before = _incident(row)
            if row.announced_state is None:  # never told: its group_wait runs again from now
                row.eligible_since = None
                row.suppressed = None
            row.resolved_at = None
            row.state = State(state).name
            row.severity = severity
            row.summary = summary
            return before

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
                .values(resolved_at=aware(at))
            )
            return bool(res.rowcount)  # type: ignore[attr-defined]

    def acknowledge_incident(self, incident_id: int, *, by: str, at: datetime, comment: str | None = None) -> bool:
        """Record an operator's acknowledgement (it stops repeats); False if not open or already
        acknowledged (the first acknowledgement and its comment stand, in one UPDATE: of two
        concurrent ones exactly one wins)."""
        with self._session() as s:
            res = s.execute(
                update(IncidentRow)
                .where(IncidentRow.id == incident_id, IncidentRow.resolved_at.is_(None),
                       IncidentRow.acknowledged_at.is_(None))
                .values(acknowledged_at=aware(at), acknowledged_by=by, ack_comment=comment)
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
                values[k] = aware(v)
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
            q = q.where((IncidentRow.resolved_at.is_(None)) | (IncidentRow.resolved_at >= aware(since))
                        | (IncidentRow.opened_at >= aware(since)))
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
                    created_by: str, created_at: datetime | None = None, ok_after: datetime | None = None) -> int:
        """Store a silence; returns its id. With ``ok_after``, it also ends at the first reading
        of a check it matches that is OK again, observed after ``ok_after``."""
        with self._session() as s:
            row = SilenceRow(matchers=dict(matchers), starts_at=aware(starts_at), ends_at=aware(ends_at),
                             reason=reason, created_by=created_by, ok_after=aware(ok_after) if ok_after else None,
                             created_at=aware(created_at) if created_at else datetime.now(UTC))
            s.add(row)
            s.flush()
            return row.id

    def silences(self, *, active_at: datetime | None = None, include_ended: bool = False) -> list[SilenceRecord]:
        """Silences, oldest first: those active at ``active_at``; else all not yet ended
        (unless ``include_ended``)."""
        q = select(SilenceRow)
        if active_at is not None:
            at = aware(active_at)
            q = q.where(SilenceRow.expired_at.is_(None), SilenceRow.starts_at <= at, SilenceRow.ends_at > at)
        elif not include_ended:
            q = q.where(SilenceRow.expired_at.is_(None), SilenceRow.ends_at > datetime.now(UTC))
        with self._session() as s:
            return [_silence(r) for r in s.scalars(q.order_by(SilenceRow.id))]

    def silence_until_ok(self, *, host: str, checks: Sequence[tuple[str, str]], reason: str, created_by: str,
                         starts_at: datetime, ok_after: datetime) -> list[int]:
        """Silences of each ``(play, check)`` on ``host`` (the names as written, never patterns)
        from ``starts_at`` until the check reads OK after ``ok_after`` (at most
        :data:`UNTIL_OK_BOUND`); returns their ids (see :meth:`silences_ok_after`)."""
        return [self.add_silence(matchers={"host": glob.escape(host), "play": glob.escape(play),
                                           "check": glob.escape(check)},
                                 starts_at=starts_at, ends_at=aware(starts_at) + UNTIL_OK_BOUND,
                                 reason=f"{reason} (until {check} is OK again)", created_by=created_by,
                                 created_at=starts_at, ok_after=ok_after)
                for play, check in checks]

    def silences_ok_after(self, silence_ids: Sequence[int], at: datetime) -> None:
        """Move the moment after which an OK reading ends these silences (the task that made them
        finished at ``at``)."""
        with self._session() as s:
            s.execute(update(SilenceRow).where(SilenceRow.id.in_(list(silence_ids)), SilenceRow.ok_after.is_not(None))
                      .values(ok_after=aware(at)))

    def get_silence(self, silence_id: int) -> SilenceRecord | None:
        with self._session() as s:
            row = s.get(SilenceRow, silence_id)
            return _silence(row) if row else None

    def expire_silence(self, silence_id: int, at: datetime) -> bool:
        """End a silence now; False if unknown or already ended."""
        with self._session() as s:
            res = s.execute(update(SilenceRow).where(SilenceRow.id == silence_id, SilenceRow.expired_at.is_(None),
                                                     SilenceRow.ends_at > aware(at))
                            .values(expired_at=aware(at)))
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
