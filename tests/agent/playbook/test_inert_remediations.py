"""Remediation settings that load but can never do what they say (issue 15, F7 and F8): a
cooldown that keeps the budget from ever being spent, a `budget.then` play with nothing to run,
a `when:` whose truth is constant. Each is reported at the line to change."""
from __future__ import annotations

from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from agent.core.values import format_duration
from agent.modules.registry import Registry
from agent.playbook import LoadResult, load_config

from .conftest import GOOD

HEALTH = """version: 1
name: health
hosts: bots
schedule: {{every: 15s}}
checks:
  - name: bot loop is alive
    http: {{url: "{{{{ bot.health_url }}}}"}}
    expect: "status_code == 200"
    remediate: [restart-bot]
remediations:
  restart-bot:
    steps:
      - name: restart
        supervisor: {{action: restart, program: "{{{{ bot.program }}}}"}}
{when}    budget: {{max: {max}, within: {within}, then: {then}}}
    cooldown: {cooldown}
"""
PANIC = "version: 1\nname: panic\nhosts: bots\n{body}"


def _load(tmp_path: Path, registry: Registry, *, max_runs: int = 3, within: str = "30m", cooldown: str = "1m",
          then: str = "panic", when: str = "", panic: str = "tasks:\n  - command: {argv: [bot, halt]}\n") -> LoadResult:
    (tmp_path / "inventory.yaml").write_text((GOOD / "inventory.yaml").read_text(encoding="utf-8"), encoding="utf-8")
    books = tmp_path / "playbooks"
    books.mkdir(exist_ok=True)
    step_when = f"        when: {when}\n" if when else ""
    (books / "health.yaml").write_text(HEALTH.format(max=max_runs, within=within, cooldown=cooldown, then=then,
                                                     when=step_when), encoding="utf-8")
    (books / "panic.yaml").write_text(PANIC.format(body=panic), encoding="utf-8")
    return load_config(tmp_path / "inventory.yaml", [books], registry, env={})


def _line_of(diag_file: str, needle: str) -> int:
    lines = Path(diag_file).read_text(encoding="utf-8").splitlines()
    return next(i for i, text in enumerate(lines, 1) if needle in text)


def _spendable(max_runs: int, within: float, cooldown: float) -> bool:
    """Whether a remediation that keeps failing ever has its budget spent, by the counting rule
    of agent/engine/remediation.py: runs start at least `cooldown` apart, a run counts while
    younger than `within`, and the budget is spent when `max` runs count."""
    starts = [k * cooldown for k in range(max_runs)]  # as early as the cooldown allows
    return all(starts[-1] - t < within for t in starts)


@settings(max_examples=25, deadline=None, derandomize=True, database=None)
@given(max_runs=st.integers(1, 10), within_min=st.integers(1, 120), cooldown_min=st.integers(1, 120))
def test_a_budget_the_cooldown_makes_unspendable_is_an_error_at_the_cooldown(
        tmp_path_factory: pytest.TempPathFactory, max_runs: int, within_min: int, cooldown_min: int) -> None:
    from .modules_for_tests import make_registry
    tmp = tmp_path_factory.mktemp("budget")
    result = _load(tmp, make_registry(), max_runs=max_runs, within=f"{within_min}m", cooldown=f"{cooldown_min}m")
    found = [d for d in result.diagnostics if "can never be spent" in d.message]
    if _spendable(max_runs, within_min * 60.0, cooldown_min * 60.0):
        assert not found and result.ok, result.diagnostics
    else:
        assert len(found) == 1, result.diagnostics
        assert Path(found[0].file).name == "health.yaml" and found[0].line == _line_of(found[0].file, "cooldown:")
        assert format_duration((max_runs - 1) * cooldown_min * 60.0) in (found[0].hint or "")


@pytest.mark.parametrize("panic", ["checks:\n  - name: x\n    http: {url: 'http://127.0.0.1:1/'}\n", "tasks: []\n",
                                   "description: nothing\n"])
