"""Safe YAML loading that remembers where every value came from.

:func:`load_yaml` returns a :class:`SourceDocument`: the plain data (dicts, lists, scalars)
plus, for every data path (a tuple of keys and list indexes), the line and column of the key
and of the value. Validation errors found later map a path back to ``file:line:column``.

Refused cleanly, as diagnostics, never as exceptions:

* files over :data:`MAX_BYTES` (checked before reading the whole file);
* YAML syntax errors (the scanner/parser mark gives the position);
* duplicate keys in one mapping (the position of the second one). Keys brought in by a merge
  key (``<<: *base``) may be overridden; that is the point of merge keys;
* documents that expand past :data:`MAX_NODES` nodes through aliases ("billion laughs"),
  recursive aliases, and nesting deeper than :data:`MAX_DEPTH`;
* what is wrong before YAML (:mod:`agent.playbook.yaml_text`): bytes that are not UTF-8,
  control characters, look-alike spaces where YAML needs a space (each at its line and
  column); paths that are not readable regular files (:mod:`agent.playbook.files`: a FIFO is
  never waited on, a symbolic link that loops is named as one).
"""
from __future__ import annotations

import math
import re
import unicodedata
from collections.abc import Hashable, Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml
from yaml.constructor import ConstructorError
from yaml.nodes import MappingNode, Node, ScalarNode, SequenceNode

from agent.playbook.diagnostics import Diagnostic
from agent.playbook.files import DISK, MAX_BYTES, ConfigReader, FileProblem
from agent.playbook.yaml_text import (
    LOOKALIKE,
    control_character,
    lookalike_punctuation,
    lookalike_spaces,
    split_lines,
    undecodable,
)

# one pair of bounds (and one guard of the constructors) for every reader of YAML
from botwarden.safe_yaml import MAX_DEPTH, MAX_NODES, ScalarGuard

Path_ = tuple[Any, ...]
Pos = tuple[int, int]
_MERGE_TAG = "tag:yaml.org,2002:merge"
_VALUE_TAG = "tag:yaml.org,2002:value"


@dataclass(frozen=True)
class Marks:
    """1-based positions of a value and, for mapping entries, of its key."""

    value: Pos
    key: Pos | None = None


@dataclass
class SourceDocument:
    """A loaded YAML file: data, positions and the raw lines for diagnostics."""

    file: str
    data: Any = None
    lines: list[str] = field(default_factory=list)
    marks: dict[Path_, Marks] = field(default_factory=dict)
    diagnostics: list[Diagnostic] = field(default_factory=list)
    base60: list[tuple[int, int, str, Any]] = field(default_factory=list)
    """Numbers written ``h:mm`` or ``m:ss`` unquoted (line, column, text, the number YAML 1.1
    made of it: ``1:30`` is 90): see :func:`base60_problems`."""

    def position(self, path: Path_, *, at_key: bool = False) -> Pos:
        """Line/column of the deepest known prefix of ``path`` (the key's when ``at_key``)."""
        for n in range(len(path), -1, -1):
            marks = self.marks.get(tuple(path[:n]))
            if marks is not None:
                if at_key and n == len(path) and marks.key is not None:
                    return marks.key
                return marks.value
        return (1, 1)

    def diagnostic(self, path: Path_, message: str, hint: str | None = None, *, at_key: bool = False) -> Diagnostic:
        line, column = self.position(path, at_key=at_key)
        return self.at(line, column, message, hint)

    def at(self, line: int, column: int, message: str, hint: str | None = None) -> Diagnostic:
        source = self.lines[line - 1] if 0 < line <= len(self.lines) else None
        return Diagnostic(self.file, line, column, message, hint, source)


