"""The notify layer renders each message template with exactly the variables ``agent validate``
checks the template files against (``agent/playbook/message_vars.py``): every required one,
optional ones at most, nothing else. Driven through the lifecycle (grouped alerts and resolves,
escalation, digest) and the facade (resolve, repeat, flapping, notice)."""
from __future__ import annotations

from collections import defaultdict
from collections.abc import Mapping
from datetime import UTC, datetime, timedelta
from types import SimpleNamespace as NS
from typing import Any

from agent.core.states import State
from agent.notify import Notifications, Router, RouteSpec, TargetSpec
from agent.notify.lifecycle import AlertLifecycle, LifecycleSettings
from agent.notify.lifecycle.remediation_notes import OUTCOME_EVENT
from agent.notify.routing import MatchSpec
from agent.playbook.message_vars import MESSAGE_VARS, TEXT_VARS
from agent.store import Store

T0 = datetime(2025, 1, 6, 12, 0, tzinfo=UTC)


class Recorder:
    """A template renderer that records the variables each template kind was given."""

    def __init__(self) -> None:
        self.seen: dict[str, list[set[str]]] = defaultdict(list)
        self.not_text: list[tuple[str, str, type]] = []
        """Variables of TEXT_VARS given as something else than text (``agent validate`` refuses
        ``{{ check.name }}`` in a message template because ``check`` is text there)."""

    def render_template(self, name: str, vars: Mapping[str, Any]) -> str:
        self.seen[name].append(set(vars))
        self.not_text += [(name, k, type(v)) for k, v in vars.items() if k in TEXT_VARS and not isinstance(v, str)]
        return name


def test_each_template_kind_gets_exactly_its_declared_variables(store: Store) -> None:
    recorder = Recorder()
    targets = {"ops": TargetSpec("ops", "json://127.0.0.1:1/")}
    routes = [RouteSpec("page", ("ops",), MatchSpec(severity=("critical",)), repeat=600.0, escalate=((60.0, "all"),)),
              RouteSpec("all", ("ops",))]
    now = [T0]
    notes = Notifications(store, Router(routes, targets), clock=lambda: now[0], templating=recorder,
                          templates={kind: kind for kind in MESSAGE_VARS})
    checks: dict[str, Any] = {}
    lifecycle = AlertLifecycle(notes, checks=lambda: checks, maintenance=list, is_flapping=lambda key: False,
                               settings=lambda: LifecycleSettings(group_wait=10.0, group_interval=60.0))

    def fail(name: str, severity: str, remediate: tuple[str, ...] = ()) -> int:
        checks[f"p/h/{name}"] = NS(play=NS(name="p", checks=[]), host=NS(name="h"), params=NS(),
                                   check=NS(name=name, severity=severity, tags=(), depends_on=(),
                                            remediate=remediate))
        return store.open_incident(play="p", host="h", check=name, state=State.CRITICAL, severity=severity,
                                   opened_at=now[0], summary="down")

    single = fail("a", "critical", remediate=("fix",))
    lifecycle.tick(now[0])  # critical: sent at once? group_wait 10 s: held
    lifecycle.tick(now[0] + timedelta(seconds=10))  # alert (one problem)
    now[0] += timedelta(seconds=20)
    two = [fail("b", "warning"), fail("c", "warning")]
    lifecycle.tick(now[0])  # the alert of "a" goes out (it waited for its remediation's outcome)
    store.add_event(OUTCOME_EVENT, "p/h/a", single, "fix not run: cooling down", {"outcome": "refused"},
                    at=now[0] + timedelta(seconds=5))  # recorded after it: an update, told by the next tick
    lifecycle.tick(now[0] + timedelta(seconds=70))  # grouped (two problems)
    now[0] += timedelta(seconds=90)
    lifecycle.tick(now[0])  # escalation of "a" (open > 60 s, not acknowledged)
    notes.enqueue_due_repeats(now[0] + timedelta(seconds=700))  # repeat of "a"
    for iid in two:
        store.resolve_incident(iid, now[0])
    lifecycle.tick(now[0] + timedelta(seconds=100))  # grouped resolve
    store.resolve_incident(single, now[0] + timedelta(seconds=200))
    lifecycle.tick(now[0] + timedelta(seconds=300))  # resolve (one)
    fail("i", "info")
    lifecycle.tick(now[0] + timedelta(seconds=310))
    lifecycle.send_digest(T0, now[0] + timedelta(seconds=400))
    with store.transaction() as tx:
        bc = NS(play=NS(name="p"), host=NS(name="h"), check=NS(name="a", severity="critical", tags=()))
        notes.flapping(tx, bc, None, started=True, percent=60.0, state="CRITICAL", at=now[0])
    notes.notice(None, title="t", body="b", severity="warning")

    assert set(recorder.seen) == set(MESSAGE_VARS), f"kinds not driven: {set(MESSAGE_VARS) - set(recorder.seen)}"
    for kind, calls in recorder.seen.items():
        declared = MESSAGE_VARS[kind]
        for given in calls:
            assert declared.required <= given, f"{kind}: not given {declared.required - given}"
            assert given <= declared.required | declared.optional, \
                f"{kind}: given {given - declared.required - declared.optional} undeclared"
    assert recorder.not_text == [], recorder.not_text