def test_a_then_playbook_with_no_tasks_is_an_error_at_then(tmp_path: Path, registry: Registry, panic: str) -> None:
    result = _load(tmp_path, registry, panic=panic)
    [diag] = [d for d in result.diagnostics if "has no tasks" in d.message]
    assert Path(diag.file).name == "health.yaml" and diag.line == _line_of(diag.file, "then: panic"), diag
    assert "'panic'" in diag.message


CONSTANTS = [("false", False), ("no", False), ('"1 == 2"', False), ('"not true"', False), ("\"'restart'\"", True),
             ("true", True), ('"2 > 1 or host == \'a\'"', True), ('"\'\' or false"', False),
             ("\"host == 'a' and host == 'b'\"", False), ("\"host == 'a' and host != 'a'\"", False)]


@pytest.mark.parametrize(("when", "truth"), CONSTANTS)
def test_a_constant_when_on_a_remediation_step_is_reported_at_it(tmp_path: Path, registry: Registry,
                                                                 when: str, truth: bool) -> None:
    result = _load(tmp_path, registry, when=when)
    shown = [d for d in [*result.diagnostics, *result.warnings] if "when:" in d.message and "always" in d.message]
    assert len(shown) == 1, (result.diagnostics, result.warnings)
    diag = shown[0]
    assert Path(diag.file).name == "health.yaml" and diag.line == _line_of(diag.file, "when:"), diag
    assert diag.severity == ("warning" if truth else "error")
    assert f"always {'true' if truth else 'false'}" in diag.message


@pytest.mark.parametrize(("when", "truth"), CONSTANTS)
def test_a_constant_when_on_a_task_is_a_warning_at_it(tmp_path: Path, registry: Registry,
                                                      when: str, truth: bool) -> None:
    # a second task runs: a budget.then play whose every task is skipped is an error (issue 15, F10,
    # test_a_budget_then_to_a_play_that_does_nothing_is_an_error)
    result = _load(tmp_path, registry, panic=f"tasks:\n  - command: {{argv: [bot, halt]}}\n    when: {when}\n"
                                              "  - command: {argv: [bot, stop]}\n")
    assert result.ok, result.diagnostics
    [diag] = result.warnings
    assert Path(diag.file).name == "panic.yaml" and diag.line == _line_of(diag.file, "when:"), diag


@pytest.mark.parametrize("when", ['"check.facts.state == \'EXITED\'"', '"bot.network == \'paper\'"',
                                  '"x is defined"'])
def test_a_when_that_reads_a_value_is_not_reported(tmp_path: Path, registry: Registry, when: str) -> None:
    result = _load(tmp_path, registry, when=when)
    assert not [d for d in [*result.diagnostics, *result.warnings] if "always" in d.message], result.warnings


@pytest.mark.parametrize(("expression", "truth"), [
    ("check.facts.state == 'EXITED' and check.facts.state == 'FATAL'", False),
    ("x > 5 and x < 3", False), ("5 < x and x < 4", False), ("x > 3 and x <= 3", False),
    ("x == 5 and x > 7", False), ("s == 'a' and s != 'a'", False), ("a and x == 1 and b and x == 2", False),
    ("x >= 3 and x <= 3", None), ("x == 'a' and x > 3", None), ("a == 1 and b == 2", None),
    ("x > 1 and x > 2", None), ("x | int > 5 and x | int < 3", None),  # a filter may differ each call
])
def test_conditions_that_contradict_each_other_are_always_false(expression: str, truth: bool | None) -> None:
    from agent.playbook.constant_expressions import constant_truth

    assert constant_truth(expression) is truth


SUPERVISED = """version: 1
name: health
hosts: bots
checks:
  - name: bot process
    supervisor: {{program: "{{{{ bot.program }}}}"}}
    expect: {expect}
    remediate: [restart-bot]
remediations:
  restart-bot:
    steps:
      - name: restart
        supervisor: {{action: restart, program: "{{{{ bot.program }}}}"}}
        when: {when}
"""


