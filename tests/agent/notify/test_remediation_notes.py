"""What the agent did, as the lifecycle tells it: a problem the agent fixed before its first
alert went out is told once, whatever held that alert (the wait for the outcome, or the
group_wait after it); one a silence held back, or that went away with nothing done, is not."""
from __future__ import annotations

from collections.abc import Callable
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


def test_a_problem_fixed_while_its_run_is_under_way_waits_for_the_outcome_it_would_promise(store: Store) -> None:
    """A [X, now OK] message gets no update and no resolve: it must not say 'its outcome follows'.
    It waits (up to remediation_wait after the problem ended) for the run's outcome, and past that
    says where to read it."""
    lifecycle = world(store)
    iid = store.open_incident(play="p", host="h", check="bot process", state=State.CRITICAL, severity="critical",
                              opened_at=T0, summary="bot EXITED")
    store.add_event(STARTED_EVENT, KEY, iid, "restart-bot: running since 12:00:00 UTC", {"run": "r1"}, at=at(0.1))
    store.resolve_incident(iid, at(2))  # OK again while restart-bot still runs
    assert lifecycle.tick(at(2)) == 0 and lifecycle.tick(at(4)) == 0  # waits for the outcome
    store.add_event(OUTCOME_EVENT, KEY, iid, "restart-bot: started bot (RUNNING, pid 42) in 4.5s",
                    {"outcome": "done", "run": "r1"}, at=at(4.6))
    assert lifecycle.tick(at(4.6)) == 1
    [row] = store.list_notifications()
    assert row.title == "[CRITICAL, now OK] bot process on h"
    assert "started bot (RUNNING, pid 42) in 4.5s" in row.body and "outcome follows" not in row.body, row.body

    # a run that never reports: past the wait, told anyway, without a promise nobody keeps
    other = store.open_incident(play="p", host="h", check="bot process", state=State.CRITICAL, severity="critical",
                                opened_at=at(100), summary="bot EXITED")
    store.add_event(STARTED_EVENT, KEY, other, "restart-bot: running since 12:01:40 UTC", {"run": "r2"}, at=at(100))
    store.resolve_incident(other, at(101))
    assert lifecycle.tick(at(102)) == 0
    assert lifecycle.tick(at(106.5)) == 1
    last = max(store.list_notifications(), key=lambda n: n.id)
    assert "still under way when this was sent" in last.body and "outcome follows" not in last.body, last.body


def test_a_run_whose_agent_is_gone_is_told_as_cut_short_at_once(store: Store) -> None:
    """agent-killed-mid-remediation: the agent was killed during the restart; its successor finds
    the start of a run no outcome will ever follow. Not under way (nothing to wait for): the crash
    is told at once, saying the restart was cut short."""
    notes = Notifications(store, Router([RouteSpec("all", ("ops",))], {"ops": TargetSpec("ops", "json://127.0.0.1:1/")}),
                          clock=lambda: T0)
    checks: dict[str, Any] = {KEY: NS(play=NS(name="p", checks=[]), host=NS(name="h"), params=NS(),
                                      check=NS(name="bot process", severity="critical", tags=(), depends_on=(),
                                               remediate=("restart-bot",)))}
    lifecycle = AlertLifecycle(notes, checks=lambda: checks, maintenance=list, is_flapping=lambda key: False,
                               settings=lambda: LifecycleSettings(group_wait=0, group_interval=60, remediation_wait=5),
                               here="new-agent")
    iid = store.open_incident(play="p", host="h", check="bot process", state=State.CRITICAL, severity="critical",
                              opened_at=T0, summary="bot EXITED")
    store.add_event(STARTED_EVENT, KEY, iid, "restart-bot: running since 12:00:00 UTC",
                    {"run": "r1", "agent": "killed-agent"}, at=at(0.05))
    store.resolve_incident(iid, at(2))  # the new agent finds the bot running again
    assert lifecycle.tick(at(2)) == 1
    [row] = store.list_notifications()
    assert row.title == "[CRITICAL, now OK] bot process on h"
    assert "cut short: the agent restarted during it" in row.body and "outcome follows" not in row.body, row.body


