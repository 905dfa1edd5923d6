"""``agent explain N``'s timeline: one incident's observations and decisions, never those of the
same check's previous or next incident (a check failing again soon after a resolve)."""
from __future__ import annotations

from datetime import UTC, datetime, timedelta

from agent.core.states import State
from agent.engine.operator_actions import timeline
from agent.store import Store

T0 = datetime(2026, 12, 6, 12, 0, tzinfo=UTC)
KEY = dict(play="bot-health", host="local", check="bot process")


def episode(store: Store, start: datetime, seconds: int, tag: str) -> int:
    """A failure of ``seconds`` from ``start``: observations, an incident, a transition event
    without an incident id (as the engine records them), and its resolve."""
    store.record_result(**KEY, state=State.CRITICAL, observed_at=start, error=f"{tag} down")
    inc = store.open_incident(**KEY, state=State.CRITICAL, severity="critical", opened_at=start)
    store.add_event("transition", "bot-health/local/bot process", None, f"{tag}: OK -> CRITICAL", at=start)
    store.add_event("notified", "bot-health/local/bot process", inc, f"{tag} alert queued", at=start)
    end = start + timedelta(seconds=seconds)
    store.record_result(**KEY, state=State.OK, observed_at=end, value=f"{tag}-ok")
    store.add_event("transition", "bot-health/local/bot process", None, f"{tag}: CRITICAL -> OK", at=end)
    store.resolve_incident(inc, end)
    return inc


def texts(store: Store, incident: int) -> str:
    return "\n".join(text for _at, _kind, text in timeline(store, incident, lambda s: s))


def test_an_incident_shows_its_own_episode_only(store: Store) -> None:
    first = episode(store, T0, 10, "first")
    second = episode(store, T0 + timedelta(seconds=30), 10, "second")  # fails again 20 s after the resolve
    third = episode(store, T0 + timedelta(seconds=45), 5, "third")
    one, two, three = texts(store, first), texts(store, second), texts(store, third)
    assert "first: OK -> CRITICAL" in one and "first: CRITICAL -> OK" in one and "first down" in one
    assert "second" not in one and "third" not in one
    assert "second: OK -> CRITICAL" in two and "second-ok" in two
    assert "first" not in two and "third" not in two
    assert "first" not in three and "second" not in three and "third: CRITICAL -> OK" in three


def test_an_old_incident_keeps_its_observations_after_many_later_ones(store: Store) -> None:
    first = episode(store, T0, 10, "first")
    for i in range(40):  # a long healthy run afterwards
        store.record_result(**KEY, state=State.OK, observed_at=T0 + timedelta(minutes=10, seconds=i), value="later")
    one = texts(store, first)
    assert "first down" in one and "first-ok" in one and "later" not in one
