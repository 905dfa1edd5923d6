"""ConfigSource: fingerprints that never raise, the last good configuration, what to fall back on.

Real files in a temporary directory, the real registry and loader: a symbolic link that loops,
a FIFO, a directory that may not be listed are what the operator's disk can hold at any moment.
"""
from __future__ import annotations

import json
import os
import shutil
from dataclasses import replace
from pathlib import Path

import pytest

from agent.engine.config_source import ACT_ORDER, START_ORDER, Chosen, ConfigSource
from agent.engine.settings_changes import started_on_other_settings
from agent.playbook.last_good import SNAPSHOT_NAME, read_snapshot
from agent.stack.environment import SETTINGS_DIGEST
from botwarden.settings import load_settings

REPO = Path(__file__).resolve().parents[3]
PLAY = """\
version: 1
name: {name}
hosts: local
schedule: {{every: 10s}}
checks:
  - name: {name} check
    command: {{argv: ["true"]}}
    expect: "rc == 0"
tasks:  # budget.then of needs.yaml runs these (a play without tasks there is an error)
  - command: {{argv: ["true"]}}
"""
NEEDS = """\
version: 1
name: needs
hosts: local
checks:
  - name: needs check
    command: {argv: ["true"]}
    expect: "rc == 0"
    remediate: [fix]
remediations:
  fix:
    steps:
      - command: {argv: ["true"]}
    budget: {max: 1, within: 1h, then: alpha}
"""


def _world(root: Path) -> ConfigSource:
    (root / "settings.yaml").write_text("var_dir: var\nagent: {metrics_port: 0}\n")
    (root / "inventory.yaml").write_text(
        "version: 1\nsettings: settings.yaml\nhosts: {local: {}}\n"
        "notify: {targets: {inbox: {url: 'json://127.0.0.1:9/'}}, routes: [{name: default, targets: [inbox]}]}\n")
    plays = root / "playbooks"
    plays.mkdir()
    for name in ("alpha", "beta"):
        (plays / f"{name}.yaml").write_text(PLAY.format(name=name))
    (plays / "needs.yaml").write_text(NEEDS)
    shutil.copytree(REPO / "templates", root / "templates", ignore=shutil.ignore_patterns("web"))
    return ConfigSource(root / "inventory.yaml", [plays], env={}, templates_dir=root / "templates")


def test_the_fingerprint_never_raises_and_changes_with_what_is_on_disk(tmp_path: Path) -> None:
    source = _world(tmp_path)
    plays = tmp_path / "playbooks"
    seen = [source.fingerprint()]
    for change in (lambda: (plays / "loop.yaml").symlink_to("loop.yaml"),
                   lambda: os.mkfifo(plays / "fifo.yaml"),
                   lambda: (plays / "dir.yaml").mkdir(),
                   lambda: (plays / "gone.yaml").symlink_to("nowhere.yaml"),
                   lambda: (tmp_path / "inventory.yaml").unlink() or (tmp_path / "inventory.yaml").symlink_to(
                       "inventory.yaml")):
        change()
        seen.append(source.fingerprint())
    assert len(set(seen)) == len(seen), "every change is noticed"
    (tmp_path / "templates").chmod(0)  # a directory that may not be listed (as root: still listed)
    source.fingerprint()


def test_a_broken_file_is_a_rejection_and_the_last_good_configuration_is_loaded_instead(tmp_path: Path) -> None:
    source = _world(tmp_path)
    chosen, _ = source.choose(START_ORDER)
    assert chosen is not None and chosen.origin == "disk"
    assert source.save_last_good(chosen.config) is None
    snap_file = tmp_path / "var" / SNAPSHOT_NAME
    assert snap_file.stat().st_mode & 0o777 == 0o600
    (tmp_path / "playbooks" / "alpha.yaml").write_text(PLAY.format(name="alpha").replace("expect:", "expct:"))
    (tmp_path / "playbooks" / "loop.yaml").symlink_to("loop.yaml")

    chosen, disk = source.choose(START_ORDER)
    assert chosen is not None and chosen.origin == "last-good"
    assert sorted(chosen.config.playbooks) == ["alpha", "beta", "needs"]
    files = {Path(d.file).name for d in disk.diagnostics}
    assert files == {"alpha.yaml", "loop.yaml"}
    summary = chosen.summary()
    assert summary.startswith("running on last good configuration from ")
    assert "alpha.yaml:8:5: unknown key 'expct'" in summary and "(and 1 more)" in summary
    # its templates are the ones it was saved with, not what is on disk now
    (tmp_path / "templates" / "alert.md.j2").write_text("{{ broken")
    chosen, _ = source.choose(START_ORDER)
    assert chosen is not None and chosen.origin == "last-good"
    assert "{{ broken" not in chosen.config.templating.render_template("alert.md.j2", _alert_vars())