def told(store: Store) -> list[tuple[str, str]]:
    return [(n.kind, n.title) for n in sorted(store.list_notifications(), key=lambda n: n.id)]


def crash_told_with(store: Store, lifecycle: AlertLifecycle, first: tuple[str, str]) -> int:
    """A crash whose alert went out at 1 s saying the outcome ``first`` (message, outcome)."""
    iid = store.open_incident(play="p", host="h", check="bot process", state=State.CRITICAL, severity="critical",
                              opened_at=T0, summary="bot EXITED")
    store.add_event(OUTCOME_EVENT, KEY, iid, first[0], {"outcome": first[1]}, at=at(0.5))
    lifecycle.tick(at(0.5))
    assert lifecycle.tick(at(10.5)) == 1  # group_wait 10 s
    assert told(store) == [("alert", "[CRITICAL] bot process on h")]
    return iid


REFUSED = "restart-bot not run: cooling down until 12:00:30 UTC (1 of 3 runs used); decided again then"


@pytest.mark.parametrize(("outcome", "kind", "due_after_alert"), [
    pytest.param("restart-bot not run: its steps failed to bind", "refused", 10.0,
                 id="refused for good: told after group_wait, not held by group_interval"),
    pytest.param("restart-bot not run: budget spent; handed over to playbook emergency", "handed-over", 10.0,
                 id="handed over: the same"),
    pytest.param("restart-bot: started bot (RUNNING, pid 43) in 0.9s", "done", 60.0,
                 id="done: paced by group_interval after the alert"),
    pytest.param(REFUSED, "deferred", 60.0,
                 id="deferred by the cooldown: its run's outcome follows; paced like done (a crash loop)"),
])
def test_an_outcome_recorded_after_the_alert_is_told_once_as_an_update(store: Store, outcome: str, kind: str,
                                                                        due_after_alert: float) -> None:
    lifecycle = world(store)
    iid = crash_told_with(store, lifecycle, ("restart-bot: started bot (RUNNING, pid 42) in 0.8s", "done"))
    store.add_event(OUTCOME_EVENT, KEY, iid, outcome, {"outcome": kind}, at=at(12))
    assert lifecycle.tick(at(12)) == 0
    assert lifecycle.next_due == (at(10.5 + due_after_alert) if kind in ("done", "deferred")
                                  else at(12 + due_after_alert))
    assert lifecycle.tick(lifecycle.next_due) == 1
    lifecycle.tick(at(200))
    rows = sorted(store.list_notifications(), key=lambda n: n.id)
    assert [(n.kind, n.target) for n in rows] == [("alert", "ops"), ("notice", "ops")]
    assert rows[1].title == f"[UPDATE] bot process on h: {outcome}"[:200]
    assert outcome in rows[1].body and "Not a new problem" in rows[1].body, rows[1].body
    assert rows[1].incident_id == iid


def test_outcomes_recorded_together_make_one_update(store: Store) -> None:
    lifecycle = world(store)
    iid = crash_told_with(store, lifecycle, ("restart-bot: started bot (RUNNING, pid 42) in 0.8s", "done"))
    store.add_event(OUTCOME_EVENT, KEY, iid, REFUSED, {"outcome": "refused"}, at=at(12))
    store.add_event(OUTCOME_EVENT, KEY, iid, "restart-bot: started bot (RUNNING, pid 44) in 0.7s", {"outcome": "done"},
                    at=at(13))
    lifecycle.tick(at(13))
    lifecycle.tick(at(22))
    lifecycle.tick(at(300))
    assert [k for k, _ in told(store)] == ["alert", "notice"]
    body = sorted(store.list_notifications(), key=lambda n: n.id)[1].body
    assert "cooling down until 12:00:30 UTC" in body and "pid 44" in body


