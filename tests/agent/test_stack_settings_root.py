"""`agent stack up` and the programs it starts read one stack settings file the same way (brk15):
a settings file outside the checkout (named by `$BOTWARDEN_SETTINGS`, or by the inventory in a
subdirectory) resolved its relative paths against the checkout for supervisord's configuration
and socket, and against the file's own directory in the agent, the bot and the web page, so the
agent looked for supervisord's socket where there was none (every supervisor check UNKNOWN, no
restart of a crashed bot possible) and nothing said why."""
from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from agent import stack as stack_mod
from agent.modules.registry import default_registry
from agent.playbook import load_config
from botwarden.settings import load_settings

SETTINGS = {"var_dir": "state", "supervisor": {"socket": "state/s.sock", "config": "state/supervisord.conf",
                                               "logdir": "state/log"}}


def _checkout(root: Path, settings: str | None) -> Path:
    root.mkdir(parents=True, exist_ok=True)
    (root / "playbooks").mkdir()
    (root / "playbooks" / "p.yaml").write_text("version: 1\nname: p\nhosts: local\ntasks:\n"
                                               "  - command: {argv: ['true']}\n")
    (root / "inventory.yaml").write_text(yaml.safe_dump({
        "version": 1, "settings": settings, "hosts": {"local": {}},
        "notify": {"targets": {"inbox": {"url": "json://{{ inbox.host }}:{{ inbox.port }}/"}},
                   "routes": [{"name": "all", "targets": ["inbox"]}]}}))
    return root / "inventory.yaml"


@pytest.mark.parametrize("where", ["env", "inventory-subdirectory"])
def test_the_stack_and_the_agent_agree_on_every_settings_path(tmp_path: Path, where: str,
                                                              monkeypatch: pytest.MonkeyPatch) -> None:
    if where == "env":
        settings = tmp_path / "etc" / "botwarden" / "settings.yaml"
        inventory = _checkout(tmp_path / "checkout", None)
        monkeypatch.setenv("BOTWARDEN_SETTINGS", str(settings))
    else:
        settings = tmp_path / "checkout" / "conf" / "stack.yaml"
        inventory = _checkout(tmp_path / "checkout", "conf/stack.yaml")
        monkeypatch.delenv("BOTWARDEN_SETTINGS", raising=False)
    settings.parent.mkdir(parents=True, exist_ok=True)
    settings.write_text(yaml.safe_dump(SETTINGS))
    monkeypatch.chdir(tmp_path / "checkout")

    stack = stack_mod.locate(inventory=inventory)
    agent = load_config(inventory, [tmp_path / "checkout" / "playbooks"], default_registry(), env={}).settings
    bot = load_settings(str(stack.settings_path))  # `bot run --settings PATH`, as the stack starts it
    assert agent is not None
    for s in (agent, bot):
        assert s.path(s.supervisor.socket) == stack.socket_path
        assert s.path(s.supervisor.logdir) == stack.settings.path(stack.settings.supervisor.logdir)
        assert s.secrets_path == stack.settings.secrets_path
    assert stack.socket_path == settings.parent / "state" / "s.sock"  # the documented root: the file's directory


def test_a_var_dir_moved_without_the_state_paths_is_a_warning_naming_each(tmp_path: Path,
                                                                        monkeypatch: pytest.MonkeyPatch) -> None:
    """`var_dir: /var/lib/botwarden` moved the secrets, the snapshot and the backups, while the
    databases, sockets, logs and the halt file stayed under `<root>/var`: the state split in two,
    silently (brk15). Moving them for the operator could lose a halt in force: it is said instead."""
    monkeypatch.delenv("BOTWARDEN_SETTINGS", raising=False)
    inventory = _checkout(tmp_path / "checkout", "settings.yaml")
    written = {"var_dir": str(tmp_path / "state"), "bot": {"db": str(tmp_path / "state" / "bot.db")}}
    (tmp_path / "checkout" / "settings.yaml").write_text(yaml.safe_dump(written))
    result = load_config(inventory, [tmp_path / "checkout" / "playbooks"], default_registry(), env={})
    assert not result.diagnostics, "\n".join(map(str, result.diagnostics))
    [said] = [w for w in result.warnings if "var_dir" in w.message]
    assert (Path(said.file).name, said.line) == ("settings.yaml", 3)  # yaml.safe_dump sorts: bot (2 lines) first
    assert "12 path(s) of the runtime state stay under var/ of the root" in said.message
    assert "bot.halt_file" in said.message and "bot.db" not in said.message.split(": ", 1)[1]

    every = {section: {name: f"{tmp_path}/state/{name}" for name in names} for section, names in {
        "supervisor": ["socket", "config", "logdir"], "exchange": ["state"],
        "bot": ["db", "control_socket", "lock_file", "ws_outage_file", "heartbeat_file", "halt_file"],
        "agent": ["db", "events_socket"], "inbox": ["file"]}.items()}
    (tmp_path / "checkout" / "settings.yaml").write_text(yaml.safe_dump({"var_dir": str(tmp_path / "state"), **every}))
    result = load_config(inventory, [tmp_path / "checkout" / "playbooks"], default_registry(), env={})
    assert not result.diagnostics and not [w for w in result.warnings if "var_dir" in w.message]


