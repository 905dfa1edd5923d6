"""An operator's command is not blocked by a broken file it does not need (issue: a typo in an
unrelated playbook blocked `agent run-playbook emergency`): it runs from the valid part of the
files, else from the last good configuration the agent saved, saying so; only when neither has
the playbook does it refuse (exit 3), every problem printed."""
from __future__ import annotations

from pathlib import Path

import pytest

from agent.cli.main import main
from agent.engine.config_source import ConfigSource
from agent.store import Store
from botwarden.errors import ExitCode
from tests.e2e.harness import AgentWorld

HELLO = """\
version: 1
name: hello
hosts: local
tasks:
  - name: say hello
    command: {argv: ["echo", "hello"]}
"""
OTHER = """\
version: 1
name: other
hosts: local
tasks:
  - name: something else
    command: {argv: ["true"]}
"""


def _world(tmp_path: Path) -> AgentWorld:
    world = AgentWorld(tmp_path / "world", "unix:///nonexistent.sock", "json://127.0.0.1:9/")
    world.write_playbook("hello", HELLO)
    world.write_playbook("other", OTHER)
    return world


def _run(world: AgentWorld, capsys: pytest.CaptureFixture[str]) -> tuple[int, str, str]:
    code = main(["run-playbook", "hello", "--yes", "--inventory", str(world.inventory),
                 "--playbooks", str(world.playbooks), "--store", world.store_url])
    out = capsys.readouterr()
    return code, out.out, " ".join(out.err.split())


def test_a_typo_in_another_playbook_does_not_block_this_one(tmp_path: Path,
                                                           capsys: pytest.CaptureFixture[str]) -> None:
    world = _world(tmp_path)
    other = world.write_playbook("other", OTHER.replace("hosts:", "hostz:"))
    code, out, err = _run(world, capsys)
    assert code == ExitCode.OK, out + err
    assert "changed: [local] say hello" in out
    assert f"{other}:" in err and "hostz" in err
    assert (f"warning: the configuration on disk has 1 error(s) (above); playbook 'hello' runs from the files "
            f"that are valid (left out: {other})") in err


def test_a_broken_playbook_runs_as_it_was_in_the_last_good_configuration(
        tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    world = _world(tmp_path)
    source = ConfigSource(world.inventory, [world.playbooks], env={})
    chosen, _ = source.choose(("disk",))
    assert chosen is not None and source.save_last_good(chosen.config) is None
    hello = world.write_playbook("hello", HELLO.replace("argv:", "argvv:"))
    code, out, err = _run(world, capsys)
    assert code == ExitCode.OK, out + err
    assert f"{hello}:" in err and "argvv" in err
    assert "playbook 'hello' runs from the last good configuration, saved " in err

    (world.var / "last-good-config.json").unlink()  # and without it: refused, nothing run
    code, out, err = _run(world, capsys)
    assert code == ExitCode.CONFIG
    assert "neither a valid part nor a last good configuration" in err
    assert "PLAY [hello]" not in out


def test_the_local_inbox_reads_its_settings_from_the_last_good_configuration_when_the_inventory_breaks(
        tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """supervisord runs `agent inbox`: an exit on a broken inventory was a crash loop, and the
    page that says the inventory is broken had no receiver."""
    import json

    from agent import stack

    # the receiver's URL templated: a URL written literally is a secret, and an inventory holding
    # one is kept in the last good configuration as its checksum only (nothing to fall back on)
    world = AgentWorld(tmp_path / "world", "unix:///nonexistent.sock", "json://{{ inbox.host }}:9/")
    world.write_playbook("hello", HELLO)
    source = ConfigSource(world.inventory, [world.playbooks], env={})
    chosen, _ = source.choose(("disk",))
    assert chosen is not None and source.save_last_good(chosen.config) is None
    settings = stack.locate(inventory=world.inventory).settings
    assert settings.path(settings.inbox.file).is_relative_to(world.root)  # the settings file's, not the cwd's
    received = settings.path(settings.inbox.file)
    received.parent.mkdir(parents=True, exist_ok=True)
    received.write_text(json.dumps({"received_at": "then", "type": "warning", "title": "[CONFIG] seen"}) + "\n")
    world.inventory.unlink()
    world.inventory.symlink_to(world.inventory.name)

    code = main(["inbox", "--show", "--inventory", str(world.inventory)])
    out = capsys.readouterr()
    assert code == ExitCode.OK, out.out + out.err
    assert "[CONFIG] seen" in out.out
    err = " ".join(out.err.split())
    assert "inventory.yaml: a symbolic link that loops" in err
    assert "using the settings of what the agent runs on" in err


WATCHED = """\
version: 1
name: watched
hosts: local
schedule: {every: 1h}
checks:
  - name: the watched thing
    command: {argv: ["true"]}
    expect: "rc == 0"
"""


def test_status_shows_the_last_good_configuration_the_agent_runs_not_the_valid_part(
        tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """Issue 15, F4: with a playbook broken on disk the agent runs (and alerts on) its checks
    from the last good configuration; `agent status` read only the valid files and said there
    were no such checks."""
    world = _world(tmp_path)
    world.write_playbook("watched", WATCHED)
    source = ConfigSource(world.inventory, [world.playbooks], env={})
    chosen, _ = source.choose(("disk",))
    assert chosen is not None and source.save_last_good(chosen.config) is None
    world.write_playbook("watched", WATCHED + "  - bad: [\n")
    Store(world.store_url).migrate()
    code = main(["status", "--inventory", str(world.inventory), "--store", world.store_url])
    out = capsys.readouterr()
    err = " ".join(out.err.split())
    assert code == ExitCode.OK, out.out + err
    assert "the watched thing" in out.out, out.out
    assert "this command runs from the last good configuration, saved " in err, err
