"""Configuration read otherwise than it is written (issue 15, "accepted but wrong"), found by
breaking it as an operator would (brk15): an empty key, a duration without its unit, an empty
block, ``severity:`` beside thresholds, a play that does nothing. Errors are in
``broken_operator/`` (test_operator_mistakes.py); what still loads is a warning, here."""
from __future__ import annotations

from pathlib import Path

import pytest

from agent.modules.registry import default_registry
from agent.playbook import LoadResult, load_config

from .conftest import HERE, REPO
from .corpus import Case

WARNED = HERE / "warned_operator"

WARNINGS = [
    # severity is the state of a failed expect: a critical: threshold still pages as critical
    Case("severity_beside_critical_threshold.yaml", 10, 15, "severity: warning does not lower this check",
         "remove the critical: threshold to keep this check at WARNING"),
    Case("play_does_nothing.yaml", 2, 7, "playbook 'half-written' has no checks and no tasks: it does nothing"),
    Case("rescue_left_empty.yaml", 8, 13, "an empty 'rescue': nothing runs there"),
    # an interval runs at an interval: a timezone beside it is for a time of day it does not have
    Case("timezone_beside_every.yaml", 4, 33, "schedule: timezone is ignored", "write a cron schedule"),
    # the same probe and condition twice on a host: every problem alerted twice
    Case("same_probe_twice.yaml", 9, 11, "check 'bot runs' probes what bot-alive/bot process probes on host "
         "'local', with the same condition: each problem would be alerted twice"),
    # a duration without its unit is read as seconds, whatever was meant (a warning: it always was)
    Case("duration_without_unit.yaml", 15, 15, "cooldown: 5 is a duration without its unit: it is read as 5 "
         "seconds", "cooldown: 5s for seconds, cooldown: 5m for minutes"),
    # a bare number reaching a duration through a var: said where the var is defined
    Case("duration_var_without_unit.yaml", 5, 13, "vars.patience: 3 is a duration without its unit (the "
         "value of tasks[0].bot.timeout)", "patience: 3s for seconds, patience: 3m for minutes"),
]


def _load(playbook: Path, inventory: Path = REPO / "inventory.yaml") -> LoadResult:
    return load_config(inventory, [playbook], default_registry(), env={}, templates_dir=REPO / "templates",
                       context_paths=sorted((REPO / "playbooks").glob("*.yaml")))


@pytest.mark.parametrize("case", WARNINGS, ids=[c.file for c in WARNINGS])
def test_what_loads_but_runs_otherwise_is_one_positioned_warning(case: Case) -> None:
    result = _load(WARNED / case.file)
    assert result.config is not None and not result.diagnostics, "\n".join(map(str, result.diagnostics))
    assert len(result.warnings) == 1, "\n".join(map(str, result.warnings))
    found = result.warnings[0]
    assert (Path(found.file).name, found.line, found.column) == (case.file, case.line, case.column), str(found)
    assert case.message in found.message, str(found)
    assert case.hint is None or (found.hint is not None and case.hint in found.hint), str(found)


def test_the_warned_corpus_covers_every_file() -> None:
    assert {p.name for p in WARNED.iterdir() if p.suffix == ".yaml"} == {c.file for c in WARNINGS}


@pytest.mark.parametrize("severity", ["critical", "warning", "info"])
def test_severity_is_judged_only_where_a_threshold_overrides_it(tmp_path: Path, severity: str) -> None:
    """`severity: info` (or warning) on a check with only a warning: threshold does what it says (its
    warnings go to the digest; an UNKNOWN is told as a warning): no warning then; critical is the default."""
    play = (WARNED / "severity_beside_critical_threshold.yaml").read_text(encoding="utf-8")
    only_warning = play.replace('    critical: "> 90"\n', "").replace("severity: warning", f"severity: {severity}")
    (tmp_path / "memory.yaml").write_text(only_warning, encoding="utf-8")
    result = _load(tmp_path / "memory.yaml")
    assert result.config is not None and not result.diagnostics
    assert len(result.warnings) == (1 if severity == "critical" else 0), "\n".join(map(str, result.warnings))


