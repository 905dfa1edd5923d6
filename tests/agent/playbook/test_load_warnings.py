"""Configuration that loads but is silently ignored, or cannot do what it says (issue 15): each
is a positioned warning with a hint; the configuration still loads and `agent validate` exits 0."""
from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest

from agent.cli.main import main
from agent.modules.registry import Registry
from agent.playbook import LoadResult, load_config
from agent.playbook.constant_expressions import constant_truth
from agent.playbook.cron import crontab_trigger, dst_trap

from .conftest import GOOD

PLAY = """version: 1
name: {name}
hosts: {hosts}
schedule: {schedule}
checks:
  - name: bot loop is alive
    http: {{url: "{{{{ bot.health_url }}}}"}}
    expect: {expect}
    tags: [bot]
"""


def _setup(tmp_path: Path, *, inventory_extra: str = "", routes: str = "", hosts: str = "bots",
           expect: str = '"status_code == 200"', schedule: str = "{every: 15s}") -> Path:
    inventory = (GOOD / "inventory.yaml").read_text(encoding="utf-8")
    inventory = inventory.replace("  routes:\n", "  routes:\n" + routes, 1) + inventory_extra
    (tmp_path / "inventory.yaml").write_text(inventory, encoding="utf-8")
    books = tmp_path / "playbooks"
    books.mkdir()
    (books / "health.yaml").write_text(PLAY.format(name="health", hosts=hosts, expect=expect, schedule=schedule), encoding="utf-8")
    return tmp_path


def _load(root: Path, registry: Registry) -> LoadResult:
    return load_config(root / "inventory.yaml", [root / "playbooks"], registry, env={})


def _only_warning(result: LoadResult) -> str:
    assert result.config is not None and not result.diagnostics, "\n".join(map(str, result.diagnostics))
    assert len(result.warnings) == 1, "\n".join(map(str, result.warnings))
    return str(result.warnings[0])


def test_playbooks_in_a_subdirectory_are_named_not_skipped(tmp_path: Path, registry: Registry,
                                                           capsys: pytest.CaptureFixture[str]) -> None:
    root = _setup(tmp_path)
    (root / "playbooks" / "staging").mkdir()
    (root / "playbooks" / "staging" / "extra.yaml").write_text(PLAY.format(name="extra", hosts="bots",
                                                                          expect='"true"', schedule="{every: 15s}"), encoding="utf-8")
    (root / "playbooks" / ".git").mkdir()  # hidden folders are not playbooks' business
    (root / "playbooks" / ".git" / "x.yaml").write_text("x: 1\n", encoding="utf-8")
    shown = _only_warning(_load(root, registry))
    assert shown.startswith(f"{root / 'playbooks' / 'staging'}: warning: this subdirectory holds 1 playbook file(s) "
                            "that are not loaded"), shown
    assert "hint: move them up into" in shown

    code = main(["validate", "--inventory", str(root / "inventory.yaml"), str(root / "playbooks")])
    out = capsys.readouterr()
    assert code == 0 and "warning: this subdirectory holds 1" in out.err and "1 warning(s)" in out.out, out


def test_a_play_on_an_empty_group_warns_at_its_hosts(tmp_path: Path, registry: Registry) -> None:
    root = _setup(tmp_path, hosts="spare", inventory_extra="")
    inventory = root / "inventory.yaml"
    inventory.write_text(inventory.read_text(encoding="utf-8").replace("groups:\n", "groups:\n  spare: {hosts: []}\n"),
                         encoding="utf-8")
    (root / "playbooks" / "other.yaml").write_text(PLAY.format(name="other", hosts="bots", expect='"status_code == 200"',
                                                               schedule="{every: 15s}"), encoding="utf-8")
    shown = _only_warning(_load(root, registry))  # another play runs: a spare group is not the guard off
    assert shown.startswith(f"{root / 'playbooks' / 'health.yaml'}:3:8: warning: hosts: 'spare' has no hosts"), shown
    assert "no check is scheduled" in shown and "hint: add hosts to the group 'spare'" in shown