@pytest.mark.parametrize(("late", "resolved", "silenced"), [
    pytest.param(("restart-bot: nothing done, its steps do not apply", "nothing"), False, False,
                 id="nothing done after the alert is no news"),
    pytest.param(("restart-bot: started bot (RUNNING, pid 43) in 0.9s", "done"), True, False,
                 id="resolved before the update: its resolve says it"),
    pytest.param((REFUSED, "refused"), False, True, id="silenced after the alert: no update"),
])
def test_no_update(store: Store, late: tuple[str, str], resolved: bool, silenced: bool) -> None:
    lifecycle = world(store)
    iid = crash_told_with(store, lifecycle, ("restart-bot: started bot (RUNNING, pid 42) in 0.8s", "done"))
    store.add_event(OUTCOME_EVENT, KEY, iid, late[0], {"outcome": late[1]}, at=at(12))
    if silenced:
        store.add_silence(matchers={"check": "bot process"}, starts_at=at(12), ends_at=at(3600), reason="work",
                          created_by="t")
    if resolved:
        store.resolve_incident(iid, at(13))
    for s in (13, 30, 80, 200):
        lifecycle.tick(at(s))
    assert [k for k, _ in told(store)] == (["alert", "resolve"] if resolved else ["alert"])
    if resolved:
        body = sorted(store.list_notifications(), key=lambda n: n.id)[1].body
        assert "pid 43" in body, body


def _ev(id_: int, kind: str, message: str, **data: Any) -> Any:
    from agent.store import EventRecord

    return EventRecord(id=id_, at=at(id_), kind=kind, key=KEY, incident_id=1, message=message, data=data)


@pytest.mark.parametrize(("events", "line", "waits"), [
    pytest.param([], None, True, id="nothing recorded yet: wait"),
    pytest.param([_ev(1, STARTED_EVENT, "restart-bot: running since 12:00:01 UTC", run="a")],
                 "restart-bot: running since 12:00:01 UTC, its outcome follows", True, id="a run under way: wait"),
    pytest.param([_ev(1, STARTED_EVENT, "restart-bot: running since 12:00:01 UTC", run="a"),
                  _ev(2, OUTCOME_EVENT, "restart-bot: nothing done, its steps do not apply", outcome="nothing")],
                 "restart-bot: running since 12:00:01 UTC, its outcome follows", True,
                 id="a decision recorded while an earlier run works: still under way"),
    pytest.param([_ev(1, STARTED_EVENT, "restart-bot: running since 12:00:01 UTC", run="a"),
                  _ev(2, OUTCOME_EVENT, "restart-bot: nothing done, its steps do not apply", outcome="nothing"),
                  _ev(3, OUTCOME_EVENT, "restart-bot: started bot (RUNNING, pid 42) in 0.8s", outcome="done", run="a")],
                 "restart-bot: started bot (RUNNING, pid 42) in 0.8s", False, id="every run finished: told"),
    pytest.param([_ev(1, OUTCOME_EVENT, "restart-bot: nothing done, its steps do not apply; bot process saw STOPPED",
                      outcome="nothing")],
                 "restart-bot: nothing done, its steps do not apply; bot process saw STOPPED", False,
                 id="nothing done is said when it is all there is (a deliberate stop)"),
])
def test_what_the_line_says_and_whether_the_first_alert_waits(events: list[Any], line: str | None,
                                                               waits: bool) -> None:
    from agent.notify.lifecycle.remediation_notes import remediation_line, waits_for_outcome

    inc = NS(announced_state=None, opened_at=T0)
    assert remediation_line(events) == line
    assert (waits_for_outcome(inc, ["restart-bot"], events, 5.0, at(4)) is not None) is waits  # type: ignore[arg-type]


