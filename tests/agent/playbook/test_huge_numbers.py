"""A number longer than Python reads (more than 4300 digits) anywhere in a file, in YAML or in an
expression, is a positioned error like any other, never an internal error (exit 250)."""
from __future__ import annotations

from agent.playbook.templating import Templating
from agent.playbook.yaml_source import SourceDocument, load_yaml_text

HUGE = "9" * 5000


def test_a_huge_integer_in_yaml_is_reported_where_it_is() -> None:
    doc = load_yaml_text(f"vars:\n  x: {HUGE}\n", SourceDocument("inventory.yaml"))
    assert doc.data is None
    [diag] = doc.diagnostics
    assert (diag.line, diag.column) == (2, 6), str(diag)
    assert "5000 digits is too long to read" in diag.message


def test_a_huge_integer_in_an_expression_is_a_syntax_problem() -> None:
    said = Templating(None, env={}).check_expression(f"value > {HUGE}")
    assert said is not None and "a number too long to read" in said