@pytest.mark.parametrize(("old", "new", "message"), [
    ("repeat: 15m", "repeat: 900", "repeat: 900 is a duration without its unit"),
    ("group_wait: 10s", "group_wait: 10", "group_wait: 10 is a duration without its unit"),
    ("every: 1m}", "every: 60}", "every: 60 is a duration without its unit"),
])
def test_a_duration_without_its_unit_in_the_inventory_is_a_warning_at_it(tmp_path: Path, old: str, new: str,
                                                                         message: str) -> None:
    """Read as seconds, as it always was: said, and the configuration still loads (one that ran
    before must not leave the agent unable to guard)."""
    text = (REPO / "inventory.yaml").read_text(encoding="utf-8")
    assert old in text
    (tmp_path / "inventory.yaml").write_text(text.replace(old, new, 1), encoding="utf-8")
    result = _load(REPO / "playbooks" / "bot-health.yaml", tmp_path / "inventory.yaml")
    assert result.config is not None and not result.diagnostics, "\n".join(map(str, result.diagnostics))
    assert [d.message for d in result.warnings if message in d.message], "\n".join(map(str, result.warnings))
    line = next(i for i, text in enumerate(text.replace(old, new, 1).splitlines(), 1) if new in text)
    assert [d.line for d in result.warnings] == [line]


def test_an_empty_key_in_the_inventory_keeps_its_meaning(tmp_path: Path) -> None:
    """`settings: null` is the documented way to say "the built-in defaults": the inventory's nulls are not judged."""
    assert "settings: null" in (REPO / "inventory.yaml").read_text(encoding="utf-8")
    result = _load(REPO / "playbooks" / "bot-health.yaml")
    assert result.config is not None and not result.diagnostics and not result.warnings


def test_a_module_parameter_without_its_unit_is_a_warning_at_it(tmp_path: Path) -> None:
    (tmp_path / "t.yaml").write_text("version: 1\nname: t\nhosts: bots\ntasks:\n  - name: halt\n"
                                     "    bot: {action: halt, timeout: 3}\n", encoding="utf-8")
    result = _load(tmp_path / "t.yaml")
    assert result.config is not None and not result.diagnostics, "\n".join(map(str, result.diagnostics))
    assert [(d.line, d.column, d.hint) for d in result.warnings] == [
        (6, 34, "write the unit: timeout: 3s for seconds, timeout: 3m for minutes")], \
        "\n".join(map(str, result.diagnostics))


@pytest.mark.parametrize(("old", "new"), [
    ("every: 30s", "every: 0"),                                   # 0 needs no unit (and is its range's error)
    ("cooldown: 10s", "cooldown: 0"),
])
def test_zero_needs_no_unit(tmp_path: Path, old: str, new: str) -> None:
    text = (REPO / "playbooks" / "bot-health.yaml").read_text(encoding="utf-8")
    (tmp_path / "bot-health.yaml").write_text(text.replace(old, new, 1), encoding="utf-8")
    result = _load(tmp_path / "bot-health.yaml")
    assert not [d for d in [*result.diagnostics, *result.warnings] if "without its unit" in d.message], \
        "\n".join(map(str, [*result.diagnostics, *result.warnings]))


NO_DURATION = "1" + "0" * 330  # an integer too large for a float