def test_no_check_on_any_host_is_an_error_at_the_emptied_group(tmp_path: Path, registry: Registry) -> None:
    """Issue 15, F5: ``bots: {hosts: []}`` loaded as 0 checks, warnings only, no page: the guard
    silently off. Now a rejected configuration (a reload keeps the last good one and pages)."""
    root = _setup(tmp_path)
    inventory = root / "inventory.yaml"
    text = inventory.read_text(encoding="utf-8")
    before = _load(root, registry)
    assert before.ok and before.config is not None and before.config.bound_checks
    emptied = text.replace("    hosts: [local]\n", "    hosts: []\n", 1)
    assert emptied != text
    inventory.write_text(emptied, encoding="utf-8")
    result = _load(root, registry)
    assert result.config is None
    [diag] = result.diagnostics
    line = next(i for i, t in enumerate(emptied.splitlines(), 1) if t == "    hosts: []")
    assert (diag.file, diag.line) == (str(inventory), line), str(diag)
    assert "no check runs on any host" in diag.message and "'bots'" in diag.message


@pytest.mark.parametrize(("match", "column", "message", "hint"), [
    ("{tags: [bto]}", 22, "matches tags 'bto', and no check or step with the tag has that name", "did you mean 'bot'?"),
    ("{play: [helth]}", 22, "matches play 'helth', and no playbook has that name", "did you mean 'health'?"),
    ("{play: ['bot-*']}", 22, "matches play 'bot-*'", None),
    ("{check: [bot loop is alive, nothing*]}", 42, "matches check 'nothing*'", None),
    ("{host: [lcoal]}", 22, "matches host 'lcoal'", "did you mean 'local'?"),
    ("{severity: [info]}", 26, "matches severity 'info', and no check or step with the severity has that name",
     None),
])
def test_a_route_matching_what_nothing_has_warns_at_the_entry(tmp_path: Path, registry: Registry, match: str,
                                                              column: int, message: str, hint: str | None) -> None:
    root = _setup(tmp_path, routes=f"    - name: mine\n      match: {match}\n      targets: [inbox]\n")
    shown = _only_warning(_load(root, registry))
    assert f"inventory.yaml:19:{column}: warning: route 'mine' {message}" in shown, shown
    if hint:
        assert f"hint: {hint}" in shown


def test_a_route_that_matches_something_or_is_named_does_not_warn(tmp_path: Path, registry: Registry) -> None:
    routes = ("    - name: mine\n      match: {tags: [bot], play: ['heal*'], check: [bot loop is alive], host: [local]}\n"
              "      targets: [inbox]\n"
              "    - name: pager\n      match: {tags: [escalation-only]}\n      targets: [inbox]\n"
              "    - name: first\n      match: {severity: [critical, unknown]}\n      targets: [inbox]\n"
              "      escalate: [{after: 5m, to: pager}]\n")
    result = _load(_setup(tmp_path, routes=routes), registry)
    assert result.config is not None and not result.warnings, "\n".join(map(str, result.warnings))


@pytest.mark.parametrize(("expect", "always"), [
    ('"true"', "true"), ('"1 == 1"', "true"), ('"status_code == 200 or true"', "true"),
    ('"status_code == status_code"', "true"), ('"not false"', "true"), ('"\'ok\'"', "true"),
    ('"false"', "false"), ('"status_code != status_code"', "false"), ('"status_code == 200 and 0"', "false"),
])
def test_an_expect_that_never_changes_warns(tmp_path: Path, registry: Registry, expect: str, always: str) -> None:
    shown = _only_warning(_load(_setup(tmp_path, expect=expect), registry))
    assert "health.yaml:8:13: warning: expect: " in shown and f"is always {always}" in shown, shown
    assert "the check can never " + ("fail" if always == "true" else "pass") in shown


@pytest.mark.parametrize("expression", [
    "status_code == 200", "latency_ms < 500 and true", "x if true else 1", "foo(1) == foo(1)",
    "x | int == x | int", "status_code == 200 or json.ok", "x == y", "1 ==",
])
def test_an_expression_that_reads_a_value_is_not_constant(expression: str) -> None:
    assert constant_truth(expression) is None


def test_day_of_month_and_day_of_week_both_set_warns(tmp_path: Path, registry: Registry) -> None:
    """crontab runs '0 8 1 * 1' on every 1st and every Monday; APScheduler's CronTrigger (what
    runs it here) only on a Monday that is the 1st, as the trigger itself shows."""
    trigger = crontab_trigger("0 8 1 * 1", UTC)
    first = trigger.get_next_fire_time(None, datetime(2026, 1, 1, tzinfo=UTC))
    assert first == datetime(2026, 6, 1, 8, tzinfo=UTC)  # Jan 1 is a Thursday, Jan 5 a Monday: neither runs
    shown = _only_warning(_load(_setup(tmp_path, schedule='{cron: "0 8 1 * 1", timezone: UTC}'), registry))
    assert "health.yaml:4:18: warning: schedule: day of month '1' and day of week '1' are both set" in shown, shown
    assert "hint: set one of the two to *" in shown


