"""YAML merge keys (``<<``) mean what https://yaml.org/type/merge.html says, whatever PyYAML
release is installed (6.0.4 lets a merged key beat the override of a nested merge: #953)."""
from __future__ import annotations

import tracemalloc
from pathlib import Path

import pytest

from agent.playbook.yaml_source import MAX_NODES, SourceDocument, load_yaml, load_yaml_text

# The spec's example, verbatim: the four mappings at the end are equal.
SPEC_EXAMPLE = """\
---
- &CENTER { x: 1, y: 2 }
- &LEFT { x: 0, y: 2 }
- &BIG { r: 10 }
- &SMALL { r: 1 }

# All the following maps are equal:

- # Explicit keys
  x: 1
  y: 2
  r: 10
  label: center/big

- # Merge one map
  << : *CENTER
  r: 10
  label: center/big

- # Merge multiple maps
  << : [ *CENTER, *BIG ]
  label: center/big

- # Override
  << : [ *BIG, *LEFT, *SMALL ]
  x: 1
  label: center/big
"""


def _load(text: str) -> SourceDocument:
    return load_yaml_text(text, SourceDocument("f.yaml"))


def test_the_specs_example_gives_four_equal_mappings() -> None:
    doc = _load(SPEC_EXAMPLE)
    assert doc.diagnostics == []
    expected = {"x": 1, "y": 2, "r": 10, "label": "center/big"}
    assert doc.data[4:] == [expected] * 4


def test_a_nested_merge_keeps_the_inner_override() -> None:
    """yaml/pyyaml#953: PyYAML 6.0.4 gives c.x == 1."""
    doc = _load("a: &a {x: 1}\nb: &b {<<: *a, x: 2}\nc: {<<: *b, z: 0}\n")
    assert doc.diagnostics == []
    assert doc.data["b"] == {"x": 2}
    assert doc.data["c"] == {"x": 2, "z": 0}


@pytest.mark.parametrize("key", ["k", "kk"])
def test_with_a_list_of_sources_the_first_wins(key: str) -> None:
    """The reproduction of yaml/pyyaml#953: 6.0.4 gives 3 for a key longer than one character."""
    doc = _load(f"base_a: &a\n  {key}: 1\nbase_b: &b\n  {key}: 2\nbase_c: &c\n  {key}: 3\n\n"
                "result:\n  <<: [*a, *b, *c]\n")
    assert doc.data["result"] == {key: 1}


@pytest.mark.parametrize("key", ["x", "threshold_long_name"])  # 6.0.4's bug depends on string interning
def test_the_earlier_source_wins_even_when_it_merged_the_key_itself(key: str) -> None:
    text = (f"base: &base {{{key}: base}}\nmid: &mid {{<<: *base, {key}: mid}}\nother: &other {{{key}: other}}\n"
            f"use: {{<<: [*mid, *other]}}\nrev: {{<<: [*other, *mid]}}\nown: {{<<: [*mid, *other], {key}: own}}\n")
    doc = _load(text)
    assert doc.diagnostics == []
    assert doc.data["use"] == {key: "mid"}
    assert doc.data["rev"] == {key: "other"}
    assert doc.data["own"] == {key: "own"}


def test_explicit_keys_override_merged_ones_wherever_they_are_written() -> None:
    doc = _load("d: &d {a: 1, b: 2}\nbefore: {a: 0, <<: *d}\nafter: {<<: *d, a: 0}\n")
    assert doc.data["before"] == {"a": 0, "b": 2} == doc.data["after"]


def test_merged_values_are_positioned_where_they_are_written() -> None:
    text = ("defaults: &defaults\n"      # 1
            "  timeout: 5s\n"            # 2
            "  after: 2\n"               # 3
            "inner: &inner\n"            # 4
            "  <<: *defaults\n"          # 5
            "  after: 3\n"               # 6
            "check:\n"                   # 7
            "  <<: *inner\n"             # 8
            "  name: x\n")               # 9
    doc = _load(text)
    assert doc.data["check"] == {"timeout": "5s", "after": 3, "name": "x"}
    assert doc.position(("check", "timeout")) == (2, 12)
    assert doc.position(("check", "timeout"), at_key=True) == (2, 3)
    assert doc.position(("check", "after")) == (6, 10)  # the override, not the anchor's value
    assert doc.position(("check", "name")) == (9, 9)


@pytest.mark.parametrize("value, found", [
    ("*scalar", "a single value"), ("*seq", "a list"), ("[*seq]", "a list with a sequence"), ("3", "a single value"),
])
def test_a_merge_value_that_is_not_a_mapping_is_reported_at_the_merge_key(value: str, found: str) -> None:
    doc = _load(f"scalar: &scalar 5\nseq: &seq [1, 2]\nuse:\n  name: x\n  <<: {value}\n")
    [diag] = doc.diagnostics
    assert (diag.line, diag.column) == (5, 3), str(diag)
    assert f"must be a mapping or a list of mappings, not {found}" in diag.message
    assert doc.data is None


def test_two_merge_keys_in_one_mapping_are_a_duplicate() -> None:
    doc = _load("a: &a {x: 1}\nb: &b {y: 2}\nc:\n  <<: *a\n  <<: *b\n")
    [diag] = doc.diagnostics
    assert (diag.line, diag.column, diag.message) == (5, 3, "duplicate merge key '<<'")
    assert "<<: [*first, *second]" in (diag.hint or "")


def test_duplicate_keys_are_still_reported_beside_a_merge() -> None:
    doc = _load("a: &a {x: 1}\nc:\n  <<: *a\n  y: 1\n  y: 2\n")
    [diag] = doc.diagnostics
    assert (diag.line, diag.column, diag.message) == (5, 3, "duplicate key 'y'")


def _merge_bomb(levels: int) -> str:
    """yaml/pyyaml#897: each level merges the previous one twice."""
    lines = ["l0: &l0 {k0: v}"]
    lines += [f"l{n}: &l{n} {{<<: [*l{n - 1}, *l{n - 1}], k{n}: v}}" for n in range(1, levels + 1)]
    return "\n".join([*lines, f"target: {{<<: [*l{levels}, *l{levels}]}}"]) + "\n"


def _merge_chain(length: int) -> str:
    lines = ["a0: &a0 {k0: 0}"] + [f"a{n}: &a{n} {{<<: *a{n - 1}, k{n}: {n}}}" for n in range(1, length)]
    return "\n".join(lines) + "\n"


@pytest.mark.parametrize("text", [_merge_bomb(40), _merge_chain(3000)], ids=["doubling", "chain"])
def test_merge_bombs_are_refused_by_the_size_limit_without_building_them(tmp_path: Path, text: str) -> None:
    path = tmp_path / "bomb.yaml"
    path.write_text(text)
    tracemalloc.start()
    try:
        doc = load_yaml(path)
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert doc.data is None
    assert f"more than {MAX_NODES} nodes" in doc.diagnostics[0].message
    assert peak < 64 * 1024 * 1024  # a built bomb would take gigabytes


def test_a_merge_chain_under_the_limit_loads_with_every_key() -> None:
    doc = _load(_merge_chain(60))
    assert doc.diagnostics == []
    assert doc.data["a59"] == {f"k{n}": n for n in range(60)}


def test_merging_one_source_twice_is_the_same_as_once() -> None:
    doc = _load(_merge_bomb(4))
    assert doc.diagnostics == []
    assert doc.data["target"] == {f"k{n}": "v" for n in range(5)}


