"""Scheduled task plays on a real APScheduler: cadence, no overlap, reload, cron."""
from __future__ import annotations

import asyncio
from datetime import UTC
from pathlib import Path

import pytest
from apscheduler.schedulers.asyncio import AsyncIOScheduler

from agent.engine.scheduled_plays import ScheduledPlays, has_scheduled_tasks
from agent.modules.registry import default_registry
from agent.playbook import load_config


def plays(tmp_path: Path, **texts: str):
    for name, text in texts.items():
        (tmp_path / f"{name}.yaml").write_text(text)
    res = load_config(tmp_path / "none.yaml", [tmp_path], default_registry(), env={})
    assert not res.diagnostics, [str(d) for d in res.diagnostics]
    return res.config.playbooks


def play(name: str, schedule: str, checks: bool = False) -> str:
    text = f"version: 1\nname: {name}\nhosts: local\nschedule: {schedule}\n"
    text += "tasks:\n  - command: {argv: ['true']}\n"
    if checks:
        text += "checks:\n  - name: c\n    command: {argv: ['true']}\n    expect: 'rc == 0'\n"
    return text


@pytest.fixture
async def scheduler():
    s = AsyncIOScheduler(timezone=UTC)
    s.start()
    yield s
    s.shutdown(wait=False)


async def test_interval_runs_later_not_at_once_and_never_overlaps(tmp_path, scheduler):
    runs: list[str] = []
    release = asyncio.Event()

    async def run(p):
        runs.append(p.name)
        await release.wait()  # the first run hangs: later triggers must not start a second one

    sp = ScheduledPlays(scheduler, run)
    assert sp.install(plays(tmp_path, a=play("a", "{every: 0.2s}"))) == ["a"]
    assert runs == []  # not at start-up
    await asyncio.sleep(0.9)
    assert runs == ["a"]
    release.set()
    await asyncio.sleep(0.5)
    assert len(runs) >= 2


async def test_reload_replaces_jobs_and_ignores_plays_without_tasks(tmp_path, scheduler):
    ran: list[str] = []

    async def run(p):
        ran.append(p.name)

    sp = ScheduledPlays(scheduler, run)
    sp.install(plays(tmp_path / "1" if (tmp_path / "1").mkdir() is None else tmp_path,
                     x=play("x", "{every: 0.1s}")))
    d2 = tmp_path / "2"
    d2.mkdir()
    on_demand = "version: 1\nname: od\nhosts: local\ntasks:\n  - command: {argv: ['true']}\n"
    assert sp.install(plays(d2, y=play("y", "{every: 0.1s}"), od=on_demand)) == ["y"]
    ran.clear()
    await asyncio.sleep(0.45)
    assert set(ran) == {"y"}


def test_cron_next_run_uses_crontab_weekdays(tmp_path, scheduler):
    sp = ScheduledPlays(scheduler, lambda p: asyncio.sleep(0))
    sp.install(plays(tmp_path, w=play("w", '{cron: "0 3 * * 0", timezone: UTC}')))
    nxt = sp.next_runs()["w"]
    assert nxt.weekday() == 6 and (nxt.hour, nxt.minute) == (3, 0)  # 0 in crontab is Sunday


def test_has_scheduled_tasks(tmp_path):
    ps = plays(tmp_path, a=play("a", "{every: 1m}", checks=True))
    assert has_scheduled_tasks(ps["a"])
