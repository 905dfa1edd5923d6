"""Broken configuration files never take the guard down (real agent process, supervisord, receiver).

At any moment, whatever is in the configuration tree: the agent reports it (file:line:col or
the path and what it is), keeps guarding on the last good configuration, and tells the operator
once; a restart (supervisorctl restart agent, a reboot) with broken files starts on the last
good configuration instead of exiting, and without one it still comes up far enough to page.
"""
from __future__ import annotations

import os
import re

import httpx
import pytest

from tests.e2e.harness import wait_until
from tests.support import loopback

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


def test_one_page_per_breakage_episode_the_same_break_after_a_good_reload_pages_again(world, supervisor, receiver):
    """Broken, fixed (a good reload), broken the exact same way again: a new episode, a new page;
    within an episode (the same version read again, a restart on the last good one) none."""
    world.write_playbook("watch", WATCH)
    path = world.write_playbook("other", OTHER)
    world.start()
    _wait_ok(world)
    starts = 1

    def stored():
        return [n.title for n in world.notifications() if n.title.startswith("[CONFIG]")]

    for episode in (1, 2, 3):
        path.write_text(OTHER.replace("expect:", "expectt:"))
        wait_until(lambda: len(stored()) >= episode, 30, what=f"the page of breakage {episode}")  # noqa: B023
        assert world.stop() == 0
        world.start()  # the same episode: runs on the last good configuration, told already
        starts += 1
        _started(world, starts)
        world.assert_alive()
        assert len(stored()) == episode, stored()
        path.write_text(OTHER)  # fixed: a good reload ends the episode
        wait_until(lambda: len(world.events("reload")) >= episode, 30,  # noqa: B023
                   what=f"the good reload after breakage {episode}")
    sent = wait_until(lambda: (c := [m for m in receiver.messages if m["title"].startswith("[CONFIG]")])
                      and len(c) >= 3 and c, 30, what="the three pages received")
    assert all("unknown key 'expectt'" in m["message"] for m in sent), [m["title"] for m in sent]
    assert len(stored()) == 3, stored()


def test_without_a_last_good_configuration_a_breakage_after_a_good_load_pages_again(world, supervisor, receiver):
    """No snapshot can be kept (var/last-good-config.json is a directory): restarts with broken
    files run the valid part; each breakage after the files loaded is paged again (P0)."""
    (world.var / "last-good-config.json").mkdir()
    world.write_playbook("watch", WATCH)
    path = world.write_playbook("other", OTHER)
    world.start()
    _wait_ok(world)
    starts = 1

    def stored():
        return [n.title for n in world.notifications() if n.title.startswith("[CONFIG]")]

    for episode in (1, 2):
        assert world.stop() == 0
        path.write_text(OTHER.replace("hosts: local", "hosts: nowhere"))
        world.start()
        starts += 1
        _started(world, starts)
        world.assert_alive()
        assert len(stored()) == episode, stored()
        assert "no last good configuration: running only the valid part" in stored()[-1]
        path.write_text(OTHER)  # fixed: loaded, the episode is over
        wait_until(lambda: len(world.events("reload")) >= episode, 30,  # noqa: B023
                   what=f"the good reload after breakage {episode}")


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


