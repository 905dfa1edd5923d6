"""One broken file per mistake; each must give exactly one diagnostic, at the right place."""
from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from agent.modules.registry import Registry
from agent.playbook import load_config

from .conftest import BROKEN, GOOD
from .corpus import Case

REPOSITORY = Path(__file__).resolve().parents[3]


CASES = [
    Case("unknown_key.yaml", 7, 5, "unknown key 'expct'", "did you mean 'expect'?"),
    Case("unknown_top_key.yaml", 4, 1, "unknown key 'schedul'", "did you mean 'schedule'?"),
    Case("wrong_type.yaml", 8, 12, "checks[0].after: Input should be a valid integer"),
    Case("unknown_module.yaml", 6, 5, "unknown check module 'htpp'", "did you mean 'http'?"),
    Case("action_as_check.yaml", 6, 5, "'supervisor' is an action module; a check needs a check module",
         "check modules: events, http, process"),
    Case("two_modules.yaml", 7, 5, "exactly one module key; found 'http' and 'process'"),
    Case("thresholds_out_of_order.yaml", 9, 15, "thresholds out of order: critical (90) must be above warning (95)"),
    Case("threshold_no_operator.yaml", 7, 14, "'80' is not a threshold"),
    Case("remediation_missing.yaml", 8, 17, "no remediation named 'restart-bto'", "did you mean 'restart-bot'?"),
    Case("host_missing.yaml", 3, 8, "no host or group named 'botz'", "did you mean 'bots'?"),
    Case("bad_jinja_syntax.yaml", 6, 17, "url: Jinja2 syntax error: unexpected '}'"),
    Case("bad_expression.yaml", 7, 13, "expect: Jinja2 syntax error"),
    Case("bad_occurrence.yaml", 8, 17, "occurrence: 'jsn' is neither a fact of the 'http' module nor a variable",
         "did you mean 'json'?"),
    Case("sandbox_escape.yaml", 6, 17, "is not allowed: templates run in a sandbox"),
    Case("sandbox_escape_globals.yaml", 7, 11, "when: access to '__globals__' is not allowed"),
    Case("duplicate_key.yaml", 8, 5, "duplicate key 'expect'"),
    Case("bad_duration.yaml", 8, 14, "checks[0].timeout: '5 minutes' is not a duration"),
    Case("zero_interval.yaml", 4, 19, "schedule.every: 0ms is too short: it must be at least 100ms"),
    Case("bad_cron.yaml", 4, 18, "invalid cron expression '0 25 * * *'"),
    Case("bad_timezone.yaml", 4, 43, "unknown timezone 'Mars/Olympus'"),
    Case("yaml_bomb.yaml", 9, 7, "more than 50000 nodes"),
    Case("yaml_syntax_error.yaml", 7, 5, "YAML syntax error: expected ',' or '}'"),
    Case("duplicate_check_name.yaml", 7, 11, "duplicate check name 'bot loop is alive'"),
    Case("budget_then_unknown.yaml", 8, 41, "no playbook named 'emergancy'", "did you mean 'emergency'?"),
    Case("expect_and_critical.yaml", 8, 5, "either 'expect' or thresholds"),
    Case("register_invalid.yaml", 6, 15, "register name 'halt-result' is not usable"),
    Case("handler_missing.yaml", 6, 14, "no handler named 'tell everyone'", "did you mean 'tell everybody'?"),
    Case("bad_task_params.yaml", 6, 26, "tasks[0].supervisor.action: Input should be 'start', 'stop' or 'restart'"),
    Case("rescue_without_block.yaml", 6, 5, "'rescue' belongs to a block"),
    Case("undefined_var.yaml", 6, 17, "'dict object' has no attribute 'helth_url'"),
    # inventory mistakes (loaded with the good playbooks)
    Case("inventory_route_target_missing.yaml", 11, 24, "route 'default' sends to unknown target 'slakc'"),
    Case("inventory_group_member_missing.yaml", 5, 25, "group 'bots' lists unknown host 'lcoal'",
         "did you mean 'local'?"),
    Case("inventory_target_empty.yaml", 9, 18, "target 'slack': the URL renders empty", "optional: true"),
    Case("inventory_no_catch_all.yaml", 10, 7, "no catch-all route: an alert that matches no route would be lost"),
    Case("inventory_unknown_key.yaml", 12, 7, "unknown key 'send_resovled'", "did you mean 'send_resolved'?"),
    Case("inventory_unknown_scheme.yaml", 9, 18, "target 'pager': apprise does not know the URL's scheme",
         "supported services"),
    # a target may hold several URLs; delivery refuses the whole target when any one is refused
    Case("inventory_second_url_unknown_scheme.yaml", 9, 17,
         "target 'both': apprise does not know the URL's scheme (URL 2 of 2)", "supported services"),
    # a known scheme apprise still refuses to build (mailto without a sender): refused at send too
    Case("inventory_refused_url.yaml", 9, 17, "target 'mail': apprise refuses the URL: Invalid ~From~ email "
         "specified", "apprise's own parser"),
]


def _load(name: str, registry: Registry):
    path = BROKEN / name
    if name.startswith("inventory"):
        return load_config(path, [GOOD / "playbooks"], registry, env={})
    return load_config(GOOD / "inventory.yaml", [GOOD / "playbooks" / "emergency.yaml", path], registry, env={})