@pytest.mark.parametrize("command", ["up", "down", "status", "render"])
@pytest.mark.parametrize(("written", "said"), [
    ("bot: {port: \"8081\"}\n", "bot.port: Input should be a valid integer"),  # quoted: text, not a number
    ("bot: {risk: {stop_loss_pct: 100}}\n", "bot.risk: rule stop-loss-below-100"),
    ("bot: {prot: 8081}\n", "bot.prot: Extra inputs are not permitted"),
    ("exchange: {port: 8081}\nbot: {port: 8081}\n", "exchange.port and bot.port are both 8081"),
])
def test_a_settings_file_with_a_wrong_value_stops_agent_stack_with_its_fields_not_a_bug(
        tmp_path: Path, command: str, written: str, said: str, capsys: pytest.CaptureFixture[str]) -> None:
    """A settings file that YAML reads but that breaks a type or a rule made every `agent stack`
    command an internal error (exit 250, pydantic's text with a URL per line, brk15): no way to
    bring the stack up or down, and nothing said where to look."""
    from agent.cli.main import main
    from botwarden.errors import ExitCode

    root = tmp_path / "checkout"
    inventory = _checkout(root, "settings.yaml")
    (root / "settings.yaml").write_text(written)
    code = main(["stack", command, "--inventory", str(inventory)])
    out = capsys.readouterr()
    text = out.out + out.err
    assert code == ExitCode.CONFIG, text
    assert said in text and "internal error" not in text and "errors.pydantic.dev" not in text, text
    assert "`agent validate` shows each at its line" in text, text


def _never_blocks(fn, fifo: Path):  # type: ignore[no-untyped-def]
    """``fn()``'s outcome (its value, or the exception it raised), or a failure when it blocks: a FIFO
    opened for reading waits for a writer for ever (the writer opened here ends the wait)."""
    import concurrent.futures
    import os

    with concurrent.futures.ThreadPoolExecutor(1) as pool:
        future = pool.submit(fn)
        try:
            return future.result(timeout=20) if future.exception(timeout=20) is None else future.exception()
        except concurrent.futures.TimeoutError:
            os.close(os.open(fifo, os.O_WRONLY | os.O_NONBLOCK))  # the reader's open returns; it reads EOF
            pytest.fail(f"blocked on {fifo}")


@pytest.mark.parametrize("kind", ["fifo", "device", "directory"])
def test_a_settings_file_that_is_no_file_is_refused_without_blocking(tmp_path: Path, kind: str) -> None:
    """A settings path naming a FIFO, a device or a directory: `agent validate` (which reads the
    stack's secrets through agent stack's locate), every `agent stack` command and the bot read it
    with a plain read: a FIFO hung them, /dev/zero read for ever, the machine's memory with it
    (brk15). Refused by what it is, as the agent's loader refuses it."""
    import os

    from botwarden.errors import ConfigError

    fifo = tmp_path / "fifo.yaml"
    os.mkfifo(fifo)
    # /dev/null: read plainly, the defaults ran silently (/dev/zero, read for ever, is not tried here)
    path = {"fifo": fifo, "device": Path("/dev/null"), "directory": tmp_path}[kind]
    said = {"fifo": "a named pipe (FIFO), not a file", "device": "a character device, not a file",
            "directory": "a directory, not a file"}[kind]
    outcome = _never_blocks(lambda: load_settings(str(path)), fifo)
    assert isinstance(outcome, ConfigError) and said in outcome.message, outcome


