"""Expressions whose truth does not depend on anything they read: ``expect: "1 == 1"``,
``expect: "status_code == 200 or true"``, ``expect: "rc == rc"``, ``when: "x == 'A' and x ==
'B'"``, ``when: "x > 5 or x <= 5"``. A check with one never changes state whatever the module
finds, a remediation step with an always-false ``when`` never runs: never what was meant.

The expression is read as Jinja2 parses it (the same parser as the evaluation) and decided by
evaluating it in every case that can make a difference, the way a truth table does:

* a comparison of a pure expression (no call, filter or test in it) with constants, ``x OP c``
  or ``x in [c1, c2]``, depends only on where ``x`` lies among the constants it is compared
  with: equal to one of them, between two of them, below or above all (numbers), or none of
  them (an ``x`` only compared for equality). One value of each such place is tried;
* a comparison of a pure expression with itself is known from its operator;
* anything else (a test such as ``x is defined``, a bare name, a comparison of two names) is an
  unknown truth, tried both ways; the same part written twice is one unknown (``a or not a``,
  ``x is defined or x is not defined``) unless it holds a call or a filter (``x | random``): then
  it is a new unknown each time it is written;
* ``and``/``or``/``not``/``x if c else y``, constants and literal lists follow Python's truth.

If every case gives the same truth, that is the answer; otherwise (or with too many cases, or a
comparison that could raise, such as a number ordered against text) it is ``None``: unknown.
"""
from __future__ import annotations

import itertools
from collections.abc import Collection, Mapping, Sequence

from jinja2 import Environment, nodes
from jinja2.exceptions import TemplateSyntaxError

_SAME_TRUE = {"eq": True, "gteq": True, "lteq": True, "ne": False, "lt": False, "gt": False}


def constant_truth(expression: str, env: Environment | None = None,
                   domains: Mapping[str, Collection[object]] | None = None) -> bool | None:
    """True or False when ``expression`` is always that, whatever the values it reads; else None
    (also when it does not parse: that is reported elsewhere). ``domains``: the only values some
    names can have (``{"check.state": ("OK", "WARNING", "CRITICAL", "UNKNOWN")}``): compared with
    anything else they are never equal (``check.state == 'critical'`` is always false)."""
    env = env or Environment()
    try:
        template = env.parse("{{ (" + expression + ") }}")
    except (TemplateSyntaxError, RecursionError):
        return None
    output = template.body[0] if template.body else None
    if not isinstance(output, nodes.Output) or len(output.nodes) != 1:
        return None
    known: list[tuple[nodes.Node, tuple[object, ...]]] = []
    for name, values in (domains or {}).items():
        try:
            parsed = env.parse("{{ " + name + " }}").body[0]
        except (TemplateSyntaxError, IndexError):
            continue
        if isinstance(parsed, nodes.Output) and len(parsed.nodes) == 1:
            known.append((parsed.nodes[0], tuple(values)))
    return _truth(output.nodes[0], known)


_MAX_CASES = 4096
"""More cases than this (many names, many constants): unknown rather than slow."""
_ORDER = {"lt": lambda a, b: a < b, "gt": lambda a, b: a > b, "lteq": lambda a, b: a <= b,
          "gteq": lambda a, b: a >= b}
_EQUALITY = {"eq": lambda a, b: a == b, "ne": lambda a, b: a != b}
_MEMBERSHIP = {"in": lambda a, b: a in b, "notin": lambda a, b: a not in b}


class _Unknown(Exception):
    """A case whose evaluation could raise: the expression is not judged."""