@pytest.mark.parametrize("case", CASES, ids=[c.file for c in CASES])
def test_broken_file_gives_one_positioned_diagnostic(case: Case, registry: Registry) -> None:
    result = _load(case.file, registry)

    assert result.config is None
    assert len(result.diagnostics) == 1, "\n".join(map(str, result.diagnostics))
    diag = result.diagnostics[0]
    assert (Path(diag.file).name, diag.line, diag.column) == (case.file, case.line, case.column), str(diag)
    assert case.message in diag.message
    if case.hint is not None:
        assert diag.hint is not None and case.hint in diag.hint
    # The rendered form shows the offending line and a caret under the column.
    lines = str(diag).splitlines()
    assert lines[0].startswith(f"{diag.file}:{case.line}:{case.column}: error: ")
    assert lines[1] == "  " + diag.source_line.rstrip()
    assert lines[2] == "  " + " " * (case.column - 1) + "^"


def test_the_corpus_covers_every_file(registry: Registry) -> None:
    on_disk = {p.name for p in BROKEN.iterdir() if p.suffix == ".yaml"}
    assert on_disk == {c.file for c in CASES}


def test_a_huge_file_is_refused_before_parsing(tmp_path: Path, registry: Registry) -> None:
    huge = tmp_path / "huge.yaml"
    with huge.open("wb") as fh:
        fh.truncate(50 * 1024 * 1024)  # sparse: 50 MB by size, no disk used
    result = load_config(GOOD / "inventory.yaml", [huge], registry, env={})

    assert result.config is None
    [diag] = result.diagnostics
    assert diag.file == str(huge)
    assert "52428800 bytes; the limit is 1048576 bytes" in diag.message


def test_a_file_just_over_the_cap_is_refused(tmp_path: Path, registry: Registry) -> None:
    big = tmp_path / "big.yaml"
    big.write_text("version: 1\n" + "# padding\n" * (1024 * 1024 // 10 + 1))
    result = load_config(GOOD / "inventory.yaml", [big], registry, env={})
    [diag] = result.diagnostics
    assert "the limit is 1048576 bytes" in diag.message


SCHEME_CHECK_IN_A_FRESH_PROCESS = """
import json, sys
from agent.playbook import load_config
from tests.agent.playbook.conftest import BROKEN, GOOD
from tests.agent.playbook.modules_for_tests import make_registry
result = load_config(BROKEN / "inventory_unknown_scheme.yaml", [GOOD / "playbooks"], make_registry(), env={})
print(json.dumps({"messages": [d.message for d in result.diagnostics],
                  "sqlalchemy": "sqlalchemy" in sys.modules}))
"""


def test_the_target_scheme_check_does_not_import_the_store() -> None:
    """``agent validate`` checks target schemes through the apprise plugin index alone: no store,
    no SQLAlchemy (a fresh interpreter, so that other tests' imports do not hide one)."""
    out = subprocess.run([sys.executable, "-c", SCHEME_CHECK_IN_A_FRESH_PROCESS], capture_output=True,
                         text=True, timeout=120, check=True, cwd=REPOSITORY)
    seen = json.loads(out.stdout.strip().splitlines()[-1])

    assert any("apprise does not know the URL's scheme" in m for m in seen["messages"]), seen["messages"]
    assert seen["sqlalchemy"] is False, "checking target schemes imported SQLAlchemy (the store)"


@pytest.mark.parametrize("crlf", [False, True], ids=["lf", "crlf"])
@pytest.mark.parametrize("case", CASES, ids=[c.file for c in CASES])
def test_a_byte_order_mark_changes_nothing(case: Case, registry: Registry, tmp_path: Path, crlf: bool) -> None:
    """A UTF-8 byte order mark (Windows editors write one) is not part of the text: every file of
    the corpus gives the same diagnostic at the same line and column with one (issue 15, F11)."""
    text = (BROKEN / case.file).read_text(encoding="utf-8")
    copy = tmp_path / case.file
    copy.write_bytes(b"\xef\xbb\xbf" + (text.replace("\n", "\r\n") if crlf else text).encode("utf-8"))
    if case.file.startswith("inventory"):
        result = load_config(copy, [GOOD / "playbooks"], registry, env={})
    else:
        result = load_config(GOOD / "inventory.yaml", [GOOD / "playbooks" / "emergency.yaml", copy], registry, env={})
    assert len(result.diagnostics) == 1, "\n".join(map(str, result.diagnostics))
    diag = result.diagnostics[0]
    assert (Path(diag.file).name, diag.line, diag.column) == (case.file, case.line, case.column), str(diag)
    assert case.message in diag.message and "\ufeff" not in diag.source_line


def test_every_good_file_loads_with_a_byte_order_mark(registry: Registry, tmp_path: Path) -> None:
    for path in [GOOD / "inventory.yaml", *sorted((GOOD / "playbooks").glob("*.yaml"))]:
        target = tmp_path / path.relative_to(GOOD)
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_bytes(b"\xef\xbb\xbf" + path.read_bytes())
    result = load_config(tmp_path / "inventory.yaml", [tmp_path / "playbooks"], registry, env={})
    assert result.ok, "\n".join(map(str, result.diagnostics))
