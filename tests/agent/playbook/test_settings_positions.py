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