@pytest.mark.parametrize("where", ["check", "param", "var"])
@pytest.mark.parametrize(("value", "said"), [
    (".nan", "a duration must be a number of seconds"),
    (".inf", "is longer than the longest duration accepted"),
    (NO_DURATION, "is longer than the longest duration accepted"),
])
def test_a_number_that_is_no_duration_is_its_error_never_an_internal_one(tmp_path: Path, value: str, said: str,
                                                                           where: str) -> None:
    """The walk for bare numbers met .nan, .inf and a 330-digit integer (int(nan), float(10**330)):
    exit 250. Written as a check's field, a module's parameter or a var, each is an error at it."""
    timeout = {"check": "2s", "param": value, "var": '"{{ w }}"'}[where]
    var = value if where == "var" else "5s"
    play = (f"version: 1\nname: t\nhosts: bots\nschedule: {{every: 10s}}\nvars: {{w: {var}}}\nchecks:\n"
            f"  - name: a\n    http: {{url: \"http://127.0.0.1:1/\", timeout: {timeout}}}\n"
            "    expect: status_code == 200\n" + (f"    every: {value}\n" if where == "check" else ""))
    (tmp_path / "t.yaml").write_text(play, encoding="utf-8")
    result = _load(tmp_path / "t.yaml")
    line = {"check": 10, "param": 8, "var": 5}[where]
    assert [d.line for d in result.diagnostics] == [line], \
        "\n".join(map(str, result.diagnostics))
    assert said in result.diagnostics[0].message
    assert not [d for d in result.warnings if "without its unit" in d.message]


@pytest.mark.parametrize("key", ["timeout: 2s", "register: x", "changed_when: \"false\"", "until: \"true\"",
                                 "retries: 2"])
def test_every_optional_key_left_empty_is_an_error_at_it(tmp_path: Path, key: str) -> None:
    """Not only `when:`: the walk follows the models, so every optional field (and a module's
    parameters: `timeout:` of the bot action) is judged."""
    name = key.split(":")[0]
    play = ("version: 1\nname: t\nhosts: bots\ntasks:\n  - name: restart\n"
            "    bot: {action: halt, timeout: }\n"
            f"    {name}:\n")
    (tmp_path / "t.yaml").write_text(play, encoding="utf-8")
    result = _load(tmp_path / "t.yaml")
    assert sorted((d.line, d.message.split(":")[0]) for d in result.diagnostics) == [(6, "timeout"), (7, name)], \
        "\n".join(map(str, result.diagnostics))


def test_a_var_of_the_inventory_named_like_what_the_agent_sets_is_an_error_at_it(tmp_path: Path) -> None:
    text = (REPO / "inventory.yaml").read_text(encoding="utf-8")
    (tmp_path / "inventory.yaml").write_text(text.replace("local: {vars: {}}", "local: {vars: {value: 3}}"),
                                             encoding="utf-8")
    result = _load(REPO / "playbooks" / "bot-health.yaml", tmp_path / "inventory.yaml")
    assert [(Path(d.file).name, d.message.split(":")[0]) for d in result.diagnostics] == [
        ("inventory.yaml", "a var named 'value' is not read where the agent sets value itself (the check's value, "
                           "in its expressions)")], "\n".join(map(str, result.diagnostics))


def test_a_timezone_beside_every_in_the_digest_is_a_warning(tmp_path: Path) -> None:
    text = (REPO / "inventory.yaml").read_text(encoding="utf-8")
    old = 'digest: {cron: "0 8 * * *", timezone: UTC}'
    assert old in text
    (tmp_path / "inventory.yaml").write_text(text.replace(old, "digest: {every: 1d, timezone: Asia/Tokyo}"),
                                             encoding="utf-8")
    result = _load(REPO / "playbooks" / "bot-health.yaml", tmp_path / "inventory.yaml")
    assert result.config is not None and not result.diagnostics
    assert [w.message for w in result.warnings] == [
        "digest: timezone is ignored: an 'every' schedule runs at an interval, not at a time of day"]


def test_a_copied_playbook_beside_its_original_is_one_warning(tmp_path: Path) -> None:
    """`cp bot-health.yaml bot-health-v2.yaml` (its name changed) loaded: every crash of the bot was
    two alerts and two restarts, each under its own budget (brk15)."""
    text = (REPO / "playbooks" / "bot-health.yaml").read_text(encoding="utf-8")
    (tmp_path / "bot-health.yaml").write_text(text, encoding="utf-8")
    (tmp_path / "bot-health-v2.yaml").write_text(text.replace("name: bot-health\n", "name: bot-health-v2\n", 1),
                                                 encoding="utf-8")
    result = load_config(REPO / "inventory.yaml", [tmp_path], default_registry(), env={},
                         templates_dir=REPO / "templates",
                         context_paths=sorted((REPO / "playbooks").glob("*.yaml")))
    assert result.config is not None and not result.diagnostics, "\n".join(map(str, result.diagnostics))
    # said once, at the name of the play loaded second (files load in name order: the copy first here)
    assert [(Path(w.file).name, w.line) for w in result.warnings] == [("bot-health.yaml", 5)]
    assert "playbook 'bot-health' repeats 13 checks of 'bot-health-v2'" in result.warnings[0].message
    assert "remediated twice, each under its own budget" in result.warnings[0].message


