"""The Notifications facade: alert/resolve/repeat in one transaction, redaction, the notify action."""
from __future__ import annotations

import asyncio
import logging
from datetime import UTC, datetime, timedelta

import pytest

from agent.core.states import State
from agent.notify import AlertInfo, Notifications, Redactor, Router, RouteSpec, TargetSpec, install, uninstall
from agent.notify.routing import MatchSpec
from agent.store import Store
from tests.agent.notify.conftest import running_outbox, wait_until
from tests.support.receivers import JsonReceiver

T0 = datetime(2025, 1, 6, 12, 0, tzinfo=UTC)
WEBHOOK = "json://127.0.0.1:9/services/T0AAAAAAA/B0BBBBBBB/XyZsecretTokenValue123"


def make(store: Store, inbox_url: str, now: list[datetime]) -> Notifications:
    targets = {"slack": TargetSpec("slack", inbox_url), "hook": TargetSpec("hook", WEBHOOK)}
    routes = [RouteSpec("critical", ("slack",), MatchSpec(severity=("critical",)), repeat=600),
              RouteSpec("rest", ("hook",), send_resolved=False)]
    return Notifications(store, Router(routes, targets), clock=lambda: now[0],
                         redactor=Redactor.for_targets([inbox_url, WEBHOOK], environ={}))


def open_and_alert(store: Store, notes: Notifications, **kw: object) -> int:
    with store.transaction() as tx:
        iid = tx.open_incident(play="bot-health", host="bot1", check="bot loop is alive", state=State.CRITICAL,
                               severity="critical", opened_at=T0, summary="health endpoint refused")
        notes.alert(tx, AlertInfo(play="bot-health", host="bot1", check="bot loop is alive",
                                  state=State.CRITICAL, severity="critical", since=T0, incident_id=iid,
                                  error="connection refused", summary="health endpoint refused",
                                  **kw))  # type: ignore[arg-type]
    return iid


def test_alert_then_resolve_go_to_the_same_targets(store: Store) -> None:
    now = [T0]
    notes = make(store, "json://127.0.0.1:1/", now)
    iid = open_and_alert(store, notes)
    open_and_alert(store, notes)  # replayed: deduplicated
    [alert] = store.list_notifications()
    assert (alert.kind, alert.target, alert.route) == ("alert", "slack", "critical")
    assert alert.title == "[CRITICAL] bot loop is alive on bot1"
    for fact in ("bot1", "bot-health", "connection refused", "2025-01-06 12:00:00 UTC", "agent status",
                 "supervisorctl"):
        assert fact in alert.body
    now[0] = T0 + timedelta(minutes=7)
    with store.transaction() as tx:
        incident = tx.get_incident(iid)
        assert incident is not None
        tx.resolve_incident(iid, now[0])
        notes.resolve(tx, incident, now[0], value="200")
    resolve = store.list_notifications(kind="resolve")
    assert [(n.target, n.title) for n in resolve] == [("slack", "[RESOLVED] bot loop is alive on bot1 after 7m")]
    assert "7m" in resolve[0].body and "OK again" in resolve[0].body


def test_repeats_while_open_and_unacknowledged(store: Store) -> None:
    now = [T0]
    notes = make(store, "json://127.0.0.1:1/", now)
    iid = open_and_alert(store, notes)
    assert notes.enqueue_due_repeats(T0 + timedelta(minutes=5)) == 0
    assert notes.enqueue_due_repeats(T0 + timedelta(minutes=10)) == 1
    assert notes.enqueue_due_repeats(T0 + timedelta(minutes=11)) == 0  # counted from the last repeat
    assert notes.enqueue_due_repeats(T0 + timedelta(minutes=20)) == 1
    store.acknowledge_incident(iid, by="ana", at=T0 + timedelta(minutes=21))
    assert notes.enqueue_due_repeats(T0 + timedelta(hours=2)) == 0
    repeats = store.list_notifications(kind="repeat")
    assert [n.title for n in repeats] == ["[STILL CRITICAL] bot loop is alive on bot1"] * 2
    assert "reminder 2" in repeats[1].body
    incident = store.get_incident(iid)
    assert incident is not None and incident.notify_count == 3