class _PositionLoader(ScalarGuard, yaml.SafeLoader):  # type: ignore[misc]
    """SafeLoader with merge keys as the YAML spec defines them, and duplicate keys reported.

    PyYAML's own ``flatten_mapping`` is never called: it rewrites nodes in place and its
    behaviour changed between releases (6.0.4 lets a merged mapping's merged key beat its own
    override, yaml/pyyaml#953). :meth:`effective_pairs` computes each mapping's pairs once,
    without touching the composed nodes, by https://yaml.org/type/merge.html:

    * keys written in the mapping override every merged key;
    * with a list of sources (``<<: [*a, *b]``) the earlier source wins;
    * a source's own merges are resolved first (nested merges keep the inner override).

    Its cost is bounded by the expanded size of the document, which :func:`_expanded_size`
    caps before anything is constructed (the merge-key bomb of yaml/pyyaml#897 included).
    """

    def __init__(self, stream: str) -> None:
        super().__init__(stream)
        self.problems: list[tuple[str, yaml.Mark, str | None]] = []
        """Duplicate keys: reported, the document is still constructed (the last one wins)."""
        self.merge_errors: list[tuple[str, yaml.Mark, str | None]] = []
        """Merge values that are not mappings: reported, and the document is not used."""
        self._effective: dict[int, list[tuple[Node, Node]]] = {}
        self._depth = 0
        self.base60: list[tuple[yaml.Mark, str, Any]] = []
        """Integers and floats written with ``:`` (YAML 1.1's base 60)."""

    def compose_node(self, parent: Node | None, index: Any) -> Node:  # type: ignore[override]
        self._depth += 1
        try:
            if self._depth > MAX_DEPTH:
                raise _NestedTooDeepError(self.peek_event().start_mark)
            return super().compose_node(parent, index)  # type: ignore[no-any-return]
        finally:
            self._depth -= 1

    def flatten_mapping(self, node: MappingNode) -> None:
        raise AssertionError("merge keys are resolved by effective_pairs")  # pragma: no cover

    def construct_mapping(self, node: Node, deep: bool = False) -> dict[Any, Any]:  # type: ignore[override]
        if not isinstance(node, MappingNode):
            raise ConstructorError(None, None, f"expected a mapping node, but found {node.id}",
                                   node.start_mark)
        mapping: dict[Any, Any] = {}
        for key_node, value_node in self.effective_pairs(node):
            key = self.construct_object(key_node, deep=deep)
            if not isinstance(key, Hashable):
                raise ConstructorError("while constructing a mapping", node.start_mark,
                                       "found unhashable key", key_node.start_mark)
            mapping[key] = self.construct_object(value_node, deep=deep)
        return mapping

    def effective_pairs(self, node: MappingNode) -> list[tuple[Node, Node]]:
        """The (key, value) nodes of ``node`` after merging: merged pairs first, then its own."""
        memo = self._effective.get(id(node))
        if memo is not None:
            return memo
        self._effective[id(node)] = []  # a cycle is refused earlier; this only ends recursion
        own: list[tuple[Node, Node]] = []
        sources: list[MappingNode] = []
        own_keys: set[Any] = set()
        merge_key: Node | None = None
        for key_node, value_node in node.value:
            if key_node.tag == _MERGE_TAG:
                if merge_key is not None:
                    self.problems.append(("duplicate merge key '<<'", key_node.start_mark,
                                          "merge several mappings with one key: <<: [*first, *second] "
                                          "(the earlier one wins)"))
                merge_key = key_node
                sources.extend(self._merge_sources(key_node, value_node))
                continue
            if key_node.tag == _VALUE_TAG:  # `=` as a key is a plain string here, as in PyYAML
                key_node.tag = "tag:yaml.org,2002:str"
            ident = self._key_identity(key_node)
            if ident in own_keys:
                self.problems.append((f"duplicate key {_key_text(key_node)!r}", key_node.start_mark,
                                      "each key may appear once in a mapping; remove or rename one"))
            own_keys.add(ident)
            own.append((key_node, value_node))
        merged: list[tuple[Node, Node]] = []
        taken = set(own_keys)
        done: set[int] = set()
        for source in sources:
            if id(source) in done:  # `<<: [*a, *a]` merges *a once
                continue
            done.add(id(source))
            for key_node, value_node in self.effective_pairs(source):
                ident = self._key_identity(key_node)
                if ident not in taken:
                    taken.add(ident)
                    merged.append((key_node, value_node))
        pairs = merged + own
        self._effective[id(node)] = pairs
        return pairs

    def _merge_sources(self, key_node: Node, value_node: Node) -> list[MappingNode]:
        """The mappings a ``<<`` value names; anything else is reported at the ``<<`` key."""
        if isinstance(value_node, MappingNode):
            return [value_node]
        if isinstance(value_node, SequenceNode) and all(isinstance(n, MappingNode) for n in value_node.value):
            return [n for n in value_node.value if isinstance(n, MappingNode)]
        found = value_node.id if not isinstance(value_node, SequenceNode) else "a list with a " + next(
            n.id for n in value_node.value if not isinstance(n, MappingNode))
        self.merge_errors.append((f"the value of the merge key '<<' must be a mapping or a list of mappings, "
                              f"not {_article(found)}", key_node.start_mark,
                              "write <<: *anchor, where the anchor is set on a mapping "
                              "(&anchor {key: value})"))
        return []

    def _key_identity(self, key_node: Node) -> Any:
        if isinstance(key_node, ScalarNode):
            key = self.construct_object(key_node)
            if isinstance(key, Hashable):
                return key  # the same equality the constructed dict uses
        return ("node", id(key_node))


