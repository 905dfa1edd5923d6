"""Issue 4's acceptance: alerts people trust and remediation that cannot run away.

Real supervisord, the real agent process, a real json:// receiver. Every scenario restarts
the agent in its middle and asserts the same outcome (the lifecycle lives in the store).
Windows are scaled down (group_wait 2s, budget window 2m, escalation after 5s).
"""
from __future__ import annotations

import os
import signal
import subprocess
import time
from pathlib import Path
from typing import Any

import pytest

from tests.e2e.harness import BIN, AgentWorld, wait_until

pytestmark = pytest.mark.slow


def _notify(receiver_url: str, **route: Any) -> dict[str, Any]:
    return {"notify": {
        "targets": {"hook": {"url": receiver_url}},
        "routes": [{"name": "pager", "match": {"tags": ["escalation-only"]}, "targets": ["hook"]},
                   {"name": "default", "targets": ["hook"], **route}],
        "group_wait": "2s", "group_interval": "30s",
    }}


@pytest.fixture
def make_world(tmp_path: Path, supervisor, receiver):
    worlds: list[AgentWorld] = []

    def make(**route: Any) -> AgentWorld:
        w = AgentWorld(tmp_path / "world", supervisor.url, receiver.url, extra_inventory=_notify(receiver.url, **route))
        worlds.append(w)
        return w

    yield make
    for w in worlds:
        w.stop()


def _titles(receiver) -> list[str]:
    return [m["title"] for m in receiver.messages]


def _restart(world: AgentWorld) -> None:
    world.stop()
    world.start()


