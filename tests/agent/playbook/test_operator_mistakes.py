"""Operator mistakes written fresh against the real modules (val5): each file gives exactly one
diagnostic, at the line and column to change, with a hint where one is obvious. A file is
validated the way ``agent validate FILE`` does it: with the shipped inventory, templates and the
other shipped playbooks for cross-references."""
from __future__ import annotations

from pathlib import Path

import pytest

from agent.modules.registry import default_registry
from agent.playbook import LoadResult, load_config

from .conftest import HERE, REPO
from .corpus import Case, the_one_diagnostic

CORPUS = HERE / "broken_operator"


CASES = [
    # a module's own rule over several values points at the value it refuses, not at the mapping
    Case("module_bad_regex_in_named_patterns.yaml", 12, 14, "checks[0].log.patterns.pem: bad regular expression"),
    Case("module_bad_report_until.yaml", 10, 14, "tasks[0].report.until: 'last friday' is neither a duration"),
    # YAML's .nan and .inf are floats no comparison or range holds: refused where they are written
    Case("wrong_threshold_var_not_a_number.yaml", 7, 17, ".nan is read by YAML as not a number (NaN)",
         "leave a threshold or a limit out to have none"),
    # a var left empty is null, not "no threshold": said as such, not as "a NoneType" to unquote
    Case("hint_threshold_var_left_empty.yaml", 12, 14, "its bound '{{ loop_age_warning_s }}' is empty (null",
         "write one number where loop_age_warning_s is defined (loop_age_warning_s: 80)"),
    # a var quoted: the hint unquotes the number written, not an example (it said 80 for "45": brk15)
    Case("hint_threshold_var_quoted_own_number.yaml", 11, 14, "its bound '{{ loop_age_warning_s }}' is text",
         'where loop_age_warning_s is defined (loop_age_warning_s: 45, not "45")'),
    # a comment inside { } or [ ] takes the closing bracket: said at the '#', not at the next line (brk15)
    Case("place_comment_inside_flow_mapping.yaml", 7, 54, "a comment inside { } or [ ]",
         "move the comment after the closing bracket"),
    Case("place_comment_inside_flow_list.yaml", 14, 23, "a comment inside { } or [ ]",
         "move the comment after the closing bracket"),
    # runs otherwise than meant, and acts on the bot each time: errors (warnings in a last good configuration)
    Case("wrong_remediate_listed_twice.yaml", 11, 9, "remediate: 'restart' is listed twice", "list 'restart' once"),
    Case("wrong_expect_never_passes_with_remediation.yaml", 8, 13, "the check can never pass, and it remediates "
         "(restart)", "upper case"),
    # YAML 1.1 reads 1.2e2 or 3.0e0 (no sign on the exponent) as text: said so, not "write it without quotes"
    # (the value had none) nor "an exponent needs a dot" (3.0e0 has one) (brk15)
    Case("hint_threshold_var_exponent_text.yaml", 11, 14, "its bound '{{ loop_age_warning_s }}' is text",
         "YAML 1.1 reads 1.2e2 unquoted as text (a float needs a dot and a signed exponent"),
    Case("hint_after_exponent_with_dot.yaml", 9, 12, "checks[0].after: Input should be a valid integer",
         "YAML 1.1 reads 3.0e0 unquoted as text (a float needs a dot and a signed exponent, 1.0e+3); write the "
         "number in full: after: 3"),
    # a name quoted with a space at its end is another name than the one every reference writes
    Case("wrong_name_with_trailing_space.yaml", 7, 11, "name 'bot memory: rss ' ends with a space",
         "write 'bot memory: rss' without the space"),
    # a required key misspelt is one mistake: the unknown key with its fix, not also "missing required key"
    Case("once_required_key_misspelt_in_budget.yaml", 14, 22, "unknown key 'whitin'", "did you mean 'within'?"),
    Case("once_required_param_misspelt_in_task.yaml", 6, 18, "unknown key 'acton'", "did you mean 'action'?"),
    # YAML reads an unquoted date as a date: where text is wanted, the hint quotes it
    Case("hint_date_where_text_is_wanted.yaml", 3, 14, "description: Input should be a valid string",
         'quote it: description: "2024-03-31" (unquoted, YAML reads it as a date)'),
    # a no-break space after a colon where YAML still parses (a flow mapping, a mapping of one key):
    # said as the look-alike space at its column, not as "unknown key 'every:\xa015s'" or "vars: a string"
    Case("place_nbsp_after_colon_in_flow_mapping.yaml", 5, 18, "U+00A0 (no-break space) where YAML needs an "
         "ordinary space (after the colon of 'every')", "retype the spaces"),
    Case("place_nbsp_after_colon_of_only_var.yaml", 5, 12, "U+00A0 (no-break space) where YAML needs an "
         "ordinary space (after the colon of 'slippage')", "retype the spaces"),
    # a value the module refuses is not also looked up (the template named by a path: not "cannot load it" too)
    Case("once_template_named_by_a_path.yaml", 8, 17, "template '../templates/emergency.md.j2' must be a file name "
         "in templates/, not a path"),
    # a tab after a value (an editor aligning a comment): PyYAML's message quotes it escaped
    Case("hint_tab_after_a_value.yaml", 3, 12, "found character '\\t' that cannot start any token",
         "a tab outside quotes (after a value, before a comment): replace it with spaces"),
    # a playbook written as Ansible's list of plays: said without pydantic's "or instance of Playbook"
    Case("hint_ansible_list_of_plays.yaml", 1, 1, "Input should be a valid dictionary", "unlike Ansible's list of plays"),
    # an expression written in another language's syntax: the hint says what Jinja2 spells it
    Case("hint_and_from_another_language.yaml", 8, 13, "expect: Jinja2 syntax error", "write and instead of &&"),
    Case("hint_typographic_quotes.yaml", 9, 13, "expect: Jinja2 syntax error", "\u2018 is a typographic quote"),
    Case("hint_threshold_with_unit.yaml", 9, 14, "warning: Jinja2 syntax error", "write the number alone (500, "
         "not 500ms)"),
    # a key left empty is null, which an optional field took as "not written": `when:` ran the step always
    Case("wrong_when_left_empty.yaml", 15, 14, "when: is empty", "write the condition"),
    # a block with no tasks did nothing, silently
    Case("wrong_block_left_empty.yaml", 6, 12, "an empty block: it holds no task to run"),
    # a var named like what the agent sets itself is never read there (`host` is the host's name)
    Case("wrong_var_named_host.yaml", 5, 3, "a var named 'host' is not read where the agent sets host itself",
         "give it another name"),
    # a var named env hides the environment from every template of the play
    Case("wrong_var_named_env.yaml", 4, 8, "a var named 'env' hides the environment"),
    # two handlers of one name both ran on a notify (Ansible runs one)
    Case("wrong_handler_name_twice.yaml", 12, 11, "duplicate handler name 'restart the bot' (also handler #1)"),
    # a check's name left empty took '<module> <params>' as its name, in every alert
    Case("wrong_check_name_left_empty.yaml", 6, 10, "name: is empty: it would be named after its module"),
    # a mapping or a list left empty: said as empty, with what to write, not "Input should be a valid list"
    Case("hint_vars_left_empty.yaml", 5, 6, "vars: is empty (YAML reads 'vars:' with nothing after it as no "
         "value), and a mapping is needed here", "write its entries indented under 'vars:'"),
    Case("hint_tags_left_empty.yaml", 9, 10, "checks[0].tags: is empty", "tags: [] for none, or remove 'tags:'"),
    # a number ordered against a quoted one raised at every run (UNKNOWN for ever), found only then
    Case("wrong_ordered_against_quoted_number.yaml", 8, 13, "expect: '<' compares with the text '90', a number in "
         "quotes"),
]


