"""Odd files where configuration belongs: each is a diagnostic naming the path and what it is.

Symbolic links that loop or point nowhere, named pipes (never waited on), sockets, devices and
directories named like a playbook, settings or a template, in the playbooks directory, as the
inventory, as the settings file, as a template; and random mutations of a whole configuration
tree (hypothesis): ``load_config`` never raises, never blocks, and every problem names a path.
"""
from __future__ import annotations

import os
import shutil
import socket
import stat
import threading
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from agent.cli.main import main
from agent.modules.registry import Registry
from agent.playbook import LoadResult, load_config
from botwarden.errors import ExitCode

from .conftest import GOOD
from .modules_for_tests import make_registry

REPO = Path(__file__).resolve().parents[3]


def _within(seconds: float, call: Callable[[], Any]) -> Any:
    """``call()``, failing the test (instead of hanging it) when it blocks, e.g. on a FIFO."""
    out: list[Any] = []
    errors: list[BaseException] = []

    def run() -> None:
        try:
            out.append(call())
        except BaseException as exc:  # noqa: BLE001 - handed to the test
            errors.append(exc)

    thread = threading.Thread(target=run, daemon=True)
    thread.start()
    thread.join(seconds)
    if thread.is_alive():
        for fifo in _fifos:  # unblock the reader so the thread ends
            try:
                fd = os.open(fifo, os.O_WRONLY | os.O_NONBLOCK)
                os.close(fd)
            except OSError:
                pass
        pytest.fail(f"blocked for more than {seconds}s")
    if errors:
        raise errors[0]
    return out[0]


_fifos: list[Path] = []


def _fifo(path: Path) -> None:
    os.mkfifo(path)
    _fifos.append(path)


def _socket(path: Path) -> None:
    s = socket.socket(socket.AF_UNIX)
    s.bind(str(path))
    s.close()


def _config_tree(root: Path) -> Path:
    shutil.copy(GOOD / "inventory.yaml", root / "inventory.yaml")
    shutil.copytree(GOOD / "playbooks", root / "playbooks")
    return root / "inventory.yaml"


def _load(inventory: Path, registry: Registry, **kw: Any) -> LoadResult:
    return _within(20, lambda: load_config(inventory, [inventory.parent / "playbooks"], registry, env={}, **kw))


ODD_PLAYBOOK_ENTRIES: list[tuple[str, Callable[[Path], None], str]] = [
    ("loop.yaml", lambda p: p.symlink_to(p.name), "a symbolic link that loops"),
    ("ping.yaml", lambda p: (p.parent / "pong.yaml").symlink_to("ping.yaml") or p.symlink_to("pong.yaml"),
     "a symbolic link that loops"),
    ("fifo.yaml", _fifo, "a named pipe (FIFO), not a file"),
    ("dir.yaml", lambda p: p.mkdir(), "a directory named like a playbook"),
    ("sock.yaml", _socket, "a socket, not a file"),
    ("null.yaml", lambda p: p.symlink_to("/dev/null"), "a character device, not a file"),
    ("gone.yaml", lambda p: p.symlink_to("nowhere.yaml"), "a symbolic link to nowhere.yaml, which does not exist"),
]


@pytest.mark.parametrize(("name", "make", "said"), ODD_PLAYBOOK_ENTRIES, ids=[e[0] for e in ODD_PLAYBOOK_ENTRIES])
def test_an_odd_entry_in_the_playbooks_directory_is_named_and_said_what_it_is(
        tmp_path: Path, registry: Registry, name: str, make: Callable[[Path], None], said: str) -> None:
    inventory = _config_tree(tmp_path)
    make(tmp_path / "playbooks" / name)
    result = _load(inventory, registry)
    assert result.config is None
    mine = [d for d in result.diagnostics if Path(d.file).name == name]
    assert mine and said in mine[0].message, result.diagnostics
    assert all(d.hint for d in mine)


@pytest.mark.parametrize(("make", "said"), [
    (lambda p: p.symlink_to(p.name), "a symbolic link that loops"),
    (_fifo, "a named pipe (FIFO), not a file"),
    (lambda p: p.mkdir(), "a directory, not a file"),
    (lambda p: p.symlink_to("/dev/null"), "a character device, not a file"),
], ids=["loop", "fifo", "directory", "device"])
def test_an_odd_inventory_is_named_and_said_what_it_is(tmp_path: Path, registry: Registry,
                                                       make: Callable[[Path], None], said: str) -> None:
    inventory = _config_tree(tmp_path)
    inventory.unlink()
    make(inventory)
    result = _load(inventory, registry)
    assert result.config is None
    [diag] = [d for d in result.diagnostics if d.file == str(inventory)]
    assert said in diag.message


