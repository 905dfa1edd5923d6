"""`agent stack up` and the programs it starts read one stack settings file the same way (brk15):
a settings file outside the checkout (named by `$BOTWARDEN_SETTINGS`, or by the inventory in a
subdirectory) resolved its relative paths against the checkout for supervisord's configuration
and socket, and against the file's own directory in the agent, the bot and the web page, so the
agent looked for supervisord's socket where there was none (every supervisor check UNKNOWN, no
restart of a crashed bot possible) and nothing said why."""
from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from agent import stack as stack_mod
from agent.modules.registry import default_registry
from agent.playbook import load_config
from botwarden.settings import load_settings

SETTINGS = {"var_dir": "state", "supervisor": {"socket": "state/s.sock", "config": "state/supervisord.conf",
                                               "logdir": "state/log"}}


def _checkout(root: Path, settings: str | None) -> Path:
    root.mkdir(parents=True, exist_ok=True)
    (root / "playbooks").mkdir()
    (root / "inventory.yaml").write_text(yaml.safe_dump({
        "version": 1, "settings": settings, "hosts": {"local": {}},
        "notify": {"targets": {"inbox": {"url": "json://{{ inbox.host }}:{{ inbox.port }}/"}},
                   "routes": [{"name": "all", "targets": ["inbox"]}]}}))
    return root / "inventory.yaml"


@pytest.mark.parametrize("where", ["env", "inventory-subdirectory"])
def test_the_stack_and_the_agent_agree_on_every_settings_path(tmp_path: Path, where: str,
                                                              monkeypatch: pytest.MonkeyPatch) -> None:
    if where == "env":
        settings = tmp_path / "etc" / "botwarden" / "settings.yaml"
        inventory = _checkout(tmp_path / "checkout", None)
        monkeypatch.setenv("BOTWARDEN_SETTINGS", str(settings))
    else:
        settings = tmp_path / "checkout" / "conf" / "stack.yaml"
        inventory = _checkout(tmp_path / "checkout", "conf/stack.yaml")
        monkeypatch.delenv("BOTWARDEN_SETTINGS", raising=False)
    settings.parent.mkdir(parents=True, exist_ok=True)
    settings.write_text(yaml.safe_dump(SETTINGS))
    monkeypatch.chdir(tmp_path / "checkout")

    stack = stack_mod.locate(inventory=inventory)
    agent = load_config(inventory, [tmp_path / "checkout" / "playbooks"], default_registry(), env={}).settings
    bot = load_settings(str(stack.settings_path))  # `bot run --settings PATH`, as the stack starts it
    assert agent is not None
    for s in (agent, bot):
        assert s.path(s.supervisor.socket) == stack.socket_path
        assert s.path(s.supervisor.logdir) == stack.settings.path(stack.settings.supervisor.logdir)
        assert s.secrets_path == stack.settings.secrets_path
    assert stack.socket_path == settings.parent / "state" / "s.sock"  # the documented root: the file's directory
