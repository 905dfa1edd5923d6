"""A play's own halt and stop are not alerted as new problems (issue 13, one fault one message).

A task naming ``silence_until_ok`` (the emergency's halt and stops) leaves, once it ran, a silence
of those checks on its host in the agent's store, which ends at the first reading of the check
that is OK again after the task: the emergency's page is the one message until the bot runs and
is resumed, and a crash or halt after that is a new problem, told.
"""
from __future__ import annotations

import asyncio
import sys
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from agent.core.states import State
from agent.engine.play_runner import PlayRunner, StoreSilences
from agent.modules.base import HostContext
from agent.modules.registry import default_registry
from agent.notify.lifecycle.suppression import silence_matches
from agent.playbook import Templating
from agent.playbook.models import Task
from agent.store import Store
from agent.store.records import CheckStateRecord

T0 = datetime(2026, 12, 7, 3, 0, tzinfo=UTC)


def _state(check: str, state: State, observed: datetime, *, soft: State | None = None, play: str = "bot-health",
           host: str = "local") -> CheckStateRecord:
    return CheckStateRecord(play=play, host=host, check=check, hard_state=state, soft_state=soft or state,
                            since=observed, last_observed_at=observed)


def _run(store: Store, tasks: list[dict[str, Any]], *, check_mode: bool = False) -> list[Any]:
    """Run ``tasks`` as the play ``emergency`` on host ``local`` with the store's silences, the way
    ``agent run-playbook`` and the resident agent run them."""
    async def call(fn: Any, *args: Any) -> Any:
        return fn(*args)

    play = type("Play", (), {"name": "emergency", "vars": {}, "handlers": [],
                             "tasks": [Task.model_validate(t) for t in tasks]})()
    runner = PlayRunner(default_registry(), Templating(None), check_mode=check_mode,
                        silences=StoreSilences(store, call, actor="ana", play="emergency"))
    return asyncio.run(runner.run(play, [HostContext("local")])).outcomes


def _active(store: Store, at: datetime | None = None) -> list[tuple[str, str, str, bool]]:
    return [(s.matchers["play"], s.matchers["check"], s.matchers["host"], s.ok_after is not None)
            for s in store.silences(active_at=at or datetime.now(UTC))]


def test_a_task_that_runs_is_silenced_before_it_acts_until_its_check_is_ok_again(store: Store, tmp_path: Path) -> None:
    db = tmp_path / "a.db"  # the store fixture's file (conftest)
    # The command reads the silences while it acts: they are in force before the halt or stop
    # lands, so no alert of what it causes can go out first.
    peek = [sys.executable, "-c", f"import sqlite3; print(sqlite3.connect({str(db)!r}).execute("
            "'select matchers from silences').fetchall())"]
    [ran, failed, skipped] = _run(store, [
        {"name": "stop", "module": "command", "params": {"argv": peek},
         "silence_until_ok": ["bot-health/bot process", "bot not halted"]},
        {"name": "fails", "module": "command", "params": {"argv": ["false"]}, "ignore_errors": True,
         "silence_until_ok": ["bot-health/bot [x]*"]},
        {"name": "skipped", "module": "command", "params": {"argv": ["true"]}, "when": "false",
         "silence_until_ok": ["bot-health/never"]},
    ])
    assert (ran.status, failed.status, skipped.status) == ("changed", "ignored", "skipped")
    assert "bot process" in ran.data["stdout"]
    # A failed task may have done part of its work (a halt recorded, not confirmed): silenced too;
    # a skipped one did nothing. Its own play when no PLAYBOOK/ is written.
    assert _active(store) == [("bot-health", "bot process", "local", True), ("emergency", "bot not halted", "local", True),
                              ("bot-health", "bot [[]x][*]", "local", True)]  # a name, not a pattern:
    [*_, odd] = store.silences()
    assert silence_matches(odd.matchers, host="local", play="bot-health", check="bot [x]*", severity="x")
    assert not silence_matches(odd.matchers, host="local", play="bot-health", check="bot x1", severity="x")
    assert all(s.created_by == "ana" and s.reason.startswith("emergency: ") for s in store.silences())
    # ok_after is when the task finished, not the bound written before it acted.
    assert all(s.ok_after is not None and s.ok_after - s.starts_at < timedelta(seconds=30) for s in store.silences())
    assert _run(store, [{"name": "x", "module": "command", "params": {"argv": ["true"]},
                         "silence_until_ok": ["bot-health/bot process"]}], check_mode=True)
    assert len(store.silences()) == 3  # check mode changes nothing


