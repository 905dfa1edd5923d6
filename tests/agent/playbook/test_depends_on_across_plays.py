"""depends_on may name PLAYBOOK/CHECK of another play; validation and key resolution."""
from __future__ import annotations

import contextlib
import io
import os
import re
from pathlib import Path
from types import SimpleNamespace

import pytest

from agent.cli.main import main
from agent.modules.registry import default_registry
from agent.notify.lifecycle import parent_key
from agent.playbook import load_config
from botwarden.errors import ExitCode
from tests.agent.playbook.conftest import copy_of_the_shipped_configuration

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


def test_a_parent_whose_playbook_does_not_load_gives_its_own_error_only(tmp_path):
    """One mistake, one error: the parent's playbook fails on its own line; the dependent's link
    to a check it does write is not reported as well (with a hint to write what it wrote)."""
    (tmp_path / "health.yaml").write_text(PARENT + '    after: "2"\n')
    (tmp_path / "risk.yaml").write_text(CHILD.replace("{dep}", "health/bot process"))
    res = load_config(tmp_path / "no-inventory.yaml", [tmp_path], default_registry(), env={})
    assert [(d.file.rsplit("/", 1)[-1], d.line) for d in res.diagnostics] == [("health.yaml", 9)], \
        [str(d) for d in res.diagnostics]


def test_a_misspelt_check_of_a_playbook_that_does_not_load_is_still_found(tmp_path):
    (tmp_path / "health.yaml").write_text(PARENT + '    after: "2"\n')
    (tmp_path / "risk.yaml").write_text(CHILD.replace("{dep}", "health/bot proces"))
    res = load_config(tmp_path / "no-inventory.yaml", [tmp_path], default_registry(), env={})
    [_, d] = res.diagnostics
    assert d.file.endswith("risk.yaml") and d.hint == "did you mean 'health/bot process'?", str(d)


def test_an_unknown_playbook_is_said_with_the_playbooks_there_are(tmp_path):
    res = load(tmp_path, "helth/bot process")
    [d] = res.diagnostics
    assert d.hint == "did you mean 'health/bot process'?", str(d)
    res = load(tmp_path, "elsewhere/bot process")
    [d] = res.diagnostics
    assert d.hint == "no playbook named 'elsewhere'; known playbooks: health, risk", str(d)


def test_a_check_depending_on_itself_is_one_error_in_either_form(tmp_path):
    for dep in ("pnl", "risk/pnl"):
        res = load(tmp_path, dep)
        assert [d.message for d in res.diagnostics] == [f"depends_on: check {dep!r} depends on itself"], \
            [str(d) for d in res.diagnostics]


# A playbook that does not parse is reported in its own file alone (issue 15, F10) -----------------

REPO = Path(__file__).resolve().parents[3]
_TEXTS = {p.name: p.read_text(encoding="utf-8") for p in (REPO / "playbooks").glob("*.yaml")}
SHIPPED_PLAYBOOKS = sorted(  # the ones another file names (depends_on: [play/check], then: play)
    name for name in _TEXTS
    if any(re.search(rf"(\bthen: *{re.escape(name[:-5])}\b|[\[ ,]{re.escape(name[:-5])}/)", text)
           for other, text in _TEXTS.items() if other != name))


def _break_tab(text: str) -> bytes:
    lines = text.split("\n")
    lines[2] = "\t" + lines[2]
    return "\n".join(lines).encode()


FILE_LEVEL = {
    "tab": _break_tab,
    "nul": lambda text: text.replace("\n", "\n\x00", 4).encode(),
    "latin-1": lambda text: text.replace("\n", "\n# caf\xe9\n", 1).encode("latin-1", errors="replace"),
    "bracket": lambda text: (text + "\nchecks: [\n").encode(),
    "truncated": lambda text: (text[: len(text) // 2].rstrip() + "\n  - {name: [\n").encode(),
    "dangling link": None,
}


@pytest.fixture(scope="module")
def shipped(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return copy_of_the_shipped_configuration(tmp_path_factory.mktemp("shipped"))


@pytest.mark.parametrize("how", list(FILE_LEVEL))
@pytest.mark.parametrize("name", SHIPPED_PLAYBOOKS)
def test_a_playbook_that_does_not_parse_is_the_only_file_blamed(shipped: Path, name: str, how: str) -> None:
    path = shipped / "playbooks" / name
    original = path.read_bytes()
    breaker = FILE_LEVEL[how]
    try:
        path.unlink()
        if how == "dangling link":
            os.symlink(shipped / "nowhere" / name, path)
        elif breaker is not None:
            path.write_bytes(breaker(original.decode("utf-8")))
        out, err = io.StringIO(), io.StringIO()
        with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
            code = main(["validate", "--inventory", str(shipped / "inventory.yaml"), str(shipped / "playbooks")])
    finally:
        if path.is_symlink() or path.exists():
            path.unlink()
        path.write_bytes(original)
    output = out.getvalue() + err.getvalue()
    blamed = {m["file"] for m in re.finditer(r"^(?P<file>\S.*?)(?::\d+:\d+)?: error: ", output, re.MULTILINE)}
    assert code == ExitCode.FAILED, output
    assert blamed == {str(path)}, output