def _key_text(node: Node) -> str:
    return str(node.value) if isinstance(node, ScalarNode) else node.id


def _article(found: str) -> str:
    if found.startswith("a list"):
        return found
    return {"scalar": "a single value", "sequence": "a list"}.get(found, found)


def _construct_int(loader: _PositionLoader, node: Node) -> Any:
    """PyYAML's integer, or a positioned error for one Python will not read (more than 4300
    digits: ``ValueError`` from the int conversion limit, which surfaced as an internal error)."""
    try:
        value = yaml.SafeLoader.construct_yaml_int(loader, node)
    except ValueError as exc:
        if len(str(node.value)) <= 4300:  # not a number at all (``!!int x``): said by ScalarGuard
            raise
        raise ConstructorError(None, None, f"a number of {len(str(node.value))} digits is too long to read "
                               "(at most 4300)", node.start_mark) from exc
    if ":" in str(node.value) or _RADIX.fullmatch(str(node.value)):
        loader.base60.append((node.start_mark, str(node.value), value))
    return value


_RADIX = re.compile(r"[-+]?0(?:[0-7_]+|[xX][0-9a-fA-F_]+|[bB][01_]+)")
"""Integers YAML 1.1 (PyYAML) reads in another base: ``010`` is octal 8, ``0x10`` is 16, ``0b10`` is 2."""


def _construct_float(loader: _PositionLoader, node: Node) -> Any:
    value = yaml.SafeLoader.construct_yaml_float(loader, node)
    if ":" in str(node.value) or not math.isfinite(value):
        loader.base60.append((node.start_mark, str(node.value), value))
    return value


_PositionLoader.add_constructor("tag:yaml.org,2002:int", _construct_int)
_PositionLoader.add_constructor("tag:yaml.org,2002:float", _construct_float)


def base60_problems(doc: SourceDocument, reported: Iterable[Diagnostic] = ()) -> list[Diagnostic]:
    """An error for each number YAML 1.1 (PyYAML) reads in another base than the one written.

    * ``h:mm`` or ``m:ss`` unquoted is base 60: ``1:30`` is 90 and ``22:00`` is 1320, so
      ``after: 1:30`` or ``for: 2:00`` would be accepted with a value nobody meant;
    * a leading ``0`` is octal (``after: 010`` is 8, ``cooldown: 060`` is 48), ``0x`` hexadecimal
      and ``0b`` binary (``0x10`` is 16).

    Where another diagnostic already stands at that position (a text field refusing the number,
    with its own quote-it hint) nothing is added."""
    taken = {(d.file, d.line, d.column) for d in reported}
    return [_not_finite_problem(doc, line, column, text, value) if isinstance(value, float)
            and not math.isfinite(value) else
            _radix_problem(doc, line, column, text, value) if ":" not in text else
            doc.at(line, column, f"{_short(text)} is read by YAML as the number {_short(_number(value))}: "
                   "unquoted, h:mm and m:ss are numbers in base 60 (YAML 1.1)",
                   f"quote it (\"{_short(text)}\") for a time of day; write a duration as {_short(_as_duration(text))}, "
                   f"or a number as {_short(_number(value))}")
            for line, column, text, value in doc.base60 if (doc.file, line, column) not in taken]


