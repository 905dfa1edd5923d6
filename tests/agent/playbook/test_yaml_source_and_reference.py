"""The positioned YAML loader, and the language reference being complete."""
from __future__ import annotations

from pathlib import Path

import pytest
from pydantic import BaseModel

from agent.playbook import inventory, models
from agent.playbook.yaml_source import MAX_NODES, load_yaml


def _load(tmp_path: Path, text: str | bytes):
    path = tmp_path / "f.yaml"
    path.write_bytes(text if isinstance(text, bytes) else text.encode())
    return load_yaml(path)


def test_positions_are_one_based_for_keys_and_values(tmp_path: Path) -> None:
    doc = _load(tmp_path, "a:\n  b: [1, {c: 2}]\n")
    assert doc.diagnostics == []
    assert doc.position(("a", "b"), at_key=True) == (2, 3)
    assert doc.position(("a", "b")) == (2, 6)
    assert doc.position(("a", "b", 1, "c")) == (2, 14)
    assert doc.position(("a", "b", 1, "missing")) == (2, 10)  # deepest known prefix


def test_merge_keys_may_be_overridden_but_real_duplicates_are_errors(tmp_path: Path) -> None:
    doc = _load(tmp_path, "base: &b {x: 1, y: 2}\nuse:\n  <<: *b\n  y: 3\n")
    assert doc.diagnostics == [] and doc.data["use"] == {"x": 1, "y": 3}

    nested = _load(tmp_path, "a: &a {x: 1}\nb: &b {<<: *a, x: 2}\nc: {<<: *b, z: 0}\n")
    assert nested.diagnostics == [] and nested.data["c"] == {"x": 2, "z": 0}

    dup = _load(tmp_path, "a: 1\nb: 2\na: 3\n")
    [diag] = dup.diagnostics
    assert (diag.line, diag.column, diag.message) == (3, 1, "duplicate key 'a'")


def test_recursive_alias_is_refused(tmp_path: Path) -> None:
    doc = _load(tmp_path, "a: &a [1, *a]\n")
    assert doc.data is None
    assert "recursive alias" in doc.diagnostics[0].message


def test_many_plain_nodes_are_refused_too(tmp_path: Path) -> None:
    doc = _load(tmp_path, "a: [" + ",".join(["1"] * (MAX_NODES + 1)) + "]\n")
    assert doc.data is None and f"more than {MAX_NODES} nodes" in doc.diagnostics[0].message


def test_python_tags_are_not_constructed(tmp_path: Path) -> None:
    doc = _load(tmp_path, "a: !!python/object/apply:os.system ['echo pwned']\n")
    assert doc.data is None
    assert "could not determine a constructor" in doc.diagnostics[0].message


def test_non_utf8_and_deep_nesting_are_refused(tmp_path: Path) -> None:
    assert "not UTF-8" in _load(tmp_path, b"a: \xff\xfe\n").diagnostics[0].message
    deep = _load(tmp_path, "[" * 5000 + "]" * 5000)
    assert deep.data is None and deep.diagnostics


@pytest.mark.parametrize("encoding", ["utf-16", "utf-16-le", "utf-16-be"])
def test_a_utf16_file_is_said_to_be_utf16(tmp_path: Path, encoding: str) -> None:
    """Issue 15, F11: a UTF-16 file (PowerShell's >) was "byte 0xff is not UTF-8 text" with a line
    of NULs shown; the hint now says what it is and how to convert it."""
    [diag] = _load(tmp_path, "version: 1\nname: x\n".encode(encoding)).diagnostics
    assert (diag.line, diag.column) == (1, 1) and diag.message == "the file is UTF-16 text, not UTF-8", str(diag)
    assert "iconv -f UTF-16 -t UTF-8" in (diag.hint or "")


def _models() -> list[type[BaseModel]]:
    found = []
    for module in (models, inventory):
        for value in vars(module).values():
            if isinstance(value, type) and issubclass(value, BaseModel) and value.__module__ == module.__name__ \
                    and not value.__name__.startswith("_"):
                found.append(value)
    return found


@pytest.mark.parametrize("model", _models(), ids=lambda m: m.__name__)
def test_every_language_field_is_documented(model: type[BaseModel]) -> None:
    assert model.__doc__, f"{model.__name__} has no docstring"
    undocumented = [name for name, field in model.model_fields.items() if not field.description]
    assert undocumented == [], f"{model.__name__}: fields without description: {undocumented}"
