"""Configuration that loads but is silently ignored, or cannot do what it says (issue 15): each
is a positioned warning with a hint; the configuration still loads and `agent validate` exits 0."""
from __future__ import annotations

from pathlib import Path

import pytest

from agent.cli.main import main
from agent.modules.registry import Registry
from agent.playbook import LoadResult, load_config
from agent.playbook.constant_expressions import constant_truth

from .conftest import GOOD

PLAY = """version: 1
name: {name}
hosts: {hosts}
schedule: {{every: 15s}}
checks:
  - name: bot loop is alive
    http: {{url: "{{{{ bot.health_url }}}}"}}
    expect: {expect}
    tags: [bot]
"""


def _setup(tmp_path: Path, *, inventory_extra: str = "", routes: str = "", hosts: str = "bots",
           expect: str = '"status_code == 200"') -> Path:
    inventory = (GOOD / "inventory.yaml").read_text(encoding="utf-8")
    inventory = inventory.replace("  routes:\n", "  routes:\n" + routes, 1) + inventory_extra
    (tmp_path / "inventory.yaml").write_text(inventory, encoding="utf-8")
    books = tmp_path / "playbooks"
    books.mkdir()
    (books / "health.yaml").write_text(PLAY.format(name="health", hosts=hosts, expect=expect), encoding="utf-8")
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
                                                                          expect='"true"'), encoding="utf-8")
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
    shown = _only_warning(_load(root, registry))
    assert shown.startswith(f"{root / 'playbooks' / 'health.yaml'}:3:8: warning: hosts: 'spare' has no hosts"), shown
    assert "no check is scheduled" in shown and "hint: add hosts to the group 'spare'" in shown


@pytest.mark.parametrize(("match", "column", "message", "hint"), [
    ("{tags: [bto]}", 22, "matches tags 'bto', and no check or step with the tag has that name", "did you mean 'bot'?"),
    ("{play: [helth]}", 22, "matches play 'helth', and no playbook has that name", "did you mean 'health'?"),
    ("{play: ['bot-*']}", 22, "matches play 'bot-*'", None),
    ("{check: [bot loop is alive, nothing*]}", 42, "matches check 'nothing*'", None),
    ("{host: [lcoal]}", 22, "matches host 'lcoal'", "did you mean 'local'?"),
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
              "    - name: first\n      match: {severity: [critical]}\n      targets: [inbox]\n"
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
