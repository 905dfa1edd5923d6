"""The hand-over between an agent whose database was lost and the next one
(agent.engine.store_handover): what was told and not yet told resolved is told resolved by the
next agent, once. In-process agents on real SQLite files and a real json:// receiver; the file's
edge cases (stale, unknown checks, corrupt, cut off) on a real store."""
from __future__ import annotations

import asyncio
import json
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
import yaml

from agent.core.states import State
from agent.engine.agent import Agent, ConfigSource
from agent.engine.store_file import EXIT_STORE_LOST
from agent.engine.store_handover import (
    MAX_AGE,
    Told,
    handover_path,
    read_handover,
    receive_handover,
    told_in_store,
    write_handover,
)
from agent.notify import Notifications
from agent.store import Store
from tests.support.receivers import JsonReceiver

TEMPLATES = Path(__file__).resolve().parents[3] / "templates"
NOW = datetime(2026, 12, 7, 6, 0, tzinfo=UTC)




def _world(root: Path, receiver_url: str, *, checks: tuple[str, ...] = ("bot",), group_wait: str = "0s") -> ConfigSource:
    """A check per name in ``checks``, OK while the file ``<root>/<name>.ok`` exists, read every second."""
    (root / "playbooks").mkdir(exist_ok=True)
    (root / "settings.yaml").write_text(yaml.safe_dump({
        "var_dir": str(root / "var"), "agent": {"db": str(root / "var" / "agent.db"), "metrics_port": 0}}))
    (root / "inventory.yaml").write_text(yaml.safe_dump({
        "version": 1, "settings": "settings.yaml", "hosts": {"local": {"vars": {}}},
        "notify": {"targets": {"hook": {"url": receiver_url}},
                   "routes": [{"name": "default", "targets": ["hook"], "group_wait": group_wait}],
                   "group_wait": group_wait, "group_interval": "1s"},
    }))
    body = "".join(f"  - name: {name}\n    command: {{argv: ['test', '-e', '{root / (name + '.ok')}']}}\n"
                   "    expect: 'rc == 0'\n    severity: critical\n" for name in checks)
    (root / "playbooks" / "watch.yaml").write_text(
        f"version: 1\nname: watch\nhosts: local\nschedule: {{every: 1s}}\nchecks:\n{body}")
    return ConfigSource(root / "inventory.yaml", [root / "playbooks"], env={}, templates_dir=TEMPLATES)


async def _eventually(predicate, timeout: float = 30.0, what: str = "condition") -> None:  # type: ignore[no-untyped-def]
    deadline = asyncio.get_running_loop().time() + timeout
    while not predicate():
        assert asyncio.get_running_loop().time() < deadline, f"{what}: not met in time"
        await asyncio.sleep(0.05)


def _titles(receiver: JsonReceiver) -> list[str]:
    return [m["title"] for m in receiver.messages]


async def _lose_the_database(tmp_path: Path, receiver: JsonReceiver, *, told: str = "outbox") -> None:
    """Agent 1 sees ``bot`` fail and tells it (through the outbox; or ``told="stopping"``: held by a
    long group wait, told directly as the agent stops); then its database is deleted under it: it
    says so and exits to be restarted."""
    agent = Agent(_world(tmp_path, receiver.url, group_wait="0s" if told == "outbox" else "10m"))
    run = asyncio.create_task(agent.run(asyncio.Event()))
    try:
        if told == "outbox":
            await _eventually(lambda: "[CRITICAL] bot on local" in _titles(receiver), what="the alert")
        else:
            await _eventually(lambda: agent.parts is not None and agent.parts.pipeline.stored >= 1
                              and agent.parts.pipeline.store_error is None, what="the problem stored")
        for path in (tmp_path / "var").glob("agent.db*"):
            path.unlink()
        assert await asyncio.wait_for(run, 30) == EXIT_STORE_LOST
    finally:
        if not run.done():
            run.cancel()
    assert any(t.startswith("[AGENT] the agent database") for t in _titles(receiver)), _titles(receiver)
    assert "[CRITICAL] bot on local" in _titles(receiver)