RAN_BEFORE = [  # what an older agent loaded and ran, and a newer rule refuses (it runs otherwise than meant)
    ("  - command: {argv: [\"true\"]}\n", "  - command: {argv: [\"true\"]}\n    when:\n"),     # an empty when:
    ("hosts: local\n", "hosts: local\nvars: {check: 3}\n"),                        # a var named like the agent's
    ("tasks:", "handlers:\n  - {name: h, command: {argv: [\"true\"]}}\n"
               "  - {name: h, command: {argv: [\"true\"]}}\ntasks:"),              # a handler name twice
]


@pytest.mark.parametrize(("old", "new"), RAN_BEFORE, ids=["empty-when", "var-check", "handler-twice"])
def test_a_last_good_configuration_that_a_newer_rule_refuses_still_runs_as_it_ran(tmp_path: Path, old: str,
                                                                                  new: str) -> None:
    """An agent upgraded with a configuration that ran: the files on disk are refused by a rule it did
    not have, and the last good configuration, judged again at the start, was refused too. An empty
    when: in the emergency playbook then dropped it and every play whose budget hands over to it
    (the shipped files: 16 checks of 41 left, none of the bot's). Such a rule refuses an edit; the
    last good configuration holding it runs as it ran, said as a warning."""
    source = _world(tmp_path)
    chosen, _ = source.choose(START_ORDER)
    assert chosen is not None and chosen.origin == "disk"
    alpha = tmp_path / "playbooks" / "alpha.yaml"
    edited = PLAY.format(name="alpha").replace(old, new, 1)
    assert edited != PLAY.format(name="alpha")
    alpha.write_text(edited)
    files = {**chosen.config.files, str(alpha): edited.encode()}  # as the older agent saved it
    assert source.save_last_good(replace(chosen.config, files=files)) is None

    chosen, disk = source.choose(START_ORDER)
    assert [Path(d.file).name for d in disk.diagnostics] == ["alpha.yaml"], "\n".join(map(str, disk.diagnostics))
    assert chosen is not None and chosen.origin == "last-good", chosen and chosen.origin
    assert sorted(chosen.config.playbooks) == ["alpha", "beta", "needs"]
    assert disk.diagnostics[0].message in chosen.summary()
    # an error of any other kind in the snapshot is still one: it does not load
    alpha.write_text(edited.replace("expect:", "expct:"))
    files[str(alpha)] = alpha.read_bytes()
    assert source.save_last_good(replace(chosen.config, files=files)) is None
    chosen, _ = source.choose(START_ORDER)
    assert chosen is not None and chosen.origin == "valid-part"