def test_the_silence_ends_at_the_first_ok_reading_after_it_began_and_only_then(store: Store) -> None:
    sid = store.add_silence(matchers={"host": "local", "play": "bot-health", "check": "bot process"},
                            starts_at=T0 - timedelta(seconds=1), ends_at=T0 + timedelta(days=7), reason="emergency: stop",
                            created_by="ana", ok_after=T0)
    plain = store.add_silence(matchers={"check": "bot process"}, starts_at=T0, ends_at=T0 + timedelta(days=7),
                              reason="operator", created_by="bob")

    def active() -> list[int]:
        return [s.id for s in store.silences(active_at=T0 + timedelta(hours=1))]

    # An OK read before the task finished (processed late), a problem, a soft OK under a hard
    # problem, another check's OK and another host's OK end nothing.
    store.save_check_states([_state("bot process", State.OK, T0 - timedelta(milliseconds=5))])
    store.save_check_state(_state("bot process", State.CRITICAL, T0 + timedelta(seconds=2)))
    store.save_check_states([_state("bot process", State.CRITICAL, T0 + timedelta(seconds=4), soft=State.OK),
                             _state("bot heartbeat", State.OK, T0 + timedelta(seconds=4)),
                             _state("bot process", State.OK, T0 + timedelta(seconds=4), host="other")])
    assert active() == [sid, plain]
    store.save_check_states([_state("bot process", State.OK, T0 + timedelta(seconds=6))])
    assert active() == [plain]  # the operator's own silence keeps its time
    [ended] = [e for e in store.recent_events(limit=50) if e.kind == "silence_ended"]
    assert ended.key == "bot-health/local/bot process" and f"silence #{sid} ended" in ended.message


@pytest.mark.parametrize(("failed", "check_mode", "ends"), [(False, False, True), (True, False, False),
                                                           (False, True, False)])
def test_a_resume_ends_the_silences_a_play_left_on_its_host(store: Store, failed: bool, check_mode: bool,
                                                             ends: bool) -> None:
    """`agent resume` (or a play's resume step) says trading may start again: a halt the bot takes
    again at once (before any check read OK) must be told, not held by the emergency's silence
    for a week (breaker x4, F2). The operator's own silences and other hosts' are kept."""
    start = datetime.now(UTC) - timedelta(minutes=1)
    mine = store.silence_until_ok(host="local", checks=[("bot-health", "bot not halted")], reason="emergency: halt",
                                  created_by="ana", starts_at=start, ok_after=start)
    other = store.silence_until_ok(host="other", checks=[("bot-health", "bot not halted")], reason="emergency: halt",
                                   created_by="ana", starts_at=start, ok_after=start)
    plain = store.add_silence(matchers={"host": "local"}, starts_at=start, ends_at=start + timedelta(hours=2),
                              reason="deploy", created_by="bob")
    store.record_action_run(play="agent resume", host="local", task="resume the bot", module="bot",
                            params={"action": "resume"}, actor="ana via agent resume", started_at=datetime.now(UTC),
                            failed=failed, check_mode=check_mode)
    active = {s.id for s in store.silences()}
    assert (mine[0] in active) is not ends and other[0] in active and plain in active


def test_a_silence_that_cannot_be_written_never_holds_the_task(store: Store) -> None:
    """An emergency's halt must not wait for the agent's store (locked by `agent ack`, full): a
    silence write that never completes is given up, the task acts, and its alert goes out."""
    async def stuck(fn: Any, *args: Any) -> Any:
        await asyncio.Event().wait()  # the store thread never gets to it

    async def run() -> list[Any]:
        play = type("Play", (), {"name": "emergency", "vars": {}, "handlers": [], "tasks": [Task.model_validate(
            {"name": "halt", "module": "command", "params": {"argv": ["true"]},
             "silence_until_ok": ["bot-health/bot not halted"]})]})()
        runner = PlayRunner(default_registry(), Templating(None),
                            silences=StoreSilences(store, stuck, actor="ana", play="emergency"))
        return (await asyncio.wait_for(runner.run(play, [HostContext("local")]), 30)).outcomes

    [halt] = asyncio.run(run())
    assert halt.status == "changed" and store.silences() == []
