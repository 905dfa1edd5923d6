"""Who watches the agent (heartbeat pings) and the info digest, with a real agent process."""
from __future__ import annotations

import time

import pytest

from tests.e2e.harness import AgentWorld, wait_until
from tests.support.receivers import JsonReceiver

pytestmark = pytest.mark.slow

INFO_CHECKS = """
version: 1
name: hygiene
hosts: local
schedule: {every: 1s}
checks:
  - name: stale temp files
    command: {argv: ["false"]}
    expect: "rc == 0"
    severity: info
  - name: old rotated logs
    command: {argv: ["false"]}
    expect: "rc == 0"
    severity: info
"""


def test_heartbeat_pings_and_its_secret_stays_out_of_logs(tmp_path, supervisor, receiver, monkeypatch):
    with JsonReceiver() as pings:
        monkeypatch.setenv("HB_TOKEN", "hb-secret-4f9a7c21e0")
        world = AgentWorld(tmp_path / "w", supervisor.url, receiver.url, extra_inventory={
            "heartbeat": {"url": f"http://127.0.0.1:{pings.port}/ping/{{{{ env.HB_TOKEN }}}}", "every": "1s"}})
        # A directory without any playbook is refused at load; the heartbeat needs no check.
        world.write_playbook("idle", "version: 1\nname: idle\nhosts: local\ntasks:\n  - name: nothing\n"
                                     "    command: {argv: [\"true\"]}\n")
        try:
            world.start()
            got = pings.wait_for(2, 20)
            assert got[0]["raw"] == "botwarden agent alive"
            pings.failing = True  # the dead-man's switch service has a bad day: logged, redacted
            wait_until(lambda: pings.rejected >= 2, 20, what="two failed pings")
            pings.failing = False
            n = len(pings.messages)
            pings.wait_for(n + 1, 20)  # and it keeps pinging afterwards
            world.stop()
            log = world.log()
            assert "heartbeat to" in log and "failed" in log
            assert "hb-secret-4f9a7c21e0" not in log
            kinds = [e.message for e in world.events("heartbeat")]
            assert any("failed" in m for m in kinds) and any("delivered" in m for m in kinds)
        finally:
            world.stop()


def test_info_findings_arrive_as_one_digest(tmp_path, supervisor, receiver):
    world = AgentWorld(tmp_path / "w", supervisor.url, receiver.url, extra_inventory={"notify": {
        "targets": {"hook": {"url": receiver.url}},
        "routes": [{"name": "default", "targets": ["hook"]}],
        "group_wait": "0s",
        "digest": {"every": "4s"},
    }})
    world.write_playbook("hygiene", INFO_CHECKS)
    try:
        world.start()
        [digest] = receiver.wait_for(1, 30)
        assert digest["title"].startswith("[DIGEST] 2 info finding(s)")
        assert "stale temp files" in digest["message"] and "old rotated logs" in digest["message"]
        time.sleep(2)
        assert len(receiver.messages) == 1  # never one message per finding
    finally:
        world.stop()
