"""Loading good configurations, and how problems across files are collected."""
from __future__ import annotations

from pathlib import Path

import pytest

from agent.core.states import Severity
from agent.modules.registry import Registry
from agent.playbook import Diagnostic, load_config, resolve_hosts
from botwarden.errors import ConfigError

from .conftest import GOOD
from .modules_for_tests import HttpCheck

SLACK = "slack://T0KENA/T0KENB/S3CR3TT0KEN"
MINIMAL_NOTIFY = "notify: {targets: {inbox: {url: 'json://localhost/'}}, routes: [{name: all, targets: [inbox]}]}\n"


def _good(registry: Registry, **kwargs):
    kwargs.setdefault("env", {"SLACK_WEBHOOK_URL": SLACK})
    return load_config(GOOD / "inventory.yaml", [GOOD / "playbooks"], registry, **kwargs)


def test_good_configuration_loads(registry: Registry) -> None:
    result = _good(registry)

    assert result.diagnostics == []
    config = result.config
    assert config is not None
    assert sorted(config.playbooks) == ["bot-health", "emergency"]
    health = config.playbooks["bot-health"]
    assert health.schedule is not None and health.schedule.every == 15.0
    alive, memory = health.checks
    assert (alive.module, alive.after, alive.for_, alive.timeout, alive.every) == ("http", 2, 30.0, 5.0, 5.0)
    assert alive.severity is Severity.CRITICAL and alive.remediate == ["restart-bot"]
    assert alive.source is not None and alive.source.line == 10
    assert memory.warning_threshold is not None and memory.warning_threshold.op == ">"
    budget = health.remediations["restart-bot"].budget
    assert budget is not None and (budget.max, budget.within, budget.then) == (3, 1800.0, "emergency")
    assert health.remediations["restart-bot"].cooldown == 60.0


def test_checks_are_bound_per_host_with_rendered_params(registry: Registry) -> None:
    config = _good(registry).config
    assert config is not None

    by_key = {b.key: b for b in config.bound_checks}
    assert sorted(by_key) == ["bot-health/local/bot loop is alive", "bot-health/local/bot memory"]
    alive = by_key["bot-health/local/bot loop is alive"]
    assert alive.module is HttpCheck
    settings_url = config.settings.bot.health_url
    assert alive.params == HttpCheck.Params(url=settings_url, timeout=2.0)  # timeout from the merge key
    assert (alive.interval, alive.timeout) == (5.0, 5.0)  # check `every` beats the play schedule
    memory = by_key["bot-health/local/bot memory"]
    assert memory.interval == 15.0 and memory.value_expr == "memory_percent"
    assert memory.vars["mem_warning"] == 80 and memory.vars["host"] == "local"


def test_host_vars_merge_settings_global_group_host(registry: Registry) -> None:
    config = _good(registry).config
    assert config is not None

    local = config.hosts["local"].vars
    assert local["team"] == "trading"  # group var beats global var
    assert local["region"] == "eu"  # host var
    assert local["bot"]["program"] == "bot" and local["host"] == "local"
    assert config.hosts["local"].supervisor_url == config.settings.template_vars()["supervisor"]["url"]
    assert config.hosts["box2"].vars["team"] == "ops"  # not in the group


def test_target_urls_are_rendered_and_optional_ones_can_be_empty(registry: Registry) -> None:
    config = _good(registry).config
    assert config is not None
    targets = config.inventory.notify.targets
    assert targets["inbox"].rendered_url == f"json://{config.settings.inbox.host}:{config.settings.inbox.port}/"
    assert targets["slack"].rendered_url == SLACK
    assert SLACK not in repr(targets["slack"])

    without_env = _good(registry, env={}).config
    assert without_env is not None
    assert not without_env.inventory.notify.targets["slack"].enabled


def test_routes_first_match_wins_unless_continue(registry: Registry) -> None:
    config = _good(registry).config
    assert config is not None
    notify = config.inventory.notify

    critical = notify.routes_for(severity="critical", host="local", play="p", check="c")
    assert [r.name for r in critical] == ["critical", "default"]  # `continue: true`
    warning = notify.routes_for(severity="warning", host="local", play="p", check="c")
    assert [r.name for r in warning] == ["default"]


