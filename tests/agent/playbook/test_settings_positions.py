"""A rule of the stack settings across sections (a coin the paper exchange does not list, two
programs on one port) is said at the setting it names, in the settings file: it was said at the
file's first line (``1:1``, or the first section's key), whatever line the coin or port was
written on (brk15)."""
from __future__ import annotations

from pathlib import Path

import pytest

from agent.modules.registry import default_registry
from agent.playbook import load_config

REPO = Path(__file__).resolve().parents[3]

SETTINGS = """# my stack
web:
  port: 8091
exchange:
  port: 3101
bot:
  port: 8082
  coins:
    - BTC
    - {coin}
inbox:
  port: {inbox_port}
"""


@pytest.mark.parametrize(("coin", "inbox_port", "line", "rule"), [
    ("DOGE", 8025, 10, "paper-exchange-lists-the-coins"),
    ("eth", 8025, 10, "paper-exchange-lists-the-coins"),
    ("ETH", 8082, 7, "are both 8082"),
])
def test_a_rule_across_sections_is_said_at_the_setting_it_names(tmp_path: Path, coin: str, inbox_port: int,
                                                                  line: int, rule: str) -> None:
    (tmp_path / "inventory.yaml").write_text((REPO / "inventory.yaml").read_text()
                                             .replace("settings: null", "settings: settings.yaml", 1))
    (tmp_path / "settings.yaml").write_text(SETTINGS.format(coin=coin, inbox_port=inbox_port))
    result = load_config(tmp_path / "inventory.yaml", [], default_registry(), env={},
                         templates_dir=REPO / "templates")
    [found] = [d for d in result.diagnostics if rule in d.message]
    assert Path(found.file).name == "settings.yaml", str(found)
    assert found.line == line, str(found)
    assert found.source_line is not None and found.source_line.strip() in (f"- {coin}", "port: 8082"), str(found)


@pytest.mark.parametrize("text", ["", "\n\n", "# ports: to do\n# bot: {port: 8082}\n", "\ufeff\r\n"])
def test_a_named_settings_file_with_nothing_in_it_is_refused(tmp_path: Path, text: str) -> None:
    """A settings file emptied (an editor's crash, ``> settings.yaml``) ran every program on the
    built-in settings: the default ports, another stack's on a shared box (``settings: ''`` in
    the inventory is refused for that reason). Said at the file, with ``{}`` for the defaults on
    purpose; a configuration that ran with it keeps running (a warning in the last good one)."""
    (tmp_path / "inventory.yaml").write_text((REPO / "inventory.yaml").read_text()
                                             .replace("settings: null", "settings: settings.yaml", 1))
    settings = tmp_path / "settings.yaml"
    settings.write_bytes(text.encode())
    result = load_config(tmp_path / "inventory.yaml", [], default_registry(), env={},
                         templates_dir=REPO / "templates")
    [found] = result.diagnostics
    assert Path(found.file).name == "settings.yaml" and found.line == 1, str(found)
    assert "the settings file is empty" in found.message and found.hint and "{}" in found.hint, str(found)
    assert found.ran_as_read
    ran = load_config(tmp_path / "inventory.yaml", [], default_registry(), env={},
                      templates_dir=REPO / "templates", last_good=True)
    assert ran.config is not None and [w.message for w in ran.warnings if "is empty" in w.message], ran.diagnostics
    settings.write_text("{}\n")  # the built-in settings, on purpose
    assert load_config(tmp_path / "inventory.yaml", [], default_registry(), env={},
                       templates_dir=REPO / "templates").diagnostics == []


def test_agent_stack_refuses_an_empty_settings_file(tmp_path: Path) -> None:
    from agent.stack import locate
    from botwarden.errors import ConfigError

    (tmp_path / "inventory.yaml").write_text((REPO / "inventory.yaml").read_text()
                                             .replace("settings: null", "settings: settings.yaml", 1))
    (tmp_path / "settings.yaml").write_text("# nothing yet\n")
    with pytest.raises(ConfigError, match="the settings file is empty"):
        locate(tmp_path)
    (tmp_path / "settings.yaml").write_text("{}\n")
    assert locate(tmp_path).settings.bot.port == 8081


@pytest.mark.parametrize(("where", "written", "said"), [
    ("vars: {}", "vars: {bot: {port: 8089}}", "bot.port"),
    ("local: {vars: {}}", "local: {vars: {inbox: {port: 8026}}}", "inbox.port"),
    ("bots: {hosts: [local], vars: {}}", "bots: {hosts: [local], vars: {supervisor: {socket: /tmp/x.sock}}}",
     "supervisor.socket"),
])
def test_a_var_overriding_a_setting_others_are_made_from_is_a_warning(tmp_path: Path, where: str, written: str,
                                                                      said: str) -> None:
    """``vars: {bot: {port: 8089}}`` in the inventory, meant to move the bot: accepted, and it moved
    nothing: ``bot.health_url`` (what the checks read) is made from the settings' port, and the bot
    listens there (brk15). A warning at the var, naming the values that do not follow."""
    (tmp_path / "inventory.yaml").write_text((REPO / "inventory.yaml").read_text().replace(where, written, 1))
    result = load_config(tmp_path / "inventory.yaml", [], default_registry(), env={},
                         templates_dir=REPO / "templates")
    assert result.diagnostics == [], "\n".join(map(str, result.diagnostics))
    [found] = [w for w in result.warnings if said in w.message]
    assert "do not follow" in found.message and found.hint and "settings file" in found.hint, str(found)
    assert found.line == written_line(tmp_path / "inventory.yaml", written), str(found)


def test_a_var_overriding_a_setting_with_what_is_made_from_it_is_fine(tmp_path: Path) -> None:
    written = "vars: {bot: {port: 8089, url: 'http://127.0.0.1:8089', health_url: 'http://127.0.0.1:8089/health', " \
              "metrics_url: 'http://127.0.0.1:8089/metrics'}}"
    (tmp_path / "inventory.yaml").write_text((REPO / "inventory.yaml").read_text().replace("vars: {}", written, 1))
    result = load_config(tmp_path / "inventory.yaml", [], default_registry(), env={},
                         templates_dir=REPO / "templates")
    assert result.diagnostics == [] and not [w for w in result.warnings if "do not follow" in w.message]


def written_line(path: Path, text: str) -> int:
    return next(i for i, line in enumerate(path.read_text().splitlines(), 1) if text in line)