@pytest.mark.timeout(600)
def test_on_the_live_stack_a_typo_in_an_unrelated_playbook_blocks_nothing(running_stack):
    """The operator's story: a typo in weekly.yaml, then `supervisorctl restart agent` (or a
    reboot), then a crisis: the agent guards on the last good configuration, is paged once,
    `agent run-playbook emergency` runs with a warning, the web page serves and says why."""
    stack = running_stack(shipped_playbooks=True)
    stack.wait_running()
    snapshot = stack.var / "last-good-config.json"
    wait_until(snapshot.exists, 60, what="the last good configuration saved")
    weekly = stack.root / "playbooks" / "weekly.yaml"
    weekly.write_text(weekly.read_text().replace("hosts:", "hostz:", 1))

    def config_pages():
        return [m for m in stack.inbox() if m["title"].startswith("[CONFIG]")]

    [rejected] = wait_until(config_pages, 60, what="the rejected reload told")
    assert "weekly.yaml:" in rejected["message"] and "hostz" in rejected["message"]

    stack.ctl("restart", "agent")
    _stack_started(stack, 2)
    stack.wait_state("agent", "RUNNING", timeout=30)
    assert "running on last good configuration from" in stack.log("agent")
    stack.ctl("stop", "bot")  # the last good configuration guards
    wait_until(lambda: [m for m in stack.inbox() if "CRITICAL" in m["title"] and "bot" in m["title"]], 90,
               what="the stopped bot alerted")
    assert len(config_pages()) == 1, [m["title"] for m in config_pages()]  # told once, across the restart
    stack.ctl("start", "bot")

    preview = stack.agent("run-playbook", "emergency", "--check")
    assert preview.returncode == 0, preview.stdout + preview.stderr
    assert "weekly.yaml:" in preview.stderr
    assert "warning: the configuration on disk has 1 error(s)" in " ".join(preview.stderr.split())
    assert "PLAY [emergency]" in preview.stdout

    stack.ctl("restart", "web")
    stack.wait_state("web", "RUNNING", timeout=30)
    url = f"http://127.0.0.1:{stack.settings.web.port}/healthz"

    def health():
        try:
            return loopback.get(url, timeout=5).json()
        except (httpx.HTTPError, ValueError):
            return None

    assert wait_until(health, 60, what="the web page serving") == {"status": "ok"}  # liveness only
    overview = _overview(stack)  # what a signed-in operator reads
    assert 'id="config-note"' in overview and "weekly.yaml:" in overview
    web_log = " ".join(stack.log("web").split())
    assert "weekly.yaml:" in web_log and "runs from the last good configuration" in web_log

    inventory = stack.root / "inventory.yaml"
    kept = inventory.read_text()
    inventory.unlink()
    inventory.symlink_to("inventory.yaml")
    checked = stack.agent("validate")
    assert checked.returncode == 1, checked.stdout + checked.stderr
    assert "inventory.yaml: error: a symbolic link that loops" in checked.stderr
    stack.ctl("restart", "inbox")  # the local receiver reads the inventory too: it keeps listening
    stack.ctl("restart", "agent")
    _stack_started(stack, 3)
    stack.wait_state("agent", "RUNNING", timeout=30)
    seen = len(stack.inbox())
    stack.ctl("stop", "bot")  # still guarded, and the alert reaches the restarted receiver
    try:
        wait_until(lambda: [m for m in stack.inbox()[seen:] if "CRITICAL" in m["title"] and "bot" in m["title"]],
                   90, what="the stopped bot alerted through the restarted receiver")
    except TimeoutError:
        raise AssertionError(f"inbox {stack.info('inbox')['statename']}:\n{stack.log('inbox')}") from None
    assert stack.info("inbox")["statename"] == "RUNNING"
    stack.ctl("start", "bot")

    inventory.unlink()
    inventory.write_text(kept)
    weekly.write_text(weekly.read_text().replace("hostz:", "hosts:", 1))
    wait_until(lambda: 'id="config-note"' not in _overview(stack), 60, what="the web page on the fixed files")


def _overview(stack) -> str:
    """The overview page as the operator sees it, signed in with the stack's generated password."""
    secrets = dict(line.split("=", 1) for line in (stack.var / "secrets.env").read_text().splitlines()
                   if "=" in line and not line.startswith("#"))
    with httpx.Client(base_url=f"http://127.0.0.1:{stack.settings.web.port}", timeout=10) as web:
        token = re.search(r'name="csrf" value="([^"]+)"', web.get("/login").text)
        assert token, "no CSRF token on the sign-in page"
        web.post("/login", data={"csrf": token.group(1), "username": "operator", "next": "/",
                                 "password": secrets["BOTWARDEN_WEB_OPERATOR_PASSWORD"]})
        page = web.get("/")
        assert page.status_code == 200 and "/login" not in str(page.url), page.text[:500]
        return page.text


def _stack_started(stack, n):
    try:
        wait_until(lambda: stack.log("agent", tail=10**7).count("agent started:") >= n, 90,
                   what=f"agent start number {n}")
    except TimeoutError:
        raise AssertionError(f"agent start number {n} not seen:\n{stack.log('agent', tail=6000)}") from None