@pytest.mark.parametrize(("old", "new"), RAN_BEFORE, ids=["empty-when", "var-check", "handler-twice"])
def test_without_a_last_good_configuration_a_newer_rule_drops_no_play(tmp_path: Path, old: str, new: str) -> None:
    """An agent upgraded on a fresh var/ (no last good configuration: a new box, var/ wiped) with
    files an older agent ran: the valid part left out the play a newer rule refuses and every play
    that needs it (seen live with an empty when: in the shipped emergency: 10 playbooks and 16
    checks of 41, none of the bot's). The files run as they read (the rule's errors told, as for a
    last good configuration); a play with an error of any other kind is still left out."""
    source = _world(tmp_path)
    alpha = tmp_path / "playbooks" / "alpha.yaml"
    alpha.write_text(PLAY.format(name="alpha").replace(old, new, 1))
    chosen, disk = source.choose(START_ORDER)
    assert [Path(d.file).name for d in disk.diagnostics] == ["alpha.yaml"], "\n".join(map(str, disk.diagnostics))
    assert disk.config is None and disk.diagnostics[0].ran_as_read
    assert chosen is not None and chosen.origin == "as-read", chosen and chosen.summary()
    assert sorted(chosen.config.playbooks) == ["alpha", "beta", "needs"] and chosen.left_out == []
    assert disk.diagnostics[0].message in chosen.summary() and not chosen.guards_fully
    # another playbook broken otherwise: it alone is left out, with what needs it
    (tmp_path / "playbooks" / "beta.yaml").write_text(PLAY.format(name="beta").replace("expect:", "expct:"))
    chosen, _ = source.choose(START_ORDER)
    assert chosen is not None and chosen.origin == "as-read"
    assert sorted(chosen.config.playbooks) == ["alpha", "needs"]
    assert [Path(f).name for f in chosen.left_out] == ["beta.yaml"]
    # nothing of that kind: the valid part as before
    alpha.write_text(PLAY.format(name="alpha"))
    chosen, _ = source.choose(START_ORDER)
    assert chosen is not None and chosen.origin == "valid-part"


def test_the_settings_file_broken_too_the_snapshot_is_found_beside_the_inventory(tmp_path: Path) -> None:
    source = _world(tmp_path)
    chosen, _ = source.choose(START_ORDER)
    assert chosen is not None
    source.save_last_good(chosen.config)
    os.unlink(tmp_path / "settings.yaml")
    os.mkfifo(tmp_path / "settings.yaml")
    fresh = ConfigSource(tmp_path / "inventory.yaml", [tmp_path / "playbooks"], env={},
                         templates_dir=tmp_path / "templates")  # a restarted agent: nothing remembered
    chosen, disk = fresh.choose(START_ORDER)
    assert chosen is not None and chosen.origin == "last-good"
    assert chosen.config.settings.path(chosen.config.settings.var_dir) == tmp_path / "var"
    assert any("FIFO" in d.message for d in disk.diagnostics)


def test_a_settings_file_that_is_a_fifo_and_no_snapshot_still_starts_to_say_it_cannot_guard(tmp_path: Path) -> None:
    """The built-in configuration reads the settings file the inventory names, to page through its
    inbox: with a plain read, a FIFO there hung the start (no page at all, brk15)."""
    import concurrent.futures

    source = _world(tmp_path)
    os.unlink(tmp_path / "settings.yaml")
    os.mkfifo(tmp_path / "settings.yaml")
    with concurrent.futures.ThreadPoolExecutor(1) as pool:
        future = pool.submit(source.choose, START_ORDER)
        try:
            chosen, disk = future.result(timeout=30)
        except concurrent.futures.TimeoutError:
            os.close(os.open(tmp_path / "settings.yaml", os.O_WRONLY | os.O_NONBLOCK))  # ends the blocked read
            pytest.fail("the start blocked on the FIFO")
    assert chosen is not None and chosen.origin == "built-in", chosen and chosen.summary()
    assert any("FIFO" in d.message for d in disk.diagnostics)


def test_without_a_snapshot_the_valid_part_runs_with_what_it_needs_left_out(tmp_path: Path) -> None:
    source = _world(tmp_path)
    (tmp_path / "playbooks" / "alpha.yaml").write_text("version: 1\nname: alpha\nhosts: nowhere\n")
    chosen, _ = source.choose(START_ORDER)
    assert chosen is not None and chosen.origin == "valid-part"
    assert sorted(chosen.config.playbooks) == ["beta"]  # needs refers to alpha: left out with it
    assert {Path(f).name for f in chosen.left_out} == {"alpha.yaml", "needs.yaml"}
    assert not chosen.guards_fully


def test_with_the_inventory_broken_and_no_snapshot_the_built_in_one_says_it_cannot_guard(tmp_path: Path) -> None:
    source = _world(tmp_path)
    inventory = tmp_path / "inventory.yaml"
    inventory.unlink()
    inventory.symlink_to("inventory.yaml")
    chosen, _ = source.choose(START_ORDER)
    assert chosen is not None and chosen.origin == "built-in"
    assert chosen.config.playbooks == {} and chosen.config.inventory.notify.targets
    assert "cannot guard" in chosen.summary() and "a symbolic link that loops" in chosen.summary()


