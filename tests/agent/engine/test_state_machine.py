"""The soft/hard state machine: after, for, recovery, severity changes (table-driven)."""
from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from agent.core.states import State
from agent.engine.evaluator import CheckStatus, Observation

T0 = datetime(2026, 1, 1, tzinfo=UTC)
O, W, C, U = State.OK, State.WARNING, State.CRITICAL, State.UNKNOWN


def run(states: list[State], *, after: int = 1, for_seconds: float | None = None, step: float = 10.0):
    st = CheckStatus("p/h/c")
    transitions = []
    for i, s in enumerate(states):
        # `for` is measured on the monotonic clock: both clocks advance together here.
        obs = Observation(s, None, "boom" if s is U else None, "", T0 + timedelta(seconds=i * step),
                          mono=1000.0 + i * step)
        t = st.advance(obs, after=after, for_seconds=for_seconds)
        if t:
            transitions.append((i, t.old, t.new))
    return st, transitions


CASES = [
    # (results, after, for, expected transitions as (index, old, new))
    ([O, O, O], 1, None, []),
    ([C], 1, None, [(0, O, C)]),
    ([C, O], 1, None, [(0, O, C), (1, C, O)]),
    ([C, O, C, O], 2, None, []),                      # never 2 in a row: stays soft
    ([C, C, C], 2, None, [(1, O, C)]),                # hard on the 2nd consecutive
    ([W, C, C], 2, None, [(1, O, C)]),                # any problem counts toward `after`
    ([C, C, W, C], 1, None, [(0, O, C), (2, C, W), (3, W, C)]),  # hard: severity changes at once
    ([U, U], 2, None, [(1, O, U)]),                   # errors are UNKNOWN, a problem
    ([C, C, C, C], 1, 25.0, [(3, O, C)]),             # for: first bad at t=0, hard once 25s old (t=30)
    ([C, C, C, C], 3, 5.0, [(2, O, C)]),              # both: `after` is the later condition here
    ([C, C, O, C], 1, 15.0, []),                      # the streak restarts after an OK
]


@pytest.mark.parametrize("results,after,for_seconds,expected", CASES)
def test_transitions(results, after, for_seconds, expected):
    _, transitions = run(results, after=after, for_seconds=for_seconds)
    assert transitions == expected


def test_status_remembers_last_observation():
    st, _ = run([O, U], after=2)
    assert st.hard is O and st.soft is U and st.consecutive == 1
    assert st.last_error == "boom"


def test_for_is_measured_on_the_monotonic_clock_not_the_wall_clock() -> None:
    """A wall clock stepping an hour back (or ahead) between two results neither delays nor
    hastens the hard transition: ``for: 25s`` holds after 30 monotonic seconds."""
    st = CheckStatus("p/h/c")
    walls = [T0, T0 - timedelta(hours=1), T0 + timedelta(hours=5), T0 - timedelta(hours=2)]
    transitions = []
    for i, wall in enumerate(walls):
        t = st.advance(Observation(C, None, None, "", wall, mono=1000.0 + i * 10.0), for_seconds=25.0)
        if t:
            transitions.append((i, t.new))
    assert transitions == [(3, C)]