@pytest.mark.parametrize(("make", "said"), [
    (lambda p: p.symlink_to(p.name), "a symbolic link that loops"),
    (_fifo, "a named pipe (FIFO), not a file"),
    (lambda p: p.mkdir(), "a directory, not a file"),
    (lambda p: p.symlink_to("elsewhere.yaml"), "a symbolic link to elsewhere.yaml, which does not exist"),
], ids=["loop", "fifo", "directory", "dangling"])
def test_an_odd_settings_file_is_named_at_the_inventory_line_with_what_it_is(
        tmp_path: Path, registry: Registry, make: Callable[[Path], None], said: str) -> None:
    inventory = _config_tree(tmp_path)
    inventory.write_text(inventory.read_text().replace("settings: null", "settings: stack.yaml"))
    make(tmp_path / "stack.yaml")
    result = _load(inventory, registry)
    [diag] = result.diagnostics
    assert (diag.file, diag.line) == (str(inventory), 2)
    assert "'stack.yaml'" in diag.message and str(tmp_path / "stack.yaml") in diag.message
    assert said in diag.message and "not found" not in diag.message


def test_a_broken_settings_file_named_by_the_environment_is_reported_not_replaced_by_defaults(
        tmp_path: Path, registry: Registry, monkeypatch: pytest.MonkeyPatch) -> None:
    inventory = _config_tree(tmp_path)
    settings = tmp_path / "env-settings.yaml"
    settings.write_text("bot: {port: [not, a, port]}\n")
    monkeypatch.setenv("BOTWARDEN_SETTINGS", str(settings))
    result = _load(inventory, registry)
    assert result.config is None
    assert [d.file for d in result.diagnostics] == [str(settings)]
    assert result.diagnostics[0].line == 1
    settings.unlink()
    _fifo(settings)
    [diag] = _load(inventory, registry).diagnostics
    assert diag.file == str(settings) and "$BOTWARDEN_SETTINGS" in diag.message and "FIFO" in diag.message


def test_botwarden_settings_shadowed_by_the_inventorys_settings_file_is_a_warning(
        tmp_path: Path, registry: Registry, monkeypatch: pytest.MonkeyPatch) -> None:
    inventory = _config_tree(tmp_path)
    inventory.write_text(inventory.read_text().replace("settings: null", "settings: stack.yaml"))
    (tmp_path / "stack.yaml").write_text("bot: {port: 21701}\n")
    monkeypatch.setenv("BOTWARDEN_SETTINGS", str(tmp_path / "other.yaml"))
    result = _load(inventory, registry)
    assert result.config is not None and result.diagnostics == []
    [diag] = result.warnings
    assert diag.severity == "warning" and (diag.file, diag.line) == (str(inventory), 2)
    assert "$BOTWARDEN_SETTINGS" in diag.message and "ignored" in diag.message and "'stack.yaml'" in diag.message


def test_a_template_that_is_a_fifo_is_reported_at_the_step_never_waited_on(tmp_path: Path, registry: Registry) -> None:
    inventory = _config_tree(tmp_path)
    templates = tmp_path / "templates"
    templates.mkdir()
    _fifo(templates / "page.md.j2")
    play = tmp_path / "playbooks" / "tell.yaml"
    play.write_text("version: 1\nname: tell\nhosts: bots\ntasks:\n  - notify: {template: page.md.j2}\n")
    result = _load(inventory, registry, templates_dir=templates)
    [diag] = result.diagnostics
    assert (diag.file, diag.line) == (str(play), 5)
    assert "page.md.j2" in diag.message and "FIFO" in diag.message