def test_the_same_probe_told_otherwise_is_an_escalation_ladder_not_a_copy(tmp_path: Path) -> None:
    """A WARNING at the first failure and a page after 30: the same probe and expect on purpose (brk15)."""
    (tmp_path / "t.yaml").write_text(
        "version: 1\nname: t\nhosts: bots\nschedule: {every: 10s}\nchecks:\n"
        "  - name: worker down\n    supervisor: {program: worker}\n    expect: running\n    severity: warning\n"
        "  - name: worker down long\n    supervisor: {program: worker}\n    expect: running\n    after: 30\n",
        encoding="utf-8")
    result = _load(tmp_path / "t.yaml")
    assert result.config is not None and not result.diagnostics, "\n".join(map(str, result.diagnostics))
    assert not result.warnings, "\n".join(map(str, result.warnings))


def test_a_null_written_on_purpose_is_none_and_only_a_key_left_empty_is_judged(tmp_path: Path) -> None:
    """`schedule: ~` is the documented "none: on demand"; `when: null`, `timeout: ~` say "none" as
    plainly. A key with nothing after it (the condition forgotten) stays an error (brk15)."""
    (tmp_path / "t.yaml").write_text(
        "version: 1\nname: t\nhosts: bots\nschedule: ~\ntasks:\n  - name: halt\n"
        "    bot: {action: halt, timeout: ~}\n    when: null\n    register: Null\n"
        "  - name: resume\n    bot: {action: resume}\n    when:    # later\n", encoding="utf-8")
    result = _load(tmp_path / "t.yaml")
    assert [(d.line, d.message.split(":")[0]) for d in result.diagnostics] == [(12, "when")], \
        "\n".join(map(str, result.diagnostics))



PLAY_WITH = """\
version: 1
name: p
hosts: local
schedule: {{every: 30s}}
{play}checks:
  - name: c
    command: {{argv: ["true"]}}
    expect: "rc == 0"
{check}remediations:
  fix:
    steps:
      - command: {{argv: ["true"]}}
{step}"""
INVENTORY = ("version: 1\nhosts: {local: {}}\nnotify: {targets: {inbox: {url: 'json://127.0.0.1:9/'}}, "
             "routes: [{name: default, targets: [inbox]}]}\n")
LEFT_EMPTY = [  # where a mapping or a list is wanted, and nothing (or null) is written
    ("play", "vars:\n", "vars", "a mapping"),
    ("play", "handlers:\n", "handlers", "a list"),
    ("play", "tasks: ~\n", "tasks", "a list"),
    ("check", "    tags:\n", "checks[0].tags", "a list"),
    ("check", "    depends_on:\n", "checks[0].depends_on", "a list"),
    ("check", "    remediate: null\n", "checks[0].remediate", "a list"),
    ("step", "        notify:\n", "remediations.fix.steps[0].notify", "a list"),
]


