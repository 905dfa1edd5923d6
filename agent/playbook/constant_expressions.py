"""Expressions whose truth does not depend on anything they read: ``expect: "1 == 1"``,
``expect: "status_code == 200 or true"``, ``expect: "rc == rc"``. A check with one never changes
state whatever the module finds, which is never what was meant.

The expression is read as Jinja2 parses it (the same parser as the evaluation) and folded by
the rules of Python's truth: a constant is its truth, ``or``/``and``/``not`` combine what is
known, ``x if c else y`` with a known ``c`` is that branch, a comparison of an expression with
itself (no call or filter in it) is known from the operator, a literal list or dict is its
length, and conditions joined by ``and`` that contradict each other (one value equal to two
constants, a numeric range with nothing in it) are false. Anything else is unknown (``None``).
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
        if left is True and right is True:
            return True
        return False if _contradict(_conjuncts(node)) else None
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


def _conjuncts(node: nodes.Node) -> list[nodes.Node]:
    if isinstance(node, nodes.And):
        return [*_conjuncts(node.left), *_conjuncts(node.right)]
    return [node]


_FLIP = {"lt": "gt", "gt": "lt", "lteq": "gteq", "gteq": "lteq", "eq": "eq", "ne": "ne"}


def _bound(node: nodes.Node) -> tuple[nodes.Node, str, object] | None:
    """``x OP constant`` (or ``constant OP x``) with a pure ``x``: (x, OP, constant); else None."""
    if not isinstance(node, nodes.Compare) or len(node.ops) != 1:
        return None
    op = node.ops[0]
    if op.op not in _FLIP:
        return None
    if isinstance(op.expr, nodes.Const) and _pure(node.expr) and not isinstance(node.expr, nodes.Const):
        return node.expr, op.op, op.expr.value
    if isinstance(node.expr, nodes.Const) and _pure(op.expr) and not isinstance(op.expr, nodes.Const):
        return op.expr, _FLIP[op.op], node.expr.value
    return None


def _contradict(parts: list[nodes.Node]) -> bool:
    """Conditions joined by ``and`` that no value satisfies together: one expression equal to two
    different constants, equal and not equal to one, or a numeric range that is empty
    (``state == 'EXITED' and state == 'FATAL'``, ``x > 5 and x < 3``)."""
    seen: list[tuple[nodes.Node, str, object]] = [b for b in map(_bound, parts) if b is not None]
    for i, (expr, op, value) in enumerate(seen):
        for other, op2, value2 in seen[i + 1:]:
            if expr != other:
                continue
            try:
                if op == "eq" and op2 == "eq" and value != value2:
                    return True
                if {op, op2} == {"eq", "ne"} and value == value2:
                    return True
                if op == "eq" and op2 not in ("eq", "ne") and not _holds(value, op2, value2):
                    return True
                if op2 == "eq" and op not in ("eq", "ne") and not _holds(value2, op, value):
                    return True
                if _empty_range(op, value, op2, value2):
                    return True
            except TypeError:  # a number compared with text: not judged here
                continue
    return False


def _holds(value: object, op: str, bound: object) -> bool:
    return bool({"lt": lambda a, b: a < b, "gt": lambda a, b: a > b, "lteq": lambda a, b: a <= b,
                 "gteq": lambda a, b: a >= b}[op](value, bound))


def _empty_range(op: str, value: object, op2: str, value2: object) -> bool:
    """``x > a and x < b`` with nothing between (numbers only)."""
    if not all(isinstance(v, (int, float)) and not isinstance(v, bool) for v in (value, value2)):
        return False
    lower = [(value, op) for value, op in ((value, op), (value2, op2)) if op in ("gt", "gteq")]
    upper = [(value, op) for value, op in ((value, op), (value2, op2)) if op in ("lt", "lteq")]
    if len(lower) != 1 or len(upper) != 1:
        return False
    (low, low_op), (high, high_op) = lower[0], upper[0]
    if low_op == "gteq" and high_op == "lteq":
        return low > high  # type: ignore[operator]
    return low >= high  # type: ignore[operator]


def _pure(node: nodes.Node) -> bool:
    """No call, filter or test in ``node``: reading it twice gives the same value."""
    impure = (nodes.Call, nodes.Filter, nodes.Test)
    return not isinstance(node, impure) and not any(True for _ in node.find_all(impure))