@pytest.mark.slow
@pytest.mark.usefixtures("root_logger_filters")
@pytest.mark.parametrize("told", ["outbox", "stopping"])
async def test_a_problem_told_before_the_database_was_lost_is_told_resolved_by_the_next_agent(
        tmp_path: Path, receiver: JsonReceiver, told: str) -> None:
    await _lose_the_database(tmp_path, receiver, told=told)
    (tmp_path / "bot.ok").touch()  # it recovers while no agent runs
    agent = Agent(_world(tmp_path, receiver.url))
    stop = asyncio.Event()
    run = asyncio.create_task(agent.run(stop))
    try:
        await _eventually(lambda: any(t.startswith("[RESOLVED] bot on local") for t in _titles(receiver)),
                          what="the resolve told by the next agent")
        await asyncio.sleep(2)  # nothing more comes
    finally:
        stop.set()
        assert await asyncio.wait_for(run, 30) == 0
    titles = _titles(receiver)
    about = [t for t in titles if " bot on local" in t]
    assert about[0] == "[CRITICAL] bot on local" and about[1].startswith("[RESOLVED] bot on local"), titles
    assert len(about) == 2, titles
    assert not handover_path(tmp_path / "var" / "agent.db").exists()  # taken once
    store = Store(f"sqlite:///{tmp_path / 'var' / 'agent.db'}")
    try:
        events = store.recent_events(kind="handover")
        assert events and any("1 incident(s) imported" in e.message for e in events), events
    finally:
        store.close()


@pytest.mark.slow
@pytest.mark.usefixtures("root_logger_filters")
async def test_a_problem_still_failing_after_the_loss_continues_its_incident_without_a_second_alert(
        tmp_path: Path, receiver: JsonReceiver) -> None:
    await _lose_the_database(tmp_path, receiver)
    agent = Agent(_world(tmp_path, receiver.url))
    stop = asyncio.Event()
    run = asyncio.create_task(agent.run(stop))
    try:
        await asyncio.sleep(4)  # several failing readings: no second alert
        assert [t for t in _titles(receiver) if " bot on local" in t] == ["[CRITICAL] bot on local"], \
            _titles(receiver)
        (tmp_path / "bot.ok").touch()
        await _eventually(lambda: any(t.startswith("[RESOLVED] bot on local") for t in _titles(receiver)),
                          what="the resolve")
        await asyncio.sleep(2)
    finally:
        stop.set()
        assert await asyncio.wait_for(run, 30) == 0
    about = [t for t in _titles(receiver) if " bot on local" in t]
    assert len(about) == 2 and about[1].startswith("[RESOLVED]"), _titles(receiver)


# -- the file's edge cases, on a real store ----------------------------------------------------
def _told(check: str = "bot", *, resolved: bool = False) -> Told:
    return Told(play="watch", host="local", check=check, state="CRITICAL", severity="critical",
                summary=f"{check} broke", opened_at=NOW - timedelta(minutes=5), told_at=NOW - timedelta(minutes=5),
                resolved_at=NOW - timedelta(minutes=1) if resolved else None, routes=(("default", "hook"),))


@pytest.fixture
def started(tmp_path: Path) -> Iterator[tuple[Store, Notifications, set[str]]]:
    source = _world(tmp_path, "json://127.0.0.1:9/none", checks=("bot", "api"))
    config = source.load().config
    assert config is not None
    store = Store(f"sqlite:///{tmp_path / 'new.db'}")
    store.migrate()
    try:
        yield store, Notifications.from_config(config, store), {bc.key for bc in config.bound_checks}
    finally:
        store.close()


def test_the_round_trip_imports_open_and_recovered_problems_as_told_to_the_same_targets(
        tmp_path: Path, started: tuple[Store, Notifications, set[str]]) -> None:
    store, notifications, known = started
    old = Store(f"sqlite:///{tmp_path / 'old.db'}")
    old.migrate()
    try:
        for check, announced in (("bot", "CRITICAL"), ("api", "CRITICAL"), ("untold", None), ("over", "OK")):
            iid = old.open_incident(play="watch", host="local", check=check, state=State.CRITICAL,
                                    severity="critical", opened_at=NOW - timedelta(minutes=5), summary=f"{check} broke")
            if announced:
                old.set_incident_lifecycle(iid, announced_state=announced, announced_at=NOW - timedelta(minutes=4))
                nid = old.enqueue_notification(kind="alert", target="hook", title=f"[CRITICAL] {check}", body="b",
                                               dedup_key=f"a{iid}", now=NOW, route="default", incident_id=iid)
                assert nid is not None
            if check in ("api", "over"):
                old.resolve_incident(iid, NOW - timedelta(minutes=1))
        told = told_in_store(old)
    finally:
        old.close()
    assert sorted((t.check, t.resolved_at is not None) for t in told) == [("api", True), ("bot", False)]
    path = tmp_path / "new.db.handover.json"
    write_handover(path, told, "the agent database was deleted", NOW)
    assert oct(path.stat().st_mode & 0o777) == "0o600"
    assert read_handover(path).told == sorted(told, key=lambda t: t.key) or read_handover(path).told == told

    got = receive_handover(path, store, notifications, known, NOW + timedelta(seconds=5))
    assert sorted(t.check for t in got.imported) == ["api", "bot"] and not got.problems
    assert not path.exists()
    bot = store.open_incident_for("watch/local/bot")
    assert bot is not None and bot.announced_state == "CRITICAL"
    assert [(n.route, n.target, n.status) for n in store.list_notifications(incident_id=bot.id)] == \
        [("default", "hook", "sent")]
    state = store.load_check_states()["watch/local/bot"]
    assert state.hard_state is State.CRITICAL and state.incident_id == bot.id  # the first OK reading resolves it
    assert [i.check for i in store.incidents_to_close()] == ["api"]  # its resolve is due now
    assert "watch/local/api" not in store.load_check_states()
    # taken twice (the file could not be removed): nothing more
    write_handover(path, told, "the agent database was deleted", NOW)
    receive_handover(path, store, notifications, known, NOW + timedelta(seconds=6))
    assert len(store.list_notifications(incident_id=bot.id)) == 1
    assert len(store.open_incidents()) == 1


