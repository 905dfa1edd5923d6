"""One message per target, whichever routes take a host's problems there, with the real agent.

A WARNING (the default route) and a CRITICAL (the critical route, ``group_wait: 0s``) of one host
turning hard together, both routes to one receiver, were two messages there in the same second
(the WARNING waiting its route's group_wait when the CRITICAL paged). The agent process, its store and a json:// receiver (tests/agent/engine/
test_one_message_per_target_grouped.py drives the same through the pipeline).
"""
from __future__ import annotations

import time
from pathlib import Path

from tests.e2e.harness import AgentWorld, wait_until

PLAY = """
version: 1
name: two
hosts: local
schedule: {every: 1s}
checks:
  - name: disk warning
    command: {argv: [test, -f, "WARN"]}
    expect: "rc == 0"
    severity: warning
  - name: bot critical
    command: {argv: [test, -f, "CRIT"]}
    expect: "rc == 0"
    severity: critical
"""


def test_a_warning_and_a_critical_failing_together_are_one_message_and_one_resolve(
        tmp_path: Path, supervisor, receiver) -> None:  # type: ignore[no-untyped-def]
    world = AgentWorld(tmp_path / "world", supervisor.url, receiver.url, extra_inventory={"notify": {
        "targets": {"hook": {"url": receiver.url}},
        "routes": [{"name": "critical", "match": {"severity": ["critical"]}, "targets": ["hook"], "group_wait": "0s"},
                   {"name": "default", "targets": ["hook"]}],
        "group_wait": "3s", "group_interval": "20s",
    }})
    try:
        warn, crit = world.root / "warn", world.root / "crit"
        warn.touch()
        crit.touch()
        world.write_playbook("two", PLAY.replace('"WARN"', f'"{warn}"').replace('"CRIT"', f'"{crit}"'))
        world.start()
        wait_until(lambda: len(world.states()) == 2 and all(s.hard_state.name == "OK" for s in world.states().values()),
                   20, what="two OK checks")
        warn.unlink()  # the WARNING waits the default route's group_wait...
        wait_until(lambda: world.states()["two/local/disk warning"].hard_state.name == "WARNING", 10,
                   what="the hard WARNING")
        crit.unlink()  # ...when the CRITICAL pages: one message to the receiver says both
        [msg] = receiver.wait_for(1, 30)
        time.sleep(5)  # past the default route's group_wait: nothing more
        assert [m["title"] for m in receiver.messages] == [msg["title"]], receiver.messages
        assert msg["title"].startswith("[CRITICAL] 2 problems on local"), msg["title"]
        warn.touch()
        crit.touch()
        receiver.wait_for(2, 40)
        time.sleep(5)
        resolves = [m["title"] for m in receiver.messages[1:]]
        # each problem resolved once there (together, or each as it recovered: a route with
        # group_wait 0s does not wait for the other)
        for check in ("disk warning", "bot critical"):
            assert sum(check in t for t in resolves) == 1, resolves
        assert all(t.startswith("[RESOLVED]") for t in resolves), resolves
    finally:
        world.stop()