def _not_finite_problem(doc: SourceDocument, line: int, column: int, text: str, value: float) -> Diagnostic:
    what = "not a number (NaN)" if math.isnan(value) else "infinity"
    return doc.at(line, column, f"{_short(text)} is read by YAML as {what}: every comparison with it is false "
                  "and no range holds it, so a threshold or a limit made of it never does what it says",
                  "write a number; leave a threshold or a limit out to have none (quote it for the text)")


def _radix_problem(doc: SourceDocument, line: int, column: int, text: str, value: Any) -> Diagnostic:
    digits = text.lstrip("+-").lower()
    base = _base_of(digits)
    return doc.at(line, column, f"{_short(text)} is read by YAML as the number {_short(_number(value))}: unquoted, "
                  f"a number written with a leading {'0' if base == 'octal' else digits[:2]} is {base} (YAML 1.1)",
                  radix_hint(text, value))


def _base_of(digits: str) -> str:
    return "hexadecimal" if digits.startswith("0x") else "binary" if digits.startswith("0b") else "octal"


def radix_hint(text: str, value: Any) -> str | None:
    """What to write for an integer YAML 1.1 read in another base (``010`` is octal 8), else None."""
    text = text.strip()
    if not _RADIX.fullmatch(text) or isinstance(value, bool) or not isinstance(value, int):
        return None
    sign, digits = text[: len(text) - len(text.lstrip("+-"))], text.lstrip("+-")
    base = _base_of(digits.lower())
    shown, number = _short(text), _short(_number(value))
    meant = sign + (digits.lstrip("0_") or "0") if base == "octal" else number
    return f"write {_short(meant)} (YAML 1.1 reads {shown} as {base} {number}), or quote it (\"{shown}\") for text"


def _number(value: Any) -> str:
    """An int as its digits (it may be too large for a float), a float as Python shows it."""
    return str(value) if isinstance(value, int) else f"{value:g}"


def _short(text: str) -> str:
    return text if len(text) <= 40 else f"{text[:20]}...{text[-8:]}"


def _as_duration(text: str) -> str:
    """``1:30`` -> ``1h30m or 1m30s``; ``1:30:00`` -> ``1h30m0s``."""
    parts = [p.lstrip("0") or "0" for p in text.lstrip("+-").split(":")]
    if len(parts) == 2:
        return f"{parts[0]}h{parts[1]}m or {parts[0]}m{parts[1]}s"
    return "".join(f"{p}{u}" for p, u in zip(parts[-3:], ("h", "m", "s"), strict=False))


class _NestedTooDeepError(Exception):
    def __init__(self, mark: yaml.Mark) -> None:
        self.mark = mark


class _TooBigError(Exception):
    def __init__(self, node: Node, reason: str) -> None:
        self.node, self.reason = node, reason


def _expanded_size(root: Node) -> None:
    """Raise :class:`_TooBigError` if ``root`` expands past MAX_NODES or contains a cycle.

    Sizes are memoised per node, so this is linear in the composed graph even for a bomb.
    """
    sizes: dict[int, int] = {}
    active: set[int] = set()

    def size(node: Node) -> int:
        if id(node) in sizes:
            return sizes[id(node)]
        if id(node) in active:
            raise _TooBigError(node, "an alias refers to its own ancestor (recursive alias)")
        active.add(id(node))
        total = 1
        if isinstance(node, SequenceNode):
            for child in node.value:
                total += size(child)
        elif isinstance(node, MappingNode):
            for key, value in node.value:
                total += size(key) + size(value)
        if total > MAX_NODES:
            raise _TooBigError(node, f"the document expands to more than {MAX_NODES} nodes, counting "
                                "every use of an alias (a YAML bomb?)")
        active.discard(id(node))
        sizes[id(node)] = total
        return total

    size(root)