def test_a_crash_within_the_cooldown_after_the_recovery_reopens_the_told_incident(store: Store) -> None:
    """A crash loop is one incident: the resolve of a remediated check waits for its cooldown
    (at most group_interval); a crash within it reopens the incident its alert told (no resolve,
    no second alert; the remediation's outcomes are its updates). Once the bot stayed up for the
    cooldown, the resolve goes out, and a crash after that is a new incident, alerted again."""
    lifecycle, status, transition = _crash_loop(store, group_wait=0)

    transition(State.OK, State.CRITICAL, 0)
    first = status.incident_id
    lifecycle.tick(at(3))  # past remediation_wait: told
    assert told(store) == [("alert", "[CRITICAL] bot process on h")]
    transition(State.CRITICAL, State.OK, 4)
    assert lifecycle.tick(at(4)) == 0 and lifecycle.next_due == at(14)  # held for the cooldown
    transition(State.OK, State.CRITICAL, 9)  # crashed again 5 s after it recovered
    assert status.incident_id == first
    [reopened] = [e for e in store.recent_events(incident_id=first, limit=50) if e.kind == "incident-reopened"]
    assert "CRITICAL again 5.0s after it recovered" in reopened.message
    for s in (9.5, 14, 30):
        lifecycle.tick(at(s))
    assert told(store) == [("alert", "[CRITICAL] bot process on h")]  # no resolve, no second alert

    transition(State.CRITICAL, State.OK, 31)
    assert lifecycle.tick(at(40.9)) == 0
    assert lifecycle.tick(at(41)) == 1
    assert told(store)[-1] == ("resolve", "[RESOLVED] bot process on h after 31s")
    transition(State.OK, State.CRITICAL, 45)  # after the resolve: a new problem
    assert status.incident_id != first
    lifecycle.tick(at(48))
    assert told(store)[-1] == ("alert", "[CRITICAL] bot process on h")


def test_a_resolve_held_for_long_is_not_reopened_by_a_new_problem(store: Store) -> None:
    """Only a recent recovery (REOPEN_WITHIN) whose resolve is held is the same crash loop: one
    held for hours (the agent was down) is told, and the new problem is a new incident."""
    from agent.notify.notifications import REOPEN_WITHIN

    iid = store.open_incident(play="p", host="h", check="bot process", state=State.CRITICAL, severity="critical",
                              opened_at=T0, summary="bot EXITED")
    store.set_incident_lifecycle(iid, announced_state="CRITICAL", announced_at=at(1))
    store.resolve_incident(iid, at(5))
    late = at(5) + REOPEN_WITHIN + timedelta(seconds=1)
    assert store.reopen_incident(play="p", host="h", check="bot process", state=State.CRITICAL,
                                 severity="critical", resolved_since=late - REOPEN_WITHIN) is None
    was = store.reopen_incident(play="p", host="h", check="bot process", state=State.CRITICAL,
                                severity="critical", resolved_since=at(5) - REOPEN_WITHIN)
    assert was is not None and was.id == iid and store.get_incident(iid).resolved_at is None  # type: ignore[union-attr]


