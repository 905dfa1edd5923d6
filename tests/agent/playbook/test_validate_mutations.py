"""Property: whatever an operator does to a shipped playbook or the inventory, ``agent validate``
neither crashes (exit 250) nor hangs, and it either accepts the result or points at a line.

Each example copies the shipped configuration, mutates one file the way editing goes wrong
(a deleted, duplicated or re-indented line, a value of another type, a renamed key, stray
bytes including control characters, a truncated file) and runs ``agent validate`` in-process.
Accepted is fine (many mutations are harmless). Otherwise at least one problem must be
positioned (a line of the file it names), and in the mutated file itself, unless the mutation
removed a name that another file uses: a renamed group is rightly reported at each playbook's
``hosts:``, a renamed check at each ``depends_on`` that names it. Such a report elsewhere must
name something the mutated file defined before the mutation.

Hangs are caught by the suite's per-test timeout; the example budget is fixed (derandomized),
so the test runs the same examples every time. Examples that once failed are kept below as
regular tests.
"""
from __future__ import annotations

import contextlib
import io
import re
import threading
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeVar

import pytest
import yaml
from hypothesis import HealthCheck, Phase, given, settings
from hypothesis import strategies as st

from agent.cli.main import main
from agent.playbook.yaml_text import split_lines
from botwarden.errors import ExitCode
from botwarden.settings import StackSettings
from tests.agent.playbook.conftest import copy_of_the_shipped_configuration

REPO = Path(__file__).resolve().parents[3]
SHIPPED = ["inventory.yaml", *sorted(f"playbooks/{p.name}" for p in (REPO / "playbooks").glob("*.yaml"))]
CROSS_REFERENCES = re.compile(
    r"no host or group named|depends_on: no (other )?check named|no playbook named|no remediation named"
    r"|no route named|is undefined|has no attribute|no handler named")
_DIAGNOSTIC = re.compile(r"^(?P<file>\S.*?):(?P<line>\d+):(?P<column>\d+): error: (?P<message>.*)$", re.MULTILINE)
T = TypeVar("T")
_CONTROL = "\x00\x01\x07\x08\x0b\x0c\x1b\x7f\x85\u2028\u00a0\ufeff"


@dataclass(frozen=True)
class Mutation:
    kind: str
    line: int
    data: str = ""

    def apply(self, text: str) -> str:
        lines = text.split("\n")
        i = self.line % max(len(lines), 1)
        if self.kind == "delete":
            del lines[i]
        elif self.kind == "duplicate":
            lines.insert(i, lines[i])
        elif self.kind == "indent":
            lines[i] = " " * (len(self.data) % 5) + lines[i]
        elif self.kind == "dedent":
            lines[i] = lines[i][min(len(self.data) % 5 + 1, len(lines[i]) - len(lines[i].lstrip())):]
        elif self.kind == "retype":
            lines[i] = re.sub(r":\s+\S.*$", ": " + self.data, lines[i], count=1)
        elif self.kind == "rename":
            lines[i] = re.sub(r"^(\s*-?\s*)([A-Za-z_]+)(?=:)", lambda m: m[1] + _renamed(m[2], self.data),
                              lines[i], count=1)
        elif self.kind == "insert":
            column = len(self.data) % (len(lines[i]) + 1)
            lines[i] = lines[i][:column] + self.data + lines[i][column:]
        elif self.kind == "truncate":
            return "\n".join(lines)[: self.line % (len(text) + 1)]
        return "\n".join(lines)


def _renamed(key: str, seed: str) -> str:
    if not seed:
        return key[:-1] or "x"
    position = len(seed) % len(key)
    return key[:position] + seed[0] + key[position + 1:]


VALUES = st.sampled_from(["[a, b]", "{x: 1}", "42", "-1", "true", "null", '"text"', "0s", "'> 90'", "1e400",
                          "99999999999d", "*nope", "&a", "!!python/object:os.system", "{{ nope }}", '"{{ x | to_json }}"',
                          "22:00", ">1", "|", "a, b", '"0 8 * * *"', "[[[[[[[[]]]]]]]]", "~", "{<<: 3}",
                          "2026-02-30", "!!float x", "\u2013 x"])
