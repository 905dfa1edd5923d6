"""A check whose reading failed runs again soon, not at its next interval (Nagios'
``retry_interval``), and a probe that timed out is told only once a retry confirms it
(agent/engine/retries.py), on the real agent.

agent-killed-mid-remediation, seed 3238103997: after the agent restart on a loaded machine the
exchange credentials check (every 5 minutes) timed out once, was told at once as UNKNOWN and
stayed so for its whole interval: a message for nothing, never resolved within the run."""
from __future__ import annotations

import sys
import time
from pathlib import Path

import pytest

from tests.e2e.harness import AgentWorld, wait_until

pytestmark = pytest.mark.slow

ONCE = """
import os, sys, time
flag, what = sys.argv[1], sys.argv[2]
if not os.path.exists(flag):
    open(flag, "w").close()
    if what == "slow":
        time.sleep(30)   # past the check's timeout: the probe times out, what it probes is fine
    else:
        sys.exit(1)      # a definite failure
print("ok")
"""

PLAY = """
version: 1
name: rare
hosts: local
schedule: {{every: 5m}}
checks:
  - name: slow once
    command: {{argv: ["{py}", "{script}", "{root}/slow.flag", "slow"]}}
    expect: "rc == 0"
    timeout: 2s
  - name: fails once
    command: {{argv: ["{py}", "{script}", "{root}/fails.flag", "fails"]}}
    expect: "rc == 0"
"""


def test_a_failed_reading_is_read_again_soon_and_a_timeout_is_told_only_when_confirmed(
        tmp_path: Path, supervisor, receiver) -> None:
    script = tmp_path / "once.py"
    script.write_text(ONCE)
    world = AgentWorld(tmp_path / "world", supervisor.url, receiver.url, extra_inventory={"notify": {
        "targets": {"hook": {"url": receiver.url}},
        "routes": [{"name": "default", "targets": ["hook"], "group_wait": "0s"}],
        "group_wait": "0s", "group_interval": "1s"}})
    def read(check: str) -> list[tuple[str, str | None]]:
        return [(r.state.name, r.error) for r in reversed(world.results(check))]  # oldest first

    world.write_playbook("rare", PLAY.format(py=sys.executable, script=script, root=tmp_path))
    try:
        world.start()
        # Both read again well inside their 5 minute interval, and read OK then.
        for check in ("slow once", "fails once"):
            wait_until(lambda c=check: len(read(c)) >= 2 and read(c)[-1][0] == "OK", 60,
                       what=lambda c=check: f"{c} read again OK: {read(c)}")
        wait_until(lambda: len(receiver.messages) >= 2, 30, what=lambda: f"2 messages: {receiver.messages}")
        time.sleep(3)
        titles = [m["title"] for m in receiver.messages]
        # the definite failure is told and resolved; the timeout, read fine on its retry, never
        assert titles == ["[CRITICAL] fails once on local", titles[1]], titles
        assert titles[1].startswith("[RESOLVED] fails once on local"), titles
        slow = read("slow once")
        assert "timed out" in (slow[0][1] or ""), slow
        assert world.state("rare/local/slow once").hard_state.name == "OK"
        world.assert_alive()
    finally:
        world.stop()
