"""Icinga-style weighted flap detection: thresholds, hysteresis, persistence in extras."""
from __future__ import annotations

import pytest

from agent.engine.flapping import fold, is_flapping, percent_state_change


@pytest.mark.parametrize(("states", "expected"), [
    (["OK"] * 20, 0.0),
    (["OK", "CRITICAL"] * 10, 100.0),  # every result a change: weights average 1.0
    (["OK"] * 19 + ["CRITICAL"], 1.2 * 100 / 19),  # one change, the newest: weight 1.2
    (["CRITICAL"] + ["OK"] * 19, 0.8 * 100 / 19),  # one change, the oldest: weight 0.8
])
def test_percent_state_change_weights_recent_changes_more(states: list[str], expected: float) -> None:
    assert percent_state_change(states, 20) == pytest.approx(expected)


def test_flapping_starts_once_and_settles_once_with_hysteresis() -> None:
    extra: dict = {}
    changes = []
    for state in ["OK", "CRITICAL"] * 10 + ["OK"] * 30:
        change = fold(extra, state, window=10, start=50, stop=25)
        if change:
            changes.append(change.started)
    assert changes == [True, False]
    assert not is_flapping(extra)


def test_nothing_is_decided_before_the_window_is_full() -> None:
    extra: dict = {}
    assert [fold(extra, s, window=10, start=50, stop=25) for s in ["OK", "CRITICAL"] * 4] == [None] * 8


def test_the_window_survives_a_round_trip_through_json() -> None:
    import json

    extra: dict = {}
    for state in ["OK", "CRITICAL"] * 5:
        fold(extra, state, window=10, start=50, stop=25)
    assert is_flapping(extra)
    restored = json.loads(json.dumps(extra))  # what check_states.extras stores
    assert fold(restored, "OK", window=10, start=50, stop=25) is None  # still flapping: no second notice
    assert is_flapping(restored)