@pytest.mark.parametrize(("where", "text", "label", "wanted"), LEFT_EMPTY, ids=[t[1].strip() for t in LEFT_EMPTY])
def test_a_mapping_or_list_left_empty_is_said_so_with_what_to_write(tmp_path: Path, where: str, text: str,
                                                                    label: str, wanted: str) -> None:
    """pydantic says 'Input should be a valid list' at an empty tags: (its items forgotten, or
    indented away): no hint and nothing about the value being none (brk15)."""
    (tmp_path / "inventory.yaml").write_text(INVENTORY)
    play = tmp_path / "p.yaml"
    play.write_text(PLAY_WITH.format(**{"play": "", "check": "", "step": "", where: text}))
    result = load_config(tmp_path / "inventory.yaml", [play], default_registry(), env={},
                         templates_dir=REPO / "templates")
    [found] = result.diagnostics
    key = label.rsplit(".", 1)[-1].split("[")[0]
    written = text.split(":", 1)[1].strip()
    said = (f"is {written}, no value" if written else f"is empty (YAML reads '{key}:' with nothing after it as no "
            "value)")
    assert found.message == f"{label}: {said}, and {wanted} is needed here", str(found)
    assert found.hint is not None and f"remove '{key}:'" in found.hint, str(found)
    assert ("{}" if wanted == "a mapping" else "[]") in found.hint, str(found)


@pytest.mark.parametrize(("file", "text", "label"), [
    ("inventory.yaml", "version: 1\nvars:\nhosts: {local: {}}\n", "vars"),
    ("inventory.yaml", "version: 1\nhosts: {local: {vars: }}\n", "hosts.local.vars"),
    ("settings.yaml", "bot:\nexchange: {port: 3001}\n", "bot"),
])
def test_the_inventory_and_settings_say_a_mapping_left_empty_too(tmp_path: Path, file: str, text: str,
                                                                 label: str) -> None:
    (tmp_path / "inventory.yaml").write_text("settings: settings.yaml\n" + INVENTORY)
    (tmp_path / "settings.yaml").write_text("var_dir: var\n")
    if file == "inventory.yaml":
        text = "settings: settings.yaml\n" + text + INVENTORY.split("\n", 2)[2]
    (tmp_path / file).write_text(text)
    result = load_config(tmp_path / "inventory.yaml", [], default_registry(), env={}, templates_dir=REPO / "templates")
    [found] = result.diagnostics
    assert Path(found.file).name == file and found.message.startswith(f"{label}: is empty"), str(found)
    assert "a mapping is needed here" in found.message and found.hint and "{} for none" in found.hint, str(found)


QUOTED_NUMBER = [  # (where, the text written there): an ordering against a quoted number, in every expression
    ("check", "    expect: \"rc < '1'\"\n"),
    ("check", "    expect: \"'0.5' >= rc\"\n"),
    ("check", "    expect: \"rc == 0 and (stdout | length) <= ' 10 '\"\n"),
    ("step", "        when: \"check.value > '80'\"\n"),
    ("step", "        until: \"result.rc < '1'\"\n"),
    ("step", "        changed_when: \"result.rc >= '1'\"\n"),
    ("step", "        failed_when: \"1 < result.rc < '3'\"\n"),
    # a number YAML or Python writes otherwise, or with its unit (brk15: each passed, and raised at every run)
    ("check", "    expect: \"rc < '1e3'\"\n"),
    ("check", "    expect: \"rc < '1_000'\"\n"),
    ("check", "    expect: \"rc < '90%'\"\n"),
    ("check", "    expect: \"rc <= '500 ms'\"\n"),
    ("step", "        when: \"check.value > '2.5E-3'\"\n"),
]


@pytest.mark.parametrize(("where", "text"), QUOTED_NUMBER, ids=[t[1].strip() for t in QUOTED_NUMBER])
def test_a_number_ordered_against_a_quoted_number_is_refused_in_every_expression(tmp_path: Path, where: str,
                                                                                 text: str) -> None:
    """rc < '1' raised TypeError when it ran (an UNKNOWN at every run, a failed step), and two texts
    are ordered letter by letter ('100' < '90'): found only at run time before (brk15)."""
    (tmp_path / "inventory.yaml").write_text(INVENTORY)
    play = tmp_path / "p.yaml"
    written = PLAY_WITH.format(**{"play": "", "check": "", "step": "", where: text})
    if where == "check":
        written = written.replace('    expect: "rc == 0"\n', "", 1)
    elif "until" in text:
        written = written.replace(text, text + "        retries: 2\n")
    play.write_text(written)
    result = load_config(tmp_path / "inventory.yaml", [play], default_registry(), env={},
                         templates_dir=REPO / "templates")
    [found] = result.diagnostics
    assert "compares with the text" in found.message and "a number in quotes" in found.message, str(found)
    assert "write the number without quotes" in found.message, str(found)
    key = text.split(":", 1)[0].strip()
    assert found.line == written.splitlines().index(text.rstrip("\n")) + 1 and key in found.message, str(found)


