"""Issue 14 item 5 and issue 13 item 11: each supervised program gets only the variables it
needs, read back by supervisord's own configuration parser; the state files are private."""
from __future__ import annotations

import ast
import stat
import subprocess
from pathlib import Path

import pytest
import yaml
from supervisor.options import ServerOptions

from agent import stack as stack_mod
from agent.stack.environment import SETTINGS_DIGEST, SETTINGS_READ, conf_environment, program_environments
from agent.stack.files import secure_state
from botwarden.errors import ConfigError, OperationalError
from botwarden.settings import StackSettings

REPO = Path(__file__).resolve().parents[2]

TOKENS = {"BOTWARDEN_BOT_TOKEN": "bot-token-1", "BOTWARDEN_EXCHANGE_ADMIN_TOKEN": "admin-token-2",
          "BOTWARDEN_WEB_OPERATOR_PASSWORD": "operator-pw", "BOTWARDEN_BOT_API_WALLET_KEY": "0xbot-wallet",
          "BOTWARDEN_AGENT_API_WALLET_KEY": "0xagent-wallet"}
ENVIRON = {
    "PATH": "/usr/bin:/bin", "HOME": "/home/ops", "LC_ALL": "C.UTF-8",
    "SLACK_WEBHOOK_URL": 'slack://T0/B0/x%40y,z "quoted" end',  # %, a comma and a double quote
    "RELAY_PASSWORD": "it's 100% = ünïcode",  # a single quote
    "BOTWARDEN_PRIVATE_KEY": "0xsigning-key",
    "UNRELATED_SECRET": "nobody-needs-this",
    "HTTPS_PROXY": "http://proxy.example:3128",
    "BOTWARDEN_WEB_VIEWER_PASSWORD_ANA": "ana-pw",
}


def _world(root: Path) -> stack_mod.Stack:
    (root / "var" / "log").mkdir(parents=True)
    (root / "playbooks").mkdir()
    (root / "templates").mkdir()
    (root / "templates" / "supervisord.conf.j2").write_text(
        (Path(__file__).resolve().parents[2] / "templates" / "supervisord.conf.j2").read_text())
    (root / "templates" / "alert.md.j2").write_text("{{ env.get('TEMPLATE_VAR') }}")
    (root / "settings.yaml").write_text(yaml.safe_dump({"supervisor": {"socket": "var/s.sock"}}))
    (root / "inventory.yaml").write_text(yaml.safe_dump({
        "version": 1, "settings": "settings.yaml", "hosts": {"local": {}},
        "notify": {"targets": {"slack": {"url": "{{ env.SLACK_WEBHOOK_URL | default('') }}", "optional": True},
                               "mail": {"url": "mailtos://ops:{{ env['RELAY_PASSWORD'] }}@relay.example"}},
                   "routes": [{"name": "all", "targets": ["slack", "mail"]}]}}))
    (root / "playbooks" / "p.yaml").write_text(
        "version: 1\nname: p\nhosts: local\ntasks:\n  - command: {cmd: \"echo {{ env.PLAYBOOK_VAR }}\"}\n")
    return stack_mod.locate(root=root, inventory=root / "inventory.yaml")


def _environments_as_supervisord_reads_them(st: stack_mod.Stack, conf: str) -> dict[str, dict[str, str]]:
    st.conf_path.write_text(conf)
    options = ServerOptions()
    options.realize(args=["-c", str(st.conf_path)])
    return {pc.name: dict(pc.environment or {}) for group in options.process_group_configs
            for pc in group.process_configs}


