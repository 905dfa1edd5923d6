"""``agent validate`` as the operator runs it (in-process, through the CLI entry point): exit
codes, what is reported when files cannot be used, and one file validated with its directory."""
from __future__ import annotations

import os
import shutil
import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest

from agent.cli.main import main
from agent.playbook import load_config
from agent.playbook.diagnostics import Diagnostic
from botwarden.errors import ExitCode
from tests.agent.playbook.modules_for_tests import make_registry

from .conftest import GOOD

REPO = Path(__file__).resolve().parents[3]


def run(capsys: pytest.CaptureFixture[str], *args: str) -> tuple[int, str]:
    code = main(list(args))
    captured = capsys.readouterr()
    return code, captured.out + captured.err


@pytest.mark.parametrize("args", [
    ["validate", "--nope"], ["validat"], ["validate", "--inventory"], ["run-playbook"], ["--verbose=x"],
    # -e values are read as YAML: one YAML cannot read is a command-line mistake, not exit 250 (val5)
    ["run-playbook", "weekly", "--check", "-e", "until=[2024-03-17"], ["run-playbook", "weekly", "-e", "x=*a"],
    ["run-playbook", "weekly", "-e", "x=a: b: c"], ["run-playbook", "weekly", "-e", "=5"],
    ["run-playbook", "weekly", "-e", "report_until"],
    # a duration or an id out of what the store holds: exit 2 too, not 250 (val5)
    ["history", "--since", "yesterday"], ["history", "--since", "99999999d"],
    ["explain", "99999999999999999999999"], ["ack", "99999999999999999999999"],
    ["silence", "--expire", "99999999999999999999999"],
])
def test_command_line_mistakes_exit_2_with_usage(capsys: pytest.CaptureFixture[str], args: list[str]) -> None:
    code, out = run(capsys, *args)
    assert code == ExitCode.USAGE, out
    assert "internal error" not in out and "Error:" in out


def test_a_named_inventory_that_does_not_exist_is_an_error(capsys: pytest.CaptureFixture[str],
                                                           tmp_path: Path) -> None:
    code, out = run(capsys, "validate", "--inventory", str(tmp_path / "inventroy.yaml"), str(REPO / "playbooks"))
    assert code == ExitCode.FAILED
    assert f"{tmp_path / 'inventroy.yaml'}: error: inventory file not found" in out


def test_one_file_is_validated_with_the_rest_of_its_directory(capsys: pytest.CaptureFixture[str]) -> None:
    """trading-risk depends_on a check of bot-health, another file of playbooks/."""
    code, out = run(capsys, "validate", "--inventory", str(REPO / "inventory.yaml"),
                    str(REPO / "playbooks" / "trading-risk.yaml"))
    assert code == ExitCode.OK, out
    assert out.startswith("ok: 1 playbook(s)")