def test_secrets_are_redacted_in_stored_bodies_and_logs(store: Store, caplog: pytest.LogCaptureFixture) -> None:
    now = [T0]
    notes = make(store, "json://127.0.0.1:1/", now)
    with store.transaction() as tx:
        notes.alert(tx, AlertInfo(play="p", host="h", check="c", state=State.WARNING, severity="warning",
                                  since=T0, error=f"POST {WEBHOOK} failed"))
    [row] = store.list_notifications()
    assert row.target == "hook" and "XyZsecretTokenValue123" not in row.body and "***" in row.body
    root = logging.getLogger()
    flt = install(root, notes.redactor)
    try:
        with caplog.at_level(logging.WARNING):
            logging.getLogger("apprise.plugins.json").warning("cannot reach %s", WEBHOOK)
            logging.getLogger("agent.notify").warning("token part B0BBBBBBB leaked")
    finally:
        uninstall(root, flt)
    assert [r.getMessage() for r in caplog.records] == ["cannot reach ***", "token part *** leaked"]


def test_redactor_knows_environment_secrets_and_url_parts() -> None:
    r = Redactor.for_targets(["mailto://ana:pa%24%24word@smtp.example.com?to=ops@example.com"],
                             environ={"BOTWARDEN_BOT_TOKEN": "tok-123456", "HOME": "/root", "API_KEY": "k"})
    text = "auth pa$$word / pa%24%24word / tok-123456 at /root via smtp.example.com (k)"
    assert r.redact(text) == "auth *** / *** / *** at /root via smtp.example.com (k)"


async def test_notify_action_queues_or_previews(store: Store, inbox: JsonReceiver) -> None:
    now = [T0]
    notes = make(store, inbox.url, now)
    preview = await notes.notify(route="critical", title="halting", body="emergency", severity="critical",
                                 host="bot1", check_mode=True)
    assert preview["would_send"] == ["slack"] and store.list_notifications() == []
    async with running_outbox(store, notes.targets) as outbox:
        notes.on_enqueued = outbox.queued
        result = await notes.notify(route=None, title="halting", body="emergency: trading halted",
                                    severity="critical", host="bot1")
        assert result["targets"] == ["slack"] and len(result["queued"]) == 1
        [msg] = await asyncio.to_thread(inbox.wait_for, 1)
        await wait_until(lambda: [n.status for n in store.list_notifications()] == ["sent"])
    assert msg["title"] == "halting" and "emergency: trading halted" in msg["message"]
    unknown = await notes.notify(route="nope", title="t", body="b", severity="info", host="bot1")
    assert unknown["queued"] == [] and "unknown route" in unknown["error"]


def test_a_broken_template_still_sends_the_alert(store: Store) -> None:
    class Broken:
        def render_template(self, name: str, vars: object) -> str:
            raise RuntimeError("syntax error in template")

    notes = Notifications(store, Router([RouteSpec("all", ("ops",))], {"ops": TargetSpec("ops", "json://x/")}),
                          templating=Broken(), clock=lambda: T0)
    with store.transaction() as tx:
        notes.alert(tx, AlertInfo(play="p", host="bot1", check="c", state=State.CRITICAL, severity="critical",
                                  since=T0, error="refused"))
    [row] = store.list_notifications()
    assert "host: bot1" in row.body and "error: refused" in row.body


