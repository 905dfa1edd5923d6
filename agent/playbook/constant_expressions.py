"""Expressions whose truth does not depend on anything they read: ``expect: "1 == 1"``,
``expect: "status_code == 200 or true"``, ``expect: "rc == rc"``. A check with one never changes
state whatever the module finds, which is never what was meant.

The expression is read as Jinja2 parses it (the same parser as the evaluation) and folded by
the rules of Python's truth: a constant is its truth, ``or``/``and``/``not`` combine what is
known, ``x if c else y`` with a known ``c`` is that branch, a comparison of an expression with
itself (no call or filter in it) is known from the operator, a literal list or dict is its
length. Anything else is unknown (``None``).
"""
from __future__ import annotations

from jinja2 import Environment, nodes
from jinja2.exceptions import TemplateSyntaxError

_SAME_TRUE = {"eq": True, "gteq": True, "lteq": True, "ne": False, "lt": False, "gt": False}


def constant_truth(expression: str, env: Environment | None = None) -> bool | None:
    """True or False when ``expression`` is always that, whatever the values it reads; else None
    (also when it does not parse: that is reported elsewhere)."""
    env = env or Environment()
    try:
        template = env.parse("{{ (" + expression + ") }}")
    except (TemplateSyntaxError, RecursionError):
        return None
    output = template.body[0] if template.body else None
    if not isinstance(output, nodes.Output) or len(output.nodes) != 1:
        return None
    return _truth(output.nodes[0])


def _truth(node: nodes.Node) -> bool | None:
    if isinstance(node, nodes.Const):
        return bool(node.value)
    if isinstance(node, (nodes.List, nodes.Tuple)):
        return bool(node.items)
    if isinstance(node, nodes.Dict):
        return bool(node.items)
    if isinstance(node, nodes.Not):
        inner = _truth(node.node)
        return None if inner is None else not inner
    if isinstance(node, nodes.Or):
        left, right = _truth(node.left), _truth(node.right)
        if left is True or right is True:
            return True
        return False if left is False and right is False else None
    if isinstance(node, nodes.And):
        left, right = _truth(node.left), _truth(node.right)
        if left is False or right is False:
            return False
        return True if left is True and right is True else None
    if isinstance(node, nodes.CondExpr):
        test = _truth(node.test)
        if test is None:
            return None
        branch = node.expr1 if test else node.expr2
        return _truth(branch) if branch is not None else False
    if isinstance(node, nodes.Compare) and len(node.ops) == 1:
        op = node.ops[0]
        if op.op in _SAME_TRUE and _pure(node.expr) and node.expr == op.expr:
            return _SAME_TRUE[op.op]
    if not isinstance(node, nodes.Expr):
        return None
    try:
        return bool(node.as_const())
    except Exception:  # noqa: BLE001 - nodes.Impossible and whatever folding a value raises: unknown
        return None


def _pure(node: nodes.Node) -> bool:
    """No call, filter or test in ``node``: reading it twice gives the same value."""
    impure = (nodes.Call, nodes.Filter, nodes.Test)
    return not isinstance(node, impure) and not any(True for _ in node.find_all(impure))
