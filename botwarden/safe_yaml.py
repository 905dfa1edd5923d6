"""Reading an operator's YAML plainly (no positions), within the bounds ``agent validate`` holds it
to: at most :data:`MAX_NODES` nodes counting every use of an alias, at most :data:`MAX_DEPTH`
levels of nesting, never a recursive alias.

``yaml.safe_load`` expands nothing itself (an alias is the same object again), but what walks the
result does: a YAML bomb of a kilobyte is a billion strings to whatever reads every value (the
names of the variables ``agent stack up`` exports, pydantic's message on a settings file with an
unknown key: ``bot run`` spun for ever), and a document nested a few thousand levels deep raised
RecursionError (``agent stack up``: internal error, exit 250). The readers that give positions
(:mod:`agent.playbook.yaml_source`) hold the same bounds.
"""
from __future__ import annotations

from typing import Any

import yaml
from yaml.nodes import MappingNode, Node, SequenceNode

MAX_NODES = 50_000
"""Largest number of YAML nodes a document may expand to, aliases counted at every use."""
MAX_DEPTH = 64
"""Deepest nesting of mappings and lists accepted: playbooks need about ten levels, and a
bound here keeps every recursive step after loading (validation, templates) within Python's
recursion limit."""


class TooLargeError(yaml.YAMLError):  # type: ignore[misc]  # yaml is untyped here
    """A document past the bounds: a ``yaml.YAMLError``, so a reader that handles YAML it cannot
    read handles this one too."""


def load(text: str) -> Any:
    """``yaml.safe_load(text)`` within :data:`MAX_NODES` and :data:`MAX_DEPTH`; raises
    :class:`TooLargeError` (a ``yaml.YAMLError``) past them, ``yaml.YAMLError`` on bad YAML."""
    loader = yaml.SafeLoader(text)
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
