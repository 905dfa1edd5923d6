"""Bulk writes used by the engine's group commit: many results and states in one transaction."""
from __future__ import annotations

import dataclasses
from datetime import UTC, datetime, timedelta

import pytest

from agent.core.states import State
from agent.store import CheckStateRecord, Store

T0 = datetime(2025, 1, 6, 12, 0, tzinfo=UTC)


def test_record_results_stores_every_row_like_record_result(store: Store) -> None:
    rows = [dict(play="p", host="h", check="c", state=State.OK, value={"n": i}, error=None, duration_ms=2.0,
                 observed_at=T0 + timedelta(seconds=i)) for i in range(3)]
    rows.append(dict(play="p", host="h", check="d", state=State.CRITICAL, value=None, error="refused",
                     duration_ms=None, observed_at=T0))
    assert store.record_results(rows) == 4
    assert store.record_results([]) == 0
    recent = store.recent_results(check="c")
    assert [r.value for r in recent] == ['{"n": 2}', '{"n": 1}', '{"n": 0}']
    assert recent[0].observed_at == T0 + timedelta(seconds=2) and recent[0].duration_ms == 2.0
    (d,) = store.recent_results(check="d")
    assert d.state == State.CRITICAL and d.error == "refused" and d.value is None


def test_record_results_refuses_naive_datetimes_and_writes_nothing(store: Store) -> None:
    good = dict(play="p", host="h", check="c", state=State.OK, observed_at=T0)
    with pytest.raises(ValueError, match="naive"):
        store.record_results([good, dict(good, observed_at=datetime(2025, 1, 1))])  # noqa: DTZ001 - naive on purpose
    assert store.recent_results() == []


def test_save_check_states_inserts_updates_and_keeps_the_last_of_a_key(store: Store) -> None:
    a = CheckStateRecord(play="p", host="h", check="a", hard_state=State.OK, soft_state=State.OK, since=T0,
                         consecutive=1, last_observed_at=T0, extras={"history": ["OK"]})
    b = dataclasses.replace(a, check="b")
    store.save_check_state(a)
    a2 = dataclasses.replace(a, soft_state=State.WARNING, soft_since=T0, consecutive=1, last_value="9")
    a3 = dataclasses.replace(a2, consecutive=2)
    store.save_check_states([a2, b, a3])
    store.save_check_states([])
    loaded = store.load_check_states()
    assert loaded == {"p/h/a": a3, "p/h/b": b}
