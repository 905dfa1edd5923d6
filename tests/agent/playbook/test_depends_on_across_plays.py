"""depends_on may name PLAYBOOK/CHECK of another play; validation and key resolution."""
from __future__ import annotations

from types import SimpleNamespace

from agent.modules.registry import default_registry
from agent.notify.lifecycle import parent_key
from agent.playbook import load_config

PARENT = """version: 1
name: health
hosts: local
schedule: {every: 10s}
checks:
  - name: bot process
    command: {argv: ["true"]}
    expect: "rc == 0"
"""

CHILD = """version: 1
name: risk
hosts: local
schedule: {every: 10s}
checks:
  - name: pnl
    command: {argv: ["true"]}
    expect: "rc == 0"
    depends_on: [{dep}]
"""


def load(tmp_path, dep):
    (tmp_path / "health.yaml").write_text(PARENT)
    (tmp_path / "risk.yaml").write_text(CHILD.replace("{dep}", dep))
    return load_config(tmp_path / "no-inventory.yaml", [tmp_path], default_registry(), env={})


def test_a_check_of_another_play_is_accepted_and_resolved(tmp_path):
    res = load(tmp_path, "health/bot process")
    assert not res.diagnostics, [str(d) for d in res.diagnostics]
    bc = next(b for b in res.config.bound_checks if b.check.name == "pnl")
    assert parent_key(bc, "health/bot process", "local") == "health/local/bot process"


def test_an_unknown_reference_names_its_line_and_suggests(tmp_path):
    res = load(tmp_path, "health/bot proces")
    [d] = res.diagnostics
    assert d.file.endswith("risk.yaml") and d.line == 9
    assert "no check named 'health/bot proces'" in d.message and "health/bot process" in (d.hint or "")


def test_a_local_name_wins_over_the_slash_form():
    play = SimpleNamespace(name="p", checks=[SimpleNamespace(name="a/b")])
    bc = SimpleNamespace(play=play)
    assert parent_key(bc, "a/b", "h") == "p/h/a/b"
    assert parent_key(bc, "other/c", "h") == "other/h/c"