def test_resolve_hosts(registry: Registry) -> None:
    config = _good(registry).config
    assert config is not None
    inventory = config.inventory
    assert resolve_hosts(inventory, "all") == ["local", "box2"]
    assert resolve_hosts(inventory, "bots") == ["local"]
    assert resolve_hosts(inventory, "box2") == ["box2"]
    with pytest.raises(ConfigError, match="no host or group named 'nope'"):
        resolve_hosts(inventory, "nope")


def test_missing_inventory_uses_the_default(tmp_path: Path, registry: Registry) -> None:
    result = load_config(tmp_path / "inventory.yaml", [GOOD / "playbooks"], registry, env={})

    assert result.diagnostics == []
    config = result.config
    assert config is not None
    assert list(config.hosts) == ["local"]
    assert resolve_hosts(config.inventory, "bots") == ["local"]
    assert config.inventory.notify.targets["inbox"].rendered_url.startswith("json://")


def test_all_errors_are_collected_across_files(tmp_path: Path, registry: Registry) -> None:
    (tmp_path / "a.yaml").write_text(
        "version: 1\nname: a\nhosts: nowhere\nchecks:\n"
        "  - name: one\n    http: {url: x}\n    expct: 'true'\n    after: 0\n"
        "  - name: two\n    process: {program: bot}\n    warning: '> 90'\n    critical: '> 80'\n"
    )
    (tmp_path / "b.yaml").write_text("version: 1\nname: a\nhosts: bots\ntasks:\n  - command: {argv: []}\n")
    (tmp_path / "c.yml").write_text("version: 1\nname: c\nhosts: [bots\n")
    (tmp_path / "notes.txt").write_text("not a playbook")

    result = load_config(GOOD / "inventory.yaml", [tmp_path], registry, env={})

    assert result.config is None
    found = {(Path(d.file).name, d.line, d.message.split(":")[0]) for d in result.diagnostics}
    assert ("a.yaml", 7, "unknown key 'expct'") in found
    assert ("a.yaml", 8, "checks[0].after") in found  # structure errors of one file are all reported
    assert ("b.yaml", 2, "duplicate playbook name 'a' (also in " + str(tmp_path / "a.yaml")) not in found
    assert any(f == "b.yaml" and m.startswith("tasks[0].command.argv") for f, _, m in found)
    assert any(f == "c.yml" and m == "YAML syntax error" for f, _, m in found)
    assert not any(f == "notes.txt" for f, _, _ in found)


def test_rules_run_on_every_valid_file(tmp_path: Path, registry: Registry) -> None:
    (tmp_path / "a.yaml").write_text(
        "version: 1\nname: a\nhosts: nowhere\nchecks:\n"
        "  - name: two\n    process: {program: bot}\n    warning: '> 90'\n    critical: '> 80'\n"
    )
    (tmp_path / "b.yaml").write_text("version: 1\nname: a\nhosts: bots\n")

    result = load_config(GOOD / "inventory.yaml", [tmp_path], registry, env={})

    messages = sorted((Path(d.file).name, d.line, d.message) for d in result.diagnostics)
    assert [m[:2] for m in messages] == [("a.yaml", 3), ("b.yaml", 2)]
    assert "no host or group named 'nowhere'" in messages[0][2]
    assert messages[1][2].startswith("duplicate playbook name 'a'")


def test_anchors_and_merge_keys(tmp_path: Path, registry: Registry) -> None:
    (tmp_path / "p.yaml").write_text(
        "version: 1\nname: anchors\nhosts: bots\nschedule: {every: 1m}\n"
        "x-check: &base\n  process: {program: bot}\n  after: 3\n  for: 2m\n  tags: [bot]\n"
        "checks:\n"
        "  - <<: *base\n    name: memory\n    warning: '> 80'\n"
        "  - <<: *base\n    name: cpu\n    value: cpu_percent\n    after: 5\n    critical: '> 95'\n"
    )
    result = load_config(GOOD / "inventory.yaml", [tmp_path], registry, env={})

    assert result.diagnostics == []
    assert result.config is not None
    memory, cpu = result.config.playbooks["anchors"].checks
    assert (memory.after, memory.for_, memory.tags, memory.module) == (3, 120.0, ["bot"], "process")
    assert (cpu.after, cpu.value) == (5, "cpu_percent")  # an explicit key beats the merged one


