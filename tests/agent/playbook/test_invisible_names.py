"""A name with an invisible character (zero-width space, byte order mark, joiner, bidi control,
look-alike space) is an error at it (issue 15, F10: checks ``c1`` and ``c1<U+200B>`` coexisted)."""
from __future__ import annotations

from pathlib import Path

import pytest

from agent.playbook import load_config

from .conftest import GOOD
from .modules_for_tests import make_registry

PLAY = """version: 1
name: health
hosts: bots
checks:
  - name: c1
    http: {{url: "http://127.0.0.1:9/"}}
  - name: "c1{char}"
    http: {{url: "http://127.0.0.1:9/"}}
    depends_on: ["c1"]
"""


@pytest.mark.parametrize("char", ["\u200b", "\ufeff", "\u200d", "\u202e", "\u00a0", "\u2060"])
def test_an_invisible_character_in_a_check_name_is_an_error_at_it(tmp_path: Path, char: str) -> None:
    (tmp_path / "inventory.yaml").write_text((GOOD / "inventory.yaml").read_text(encoding="utf-8"), encoding="utf-8")
    (tmp_path / "health.yaml").write_text(PLAY.format(char=char), encoding="utf-8")
    result = load_config(tmp_path / "inventory.yaml", [tmp_path / "health.yaml"], make_registry(), env={})
    found = [d for d in result.diagnostics if "invisible character" in d.message]
    assert len(found) == 1 and found[0].line == 7, [str(d) for d in result.diagnostics]
    assert f"U+{ord(char):04X}" in found[0].message


def test_an_invisible_character_in_a_host_key_or_a_reference_is_an_error_at_it(tmp_path: Path) -> None:
    inventory = (GOOD / "inventory.yaml").read_text(encoding="utf-8").replace("  box2: {}", '  "box2\u200b": {}')
    (tmp_path / "inventory.yaml").write_text(inventory, encoding="utf-8")
    (tmp_path / "health.yaml").write_text(PLAY.format(char="").replace('"c1"', "c2").replace(
        "hosts: bots", 'hosts: "bots\ufeff"'), encoding="utf-8")
    result = load_config(tmp_path / "inventory.yaml", [tmp_path / "health.yaml"], make_registry(), env={})
    found = sorted((Path(d.file).name, d.line) for d in result.diagnostics if "invisible character" in d.message)
    box = next(i for i, t in enumerate(inventory.splitlines(), 1) if "box2" in t)
    assert found == [("health.yaml", 3), ("inventory.yaml", box)], [str(d) for d in result.diagnostics]


def test_emoji_and_text_in_free_fields_are_not_judged(tmp_path: Path) -> None:
    (tmp_path / "inventory.yaml").write_text((GOOD / "inventory.yaml").read_text(encoding="utf-8"), encoding="utf-8")
    play = PLAY.format(char="").replace('"c1"', "c2").replace("name: health\n",
                                                               "name: health\ndescription: \"ops \U0001F468\u200d\U0001F4BB\"\n")
    (tmp_path / "health.yaml").write_text(play.replace('name: "c1"', 'name: "c3"'), encoding="utf-8")
    result = load_config(tmp_path / "inventory.yaml", [tmp_path / "health.yaml"], make_registry(), env={})
    assert not [d for d in result.diagnostics if "invisible" in d.message], [str(d) for d in result.diagnostics]