def test_a_damaged_or_foreign_snapshot_is_not_used(tmp_path: Path) -> None:
    source = _world(tmp_path)
    chosen, _ = source.choose(START_ORDER)
    assert chosen is not None
    source.save_last_good(chosen.config)
    snap_file = tmp_path / "var" / SNAPSHOT_NAME
    record = json.loads(snap_file.read_text())
    (tmp_path / "playbooks" / "beta.yaml").write_text(": nope")
    record["inventory"] = "/elsewhere/inventory.yaml"
    snap_file.write_text(json.dumps(record))
    chosen, _ = source.choose(("last-good",))
    assert chosen is None
    snap_file.write_text("{not json")
    with pytest.raises(Exception, match="damaged"):
        read_snapshot(snap_file)
    chosen, _ = source.choose(("last-good", "valid-part"))
    assert chosen is not None and chosen.origin == "valid-part"


def test_a_snapshot_nested_past_what_json_reads_is_damaged_not_a_crash_loop(tmp_path: Path) -> None:
    """var/last-good-config.json holding [[[[... (100 000 deep: a damaged or tampered file) raised
    RecursionError: the resident agent crash-looped at every start and `agent status` exited 250
    (brk15, seen on a live stack)."""
    source = _world(tmp_path)
    (tmp_path / "playbooks" / "beta.yaml").write_text(": nope")
    snap_file = tmp_path / "var" / SNAPSHOT_NAME
    snap_file.parent.mkdir(exist_ok=True)
    snap_file.write_text("[" * 100_000 + "]" * 100_000)
    with pytest.raises(Exception, match="damaged"):
        read_snapshot(snap_file)
    chosen, _ = source.choose(START_ORDER)
    assert chosen is not None and chosen.origin == "valid-part"


def test_a_hand_over_nested_past_what_json_reads_is_refused_with_a_message(tmp_path: Path) -> None:
    from agent.engine.store_handover import read_handover

    path = tmp_path / "handover.json"
    path.write_text("{\"a\": " * 50_000 + "1" + "}" * 50_000)
    with pytest.raises(ValueError, match="not JSON"):
        read_handover(path)


