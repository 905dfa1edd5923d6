"""A message says nothing relative to the moment it was queued.

A message is rendered when it is queued and read when it is delivered, which may be much later
(a receiver down, a full outbox, the agent restarting): "(9ms ago)" rendered at queue time is
false by the time anyone reads it. So every message the lifecycle queues says absolute times
(UTC) and intervals between two recorded moments, never "ago" or "open for" measured at the
queue's clock. Checked as a property: the same facts, queued at different moments, give exactly
the same title and body, for every kind of message.
"""
from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path
from types import SimpleNamespace as NS
from typing import Any

import pytest

from agent.core.states import State
from agent.notify import Notifications, Router, RouteSpec, TargetSpec
from agent.notify.lifecycle import AlertLifecycle, LifecycleSettings
from agent.notify.lifecycle.remediation_notes import OUTCOME_EVENT
from agent.notify.routing import MatchSpec
from agent.store import Store

T0 = datetime(2025, 1, 6, 12, 0, tzinfo=UTC)
PAGER = RouteSpec("pager", ("pager",), MatchSpec(tags=("never",)))


class World:
    def __init__(self, root: Path, routes: list[RouteSpec]) -> None:
        root.mkdir()
        self.store = Store(f"sqlite:///{root / 'agent.db'}")
        self.store.migrate()
        targets = {n: TargetSpec(n, f"json://127.0.0.1:1/{n}") for n in ("ops", "pager")}
        self.notes = Notifications(self.store, Router([*routes, PAGER], targets), clock=lambda: T0)
        self.checks: dict[str, Any] = {}
        self.lifecycle = AlertLifecycle(self.notes, checks=lambda: self.checks, maintenance=list,
                                        is_flapping=lambda key: False,
                                        settings=lambda: LifecycleSettings(group_wait=5, group_interval=60,
                                                                           remediation_wait=0))

    def fail(self, name: str, at: datetime) -> int:
        self.checks[f"p/h/{name}"] = NS(play=NS(name="p", checks=[]), host=NS(name="h"), params=NS(),
                                        check=NS(name=name, severity="critical", tags=(), depends_on=(),
                                                 remediate=()))
        return self.store.open_incident(play="p", host="h", check=name, state=State.CRITICAL, severity="critical",
                                        opened_at=at, summary=f"{name} is down")

    def last(self) -> tuple[str, str, str]:
        n = max(self.store.list_notifications(), key=lambda n: n.id)
        return n.kind, n.title, n.body


def alert(w: World, late: float) -> None:
    w.fail("a", T0)
    w.lifecycle.tick(T0)
    w.lifecycle.tick(T0 + timedelta(seconds=5 + late))


def grouped(w: World, late: float) -> None:
    w.fail("a", T0)
    w.fail("b", T0 + timedelta(seconds=1))
    w.lifecycle.tick(T0 + timedelta(seconds=1))
    w.lifecycle.tick(T0 + timedelta(seconds=6 + late))


def grouped_with_still_open(w: World, late: float) -> None:
    w.fail("a", T0)
    w.lifecycle.tick(T0)
    w.lifecycle.tick(T0 + timedelta(seconds=5))
    w.fail("b", T0 + timedelta(seconds=100))
    w.fail("c", T0 + timedelta(seconds=100))
    w.lifecycle.tick(T0 + timedelta(seconds=100))
    w.lifecycle.tick(T0 + timedelta(seconds=105 + late))


def repeat(w: World, late: float) -> None:
    w.fail("a", T0)
    w.lifecycle.tick(T0)
    w.lifecycle.tick(T0 + timedelta(seconds=5))
    w.notes.enqueue_due_repeats(T0 + timedelta(seconds=605 + late))


def escalation(w: World, late: float) -> None:
    w.fail("a", T0)
    w.lifecycle.tick(T0)
    w.lifecycle.tick(T0 + timedelta(seconds=5))
    w.lifecycle.tick(T0 + timedelta(seconds=300 + late))


def fixed(w: World, late: float) -> None:
    iid = w.fail("a", T0)
    w.checks["p/h/a"].check.remediate = ("restart",)
    w.lifecycle.settings = lambda: LifecycleSettings(group_wait=5, group_interval=60, remediation_wait=30)
    w.lifecycle.tick(T0)
    w.store.add_event(OUTCOME_EVENT, "p/h/a", iid, "restart: started a in 1.0s", {"outcome": "done"},
                      at=T0 + timedelta(seconds=1))
    w.store.resolve_incident(iid, T0 + timedelta(seconds=2))
    w.lifecycle.tick(T0 + timedelta(seconds=2 + late))


def update(w: World, late: float) -> None:
    iid = w.fail("a", T0)
    w.checks["p/h/a"].check.remediate = ("restart",)
    w.lifecycle.tick(T0)
    w.lifecycle.tick(T0 + timedelta(seconds=5))
    w.store.add_event(OUTCOME_EVENT, "p/h/a", iid, "restart not run: cooling down until 12:00:30 UTC",
                      {"outcome": "refused"}, at=T0 + timedelta(seconds=20))
    w.lifecycle.tick(T0 + timedelta(seconds=25 + late))


def resolve(w: World, late: float) -> None:
    iid = w.fail("a", T0)
    w.lifecycle.tick(T0)
    w.lifecycle.tick(T0 + timedelta(seconds=5))
    w.store.resolve_incident(iid, T0 + timedelta(seconds=50))
    w.lifecycle.tick(T0 + timedelta(seconds=55 + late))


PLAIN = [RouteSpec("all", ("ops",))]
REPEATS = [RouteSpec("all", ("ops",), repeat=600.0)]
ESCALATES = [RouteSpec("all", ("ops",), escalate=((300.0, "pager"),))]


@pytest.mark.parametrize("late", [0.009, 61.0, 1800.0])
@pytest.mark.parametrize(("scenario", "routes", "kind"), [
    (alert, PLAIN, "alert"), (grouped, PLAIN, "alert"), (grouped_with_still_open, PLAIN, "alert"),
    (repeat, REPEATS, "repeat"), (escalation, ESCALATES, "alert"), (fixed, PLAIN, "alert"), (update, PLAIN, "notice"),
    (resolve, PLAIN, "resolve")], ids=lambda v: getattr(v, "__name__", "_") if callable(v) else "_")
def test_the_same_facts_queued_later_say_exactly_the_same(tmp_path: Path, scenario: Callable[[World, float], None],
                                                           routes: list[RouteSpec], kind: str, late: float) -> None:
    on_time, later = World(tmp_path / "on-time", routes), World(tmp_path / "later", routes)
    try:
        scenario(on_time, 0.0)
        scenario(later, late)
        assert later.last() == on_time.last()
        assert later.last()[0] == kind and on_time.last()[1] != "", later.last()
        assert " ago" not in later.last()[2]
    finally:
        on_time.store.close()
        later.store.close()