def _record(loader: _PositionLoader, node: Node, path: Path_, marks: dict[Path_, Marks]) -> None:
    if isinstance(node, MappingNode):
        for key_node, value_node in loader.effective_pairs(node):
            if not isinstance(key_node, ScalarNode):
                continue
            key = loader.construct_object(key_node)
            child = (*path, key)
            marks[child] = Marks(_pos(value_node.start_mark), _pos(key_node.start_mark))
            _record(loader, value_node, child, marks)
    elif isinstance(node, SequenceNode):
        for index, item in enumerate(node.value):
            child = (*path, index)
            marks[child] = Marks(_pos(item.start_mark))
            _record(loader, item, child, marks)


def _pos(mark: yaml.Mark) -> Pos:
    return (mark.line + 1, mark.column + 1)


def load_yaml(path: Path, *, display_name: str | None = None, reader: ConfigReader | None = None) -> SourceDocument:
    """Load one YAML file safely. Problems land in ``.diagnostics``; ``.data`` is then None.

    The file is read through ``reader`` (default: the disk, :mod:`agent.playbook.files`): a
    path that is not a readable regular file of at most :data:`MAX_BYTES` is reported, never
    waited on.
    """
    doc = SourceDocument(display_name or str(path))
    try:
        raw = (reader or DISK).read(path, MAX_BYTES)
    except FileProblem as exc:
        doc.diagnostics.append(doc.at(0, 0, exc.message, exc.hint))
        return doc
    problem = undecodable(raw.removeprefix(b"\xef\xbb\xbf"))  # columns as the text counts them (no BOM)
    if problem is not None:
        doc.lines = split_lines(raw.decode("utf-8", errors="replace").removeprefix("\ufeff"))
        doc.diagnostics.append(doc.at(problem.line, problem.column, problem.message, problem.hint))
        return doc
    return load_yaml_text(raw.decode("utf-8"), doc)


