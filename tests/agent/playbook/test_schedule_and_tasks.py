"""Schedules (crontab weekday semantics) and run-time task binding."""
from __future__ import annotations

import re
from datetime import UTC, datetime
from pathlib import Path

import pytest
from pydantic import ValidationError

from agent.modules.registry import Registry
from agent.playbook import Schedule, Task, bind_task_params, load_config
from agent.playbook.cron import crontab_trigger
from agent.playbook.rules import all_tasks
from botwarden.errors import ConfigError

from .conftest import GOOD
from .modules_for_tests import CommandAction, SupervisorAction

MONDAY = datetime(2024, 1, 1, 0, 0, tzinfo=UTC)  # 2024-01-01 was a Monday


def _weekdays(expr: str, count: int = 7) -> list[str]:
    trigger = crontab_trigger(expr, "UTC")
    out, previous, now = [], None, MONDAY
    for _ in range(count):
        fire = trigger.get_next_fire_time(previous, now)
        out.append(fire.strftime("%a"))
        previous, now = fire, fire
    return out


@pytest.mark.parametrize("expr, days", [
    ("0 8 * * 1-5", ["Mon", "Tue", "Wed", "Thu", "Fri", "Mon", "Tue"]),
    ("0 8 * * 0", ["Sun", "Sun"]),
    ("0 8 * * 7", ["Sun", "Sun"]),
    ("0 8 * * 6,0", ["Sat", "Sun", "Sat"]),
    ("0 8 * * mon-fri", ["Mon", "Tue", "Wed", "Thu", "Fri", "Mon"]),
    ("0 8 * * */2", ["Tue", "Thu", "Sat", "Sun", "Tue"]),
])
def test_cron_weekdays_mean_what_crontab_means(expr: str, days: list[str]) -> None:
    assert _weekdays(expr, len(days)) == days


def test_schedule_trigger_uses_the_timezone() -> None:
    trigger = Schedule(cron="0 8 * * *", timezone="America/New_York").trigger()
    fire = trigger.get_next_fire_time(None, MONDAY)
    assert fire.utcoffset() is not None and fire.hour == 8 and str(fire.tzinfo) == "America/New_York"


@pytest.mark.parametrize("data", [{}, {"every": "1m", "cron": "* * * * *"}, {"cron": "* * *"},
                                  {"cron": "0 8 * * 9"}, {"every": "-1s"}])
def test_schedule_rejects(data: dict) -> None:
    with pytest.raises(ValidationError):
        Schedule.model_validate(data)


def test_task_name_defaults_to_module_and_params() -> None:
    task = Task.model_validate({"module": "supervisor", "params": {"action": "restart", "program": "bot"}})
    assert task.name == "supervisor action=restart program=bot"
    assert Task.model_validate({"until": "x", "module": "command"}).effective_retries == 3
    assert Task.model_validate({"module": "command"}).effective_retries == 0


def _emergency_tasks(registry: Registry) -> dict[str, Task]:
    config = load_config(GOOD / "inventory.yaml", [GOOD / "playbooks"], registry, env={}).config
    assert config is not None
    return {task.name: task for _, task in all_tasks(config.playbooks["emergency"])}


def test_bind_task_params_renders_with_runtime_vars(registry: Registry) -> None:
    tasks = _emergency_tasks(registry)
    from agent.playbook import Templating

    params = bind_task_params(tasks["supervisor action=stop program={{ bot.program }}"], registry,
                              Templating(None, env={}), {"bot": {"program": "trader"}})
    assert params == SupervisorAction.Params(action="stop", program="trader")
    halt = bind_task_params(tasks["trip the circuit breaker"], registry, Templating(None, env={}), {})
    assert halt == CommandAction.Params(argv=["bot", "halt"])


def test_bind_task_params_errors_carry_file_and_line_but_no_secret(registry: Registry) -> None:
    from agent.playbook import Templating
    from agent.playbook.models import Source

    tpl = Templating(None, env={"SECRET": "abcd-efgh-1234"})
    task = Task.model_validate({"name": "bad", "module": "supervisor",
                                "params": {"action": "{{ env.SECRET }}", "program": "bot"},
                                "source": Source(file="plays/x.yaml", line=7)})
    with pytest.raises(ConfigError) as info:
        bind_task_params(task, registry, tpl, {})
    message = str(info.value)
    assert message.startswith("plays/x.yaml:7: task 'bad': invalid 'supervisor' parameters: action:")
    assert "abcd-efgh-1234" not in message

    undefined = Task.model_validate({"name": "u", "module": "command", "params": {"argv": ["{{ nope }}"]},
                                     "source": Source(file="plays/x.yaml", line=9)})
    with pytest.raises(ConfigError, match=r"^plays/x.yaml:9: task 'u': .*'nope' is undefined"):
        bind_task_params(undefined, registry, tpl, {})


def test_tasks_with_templates_are_validated_only_for_syntax_at_load(tmp_path: Path, registry: Registry) -> None:
    (tmp_path / "p.yaml").write_text(
        "version: 1\nname: p\nhosts: bots\ntasks:\n"
        "  - command: {argv: [echo]}\n    register: out\n"
        "  - supervisor: {action: '{{ out.msg }}', program: bot}\n"  # valid only at run time
    )
    result = load_config(GOOD / "inventory.yaml", [tmp_path], registry, env={})
    assert result.diagnostics == []


@pytest.mark.parametrize(("expr", "never"), [
    ("0 0 30 2 *", "day 30 never comes in Feb"),
    ("0 0 31 feb,apr *", "day 31 never comes in Feb, Apr"),
    ("*/5 * 31 11 *", "day 31 never comes in Nov"),
    ("0 0 30-31 2 *", "days 30,31 never come in Feb"),
    ("0 0 29 2 *", None),  # leap years
    ("0 0 31 4-6 *", None),  # May has a 31st
    ("0 0 31 * *", None),
    ("0 8 * * 1-5", None),
])
def test_a_cron_schedule_that_never_runs_is_refused(expr: str, never: str | None) -> None:
    from agent.playbook.cron import check_crontab

    if never is None:
        assert check_crontab(expr) == expr
    else:
        with pytest.raises(ValueError, match=never):
            check_crontab(expr)


@pytest.mark.parametrize(("nickname", "fields"), [("@daily", "0 0 * * *"), ("@hourly", "0 * * * *"),
                                                  ("@Weekly", "0 0 * * 0"), ("@midnight", "0 0 * * *")])
def test_a_crontab_nickname_is_said_with_its_five_fields(nickname: str, fields: str) -> None:
    """schedule: {cron: "@daily"} was 'a cron expression has 5 fields ..., got 1' (brk15)."""
    with pytest.raises(ValueError, match="crontab nickname.*" + re.escape(f'"{fields}"')):
        crontab_trigger(nickname)
    assert crontab_trigger(fields) is not None
