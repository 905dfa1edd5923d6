"""The sandboxed Jinja2 environment: rendering, expressions, escapes, thresholds."""
from __future__ import annotations

from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from agent.playbook import TemplateError, Templating, Threshold, load_config
from botwarden.errors import ConfigError

from .conftest import GOOD


@pytest.fixture
def tpl() -> Templating:
    return Templating(None, env={"TOKEN": "s3cr3t-token", "EMPTY": ""})


def test_render_value_keeps_native_types_for_whole_expressions(tpl: Templating) -> None:
    vars = {"n": 80, "items": [1, 2], "bot": {"port": 8081}}
    rendered = tpl.render_value({"a": "{{ n }}", "b": ["{{ items }}", "port {{ bot.port }}"], "c": 3,
                                 "d": "{{ n + 1 }}", "e": "plain"}, vars)
    assert rendered == {"a": 80, "b": [[1, 2], "port 8081"], "c": 3, "d": 81, "e": "plain"}


def test_two_expressions_in_one_string_render_as_text(tpl: Templating) -> None:
    assert tpl.render_value("{{ a }}{{ b }}", {"a": 1, "b": 2}) == "12"


def test_undefined_variables_are_errors(tpl: Templating) -> None:
    with pytest.raises(TemplateError, match="'missing' is undefined"):
        tpl.render_str("x {{ missing }}", {})
    with pytest.raises(TemplateError, match="has no attribute 'nope'"):
        tpl.evaluate("bot.nope", {"bot": {}})
    assert issubclass(TemplateError, ConfigError)


def test_evaluate_expressions(tpl: Templating) -> None:
    facts = {"status_code": 200, "json": {"status": "healthy"}}
    assert tpl.evaluate("status_code == 200 and json.status == 'healthy'", facts) is True
    assert tpl.evaluate("status_code == 200 and json.status == 'healthy'", {**facts, "status_code": 500}) is False
    assert tpl.evaluate("false", {}) is False


@pytest.mark.parametrize("src", [
    "''.__class__.__mro__",
    "cycler.__init__.__globals__",
    "joiner.__init__.__globals__['os']",
    "x['__class__']",
    "x | attr('__class__')",
])
def test_sandbox_escapes_fail_at_syntax_check(tpl: Templating, src: str) -> None:
    problem = tpl.check_expression(src)
    assert problem is not None and "not allowed" in problem
    assert tpl.check_syntax("{{ " + src + " }}") is not None
    with pytest.raises(TemplateError, match="not allowed"):
        tpl.evaluate(src, {"x": ""})


def test_sandbox_escape_built_at_run_time_is_refused(tpl: Templating) -> None:
    # The attribute name is computed, so the static check cannot see it: the sandbox must.
    src = "'' | attr('_' ~ '_class_' ~ '_')"
    assert tpl.check_expression(src) is None
    with pytest.raises(TemplateError, match=r"refused by the sandbox|unsafe|not safely"):
        str(tpl.evaluate(src, {}))


def test_sandbox_is_immutable(tpl: Templating) -> None:
    items: list[int] = []
    with pytest.raises(TemplateError, match="refused by the sandbox"):
        tpl.evaluate("items.append(1)", {"items": items})
    assert items == []


def test_huge_repetition_is_refused(tpl: Templating) -> None:
    with pytest.raises(TemplateError, match="repetition"):
        tpl.evaluate("'x' * 10000000000", {})
    with pytest.raises(TemplateError, match="exponent"):
        tpl.evaluate("2 ** 100000000", {})
    assert tpl.evaluate("'ab' * 3", {}) == "ababab"


def test_syntax_check_reports_problems(tpl: Templating) -> None:
    assert tpl.check_syntax("{{ a }") is not None
    assert tpl.check_syntax("{% if a %}x") is not None
    assert tpl.check_syntax("hello {{ a }}") is None
    assert tpl.check_expression("a ==") is not None
    assert tpl.check_expression("a b") is not None
    assert tpl.check_expression("") == "empty expression"
    assert tpl.check_expression("a == 1") is None


def test_env_is_a_read_only_mapping_and_read_values_are_redacted(tpl: Templating) -> None:
    assert tpl.render_str("{{ env.TOKEN }}", {}) == "s3cr3t-token"
    assert tpl.render_str("[{{ env.NOPE | default('') }}]", {}) == "[]"
    with pytest.raises(TemplateError):
        tpl.evaluate("env.update({'TOKEN': 'x'})", {})
    assert tpl.redact("token is s3cr3t-token") == "token is ***"
    with pytest.raises(TemplateError) as info:
        tpl.render_str("{{ {}[env.TOKEN] }}", {})  # jinja's message quotes the missing key
    assert "s3cr3t-token" not in str(info.value)