def test_problems_of_checks_no_longer_configured_are_told_as_not_judged(
        tmp_path: Path, started: tuple[Store, Notifications, set[str]]) -> None:
    store, notifications, known = started
    path = tmp_path / "new.db.handover.json"
    write_handover(path, [_told("bot"), _told("gone")], "deleted", NOW)
    got = receive_handover(path, store, notifications, known, NOW)
    assert [t.check for t in got.imported] == ["bot"] and [t.check for t in got.unknown] == ["gone"]
    assert store.open_incident_for("watch/local/gone") is None
    [notice] = [n for n in store.list_notifications() if n.kind == "notice"]
    assert "cannot be judged" in notice.title and "gone on local" in notice.body


def test_a_stale_handover_is_told_not_imported(tmp_path: Path, started: tuple[Store, Notifications, set[str]]) -> None:
    store, notifications, known = started
    path = tmp_path / "new.db.handover.json"
    write_handover(path, [_told("bot")], "deleted", NOW)
    got = receive_handover(path, store, notifications, known, NOW + MAX_AGE + timedelta(minutes=1))
    assert not got.imported and [t.check for t in got.stale] == ["bot"]
    assert store.open_incidents() == [] and "watch/local/bot" not in store.load_check_states()
    [notice] = [n for n in store.list_notifications() if n.kind == "notice"]
    assert "old hand-over" in notice.title and "bot on local" in notice.body
    assert not path.exists()


@pytest.mark.parametrize("content", [b"{\"version\": 1, \"written_at\": \"2026-12-07T06:00:00+00:00\", \"inc",
                                     b"\xff\xfe", b"[]", b"{\"version\": 99}",
                                     json.dumps({"version": 1, "written_at": "yesterday", "incidents": []}).encode(),
                                     json.dumps({"version": 1, "written_at": NOW.isoformat(),
                                                 "incidents": [{"state": "OK"}]}).encode()])
def test_a_corrupt_handover_is_said_and_kept_aside_never_crashing(
        tmp_path: Path, started: tuple[Store, Notifications, set[str]], content: bytes) -> None:
    store, notifications, known = started
    path = tmp_path / "new.db.handover.json"
    path.write_bytes(content)
    got = receive_handover(path, store, notifications, known, NOW)
    assert got.problems and not got.imported
    assert not path.exists() and list(tmp_path.glob("new.db.handover.json.bad-*"))
    [notice] = [n for n in store.list_notifications() if n.kind == "notice"]
    assert "cannot be read" in notice.title
    assert receive_handover(path, store, notifications, known, NOW).problems == []  # said once


def test_a_handover_cut_off_by_a_kill_is_said(tmp_path: Path, started: tuple[Store, Notifications, set[str]]) -> None:
    store, notifications, known = started
    path = tmp_path / "new.db.handover.json"
    (tmp_path / "new.db.handover.json.tmp-4242").write_bytes(b"{\"version\": 1, \"writ")
    got = receive_handover(path, store, notifications, known, NOW)
    assert got.problems and not list(tmp_path.glob("*.tmp-*"))
    [notice] = [n for n in store.list_notifications() if n.kind == "notice"]
    assert "cut off" in notice.title


def test_the_handover_holds_no_secret(tmp_path: Path) -> None:
    path = tmp_path / "a.db.handover.json"
    secret = "sk-live-0123456789abcdef"
    told = [Told(play="watch", host="local", check="bot", state="CRITICAL", severity="critical",
                 summary=f"login failed with {secret}", opened_at=NOW, told_at=NOW, resolved_at=None,
                 routes=(("default", "hook"),))]
    write_handover(path, told, f"deleted ({secret})", NOW, redact=lambda s: s.replace(secret, "***"))
    assert secret not in path.read_text() and "***" in path.read_text()
    assert handover_path(tmp_path / "a.db") == path