def test_an_edit_that_changes_no_setting_restarts_no_program(tmp_path: Path) -> None:
    """The digest is of the settings as read: a comment added to the file (or its keys reordered)
    restarted every program on `agent stack up`, the trading bot and the exchange included (brk15,
    seen live); a changed setting still changes it."""
    st = _world(tmp_path)
    before = program_environments(st, ENVIRON, TOKENS)
    settings = tmp_path / "settings.yaml"
    settings.write_text("# the supervisor's socket, under var/\nsupervisor:   {socket: var/s.sock}\n")
    assert program_environments(stack_mod.locate(root=tmp_path, inventory=tmp_path / "inventory.yaml"), ENVIRON,
                                TOKENS) == before
    settings.write_text("supervisor: {socket: var/s.sock}\nbot: {port: 18082}\n")
    after = program_environments(stack_mod.locate(root=tmp_path, inventory=tmp_path / "inventory.yaml"), ENVIRON,
                                 TOKENS)
    assert after["bot"]["BOTWARDEN_SETTINGS_DIGEST"] != before["bot"]["BOTWARDEN_SETTINGS_DIGEST"]


@pytest.mark.parametrize(("setting", "value", "restarted"), [
    ("agent.store_grace", 12.0, {"agent", "web"}),
    ("web.session_hours", 8.0, {"agent", "web"}),
    ("inbox.port", 18026, {"inbox", "agent", "web"}),
    ("exchange.port", 13002, {"exchange", "bot", "agent", "web"}),
    ("bot.port", 18082, {"bot", "agent", "web"}),
    ("bot.risk.stop_loss_pct", 1.5, {"bot", "agent", "web"}),
    ("agent.api_wallet_key_env", "OTHER_AGENT_KEY", {"bot", "agent", "web"}),
    ("supervisor.logdir", "var/logs", {"inbox", "exchange", "bot", "agent", "web"}),
    ("var_dir", "state", {"inbox", "exchange", "bot", "agent", "web"}),
])
def test_an_edited_setting_restarts_only_the_programs_that_read_it(tmp_path: Path, setting: str, value: object,
                                                                    restarted: set[str]) -> None:
    """`agent stack up` restarts a program when the digest in its environment changed: of every
    setting, an agent-only one (agent.store_grace) restarted the trading bot and the exchange (seen
    live, brk15); each program's digest is of the settings it reads (SETTINGS_READ)."""
    st = _world(tmp_path)
    before = program_environments(st, ENVIRON, TOKENS)
    data = yaml.safe_load((tmp_path / "settings.yaml").read_text())
    *sections, leaf = setting.split(".")
    where = data
    for name in sections:
        where = where.setdefault(name, {})
    where[leaf] = value
    (tmp_path / "settings.yaml").write_text(yaml.safe_dump(data))
    after = program_environments(stack_mod.locate(root=tmp_path, inventory=tmp_path / "inventory.yaml"), ENVIRON,
                                 TOKENS)
    changed = {name for name in before if before[name].get(SETTINGS_DIGEST) != after[name].get(SETTINGS_DIGEST)}
    assert changed == restarted
    # the agent compares the digest of every setting at a start (agent.engine.settings_changes)
    assert after["agent"][SETTINGS_DIGEST] == stack_mod.locate(root=tmp_path, inventory=tmp_path / "inventory.yaml"
                                                               ).settings.digest()


PROGRAM_CODE = {
    # the bot's package without the exchange (its own program) and the drills (operator commands)
    "bot": [f for f in (REPO / "bot").rglob("*.py") if "exchange" not in f.parts and f.name != "drill.py"],
    "exchange": [*(REPO / "bot" / "exchange").rglob("*.py")],
    "inbox": [REPO / "agent" / "stack" / "inbox.py", REPO / "agent" / "cli" / "inbox_cmd.py"],
}


@pytest.mark.parametrize("role", sorted(PROGRAM_CODE))
def test_a_program_reads_no_section_of_the_settings_its_digest_leaves_out(role: str) -> None:
    """SETTINGS_READ is what each program reads: a section of the settings its code touches and
    its digest leaves out would be an edit `agent stack up` does not restart it for (the bot on its
    old port while the agent checks the new one)."""
    reads = SETTINGS_READ[role]
    assert reads is not None
    sections = set(StackSettings.model_fields) - {"root", "var_dir"}
    allowed = {name.split(".")[0] for name in reads}
    touched = []
    for path in PROGRAM_CODE[role]:
        tree = ast.parse(path.read_text(encoding="utf-8"))
        called = {id(node.func) for node in ast.walk(tree) if isinstance(node, ast.Call)}  # ledger.agent(...)
        touched += [f"{path.relative_to(REPO)}:{node.lineno}: {ast.unparse(node)}" for node in ast.walk(tree)
                    if isinstance(node, ast.Attribute) and node.attr in sections - allowed and id(node) not in called]
    assert touched == []


