"""Property: a value of the wrong type where a name or a key goes (a list, a mapping, a number,
null, a boolean) is an error at file:line:col, never an internal error (issue 15, F3).

The loader reads names before the models validate types: play names, check names of a playbook
that did not load (for ``depends_on`` into it), ``hosts``, ``budget.then``, route and target
names, mapping keys of ``remediations``, ``groups``, ``hosts``... ``check name: [bot, process]``
was a TypeError (unhashable list) and exit 250, and the running agent then fell back to the
built-in defaults. Every such position of the shipped configuration is a candidate; hypothesis
picks a fixed (derandomized) sample of them each run.
"""
from __future__ import annotations

import contextlib
import copy
import io
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from agent.cli.main import main
from agent.modules.registry import default_registry
from agent.playbook import load_config
from botwarden.errors import ExitCode
from tests.agent.playbook.conftest import copy_of_the_shipped_configuration

REPO = Path(__file__).resolve().parents[3]
SHIPPED = ["inventory.yaml", *sorted(f"playbooks/{p.name}" for p in (REPO / "playbooks").glob("*.yaml"))]
NAME_KEYS = {"name", "hosts", "then", "depends_on", "route", "remediate", "targets", "notify", "handlers", "register",
             "template", "program", "silence_until_ok", "routes", "groups", "check", "tags", "listen", "to",
             "settings", "include", "escalate"}
WRONG: list[Any] = [["bot", "process"], {"x": 1}, 5, None, True, 1.5]
WRONG_KEYS: list[Any] = [5, None, True, 1.5]


def _positions(node: Any, path: tuple[Any, ...] = ()) -> Iterator[tuple[str, tuple[Any, ...]]]:
    """('value', path) where a name is written; ('key', path) for every mapping key."""
    if isinstance(node, dict):
        for key, value in node.items():
            if key in NAME_KEYS:
                yield "value", (*path, key)
            yield "key", (*path, key)
            yield from _positions(value, (*path, key))
    elif isinstance(node, list):
        for i, value in enumerate(node):
            if path and path[-1] in NAME_KEYS:
                yield "value", (*path, i)
            yield from _positions(value, (*path, i))


def _cases() -> list[tuple[str, str, tuple[Any, ...]]]:
    out = []
    for rel in SHIPPED:
        data = yaml.safe_load((REPO / rel).read_text(encoding="utf-8"))
        out += [(rel, kind, path) for kind, path in _positions(data)]
    return out


CASES = _cases()


def _mutated(rel: str, kind: str, path: tuple[Any, ...], wrong: Any) -> str:
    data = yaml.safe_load((REPO / rel).read_text(encoding="utf-8"))
    node = data
    for key in path[:-1]:
        node = node[key]
    if kind == "value":
        node[path[-1]] = copy.deepcopy(wrong)
    else:
        items = list(node.items())
        node.clear()
        node.update({(wrong if key == path[-1] else key): value for key, value in items})
    return yaml.safe_dump(data, sort_keys=False, width=10**6, allow_unicode=True)


@pytest.fixture(scope="module")
def world(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return copy_of_the_shipped_configuration(tmp_path_factory.mktemp("wrong-types"))


def _load_with(world: Path, rel: str, text: str) -> Any:
    path = world / rel
    original = path.read_bytes()
    path.write_text(text, encoding="utf-8")
    try:
        return load_config(world / "inventory.yaml", [world / "playbooks"], default_registry(), env={},
                           templates_dir=world / "templates")
    finally:
        path.write_bytes(original)


@settings(max_examples=40, derandomize=True, deadline=None, database=None,
          suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(case=st.sampled_from(CASES), pick=st.integers(0, 5))
def test_a_wrong_type_where_a_name_goes_is_a_positioned_error(world: Path, case: tuple[str, str, tuple[Any, ...]],
                                                              pick: int) -> None:
    rel, kind, path = case
    wrong = WRONG[pick % len(WRONG)] if kind == "value" else WRONG_KEYS[pick % len(WRONG_KEYS)]
    result = _load_with(world, rel, _mutated(rel, kind, path, wrong))  # never raises
    for diag in result.diagnostics:
        assert diag.line >= 1 and diag.column >= 1, (rel, kind, path, wrong, str(diag))
        assert "internal error" not in diag.message


@pytest.mark.parametrize("wrong", ["[bot, process]", "{a: 1}", "{a: [1]}"])
@pytest.mark.parametrize("also_broken", [False, True])
def test_a_check_name_that_is_a_list_or_a_mapping_is_an_error_at_it(world: Path, wrong: str,
                                                                   also_broken: bool) -> None:
    """The breaker's case: `agent validate` said internal error and exited 250. With another
    error in the same playbook it does not load, and its check names are read raw (for a
    ``depends_on`` into it from another playbook): that is where the list was hashed."""
    path = world / "playbooks" / "bot-health.yaml"
    original = path.read_text(encoding="utf-8")
    lines = original.split("\n")
    at = next(i for i, line in enumerate(lines) if line.startswith("  - name: "))
    lines[at] = f"  - name: {wrong}"
    text = "\n".join(lines) + ("\nnot_a_key: 1\n" if also_broken else "")
    path.write_text(text, encoding="utf-8")
    out, err = io.StringIO(), io.StringIO()
    try:
        with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
            code = main(["validate", "--inventory", str(world / "inventory.yaml"), str(world / "playbooks")])
    finally:
        path.write_text(original, encoding="utf-8")
    output = out.getvalue() + err.getvalue()
    assert code == ExitCode.FAILED and "internal error" not in output, output
    assert f"bot-health.yaml:{at + 1}:" in output, output
