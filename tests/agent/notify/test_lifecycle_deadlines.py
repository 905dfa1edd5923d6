"""The alert lifecycle's deadlines (what the engine sleeps until) and per-route group_wait."""
from __future__ import annotations

from datetime import UTC, datetime, timedelta
from types import SimpleNamespace as NS
from typing import Any

from agent.core.states import State
from agent.notify import Notifications, Router, RouteSpec, TargetSpec
from agent.notify.lifecycle import AlertLifecycle, LifecycleSettings
from agent.notify.routing import MatchSpec
from agent.store import Store

T0 = datetime(2025, 1, 6, 12, 0, tzinfo=UTC)


def world(store: Store, routes: list[RouteSpec], *, group_wait: float = 10.0,
          group_interval: float = 60.0) -> tuple[AlertLifecycle, dict[str, Any]]:
    targets = {"ops": TargetSpec("ops", "json://127.0.0.1:1/")}
    notes = Notifications(store, Router(routes, targets), clock=lambda: T0)
    checks: dict[str, Any] = {}
    lifecycle = AlertLifecycle(notes, checks=lambda: checks, maintenance=list, is_flapping=lambda key: False,
                               settings=lambda: LifecycleSettings(group_wait=group_wait,
                                                                  group_interval=group_interval))
    return lifecycle, checks


def fail(store: Store, checks: dict[str, Any], name: str, severity: str, at: datetime) -> int:
    checks[f"p/h/{name}"] = NS(play=NS(name="p", checks=[]), host=NS(name="h"),
                               check=NS(name=name, severity=severity, tags=(), depends_on=(), remediate=()),
                               params=NS())
    return store.open_incident(play="p", host="h", check=name, state=State.CRITICAL, severity=severity,
                               opened_at=at, summary="down")


def alerts(store: Store) -> list[str]:
    return [n.title for n in sorted(store.list_notifications(), key=lambda n: n.id) if n.kind == "alert"]


def test_next_due_is_the_end_of_group_wait_then_group_interval(store: Store) -> None:
    lifecycle, checks = world(store, [RouteSpec("all", ("ops",))])
    fail(store, checks, "a", "warning", T0)
    assert lifecycle.tick(T0) == 0
    assert lifecycle.next_due == T0 + timedelta(seconds=10)
    assert lifecycle.tick(T0 + timedelta(seconds=9.9)) == 0
    assert lifecycle.tick(T0 + timedelta(seconds=10)) == 1
    fail(store, checks, "b", "warning", T0 + timedelta(seconds=11))
    lifecycle.tick(T0 + timedelta(seconds=11))  # eligible now, due at 21 s, held by group_interval until 70 s
    lifecycle.tick(T0 + timedelta(seconds=21))
    assert lifecycle.next_due == T0 + timedelta(seconds=70)
    assert lifecycle.tick(T0 + timedelta(seconds=70)) == 1
    assert alerts(store) == ["[CRITICAL] a on h", "[CRITICAL] b on h"]
    assert lifecycle.next_due is None


def test_a_route_with_group_wait_zero_sends_at_once_and_others_keep_grouping(store: Store) -> None:
    routes = [RouteSpec("page", ("ops",), MatchSpec(severity=("critical",)), group_wait=0.0),
              RouteSpec("rest", ("ops",))]
    lifecycle, checks = world(store, routes)
    fail(store, checks, "w1", "warning", T0)
    fail(store, checks, "w2", "warning", T0)
    assert lifecycle.tick(T0) == 0  # the default route waits 10 s
    assert lifecycle.next_due == T0 + timedelta(seconds=10)
    assert lifecycle.tick(T0 + timedelta(seconds=10)) == 1
    assert alerts(store) == ["[CRITICAL] 2 problems on h: w1, w2"]

    lifecycle2, checks2 = world(store, routes)
    other = T0 + timedelta(hours=1)
    checks2.update(checks)
    store.resolve_incident(store.open_incident_for("p/h/w1").id, other)  # type: ignore[union-attr]
    store.resolve_incident(store.open_incident_for("p/h/w2").id, other)  # type: ignore[union-attr]
    lifecycle2.tick(other + timedelta(seconds=20))
    fail(store, checks2, "crash", "critical", other + timedelta(minutes=5))
    assert lifecycle2.tick(other + timedelta(minutes=5)) == 1  # no wait for the page
    assert alerts(store)[-1] == "[CRITICAL] crash on h"


