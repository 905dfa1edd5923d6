"""Issue 2's acceptance, end to end: real supervisord, real agent process, real receiver."""
from __future__ import annotations

import itertools
import time

import pytest

from tests.e2e.harness import wait_until

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
    severity: critical
"""

KEY = "watch/local/worker running"


def _stop(sup, program="worker"):
    with sup.proxy() as p:
        p.supervisor.stopProcess(program)


def _start(sup, program="worker"):
    with sup.proxy() as p:
        p.supervisor.startProcess(program)


def _wait_ok(world):
    return wait_until(lambda: (s := world.state(KEY)) and s.hard_state.name == "OK" and s, 20,
                      what="the first OK result")


def test_stop_alerts_once_and_start_resolves_once(world, supervisor, receiver):
    world.write_playbook("watch", WATCH)
    world.start()
    _wait_ok(world)
    assert receiver.messages == []

    _stop(supervisor)
    [alert] = receiver.wait_for(1, 20)
    assert "CRITICAL" in alert["title"] and "worker running" in alert["title"]
    time.sleep(3)  # three more failing results: still one alert
    assert len(receiver.messages) == 1

    _start(supervisor)
    msgs = receiver.wait_for(2, 20)
    assert "RESOLVED" in msgs[1]["title"].upper()
    time.sleep(2)
    assert len(receiver.messages) == 2
    world.assert_alive()


def test_receiver_down_while_alert_fires_arrives_exactly_once(world, supervisor, receiver):
    world.write_playbook("watch", WATCH)
    world.start()
    _wait_ok(world)
    receiver.stop()
    _stop(supervisor)
    wait_until(lambda: any(n.attempts >= 1 and n.status != "sent" for n in world.notifications(kind="alert")),
               20, what="a failed delivery attempt")
    receiver.start()
    [alert] = receiver.wait_for(1, 60)
    assert "worker running" in alert["title"]
    time.sleep(3)
    assert len(receiver.messages) == 1
    assert [n.status for n in world.notifications(kind="alert")] == ["sent"]


def test_agent_killed_during_incident_no_duplicate_and_resolve_still_sent(world, supervisor, receiver):
    world.write_playbook("watch", WATCH)
    world.start()
    _wait_ok(world)
    _stop(supervisor)
    receiver.wait_for(1, 20)
    # Killed during the open incident, once the delivery is recorded (a kill between a target
    # accepting a message and the outbox recording it is the one documented at-least-once window).
    wait_until(lambda: [n.status for n in world.notifications(kind="alert")] == ["sent"], 10,
               what="the alert recorded as sent")
    world.kill()
    world.start()
    time.sleep(4)  # the restarted agent sees the same CRITICAL several times
    assert len(receiver.messages) == 1
    _start(supervisor)
    msgs = receiver.wait_for(2, 20)
    assert "RESOLVED" in msgs[1]["title"].upper()
    time.sleep(2)
    assert len(receiver.messages) == 2


REMEDIATE = """
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
      - name: restart the worker
        supervisor: {action: restart, program: worker}
"""


def test_remediation_restarts_a_stopped_program(world, supervisor, receiver):
    world.write_playbook("watch", REMEDIATE)
    world.start()
    _wait_ok(world)
    _stop(supervisor)
    wait_until(lambda: supervisor.info("worker")["statename"] == "RUNNING" and world.action_runs(), 20,
               what="the worker restarted by the remediation")
    [run] = world.action_runs()
    assert run.changed and not run.failed and not run.check_mode
    assert "worker running" in run.reason and "CRITICAL" in run.reason


def test_remediation_in_check_mode_only_reports(world, supervisor, receiver):
    world.write_playbook("watch", REMEDIATE)
    world.start("--check")
    _wait_ok(world)
    _stop(supervisor)
    run = wait_until(lambda: world.action_runs(), 20, what="the previewed remediation")[0]
    assert run.check_mode and run.changed and not run.failed
    assert "would" in run.msg
    time.sleep(2)
    assert supervisor.info("worker")["statename"] == "STOPPED"


def test_broken_reload_keeps_last_good_config_and_says_so_once(world, supervisor, receiver):
    path = world.write_playbook("watch", WATCH)
    world.start()
    _wait_ok(world)
    path.write_text(WATCH.replace("expect:", "expectt:"))
    notice = receiver.wait_for(1, 20)[0]
    assert "rejected" in (notice["title"] + notice["message"]).lower()
    assert "expectt" in notice["message"]
    path.write_text(WATCH.replace("expect:", "expectt:") + "\n")  # same errors again: no second notice
    time.sleep(3)
    assert len(receiver.messages) == 1
    _stop(supervisor)  # the last good config still runs
    msgs = receiver.wait_for(2, 20)
    assert "worker running" in msgs[1]["title"]
    world.assert_alive()


HUNG = """
version: 1
name: mixed
hosts: local
schedule: {every: 1s}
checks:
  - name: hangs
    command: {argv: [sleep, "30"]}
    expect: "rc == 0"
    timeout: 6s
  - name: worker running
    supervisor: {program: worker}
    expect: "running"
"""


def test_hung_check_does_not_delay_the_others(world, supervisor, receiver):
    world.write_playbook("mixed", HUNG)
    world.start()
    wait_until(lambda: len(world.results("worker running")) >= 8, 30, what="8 results of the healthy check")
    times = sorted(r.observed_at for r in world.results("worker running"))
    gaps = [(b - a).total_seconds() for a, b in itertools.pairwise(times)]
    # Every 1s, whatever the hung check does (it times out after 6s, each time).
    assert max(gaps) < 2.5, gaps
    hung = wait_until(lambda: world.results("hangs"), 20, what="the hung check's UNKNOWN")
    assert hung[0].state.name == "UNKNOWN" and "timed out" in (hung[0].error or "")


SCHEDULED = """
version: 1
name: report
hosts: local
schedule: {every: 2s}
tasks:
  - name: say hello
    notify: {title: "scheduled hello from {{ host }}", body: "tasks run on the play's schedule"}
"""

SCHEDULED_FAILING = """
version: 1
name: nightly
hosts: local
schedule: {every: 2s}
tasks:
  - name: a step that fails
    command: {argv: ["sh", "-c", "echo disk full >&2; exit 1"]}
"""


def test_scheduled_tasks_run_on_schedule_and_failures_are_told(world, supervisor, receiver):
    world.write_playbook("report", SCHEDULED)
    world.write_playbook("nightly", SCHEDULED_FAILING)
    world.start()
    msgs = receiver.wait_for(3, 30)
    titles = [m["title"] for m in msgs]
    assert "scheduled hello from local" in titles
    assert any("[FAILED] scheduled playbook nightly" in t for t in titles)
    runs = world.action_runs()
    assert {r.actor for r in runs} == {"agent (schedule)"}
    assert any(r.task == "a step that fails" and r.failed for r in runs)
