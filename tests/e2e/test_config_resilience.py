"""Broken configuration files never take the guard down (real agent process, supervisord, receiver).

At any moment, whatever is in the configuration tree: the agent reports it (file:line:col or
the path and what it is), keeps guarding on the last good configuration, and tells the operator
once; a restart (supervisorctl restart agent, a reboot) with broken files starts on the last
good configuration instead of exiting, and without one it still comes up far enough to page.
"""
from __future__ import annotations

import os

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
OTHER = """
version: 1
name: other
hosts: local
schedule: {every: 1s}
checks:
  - name: always fine
    command: {argv: ["true"]}
    expect: "rc == 0"
"""
KEY = "watch/local/worker running"


def _stop(sup, program="worker"):
    with sup.proxy() as p:
        p.supervisor.stopProcess(program)


def _wait_ok(world, key=KEY):
    return wait_until(lambda: (s := world.state(key)) and s.hard_state.name == "OK" and s, 30,
                      what=f"an OK result of {key}")


def _config_titles(receiver):
    return [m["title"] for m in receiver.messages if m["title"].startswith("[CONFIG]")]


def _started(world, n):
    try:
        wait_until(lambda: world.log().count("agent started:") >= n, 60, what=f"agent start number {n}")
    except TimeoutError:
        raise AssertionError(f"agent start number {n} not seen:\n{world.log()[-4000:]}") from None


def test_a_symlink_loop_in_playbooks_is_rejected_and_later_edits_still_reload(world, supervisor, receiver):
    world.write_playbook("watch", WATCH)
    world.start()
    _wait_ok(world)
    loop = world.playbooks / "loop.yaml"
    loop.symlink_to("loop.yaml")
    [notice] = receiver.wait_for(1, 30)
    assert notice["title"].startswith("[CONFIG] reload rejected")
    assert f"{loop}: error: a symbolic link that loops" in notice["message"]
    world.assert_alive()

    loop.unlink()  # fixed, and a new playbook: the watcher is still there to load it
    world.write_playbook("other", OTHER)
    _wait_ok(world, "other/local/always fine")
    assert any("configuration reloaded" in e.message for e in world.events("reload"))
    assert "background task reload failed" not in world.log()


def test_a_restart_with_a_broken_playbook_runs_on_the_last_good_configuration_and_pages_once(
        world, supervisor, receiver):
    world.write_playbook("watch", WATCH)
    path = world.write_playbook("other", OTHER)
    world.start()
    _wait_ok(world)
    assert world.stop() == 0
    path.write_text(OTHER.replace("expect:", "expectt:"))

    world.start()  # what supervisorctl restart agent, or a reboot, does
    _started(world, 2)
    [page] = wait_until(lambda: _config_titles(receiver), 30, what="the [CONFIG] page")
    assert page.startswith("[CONFIG] running on last good configuration from ")
    assert f"{path}:" in page and "unknown key 'expectt'" in page
    world.assert_alive()
    _stop(supervisor)  # the last good configuration guards: the worker's stop is alerted
    wait_until(lambda: any("worker running" in m["title"] and "CRITICAL" in m["title"]
                           for m in receiver.messages), 30, what="the alert of the stopped worker")

    assert world.stop() == 0
    world.start()  # again, same broken file: not paged a second time
    _started(world, 3)
    world.assert_alive()
    assert len([n for n in world.notifications() if n.title.startswith("[CONFIG]")]) == 1

    path.write_text(OTHER)  # fixed: loaded as soon as it is valid
    wait_until(lambda: world.events("reload"), 30, what="the reload of the fixed files")


def test_without_any_last_good_configuration_the_agent_still_comes_up_and_pages(world, supervisor, receiver):
    world.write_playbook("watch", WATCH)
    broken = world.write_playbook("other", OTHER.replace("hosts: local", "hosts: nowhere"))
    world.start()
    [page] = wait_until(lambda: _config_titles(receiver), 60, what="the [CONFIG] page")
    assert "no last good configuration: running only the valid part" in page
    assert f"{broken}:" in page and "no host or group named 'nowhere'" in page
    _wait_ok(world)  # the valid playbook guards
    world.assert_alive()

    os.unlink(world.inventory)
    world.inventory.symlink_to(world.inventory.name)  # and now the inventory too
    assert world.stop() == 0
    world.start()
    _started(world, 2)
    world.assert_alive()
    assert "the agent cannot guard" in world.log()
