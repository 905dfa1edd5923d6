"""``{{ check.name }}`` in a message template of the inventory (alert, resolve...), as a
remediation step writes it: ``check`` is the check's name (text) there, so the template failed
at every message and each one went out as a plain list of facts; ``agent validate`` passed it
(brk15). An attribute text has not, of a variable that is text, is an error at its line."""
from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from agent.modules.registry import default_registry
from agent.playbook import load_config

REPO = Path(__file__).resolve().parents[3]


@pytest.mark.parametrize(("template", "written", "name"), [
    ("alert.md.j2", "**{{ state }}**: {{ check.name }} on {{ host }}\n", "check"),
    ("alert.md.j2", "{{ check }} on {{ host.name }}\n", "host"),
    ("resolve.md.j2", "resolved: {{ check }} (was {{ was.name }})\n", "was"),
])
def test_an_attribute_of_a_text_variable_is_refused(tmp_path: Path, template: str, written: str, name: str) -> None:
    shutil.copytree(REPO / "templates", tmp_path / "templates")
    shutil.copy(REPO / "inventory.yaml", tmp_path / "inventory.yaml")
    (tmp_path / "templates" / template).write_text("{# mine #}\n" + written)
    result = load_config(tmp_path / "inventory.yaml", [], default_registry(), env={},
                         templates_dir=tmp_path / "templates")
    [found] = result.diagnostics
    assert Path(found.file).name == template and found.line == 2, str(found)
    assert f"{name!r} is text here" in found.message and found.hint == f"write {{{{ {name} }}}}", str(found)
    assert found.column == written.index(f"{name}.") + 1, str(found)


@pytest.mark.parametrize("written", ["{{ check | upper }} {{ host.upper() }} {{ state.lower() }}\n",
                                     "{{ check }} on {{ host }}{% if dependents is defined %}{{ dependents }}"
                                     "{% endif %}\n"])
def test_text_methods_and_plain_names_are_fine(tmp_path: Path, written: str) -> None:
    shutil.copytree(REPO / "templates", tmp_path / "templates")
    shutil.copy(REPO / "inventory.yaml", tmp_path / "inventory.yaml")
    (tmp_path / "templates" / "alert.md.j2").write_text(written)
    result = load_config(tmp_path / "inventory.yaml", [], default_registry(), env={},
                         templates_dir=tmp_path / "templates")
    assert result.diagnostics == [], "\n".join(map(str, result.diagnostics))


def test_a_template_file_ordering_against_a_quoted_number_is_said_in_that_file_once(tmp_path: Path) -> None:
    """``{% if value > '90' %}`` in alert.md.j2 was said at the inventory line naming the template,
    twice (as the alert and as the repeat template), not at its line in the file (brk15)."""
    shutil.copytree(REPO / "templates", tmp_path / "templates")
    shutil.copy(REPO / "inventory.yaml", tmp_path / "inventory.yaml")
    (tmp_path / "templates" / "alert.md.j2").write_text("{# mine #}\n{% if value > '90' %}high{% endif %} {{ check }}\n")
    result = load_config(tmp_path / "inventory.yaml", [], default_registry(), env={},
                         templates_dir=tmp_path / "templates")
    [found] = result.diagnostics
    assert Path(found.file).name == "alert.md.j2" and found.line == 2, str(found)
    assert "compares with the text '90', a number in quotes" in found.message, str(found)
