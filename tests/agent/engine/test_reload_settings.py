"""A reload never takes an edit of the stack settings the supervised programs have not been
restarted on, whatever part of the files it would run: the files on disk, or, when they do not
load and there is no last good configuration, their part as read or valid (an in-process agent,
a real store and a real receiver)."""
from __future__ import annotations

import asyncio
from pathlib import Path

import pytest
import yaml

from agent.engine.agent import Agent, ConfigSource
from agent.stack.environment import SETTINGS_DIGEST
from botwarden.settings import load_settings
from tests.support.receivers import JsonReceiver

pytestmark = pytest.mark.slow
TEMPLATES = Path(__file__).resolve().parents[3] / "templates"
FINE = """\
version: 1
name: fine
hosts: local
schedule: {every: 10m}
checks:
  - name: fine
    command: {argv: ['true']}
    expect: 'rc == 0'
"""
BROKEN = {  # a playbook broken so that, with no last good configuration, the agent runs ...
    "as-read": FINE.replace("name: fine", "name: odd", 1) + "tasks:\n  - command: {argv: ['true']}\n    when:\n",
    "valid-part": FINE.replace("name: fine", "name: odd", 1).replace("expect:", "expct:"),
}


def _world(root: Path, receiver_url: str, broken: str) -> ConfigSource:
    (root / "playbooks").mkdir()
    (root / "settings.yaml").write_text(yaml.safe_dump({
        "var_dir": str(root / "var"), "bot": {"port": 18081},
        "agent": {"db": str(root / "var" / "agent.db"), "metrics_port": 0}}))
    (root / "inventory.yaml").write_text(yaml.safe_dump({
        "version": 1, "settings": "settings.yaml", "hosts": {"local": {"vars": {}}},
        "notify": {"targets": {"hook": {"url": receiver_url}}, "routes": [{"name": "default", "targets": ["hook"]}]},
    }))
    (root / "playbooks" / "fine.yaml").write_text(FINE)
    (root / "playbooks" / "odd.yaml").write_text(BROKEN[broken])
    started = {SETTINGS_DIGEST: load_settings(root / "settings.yaml").digest()}  # as agent stack up gives it
    return ConfigSource(root / "inventory.yaml", [root / "playbooks"], env=started, templates_dir=TEMPLATES)


async def _eventually(predicate, what: str, timeout: float = 30.0) -> None:  # type: ignore[no-untyped-def]
    deadline = asyncio.get_running_loop().time() + timeout
    while not predicate():
        assert asyncio.get_running_loop().time() < deadline, f"not seen in time: {what}"
        await asyncio.sleep(0.05)


@pytest.mark.usefixtures("root_logger_filters")
@pytest.mark.parametrize("origin", sorted(BROKEN))
async def test_a_settings_edit_is_not_taken_by_the_part_of_the_files_that_runs(
        tmp_path: Path, receiver: JsonReceiver, origin: str) -> None:
    """Running on the part of the files (no last good configuration), a reload rejected the files
    and then loaded their part again, with the edited settings: every check of the bot pointed at
    the new bot.port while the bot served the old one (seen live: 'bot health endpoint: OK ->
    UNKNOWN ... 127.0.0.1:<port+1> Connection refused'). That part is refused like the files."""
    agent = Agent(_world(tmp_path, receiver.url, origin))
    stop = asyncio.Event()
    run = asyncio.create_task(agent.run(stop))
    try:
        await _eventually(lambda: agent.parts is not None and agent.origin == origin, f"a start on {origin}")
        await _eventually(lambda: any(m["title"].startswith("[CONFIG]") for m in receiver.messages),
                          "the start's page")
        settings = tmp_path / "settings.yaml"
        edited = yaml.safe_load(settings.read_text())
        edited["bot"]["port"] = 18082
        settings.write_text(yaml.safe_dump(edited))
        await _eventually(lambda: any("the stack settings changed (bot.port: 18081 -> 18082)" in m["message"]
                                      for m in receiver.messages), "the refused settings told")
        assert agent.running.config.current.settings.bot.port == 18081
        assert agent.origin == origin
        # the playbook fixed too: still not taken (it is the settings that stop it now)
        (tmp_path / "playbooks" / "odd.yaml").write_text(FINE.replace("name: fine", "name: odd", 1))
        await _eventually(lambda: sum("the stack settings changed" in m["message"] for m in receiver.messages) >= 2,
                          "the second refusal")
        assert agent.running.config.current.settings.bot.port == 18081
        assert not run.done()
    finally:
        stop.set()
        assert await asyncio.wait_for(run, 30) == 0