MUTATIONS = st.one_of(
    st.builds(Mutation, st.sampled_from(["delete", "duplicate", "truncate"]), st.integers(0, 10_000)),
    st.builds(Mutation, st.sampled_from(["indent", "dedent"]), st.integers(0, 10_000), st.text("x", max_size=6)),
    st.builds(Mutation, st.just("retype"), st.integers(0, 10_000), VALUES),
    st.builds(Mutation, st.just("rename"), st.integers(0, 10_000), st.text("abcxyz_", max_size=3)),
    st.builds(Mutation, st.just("insert"), st.integers(0, 10_000),
              st.text(st.sampled_from([*_CONTROL, "\t", "{", "[", ":", "'", '"', "&", "*", "%", "#", "é"]),
                      min_size=1, max_size=4)),
)


@pytest.fixture(scope="module")
def world(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return copy_of_the_shipped_configuration(tmp_path_factory.mktemp("mutations"))


def validate(world: Path) -> tuple[int, str]:
    out, err = io.StringIO(), io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        code = in_a_fresh_thread(lambda: main(["validate", "--inventory", str(world / "inventory.yaml"),
                                               str(world / "playbooks")]))
    return code, out.getvalue() + err.getvalue()


def in_a_fresh_thread(fn: Callable[[], T]) -> T:
    """``fn()`` run in a new thread (its result returned, its exception raised here).

    CPython 3.11 keeps a thread's Python frames in 16 KiB chunks, each mapped when the stack grows
    into it and unmapped when it shrinks out of it. Under Hypothesis's ``@given`` the loader's hot
    calls sat on such a boundary: ~40,000 mmap/munmap pairs and ~0.3 s of system time per
    validation (half again its user time). A new thread starts from a stack of its own, at the
    same depth whoever calls: measured, no such churn."""
    outcome: dict[str, Any] = {}

    def target() -> None:
        try:
            outcome["value"] = fn()
        except BaseException as exc:  # noqa: BLE001 - raised again in the caller's thread
            outcome["error"] = exc

    thread = threading.Thread(target=target, name="validate")
    thread.start()
    thread.join()
    if "error" in outcome:
        raise outcome["error"]
    return outcome["value"]  # type: ignore[no-any-return]


def check_outcome(world: Path, mutated: str, content: bytes) -> None:
    path = world / mutated
    original = path.read_bytes()
    path.write_bytes(content)
    text = content.decode("utf-8", errors="replace")
    try:
        code, output = validate(world)
    finally:
        path.write_bytes(original)
    assert code != ExitCode.BUG and "internal error" not in output, output
    assert code in (ExitCode.OK, ExitCode.FAILED), output
    if code == ExitCode.OK:
        return
    found = [m.groupdict() for m in _DIAGNOSTIC.finditer(output)]
    positioned = [d for d in found if int(d["line"]) >= 1]
    assert positioned, f"no problem with a line:\n{output}"
    in_mutated = [d for d in positioned if Path(d["file"]).resolve() == path.resolve()]
    if not in_mutated:
        defined = original.decode("utf-8", errors="replace")
        for d in found:
            assert CROSS_REFERENCES.search(d["message"]), f"nothing reported in {mutated}, and not a name it " \
                                                          f"defined:\n{output}"
            names = re.findall(r"'([^']+)'", d["message"])
            assert any(re.search(rf"(?<![\w-]){re.escape(n)}(?![\w-])", defined) for n in names), \
                f"nothing reported in {mutated}, and {d['message']!r} names nothing {mutated} defined:\n{output}"
    for d in in_mutated:  # lines as YAML counts them (U+2028 and U+0085 break lines too)
        assert int(d["line"]) <= len(split_lines(text)) + 1, f"line past the end of {mutated}:\n{output}"


RAW_BYTES = st.one_of(st.none(), st.tuples(st.integers(0, 100_000), st.binary(min_size=1, max_size=3)))


@settings(max_examples=30, derandomize=True, deadline=None, database=None,
          phases=[Phase.explicit, Phase.generate],  # a failing example is printed as found (shrinking is slow)
          suppress_health_check=[HealthCheck.too_slow])
@given(target=st.sampled_from(SHIPPED), mutations=st.lists(MUTATIONS, min_size=1, max_size=3), raw=RAW_BYTES)
def test_a_mutated_configuration_is_accepted_or_reported_at_a_line(
        world: Path, target: str, mutations: list[Mutation], raw: tuple[int, bytes] | None) -> None:
    text = (REPO / target).read_text(encoding="utf-8")
    for mutation in mutations:
        text = mutation.apply(text)
    content = text.encode("utf-8")
    if raw is not None:  # random bytes, which may not be UTF-8
        at = raw[0] % (len(content) + 1)
        content = content[:at] + raw[1] + content[at:]
    check_outcome(world, target, content)


SETTINGS_TEXT = yaml.safe_dump(StackSettings().model_dump(mode="json"), sort_keys=False)
"""A stack settings file an operator writes out in full (every setting at its default)."""


@pytest.fixture(scope="module")
def world_with_settings(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = copy_of_the_shipped_configuration(tmp_path_factory.mktemp("settings-mutations"))
    inventory = root / "inventory.yaml"
    inventory.write_text(inventory.read_text().replace("settings: null", "settings: settings.yaml", 1))
    (root / "settings.yaml").write_text(SETTINGS_TEXT)
    return root


@settings(max_examples=10, derandomize=True, deadline=None, database=None,
          phases=[Phase.explicit, Phase.generate], suppress_health_check=[HealthCheck.too_slow])
@given(mutations=st.lists(MUTATIONS, min_size=1, max_size=3), raw=RAW_BYTES)
def test_a_mutated_settings_file_is_accepted_or_reported_at_a_line(
        world_with_settings: Path, mutations: list[Mutation], raw: tuple[int, bytes] | None) -> None:
    """The same property for the stack settings file the inventory names (read by the agent's
    loader, and by agent validate's stack view: brk15)."""
    text = SETTINGS_TEXT
    for mutation in mutations:
        text = mutation.apply(text)
    content = text.encode("utf-8")
    if raw is not None:
        at = raw[0] % (len(content) + 1)
        content = content[:at] + raw[1] + content[at:]
    check_outcome(world_with_settings, "settings.yaml", content)


def test_the_shipped_configuration_is_accepted(world: Path) -> None:
    code, output = validate(world)
    assert code == ExitCode.OK, output


# Examples the property found, kept as regular tests (each failed before its fix).
FOUND = [
    # truncated to nothing: "the playbook is empty" had no line
    ("playbooks/backup.yaml", [Mutation("truncate", 0)], None),
    # a BEL after a U+2028 line separator: YAML counts U+2028 as a line break (the property had not)
    ("playbooks/emergency.yaml", [Mutation("truncate", 423), Mutation("insert", 4150, "\u2028''&"),
                                  Mutation("insert", 3429, "\u2028\x07")], None),
    # a date that is none: PyYAML's ValueError ended agent validate in exit 250 (brk15)
    ("playbooks/bot-health.yaml", [Mutation("retype", 9, "2026-02-30")], None),
    ("inventory.yaml", [Mutation("retype", 11, "!!float x")], None),
]


@pytest.mark.parametrize(("target", "mutations", "raw"), FOUND)
def test_examples_found_by_the_property(world: Path, target: str, mutations: list[Mutation],
                                        raw: tuple[int, bytes] | None) -> None:
    text = (REPO / target).read_text(encoding="utf-8")
    for mutation in mutations:
        text = mutation.apply(text)
    content = text.encode("utf-8")
    if raw is not None:
        content = content[:raw[0]] + raw[1] + content[raw[0]:]
    check_outcome(world, target, content)