class _Model:
    """The unknowns of one expression: names compared with constants, and other truths."""

    def __init__(self, domains: Sequence[tuple[nodes.Node, tuple[object, ...]]] = ()) -> None:
        self.domains = domains
        self.names: list[nodes.Node] = []
        self.constants: list[list[object]] = []
        self.ordered: list[bool] = []
        self.truths: list[nodes.Node | None] = []  # None: an impure part, never the same twice
        self.atoms: dict[int, tuple[str, int, bool]] = {}  # id(node) -> ("name"|"truth", i, negated)

    def _index(self, found: list[nodes.Node] | list[nodes.Node | None], node: nodes.Node) -> int | None:
        return next((i for i, n in enumerate(found) if n is not None and n == node), None)

    def collect(self, node: nodes.Node) -> None:
        if isinstance(node, (nodes.Not,)):
            self.collect(node.node)
        elif isinstance(node, (nodes.And, nodes.Or)):
            self.collect(node.left)
            self.collect(node.right)
        elif isinstance(node, nodes.CondExpr):
            for part in (node.test, node.expr1, node.expr2):
                if part is not None:
                    self.collect(part)
        elif isinstance(node, (nodes.Const, nodes.List, nodes.Tuple, nodes.Dict)):
            return
        elif _same_sides(node) is not None or _folded(node) is not None:
            return
        elif (bound := _comparison(node)) is not None:
            name, op, values = bound
            i = self._index(self.names, name)
            if i is None:
                self.names.append(name)
                self.constants.append([])
                self.ordered.append(False)
                i = len(self.names) - 1
            self.constants[i].extend(values)
            self.ordered[i] = self.ordered[i] or op in _ORDER
            self.atoms[id(node)] = ("name", i, False)
        else:
            key, negated = _positive(node)
            i = self._index(self.truths, key) if _repeatable(key) else None
            if i is None:
                self.truths.append(key if _repeatable(key) else None)
                i = len(self.truths) - 1
            self.atoms[id(node)] = ("truth", i, negated)

    def cases(self) -> list[tuple[tuple[object, ...], tuple[bool, ...]]] | None:
        values = [self._domain(name) or _places(consts, ordered)
                  for name, consts, ordered in zip(self.names, self.constants, self.ordered, strict=True)]
        count = 2 ** len(self.truths)
        for v in values:
            count *= len(v)
        if count > _MAX_CASES:
            return None
        return [(named, truths) for named in itertools.product(*values)
                for truths in itertools.product((False, True), repeat=len(self.truths))]

    def _domain(self, name: nodes.Node) -> list[object] | None:
        return next((list(values) for known, values in self.domains if known == name), None)

    def value(self, node: nodes.Node, named: tuple[object, ...], truths: tuple[bool, ...]) -> object:
        if isinstance(node, nodes.Not):
            return not self.value(node.node, named, truths)
        if isinstance(node, nodes.And):
            left = self.value(node.left, named, truths)
            return self.value(node.right, named, truths) if left else left
        if isinstance(node, nodes.Or):
            left = self.value(node.left, named, truths)
            return left if left else self.value(node.right, named, truths)
        if isinstance(node, nodes.CondExpr):
            if self.value(node.test, named, truths):
                return self.value(node.expr1, named, truths)
            return self.value(node.expr2, named, truths) if node.expr2 is not None else None
        if isinstance(node, nodes.Const):
            return node.value
        if isinstance(node, (nodes.List, nodes.Tuple, nodes.Dict)):
            return bool(node.items)
        known: object = _same_sides(node)
        if known is None:
            known = _folded(node)
        if known is not None:
            return known
        atom = self.atoms.get(id(node))
        if atom is None:
            raise _Unknown  # pragma: no cover - every other part is an atom
        kind, i, negated = atom
        if kind == "truth":
            return truths[i] != negated
        _, op, constants = _comparison(node)  # type: ignore[misc]
        try:
            if op in _MEMBERSHIP:
                return _MEMBERSHIP[op](named[i], constants)
            return {**_ORDER, **_EQUALITY}[op](named[i], constants[0])
        except TypeError:
            raise _Unknown from None


def _truth(node: nodes.Node, domains: Sequence[tuple[nodes.Node, tuple[object, ...]]] = ()) -> bool | None:
    model = _Model(domains)
    model.collect(node)
    cases = model.cases()
    if cases is None:
        return None
    seen: set[bool] = set()
    for named, truths in cases:
        try:
            seen.add(bool(model.value(node, named, truths)))
        except _Unknown:
            return None
        if len(seen) > 1:
            return None
    return seen.pop() if seen else None


