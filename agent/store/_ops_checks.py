"""Store operations: check results and check states."""
from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from datetime import UTC, datetime
from fnmatch import fnmatchcase
from typing import Any

from sqlalchemy import delete, insert, select

from agent.core.states import State
from agent.store._ops_common import OperationsBase, aware
from agent.store.models import CheckResultRow, CheckStateRow, EventRow, SilenceRow
from agent.store.records import CHECK_STATE_VERSION, CheckResultRecord, CheckStateRecord


def value_text(value: Any) -> str | None:
    """The text stored for a check value: strings as they are, the rest as JSON (or repr)."""
    if value is None or isinstance(value, str):
        return value
    try:
        return json.dumps(value, default=str, sort_keys=True)
    except (TypeError, ValueError):
        return repr(value)


def _check_state(row: CheckStateRow) -> CheckStateRecord:
    return CheckStateRecord(
        play=row.play, host=row.host, check=row.check, hard_state=State[row.hard_state],
        soft_state=State[row.soft_state], since=row.since, soft_since=row.soft_since,
        consecutive=row.consecutive, last_value=row.last_value, last_error=row.last_error,
        last_observed_at=row.last_observed_at, incident_id=row.incident_id,
        extras=dict(row.extras or {}), version=row.version,
    )


def _result(row: CheckResultRow) -> CheckResultRecord:
    return CheckResultRecord(
        id=row.id, play=row.play, host=row.host, check=row.check, state=State[row.state],
        value=row.value, error=row.error, duration_ms=row.duration_ms, observed_at=row.observed_at,
    )


def _end_silences_now_ok(s: Any, recs: Sequence[CheckStateRecord], now: datetime) -> None:
    """End every ``ok_after`` silence of a check read OK again after that moment: what a play
    left on purpose (the emergency's halt, its stop) is over, so a new problem is told."""
    _end_until_ok_silences(s, [(r, aware(r.last_observed_at), f"{r.check} is OK again") for r in recs
                               if r.hard_state == State.OK and r.soft_state == State.OK
                               and r.last_observed_at is not None], now)


def _end_until_ok_silences(s: Any, seen: Sequence[tuple[CheckStateRecord, datetime, str]], now: datetime) -> None:
    """End every ``ok_after`` silence of a check of ``seen`` whose reading (observed after the
    task that made it finished) says what it silenced is over: ``(state, observed at, why)``."""
    if not seen:
        return
    for row in until_ok_silences(s, now):
        fields = dict(row.matchers or {})
        for rec, observed, why in seen:
            if row.ok_after is None or observed <= aware(row.ok_after) or not all(
                    fnmatchcase(value, fields.get(name, "*"))
                    for name, value in (("host", rec.host), ("play", rec.play), ("check", rec.check))):
                continue
            end_silence(s, row, now, why, key=rec.key, incident_id=rec.incident_id)
            break


def until_ok_silences(s: Any, now: datetime) -> Any:
    """The ``silence_until_ok`` silences in force at ``now`` (rows, in ``s``)."""
    return s.scalars(select(SilenceRow).where(SilenceRow.ok_after.is_not(None), SilenceRow.expired_at.is_(None),
                                              SilenceRow.ends_at > now))


def end_silence(s: Any, row: SilenceRow, now: datetime, why: str, *, key: str | None = None,
                incident_id: int | None = None) -> None:
    """End ``row`` now, with a ``silence_ended`` event saying why."""
    row.expired_at = now
    s.add(EventRow(at=now, kind="silence_ended", key=key, incident_id=incident_id,
                   message=f"silence #{row.id} ended: {why}", data={"silence": row.id, "reason": row.reason}))


