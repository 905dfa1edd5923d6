"""``constant_truth`` decides an expression by its cases (issue 15: folding beyond ``and``-joined
comparisons). Property: whatever it says is true in every evaluation Jinja makes of it; and it
finds the tautologies and contradictions an operator writes by mistake."""
from __future__ import annotations

import itertools

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from jinja2 import Environment

from agent.playbook.constant_expressions import constant_truth

NUMBERS = [-1, 0, 1, 2.5, 3]
WORDS = ["'a'", "'b'", "'RUNNING'"]


def _atoms() -> st.SearchStrategy[str]:
    number_cmp = st.builds(lambda op, c, flip: f"{c} {op} x" if flip else f"x {op} {c}",
                           st.sampled_from(["==", "!=", "<", "<=", ">", ">="]), st.sampled_from(NUMBERS), st.booleans())
    word_cmp = st.builds(lambda op, c: f"s {op} {c}", st.sampled_from(["==", "!="]), st.sampled_from(WORDS))
    member = st.builds(lambda neg, items: f"s {'not in' if neg else 'in'} [{', '.join(items)}]", st.booleans(),
                       st.lists(st.sampled_from(WORDS), max_size=3))
    return st.one_of(number_cmp, word_cmp, member, st.sampled_from(["a", "b", "a is defined", "x == x", "true",
                                                                     "0", "[]", "s == t"]))


EXPRESSIONS = st.recursive(
    _atoms(),
    lambda inner: st.one_of(
        st.builds(lambda e: f"not ({e})", inner),
        st.builds(lambda l, r: f"({l}) and ({r})", inner, inner),
        st.builds(lambda l, r: f"({l}) or ({r})", inner, inner),
        st.builds(lambda t, l, r: f"(({l}) if ({t}) else ({r}))", inner, inner, inner)),
    max_leaves=6)

CASES = [dict(zip(("x", "s", "t", "a", "b"), values, strict=True)) for values in itertools.product(
    [-2, -1, -0.5, 0, 0.5, 1, 2, 2.5, 2.7, 3, 4], ["a", "b", "RUNNING", "z"], ["a", "q"], [True, False],
    [True, False])]


@settings(max_examples=300, derandomize=True, deadline=None, database=None)
@given(expression=EXPRESSIONS)
def test_what_it_decides_holds_in_every_evaluation(expression: str) -> None:
    truth = constant_truth(expression)
    if truth is None:
        return
    compiled = Environment().compile_expression(expression)
    for case in CASES:
        assert bool(compiled(**case)) is truth, (expression, case)


@pytest.mark.parametrize(("expression", "truth"), [
    ("x == 'A' or x != 'A'", True), ("x > 5 or x <= 5", True), ("x != 1 or x != 2", True),
    ("x in ['a', 'b'] or x not in ['a', 'b']", True), ("a is defined or a is not defined", True),
    ("x == none or x != none", True),
    ("x in ['a'] and x == 'b'", False), ("not (x == 1) and x == 1", False), ("a and not a", False),
    ("state in ['EXITED', 'FATAL'] and state == 'RUNNING'", False), ("x in []", False),
    ("x in [1] and x > 1", False), ("(x > 5 or x < 0) and x == 3", False),
    # not constant: a filter or a call may differ each time; values that read differently
    ("x | int > 5 or x | int <= 5", None), ("x == 1 or x == 2", None), ("x > 2 and x < 3", None),
    ("x == 'a' and x > 3", None), ("status_code == 200 or json.ok", None), ("x == 1 and 'yes'", None),
])
def test_tautologies_and_contradictions_beyond_and(expression: str, truth: bool | None) -> None:
    assert constant_truth(expression) is truth
