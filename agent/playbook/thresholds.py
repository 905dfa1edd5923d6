"""Threshold comparisons: ``warning: "> {{ mem_warning }}"``, ``critical: "> 90"``.

A threshold is an operator (``> >= < <= == !=``) followed by a bound. The bound is either a
template (``{{ mem_warning }}``, rendered with its native type) or a bare expression
(``90``, ``mem_warning * 1.1``). Numeric-looking strings compare as numbers.
"""
from __future__ import annotations

import operator
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

from agent.playbook.templating import TemplateError, Templating, has_template

_OPS: dict[str, Callable[[Any, Any], bool]] = {
    ">": operator.gt, ">=": operator.ge, "<": operator.lt,
    "<=": operator.le, "==": operator.eq, "!=": operator.ne,
}
_NEGATED = {">": "<=", ">=": "<", "<": ">=", "<=": ">", "==": "!=", "!=": "=="}
_THRESHOLD_RE = re.compile(r"^\s*(>=|<=|==|!=|>|<)\s*(\S.*?)\s*$", re.DOTALL)


def as_number(value: Any) -> Any:
    """``"80"`` -> 80.0; other values unchanged (booleans are not numbers here)."""
    if isinstance(value, str):
        try:
            return float(value.strip())
        except ValueError:
            return value
    return value


def is_number(value: Any) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool)


@dataclass(frozen=True)
class Threshold:
    """``op`` is one of ``> >= < <= == !=``; ``expr_src`` is the bound as written."""

    op: str
    expr_src: str

    @classmethod
    def parse(cls, text: Any) -> Threshold:
        """Parse ``"> 80"``. Raises ``ValueError`` naming the accepted form."""
        if is_number(text):
            raise ValueError(f"a threshold needs an operator, e.g. '> {text}'")
        match = _THRESHOLD_RE.match(text) if isinstance(text, str) else None
        if not match:
            raise ValueError(f"{text!r} is not a threshold; write an operator (> >= < <= == !=) "
                             "then a value, e.g. '> 80' or '< {{ min_equity }}'")
        return cls(match.group(1), match.group(2))

    @property
    def direction(self) -> int:
        """+1 when larger values are worse (``>``), -1 when smaller are (``<``), 0 otherwise."""
        return 1 if self.op in (">", ">=") else -1 if self.op in ("<", "<=") else 0

    def bound(self, vars: Mapping[str, Any], templating: Templating) -> Any:
        """The bound's value for ``vars`` (numeric strings become floats)."""
        return as_number(self.written_bound(vars, templating))

    def written_bound(self, vars: Mapping[str, Any], templating: Templating) -> Any:
        """The bound's value for ``vars`` as the template or expression gives it (load-time checks
        refuse text where a number is compared: ``> {{ lim }}`` with ``lim: "80"``)."""
        if has_template(self.expr_src):
            return templating.render_value(self.expr_src, vars)
        return templating.evaluate(self.expr_src, vars)

    def breached(self, value: Any, vars: Mapping[str, Any], templating: Templating) -> bool:
        """True when ``value <op> bound``. Raises TemplateError when they cannot be compared."""
        bound = self.bound(vars, templating)
        left = as_number(value)
        if value is None:
            raise TemplateError(f"threshold '{self}': the value is missing (None)")
        try:
            return bool(_OPS[self.op](left, bound))
        except TypeError:
            raise TemplateError(f"threshold '{self}': cannot compare a {type(left).__name__} "
                                f"with a {type(bound).__name__}") from None

    def negated(self) -> Threshold:
        """The complement (``> 80`` -> ``<= 80``): the default ``clear`` condition."""
        return Threshold(_NEGATED[self.op], self.expr_src)

    def __str__(self) -> str:
        return f"{self.op} {self.expr_src}"
