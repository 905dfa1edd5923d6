"""SQLAlchemy 2.0 typed models of the agent's database.

Private to ``agent.store``: callers get :mod:`agent.store.records` value objects. Every
free-text and JSON column a secret could reach is :class:`RedactedText` / :class:`RedactedJSON`:
what a store with a redactor writes never holds a secret (nor does a backup of its file). The
schema is owned by the Alembic migrations in ``migrations/versions``; a test asserts that
these models and the migrations agree (``compare_metadata`` finds no difference), so a
change here needs a new migration.
"""
from __future__ import annotations

from collections.abc import Callable
from contextvars import ContextVar
from datetime import UTC, datetime
from typing import Any, ClassVar

from sqlalchemy import (
    JSON,
    Boolean,
    CheckConstraint,
    DateTime,
    Float,
    ForeignKey,
    Index,
    Integer,
    String,
    Text,
)
from sqlalchemy.engine import Dialect
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column
from sqlalchemy.types import TypeDecorator

NAMING_CONVENTION = {
    "ix": "ix_%(table_name)s_%(column_0_N_name)s",
    "uq": "uq_%(table_name)s_%(column_0_N_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}


class UtcDateTime(TypeDecorator[datetime]):
    """A timezone-aware UTC datetime.

    SQLite has no timezone type, so values are stored as naive UTC and come back aware.
    A naive datetime is refused on the way in: guessing its zone is how incidents end up
    an hour off.
    """

    impl = DateTime
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            raise ValueError(f"naive datetime {value!r}: pass a timezone-aware UTC datetime")
        return value.astimezone(UTC).replace(tzinfo=None)

    def process_result_value(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)


WRITE_REDACTION: ContextVar[Callable[[str], str] | None] = ContextVar("botwarden_store_redaction", default=None)
"""The redaction of the store whose transaction is open on this thread (set by ``Store``)."""


class RedactedText(TypeDecorator[str]):
    """Free text that may quote a secret (an error, a message, an alert body): redacted by the
    store's redactor on the way in, whatever statement writes it (ORM or Core)."""

    impl = Text
    cache_ok = True

    def process_bind_param(self, value: str | None, dialect: Dialect) -> str | None:
        redact = WRITE_REDACTION.get()
        return redact(value) if redact is not None and isinstance(value, str) else value


class RedactedJSON(TypeDecorator[Any]):
    """JSON whose strings (keys and values, nested) are redacted on the way in (task parameters,
    event data)."""

    impl = JSON
    cache_ok = True

    def process_bind_param(self, value: Any, dialect: Dialect) -> Any:
        redact = WRITE_REDACTION.get()
        return _redact_json(value, redact) if redact is not None else value


def _redact_json(value: Any, redact: Callable[[str], str]) -> Any:
    if isinstance(value, str):
        return redact(value)
    if isinstance(value, dict):
        return {redact(k) if isinstance(k, str) else k: _redact_json(v, redact) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_redact_json(v, redact) for v in value]
    return value


class Base(DeclarativeBase):
    type_annotation_map: ClassVar[dict[Any, Any]] = {datetime: UtcDateTime(), dict[str, Any]: JSON()}


Base.metadata.naming_convention = NAMING_CONVENTION

_STATES = "'OK','WARNING','CRITICAL','UNKNOWN'"


class CheckResultRow(Base):
    __tablename__ = "check_results"
    __table_args__ = (
        Index("ix_check_results_key_observed", "play", "host", "check", "observed_at"),
        CheckConstraint(f"state IN ({_STATES})", name="state"),
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    play: Mapped[str] = mapped_column(String(200))
    host: Mapped[str] = mapped_column(String(200))
    check: Mapped[str] = mapped_column(String(200))
    state: Mapped[str] = mapped_column(String(16))
    value: Mapped[str | None] = mapped_column(RedactedText)
    error: Mapped[str | None] = mapped_column(RedactedText)
    duration_ms: Mapped[float | None] = mapped_column(Float)
    observed_at: Mapped[datetime] = mapped_column(index=True)


class CheckStateRow(Base):
    __tablename__ = "check_states"
    __table_args__ = (
        CheckConstraint(f"hard_state IN ({_STATES})", name="hard_state"),
        CheckConstraint(f"soft_state IN ({_STATES})", name="soft_state"),
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    key: Mapped[str] = mapped_column(String(620), unique=True)
    play: Mapped[str] = mapped_column(String(200))
    host: Mapped[str] = mapped_column(String(200))
    check: Mapped[str] = mapped_column(String(200))
    hard_state: Mapped[str] = mapped_column(String(16))
    soft_state: Mapped[str] = mapped_column(String(16))
    since: Mapped[datetime]
    soft_since: Mapped[datetime | None]
    consecutive: Mapped[int] = mapped_column(Integer, default=0)
    last_value: Mapped[str | None] = mapped_column(RedactedText)
    last_error: Mapped[str | None] = mapped_column(RedactedText)
    last_observed_at: Mapped[datetime | None]
    incident_id: Mapped[int | None] = mapped_column(ForeignKey("incidents.id"))
    extras: Mapped[dict[str, Any]] = mapped_column(default=dict)
    version: Mapped[int] = mapped_column(Integer, default=1)
    updated_at: Mapped[datetime]


class IncidentRow(Base):
    __tablename__ = "incidents"
    __table_args__ = (
        Index("ix_incidents_key_resolved", "key", "resolved_at"),
        CheckConstraint(f"state IN ({_STATES})", name="state"),
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    key: Mapped[str] = mapped_column(String(620))
    play: Mapped[str] = mapped_column(String(200))
    host: Mapped[str] = mapped_column(String(200))
    check: Mapped[str] = mapped_column(String(200))
    state: Mapped[str] = mapped_column(String(16))
    severity: Mapped[str] = mapped_column(String(16))
    opened_at: Mapped[datetime]
    resolved_at: Mapped[datetime | None] = mapped_column(index=True)
    summary: Mapped[str] = mapped_column(RedactedText, default="")
    acknowledged_at: Mapped[datetime | None]
    acknowledged_by: Mapped[str | None] = mapped_column(String(200))
    ack_comment: Mapped[str | None] = mapped_column(RedactedText)
    last_notified_at: Mapped[datetime | None]
    notify_count: Mapped[int] = mapped_column(Integer, default=0)
    # Alert lifecycle (migration 0002): what the operator was last told, and why not if not.
    announced_state: Mapped[str | None] = mapped_column(String(16))
    announced_at: Mapped[datetime | None]
    eligible_since: Mapped[datetime | None]
    suppressed: Mapped[str | None] = mapped_column(RedactedText)
    escalation_level: Mapped[int] = mapped_column(Integer, default=0, server_default="0")


class NotificationRow(Base):
    __tablename__ = "notifications"
    __table_args__ = (
        Index("ix_notifications_status_due", "status", "next_attempt_at"),
        Index("ix_notifications_target_status", "target", "status"),
        CheckConstraint("kind IN ('alert','resolve','repeat','notice','task')", name="kind"),
        CheckConstraint("status IN ('pending','sending','sent','failed','dead')", name="status"),
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    incident_id: Mapped[int | None] = mapped_column(ForeignKey("incidents.id"), index=True)
    kind: Mapped[str] = mapped_column(String(16))
    route: Mapped[str | None] = mapped_column(String(200))
    target: Mapped[str] = mapped_column(String(200))
    title: Mapped[str] = mapped_column(RedactedText)
    body: Mapped[str] = mapped_column(RedactedText)
    severity: Mapped[str] = mapped_column(String(16), default="info")
    dedup_key: Mapped[str] = mapped_column(String(800), unique=True)
    status: Mapped[str] = mapped_column(String(16), default="pending")
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    next_attempt_at: Mapped[datetime]
    last_error: Mapped[str | None] = mapped_column(RedactedText)
    created_at: Mapped[datetime]
    sent_at: Mapped[datetime | None]
    # Migration 0003: files attached where the target can carry them (email), e.g. a report chart.
    attachments: Mapped[list[str] | None] = mapped_column(JSON, nullable=True)
    # Migration 0004: who holds a ``sending`` row and until when (an expired claim is free).
    claimed_by: Mapped[str | None] = mapped_column(String(200), nullable=True)
    claim_expires_at: Mapped[datetime | None]


class ActionRunRow(Base):
    __tablename__ = "action_runs"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    incident_id: Mapped[int | None] = mapped_column(ForeignKey("incidents.id"), index=True)
    play: Mapped[str] = mapped_column(String(200))
    host: Mapped[str] = mapped_column(String(200))
    task: Mapped[str] = mapped_column(String(400))
    module: Mapped[str] = mapped_column(String(100))
    params: Mapped[dict[str, Any]] = mapped_column(RedactedJSON, default=dict)
    reason: Mapped[str] = mapped_column(RedactedText, default="")
    actor: Mapped[str] = mapped_column(String(200))
    check_mode: Mapped[bool] = mapped_column(Boolean, default=False)
    changed: Mapped[bool] = mapped_column(Boolean, default=False)
    failed: Mapped[bool] = mapped_column(Boolean, default=False)
    msg: Mapped[str] = mapped_column(RedactedText, default="")
    started_at: Mapped[datetime] = mapped_column(index=True)
    finished_at: Mapped[datetime | None]


class EventRow(Base):
    __tablename__ = "events"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    at: Mapped[datetime] = mapped_column(index=True)
    kind: Mapped[str] = mapped_column(String(32), index=True)
    key: Mapped[str | None] = mapped_column(String(620), index=True)
    incident_id: Mapped[int | None] = mapped_column(ForeignKey("incidents.id"), index=True)
    message: Mapped[str] = mapped_column(RedactedText)
    data: Mapped[dict[str, Any]] = mapped_column(RedactedJSON, default=dict)


class NotificationIncidentRow(Base):
    """Which incidents one (grouped) message told about: one message may cover several."""

    __tablename__ = "notification_incidents"

    notification_id: Mapped[int] = mapped_column(ForeignKey("notifications.id"), primary_key=True)
    incident_id: Mapped[int] = mapped_column(ForeignKey("incidents.id"), primary_key=True, index=True)


class SilenceRow(Base):
    """An operator's silence: matching alerts are recorded, not sent, until ``ends_at``. One with
    ``ok_after`` (a play's own doing, ``silence_until_ok``) also ends at the first reading of its
    check that is OK again, observed after ``ok_after`` (when the task that made it finished)."""

    __tablename__ = "silences"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    matchers: Mapped[dict[str, Any]] = mapped_column(default=dict)
    reason: Mapped[str] = mapped_column(RedactedText, default="")
    created_by: Mapped[str] = mapped_column(String(200))
    created_at: Mapped[datetime]
    starts_at: Mapped[datetime]
    ends_at: Mapped[datetime] = mapped_column(index=True)
    expired_at: Mapped[datetime | None]
    ok_after: Mapped[datetime | None]


class PlayRunRow(Base):
    """One run of a play's task list (``agent run-playbook``, a web page's play, the budget's
    hand-over, a scheduled play), written before its first task acts and ended when it ends:
    a run whose end is missing and whose owner process is gone was cut short (see
    :mod:`agent.engine.play_runs`). Remediation steps are not play runs: their start and
    outcome are the incident's ``remediation-*`` events."""

    __tablename__ = "play_runs"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    run: Mapped[str] = mapped_column(String(32), unique=True)
    play: Mapped[str] = mapped_column(String(200))
    hosts: Mapped[list[str]] = mapped_column(JSON, default=list)
    tasks: Mapped[list[str]] = mapped_column(JSON, default=list)
    """The names of the play's tasks, in order (what a complete run does on each host)."""
    done: Mapped[list[dict[str, Any]]] = mapped_column(RedactedJSON, default=list)
    """``{host, task, status, msg}`` of each finished task, in order."""
    actor: Mapped[str] = mapped_column(String(200))
    reason: Mapped[str] = mapped_column(RedactedText, default="")
    on_interrupt: Mapped[str] = mapped_column(String(16), default="tell")
    owner_host: Mapped[str] = mapped_column(String(200))
    owner_pid: Mapped[int] = mapped_column(Integer)
    owner_started: Mapped[float] = mapped_column(Float)
    """The owner process's start time (seconds since the epoch, as the OS reports it): with its
    pid, it names the process even after the pid is reused."""
    attempt: Mapped[int] = mapped_column(Integer, default=1)
    resumed_from: Mapped[str | None] = mapped_column(String(32), nullable=True)
    started_at: Mapped[datetime] = mapped_column(index=True)
    ended_at: Mapped[datetime | None]
    outcome: Mapped[str | None] = mapped_column(String(16), nullable=True)
    """done | failed | interrupted (stopped between two tasks by a signal: ``signal``)."""
    signal: Mapped[str | None] = mapped_column(String(16), nullable=True)
    handled_at: Mapped[datetime | None] = mapped_column(index=True)
    handled: Mapped[str | None] = mapped_column(RedactedText, nullable=True)
    """What the resident agent did about a run cut short (told; resumed as run X)."""