def test_apscheduler_runs_the_repeated_hour_twice_and_moves_the_skipped_one() -> None:
    """What APScheduler 3.x does at the changes of America/New_York in 2026, asked of the trigger
    itself (the warning below is computed the same way)."""
    zone = ZoneInfo("America/New_York")
    back, previous, now, runs = crontab_trigger("30 1 * * *", zone), None, datetime(2026, 11, 1, 4, tzinfo=UTC), []
    for _ in range(2):
        fire = back.get_next_fire_time(previous, now)
        runs.append(fire.astimezone(UTC))
        previous, now = fire, fire + timedelta(seconds=1)
    assert runs == [datetime(2026, 11, 1, 5, 30, tzinfo=UTC), datetime(2026, 11, 1, 6, 30, tzinfo=UTC)]  # 01:30 twice
    forward = crontab_trigger("30 2 * * *", zone).get_next_fire_time(None, datetime(2026, 3, 8, 4, tzinfo=UTC))
    assert forward.astimezone(UTC).astimezone(zone).strftime("%H:%M") == "03:30"


@pytest.mark.parametrize(("cron", "timezone", "said"), [
    ("30 1 * * *", "America/New_York", "runs twice at 01:30 on the night the clocks go back"),
    ("30 2 * * *", "America/New_York", "runs at 03:30 instead of the time written"),
    ("0 2 * * *", "Australia/Sydney", "runs twice at 02:00"),
    ("30 8 * * *", "Europe/London", None),
    ("30 1 * * 0", "Europe/Berlin", None),  # Berlin changes at 02:00/03:00: 01:30 is not touched
    ("30 1 * * *", "Asia/Tokyo", None),
])
def test_a_time_the_clocks_change_at_is_found_by_asking_the_trigger(cron: str, timezone: str,
                                                                    said: str | None) -> None:
    found = dst_trap(cron, timezone, around=datetime(2026, 1, 1, tzinfo=UTC))
    assert (found is None) == (said is None), found
    if said is not None:
        assert found is not None and said in found[0] and "timezone: UTC" in found[1]


def test_a_schedule_in_the_hours_the_clocks_change_warns_at_load(tmp_path: Path, registry: Registry) -> None:
    shown = _only_warning(_load(_setup(tmp_path, schedule='{cron: "30 1 * * *", timezone: Europe/London}'),
                                registry))
    assert "health.yaml:4:18: warning: schedule: in Europe/London this schedule runs twice at 01:30" in shown, shown
    for i, quiet in enumerate(('{cron: "30 1 * * *", timezone: UTC}', '{cron: "30 8 * * *", timezone: Europe/London}')):
        (tmp_path / str(i)).mkdir()
        result = _load(_setup(tmp_path / str(i), schedule=quiet), registry)
        assert result.config is not None and not result.warnings, "\n".join(map(str, result.warnings))


def test_a_delay_on_a_task_that_never_retries_warns_at_the_delay(tmp_path: Path, registry: Registry) -> None:
    """`delay: 5s` without retries or until never waits (val5): the operator meant a pause."""
    root = _setup(tmp_path)
    (root / "playbooks" / "settle.yaml").write_text(
        "version: 1\nname: settle\nhosts: bots\ntasks:\n"
        "  - name: restart\n    supervisor: {action: restart, program: bot}\n    delay: 5s\n"
        "  - name: restart and wait\n    supervisor: {action: restart, program: bot}\n    retries: 2\n    delay: 5s\n",
        encoding="utf-8")
    result = load_config(root / "inventory.yaml", [root / "playbooks"], registry, env={})
    assert result.config is not None, result.diagnostics
    [said] = [w for w in result.warnings if "delay" in w.message]
    assert (Path(said.file).name, said.line, said.column) == ("settle.yaml", 7, 12), str(said)
    assert said.message == "delay: 5s is the pause between retries, and this task has none (no retries: or " \
                           "until:): it never waits"
