"""Settings that load but never do what they say (issue 15, F15): a maintenance window matching a
tag nothing has, an escalation to the route itself, a first message held longer than its updates,
a number written h:mm (YAML 1.1 reads 1:30 as 90), a fixed-offset timezone that reads as another.
Each is reported at the line to change."""
from __future__ import annotations

from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from agent.modules.registry import Registry
from agent.playbook import LoadResult, load_config

from .conftest import GOOD
from .modules_for_tests import make_registry

PLAY = """version: 1
name: health
hosts: bots
schedule: {schedule}
vars: {{limit: {limit}}}
checks:
  - name: bot loop is alive
    http: {{url: "{{{{ bot.health_url }}}}"}}
    expect: "status_code == 200"
    after: {after}
    tags: [bot, exchange]
    remediate: [restart]
remediations:
  restart:
    steps:
      - command: {{argv: ["true"]}}
        retries: {retries}
    budget: {{max: {max}, within: 30m}}
"""


def _load(root: Path, *, inventory: str = "", notify: str = "", routes: str = "", schedule: str = "{every: 15s}",
          after: str = "2", retries: str = "1", max_runs: str = "3", limit: str = "5", settings_text: str | None = None,
          registry: Registry | None = None) -> LoadResult:
    text = (GOOD / "inventory.yaml").read_text(encoding="utf-8")
    text = text.replace("  routes:\n", "  routes:\n" + routes, 1).replace("notify:\n", "notify:\n" + notify, 1)
    if settings_text is not None:
        (root / "stack.yaml").write_text(settings_text, encoding="utf-8")
        text = text.replace("settings: null", "settings: stack.yaml")
    (root / "inventory.yaml").write_text(text + inventory, encoding="utf-8")
    (root / "health.yaml").write_text(PLAY.format(schedule=schedule, after=after, retries=retries, max=max_runs,
                                                  limit=limit), encoding="utf-8")
    return load_config(root / "inventory.yaml", [root / "health.yaml"], registry or make_registry(), env={})


def _line(path: Path, needle: str) -> int:
    return next(i for i, text in enumerate(path.read_text(encoding="utf-8").splitlines(), 1) if needle in text)


MAINTENANCE = """maintenance:
  - name: exchange upgrade
    match: {{tags: [{tag}]}}
    start: "02:00"
    end: "02:30"
    timezone: {timezone}
"""


def test_a_maintenance_window_on_a_tag_nothing_has_warns_at_the_tag(tmp_path: Path) -> None:
    result = _load(tmp_path, inventory=MAINTENANCE.format(tag="exchnage", timezone="UTC"))
    assert result.ok, result.diagnostics
    [diag] = result.warnings
    assert (diag.line, diag.column) == (_line(tmp_path / "inventory.yaml", "exchnage"), 20), str(diag)
    assert "maintenance window 'exchange upgrade' matches tags 'exchnage'" in diag.message
    assert diag.hint == "did you mean 'exchange'?"
    assert not _load(tmp_path, inventory=MAINTENANCE.format(tag="exchange", timezone="UTC")).warnings


@pytest.mark.parametrize("match", ["{tags: []}", "{check: ['*']}", "{host: ['*'], play: []}", "{}"])
def test_a_maintenance_window_written_to_match_everything_warns_at_match(tmp_path: Path, match: str) -> None:
    """Issue 15, F8: an empty list (or '*') matches anything, so the window held back every
    alert, bot-crash pages included, with no word."""
    window = MAINTENANCE.format(tag="exchange", timezone="UTC").replace("{tags: [exchange]}", match)
    result = _load(tmp_path, inventory=window)
    assert result.ok, result.diagnostics
    [diag] = [w for w in result.warnings if "matches every alert" in w.message]
    assert diag.line == _line(tmp_path / "inventory.yaml", f"    match: {match}"), str(diag)
    narrow = _load(tmp_path, inventory=MAINTENANCE.format(tag="exchange", timezone="UTC").replace(
        "{tags: [exchange]}", "{check: ['bot*']}"))
    assert not [w for w in narrow.warnings if "matches every alert" in w.message]


def test_a_maintenance_window_that_starts_when_it_ends_is_an_error(tmp_path: Path) -> None:
    result = _load(tmp_path, inventory=MAINTENANCE.format(tag="exchange", timezone="UTC").replace(
        'end: "02:30"', 'end: "02:00"'))
    [diag] = result.diagnostics
    assert diag.line == _line(tmp_path / "inventory.yaml", 'end: "02:00"') and "never active" in diag.message