def test_engine_transition_adapter_opens_escalates_and_resolves(store: Store) -> None:
    """The adapter only keeps the incident; the lifecycle sends (here with group_wait 0)."""
    from types import SimpleNamespace as NS

    from agent.notify.lifecycle import AlertLifecycle, LifecycleSettings

    now = [T0]
    notes = make(store, "json://127.0.0.1:1/", now)
    bc = NS(play=NS(name="bot-health", checks=[]), host=NS(name="bot1"),
            check=NS(name="alive", severity="critical", tags=(), depends_on=(), remediate=()), params=NS())
    lifecycle = AlertLifecycle(notes, checks=lambda: {"bot-health/bot1/alive": bc}, maintenance=list,
                               is_flapping=lambda key: False,
                               settings=lambda: LifecycleSettings(group_wait=0, group_interval=0.001))
    status = NS(incident_id=None)

    def transition(old: State, new: State, at: datetime, error: str | None = None) -> None:
        obs = NS(value=None, error=error, summary="health", at=at)
        with store.transaction() as tx:
            assert notes.on_transition(tx, bc, status, NS(key="bot-health/bot1/alive", old=old, new=new, at=at,
                                                          observation=obs)) == []
        now[0] = at
        lifecycle.tick(at)

    transition(State.OK, State.UNKNOWN, T0, "connection refused")  # a dead critical check pages
    iid = status.incident_id
    transition(State.UNKNOWN, State.CRITICAL, T0 + timedelta(seconds=30))
    transition(State.CRITICAL, State.OK, T0 + timedelta(minutes=2))
    assert status.incident_id is None
    rows = store.list_notifications(incident_id=iid)
    assert [(n.kind, n.title) for n in rows] == [
        ("alert", "[UNKNOWN] alive on bot1: connection refused"), ("alert", "[CRITICAL] alive on bot1"),
        ("resolve", "[RESOLVED] alive on bot1 after 2m")]
    assert [e.message for e in store.recent_events(kind="transition")] == [
        "CRITICAL -> OK", "UNKNOWN -> CRITICAL", "OK -> UNKNOWN"]


def test_an_alert_says_the_value_its_check_names(store: Store) -> None:
    """A check that names its value (``value: "json.exchange_refusal or ''"``) alerts with that
    value in the body: the operator reads the exchange's own words, secrets masked; a check that
    names none keeps the probe's summary alone."""
    from types import SimpleNamespace as NS

    from agent.notify.lifecycle import AlertLifecycle, LifecycleSettings

    now = [T0]
    notes = make(store, "json://127.0.0.1:1/", now)
    refusal = "User or API Wallet 0x" + "ab" * 20 + " does not exist. (XyZsecretTokenValue123)"

    def check(name: str, value: str | None) -> NS:
        return NS(play=NS(name="bot-health", checks=[]), host=NS(name="bot1"),
                  check=NS(name=name, severity="critical", tags=(), depends_on=(), remediate=(), value=value),
                  params=NS())

    named, plain = check("bot exchange access", "json.exchange_refusal or ''"), check("bot alive", None)
    lifecycle = AlertLifecycle(notes, checks=lambda: {"bot-health/bot1/bot exchange access": named,
                                                      "bot-health/bot1/bot alive": plain},
                               maintenance=list, is_flapping=lambda key: False,
                               settings=lambda: LifecycleSettings(group_wait=0, group_interval=0.001))
    ids = {}
    for bc in (named, plain):
        status = NS(incident_id=None)
        obs = NS(value=refusal, error=None, summary="GET http://127.0.0.1:8081/health -> 200 in 3ms", at=T0)
        with store.transaction() as tx:
            notes.on_transition(tx, bc, status, NS(key=f"bot-health/bot1/{bc.check.name}", old=State.OK,
                                                   new=State.CRITICAL, at=T0, observation=obs))
        ids[bc.check.name] = status.incident_id
        lifecycle.tick(T0)
    [alert] = store.list_notifications(incident_id=ids["bot exchange access"])
    assert "User or API Wallet 0x" + "ab" * 20 + " does not exist." in alert.body, alert.body
    assert "XyZsecretTokenValue123" not in alert.body and "***" in alert.body
    assert alert.title == "[CRITICAL] bot exchange access on bot1"
    [other] = store.list_notifications(incident_id=ids["bot alive"])
    assert "does not exist" not in other.body and "-> 200 in 3ms" in other.body
