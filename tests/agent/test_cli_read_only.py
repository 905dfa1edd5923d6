"""Commands that read the agent's state work in a fresh shell without its notification secrets.

A template that reads ``{{ env.X }}`` without a default needs ``X`` where the resident agent
runs; ``agent status``, ``explain``, ``history``, ``ack`` and ``silence`` read the store and
send nothing, so they must not refuse to start (they used to exit 3) when the operator's shell
lacks it: they work and say which variables they went without. Commands that send or run
(``validate``, ``run``, ``run-playbook``) still refuse.
"""
from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

import pytest

from agent.cli.main import main
from agent.core.states import State
from agent.store import Store
from tests.e2e.harness import AgentWorld

SECRETS = ("BW_TEST_SLACK_URL", "BW_TEST_HEARTBEAT", "BW_TEST_API_TOKEN", "BW_TEST_TIMEOUT", "BW_TEST_HOST")
PLAYBOOK = """\
version: 1
name: p
hosts: local
schedule: {every: 10s}
vars:
  token: "{{ env.BW_TEST_API_TOKEN }}"
checks:
  - name: api answers
    http:
      url: "http://{{ env.BW_TEST_HOST }}:9/health"
      headers: {Authorization: "Bearer {{ token }}"}
      timeout: "{{ env.BW_TEST_TIMEOUT }}"
    expect: "status_code == 200"
tasks:
  - name: tell
    notify: {title: "hi {{ env.BW_TEST_API_TOKEN }}", body: x}
"""


@pytest.fixture
def world(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> AgentWorld:
    for name in SECRETS:
        monkeypatch.delenv(name, raising=False)
    world = AgentWorld(tmp_path / "world", "unix:///nonexistent.sock", "{{ env.BW_TEST_SLACK_URL }}",
                       extra_inventory={"heartbeat": {"url": "{{ env.BW_TEST_HEARTBEAT }}", "every": "1m"}})
    world.write_playbook("p", PLAYBOOK)
    store = Store(world.store_url)
    store.migrate()
    store.open_incident(play="p", host="local", check="api answers", state=State.CRITICAL, severity="critical",
                        opened_at=datetime.now(UTC), summary="down")
    store.close()
    return world


@pytest.mark.parametrize("args", [["status"], ["status", "--problems"], ["explain", "1"], ["history"],
                                  ["silence", "--list"], ["ack", "1"]])
def test_reading_commands_work_without_the_secrets_and_name_them(
        world: AgentWorld, args: list[str], capsys: pytest.CaptureFixture[str]) -> None:
    code = main([*args, "--inventory", str(world.inventory), "--store", world.store_url])
    out, err = capsys.readouterr()

    assert code == 0, out + err
    warning = next(line for line in err.splitlines() if line.startswith("warning:"))
    for name in ("BW_TEST_SLACK_URL", "BW_TEST_HEARTBEAT", "BW_TEST_HOST", "BW_TEST_TIMEOUT"):
        assert f"${name}" in warning
    assert "error" not in err
    if args == ["status"]:
        assert "api answers" in out


def test_with_the_secrets_set_nothing_is_said(world: AgentWorld, monkeypatch: pytest.MonkeyPatch,
                                              capsys: pytest.CaptureFixture[str]) -> None:
    for name, value in zip(SECRETS, ("json://127.0.0.1:9/", "http://127.0.0.1:9/ping", "t0ken-t0ken",
                                     "2s", "127.0.0.1"), strict=True):
        monkeypatch.setenv(name, value)
    code = main(["status", "--inventory", str(world.inventory), "--store", world.store_url])
    out, err = capsys.readouterr()
    assert code == 0, out + err
    assert "warning" not in err and "api answers" in out


@pytest.mark.parametrize("args", [["validate"], ["run-playbook", "p", "--check"]])
def test_commands_that_send_or_run_still_need_them(world: AgentWorld, args: list[str],
                                                   capsys: pytest.CaptureFixture[str]) -> None:
    code = main([*args, "--inventory", str(world.inventory),
                 *([str(world.playbooks)] if args[0] == "validate" else [])])
    err = capsys.readouterr().err
    assert code in (1, 3), err
    assert "environment variable 'BW_TEST_SLACK_URL' is not set" in err