def _load_supervised(tmp_path: Path, *, when: str, expect: str = "\"state == 'RUNNING'\"") -> LoadResult:
    from agent.modules.registry import default_registry

    (tmp_path / "inventory.yaml").write_text((GOOD / "inventory.yaml").read_text(encoding="utf-8"), encoding="utf-8")
    (tmp_path / "health.yaml").write_text(SUPERVISED.format(when=when, expect=expect), encoding="utf-8")
    return load_config(tmp_path / "inventory.yaml", [tmp_path / "health.yaml"], default_registry(), env={})


@pytest.mark.parametrize(("when", "says"), [
    ("\"check.state == 'critical'\"", "check.state is one of OK, WARNING, CRITICAL, UNKNOWN"),
    ("\"check.facts.state == 'exited'\"", "check.facts.state is one of RUNNING, STARTING"),
    ("\"check.facts.state in ['exited', 'fatal', 'backoff']\"", "check.facts.state is one of"),
    ("\"check.facts['state'] == 'Exited'\"", "check.facts['state'] is one of"),
    ("\"check.facts.state == 'EXITED' and check.facts.state is none\"", None),
    ("\"check.facts.state in ['EXITED'] and check.facts.state == 'FATAL'\"", None),
])
def test_a_remediation_when_comparing_a_known_value_with_what_it_never_holds_is_an_error(
        tmp_path: Path, when: str, says: str | None) -> None:
    """Breaker v4, F6: the wrong case of a state, or a contradiction through ``is none``/``in``,
    loaded, and the automatic restart was silently dead."""
    result = _load_supervised(tmp_path, when=when)
    [diag] = [d for d in result.diagnostics if "is always false" in d.message]
    assert diag.line == _line_of(diag.file, "when:") and "the step never runs" in diag.message, diag
    if says:
        assert says in (diag.hint or ""), diag.hint


@pytest.mark.parametrize("when", ["\"check.state == 'CRITICAL'\"", "\"check.facts.state in ['EXITED', 'FATAL']\"",
                                  "\"check.facts.state is defined and check.facts.state == 'BACKOFF'\""])
def test_a_remediation_when_on_values_the_check_can_hold_is_accepted(tmp_path: Path, when: str) -> None:
    result = _load_supervised(tmp_path, when=when)
    assert result.ok and not result.warnings, (result.diagnostics, result.warnings)


def test_a_remediation_when_reading_a_fact_the_module_does_not_produce_is_an_error(tmp_path: Path) -> None:
    result = _load_supervised(tmp_path, when="\"check.facts.statee == 'EXITED'\"")
    [diag] = [d for d in result.diagnostics if "no fact 'statee'" in d.message]
    assert diag.line == _line_of(diag.file, "when:") and diag.hint == "did you mean 'state'?", diag


def test_an_expect_comparing_a_fact_with_a_value_it_never_holds_warns(tmp_path: Path) -> None:
    """On a check that remediates it is an error on disk (brk15: it restarted the bot at every
    failure until the budget handed over to the emergency), still a warning in a last good
    configuration that ran with it; on a check that does not remediate, a warning."""
    from agent.modules.registry import default_registry

    result = _load_supervised(tmp_path, when="\"check.state == 'CRITICAL'\"", expect="\"state == 'running'\"")
    [diag] = [d for d in result.diagnostics if "expect:" in d.message and "always false" in d.message]
    assert "state is one of RUNNING" in (diag.hint or "") and diag.ran_as_read, diag
    ran = load_config(tmp_path / "inventory.yaml", [tmp_path / "health.yaml"], default_registry(), env={},
                      last_good=True)
    [diag] = [w for w in ran.warnings if "expect:" in w.message and "always false" in w.message]
    assert "state is one of RUNNING" in (diag.hint or ""), diag
    play = tmp_path / "health.yaml"
    play.write_text(play.read_text().replace("    remediate: [restart-bot]\n", "", 1))
    alone = load_config(tmp_path / "inventory.yaml", [play], default_registry(), env={})
    assert not [d for d in alone.diagnostics if "expect:" in d.message], alone.diagnostics
    [diag] = [w for w in alone.warnings if "expect:" in w.message and "always false" in w.message]
    assert "state is one of RUNNING" in (diag.hint or ""), diag