def load_yaml_text(text: str, doc: SourceDocument) -> SourceDocument:
    """Parse ``text`` into ``doc`` (which names the file). See :func:`load_yaml`.

    A byte order mark at the very start (Windows editors write one) is not part of the text:
    dropped before anything reads it, so it is neither refused as a look-alike space nor counted
    in the columns of line 1. One anywhere else is a character of the text, and judged as such."""
    text = text.removeprefix("\ufeff")
    doc.lines = split_lines(text)
    text_problem = control_character(text)
    if text_problem is not None:
        doc.diagnostics.append(doc.at(text_problem.line, text_problem.column, text_problem.message,
                                      text_problem.hint))
        return doc
    loader = _PositionLoader(text)
    try:
        root = loader.get_single_node()
        if root is None:
            doc.data = None
            return doc
        _expanded_size(root)
        data = loader.construct_document(root)
        _record(loader, root, (), doc.marks)
        doc.marks[()] = Marks(_pos(root.start_mark))
        doc.base60 = [(*_pos(mark), text, value) for mark, text, value in loader.base60]
    except _TooBigError as exc:
        doc.diagnostics.append(doc.at(*_pos(exc.node.start_mark), exc.reason))
        return doc
    except _NestedTooDeepError as exc:
        doc.diagnostics.append(doc.at(*_pos(exc.mark), f"nested more than {MAX_DEPTH} levels deep",
                                      "a playbook needs a few levels; look for unbalanced brackets"))
        return doc
    except yaml.MarkedYAMLError as exc:
        mark = exc.problem_mark or exc.context_mark
        line, column = _pos(mark) if mark else (0, 0)
        spaces = lookalike_spaces(doc.lines, up_to_line=line or None) or \
            lookalike_punctuation(doc.lines, up_to_line=line or None, from_line=max(1, line - 2))  # the lines it stumbled on
        if spaces is not None:  # the real cause, usually a line or more before the parser noticed
            doc.diagnostics.append(doc.at(spaces.line, spaces.column, spaces.message, spaces.hint))
            return doc
        swallowed = _comment_in_flow(doc, exc)
        if swallowed is not None:  # the parser noticed on a later line, at whatever came next
            doc.diagnostics.append(swallowed)
            return doc
        message = exc.problem or "invalid YAML"
        if exc.context:
            message = f"{message} ({exc.context})"
        doc.diagnostics.append(doc.at(line, column, f"YAML syntax error: {message}",
                                      _syntax_hint(doc, line, message)))
        return doc
    except yaml.YAMLError as exc:  # a ReaderError the text check did not foresee, and the like
        doc.diagnostics.append(doc.at(0, 0, f"YAML error: {exc}"))
        return doc
    finally:
        loader.dispose()
    for message, mark, hint in [*loader.problems, *loader.merge_errors]:
        doc.diagnostics.append(doc.at(*_pos(mark), message, hint))
    if loader.merge_errors:
        return doc  # what the merge should have brought is missing: other errors would mislead
    spaces = lookalike_spaces(doc.lines, indentation_only=True)
    if spaces is not None:
        doc.diagnostics.append(doc.at(spaces.line, spaces.column, spaces.message, spaces.hint))
        return doc
    colon = _lookalike_after_a_colon(doc, data, ())
    if colon is not None:
        doc.diagnostics.append(colon)
        return doc
    marker = _typographic_punctuation(doc, root)
    if marker is not None:  # '<U+2013> bot' loaded as the text of one tag, with a misleading hint
        doc.diagnostics.append(marker)
        return doc
    doc.data = data
    return doc


def _lookalike_after_a_colon(doc: SourceDocument, node: Any, path: Path_) -> Diagnostic | None:
    """A mapping key that holds ``:`` and a look-alike space: ``{every:<U+00A0>10s}`` parses (a
    no-break space is not a space to YAML) as the one key ``every:\xa010s`` with no value, so the
    operator would read "unknown key" about a key they did write. Said as what it is, where it is."""
    if isinstance(node, dict):
        for key, value in node.items():
            here = (*path, key)
            if isinstance(key, str) and (match := _COLON_LOOKALIKE.search(key)):
                return _lookalike_at(doc, here, key[:match.start()], match.group()[1], at_key=True)
            if isinstance(value, str) and (match := _KEY_COLON_LOOKALIKE.match(value)):
                return _lookalike_at(doc, here, match.group(1), value[match.end() - 1])
            if (found_below := _lookalike_after_a_colon(doc, value, here)) is not None:
                return found_below
    elif isinstance(node, list):
        for i, item in enumerate(node):
            if (found_below := _lookalike_after_a_colon(doc, item, (*path, i))) is not None:
                return found_below
    return None


def _typographic_punctuation(doc: SourceDocument, root: Node) -> Diagnostic | None:
    """A plain scalar that begins its line with a typographic dash and a space (``<U+2013> bot``: a list
    item as a word processor writes it) or a key and a typographic colon (``- every<U+FF1A> 10s``): the
    file parsed, with text where a list or a mapping was meant. Quoted and block scalars are text
    on purpose and are not looked at."""
    seen: set[int] = set()
    stack: list[Node] = [root]
    while stack:
        node = stack.pop()
        if id(node) in seen:
            continue
        seen.add(id(node))
        if isinstance(node, ScalarNode):
            if node.style is None and isinstance(node.value, str):
                line = node.start_mark.line
                text = doc.lines[line] if line < len(doc.lines) else ""
                indent = len(text) - len(text.lstrip(" -"))
                if node.start_mark.column == indent:
                    found = lookalike_punctuation([text])
                    if found is not None:
                        return doc.at(line + 1, found.column, found.message, found.hint)
        elif isinstance(node, SequenceNode):
            stack.extend(reversed(node.value))
        elif isinstance(node, MappingNode):
            stack.extend(n for pair in reversed(node.value) for n in reversed(pair))
    return None