def test_each_program_gets_only_what_it_needs_read_back_exactly(tmp_path: Path) -> None:
    st = _world(tmp_path)
    conf = stack_mod.render_conf(st, environments=program_environments(st, ENVIRON, TOKENS))
    envs = _environments_as_supervisord_reads_them(st, conf)
    # the settings file's digest (not a secret): an edit to it restarts each program that reads it
    # (of the settings it reads: an edit of a setting it does not read restarts it not)
    read = {"BOTWARDEN_SETTINGS_DIGEST": st.settings.digest()}
    assert envs["inbox"] == {"BOTWARDEN_SETTINGS_DIGEST": st.settings.digest(SETTINGS_READ["inbox"])}
    assert envs["exchange"] == {"BOTWARDEN_EXCHANGE_ADMIN_TOKEN": "admin-token-2",
                                "BOTWARDEN_SETTINGS_DIGEST": st.settings.digest(SETTINGS_READ["exchange"])}
    assert envs["bot"] == {"BOTWARDEN_BOT_TOKEN": "bot-token-1", "BOTWARDEN_PRIVATE_KEY": "0xsigning-key",
                           "BOTWARDEN_BOT_API_WALLET_KEY": "0xbot-wallet", "HTTPS_PROXY": "http://proxy.example:3128",
                           "BOTWARDEN_SETTINGS_DIGEST": st.settings.digest(SETTINGS_READ["bot"])}
    assert envs["agent"] == {"BOTWARDEN_BOT_TOKEN": "bot-token-1", "BOTWARDEN_PRIVATE_KEY": "0xsigning-key",
                             "BOTWARDEN_AGENT_API_WALLET_KEY": "0xagent-wallet",
                             "HTTPS_PROXY": "http://proxy.example:3128",
                             "SLACK_WEBHOOK_URL": ENVIRON["SLACK_WEBHOOK_URL"],
                             "RELAY_PASSWORD": ENVIRON["RELAY_PASSWORD"], **read}
    # The web page loads the same configuration and runs plays: the agent's, and its sign-in passwords.
    assert envs["web"] == {**envs["agent"], "BOTWARDEN_WEB_OPERATOR_PASSWORD": "operator-pw",
                           "BOTWARDEN_WEB_VIEWER_PASSWORD_ANA": "ana-pw"}
    # Read by a task and by a template, but unset: nothing to pass; set, they are passed.
    more = program_environments(st, {**ENVIRON, "PLAYBOOK_VAR": "pv", "TEMPLATE_VAR": "tv"}, TOKENS)
    assert {"PLAYBOOK_VAR": "pv", "TEMPLATE_VAR": "tv"}.items() <= more["agent"].items()
    assert "nobody-needs-this" not in conf and "admin-token-2" not in conf.split("[program:bot]")[1]


def test_supervisord_itself_starts_without_any_secret(tmp_path: Path) -> None:
    base = stack_mod.base_environment({**ENVIRON, **TOKENS}, tmp_path)
    assert base == {"PATH": "/usr/bin:/bin", "HOME": "/home/ops", "LC_ALL": "C.UTF-8", "BOTWARDEN_ROOT": str(tmp_path)}


@pytest.mark.parametrize("value", ["line\nbreak", "both \" and '", '"starts with a quote', "ends with a quote'"])
def test_values_supervisord_cannot_carry_are_refused_by_name(value: str) -> None:
    with pytest.raises(ConfigError, match=r"\$SLACK_WEBHOOK_URL holds a character"):
        conf_environment({"SLACK_WEBHOOK_URL": value})
    assert conf_environment({"X": value}, mask=True) == 'X="***"'