@pytest.mark.parametrize("expect", ["stdout == '200'", "stdout >= 'b'", "stdout in ['1', '2']", "rc < 1"])
def test_text_compared_as_text_is_not_refused(tmp_path: Path, expect: str) -> None:
    (tmp_path / "inventory.yaml").write_text(INVENTORY)
    play = tmp_path / "p.yaml"
    play.write_text(PLAY_WITH.format(play="", check="", step="").replace('"rc == 0"', f'"{expect}"', 1))
    result = load_config(tmp_path / "inventory.yaml", [play], default_registry(), env={},
                         templates_dir=REPO / "templates")
    assert result.config is not None, "\n".join(map(str, result.diagnostics))


@pytest.mark.parametrize(("where", "text"), [
    ("check", "    expect: \"rc < most\"\n"),
    ("check", "    expect: \"most >= rc\"\n"),
    ("step", "        when: \"check.value > most\"\n"),
    ("step", "        changed_when: \"result.rc >= most\"\n"),
    ("step", "        failed_when: \"result.rc > most\"\n"),
])
def test_a_run_time_value_ordered_against_a_var_holding_a_quoted_number_is_refused(tmp_path: Path, where: str,
                                                                                    text: str) -> None:
    """The same through a var: vars: {most: "3"} and expect: "rc < most" passed agent validate and
    raised at every run (brk15)."""
    (tmp_path / "inventory.yaml").write_text(INVENTORY)
    play = tmp_path / "p.yaml"
    written = PLAY_WITH.format(**{"play": "vars: {most: \"3\"}\n", "check": "", "step": "", where: text})
    if where == "check":
        written = written.replace('    expect: "rc == 0"\n', "", 1)
    play.write_text(written)
    result = load_config(tmp_path / "inventory.yaml", [play], default_registry(), env={},
                         templates_dir=REPO / "templates")
    [found] = result.diagnostics
    assert "is ordered against the text '3', a number in quotes" in found.message, str(found)
    assert found.line == written.splitlines().index(text.rstrip("\n")) + 1, str(found)
    assert found.hint is not None and '(3, not "3")' in found.hint, str(found)
    # the var written as a number: accepted
    play.write_text(written.replace('most: "3"', "most: 3"))
    assert load_config(tmp_path / "inventory.yaml", [play], default_registry(), env={},
                       templates_dir=REPO / "templates").config is not None


@pytest.mark.parametrize("expect", [
    "stdout | trim < '0930'",  # a fixed-width time of day (`date +%H%M`), ordered as text on purpose
    "(stdout | string) >= '10'",
    "'0930' > stdout | trim",
    "(stdout ~ '') <= '2026'",
    "(stdout | lower | replace('-', '')) >= '20261201'",
    "stdout | trim < opening",  # through a var: {opening: "0930"}
])
def test_text_made_text_and_ordered_against_number_like_text_is_not_refused(tmp_path: Path, expect: str) -> None:
    """A value turned into text (| string, | trim, ~) ordered against a quoted number is text against
    text, written so on purpose (a fixed-width time of day or date); the hint 'write the number
    without quotes' would make it raise when it runs (text against a number) (r15b)."""
    (tmp_path / "inventory.yaml").write_text(INVENTORY)
    play = tmp_path / "p.yaml"
    play.write_text(PLAY_WITH.format(play="vars: {opening: \"0930\"}\n", check="", step="")
                    .replace('"rc == 0"', f'"{expect}"', 1))
    result = load_config(tmp_path / "inventory.yaml", [play], default_registry(), env={},
                         templates_dir=REPO / "templates")
    assert result.config is not None, "\n".join(map(str, result.diagnostics))


