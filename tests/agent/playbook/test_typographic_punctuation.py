"""A list item or a key written with a typographic look-alike of YAML's punctuation, as a word
processor, an input method or a chat writes them: ``<U+2013> bot`` (en dash) for ``- bot`` loaded as
the one tag '<U+2013> bot' with the hint "a list is written [<U+2013>, bot]"; ``severity<U+FF1A>
critical`` (fullwidth colon) was a syntax error said a line late, at the next key. Said at the character, as what it is
(brk15); text that holds such characters on purpose (quoted, a block scalar, a comment, the middle
of a value) is left alone."""
from __future__ import annotations

from pathlib import Path

import pytest

from agent.modules.registry import default_registry
from agent.playbook import load_config

REPO = Path(__file__).resolve().parents[3]
PLAY = """version: 1
name: p
description: |
  what it does:
  \u2013 looks at the bot \u2014 twice
hosts: bots
schedule: {{every: 30s}}
checks:
  - name: bot process
    supervisor: {{program: bot}}
    expect: "running"
{extra}    tags:
      - bot
"""


@pytest.mark.parametrize(("extra", "line", "column", "char"), [
    ("", 13, 7, "U+2013 (en dash)"),  # the tags' item, typed as an en dash (below)
    ("    severity\uff1a critical\n", 12, 13, "U+FF1A (fullwidth colon)"),
    ("    severity: critical\n", 14, 7, "U+2022 (bullet)"),
])
def test_a_look_alike_of_yaml_punctuation_is_said_where_it_is(tmp_path: Path, extra: str, line: int, column: int,
                                                              char: str) -> None:
    written = PLAY.format(extra=extra)
    if char.startswith("U+2013"):
        written = written.replace("      - bot\n", "      \u2013 bot\n")
    elif char.startswith("U+2022"):
        written = written.replace("      - bot\n", "      \u2022 bot\n")
    (tmp_path / "inventory.yaml").write_text((REPO / "inventory.yaml").read_text())
    (tmp_path / "p.yaml").write_text(written)
    result = load_config(tmp_path / "inventory.yaml", [tmp_path / "p.yaml"], default_registry(), env={},
                         templates_dir=REPO / "templates")
    [found] = result.diagnostics
    assert (found.line, found.column) == (line, column), str(found)
    assert found.message.startswith(char) and found.hint and "retype it as" in found.hint, str(found)


def test_such_characters_in_text_are_left_alone(tmp_path: Path) -> None:
    written = PLAY.format(extra="    # \u2013 a comment with a dash\n") + \
        "remediations:\n  r:\n    steps:\n      - notify: {message: '\u2013 quoted \u2013', route: default}\n"
    (tmp_path / "inventory.yaml").write_text((REPO / "inventory.yaml").read_text())
    (tmp_path / "p.yaml").write_text(written)
    result = load_config(tmp_path / "inventory.yaml", [tmp_path / "p.yaml"], default_registry(), env={},
                         templates_dir=REPO / "templates")
    assert not [d for d in result.diagnostics if "where YAML needs" in d.message], \
        "\n".join(map(str, result.diagnostics))