def test_agent_run_logs_the_load_warnings_at_start_and_on_every_reload(world, supervisor, receiver):
    """`agent run` says what `agent validate` warns about: in its log at start-up, and again for
    what a reload brings (issue 15): the resident agent is where an operator looks."""
    path = world.write_playbook("watch", WATCH.replace('expect: "running"', 'expect: "1 == 1"'))
    world.start()
    _started(world, 1)
    wait_until(lambda: f"{path}:" in world.log() and "warning: expect: '1 == 1' is always true" in world.log(), 30,
               what="the start-up warning in the agent's log")
    other = world.write_playbook("other", OTHER + "tasks:\n  - command: {argv: ['true']}\n    when: \"2 < 1\"\n")
    wait_until(lambda: world.events("reload"), 30, what="the reload of the new playbook")
    wait_until(lambda: re.search(rf"reload: {re.escape(str(other))}:\d+:\d+: warning: when: '2 < 1' is always false",
                                 world.log()), 30, what="the reload's warning in the agent's log")
    world.assert_alive()


def test_a_reload_that_changes_the_stack_settings_is_refused_and_says_to_restart_the_stack(
        world, supervisor, receiver):
    """The bot, the exchange and the inbox read the settings when they start: applying an edited
    `bot.port` on a reload pointed every check of the bot at a port nothing served (brk15)."""
    import yaml

    world.write_playbook("watch", WATCH)
    world.start()
    _wait_ok(world)
    settings_file = world.root / "settings.yaml"
    before = settings_file.read_text()
    edited = yaml.safe_load(before)
    edited["bot"] = {"port": 18082}
    settings_file.write_text(yaml.safe_dump(edited))
    [notice] = receiver.wait_for(1, 30)
    assert notice["title"].startswith("[CONFIG] reload rejected")
    assert "the stack settings changed (bot.port: 8081 -> 18082)" in notice["message"]
    assert "run `agent stack up` (make run)" in notice["message"]
    world.assert_alive()

    settings_file.write_text(before)  # undone, and a new playbook: it loads
    world.write_playbook("other", OTHER)
    _wait_ok(world, "other/local/always fine")


def test_an_agent_restarted_after_a_settings_edit_keeps_the_settings_the_programs_run(world, supervisor, receiver):
    """The reload refused the edited bot.port; then the agent restarted by itself (a crash,
    supervisord's autorestart) and read the edited file: every check of the bot pointed at a port
    nothing served. Started by the stack (the settings' digest in its environment), it starts on the
    last good configuration, whose settings the programs run, and says why (brk15)."""
    import yaml

    from agent.stack.environment import SETTINGS_DIGEST
    from botwarden.settings import load_settings

    world.write_playbook("watch", WATCH)
    settings_file = world.root / "settings.yaml"
    started = {SETTINGS_DIGEST: load_settings(settings_file).digest()}  # as agent stack up gives it
    world.start(env_add=started)
    _wait_ok(world)
    edited = yaml.safe_load(settings_file.read_text())
    edited["bot"] = {"port": 18082}
    settings_file.write_text(yaml.safe_dump(edited))
    wait_until(lambda: _config_titles(receiver), 30, what="the refused reload")
    world.kill()  # a crash: supervisord starts it again with the environment stack up gave it

    world.start(env_add=started)
    _started(world, 2)
    said = world.log().split("agent started:")[1]
    assert "the stack settings on disk are not those the programs were started with: running on last good " \
           "configuration from " in said and "the stack settings changed (bot.port: 8081 -> 18082)" in said, said
    world.assert_alive()
    # the reload's page told it (sent again if the kill cut its delivery): a start on the last good says nothing new
    assert set(_config_titles(receiver)) == {"[CONFIG] reload rejected: the last good configuration keeps running"}
    world.write_playbook("other", OTHER)  # another edit: the settings are still refused with it
    wait_until(lambda: "reload rejected" in world.log().split("agent started:")[2], 30, what="the refused reload")
    assert "the stack settings changed (bot.port: 8081 -> 18082)" in world.log().split("agent started:")[2]
    _stop(supervisor)  # it still guards on what it ran
    wait_until(lambda: any("worker running" in m["title"] and "CRITICAL" in m["title"]
                           for m in receiver.messages), 30, what="the alert of the stopped worker")
