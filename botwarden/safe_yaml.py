"""Reading an operator's YAML plainly (no positions), within the bounds ``agent validate`` holds it
to: at most :data:`MAX_NODES` nodes counting every use of an alias, at most :data:`MAX_DEPTH`
levels of nesting, never a recursive alias.

``yaml.safe_load`` expands nothing itself (an alias is the same object again), but what walks the
result does: a YAML bomb of a kilobyte is a billion strings to whatever reads every value (the
names of the variables ``agent stack up`` exports, pydantic's message on a settings file with an
unknown key: ``bot run`` spun for ever), and a document nested a few thousand levels deep raised
RecursionError (``agent stack up``: internal error, exit 250). The readers that give positions
(:mod:`agent.playbook.yaml_source`) hold the same bounds.

A scalar YAML resolves to a type it then cannot be (``2026-02-30`` is shaped like a date and is
not one; ``!!float x``) raised the constructor's own ``ValueError`` (or ``AttributeError``:
``!!timestamp x``), which no reader expects of YAML: a date typo in a playbook var or the
settings file ended ``agent validate`` and ``agent stack render`` in exit 250. Both readers
construct through :class:`ScalarGuard`, which raises a ``yaml.constructor.ConstructorError`` at
the value instead, saying what YAML took it for and to quote it.
"""
from __future__ import annotations

from typing import Any

import yaml
from yaml.constructor import ConstructorError
from yaml.nodes import MappingNode, Node, ScalarNode, SequenceNode

MAX_NODES = 50_000
"""Largest number of YAML nodes a document may expand to, aliases counted at every use."""
MAX_DEPTH = 64
"""Deepest nesting of mappings and lists accepted: playbooks need about ten levels, and a
bound here keeps every recursive step after loading (validation, templates) within Python's
recursion limit."""


class TooLargeError(yaml.YAMLError):  # type: ignore[misc]  # yaml is untyped here
    """A document past the bounds: a ``yaml.YAMLError``, so a reader that handles YAML it cannot
    read handles this one too."""


_TYPE_WORDS = {
    "tag:yaml.org,2002:timestamp": "a date (YAML reads a value written like 2026-01-31 or 2026-01-31 10:00 as one)",
    "tag:yaml.org,2002:int": "an integer",
    "tag:yaml.org,2002:float": "a number",
    "tag:yaml.org,2002:bool": "true or false",
    "tag:yaml.org,2002:binary": "base64 data",
}


class ScalarGuard:
    """A mixin for a ``yaml.SafeLoader`` subclass (listed before it): a value its constructor
    cannot make (``2026-02-30``, ``!!float x``) is a ``ConstructorError`` at the value, never the
    constructor's own ``ValueError``, ``TypeError``, ``AttributeError``, ``KeyError`` or ``OverflowError``."""

    def construct_object(self, node: Node, deep: bool = False) -> Any:
        try:
            return super().construct_object(node, deep=deep)  # type: ignore[misc]
        except yaml.YAMLError:
            raise
        except (ValueError, TypeError, AttributeError, OverflowError, LookupError) as exc:
            if not isinstance(node, ScalarNode):
                raise
            raise ConstructorError(None, None, unreadable_scalar(node, exc), node.start_mark) from None


def unreadable_scalar(node: ScalarNode, exc: Exception) -> str:
    """Why ``node`` cannot be constructed, and the fix (quote it)."""
    what = _TYPE_WORDS.get(node.tag, f"the type {node.tag.rsplit(':', 1)[-1]!r}")
    detail = f" ({str(exc).splitlines()[0][:120]})" if isinstance(exc, ValueError) and str(exc) else ""
    return (f"{node.value!r} is read as {what}, and it is not one{detail}: write a valid value, or quote "
            f"it to keep it as text: '{node.value}'")


class _BoundedLoader(ScalarGuard, yaml.SafeLoader):  # type: ignore[misc]
    pass


def load(text: str) -> Any:
    """``yaml.safe_load(text)`` within :data:`MAX_NODES` and :data:`MAX_DEPTH`; raises
    :class:`TooLargeError` (a ``yaml.YAMLError``) past them, ``yaml.YAMLError`` on bad YAML (a
    value YAML cannot construct, ``2026-02-30``, too: :class:`ScalarGuard`)."""
    loader = _BoundedLoader(text)
    try:
        try:
            node = loader.get_single_node()
        except RecursionError:
            raise TooLargeError(f"nested more than {MAX_DEPTH} levels deep") from None
        if node is None:
            return None
        _check(node)
        return loader.construct_document(node)
    finally:
        loader.dispose()


def _check(root: Node) -> None:
    seen: dict[int, tuple[int, int]] = {}  # node -> (nodes it expands to, levels below it)
    active: set[int] = set()

    def walk(node: Node, depth: int) -> tuple[int, int]:
        if id(node) in active:
            raise TooLargeError(f"an alias refers to its own ancestor (line {node.start_mark.line + 1})")
        if id(node) not in seen:
            active.add(id(node))
            total, below = 1, 0
            children = (node.value if isinstance(node, SequenceNode) else
                        [n for pair in node.value for n in pair] if isinstance(node, MappingNode) else [])
            for child in children:
                if depth + 1 > MAX_DEPTH:
                    break  # said below
                size, levels = walk(child, depth + 1)
                total, below = total + size, max(below, levels + 1)
                if total > MAX_NODES:
                    raise TooLargeError(f"the document expands to more than {MAX_NODES} nodes, counting every "
                                        f"use of an alias (a YAML bomb?) (line {node.start_mark.line + 1})")
            else:
                seen[id(node)] = (total, below)
            active.discard(id(node))
            if id(node) not in seen:
                raise TooLargeError(f"nested more than {MAX_DEPTH} levels deep (line {node.start_mark.line + 1})")
        size, below = seen[id(node)]
        if depth + below > MAX_DEPTH:  # an alias used deeper than where it was written
            raise TooLargeError(f"nested more than {MAX_DEPTH} levels deep (line {node.start_mark.line + 1})")
        return size, below

    walk(root, 0)