_COLON_LOOKALIKE = re.compile(f":[{LOOKALIKE}]")
_KEY_COLON_LOOKALIKE = re.compile(f"^([A-Za-z_][\\w.-]*):[{LOOKALIKE}]")
"""A value that reads ``key:<U+00A0>value``: a mapping's line YAML took for one text (``x:`` then
a no-break space is no key)."""


def _lookalike_at(doc: SourceDocument, path: Path_, key: str, char: str, *, at_key: bool = False) -> Diagnostic:
    line, column = doc.position(path, at_key=at_key)
    text = doc.lines[line - 1] if 0 < line <= len(doc.lines) else ""
    found = text.find(f"{key}:{char}", max(column - 1, 0))
    column = found + len(key) + 2 if found >= 0 else column
    name = f"U+{ord(char):04X} ({unicodedata.name(char, '').lower()})"
    return doc.at(line, column, f"{name} where YAML needs an ordinary space (after the colon of {key!r})",
                  "retype the spaces of this line (pasting from a chat or a web page brings these in)")
_BLOCK_INDICATOR = re.compile(r"^\s*(?:-\s+)?([\w.-]+):\s+([>|]\S*)\s*$")


def _comment_in_flow(doc: SourceDocument, exc: yaml.MarkedYAMLError) -> Diagnostic | None:
    """A ``#`` comment inside ``{ }`` or ``[ ]`` with the closing bracket after it on its line
    (``http: {url: x, timeout: 2s  # generous}``): YAML reads the comment to the end of the line,
    the bracket included, and reports the flow mapping unclosed at whatever comes next, a line or
    more later. Said at the ``#``."""
    start, end = exc.context_mark, exc.problem_mark
    if start is None or end is None or "flow" not in (exc.context or ""):
        return None
    for number in range(start.line, min(end.line, len(doc.lines) - 1) + 1):
        text = doc.lines[number]
        at = _comment_at(text, start.column if number == start.line else 0)
        if at is not None and ("}" in text[at:] or "]" in text[at:]):
            return doc.at(number + 1, at + 1, "a comment inside { } or [ ]: YAML reads '#' to the end of the line, "
                          "the closing bracket after it included, so the mapping or list is not closed",
                          "move the comment after the closing bracket, or write the mapping as indented lines")
    return None


def _comment_at(text: str, column: int) -> int | None:
    """Where a ``#`` comment starts in ``text`` from ``column`` (after a space, outside quotes)."""
    quote = ""
    for i in range(column, len(text)):
        char = text[i]
        if quote:
            if char == quote:
                quote = ""
        elif char in "'\"":
            quote = char
        elif char == "#" and i > 0 and text[i - 1] in " \t":
            return i
    return None


def _syntax_hint(doc: SourceDocument, line: int, problem: str) -> str | None:
    """Say what to write for the syntax errors operators make most."""
    text = doc.lines[line - 1] if 0 < line <= len(doc.lines) else ""
    if text[: len(text) - len(text.lstrip())].count("\t"):
        return "indent with spaces; YAML does not accept tabs for indentation"
    if "'\t'" in problem or "'\\t'" in problem:  # PyYAML says '\t' (escaped): a tab after the indentation
        return ("a tab outside quotes (after a value, before a comment): replace it with spaces; YAML as read "
                "here takes tabs only inside quotes")
    for number in (line, line - 1):  # a block scalar's error may land on the line after it
        written = doc.lines[number - 1] if 0 < number <= len(doc.lines) else ""
        match = _BLOCK_INDICATOR.match(written)
        if match:
            value = re.sub(r"^([<>]=?)\s*", r"\1 ", match[2])
            return (f"quote it: {match[1]}: \"{value}\" (unquoted, YAML reads a leading {match[2][0]} as the "
                    "start of a block of text)")
    return None