@pytest.mark.parametrize("second_fixed_in_time", [True, False], ids=["crash 2 fixed in time", "crash 2 deferred"])
def test_a_crash_loop_whose_first_crash_was_fixed_before_it_was_told_is_one_incident(
        store: Store, second_fixed_in_time: bool) -> None:
    """Issue 13 F5: the first crash was fixed before its alert went out; its `[CRITICAL, now
    OK]` message is held like a resolve (the restart's cooldown, at most group_interval), and a
    crash within it reopens that incident: one incident, and one message (both crashes fixed)
    or an alert and its resolve (the second restart deferred by the cooldown), never the
    `now OK` of the first, then an alert and a resolve of a second incident."""
    lifecycle, status, transition = _crash_loop(store, group_wait=2)

    def outcome(iid: int, s: float, text: str, what: str) -> None:
        store.add_event(OUTCOME_EVENT, KEY, iid, text, {"outcome": what, "remediation": "restart-bot"}, at=at(s))
        lifecycle.tick(at(s))

    transition(State.OK, State.CRITICAL, 0)
    first = status.incident_id
    assert first is not None
    outcome(first, 0.5, "restart-bot: started bot (RUNNING, pid 42) in 0.5s", "done")
    transition(State.CRITICAL, State.OK, 1)  # fixed before its alert (group_wait 2 s after the outcome)
    lifecycle.tick(at(3))
    assert told(store) == []  # held for the restart's cooldown, like a resolve
    transition(State.OK, State.CRITICAL, 5)  # crashed again within it
    assert status.incident_id == first
    [reopened] = [e for e in store.recent_events(incident_id=first, limit=50) if e.kind == "incident-reopened"]
    assert "one message tells both" in reopened.message
    if second_fixed_in_time:
        outcome(first, 5.5, "restart-bot: started bot (RUNNING, pid 43) in 0.5s", "done")
        transition(State.CRITICAL, State.OK, 6)
    else:
        outcome(first, 5.5, "restart-bot not run: cooling down until 12:00:10 UTC", "deferred")
    for s in (7, 8, 9):
        lifecycle.tick(at(s))
    if not second_fixed_in_time:
        assert told(store) == [("alert", "[CRITICAL] bot process on h")]
        outcome(first, 10.5, "restart-bot: started bot (RUNNING, pid 44) in 0.5s", "done")
        transition(State.CRITICAL, State.OK, 11)
    for s in (12, 17, 30, 90):
        lifecycle.tick(at(s))
    if second_fixed_in_time:
        assert told(store) == [("alert", "[CRITICAL, now OK] bot process on h")]
        [row] = store.list_notifications()
        assert "pid 43" in row.body, row.body  # the message says what was done about the second crash
    else:
        assert [k for k, _ in told(store)] == ["alert", "resolve"], told(store)
    assert {i.id for i in store.find_incidents(since=T0 - timedelta(hours=1), limit=10)} == {first}


def _crash_loop(store: Store, *, group_wait: float) -> tuple[AlertLifecycle, Any, Callable[[State, State, float], None]]:
    """A remediated ``bot process`` check (restart-bot, cooldown 10 s; group_interval 60 s,
    remediation_wait 2 s): its lifecycle, its status and a ``transition(old, new, at_s)`` that
    stores a transition and ticks the lifecycle."""
    notes = Notifications(store, Router([RouteSpec("all", ("ops",))], {"ops": TargetSpec("ops", "json://127.0.0.1:1/")}),
                          clock=lambda: T0)
    bc = NS(play=NS(name="p", checks=[], remediations={"restart-bot": NS(cooldown=10.0)}), host=NS(name="h"),
            params=NS(), check=NS(name="bot process", severity="critical", tags=(), depends_on=(),
                                  remediate=("restart-bot",), value=None))
    lifecycle = AlertLifecycle(notes, checks=lambda: {KEY: bc}, maintenance=list, is_flapping=lambda key: False,
                               settings=lambda: LifecycleSettings(group_wait=group_wait, group_interval=60,
                                                                  remediation_wait=2))
    status = NS(incident_id=None)

    def transition(old: State, new: State, s: float) -> None:
        obs = NS(value=None, error=None, summary="bot EXITED" if new.is_problem else "bot RUNNING", at=at(s))
        with store.transaction() as tx:
            notes.on_transition(tx, bc, status, NS(key=KEY, old=old, new=new, at=at(s), observation=obs))
        lifecycle.tick(at(s))

    return lifecycle, status, transition


def test_a_hand_over_is_told_by_its_page_not_by_an_update(store: Store) -> None:
    """The budget spent: the hand-over's page (the emergency's own, or the agent's) tells it; an
    update to the alert's targets would say it a second time."""
    from agent.notify.lifecycle.remediation_notes import PAGED

    lifecycle = world(store)
    iid = crash_told_with(store, lifecycle, ("restart-bot: started bot (RUNNING, pid 42) in 0.8s", "done"))
    store.add_event(OUTCOME_EVENT, KEY, iid, "restart-bot not run: budget spent; handed over to playbook emergency",
                    {"outcome": "handed-over", PAGED: True}, at=at(12))
    for s in (12, 30, 80, 200, 2000):
        lifecycle.tick(at(s))
    assert told(store) == [("alert", "[CRITICAL] bot process on h")]
