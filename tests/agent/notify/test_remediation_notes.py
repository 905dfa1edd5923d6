"""What the agent did, as the lifecycle tells it: a problem the agent fixed before its first
alert went out is told once, whatever held that alert (the wait for the outcome, or the
group_wait after it); one a silence held back, or that went away with nothing done, is not."""
from __future__ import annotations

from datetime import UTC, datetime, timedelta
from types import SimpleNamespace as NS
from typing import Any

import pytest

from agent.core.states import State
from agent.notify import Notifications, Router, RouteSpec, TargetSpec
from agent.notify.lifecycle import AlertLifecycle, LifecycleSettings
from agent.notify.lifecycle.remediation_notes import OUTCOME_EVENT, STARTED_EVENT
from agent.store import Store

T0 = datetime(2025, 1, 6, 12, 0, tzinfo=UTC)
KEY = "p/h/bot process"


def at(seconds: float) -> datetime:
    return T0 + timedelta(seconds=seconds)


def world(store: Store) -> AlertLifecycle:
    notes = Notifications(store, Router([RouteSpec("all", ("ops",))], {"ops": TargetSpec("ops", "json://127.0.0.1:1/")}),
                          clock=lambda: T0)
    checks: dict[str, Any] = {KEY: NS(play=NS(name="p", checks=[]), host=NS(name="h"), params=NS(),
                                      check=NS(name="bot process", severity="critical", tags=(), depends_on=(),
                                               remediate=("restart-bot",)))}
    return AlertLifecycle(notes, checks=lambda: checks, maintenance=list, is_flapping=lambda key: False,
                          settings=lambda: LifecycleSettings(group_wait=10, group_interval=60, remediation_wait=5))


@pytest.mark.parametrize(("events", "pass_after_outcome", "silenced", "told"), [
    pytest.param(False, True, False, False, id="gone by itself, nothing done: never mentioned"),
    pytest.param(True, False, False, True, id="fixed while its alert waited for the outcome"),
    pytest.param(True, True, False, True, id="fixed while its alert waited for group_wait after the outcome"),
    pytest.param(True, True, True, False, id="fixed while a silence held it: not told"),
])
def test_a_problem_the_agent_fixed_before_its_alert_is_told_once(store: Store, events: bool,
                                                                 pass_after_outcome: bool, silenced: bool,
                                                                 told: bool) -> None:
    lifecycle = world(store)
    iid = store.open_incident(play="p", host="h", check="bot process", state=State.CRITICAL, severity="critical",
                              opened_at=T0, summary="bot EXITED")
    assert lifecycle.tick(T0) == 0  # waits for the outcome
    if events:
        store.add_event(STARTED_EVENT, KEY, iid, "restart-bot: running since 12:00:00 UTC", {}, at=at(0.1))
        store.add_event(OUTCOME_EVENT, KEY, iid, "restart-bot: started bot (RUNNING, pid 42) in 0.9s",
                        {"outcome": "done"}, at=at(1))
    if pass_after_outcome:
        assert lifecycle.tick(at(1)) == 0  # eligible now, due at the end of group_wait
    if silenced:
        store.add_silence(matchers={"check": "bot process"}, starts_at=at(1.5), ends_at=at(3600), reason="work",
                          created_by="t")
        lifecycle.tick(at(1.5))
    store.resolve_incident(iid, at(3))
    lifecycle.tick(at(3))
    lifecycle.tick(at(30))
    lifecycle.tick(at(90))
    rows = sorted(store.list_notifications(), key=lambda n: n.id)
    if not told:
        assert rows == []
        return
    assert [(n.kind, n.title) for n in rows] == [("alert", "[CRITICAL, now OK] bot process on h")]
    assert "done by the agent: restart-bot: started bot (RUNNING, pid 42)" in rows[0].body, rows[0].body
    assert "no resolve follows" in rows[0].body