def load_case(name: str) -> LoadResult:
    return load_config(REPO / "inventory.yaml", [CORPUS / name], default_registry(), env={},
                       templates_dir=REPO / "templates", context_paths=sorted((REPO / "playbooks").glob("*.yaml")))


@pytest.mark.parametrize("case", CASES, ids=[c.file for c in CASES])
def test_each_operator_mistake_gives_one_diagnostic_where_it_is(case: Case) -> None:
    diag = the_one_diagnostic(load_case(case.file), case)
    assert "instance of" not in diag.message, str(diag)  # pydantic's class names are not the operator's words


def test_the_operator_corpus_covers_every_file() -> None:
    assert {p.name for p in CORPUS.iterdir() if p.suffix == ".yaml"} == {c.file for c in CASES}


def test_a_var_replacing_a_settings_mapping_is_said_where_it_is_defined(tmp_path: Path) -> None:
    """`vars: {bot: 5}` in a group broke every {{ bot.X }}: said at each use only, never where it was written."""
    inventory = tmp_path / "inventory.yaml"
    inventory.write_text((REPO / "inventory.yaml").read_text(encoding="utf-8").replace(
        "bots: {hosts: [local], vars: {}}", "bots: {hosts: [local], vars: {bot: 5}}"), encoding="utf-8")
    result = load_config(inventory, [REPO / "playbooks" / "restart-bot.yaml"], default_registry(), env={},
                         templates_dir=REPO / "templates")
    at_definition = [d for d in result.diagnostics if Path(d.file).name == "inventory.yaml"]
    assert [(d.line, d.column) for d in at_definition] == [(18, 38)], "\n".join(map(str, result.diagnostics))
    assert at_definition[0].message.startswith("'bot' replaces the stack settings' bot.* (a mapping: bot.program")
    assert at_definition[0].hint == "override one key of it (bot: {program: ...}), or give this var another name"


@pytest.mark.parametrize("name", ["wrong_remediate_listed_twice.yaml", "wrong_expect_never_passes_with_remediation.yaml"])
def test_what_a_configuration_ran_with_is_a_warning_in_the_last_good_one(name: str) -> None:
    """Refused on disk, these ran before the rule: in a last good configuration they are warnings
    (an agent upgraded with them keeps guarding as it did)."""
    result = load_config(REPO / "inventory.yaml", [CORPUS / name], default_registry(), env={},
                         templates_dir=REPO / "templates", last_good=True)
    assert result.config is not None, "\n".join(map(str, result.diagnostics))
    assert [w for w in result.warnings if "remediate" in w.message], result.warnings