def test_an_unexpected_error_while_loading_is_a_rejection(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    import agent.playbook

    source = _world(tmp_path)

    def boom(*_: object, **__: object) -> None:
        raise RuntimeError("a bug in the loader")

    monkeypatch.setattr(agent.playbook, "load_config", boom)
    result = source.load()
    assert result.config is None
    [diag] = result.diagnostics
    assert "internal error RuntimeError: a bug in the loader" in diag.message


def _alert_vars() -> dict[str, object]:
    return {"state": "CRITICAL", "severity": "critical", "play": "p", "check": "c", "host": "h", "since": "now",
            "for": "1s", "value": 1, "summary": "", "error": "", "repeat": False, "count": 1, "incident_id": 1,
            "url": "", "runbook": "", "observed": "", "expect": "", "facts": {}}


SECRET_PLAY = """\
version: 1
name: secretive
hosts: local
tasks:
  - name: use a credential
    command: {argv: ["true"], env: {API_CRED: "lit3ral-s3cret-value-0042"}}
"""


def test_var_never_holds_a_secret_a_file_with_one_is_kept_as_its_checksum(tmp_path: Path) -> None:
    source = _world(tmp_path)
    secretive = tmp_path / "playbooks" / "secretive.yaml"
    secretive.write_text(SECRET_PLAY)
    chosen, _ = source.choose(("disk",))
    assert chosen is not None and source.save_last_good(chosen.config) is None
    stored = (tmp_path / "var" / SNAPSHOT_NAME).read_text()
    assert "lit3ral-s3cret-value-0042" not in stored
    assert str(tmp_path / "playbooks" / "beta.yaml") in stored and "beta check" in stored

    (tmp_path / "playbooks" / "beta.yaml").write_text("version: 1\nname: beta\nhostz: local\n")
    chosen, _ = source.choose(START_ORDER)  # the secretive file is unchanged: restored from disk
    assert chosen is not None and chosen.origin == "last-good"
    assert sorted(chosen.config.playbooks) == ["alpha", "beta", "needs", "secretive"]

    secretive.write_text(SECRET_PLAY.replace("argv:", "argvv:"))  # changed: the snapshot cannot restore it
    chosen, _ = source.choose(START_ORDER)
    assert chosen is not None and chosen.origin == "valid-part"
    assert sorted(chosen.config.playbooks) == ["alpha", "needs"]


def test_an_inventory_moved_away_under_a_running_source_is_a_rejection_not_the_built_in_one(tmp_path: Path) -> None:
    """Issue 15, F2: ``mv inventory.yaml /tmp/x`` under the agent loaded the built-in inventory
    and default settings (default ports, maybe another stack's; the default inbox)."""
    source = _world(tmp_path)
    assert source.load().ok
    inventory = tmp_path / "inventory.yaml"
    inventory.rename(tmp_path / "moved.yaml")
    result = source.load()  # the agent's reload: rejected, the configuration it runs keeps running
    assert result.config is None
    [diag] = result.diagnostics
    assert diag.file == str(inventory) and "inventory file not found" in diag.message
    (tmp_path / "moved.yaml").rename(inventory)
    again = source.load()
    assert again.ok and again.config is not None and again.config.settings.agent.metrics_port == 0


def test_an_unexpected_error_in_the_playbooks_still_pages_through_the_inventory_and_settings_on_disk(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Issue 15, F3: with no last good configuration, an internal error in one playbook made the
    agent run on the built-in inventory and settings: metrics on the default port, its [CONFIG]
    page to the default inbox. What it can read (routes, targets, ports) is what it uses."""
    import agent.playbook

    source = _world(tmp_path)
    real = agent.playbook.load_config

    def bug_in_playbooks(inventory: Path, paths: list[Path], *args: object, **kwargs: object) -> object:
        if paths:
            raise RuntimeError("a bug in the playbook loader")
        return real(inventory, paths, *args, **kwargs)  # type: ignore[arg-type]

    monkeypatch.setattr(agent.playbook, "load_config", bug_in_playbooks)
    chosen, disk = source.choose(START_ORDER)
    assert disk.config is None and chosen is not None and chosen.origin == "built-in"
    assert chosen.config.playbooks == {} and "cannot guard" in chosen.summary()
    assert chosen.config.inventory.notify.targets["inbox"].url == "json://127.0.0.1:9/"  # the configured route
    assert chosen.config.settings.agent.metrics_port == 0  # settings.yaml, not the default


def test_with_the_inventory_broken_the_settings_file_it_names_is_still_used(tmp_path: Path) -> None:
    source = _world(tmp_path)
    inventory = tmp_path / "inventory.yaml"
    inventory.write_text(inventory.read_text() + "not_a_key: 1\n")
    chosen, disk = source.choose(START_ORDER)
    assert disk.config is None and chosen is not None and chosen.origin == "built-in"
    assert chosen.config.settings.agent.metrics_port == 0, "the ports of settings.yaml, not the defaults"
    assert Path(chosen.config.settings.path(chosen.config.settings.var_dir)) == tmp_path / "var"


def test_an_edit_is_loaded_once_the_files_stop_changing(tmp_path: Path) -> None:
    """Issue 15, F5: a playbook written in pieces was loaded half-written (valid YAML at a task
    boundary: an emergency without its last steps). The reload waits for two equal fingerprints
    one settle interval apart; each sleep here is a moment in which the writer goes on."""
    import asyncio

    from agent.engine.config_source import settled

    source = _world(tmp_path)
    play = tmp_path / "playbooks" / "alpha.yaml"
    full = PLAY.format(name="alpha")
    pieces = [full[: len(full) // 3], full[: 2 * len(full) // 3], full]
    play.write_text(pieces[0])
    slept: list[float] = []

    async def writer_goes_on(seconds: float) -> None:
        slept.append(seconds)
        if len(slept) < len(pieces):
            with play.open("a") as f:  # appended in place (same inode), as an editor or scp writes
                f.write(pieces[len(slept)][len(pieces[len(slept) - 1]):])

    async def fingerprint() -> object:
        return source.fingerprint()

    first = source.fingerprint()
    result = asyncio.run(settled(fingerprint, first, writer_goes_on, settle=1.0))  # type: ignore[arg-type]
    assert play.read_text() == full and result == source.fingerprint()
    assert slept == [1.0, 1.0, 1.0], "it waited for the writer, then for one quiet interval"
    assert source.load().ok

    calls: list[float] = []

    async def always_changing(seconds: float) -> None:
        calls.append(seconds)
        with play.open("a") as f:
            f.write("# more\n")

    asyncio.run(settled(fingerprint, source.fingerprint(), always_changing, max_rounds=5))  # type: ignore[arg-type]
    assert len(calls) == 5, "files that never settle are loaded after a bound"


@pytest.mark.parametrize("tasks", [
    '  - command: {argv: ["true"]}\n    when: false\n',
    '  - command: {argv: ["true"]}\n    when: "1 == 2"\n',
    "  - block: []\n",
    '  - block:\n      - command: {argv: ["true"]}\n        when: false\n',
])
def test_a_budget_then_to_a_play_that_does_nothing_is_an_error(tmp_path: Path, tasks: str) -> None:
    """Issue 15, F10: a hand-over to a play whose tasks are all skipped or empty blocks was
    accepted (a warning at most): once the budget is spent nothing happens."""
    source = _world(tmp_path)
    alpha = tmp_path / "playbooks" / "alpha.yaml"
    alpha.write_text(PLAY.format(name="alpha").split("tasks:")[0] + "tasks:\n" + tasks)
    result = source.load()
    found = [d for d in result.diagnostics if "does nothing" in d.message]
    assert len(found) == 1 and Path(found[0].file).name == "needs.yaml", [str(d) for d in result.diagnostics]
    assert found[0].line == 13 and "'alpha'" in found[0].message
    alpha.write_text(PLAY.format(name="alpha").split("tasks:")[0] + "tasks:\n" + tasks.replace("false", "true")
                     .replace('"1 == 2"', '"1 == 1"').replace("block: []", 'command: {argv: ["true"]}'))
    assert not [d for d in source.load().diagnostics if "does nothing" in d.message]


# -- an agent restarted by itself after the stack settings were edited (brk15) ----------------------
# It starts on the settings the programs run: the last good configuration whose settings file has the
# digest `agent stack up` gave every program, not the edited file, unless the edit changes no setting.


def _restarted(root: Path, env: dict[str, str]) -> ConfigSource:
    return ConfigSource(root / "inventory.yaml", [root / "playbooks"], env=env, templates_dir=root / "templates")


def _start(source: ConfigSource) -> Chosen | None:  # what Agent._choose_or_raise runs on
    chosen, _ = source.choose(START_ORDER)
    assert chosen is not None
    return started_on_other_settings(source, chosen.config) if chosen.origin == "disk" else chosen


def test_a_restart_after_a_settings_edit_runs_on_the_settings_the_programs_started_with(tmp_path: Path) -> None:
    source = _world(tmp_path)
    settings = tmp_path / "settings.yaml"
    chosen, _ = source.choose(START_ORDER)
    assert chosen is not None and chosen.origin == "disk"
    started = {SETTINGS_DIGEST: load_settings(settings).digest()}  # as agent stack up sets it
    assert started[SETTINGS_DIGEST] == chosen.config.settings.digest()
    assert source.save_last_good(chosen.config) is None

    # what changes no setting (a comment, the order, whitespace) starts on the disk
    settings.write_text("# the agent's metrics off\nagent:   {metrics_port: 0}\nvar_dir: var\n")
    assert _start(_restarted(tmp_path, started)) is None

    # a setting changed, the agent restarted by itself (crash): the settings the programs run
    settings.write_text("var_dir: var\nagent: {metrics_port: 0}\nbot: {port: 18082}\n")
    held = _start(_restarted(tmp_path, started))
    assert held is not None and held.origin == "last-good"
    assert held.config.settings.bot.port != 18082
    assert "the stack settings changed (bot.port: 8081 -> 18082)" in held.summary()
    assert "agent stack up" in (held.problems[0].hint or "")

    # started by agent stack up with the edited file (its digest): the disk
    edited = {SETTINGS_DIGEST: load_settings(settings).digest()}
    assert _start(_restarted(tmp_path, edited)) is None
    # not started by the stack (agent run by hand): nothing tells what the programs run
    assert _start(_restarted(tmp_path, {})) is None


@pytest.mark.parametrize(("old", "new"), RAN_BEFORE, ids=["empty-when", "var-check", "handler-twice"])
def test_an_acting_command_runs_the_play_a_newer_rule_refuses_as_the_agent_does(
        tmp_path: Path, old: str, new: str) -> None:
    """`agent run-playbook` with no last good configuration: the play a newer rule refuses (the
    emergency with an empty when:) runs as written, as the resident agent runs it on the same
    files (its order went from the valid part, which leaves the play out, to the last good
    configuration, which a fresh var/ has not: the operator's emergency was refused)."""
    source = _world(tmp_path)
    alpha = tmp_path / "playbooks" / "alpha.yaml"
    alpha.write_text(PLAY.format(name="alpha").replace(old, new, 1))
    chosen, _ = source.choose(ACT_ORDER, need_play="alpha")
    assert chosen is not None and chosen.origin == "as-read", chosen and chosen.summary()
    assert "alpha" in chosen.config.playbooks
    # a play the rule does not concern still runs from the valid part first
    chosen, _ = source.choose(ACT_ORDER, need_play="beta")
    assert chosen is not None and chosen.origin == "valid-part"


def _agent_start(source: ConfigSource) -> Chosen:  # as Agent._choose_or_raise
    chosen, _ = source.choose(START_ORDER)
    assert chosen is not None
    if chosen.origin in ("disk", "as-read", "valid-part"):
        held = started_on_other_settings(source, chosen.config)
        if held is not None:
            return held
    return chosen


@pytest.mark.parametrize("broken", [False, True])
def test_a_restart_after_a_settings_edit_without_a_last_good_one_runs_on_the_settings_applied(
        tmp_path: Path, broken: bool) -> None:
    """A fresh var/ (no last good configuration: the files never all loaded, or var/ was wiped),
    bot.port edited, the agent restarted by itself (a crash): it read the edited file and watched
    a port nothing served, every check of the bot UNKNOWN, and nothing said why (brk15, seen on a
    live stack). ``agent stack up`` keeps the settings it applied under var/ (they hold no secret:
    names of variables only); the agent starts on the files with those, and says what changed."""
    from agent.stack.files import write_applied_settings

    _world(tmp_path)
    settings = tmp_path / "settings.yaml"
    if broken:  # only a rule refusing what runs otherwise than meant: the files run as they read
        (tmp_path / "playbooks" / "alpha.yaml").write_text(PLAY.format(name="alpha").replace(*RAN_BEFORE[0], 1))
    applied = load_settings(settings)
    write_applied_settings(applied)  # as agent stack up does, beside the digest it gives every program
    started = {SETTINGS_DIGEST: applied.digest()}
    assert _agent_start(_restarted(tmp_path, started)).origin == ("as-read" if broken else "disk")
    assert not (tmp_path / "var" / SNAPSHOT_NAME).exists()  # no last good configuration

    settings.write_text("var_dir: var\nagent: {metrics_port: 0}\nbot: {port: 18082}\n")
    held = _agent_start(_restarted(tmp_path, started))
    assert held.config.settings.bot.port == applied.bot.port, held.summary()
    assert held.origin == ("as-read" if broken else "as-started"), held.summary()
    assert "the stack settings changed (bot.port: 8081 -> 18082)" in held.details(), held.details()
    assert "agent stack up" in (held.problems[0].hint or "")
    assert set(held.config.playbooks) >= {"alpha", "beta"}

    # applied by agent stack up: its digest, the edited file: the disk
    write_applied_settings(load_settings(settings))
    assert _agent_start(_restarted(tmp_path, {SETTINGS_DIGEST: load_settings(settings).digest()})).origin == \
        ("as-read" if broken else "disk")
    # a kept file that is not of the digest the programs run (stack up failed half-way): not used
    write_applied_settings(applied)
    edited = {SETTINGS_DIGEST: load_settings(settings).digest()}
    settings.write_text("var_dir: var\nagent: {metrics_port: 0}\nbot: {port: 18083}\n")
    assert _agent_start(_restarted(tmp_path, edited)).config.settings.bot.port == 18083