def _fill_check_state(row: CheckStateRow, rec: CheckStateRecord, now: datetime) -> None:
    row.play, row.host, row.check = rec.play, rec.host, rec.check
    row.hard_state, row.soft_state = State(rec.hard_state).name, State(rec.soft_state).name
    row.since = aware(rec.since)
    row.soft_since = aware(rec.soft_since) if rec.soft_since else None
    row.consecutive = rec.consecutive
    row.last_value, row.last_error = rec.last_value, rec.last_error
    row.last_observed_at = aware(rec.last_observed_at) if rec.last_observed_at else None
    row.incident_id = rec.incident_id
    row.extras = dict(rec.extras)
    row.version = rec.version or CHECK_STATE_VERSION
    row.updated_at = now


class CheckOperations(OperationsBase):
    """Check results (the raw observations) and check states (what the engine resumes from)."""

    # -- check results ---------------------------------------------------------------------

    def record_result(
        self, *, play: str, host: str, check: str, state: State, observed_at: datetime,
        value: Any = None, error: str | None = None, duration_ms: float | None = None,
    ) -> int:
        """Store one observation; ``value`` is kept as text (see :func:`value_text`)."""
        with self._session() as s:
            row = CheckResultRow(
                play=play, host=host, check=check, state=State(state).name, value=value_text(value),
                error=error, duration_ms=duration_ms, observed_at=aware(observed_at),
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
                       observed_at=aware(r["observed_at"])) for r in rows]
        with self._session() as s:
            s.execute(insert(CheckResultRow), values)
        return len(values)

    def recent_results(
        self, *, play: str | None = None, host: str | None = None, check: str | None = None,
        since: datetime | None = None, until: datetime | None = None, limit: int = 100,
    ) -> list[CheckResultRecord]:
        """Newest first, optionally narrowed to a play, host and/or check and a time window
        (``since`` and ``until`` inclusive)."""
        q = select(CheckResultRow)
        for column, wanted in ((CheckResultRow.play, play), (CheckResultRow.host, host),
                               (CheckResultRow.check, check)):
            if wanted is not None:
                q = q.where(column == wanted)
        if since is not None:
            q = q.where(CheckResultRow.observed_at >= aware(since))
        if until is not None:
            q = q.where(CheckResultRow.observed_at <= aware(until))
        q = q.order_by(CheckResultRow.observed_at.desc(), CheckResultRow.id.desc()).limit(limit)
        with self._session() as s:
            return [_result(r) for r in s.scalars(q)]

    def prune_results(self, older_than: datetime) -> int:
        """Delete results observed before ``older_than``; returns how many were deleted."""
        with self._session() as s:
            res = s.execute(delete(CheckResultRow).where(CheckResultRow.observed_at < aware(older_than)))
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
            _fill_check_state(row, rec, datetime.now(UTC))
            _end_silences_now_ok(s, [rec], datetime.now(UTC))

    def save_check_states(self, recs: Sequence[CheckStateRecord]) -> None:
        """Insert or replace several check states at once (one query for the existing rows);
        when a key repeats, the last record wins."""
        if not recs:
            return
        latest = {r.key: r for r in recs}
        with self._session() as s:
            rows = {r.key: r for r in s.scalars(select(CheckStateRow).where(CheckStateRow.key.in_(list(latest))))}
            now = datetime.now(UTC)
            for key, rec in latest.items():
                row = rows.get(key)
                if row is None:
                    row = CheckStateRow(key=key)
                    s.add(row)
                _fill_check_state(row, rec, now)
            _end_silences_now_ok(s, list(latest.values()), now)

    def end_silences_until_ok(self, rec: CheckStateRecord, observed: datetime, why: str) -> None:
        """End the ``silence_until_ok`` silences of ``rec``'s check made before ``observed``: a
        reading that is a new problem, not the state a play left (a process started after the
        emergency's stop that ended before any check saw it running is a new crash)."""
        with self._session() as s:
            _end_until_ok_silences(s, [(rec, aware(observed), why)], datetime.now(UTC))

    def delete_check_state(self, key: str) -> bool:
        """Forget a check (it left the playbooks); returns whether it existed."""
        with self._session() as s:
            res = s.execute(delete(CheckStateRow).where(CheckStateRow.key == key))
            return bool(res.rowcount)  # type: ignore[attr-defined]
