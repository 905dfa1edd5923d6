"""Value objects the store hands to callers.

The store never returns live ORM objects: callers get these frozen dataclasses, so nothing
outside ``agent.store`` can lazily load, mutate or leak a session. Every datetime is
timezone-aware UTC. Use :func:`dataclasses.replace` to derive a changed copy.
"""
from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Literal

from agent.core.states import State

NotificationKind = Literal["alert", "resolve", "repeat", "notice", "task"]
NOTIFICATION_KINDS: tuple[str, ...] = ("alert", "resolve", "repeat", "notice", "task")

NotificationStatus = Literal["pending", "sending", "sent", "failed", "dead"]
NOTIFICATION_STATUSES: tuple[str, ...] = ("pending", "sending", "sent", "failed", "dead")

CHECK_STATE_VERSION = 1
"""Row format of ``check_states``; bump when the meaning of ``extras`` changes."""


def check_key(play: str, host: str, check: str) -> str:
    """The stable identity of one check on one host: ``play/host/check``."""
    return f"{play}/{host}/{check}"


@dataclass(frozen=True)
class CheckResultRecord:
    """One stored observation of a check (a row of ``check_results``)."""

    id: int
    play: str
    host: str
    check: str
    state: State
    value: str | None
    error: str | None
    duration_ms: float | None
    observed_at: datetime

    @property
    def key(self) -> str:
        return check_key(self.play, self.host, self.check)


@dataclass(frozen=True)
class CheckStateRecord:
    """The evaluator's memory of one check (a row of ``check_states``).

    ``hard_state`` is what operators are alerted about; ``soft_state`` is the latest
    evaluation that has not (yet) become hard. ``since`` is when ``hard_state`` began,
    ``soft_since`` when ``soft_state`` began, ``consecutive`` how many results in a row had
    ``soft_state``. ``extras`` is free-form JSON owned by the engine (e.g. recent-state
    history for flap detection); ``version`` tells which row format wrote it.
    """

    play: str
    host: str
    check: str
    hard_state: State
    soft_state: State
    since: datetime
    soft_since: datetime | None = None
    consecutive: int = 0
    last_value: str | None = None
    last_error: str | None = None
    last_observed_at: datetime | None = None
    incident_id: int | None = None
    extras: Mapping[str, Any] = field(default_factory=dict)
    version: int = CHECK_STATE_VERSION

    @property
    def key(self) -> str:
        return check_key(self.play, self.host, self.check)


@dataclass(frozen=True)
class IncidentRecord:
    """A problem episode of one check, from its hard transition to its recovery."""

    id: int
    key: str
    play: str
    host: str
    check: str
    state: State
    severity: str
    opened_at: datetime
    resolved_at: datetime | None
    summary: str
    acknowledged_at: datetime | None
    acknowledged_by: str | None
    ack_comment: str | None
    last_notified_at: datetime | None
    notify_count: int
    announced_state: str | None = None
    """The state the operator was last told about (``OK`` once the resolve went out);
    ``None`` while nothing was sent (in group wait, silenced, inhibited, flapping, digest)."""
    announced_at: datetime | None = None
    eligible_since: datetime | None = None
    """Since when the incident could be sent (not suppressed): group_wait counts from here."""
    suppressed: str | None = None
    """Why it is held back right now (``silence #3: ...``, ``inhibited by ...``), else ``None``."""
    escalation_level: int = 0
    """How many escalation steps were sent."""

    @property
    def is_open(self) -> bool:
        return self.resolved_at is None


@dataclass(frozen=True)
class SilenceRecord:
    """An operator's silence (a row of ``silences``). ``matchers`` maps a field (host, play,
    check, severity, tag) to a shell-style glob; every matcher must hold."""

    id: int
    matchers: Mapping[str, str]
    reason: str
    created_by: str
    created_at: datetime
    starts_at: datetime
    ends_at: datetime
    expired_at: datetime | None = None
    ok_after: datetime | None = None
    """Set for a play's ``silence_until_ok``: it also ends at the first reading of its check that
    is OK again, observed after this moment (the end of the task that made it)."""

    def active(self, at: datetime) -> bool:
        return self.expired_at is None and self.starts_at <= at < self.ends_at


@dataclass(frozen=True)
class NotificationRecord:
    """One message for one target in the outbox.

    ``target`` is the target's *name* from the inventory, never its URL. ``body`` is the
    rendered, already-redacted text that will be sent.
    """

    id: int
    incident_id: int | None
    kind: str
    route: str | None
    target: str
    title: str
    body: str
    severity: str
    dedup_key: str
    status: str
    attempts: int
    next_attempt_at: datetime
    last_error: str | None
    created_at: datetime
    sent_at: datetime | None
    attachments: tuple[str, ...] = ()
    claimed_by: str | None = None
    """The outbox that holds this row while it is ``sending`` (see :mod:`agent.notify.outbox`)."""
    claim_expires_at: datetime | None = None
    """Paths of files to attach where the target can carry them (email targets)."""


@dataclass(frozen=True)
class ActionRunRecord:
    """Audit row: one task or remediation step that ran (or was previewed in check mode)."""

    id: int
    incident_id: int | None
    play: str
    host: str
    task: str
    module: str
    params: Mapping[str, Any]
    reason: str
    actor: str
    check_mode: bool
    changed: bool
    failed: bool
    msg: str
    started_at: datetime
    finished_at: datetime | None


@dataclass(frozen=True)
class EventRecord:
    """Audit row: one decision the agent took (transition, notification, action, reload...)."""

    id: int
    at: datetime
    kind: str
    key: str | None
    incident_id: int | None
    message: str
    data: Mapping[str, Any]


@dataclass(frozen=True)
class PlayRunRecord:
    """One run of a play's task list (a row of ``play_runs``, see :class:`agent.store.models.PlayRunRow`)."""

    id: int
    run: str
    play: str
    hosts: tuple[str, ...]
    tasks: tuple[str, ...]
    done: tuple[Mapping[str, Any], ...]
    actor: str
    reason: str
    on_interrupt: str
    owner_host: str
    owner_pid: int
    owner_started: float
    attempt: int
    resumed_from: str | None
    started_at: datetime
    ended_at: datetime | None
    outcome: str | None
    signal: str | None
    handled_at: datetime | None
    handled: str | None

    def left(self, host: str) -> list[str]:
        """The play's tasks that did not finish on ``host`` (in order)."""
        finished = {d.get("task") for d in self.done if d.get("host") == host}
        return [t for t in self.tasks if t not in finished]