@pytest.mark.parametrize(("timezone", "start"), [("Europe/Berlin", "02:30"), ("America/New_York", "01:30")])
def test_a_maintenance_window_in_a_daylight_saving_hour_warns_like_the_digest(tmp_path: Path, timezone: str,
                                                                              start: str) -> None:
    window = MAINTENANCE.format(tag="exchange", timezone=timezone).replace('start: "02:00"', f'start: "{start}"')
    window = window.replace('end: "02:30"', 'end: "04:00"')
    result = _load(tmp_path, inventory=window)
    assert result.ok, result.diagnostics
    found = [w for w in result.warnings if w.message.startswith("maintenance window 'exchange upgrade': ")]
    assert len(found) == 1 and found[0].line == _line(tmp_path / "inventory.yaml", f'start: "{start}"'), \
        [str(w) for w in result.warnings]
    assert not [w for w in _load(tmp_path, inventory=MAINTENANCE.format(tag="exchange", timezone=timezone)
                                 .replace('start: "02:00"', 'start: "04:00"').replace('end: "02:30"', 'end: "05:00"'))
                .warnings if "maintenance window" in w.message]


def test_an_escalation_to_the_route_itself_is_an_error_at_to(tmp_path: Path) -> None:
    result = _load(tmp_path, routes="    - {name: p0, match: {tags: [bot]}, targets: [inbox], "
                                     "escalate: [{after: 5m, to: p0}]}\n")
    [diag] = result.diagnostics
    assert diag.line == _line(tmp_path / "inventory.yaml", "name: p0") and "escalates to itself" in diag.message


def test_two_escalation_steps_to_the_same_route_warn_at_the_second(tmp_path: Path) -> None:
    """Issue 15, F10: the second step tells the people the first one told, nobody new."""
    result = _load(tmp_path, routes="    - {name: p0, match: {tags: [bot]}, targets: [inbox], escalate: "
                                     "[{after: 5m, to: critical}, {after: 15m, to: critical}]}\n")
    assert result.ok, [str(d) for d in result.diagnostics]
    [diag] = [w for w in result.warnings if "again" in w.message]
    assert diag.line == _line(tmp_path / "inventory.yaml", "name: p0") and "step 2 goes to 'critical' again" \
        in diag.message, str(diag)


@pytest.mark.parametrize(("notify", "routes", "where"), [
    ("  group_wait: 5m\n  group_interval: 1m\n", "", "group_wait: 5m"),
    ("", "    - {name: slow, match: {tags: [bot]}, targets: [inbox], group_wait: 2m}\n", "name: slow"),
])
def test_a_first_message_held_longer_than_its_updates_warns(tmp_path: Path, notify: str, routes: str,
                                                            where: str) -> None:
    result = _load(tmp_path, notify=notify, routes=routes)
    assert result.ok, result.diagnostics
    [diag] = result.warnings
    assert diag.line == _line(tmp_path / "inventory.yaml", where) and "longer than notify.group_interval" \
        in diag.message, str(diag)


FIELDS = ["after", "retries", "max_runs", "limit"]


@settings(max_examples=25, derandomize=True, deadline=None, database=None)
@given(field=st.sampled_from(FIELDS), hours=st.integers(1, 9), minutes=st.integers(0, 59))
def test_a_number_written_h_mm_is_an_error_at_it_wherever_it_is_accepted(
        tmp_path_factory: pytest.TempPathFactory, field: str, hours: int, minutes: int) -> None:
    root = tmp_path_factory.mktemp("base60")
    written = f"{hours}:{minutes:02d}"
    result = _load(root, **{field: written})
    [diag] = [d for d in result.diagnostics if written in (d.source_line or "")]
    said = f"{diag.message} {diag.hint}"  # an error of its own, or the field's refusal with the same hint
    assert "base 60" in said and f"the number {hours * 60 + minutes}" in said, str(diag)
    assert (Path(diag.file).name, diag.line) == ("health.yaml", _line(root / "health.yaml", written))
    assert f'"{written}"' in (diag.hint or "")


def test_a_number_written_h_mm_in_the_settings_file_is_an_error_there(tmp_path: Path) -> None:
    result = _load(tmp_path, settings_text="agent: {metrics_port: 1:30}\n")
    [diag] = result.diagnostics
    assert (Path(diag.file).name, diag.line, diag.column) == ("stack.yaml", 1, 23), str(diag)
    assert "the number 90" in diag.message


@settings(max_examples=30, derandomize=True, deadline=None, database=None)
@given(field=st.sampled_from(FIELDS), number=st.integers(8, 4095),
       form=st.sampled_from(["octal", "hexadecimal", "binary"]))
