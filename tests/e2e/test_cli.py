"""The operator's CLI as a person uses it: real processes, real supervisord, real receiver."""
from __future__ import annotations

import subprocess
from pathlib import Path

import pytest

from tests.e2e.harness import BIN

pytestmark = pytest.mark.slow

TASKS = """
version: 1
name: ops
hosts: local
tasks:
  - name: stop the worker
    supervisor: {action: stop, program: worker}
    register: stopped
  - name: stop it again
    supervisor: {action: stop, program: worker}
  - name: only when something changed
    command: {argv: ["true"]}
    when: "stopped.changed"
  - name: skipped by when
    command: {argv: ["true"]}
    when: "not stopped.changed"
  - name: tell the team
    notify: {title: "ops ran on {{ host }}", body: "worker stopped: {{ stopped.changed }}"}
"""

FAILING = """
version: 1
name: broken-ops
hosts: local
tasks:
  - name: fails but ignored
    command: {argv: ["false"]}
    ignore_errors: true
  - name: fails for real
    command: {argv: ["sh", "-c", "echo boom >&2; exit 3"]}
  - name: never reached
    command: {argv: ["true"]}
"""

CONFIRM = """
version: 1
name: dangerous
hosts: local
confirm: "Really stop everything on {{ host }}?"
tasks:
  - supervisor: {action: stop, program: worker}
"""


def agent(world, *args: str, input: str | None = None) -> subprocess.CompletedProcess[str]:  # noqa: A002 - as subprocess.run
    return subprocess.run([str(BIN / "agent"), *args, "--inventory", str(world.inventory)]
                          if args and args[0] in ("status", "validate") else
                          [str(BIN / "agent"), *args], cwd=world.root, capture_output=True, text=True,
                          timeout=120, input=input)


def run_playbook(world, name: str, *extra: str, input: str | None = None) -> subprocess.CompletedProcess[str]:  # noqa: A002
    return subprocess.run(
        [str(BIN / "agent"), "run-playbook", name, "--inventory", str(world.inventory), "--playbooks",
         str(world.playbooks), "--store", world.store_url, *extra],
        cwd=world.root, capture_output=True, text=True, timeout=120, input=input)


def test_run_playbook_lines_recap_and_delivery(world, supervisor, receiver):
    world.write_playbook("ops", TASKS)
    r = run_playbook(world, "ops")
    assert r.returncode == 0, r.stdout + r.stderr
    out = r.stdout
    assert "changed: [local] stop the worker" in out
    assert "ok: [local] stop it again" in out
    assert "changed: [local] only when something changed" in out
    assert "skipping: [local] skipped by when" in out
    assert "ok=4 changed=3 failed=0 skipped=1" in out.replace("\n", " ")
    assert supervisor.info("worker")["statename"] == "STOPPED"
    [msg] = receiver.wait_for(1, 15)
    assert msg["title"] == "ops ran on local" and "worker stopped: True" in msg["message"]
    runs = world.action_runs()
    assert {r.task for r in runs} >= {"stop the worker", "tell the team"}
    assert all("run-playbook" in r.actor for r in runs)


def test_check_mode_changes_nothing_and_sends_nothing(world, supervisor, receiver):
    world.write_playbook("ops", TASKS)
    # Check mode creates no database (issue 13 F9: refused, exit 4, tests/agent/test_cli_store.py):
    # the agent's store exists here, as it does once `agent run` started.
    from agent.store import Store

    st = Store(world.store_url)
    st.migrate()
    st.close()
    r = run_playbook(world, "ops", "--check")
    assert r.returncode == 0, r.stdout + r.stderr
    assert "check mode" in r.stdout and "would stop worker" in r.stdout
    assert supervisor.info("worker")["statename"] == "RUNNING"
    assert receiver.messages == [] and all(r.check_mode for r in world.action_runs())


def test_failed_task_stops_the_host_and_exits_1(world, supervisor, receiver):
    world.write_playbook("broken-ops", FAILING)
    r = run_playbook(world, "broken-ops")
    assert r.returncode == 1
    assert "failed (ignored): [local] fails but ignored" in r.stdout
    assert "failed: [local] fails for real" in r.stdout and "never reached" not in r.stdout
    assert "Traceback" not in r.stdout + r.stderr


def test_confirmation(world, supervisor, receiver):
    world.write_playbook("dangerous", CONFIRM)
    r = run_playbook(world, "dangerous")  # no terminal, no --yes: refused, nothing done
    assert r.returncode == 5 and "Really stop everything on local?" in r.stderr and "--yes" in r.stderr
    assert supervisor.info("worker")["statename"] == "RUNNING"
    r = run_playbook(world, "dangerous", "--yes")
    assert r.returncode == 0 and supervisor.info("worker")["statename"] == "STOPPED"


def test_unknown_playbook_suggests_the_nearest(world, supervisor, receiver):
    world.write_playbook("ops", TASKS)
    r = run_playbook(world, "opz")
    assert r.returncode == 3 and "did you mean 'ops'" in r.stderr and "Traceback" not in r.stderr


def test_validate_prints_every_error_and_exits_1(world, supervisor, receiver):
    world.write_playbook("a", TASKS.replace("register:", "registr:"))
    world.write_playbook("b", TASKS.replace("name: ops", "name: ops2").replace("hosts: local", "hosts: nowhere"))
    r = agent(world, "validate", str(world.playbooks))
    assert r.returncode == 1
    assert "a.yaml:" in r.stderr and "registr" in r.stderr and "b.yaml:" in r.stderr and "nowhere" in r.stderr
    assert "2 error(s)" in r.stderr and "Traceback" not in r.stderr
    world.write_playbook("a", TASKS)
    (world.playbooks / "b.yaml").unlink()
    r = agent(world, "validate", str(world.playbooks))
    assert r.returncode == 0 and r.stdout.startswith("ok:")


def test_modules_reference_lists_every_module():
    r = subprocess.run([str(BIN / "agent"), "modules"], capture_output=True, text=True, timeout=60)
    assert r.returncode == 0
    from agent.modules.registry import default_registry

    reg = default_registry()
    for name in [*reg.checks, *reg.actions]:
        assert name in r.stdout


def test_unexpected_error_is_labelled_a_bug_without_traceback(tmp_path: Path):
    inv = tmp_path / "inventory.yaml"
    inv.write_text("version: 1\nsettings: missing-settings-dir/\n")
    r = subprocess.run([str(BIN / "agent"), "validate", "--inventory", str(inv), str(tmp_path)],
                       capture_output=True, text=True, timeout=60)
    assert r.returncode in (1, 3) and "Traceback" not in r.stderr

