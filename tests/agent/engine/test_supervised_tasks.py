"""The resident agent's background tasks are supervised: one that dies is logged, the operator is
told once, and it is started again (an in-process agent, a real store and a real receiver)."""
from __future__ import annotations

import asyncio
from pathlib import Path

import pytest
import yaml

from agent.engine.agent import Agent, ConfigSource
from agent.engine.housekeeping import Housekeeping
from tests.support.receivers import JsonReceiver

pytestmark = pytest.mark.slow
TEMPLATES = Path(__file__).resolve().parents[3] / "templates"




def _world(root: Path, receiver_url: str) -> ConfigSource:
    (root / "playbooks").mkdir()
    (root / "settings.yaml").write_text(yaml.safe_dump({
        "var_dir": str(root / "var"), "agent": {"db": str(root / "var" / "agent.db"), "metrics_port": 0}}))
    (root / "inventory.yaml").write_text(yaml.safe_dump({
        "version": 1, "settings": "settings.yaml", "hosts": {"local": {"vars": {}}},
        "notify": {"targets": {"hook": {"url": receiver_url}}, "routes": [{"name": "default", "targets": ["hook"]}]},
    }))
    (root / "playbooks" / "fine.yaml").write_text(
        "version: 1\nname: fine\nhosts: local\nschedule: {every: 10m}\nchecks:\n"
        "  - name: fine\n    command: {argv: ['true']}\n    expect: 'rc == 0'\n")
    return ConfigSource(root / "inventory.yaml", [root / "playbooks"], env={}, templates_dir=TEMPLATES)


async def _eventually(predicate, timeout: float = 30.0) -> None:  # type: ignore[no-untyped-def]
    deadline = asyncio.get_running_loop().time() + timeout
    while not predicate():
        assert asyncio.get_running_loop().time() < deadline, "condition not met in time"
        await asyncio.sleep(0.05)


@pytest.mark.usefixtures("root_logger_filters")
async def test_a_background_task_that_dies_is_told_once_and_started_again(
        tmp_path: Path, receiver: JsonReceiver, monkeypatch: pytest.MonkeyPatch,
        caplog: pytest.LogCaptureFixture) -> None:
    real_run = Housekeeping.run
    calls: list[int] = []

    async def failing_twice(self: Housekeeping, stop: asyncio.Event) -> None:
        calls.append(1)
        if len(calls) <= 2:
            raise RuntimeError(f"housekeeping bug number {len(calls)}")
        await real_run(self, stop)

    monkeypatch.setattr(Housekeeping, "run", failing_twice)
    agent = Agent(_world(tmp_path, receiver.url))
    stop = asyncio.Event()
    run = asyncio.create_task(agent.run(stop))
    try:
        await _eventually(lambda: len(calls) >= 3)
        await _eventually(lambda: any("housekeeping" in m["title"] for m in receiver.messages))
        assert not run.done()
    finally:
        stop.set()
        assert await asyncio.wait_for(run, 30) == 0
    pages = [m for m in receiver.messages if m["title"].startswith("[AGENT]")]
    assert [m["title"] for m in pages] == ["[AGENT] the agent's housekeeping task failed and was restarted"]
    assert "housekeeping bug number 1" in pages[0]["message"]
    assert "background task housekeeping stopped (RuntimeError: housekeeping bug number 2)" in caplog.text