def test_missing_paths_and_empty_files_are_reported(tmp_path: Path, registry: Registry) -> None:
    (tmp_path / "empty.yaml").write_text("# nothing here\n")
    result = load_config(GOOD / "inventory.yaml", [tmp_path / "empty.yaml", tmp_path / "nope.yaml"],
                         registry, env={})
    messages = {(Path(d.file).name, d.message) for d in result.diagnostics}
    assert messages == {("empty.yaml", "the playbook is empty"), ("nope.yaml", "no such file or directory")}


def test_secrets_from_env_never_appear_in_diagnostics(tmp_path: Path, registry: Registry) -> None:
    secret = "hunter2-very-secret"
    (tmp_path / "p.yaml").write_text(
        "version: 1\nname: leak\nhosts: bots\nchecks:\n"
        "  - name: leaky\n    http: {url: x, timeout: '{{ env.TOKEN }}'}\n"
        "  - name: leaky2\n    http: {url: '{{ env.TOKEN | int }}'}\n"
    )
    result = load_config(GOOD / "inventory.yaml", [tmp_path], registry, env={"TOKEN": secret})

    assert len(result.diagnostics) == 2
    text = "\n".join(str(d) for d in result.diagnostics)
    # The duration validator quotes its input; the value read from env is masked.
    assert "checks[0].http.timeout: '***' is not a duration" in text
    assert "checks[1].http.url: Input should be a valid string" in text  # `| int` gave 0
    assert secret not in text


def test_load_config_never_raises_on_garbage(tmp_path: Path, registry: Registry) -> None:
    cases = ["[]", "42", "version: 1\nname: x\nchecks: {a: 1}\n", "version: 1\nname: x\nchecks: [1, null]\n",
             "version: 1\nname: x\ntasks: [{block: 3}]\n", "{1: 2}", "version: 1\nname: x\nremediations: []\n",
             "version: 1\nname: x\nchecks:\n  - http: 3\n", "!!python/object:os.system 'echo'\n",
             "a: &a [*a]\n", "version: 1\nname: x\nvars: {a: '{{ x '}\n"]
    for index, text in enumerate(cases):
        (tmp_path / f"{index}.yaml").write_text(text)
        result = load_config(GOOD / "inventory.yaml", [tmp_path / f"{index}.yaml"], registry, env={})
        assert result.config is None and result.diagnostics, text
        assert all(isinstance(d, Diagnostic) and d.file for d in result.diagnostics)


def test_invalid_settings_reference_is_reported(tmp_path: Path, registry: Registry) -> None:
    inventory = tmp_path / "inventory.yaml"
    inventory.write_text("version: 1\nsettings: missing.yaml\nhosts: {local: {}}\n" + MINIMAL_NOTIFY)
    result = load_config(inventory, [], registry, env={})
    [diag] = result.diagnostics
    assert (diag.line, diag.column) == (2, 11) and "settings file 'missing.yaml' not found" in diag.message


def test_settings_file_feeds_template_vars(tmp_path: Path, registry: Registry) -> None:
    (tmp_path / "settings.yaml").write_text("bot: {program: trader, port: 9999}\n")
    inventory = tmp_path / "inventory.yaml"
    inventory.write_text("version: 1\nsettings: settings.yaml\nhosts: {local: {}}\ngroups: {bots: {hosts: [local]}}\n"
                         + MINIMAL_NOTIFY)
    result = load_config(inventory, [GOOD / "playbooks"], registry, env={})

    assert result.diagnostics == []
    assert result.config is not None
    by_key = {b.key: b for b in result.config.bound_checks}
    assert by_key["bot-health/local/bot memory"].params.program == "trader"
    assert by_key["bot-health/local/bot loop is alive"].params.url == "http://127.0.0.1:9999/health"


def test_repository_inventory_is_valid(registry: Registry) -> None:
    root = Path(__file__).resolve().parents[3]
    result = load_config(root / "inventory.yaml", [], registry, env={})
    assert result.diagnostics == []
    assert result.config is not None
    assert result.config.inventory.notify.targets["inbox"].enabled