LOOKALIKE_DIGITS = [  # digits of another script: Python's int() and regex \d take them, YAML reads them as text
    ("step", "        retries: \uff15\n", "retries: 5"),  # fullwidth, as an IME writes it
    ("step", "        retries: \u0663\n", "retries: 3"),  # Arabic-Indic
    ("check", "    expect: \"rc < '\uff19\uff10'\"\n", "90"),
]


@pytest.mark.parametrize(("where", "text", "wanted"), LOOKALIKE_DIGITS, ids=[t[1].strip() for t in LOOKALIKE_DIGITS])
def test_a_number_written_in_lookalike_digits_is_said_with_the_ascii_number(tmp_path: Path, where: str, text: str,
                                                                           wanted: str) -> None:
    """retries: U+FF15 (a fullwidth digit) was hinted 'write the number without quotes: retries: U+FF15 (a
    quoted value is text)': it is not quoted, and writing what the hint says changes nothing (r15c)."""
    (tmp_path / "inventory.yaml").write_text(INVENTORY)
    play = tmp_path / "p.yaml"
    written = PLAY_WITH.format(**{"play": "", "check": "", "step": "", where: text})
    if where == "check":
        written = written.replace('    expect: "rc == 0"\n', "", 1)
    play.write_text(written)
    result = load_config(tmp_path / "inventory.yaml", [play], default_registry(), env={},
                         templates_dir=REPO / "templates")
    [found] = result.diagnostics
    assert wanted in str(found), str(found)
    assert "digit" in str(found), str(found)
    assert all(ord(c) < 128 for c in wanted)
    hint_tail = str(found).split("hint:", 1)[-1]
    assert "\uff15" not in hint_tail.split("(")[0] and "\u0663" not in hint_tail.split("(")[0], str(found)


def test_a_threshold_var_in_lookalike_digits_is_said_with_the_ascii_number(tmp_path: Path) -> None:
    """vars: {limit: 60 in fullwidth digits} under warning: "> {{ limit }}" was hinted 'limit: (the same), not "(the same)"': the
    same text again, unquoted as it already was (r15c)."""
    (tmp_path / "inventory.yaml").write_text(INVENTORY)
    play = tmp_path / "p.yaml"
    play.write_text(PLAY_WITH.format(play="vars: {limit: \uff16\uff10}\n", check='    warning: "> {{ limit }}"\n', step="")
                    .replace('    expect: "rc == 0"\n', "    value: rc\n", 1))
    result = load_config(tmp_path / "inventory.yaml", [play], default_registry(), env={},
                         templates_dir=REPO / "templates")
    [found] = result.diagnostics
    assert "limit: 60" in str(found) and "digit" in str(found), str(found)
    assert "not \"\uff16\uff10\"" not in str(found), str(found)


@pytest.mark.parametrize(("text", "wanted"), [("        retries: 1e1\n", "retries: 10"),
                                             ("        retries: \"1e1\"\n", "retries: 10"),
                                             ("        retries: 2.0e1\n", "retries: 20")])
def test_a_number_yaml_reads_as_text_unquoted_is_not_hinted_to_be_unquoted(tmp_path: Path, text: str,
                                                                           wanted: str) -> None:
    """retries: 1e1 (and agent run-playbook -e close_attempts=1e1) was hinted 'write the number
    without quotes: retries: 1e1 (a quoted value is text)': unquoted, YAML 1.1 still reads it as
    text, so following the hint changed nothing (r15c)."""
    (tmp_path / "inventory.yaml").write_text(INVENTORY)
    play = tmp_path / "p.yaml"
    play.write_text(PLAY_WITH.format(play="", check="", step=text))
    result = load_config(tmp_path / "inventory.yaml", [play], default_registry(), env={},
                         templates_dir=REPO / "templates")
    [found] = result.diagnostics
    assert "retries: 1e1 (" not in str(found) and "retries: 2.0e1 (" not in str(found), str(found)
    assert "YAML 1.1 reads" in str(found) and wanted in str(found), str(found)