def test_state_files_are_made_private_on_every_start(tmp_path: Path) -> None:
    st = _world(tmp_path)
    var = tmp_path / "var"
    var.chmod(0o755)
    files = [var / "agent.db", var / "agent.db-wal", var / "secrets.env", var / "bot.db"]
    for f in files:
        f.write_text("x")
        f.chmod(0o644)
    secure_state(st.settings)
    assert stat.S_IMODE(var.stat().st_mode) == 0o700
    assert {f.name: stat.S_IMODE(f.stat().st_mode) for f in files} == dict.fromkeys((f.name for f in files), 0o600)


def _immutable(path: Path, on: bool) -> bool:
    res = subprocess.run(["chattr", "+i" if on else "-i", str(path)], capture_output=True, check=False)
    return res.returncode == 0


def test_a_state_file_that_cannot_be_made_private_is_a_clear_error(tmp_path: Path) -> None:
    st = _world(tmp_path)
    db = tmp_path / "var" / "agent.db"
    db.write_text("x")
    db.chmod(0o644)
    if not _immutable(db, True):  # even root cannot chmod an immutable file: another owner's, in effect
        pytest.skip("chattr +i is not available here")
    try:
        with pytest.raises(OperationalError) as caught:
            secure_state(st.settings)
    finally:
        _immutable(db, False)
    message = str(caught.value)
    assert "could not be made private" in message and f"{db} is mode 0644, owned by uid" in message
    assert "chown them to this user" in message


def test_stack_up_refuses_a_guard_wallet_that_is_the_bots_before_starting_anything(tmp_path: Path) -> None:
    """The guard signs with its own API wallet (breaker x4): `agent stack up` refuses to hand the
    bot's key to both programs, naming the two settings and not the key, and starts nothing."""
    st = _world(tmp_path)
    shared = "0x" + "3d" * 32
    with pytest.raises(ConfigError) as refused:
        stack_mod.up(st, wait=1, environ={**ENVIRON, "BOTWARDEN_BOT_API_WALLET_KEY": shared,
                                          "BOTWARDEN_AGENT_API_WALLET_KEY": shared})
    said = f"{refused.value.message} {refused.value.hint}"
    assert "agent.api_wallet_key_env ($BOTWARDEN_AGENT_API_WALLET_KEY)" in said
    assert "bot.api_wallet_key_env ($BOTWARDEN_BOT_API_WALLET_KEY)" in said and "3d3d" not in said
    assert not st.conf_path.exists() and not stack_mod.is_up(st)


def test_an_edited_settings_file_changes_every_program_that_reads_it(tmp_path: Path) -> None:
    """`supervisorctl update` (what `agent stack up` runs on a stack that is up) restarts only the
    programs whose section changed: an edited `bot.port` left the bot on the old port while the
    agent checked the new one (brk15). The events listener does not read the settings; nor do the
    inbox and the exchange read `bot.port` (restarted for it, the exchange dropped the bot's
    websocket for nothing)."""
    st = _world(tmp_path)
    before = _sections(stack_mod.render_conf(st, environments=program_environments(st, ENVIRON, TOKENS)))
    (tmp_path / "settings.yaml").write_text(yaml.safe_dump({"supervisor": {"socket": "var/s.sock"},
                                                            "bot": {"port": 18082}}))
    st = stack_mod.locate(root=tmp_path, inventory=tmp_path / "inventory.yaml")
    after = _sections(stack_mod.render_conf(st, environments=program_environments(st, ENVIRON, TOKENS)))
    assert {name for name in before if before[name] != after.get(name)} == {"program:bot", "program:agent", "program:web"}


def _sections(conf: str) -> dict[str, str]:
    import configparser

    parser = configparser.RawConfigParser()
    parser.read_string(conf)
    return {name: repr(sorted(parser.items(name))) for name in parser.sections()}