def _cli(world: AgentWorld, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([str(BIN / "agent"), *args, "--inventory", str(world.inventory), "--store", world.store_url],
                          cwd=world.root, capture_output=True, text=True, timeout=60,
                          env={**os.environ, "COLUMNS": "250"})


CRASH = """
version: 1
name: watch
hosts: local
schedule: {every: 1s}
checks:
  - name: worker running
    supervisor: {program: worker}
    expect: "running"
    remediate: [restart-worker]
remediations:
  restart-worker:
    steps:
      - name: start the crashed worker
        supervisor: {action: start, program: worker}
    budget: {max: 3, within: 2m, then: handover}
    cooldown: 1s
"""
HANDOVER = """
version: 1
name: handover
hosts: local
tasks:
  - name: leave a mark
    command: {argv: [touch, "{{ mark }}"]}
"""


def test_crash_loop_restarts_exactly_the_budget_then_hands_over_and_pages_once(make_world, supervisor, receiver):
    world = make_world()
    mark = world.root / "handover-ran"
    world.write_playbook("watch", CRASH)
    world.write_playbook("handover", HANDOVER.replace("{{ mark }}", str(mark)))
    world.start()
    wait_until(lambda: (s := world.state("watch/local/worker running")) and s.hard_state.name == "OK", 20,
               what="the first OK")
    kills, restarted_agent = 0, False
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:  # kill the worker whenever it runs, every ~3s
        info = supervisor.info("worker")
        if info["statename"] == "RUNNING":
            os.kill(info["pid"], signal.SIGKILL)
            kills += 1
        if kills == 2 and not restarted_agent:
            wait_until(lambda: len(world.events("remediation-run")) == 2, 20, what="two restarts")
            _restart(world)  # the budget survives the restart
            restarted_agent = True
        if mark.exists():
            break
        time.sleep(3)
    wait_until(mark.exists, 20, what="the handover playbook")
    time.sleep(6)  # killing goes on in vain: no further restart, no second page
    runs = [r for r in world.action_runs() if r.task.startswith("restart-worker") and r.changed]
    assert len(runs) == 3, [(r.task, r.msg) for r in world.action_runs()]
    assert len(world.events("remediation-handover")) == 1
    pages = [t for t in _titles(receiver) if t.startswith("[PAGE]")]
    assert len(pages) == 1, _titles(receiver)
    assert supervisor.info("worker")["statename"] != "RUNNING"


def _flappy(settled: str, remediate: str = "") -> str:
    """A check that alternates fail/pass each run until ``{d}/<file>`` exists, then ``settled``
    (``"steady": exit 0`` passes from then on, ``"broken": exit 1`` fails)."""
    name, rc = settled.split(": exit ")
    return f"""
version: 1
name: flappy
hosts: local
schedule: {{every: 1s}}
checks:
  - name: flappy
    command: {{argv: [sh, -c, "[ -f {{d}}/{name} ] && exit {rc}; if [ -f {{d}}/f ]; then rm {{d}}/f; exit 1; else touch {{d}}/f; exit 0; fi"]}}
    expect: "rc == 0"
    flapping: {{window: 6, start: 40, stop: 20}}
""" + remediate


FLAPPY = _flappy("steady: exit 0")

def test_a_flapping_check_gives_one_flapping_and_one_settled_notice(make_world, receiver):
    world = make_world()
    world.write_playbook("flappy", FLAPPY.replace("{d}", str(world.root)))
    world.start()
    wait_until(lambda: [t for t in _titles(receiver) if t.startswith("[FLAPPING]")], 30, what="the flapping notice")
    _restart(world)  # the flapping window is persisted: no second notice
    time.sleep(5)
    (world.root / "steady").touch()
    wait_until(lambda: [t for t in _titles(receiver) if t.startswith("[SETTLED]")], 30, what="the settled notice")
    time.sleep(3)
    titles = _titles(receiver)
    assert [t.split("]")[0] + "]" for t in titles] == ["[FLAPPING]", "[SETTLED]"], titles


FLAPPY_MENDED = _flappy("broken: exit 1", """    remediate: [mend]
remediations:
  mend:
    steps:
      - name: leave a mark
        command: {argv: [sh, -c, "echo ran >> {d}/mended"]}
    budget: {max: 20, within: 2m}
""")

def test_a_check_that_settles_from_flapping_into_a_failure_is_remediated_once(make_world, receiver):
    """Remediation is paused while a check flaps; when it settles into a steady failure no new
    transition announces it, yet the failure is real: remediation runs again, once."""
    world = make_world()
    world.write_playbook("flappy", FLAPPY_MENDED.replace("{d}", str(world.root)))
    mended = world.root / "mended"
    world.start()
    wait_until(lambda: [t for t in _titles(receiver) if t.startswith("[FLAPPING]")], 30, what="the flapping notice")
    wait_until(lambda: world.events("remediation-paused"), 20, what="remediation paused while flapping")
    (world.root / "broken").touch()
    ran_before = mended.read_text().count("ran") if mended.exists() else 0
    wait_until(lambda: [t for t in _titles(receiver) if t.startswith("[SETTLED]")], 30, what="the settled notice")
    wait_until(lambda: mended.exists() and mended.read_text().count("ran") == ran_before + 1, 10,
               what="remediation after settling")
    time.sleep(4)  # still failing, no new transition: no further run
    assert mended.read_text().count("ran") == ran_before + 1
    assert world.state("flappy/local/flappy").hard_state.name == "CRITICAL"

FIVE = """
version: 1
name: five
hosts: local
schedule: {every: 1s}
checks:
""" + "".join(f"""
  - name: check {i}
    command: {{argv: [test, -f, "{{ok}}"]}}
    expect: "rc == 0"
""" for i in range(1, 6))


def test_five_checks_failing_together_give_one_grouped_message(make_world, receiver):
    # The restart below must fit inside group_wait: 2 s is less than a stop and start of the
    # agent on a loaded 2-core machine (measured 2.3 s), so this route waits 8 s.
    world = make_world(group_wait="8s")
    ok = world.root / "ok"
    ok.touch()
    world.write_playbook("five", FIVE.replace("{ok}", str(ok)))
    world.start()
    wait_until(lambda: len(world.states()) == 5 and all(s.hard_state.name == "OK" for s in world.states().values()),
               20, what="five OK checks")
    ok.unlink()
    wait_until(lambda: sum(s.hard_state.name == "CRITICAL" for s in world.states().values()) >= 1, 10,
               what="the first hard failure")
    _restart(world)  # inside group_wait: the group is not lost nor split
    [msg] = receiver.wait_for(1, 30)
    assert msg["title"].startswith("[CRITICAL] 5 problems on local"), msg["title"]
    assert all(f"check {i}" in msg["message"] for i in range(1, 6))
    time.sleep(4)
    assert len(receiver.messages) == 1
    ok.touch()
    msgs = receiver.wait_for(2, 30)
    assert msgs[1]["title"].startswith("[RESOLVED] 5 problems on local"), msgs[1]["title"]
    time.sleep(3)
    assert len(receiver.messages) == 2
    incident = world.notifications(kind="alert")[0].incident_id
    out = _cli(world, "explain", str(incident))
    assert out.returncode == 0, out.stderr
    assert "told" in out.stdout and "observed" in out.stdout and "5 problems" in out.stdout


TWO = """
version: 1
name: esc
hosts: local
schedule: {every: 1s}
checks:
  - name: unacked
    command: {argv: [test, -f, "{ok}/a"]}
    expect: "rc == 0"
  - name: acked
    command: {argv: [test, -f, "{ok}/b"]}
    expect: "rc == 0"
"""


def test_escalation_fires_when_unacknowledged_and_not_after_ack(make_world, receiver):
    # The ack and the restart below must land before the escalation: an `agent ack` and an agent
    # restart take several seconds each on a loaded 2-core machine (pytest-xdist), hence 20 s.
    world = make_world(escalate=[{"after": "20s", "to": "pager"}])
    for name in ("a", "b"):
        (world.root / name).touch()
    world.write_playbook("esc", TWO.replace("{ok}", str(world.root)))
    world.start()
    wait_until(lambda: len(world.states()) == 2, 20, what="both checks")
    (world.root / "a").unlink()
    (world.root / "b").unlink()
    [alert] = receiver.wait_for(1, 20)
    assert "2 problems" in alert["title"]
    acked = world.state("esc/local/acked").incident_id
    out = _cli(world, "ack", str(acked), "--comment", "on it")
    assert out.returncode == 0, out.stderr
    _restart(world)  # the ack and the escalation level survive
    wait_until(lambda: [t for t in _titles(receiver) if t.startswith("[ESCALATED]")], 45, what="the escalation")
    time.sleep(5)
    escalated = [t for t in _titles(receiver) if t.startswith("[ESCALATED]")]
    assert len(escalated) == 1 and "unacked" in escalated[0], _titles(receiver)
    assert world.notifications(kind="alert")[-1].route == "pager"


SILENCED = """
version: 1
name: quiet
hosts: local
schedule: {every: 1s}
checks:
  - name: silenced check
    command: {argv: [test, -f, "{ok}"]}
    expect: "rc == 0"
"""


def test_a_silence_suppresses_is_recorded_and_the_alert_follows_its_end(make_world, receiver):
    world = make_world()
    ok = world.root / "ok"
    ok.touch()
    world.write_playbook("quiet", SILENCED.replace("{ok}", str(ok)))
    world.start()
    wait_until(lambda: world.states(), 20, what="the check")
    out = _cli(world, "silence", "host=local", "check=silenced*", "--for", "12s", "--reason", "drill")
    assert out.returncode == 0, out.stderr
    ok.unlink()
    wait_until(lambda: world.events("suppressed"), 20, what="the suppression recorded")
    assert "silence #1: drill" in world.events("suppressed")[0].message
    _restart(world)  # the silence survives: still nothing sent
    time.sleep(3)
    assert receiver.messages == []
    [alert] = receiver.wait_for(1, 30)  # the silence ended and it still fails: sent
    assert alert["title"] == "[CRITICAL] silenced check on local"
    history = _cli(world, "history", "--since", "1h")
    assert history.returncode == 0 and "silenced check" in history.stdout


INHIBIT = """
version: 1
name: svc
hosts: local
schedule: {every: 1s}
checks:
  - name: worker running
    supervisor: {program: worker}
    expect: "running"
""" + "".join(f"""
  - name: dependent {i}
    supervisor: {{program: worker}}
    expect: "running"
    after: 2
    depends_on: [worker running]
""" for i in range(1, 4))


def test_parent_down_gives_one_alert_listing_its_suppressed_dependents(make_world, supervisor, receiver):
    world = make_world()
    world.write_playbook("svc", INHIBIT)
    world.start()
    wait_until(lambda: len(world.states()) == 4, 20, what="four checks")
    with supervisor.proxy() as p:
        p.supervisor.stopProcess("worker")
    wait_until(lambda: world.events("suppressed"), 20, what="a dependent inhibited")
    _restart(world)
    [alert] = receiver.wait_for(1, 30)
    assert alert["title"] == "[CRITICAL] worker running on local", alert["title"]
    assert all(f"dependent {i}" in alert["message"] for i in range(1, 4))
    time.sleep(5)
    assert len(receiver.messages) == 1, _titles(receiver)
    assert {e.message for e in world.events("suppressed")} >= {"not sent: inhibited by worker running (#1)"}
