"""Diagnostics that say the right thing at the right place (issue 15, third round): vars that
read each other, a wrong type reported where the var is defined, an unset variable of a target
with the fix, the same file named by two paths."""
from __future__ import annotations

import os
from pathlib import Path

from agent.modules.registry import default_registry
from agent.playbook import LoadResult, load_config

PLAY = """version: 1
name: p
hosts: local
schedule: {{every: 10s}}
vars:
{vars}
checks:
  - name: up
    http: {{url: "{{{{ url }}}}", timeout: "{{{{ wait }}}}"}}
    expect: "status_code == 200"
"""


def _load(tmp_path: Path, vars: str, *extra: Path) -> LoadResult:
    (tmp_path / "p.yaml").write_text(PLAY.format(vars=vars), encoding="utf-8")
    return load_config(tmp_path / "no-inventory.yaml", [tmp_path / "p.yaml", *extra], default_registry(), env={})


def _shown(result: LoadResult) -> list[str]:
    return [str(d) for d in result.diagnostics]


def test_a_var_reads_the_play_s_other_vars_in_any_order(tmp_path: Path) -> None:
    result = _load(tmp_path, '  url: "{{ base }}/health"\n  base: "http://127.0.0.1:{{ port }}"\n  port: 8081\n'
                             "  wait: 2s")
    assert result.config is not None, _shown(result)
    [bound] = result.config.bound_checks
    assert bound.vars["url"] == "http://127.0.0.1:8081/health" and bound.params.url == bound.vars["url"]


def test_vars_that_read_each_other_in_a_circle_are_one_error_at_a_var(tmp_path: Path) -> None:
    result = _load(tmp_path, '  url: "{{ base }}/x"\n  base: "{{ url }}/y"\n  wait: 2s')
    [d] = result.diagnostics
    assert (d.line, d.column) == (7, 9) and "vars 'base', 'url' read each other" in d.message, str(d)


def test_an_undefined_name_in_a_var_is_shown_at_that_var_with_the_nearest_name(tmp_path: Path) -> None:
    result = _load(tmp_path, '  port: 8081\n  url: "http://127.0.0.1:{{ prot }}/"\n  wait: 2s')
    [d] = result.diagnostics
    assert (d.line, d.column) == (7, 8) and "vars.url: " in d.message and "'prot' is undefined" in d.message, str(d)
    assert d.hint == "did you mean 'port'?"


def test_a_value_of_the_wrong_type_is_shown_where_the_var_is_defined(tmp_path: Path) -> None:
    result = _load(tmp_path, '  url: "http://127.0.0.1:8081/"\n  wait: many')
    [d] = result.diagnostics
    assert (d.line, d.column) == (7, 9), str(d)
    assert d.message.startswith("vars.wait: 'many' is not a duration") and "(the value of checks[0].http.timeout)" \
        in d.message, str(d)
    assert d.source_line == "  wait: many"


def _inventory(tmp_path: Path, optional: str) -> Path:
    path = tmp_path / "inventory.yaml"
    path.write_text("version: 1\nhosts:\n  local: {}\nnotify:\n  targets:\n"
                    f'    chat: {{url: "{{{{ env.CHAT_URL }}}}"{optional}}}\n'
                    "  routes:\n    - name: default\n      targets: [chat]\n", encoding="utf-8")
    return path


def test_a_target_whose_variable_is_unset_says_what_to_write(tmp_path: Path) -> None:
    for optional, fix in ((", optional: true", "an optional target is skipped when its URL renders empty: write "
                           "{{ env.CHAT_URL | default('') }}"), ("", "set CHAT_URL in the agent's environment")):
        result = load_config(_inventory(tmp_path, optional), [], default_registry(), env={})
        [d] = result.diagnostics
        assert "environment variable 'CHAT_URL' is not set" in d.message and d.hint and fix in d.hint, str(d)


def test_a_file_named_by_two_paths_is_one_file_and_diagnostics_sort_by_the_file(tmp_path: Path) -> None:
    here = os.getcwd()
    os.chdir(tmp_path)
    try:
        (tmp_path / "b.yaml").write_text(PLAY.format(vars="  url: http://127.0.0.1:1/\n  wait: many").replace("name: p", "name: b"),
                                         encoding="utf-8")
        (tmp_path / "a.yaml").write_text(PLAY.format(vars="  url: http://127.0.0.1:1/\n  wait: nah"), encoding="utf-8")
        result = load_config(tmp_path / "no-inventory.yaml", [Path("b.yaml"), tmp_path / "a.yaml", tmp_path / "b.yaml"],
                             default_registry(), env={})
    finally:
        os.chdir(here)
    assert [(Path(d.file).name, d.line) for d in result.diagnostics] == [("a.yaml", 7), ("b.yaml", 7)], \
        _shown(result)
    assert not any("duplicate playbook name" in d.message for d in result.diagnostics)