def test_a_number_yaml_reads_in_another_base_is_an_error_at_it(
        tmp_path_factory: pytest.TempPathFactory, field: str, number: int, form: str) -> None:
    """YAML 1.1 reads ``010`` as octal 8, ``0x10`` as 16 and ``0b10`` as 2 (issue 15, F7):
    ``after: 010`` would count 8 failures, ``cooldown: 060`` wait 48 s, accepted silently."""
    root = tmp_path_factory.mktemp("radix")
    written = {"octal": f"0{number:o}", "hexadecimal": f"0x{number:x}", "binary": f"0b{number:b}"}[form]
    result = _load(root, **{field: written})
    [diag] = [d for d in result.diagnostics if written in (d.source_line or "")]
    assert (Path(diag.file).name, diag.line) == ("health.yaml", _line(root / "health.yaml", written)), str(diag)
    said = f"{diag.message} {diag.hint}"
    assert f"reads {written} as {form} {number}" in said and f'"{written}"' in said, str(diag)
    if form == "octal":
        assert f"write {number:o} (YAML 1.1 reads {written} as octal {number})" in (diag.hint or ""), str(diag)


@pytest.mark.parametrize("written", ["010", "0x10", "-010"])
def test_a_number_in_another_base_in_the_settings_file_is_an_error_there(tmp_path: Path, written: str) -> None:
    result = _load(tmp_path, settings_text=f"bot: {{risk: {{max_leverage: {written}}}}}\n")
    [diag] = result.diagnostics
    assert (Path(diag.file).name, diag.line, diag.column) == ("stack.yaml", 1, 28), str(diag)
    assert f"YAML 1.1 reads {written} as" in f"{diag.message} {diag.hint}", str(diag)


def test_plain_numbers_and_quoted_leading_zeros_are_not_reported(tmp_path: Path) -> None:
    assert _load(tmp_path, after="1").ok and _load(tmp_path, after="10").ok
    result = _load(tmp_path, limit='"010"')
    assert not [d for d in [*result.diagnostics, *result.warnings] if "YAML 1.1" in d.message], result.diagnostics


@pytest.mark.parametrize(("timezone", "says"), [("Etc/GMT+2", "is UTC-2"), ("Etc/GMT-10", "is UTC+10"),
                                                ("EST", "is UTC-5 all year"), ("HST", "is UTC-10")])
def test_a_fixed_offset_timezone_that_reads_as_another_warns_at_it(tmp_path: Path, timezone: str, says: str) -> None:
    for where, kwargs in (("schedule", {"schedule": f"{{cron: '0 8 * * *', timezone: {timezone}}}"}),
                          ("maintenance", {"inventory": MAINTENANCE.format(tag="exchange", timezone=timezone)}),
                          ("digest", {"notify": f"  digest: {{cron: '0 8 * * *', timezone: {timezone}}}\n"})):
        result = _load(tmp_path, **kwargs)  # type: ignore[arg-type]
        assert result.ok, result.diagnostics
        found = [d for d in result.warnings if f"timezone {timezone!r} {says}" in d.message]
        assert len(found) == 1, (where, [str(w) for w in result.warnings])
        file = tmp_path / ("health.yaml" if where == "schedule" else "inventory.yaml")
        assert found[0].file == str(file) and found[0].line == _line(file, timezone), (where, str(found[0]))
    for fine in ("UTC", "Europe/Berlin", "Etc/GMT", "Asia/Tokyo"):
        assert not [w for w in _load(tmp_path, inventory=MAINTENANCE.format(tag="exchange", timezone=fine)).warnings
                    if "timezone" in w.message], fine


@pytest.mark.parametrize(("module_timeout", "check_timeout", "warned"), [
    ("30s", "5s", True), ("11s", None, True), ("5s", "5s", False), ("2s", None, False)])
def test_a_module_timeout_above_the_checks_warns_at_it(tmp_path: Path, module_timeout: str,
                                                        check_timeout: str | None, warned: bool) -> None:
    result = _load(tmp_path)
    play = (tmp_path / "health.yaml").read_text(encoding="utf-8").replace(
        '"{{ bot.health_url }}"}', f'"{{{{ bot.health_url }}}}", timeout: {module_timeout}}}').replace(
        "    after: 2\n", "    after: 2\n" + (f"    timeout: {check_timeout}\n" if check_timeout else ""))
    (tmp_path / "health.yaml").write_text(play, encoding="utf-8")
    result = load_config(tmp_path / "inventory.yaml", [tmp_path / "health.yaml"], make_registry(), env={})
    assert result.ok, result.diagnostics
    found = [w for w in result.warnings if "longer than the check's timeout" in w.message]
    assert len(found) == int(warned), [str(w) for w in result.warnings]
    if warned:
        assert found[0].line == _line(tmp_path / "health.yaml", f"timeout: {module_timeout}")