def _places(constants: list[object], ordered: bool) -> list[object]:
    """One value of each place among ``constants`` that a comparison with them can tell apart."""
    out: list[object] = []
    for c in constants:
        if not any(type(c) is type(o) and c == o for o in out):
            out.append(c)
    numbers = sorted({c for c in constants if isinstance(c, (int, float)) and not isinstance(c, bool)})
    if numbers:
        out += [numbers[0] - 1, numbers[-1] + 1, *((a + b) / 2 for a, b in itertools.pairwise(numbers))]
    if not ordered:  # compared for equality only: a value equal to none of them
        out.append("\x00" + "".join(str(c) for c in constants) + "\x00")
    return out


def _same_sides(node: nodes.Node) -> bool | None:
    """``x == x``, ``x < x``...: known from the operator when ``x`` is pure."""
    if isinstance(node, nodes.Compare) and len(node.ops) == 1:
        op = node.ops[0]
        if op.op in _SAME_TRUE and _pure(node.expr) and node.expr == op.expr:
            return _SAME_TRUE[op.op]
    return None


def _folded(node: nodes.Node) -> object | None:
    """The value of an expression Jinja folds at parse time (``1 + 1 == 2``), as a truth."""
    if not isinstance(node, nodes.Expr):
        return None
    try:
        return bool(node.as_const())
    except Exception:  # noqa: BLE001 - nodes.Impossible and whatever folding a value raises: unknown
        return None


_FLIP = {"lt": "gt", "gt": "lt", "lteq": "gteq", "gteq": "lteq", "eq": "eq", "ne": "ne"}
_CONSTANT_TYPES = (str, int, float, bool, type(None))


def _comparison(node: nodes.Node) -> tuple[nodes.Node, str, list[object]] | None:
    """``x OP constant``, ``constant OP x`` or ``x in [constants]`` with a pure, non-constant
    ``x``: (x, OP, the constants); an ordering against anything but numbers is left unknown."""
    if isinstance(node, nodes.Test) and node.name == "none" and not node.args and not node.kwargs \
            and _pure(node.node) and not isinstance(node.node, nodes.Const):
        return node.node, "eq", [None]  # x is none
    if not isinstance(node, nodes.Compare) or len(node.ops) != 1:
        return None
    op = node.ops[0]
    left, right, name = node.expr, op.expr, op.op
    if name in _MEMBERSHIP:
        if isinstance(right, (nodes.List, nodes.Tuple)) \
                and all(isinstance(i, nodes.Const) and isinstance(i.value, _CONSTANT_TYPES) for i in right.items) \
                and _pure(left) and not isinstance(left, nodes.Const):
            return left, name, [i.value for i in right.items if isinstance(i, nodes.Const)]
        return None
    if name not in _FLIP:
        return None
    if isinstance(left, nodes.Const) and not isinstance(right, nodes.Const):
        left, right, name = right, left, _FLIP[name]
    if not isinstance(right, nodes.Const) or isinstance(left, nodes.Const) or not _pure(left):
        return None
    value = right.value
    if not isinstance(value, _CONSTANT_TYPES):
        return None
    if name in _ORDER and (not isinstance(value, (int, float)) or isinstance(value, bool)):
        return None
    return left, name, [value]


def _pure(node: nodes.Node) -> bool:
    """No call, filter or test in ``node``: reading it twice gives the same value."""
    impure = (nodes.Call, nodes.Filter, nodes.Test)
    return not isinstance(node, impure) and not any(True for _ in node.find_all(impure))


def _repeatable(node: nodes.Node) -> bool:
    """No call or filter in ``node`` (tests such as ``defined`` are allowed): written twice, it is
    the same truth both times."""
    impure = (nodes.Call, nodes.Filter)
    return not isinstance(node, impure) and not any(True for _ in node.find_all(impure))


_NEGATION = {"ne": "eq", "notin": "in"}


def _positive(node: nodes.Node) -> tuple[nodes.Node, bool]:
    """``a != b`` as (``a == b``, negated), ``x not in L`` as (``x in L``, negated): one unknown
    for both spellings (``x in L and x not in L`` is a contradiction whatever L holds)."""
    if isinstance(node, nodes.Compare) and len(node.ops) == 1 and node.ops[0].op in _NEGATION:
        op = node.ops[0]
        return nodes.Compare(node.expr, [nodes.Operand(_NEGATION[op.op], op.expr)]), True
    return node, False