def test_agent_stack_up_reads_no_playbook_that_is_a_fifo(tmp_path: Path) -> None:
    """agent stack up reads the playbooks for the environment variables they name: a FIFO among them
    hung it (agent validate names the FIFO; stack up passes over it)."""
    import os

    from agent.stack.environment import referenced_variables

    root = tmp_path / "checkout"
    inventory = _checkout(root, None)
    fifo = root / "playbooks" / "half-copied.yaml"
    os.mkfifo(fifo)
    names = _never_blocks(lambda: referenced_variables(inventory, root / "playbooks", root / "templates"), fifo)
    assert isinstance(names, set), names


@pytest.mark.parametrize("named", ["''", "' '", "3", "[settings.yaml]", "{file: settings.yaml}"])
def test_an_inventory_whose_settings_names_no_file_stops_agent_stack(tmp_path: Path, named: str,
                                                                     capsys: pytest.CaptureFixture[str]) -> None:
    """settings: '' (a path deleted, not the key) is an error for the agent (agent validate), while
    agent stack up took it as no settings file and brought the programs up on the built-in ones,
    default ports included: another stack's, or not those the agent checks (brk15)."""
    from agent.cli.main import main
    from botwarden.errors import ExitCode

    root = tmp_path / "checkout"
    inventory = _checkout(root, "settings.yaml")
    inventory.write_text(inventory.read_text().replace("settings: settings.yaml", f"settings: {named}"))
    assert f"settings: {named}" in inventory.read_text()
    code = main(["stack", "render", "--inventory", str(inventory)])
    out = capsys.readouterr()
    assert code == ExitCode.CONFIG, out.out + out.err
    assert "names no settings file" in out.err and "settings: null for the built-in settings" in out.err, out.err


def _bomb() -> str:
    """A kilobyte of YAML that is ten billion strings to whatever reads every value."""
    lines = ['a0: &a0 ["x", "x", "x", "x", "x", "x", "x", "x", "x", "x"]']
    lines += [f"a{i}: &a{i} [{', '.join([f'*a{i - 1}'] * 10)}]" for i in range(1, 10)]
    return "\n".join(lines) + "\n"


DEEP = "x: " + "[" * 5000 + "]" * 5000 + "\n"


@pytest.mark.parametrize("what", ["bomb", "deep"])
def test_a_yaml_bomb_or_a_deep_nesting_never_hangs_nor_crashes_the_plain_readers(tmp_path: Path, what: str) -> None:
    """The settings file and the playbooks are read plainly (yaml.safe_load) by the bot, the
    exchange, `agent stack` (the settings; every playbook for the variables it names) and the
    inbox: a YAML bomb in the settings file made `bot run` spin for ever (pydantic's message
    on its unknown keys walks every value), one in playbooks/ made `agent stack up` spin for ever,
    a deep nesting ended `agent stack up` with an internal error (RecursionError). Held to the
    bounds agent validate holds them to (r15b). Run in a child: a hang cannot be stopped in a thread."""
    import subprocess
    import sys

    root = tmp_path / "checkout"
    inventory = _checkout(root, "settings.yaml")
    text = _bomb() if what == "bomb" else DEEP
    (root / "settings.yaml").write_text(text)
    (root / "playbooks" / "pasted.yaml").write_text(text)
    code = f"""
import sys
from pathlib import Path
from botwarden.errors import ConfigError
from botwarden.settings import load_settings
from agent.stack.environment import referenced_variables
root = Path({str(root)!r})
try:
    load_settings(str(root / "settings.yaml"))
except ConfigError as exc:
    print("settings:", exc.message)
except Exception as exc:  # its text is not printed: pydantic's walks every value of a bomb
    print("settings: not refused:", type(exc).__name__)
(root / "settings.yaml").write_text("bot: {{port: 25555}}\\n")
print("names:", sorted(referenced_variables(Path({str(inventory)!r}), root / "playbooks", root / "templates")))
"""
    try:
        done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    except subprocess.TimeoutExpired:
        pytest.fail(f"a {what} in the settings file or a playbook hung its plain reader")
    assert done.returncode == 0, done.stderr[-2000:]
    said = "a YAML bomb?" if what == "bomb" else "nested more than 64 levels deep"
    assert f"settings: {root / 'settings.yaml'}: " in done.stdout and said in done.stdout, done.stdout
    assert "names: [" in done.stdout, done.stdout