def test_a_file_outside_the_playbooks_resolves_against_the_configured_set(
        capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    edited = tmp_path / "trading-risk.yaml"
    shutil.copy(REPO / "playbooks" / "trading-risk.yaml", edited)
    code, out = run(capsys, "validate", "--inventory", str(REPO / "inventory.yaml"), str(edited))
    assert code == ExitCode.OK, out


def test_a_reference_that_exists_nowhere_is_still_reported(capsys: pytest.CaptureFixture[str],
                                                           tmp_path: Path) -> None:
    edited = tmp_path / "trading-risk.yaml"
    edited.write_text((REPO / "playbooks" / "trading-risk.yaml").read_text().replace("bot-health/", "bot-helth/"))
    code, out = run(capsys, "validate", "--inventory", str(REPO / "inventory.yaml"), str(edited))
    assert code == ExitCode.FAILED
    assert "depends_on: no check named 'bot-helth/" in out


def test_nothing_is_skipped_silently(tmp_path: Path) -> None:
    (tmp_path / "emergency.yaml").write_text((GOOD / "playbooks" / "emergency.yaml").read_text())
    (tmp_path / "Shouting.YAML").write_text("version: 1\nname: shouting\n")
    (tmp_path / "gone.yaml").symlink_to(tmp_path / "moved-away.yaml")
    (tmp_path / "README.md").write_text("not a playbook")
    empty = tmp_path / "empty"
    empty.mkdir()
    result = load_config(GOOD / "inventory.yaml", [tmp_path, empty], make_registry(), env={})
    found = {(Path(d.file).name, d.message.split(";")[0].split(",")[0]) for d in result.diagnostics}
    assert found == {
        ("Shouting.YAML", "playbook files end in .yaml or .yml (lower case)"),
        ("gone.yaml", f"a symbolic link to {tmp_path / 'moved-away.yaml'}"),
        ("empty", "no playbook files (*.yaml"),
    }, result.diagnostics


@pytest.fixture
def shared_dir() -> Iterator[Path]:
    """A directory another user can enter (pytest's tmp_path is private to root)."""
    path = Path(tempfile.mkdtemp(prefix="botwarden-unreadable-"))
    path.chmod(0o755)
    yield path
    for child in path.rglob("*"):
        child.chmod(0o755)
    shutil.rmtree(path)


def _as_another_user(call: object) -> list[Diagnostic]:
    """Run ``call`` where permissions apply: in a child that drops root, else here."""
    assert callable(call)
    if os.geteuid() != 0:
        return call()  # type: ignore[no-any-return]
    import pickle

    call()  # once as root first: every module it needs is imported before the child drops root
    # (the interpreter's own files may be unreadable to that user, e.g. a pyenv under /root)
    read, write = os.pipe()
    pid = os.fork()
    if pid == 0:  # pragma: no cover - the child
        try:
            os.setgid(65534)
            os.setuid(65534)
            data = pickle.dumps(call())
        except BaseException as exc:  # noqa: BLE001 - handed to the parent, which fails the test
            data = pickle.dumps(repr(exc))
        with os.fdopen(write, "wb") as fh:
            fh.write(data)
        os._exit(0)
    os.close(write)
    with os.fdopen(read, "rb") as fh:
        out = pickle.loads(fh.read())
    os.waitpid(pid, 0)
    assert isinstance(out, list), out
    return out


def test_unreadable_files_and_directories_are_reported_not_crashed_on(shared_dir: Path) -> None:
    plays = shared_dir / "plays"
    plays.mkdir()
    plays.chmod(0o755)  # explicit: an earlier in-process `agent` command leaves the worker's umask at 077
    secret = plays / "secret.yaml"
    secret.write_text("version: 1\nname: secret\n")
    secret.chmod(0o000)
    locked = shared_dir / "locked"
    locked.mkdir()
    locked.chmod(0o000)
    inventory = shared_dir / "inventory.yaml"
    shutil.copy(GOOD / "inventory.yaml", inventory)
    inventory.chmod(0o644)
    registry = make_registry()

    diagnostics = _as_another_user(lambda: load_config(inventory, [plays, locked], registry, env={}).diagnostics)
    found = {(Path(d.file).name, d.message) for d in diagnostics}
    assert ("secret.yaml", "cannot read file: Permission denied") in found, diagnostics
    assert ("locked", "cannot list the directory: Permission denied") in found, diagnostics


def test_a_template_file_that_is_not_text_is_reported_at_the_step(tmp_path: Path) -> None:
    templates = tmp_path / "templates"
    templates.mkdir()
    (templates / "latin1.md.j2").write_bytes(b"caf\xe9 {{ host }}\n")
    play = tmp_path / "tell.yaml"
    play.write_text("version: 1\nname: tell\nhosts: bots\ntasks:\n  - notify: {template: latin1.md.j2}\n")
    result = load_config(GOOD / "inventory.yaml", [play], make_registry(), env={}, templates_dir=templates)
    [diag] = result.diagnostics
    assert (diag.line, diag.column) == (5, 24)
    assert diag.message.startswith("template: template 'latin1.md.j2': cannot read it: 'utf-8' codec")


def test_a_problem_found_on_every_host_is_reported_once(tmp_path: Path) -> None:
    play = tmp_path / "p.yaml"
    play.write_text("version: 1\nname: p\nhosts: all\nschedule: {every: 1m}\nchecks:\n"
                    "  - http: {url: '{{ bot.helth_url }}'}\n")
    result = load_config(GOOD / "inventory.yaml", [play], make_registry(), env={})  # two hosts
    [diag] = result.diagnostics
    assert (diag.line, diag.column, diag.hint) == (6, 17, "did you mean 'bot.health_url'?")


def test_a_position_at_line_100_is_printed_as_written_not_as_an_emoji(capsys: pytest.CaptureFixture[str],
                                                                       tmp_path: Path) -> None:
    """rich turns `:100:` into an emoji: `bot-health.yaml💯3` is no position an editor can jump to."""
    playbooks = tmp_path / "playbooks"
    shutil.copytree(REPO / "playbooks", playbooks)
    lines = (playbooks / "bot-health.yaml").read_text().splitlines()
    lines.insert(99, "    bogus_key: 1  # :smile:")  # an unknown key of the check above, at line 100
    (playbooks / "bot-health.yaml").write_text("\n".join(lines) + "\n")
    code, out = run(capsys, "validate", "--inventory", str(REPO / "inventory.yaml"), str(playbooks))
    assert code == ExitCode.FAILED, out
    assert "bot-health.yaml:100:5" in out and "💯" not in out and "😄" not in out, out


def test_a_silence_until_ok_that_names_no_check_is_a_warning_at_its_line(capsys: pytest.CaptureFixture[str],
                                                                          tmp_path: Path) -> None:
    """A misspelt ``silence_until_ok`` would let through the alert it meant to hold: said, with
    the position and the nearest name, but the emergency still loads (it must always run)."""
    edited = tmp_path / "emergency.yaml"
    text = (REPO / "playbooks" / "emergency.yaml").read_text()
    assert text.count("[bot-health/bot process]") == 2
    edited.write_text(text.replace("[bot-health/bot process]", "[bot-health/bot proces]", 1)
                      .replace("[bot-health/bot not halted]", "[bot-helth/bot not halted]"))
    code, out = run(capsys, "validate", "--inventory", str(REPO / "inventory.yaml"), str(edited))
    assert code == ExitCode.OK, out
    lines = text.splitlines()
    row = next(i for i, line in enumerate(lines, 1) if "[bot-health/bot process]" in line)
    assert f"{edited}:{row}:" in out and "warning: silence_until_ok: no check named 'bot-health/bot proces'" in out
    assert "did you mean 'bot-health/bot process'?" in out
    assert "no check named 'bot-helth/bot not halted'" in out and "did you mean 'bot-health/bot not halted'?" in out


def test_the_inventory_given_as_a_playbook_is_one_error_that_says_so(capsys: pytest.CaptureFixture[str],
                                                                     tmp_path: Path) -> None:
    """`agent validate inventory.yaml` (val5): not one "unknown key" per top-level key."""
    code, out = run(capsys, "validate", "--inventory", str(REPO / "inventory.yaml"), str(REPO / "inventory.yaml"))
    assert code == ExitCode.FAILED
    assert out.count("error:") == 1, out
    assert f"{REPO / 'inventory.yaml'}:9:1: error: this is an inventory file (settings:, groups:" in out
    assert f"-i {REPO / 'inventory.yaml'}" in out


def test_a_playbook_given_as_the_inventory_says_so_and_where_playbooks_were_looked_for(
        capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    shutil.copy(REPO / "playbooks" / "weekly.yaml", tmp_path / "weekly.yaml")
    code, out = run(capsys, "validate", "-i", str(tmp_path / "weekly.yaml"))
    assert code == ExitCode.FAILED
    assert out.count("error:") == 2, out
    assert f"{tmp_path / 'weekly.yaml'}:16:1: error: this is a playbook (name:, schedule:, checks:, tasks:), " \
           "not an inventory file" in out
    assert f"{tmp_path / 'playbooks'}: error: no such file or directory\n  hint: without arguments the playbooks " \
           "are read from playbooks/ beside the inventory" in out


NEW_PLAY = """version: 1
name: my-check
hosts: bots
schedule: {every: 30s}
checks:
  - name: bot answers
    http: {url: "{{ bot.health_url }}", timeout: 2s}
    expect: "status_code == 200"
    depends_on: [bot-health/bot process]
remediations: {}
"""


@pytest.mark.parametrize("beside", [["inventory.yaml"], ["inventory.yaml", "settings.yaml"]])
def test_a_new_playbook_beside_the_inventory_is_validated_against_the_playbooks(
        capsys: pytest.CaptureFixture[str], tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
        beside: list[str]) -> None:
    """``agent validate my-check.yaml``, written beside inventory.yaml before moving it into
    playbooks/: the inventory (and the settings file) were taken for its sibling playbooks, so
    playbooks/ was not read and its depends_on was 'no check named' (brk15)."""
    from tests.agent.playbook.conftest import copy_of_the_shipped_configuration

    root = copy_of_the_shipped_configuration(tmp_path)
    if "settings.yaml" in beside:
        inventory = root / "inventory.yaml"
        inventory.write_text(inventory.read_text().replace("settings: null", "settings: settings.yaml", 1))
        (root / "settings.yaml").write_text("bot: {port: 8082}\n")
    (root / "my-check.yaml").write_text(NEW_PLAY)
    monkeypatch.chdir(root)
    code, out = run(capsys, "validate", "my-check.yaml")
    assert code == ExitCode.OK, out
    assert out.startswith("ok: 1 playbook(s)"), out


@pytest.mark.parametrize("broken", [False, True])
def test_a_template_file_given_is_checked_with_the_configuration_that_uses_it(
        capsys: pytest.CaptureFixture[str], tmp_path: Path, monkeypatch: pytest.MonkeyPatch, broken: bool) -> None:
    """``agent validate templates/alert.md.j2`` after editing the alert template read the template
    as a playbook: 'YAML syntax error' in its comment, whatever the template held (brk15)."""
    from tests.agent.playbook.conftest import copy_of_the_shipped_configuration

    root = copy_of_the_shipped_configuration(tmp_path)
    template = root / "templates" / "alert.md.j2"
    if broken:
        template.write_text(template.read_text() + "{{ check | capitalise }}\n")
    monkeypatch.chdir(root)
    code, out = run(capsys, "validate", "templates/alert.md.j2")
    assert "YAML" not in out and "templates/alert.md.j2: a template" in out, out
    if broken:
        assert code == ExitCode.FAILED and "No filter named 'capitalise'" in out, out
    else:
        assert code == ExitCode.OK and "ok: 14 playbook(s)" in out, out


@pytest.mark.parametrize(("old", "new"), [("hosts: bots", "hots: bots"), ("hosts: bots", "hosts: [bots")])
def test_one_file_validated_beside_a_broken_playbook_it_refers_to_is_not_blamed_for_it(
        capsys: pytest.CaptureFixture[str], tmp_path: Path, monkeypatch: pytest.MonkeyPatch, old: str, new: str) -> None:
    """``agent validate playbooks/trading-risk.yaml`` while bot-health.yaml (which it depends_on) has
    a typo: 'depends_on: no check named bot-health/...' with the hint 'no playbook named
    bot-health', in the file that was right (brk15). The broken file is looked up as the run of
    every file looks it up: a reference into it is not judged; its own errors are its own."""
    from tests.agent.playbook.conftest import copy_of_the_shipped_configuration

    root = copy_of_the_shipped_configuration(tmp_path)
    health = root / "playbooks" / "bot-health.yaml"
    health.write_text(health.read_text().replace(old, new, 1))
    monkeypatch.chdir(root)
    code, out = run(capsys, "validate", "playbooks/trading-risk.yaml")
    assert code == ExitCode.OK and "no playbook named" not in out, out
    code, out = run(capsys, "validate")
    assert code == ExitCode.FAILED and "bot-health.yaml:" in out and "trading-risk.yaml" not in out, out


def test_a_template_given_that_does_not_exist_or_does_not_compile_is_an_error(
        capsys: pytest.CaptureFixture[str], tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """``agent validate templates/alert.md.J2`` (no such file) and a template no part of the
    configuration names (notify.md.j2 left with '{% if %}') said 'ok': a file that is not there,
    or that was never read, passed as checked (r15c)."""
    from tests.agent.playbook.conftest import copy_of_the_shipped_configuration

    root = copy_of_the_shipped_configuration(tmp_path)
    monkeypatch.chdir(root)
    code, out = run(capsys, "validate", "templates/alert.md.J2")
    assert code == ExitCode.FAILED and "templates/alert.md.J2: error: no such file" in out, out
    unused = root / "templates" / "unused.md.j2"
    unused.write_text("line one\n{% if %}\n")
    code, out = run(capsys, "validate", "templates/unused.md.j2")
    assert code == ExitCode.FAILED and "templates/unused.md.j2:2:" in out and "Jinja2" in out, out
    unused.write_text("fine {{ host }}\n")
    code, out = run(capsys, "validate", "templates/unused.md.j2")
    assert code == ExitCode.OK, out
