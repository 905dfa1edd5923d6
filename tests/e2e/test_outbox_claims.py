"""A one-shot run never holds the resident agent's alerts (issue 13, item 4).

Real processes: a resident ``agent run``, a one-shot ``agent run-playbook`` on the same store,
and a slow json receiver (it records each message, then answers 6 s later: within the delivery
timeouts, but the one-shot run's three messages take longer than its 10 s delivery grace).
"""
from __future__ import annotations

import subprocess
import time
from typing import Any

import pytest

from agent.notify.claims import ClaimOwner
from tests.e2e.harness import BIN, AgentWorld, wait_until

pytestmark = pytest.mark.slow

WATCH = """
version: 1
name: watch
hosts: local
schedule: {every: 1s}
checks:
  - name: worker running
    supervisor: {program: worker}
    expect: "running"
"""
NOTE = """
version: 1
name: note
hosts: local
tasks:
  - name: tell the team
    notify: {title: "operator note 1", body: "maintenance starts"}
  - notify: {title: "operator note 2", body: "the bot is paused"}
  - notify: {title: "operator note 3", body: "back in an hour"}
"""


def _inventory(receiver_url: str) -> dict[str, Any]:
    return {"notify": {
        "targets": {"hook": {"url": receiver_url}},
        "routes": [{"name": "default", "targets": ["hook"], "group_wait": "0s"}],
        "group_wait": "0s", "group_interval": "1s",
    }}


def test_a_one_shot_run_on_a_slow_target_does_not_hold_later_alerts_nor_send_twice(supervisor, receiver, tmp_path):
    world = AgentWorld(tmp_path / "world", supervisor.url, receiver.url, extra_inventory=_inventory(receiver.url))
    world.write_playbook("watch", WATCH)
    (tmp_path / "oneshot").mkdir()
    (tmp_path / "oneshot" / "note.yaml").write_text(NOTE)
    try:
        world.start()
        wait_until(lambda: (s := world.state("watch/local/worker running")) and s.hard_state.name == "OK", 30,
                   what="the first OK")
        receiver.delay = 6.0
        r = subprocess.run(
            [str(BIN / "agent"), "run-playbook", "note", "--inventory", str(world.inventory), "--playbooks",
             str(tmp_path / "oneshot"), "--store", world.store_url],
            cwd=world.root, capture_output=True, text=True, timeout=120)
        assert r.returncode == 0, r.stdout + r.stderr
        # The one-shot run is gone: nothing it claimed is left "sending" under its name (what it
        # released the resident agent may be sending already, under its own).
        assert world.proc is not None
        assert all(n.status in ("sent", "pending") or (n.status == "sending" and n.claimed_by and (
            owner := ClaimOwner.parse(n.claimed_by)) and owner.pid == world.proc.pid)
            for n in world.notifications()), world.notifications()
        wait_until(lambda: [n.status for n in world.notifications()] == ["sent"] * 3, 30,
                   what="the run's messages delivered (what it could not, by the resident agent)")
        receiver.delay = 0.0

        with supervisor.proxy() as p:
            p.supervisor.stopProcess("worker")  # a new problem for the same target, while the agent keeps running
        wait_until(lambda: any(m["title"].startswith("[CRITICAL]") for m in receiver.messages), 30,
                   what="the CRITICAL alert")
        world.assert_alive()

        world.stop()  # a restart of the agent sends nothing again
        before = len(world.results("worker running"))
        world.start()
        wait_until(lambda: len(world.results("worker running")) > before, 30, what="checks after the restart")
        time.sleep(3)
        titles = [m["title"] for m in receiver.messages]
        assert sorted(t for t in titles if t.startswith("operator")) == [f"operator note {i}" for i in (1, 2, 3)]
        assert sum(t.startswith("[CRITICAL]") for t in titles) == 1, titles
    finally:
        world.stop()