def test_base_60_numbers_of_any_size_and_sign_are_reported_never_an_internal_error(tmp_path: Path) -> None:
    """Found by hand after the rule: a base-60 integer too large for a float ended in OverflowError."""
    huge = "9" * 400 + ":00"
    result = _load(tmp_path, limit=huge)
    (tmp_path / "health.yaml").write_text((tmp_path / "health.yaml").read_text(encoding="utf-8").replace(
        "vars: {limit: ", "vars: {b: 1:30.5, c: -2:00, limit: "), encoding="utf-8")
    result = load_config(tmp_path / "inventory.yaml", [tmp_path / "health.yaml"], make_registry(), env={})
    found = sorted((d.column, d.message.split(" is read")[0]) for d in result.diagnostics if "base 60" in d.message)
    assert [text for _, text in found] == ["1:30.5", "-2:00", f"{'9' * 20}...{'9' * 5}:00"], found
    assert all(len(d.message) < 200 for d in result.diagnostics)


@pytest.mark.parametrize(("module_timeout", "task_timeout", "warned"), [
    ("30s", "5s", "the task's timeout 5s"), ("2m", None, "the default task timeout 1m"),
    ("5s", "5s", None), ("30s", None, None)])
def test_a_modules_own_timeout_above_the_tasks_warns_at_it(tmp_path: Path, module_timeout: str,
                                                           task_timeout: str | None, warned: str | None) -> None:
    """The task is cut at its own timeout (60 s when it names none) first: the ``bot`` module's
    request ``timeout`` above it never applies."""
    from agent.modules.registry import default_registry

    _load(tmp_path)
    play = (tmp_path / "health.yaml").read_text(encoding="utf-8").replace(
        '      - command: {argv: ["true"]}\n',
        f"      - bot: {{action: halt, timeout: {module_timeout}}}\n"
        + (f"        timeout: {task_timeout}\n" if task_timeout else ""))
    (tmp_path / "health.yaml").write_text(play, encoding="utf-8")
    result = load_config(tmp_path / "inventory.yaml", [tmp_path / "health.yaml"], default_registry(), env={})
    assert result.ok, result.diagnostics
    found = [w for w in result.warnings if "never applies" in w.message and "task" in w.message]
    assert len(found) == (1 if warned else 0), [str(w) for w in result.warnings]
    if warned:
        assert warned in found[0].message
        line = _line(tmp_path / "health.yaml", "bot: {action")
        text = (tmp_path / "health.yaml").read_text(encoding="utf-8").splitlines()[line - 1]
        assert (found[0].line, found[0].column) == (line, text.index(f"timeout: {module_timeout}") + 10)


@pytest.mark.parametrize(("written", "says"), [
    ('""', "an empty name"),
    ('"BOTWARDEN_BOT_TOKEN "', "a space at character 20"),
    ('"BOTWARDEN_BOT_T\u041eKEN"', "the character '\u041e' (U+041E) at character 16"),
    ("botwarden_bot_token", "the character 'b' (U+0062) at character 1"),
])
def test_a_setting_that_names_an_environment_variable_must_be_a_variable_name(tmp_path: Path, written: str,
                                                                            says: str) -> None:
    """Issue 15, F10: ``control_token_env: "BOTWARDEN_BOT_TOKEN "`` (a trailing space) or an
    empty name passed: the agent then reads a variable nobody sets. The value is never echoed
    (a secret may be pasted where its variable's name belongs)."""
    result = _load(tmp_path, settings_text=f"bot: {{control_token_env: {written}}}\n")
    found = [d for d in result.diagnostics if "bot.control_token_env" in d.message]
    assert len(found) == 1 and says in found[0].message, [str(d) for d in result.diagnostics]
    assert (Path(found[0].file).name, found[0].line) == ("stack.yaml", 1)
    pasted = _load(tmp_path, settings_text="bot: {control_token_env: Zq8rT3kLmX9vPw2YbN7cHd4F}\n")
    assert pasted.diagnostics and not [d for d in pasted.diagnostics if "Zq8rT3kLmX9vPw2YbN7cHd4F" in d.message]
    assert _load(tmp_path, settings_text="bot: {control_token_env: MY_BOT_TOKEN_2}\n").ok


@pytest.mark.parametrize(("written", "says"), [("1e3", "after: 1000"), ('"1e3"', "without quotes")])
def test_an_unquoted_exponent_is_text_in_yaml_and_the_hint_says_so(tmp_path: Path, written: str, says: str) -> None:
    """Issue 15, F11: ``after: 1e3`` unquoted got "write the number without quotes" (it has none:
    YAML 1.1 reads an exponent without a dot as text)."""
    result = _load(tmp_path, after=written)
    [diag] = [d for d in result.diagnostics if written in (d.source_line or "")]
    assert says in (diag.hint or ""), str(diag)