def test_escalation_and_silence_ends_are_deadlines(store: Store) -> None:
    routes = [RouteSpec("all", ("ops",), escalate=((300.0, "pager"),)), RouteSpec("pager", ("ops",),
                                                                                  MatchSpec(tags=("never",)))]
    lifecycle, checks = world(store, routes, group_wait=0)
    fail(store, checks, "a", "critical", T0)
    assert lifecycle.tick(T0) == 1
    assert lifecycle.next_due == T0 + timedelta(seconds=300)
    store.add_silence(matchers={"check": "b"}, starts_at=T0, ends_at=T0 + timedelta(seconds=120), reason="",
                      created_by="t")
    assert lifecycle.tick(T0 + timedelta(seconds=1)) == 0
    assert lifecycle.next_due == T0 + timedelta(seconds=120)
    assert lifecycle.tick(T0 + timedelta(seconds=300)) == 1  # the escalation
    assert lifecycle.next_due is None


def test_a_dependent_stays_held_during_its_parents_warm_up_then_is_sent_if_still_failing(store: Store) -> None:
    """A restarted bot takes seconds to answer again: its dependents must not page in that window."""
    lifecycle, checks = world(store, [RouteSpec("all", ("ops",))], group_wait=0)
    lifecycle.settings = lambda: LifecycleSettings(group_wait=0, group_interval=1, inhibit_grace=60)
    parent = fail(store, checks, "bot process", "critical", T0)
    fail(store, checks, "health endpoint", "critical", T0)
    checks["p/h/health endpoint"].check.depends_on = ("bot process",)
    assert lifecycle.tick(T0) == 1 and alerts(store) == ["[CRITICAL] bot process on h"]
    store.resolve_incident(parent, T0 + timedelta(seconds=5))  # the bot is back; its HTTP is still warming up
    lifecycle.tick(T0 + timedelta(seconds=10))  # queues the parent's resolve, not the dependent
    assert lifecycle.next_due == T0 + timedelta(seconds=65)  # the end of the grace
    assert alerts(store) == ["[CRITICAL] bot process on h"]
    lifecycle.tick(T0 + timedelta(seconds=64))
    assert alerts(store) == ["[CRITICAL] bot process on h"]
    assert lifecycle.tick(T0 + timedelta(seconds=65)) == 1  # still failing after the grace: sent
    assert alerts(store)[-1] == "[CRITICAL] health endpoint on h"


def kinds(store: Store) -> list[str]:
    return [n.kind for n in sorted(store.list_notifications(), key=lambda n: n.id)]


def test_a_resolve_waits_no_longer_than_the_group_wait_of_its_route(store: Store) -> None:
    lifecycle, checks = world(store, [RouteSpec("pages", ("ops",), group_wait=0)], group_wait=10)
    iid = fail(store, checks, "bot process", "critical", T0)
    assert lifecycle.tick(T0) == 1
    store.resolve_incident(iid, T0 + timedelta(seconds=5))
    assert lifecycle.tick(T0 + timedelta(seconds=5)) == 1  # at once, as the alert went
    assert kinds(store) == ["alert", "resolve"]


def test_a_held_resolve_goes_out_before_the_next_alert_of_its_host(store: Store) -> None:
    lifecycle, checks = world(store, [RouteSpec("all", ("ops",))], group_wait=10, group_interval=1)
    first = fail(store, checks, "bot process", "critical", T0)
    lifecycle.tick(T0)
    assert lifecycle.tick(T0 + timedelta(seconds=10)) == 1
    store.resolve_incident(first, T0 + timedelta(seconds=20))
    fail(store, checks, "bot process", "critical", T0 + timedelta(seconds=20.5))  # dead again at once
    lifecycle.tick(T0 + timedelta(seconds=20.5))
    lifecycle.tick(T0 + timedelta(seconds=40))  # both due in one pass
    assert kinds(store) == ["alert", "resolve", "alert"]  # the last message says what is true now


def test_notified_says_queued_and_delivered_is_recorded_only_when_apprise_said_so(store: Store) -> None:
    lifecycle, checks = world(store, [RouteSpec("pages", ("ops",), group_wait=0)])
    iid = fail(store, checks, "bot process", "critical", T0)
    lifecycle.tick(T0)
    [notified] = [e for e in store.recent_events(kind="notified") if e.incident_id == iid]
    assert "queued for ops" in notified.message and "sent" not in notified.message
    assert store.recent_events(kind="delivered") == []
    [row] = store.list_notifications()
    store.mark_sent(row.id, T0 + timedelta(seconds=32))
    [delivered] = store.recent_events(kind="delivered")
    assert delivered.incident_id == iid and delivered.at == T0 + timedelta(seconds=32)
