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
