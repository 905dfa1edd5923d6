"""Store operations: the audit trail (action runs) and the event log."""
from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from datetime import UTC, datetime
from fnmatch import fnmatchcase
from typing import Any

from sqlalchemy import select

from agent.store._ops_checks import end_silence, until_ok_silences
from agent.store._ops_common import OperationsBase, aware
from agent.store.models import ActionRunRow, EventRow
from agent.store.records import ActionRunRecord, EventRecord


def _event(row: EventRow) -> EventRecord:
    return EventRecord(id=row.id, at=row.at, kind=row.kind, key=row.key, incident_id=row.incident_id,
                       message=row.message, data=dict(row.data or {}))


def _end_until_ok_silences(s: Any, host: str, actor: str, at: datetime) -> None:
    """A resume is the operator saying trading may start again: the silences a play left on the
    host's checks until they read OK (``silence_until_ok``: the emergency's halt and stop) end
    with it, so a halt or a stop that comes before any check read OK again is told (the bot may
    halt itself again at once; a silence waiting for an OK would swallow that)."""
    for row in until_ok_silences(s, at):
        if fnmatchcase(host, (row.matchers or {}).get("host", "*")):
            end_silence(s, row, at, f"the bot was resumed by {actor}")


class AuditOperations(OperationsBase):
    """Action runs (who did what, when, with which outcome) and events."""

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
            if module == "bot" and (params or {}).get("action") == "resume" and not failed and not check_mode:
                _end_until_ok_silences(s, host, actor, aware(finished_at or datetime.now(UTC)))
            row = ActionRunRow(
                incident_id=incident_id, play=play, host=host, task=task, module=module,
                params=json.loads(json.dumps(dict(params or {}), default=str)), reason=reason,
                actor=actor, check_mode=check_mode, changed=changed, failed=failed, msg=msg,
                started_at=aware(started_at), finished_at=aware(finished_at) if finished_at else None,
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
                at=aware(at) if at else datetime.now(UTC), kind=kind, key=key,
                incident_id=incident_id, message=message,
                data=json.loads(json.dumps(dict(data or {}), default=str)),
            )
            s.add(row)
            s.flush()
            return row.id

    def events_since(self, since: datetime, kinds: Sequence[str] | None = None) -> list[EventRecord]:
        """Events at or after ``since``, oldest first, optionally only of the given kinds."""
        q = select(EventRow).where(EventRow.at >= aware(since))
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
            q = q.where(EventRow.at >= aware(since))
        if kind is not None:
            q = q.where(EventRow.kind == kind)
        if key is not None:
            q = q.where(EventRow.key == key)
        with self._session() as s:
            return [_event(r) for r in s.scalars(q.order_by(EventRow.id.desc()).limit(limit))]