def test_agent_validate_with_an_inventory_that_links_to_itself_is_an_error_not_a_crash(
        tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    inventory = tmp_path / "inventory.yaml"
    inventory.symlink_to("inventory.yaml")
    code = main(["validate", "--inventory", str(inventory), str(REPO / "playbooks")])
    out = capsys.readouterr()
    text = out.out + out.err
    assert code == ExitCode.FAILED, text
    assert f"{inventory}: error: a symbolic link that loops" in text
    assert "internal error" not in text


def test_run_playbook_with_an_inventory_that_links_to_itself_says_so(
        tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    (tmp_path / "playbooks").symlink_to(REPO / "playbooks")
    Path("inventory.yaml").symlink_to("inventory.yaml")
    code = main(["run-playbook", "emergency", "--check"])
    out = capsys.readouterr()
    text = out.out + out.err
    assert code == ExitCode.CONFIG, text
    assert "inventory.yaml: error: a symbolic link that loops" in text
    assert "internal error" not in text


# -- random mutations of a whole tree ----------------------------------------------------------

TARGETS = ["inventory.yaml", "playbooks/bot-health.yaml", "playbooks/emergency.yaml", "playbooks/new.yaml",
           "stack.yaml", "templates/alert.md.j2", "playbooks", "templates"]


def _mutate(root: Path, target: str, how: str, data: bytes) -> None:
    path = root / target
    if how == "settings":  # the inventory names a settings file (whatever is there)
        inv = root / "inventory.yaml"
        if inv.is_file() and not inv.is_symlink():
            inv.write_text(inv.read_text(errors="replace").replace("settings: null", "settings: stack.yaml"))
        return
    if os.path.lexists(path):
        if path.is_dir() and not path.is_symlink():
            shutil.rmtree(path)
        else:
            path.unlink()
    path.parent.mkdir(parents=True, exist_ok=True) if path.parent.is_dir() or not os.path.lexists(path.parent) \
        else None
    if not path.parent.is_dir():
        return
    if how == "bytes":
        path.write_bytes(data)
    elif how == "empty":
        path.write_bytes(b"")
    elif how == "huge":
        with path.open("wb") as fh:
            fh.truncate(2 * 1024 * 1024)
    elif how == "loop":
        path.symlink_to(path.name)
    elif how == "dangling":
        path.symlink_to("nowhere")
    elif how == "fifo":
        _fifo(path)
    elif how == "dir":
        path.mkdir()
    elif how == "socket" and len(str(path)) < 100:
        _socket(path)
    elif how == "device":
        path.symlink_to("/dev/zero")
    elif how == "unreadable":
        path.write_bytes(data)
        path.chmod(0)


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(st.lists(st.tuples(st.sampled_from(TARGETS),
                          st.sampled_from(["bytes", "empty", "huge", "loop", "dangling", "fifo", "dir", "socket",
                                           "device", "unreadable", "settings"]),
                          st.one_of(st.binary(max_size=64), st.sampled_from([
                              b"version: 1\nname: x\n", b"\xff\xfe", b"a: [", b"*x", b"\x00", "é: ü".encode(),
                              "\ufeffversion: 1\n".encode("utf-16")]))),
                min_size=1, max_size=4))
def test_any_mutation_of_the_tree_is_reported_never_raised_nor_blocking(
        tmp_path_factory: pytest.TempPathFactory, mutations: list[tuple[str, str, bytes]]) -> None:
    root = tmp_path_factory.mktemp("tree")
    inventory = _config_tree(root)
    shutil.copytree(REPO / "templates", root / "templates", ignore=shutil.ignore_patterns("web"))
    for target, how, data in mutations:
        _mutate(root, target, how, data)
    result = _within(30, lambda: load_config(inventory, [root / "playbooks"], make_registry(), env={},
                                             templates_dir=root / "templates"))
    assert (result.config is None) == bool(result.diagnostics)
    for diag in result.diagnostics:
        assert diag.file and diag.message
        assert str(root) in diag.file or diag.file.startswith(str(inventory)), diag
    named = {d.file for d in result.diagnostics}
    for target in {t for t, _, _ in mutations if t == "inventory.yaml" or t.startswith("playbooks/")}:
        path = root / target
        if os.path.lexists(path) and not _regular(path) and (root / "playbooks").is_dir():
            assert str(path) in named, f"{target} is not a file and nothing says so: {result.diagnostics}"


def _regular(path: Path) -> bool:
    try:
        return stat.S_ISREG(os.stat(path).st_mode)
    except OSError:
        return False


EDITOR_LEFTOVERS = {
    ".#bot-health.yaml": None,  # Emacs lock: a symbolic link to nothing ("user@host.pid:boot")
    "#bot-health.yaml#": "version: 1\nname: [broken\n",  # Emacs auto-save
    "bot-health.yaml~": "version: 1\nname: bot-health\n",  # backup: the same play name again
    ".bot-health.yaml.swp": "b0VIM 8.2\x00\x00",  # Vim swap (binary)
    ".bot-health.yaml": "version: 2\n",  # a hidden file
    "emergency.yml.bak": "version: 1\nname: emergency\n",
    ".hidden.yml": "\x1b[31m",
}


def test_editor_lock_backup_and_hidden_files_are_skipped_and_said_at_debug(
        tmp_path: Path, registry: Registry, caplog: pytest.LogCaptureFixture) -> None:
    """What an editor leaves beside the file it edits is not a playbook: skipped as Ansible skips
    it, said in the log at debug level, never loaded or refused (issue 15, F12)."""
    books = tmp_path / "playbooks"
    shutil.copytree(GOOD / "playbooks", books)
    for name, text in EDITOR_LEFTOVERS.items():
        if text is None:
            os.symlink("root@box.4242:1733500000", books / name)
        else:
            (books / name).write_text(text, encoding="utf-8")
    with caplog.at_level("DEBUG", logger="agent.playbook.files"):
        result = load_config(GOOD / "inventory.yaml", [books], registry, env={})
    assert result.ok and not result.warnings, "\n".join(map(str, [*result.diagnostics, *result.warnings]))
    assert sorted(p.name for p in result.playbook_files) == sorted(p.name for p in (GOOD / "playbooks").iterdir())
    said = "\n".join(r.getMessage() for r in caplog.records if r.levelname == "DEBUG")
    for name in EDITOR_LEFTOVERS:
        assert f"skipped {books / name}" in said, said
