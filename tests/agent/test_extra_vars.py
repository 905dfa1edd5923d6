"""``agent run-playbook -e``: a name no part of the play reads is said (val5), as the operator sees it
against the shipped playbooks; a name the play or its templates read, or a var it overrides, is not."""
from __future__ import annotations

from pathlib import Path

import pytest

from agent.cli.extra_vars import unread_extra_vars
from agent.modules.registry import default_registry
from agent.playbook import load_config
from agent.playbook.loader import Config

REPO = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="module")
def shipped() -> Config:
    result = load_config(REPO / "inventory.yaml", [REPO / "playbooks"], default_registry(), env={},
                         templates_dir=REPO / "templates")
    assert result.config is not None, result.diagnostics
    return result.config


def _unread(config: Config, play: str, *names: str) -> list[str]:
    found = config.playbooks[play]
    return unread_extra_vars(found, config.templating, names, [h.vars for h in config.hosts.values()])


def test_a_misspelt_extra_var_is_said_with_the_name_the_play_reads(shipped: Config) -> None:
    assert _unread(shipped, "weekly", "report_untl") == [
        "warning: -e report_untl: playbook 'weekly' reads no variable of that name, so it changes nothing "
        "(did you mean 'report_until'?)"]


@pytest.mark.parametrize(("play", "name"), [
    ("weekly", "report_until"),          # read by a task's parameter template
    ("emergency", "reason"),             # read only behind `is defined`
    ("emergency", "close_slippage_pct"),  # overrides the play's var
    ("weekly", "bot"),                   # overrides a host var (the stack settings)
    ("restore", "backup"),
])
def test_a_name_the_play_reads_or_overrides_is_not_said(shipped: Config, play: str, name: str) -> None:
    assert _unread(shipped, play, name) == []


@pytest.mark.parametrize(("name", "value", "said"), [
    ("close_attempts", "abc", "attempts: Input should be a valid integer"),
    ("close_attempts", -5, "attempts: Input should be greater than or equal to 1"),
    ("close_slippage_pct", "5%", "slippage_pct: Input should be a valid number"),
])
def test_an_extra_var_a_step_would_refuse_is_said_before_anything_runs(
        shipped: Config, name: str, value: object, said: str) -> None:
    """``agent run-playbook emergency -e close_attempts=abc`` ran the emergency: its flatten step
    failed when it ran (ignored) and the play went on with the positions open (brk15)."""
    from agent.cli.extra_vars import extra_var_problems

    play = shipped.playbooks["emergency"]
    problems = extra_var_problems(play, shipped, list(shipped.hosts.values()), {name: value}, default_registry())
    assert len(problems) == 1 and said in problems[0] and f"-e {name}" in problems[0], problems
    assert "emergency.yaml:" in problems[0]


@pytest.mark.parametrize("extra", [{"close_attempts": 3}, {"close_slippage_pct": 0.5}, {"reason": "drill"}, {}])
def test_extra_vars_a_step_takes_are_not_problems(shipped: Config, extra: dict[str, object]) -> None:
    from agent.cli.extra_vars import extra_var_problems

    play = shipped.playbooks["emergency"]
    assert extra_var_problems(play, shipped, list(shipped.hosts.values()), extra, default_registry()) == []


def test_run_playbook_refuses_such_an_extra_var_with_a_usage_error(capsys: pytest.CaptureFixture[str]) -> None:
    from agent.cli.main import main
    from botwarden.errors import ExitCode

    code = main(["run-playbook", "emergency", "--check", "--inventory", str(REPO / "inventory.yaml"),
                 "-e", "close_attempts=abc"])
    out = "".join(capsys.readouterr())
    assert code == ExitCode.USAGE, out
    assert "nothing was run" in out and "PLAY [emergency]" not in out


def test_an_extra_var_name_with_a_lookalike_letter_says_which(shipped: Config) -> None:
    """-e close_att\\u0435mpts=3 (a Cyrillic e, as a chat or a keyboard layout writes it) was said
    'did you mean close_attempts?', the two names printed alike: the letter is named (r15c)."""
    [said] = _unread(shipped, "emergency", "close_att\u0435mpts")
    assert "did you mean 'close_attempts'?" in said, said
    assert "U+0435" in said and "CYRILLIC SMALL LETTER IE" in said, said