def test_render_template_from_directory(tmp_path: Path) -> None:
    (tmp_path / "alert.md.j2").write_text("{{ check }} on {{ host }} is {{ state }}\n")
    (tmp_path / "bad.j2").write_text("{{ x.__class__ }}")
    tpl = Templating(tmp_path, env={})
    assert tpl.render_template("alert.md.j2", {"check": "memory", "host": "local", "state": "CRITICAL"}) \
        == "memory on local is CRITICAL\n"
    assert tpl.check_template_file("alert.md.j2") is None
    assert "not allowed" in (tpl.check_template_file("bad.j2") or "")
    assert "cannot load" in (tpl.check_template_file("nope.j2") or "")
    with pytest.raises(TemplateError, match=r"nope\.j2"):
        tpl.render_template("nope.j2", {})


@pytest.mark.parametrize("text, op, expr", [("> 80", ">", "80"), (">=80", ">=", "80"), ("< {{ x }}", "<", "{{ x }}"),
                                            ("!= 'ok'", "!=", "'ok'"), ("  <= 1.5 ", "<=", "1.5")])
def test_threshold_parse(text: str, op: str, expr: str) -> None:
    assert Threshold.parse(text) == Threshold(op, expr)


@pytest.mark.parametrize("text", ["80", "=> 80", ">", "", 80, None, "about 80"])
def test_threshold_parse_rejects(text: object) -> None:
    with pytest.raises(ValueError):
        Threshold.parse(text)


def test_threshold_breached(tpl: Templating) -> None:
    vars = {"mem_warning": 80}
    warning = Threshold.parse("> {{ mem_warning }}")
    assert warning.breached(81, vars, tpl) is True
    assert warning.breached(80, vars, tpl) is False
    assert warning.breached("85.5", vars, tpl) is True  # numeric strings compare as numbers
    assert Threshold.parse("> mem_warning * 1.1").breached(87, vars, tpl) is False
    assert Threshold.parse("!= 'healthy'").breached("degraded", vars, tpl) is True
    assert warning.negated() == Threshold("<=", "{{ mem_warning }}")
    assert warning.negated().breached(80, vars, tpl) is True
    with pytest.raises(TemplateError, match="cannot compare"):
        warning.breached("lots", vars, tpl)
    with pytest.raises(TemplateError, match="missing"):
        warning.breached(None, vars, tpl)


# A template file's own problem is shown in that file, at its line (issue 15, F14) ---------------

DEFECTS = [  # (text of the defective line, what the message says)
    ("{% if x %}never closed", "Jinja2 syntax error"),
    ("{{ host | capitalise }}", "No filter named 'capitalise'"),
    ("{{ host is nosuchtest }}", "No test named 'nosuchtest'"),
    ("{{ host.__class__ }}", "access to '__class__' is not allowed"),
    ("{{ host }", "Jinja2 syntax error"),
    ("{% endfor %}", "Jinja2 syntax error"),
    ('{% include "nope.j2" %}', "it includes 'nope.j2'"),  # F10: rendered nothing, accepted
    ("{% from 'macros.j2' import shout %}", "it includes 'macros.j2'"),
    ("{% include ['gone.j2', 'also-gone.j2'] %}", "it includes 'gone.j2'"),
]


@settings(max_examples=30, derandomize=True, deadline=None, database=None,
          suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(defect=st.sampled_from(DEFECTS), before=st.integers(0, 6), crlf=st.booleans(),
       user=st.sampled_from(["inventory", "inventory-default", "step"]))
def test_a_template_file_problem_is_reported_at_its_line_in_that_file(
        tmp_path_factory: pytest.TempPathFactory, defect: tuple[str, str], before: int, crlf: bool, user: str) -> None:
    from tests.agent.playbook.modules_for_tests import make_registry

    root = tmp_path_factory.mktemp("tpl")
    (root / "templates").mkdir()
    newline = "\r\n" if crlf else "\n"
    (root / "templates" / "broken.md.j2").write_bytes(
        newline.join([*(f"line {i} for {{{{ host }}}}" for i in range(before)), defect[0], "end", ""]).encode())
    inventory = (GOOD / "inventory.yaml").read_text(encoding="utf-8")
    if user == "inventory":
        inventory = inventory.replace("notify:\n", "notify:\n  templates: {alert: broken.md.j2}\n", 1)
    elif user == "inventory-default":  # not named: the default grouped template's file is used
        (root / "templates" / "broken.md.j2").rename(root / "templates" / "grouped.md.j2")
    (root / "inventory.yaml").write_text(inventory, encoding="utf-8")
    (root / "p.yaml").write_text("version: 1\nname: p\nhosts: all\ntasks:\n"
                                 + ("  - notify: {route: default, template: broken.md.j2}\n" if user == "step"
                                    else "  - notify: {route: default, message: hi}\n"), encoding="utf-8")
    result = load_config(root / "inventory.yaml", [root / "p.yaml"], make_registry(), env={})
    name = "grouped.md.j2" if user == "inventory-default" else "broken.md.j2"
    [diag] = result.diagnostics
    assert (diag.file, diag.line) == (str(root / "templates" / name), before + 1), str(diag)
    assert defect[1] in diag.message and diag.source_line == defect[0], str(diag)
    named_at = root / ("p.yaml" if user == "step" else "inventory.yaml")
    assert diag.hint is not None and f"named at {named_at}:" in diag.hint, str(diag)
