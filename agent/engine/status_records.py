"""Conversions between the engine's in-memory check status and the store's rows and records."""
from __future__ import annotations

import time
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

from agent.engine.evaluator import CheckStatus, Observation, Transition
from agent.store.records import CheckStateRecord

if TYPE_CHECKING:
    from agent.playbook.binding import BoundCheck


def check_vars(bc: BoundCheck, tr: Transition) -> dict[str, Any]:
    """What remediation steps see as ``check``: the check that fired and what it observed."""
    obs = tr.observation
    return {"check": {"name": bc.check.name, "key": bc.key, "play": bc.play.name, "state": tr.new.name,
                      "previous_state": tr.old.name, "value": obs.value, "error": obs.error,
                      "facts": dict(obs.facts)}}


def result_row(bc: BoundCheck, obs: Observation) -> dict[str, Any]:
    """The ``check_results`` row of one observation (keyword arguments of ``record_result``)."""
    return dict(play=bc.play.name, host=bc.host.name, check=bc.check.name, state=obs.state,
                value=short_text(obs.value), error=obs.error, duration_ms=obs.duration_ms, observed_at=obs.at)


def short_text(value: Any, limit: int = 500) -> str | None:
    if value is None:
        return None
    text = value if isinstance(value, str) else repr(value)
    return text if len(text) <= limit else text[: limit - 1] + "…"


def status_from_record(rec: CheckStateRecord) -> CheckStatus:
    """The in-memory status of a stored row. The wall time a problem started is mapped onto the
    monotonic clock once, here: the time that passed while the agent was down is counted as
    the wall clock says, later durations as the monotonic clock does."""
    bad_since = rec.soft_since if rec.soft_state.is_problem else None
    bad_since_mono = None
    if bad_since is not None:
        bad_since_mono = time.monotonic() - max(0.0, (datetime.now(UTC) - bad_since).total_seconds())
    return CheckStatus(
        key=rec.key, hard=rec.hard_state, soft=rec.soft_state, hard_since=rec.since,
        bad_since=bad_since, consecutive=rec.consecutive,
        last_value=rec.last_value, last_error=rec.last_error, last_at=rec.last_observed_at,
        incident_id=rec.incident_id, extra=dict(rec.extras or {}), bad_since_mono=bad_since_mono,
    )


def record_from_status(bc: BoundCheck, st: CheckStatus) -> CheckStateRecord:
    return CheckStateRecord(
        play=bc.play.name, host=bc.host.name, check=bc.check.name, hard_state=st.hard, soft_state=st.soft,
        since=st.hard_since or st.last_at or datetime.now(UTC), soft_since=st.bad_since,
        consecutive=st.consecutive, last_value=short_text(st.last_value), last_error=st.last_error,
        last_observed_at=st.last_at, incident_id=st.incident_id, extras=st.extra,
    )
