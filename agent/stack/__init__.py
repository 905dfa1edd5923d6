"""Bring the supervised stack up and down: render supervisord.conf, start supervisord.

``make run`` calls :func:`up`. The programs are the paper exchange, the bot, the agent and the
local alert inbox; their commands, ports and paths all come from the stack settings. Each gets
only the environment variables it needs (:mod:`agent.stack.environment`), and the state files
are private, set and checked on every ``up`` (:mod:`agent.stack.files`).
"""
from __future__ import annotations

import os
import secrets
import shutil
import socket
import subprocess
import sys
import time
import xmlrpc.client
from collections.abc import Callable, Collection, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import jinja2
import yaml
from pydantic import ValidationError

from agent.stack.environment import base_environment, conf_environment, program_environments
from agent.stack.files import secure_state, write_applied_settings, write_private
from botwarden.errors import ConfigError, OperationalError
from botwarden.settings import StackSettings, load_settings, read_secrets_file, settings_problems

TEMPLATE = "supervisord.conf.j2"


@dataclass(frozen=True)
class Stack:
    """Where everything lives for one checkout."""

    root: Path
    settings: StackSettings
    settings_path: Path | None
    inventory: Path
    playbooks: Path
    templates: Path

    @property
    def conf_path(self) -> Path:
        return self.settings.path(self.settings.supervisor.config)

    @property
    def socket_path(self) -> Path:
        return self.settings.path(self.settings.supervisor.socket)

    @property
    def secrets_file(self) -> Path:
        return self.settings.secrets_path


def locate(root: Path | None = None, inventory: Path | None = None) -> Stack:
    """Find the stack of the checkout at ``root`` (default: the current directory)."""
    from botwarden import safe_yaml
    from botwarden.safe_files import FileProblem, read_file, real_path

    root = real_path(root or Path.cwd())
    inventory = inventory or root / "inventory.yaml"
    settings_path: str | None = None
    if os.path.lexists(inventory):
        try:
            data = safe_yaml.load(read_file(inventory).decode("utf-8")) or {}
        except FileProblem as exc:
            raise ConfigError(f"{inventory}: {exc.message}", hint=exc.hint or "run `agent validate` for details") \
                from None
        except safe_yaml.TooLargeError as exc:
            raise ConfigError(f"{inventory}: {exc}", hint="run `agent validate` for details") from None
        except (yaml.YAMLError, UnicodeDecodeError) as exc:
            raise ConfigError(f"{inventory}: not valid YAML", hint="run `agent validate` for details") from exc
        named = data.get("settings") if isinstance(data, Mapping) else None
        if named is not None and (not isinstance(named, str) or not named.strip()):
            # as the agent reads it (an error there): not the built-in settings, whose ports may be another stack's
            raise ConfigError(f"{inventory}: settings: {named!r} names no settings file",
                              hint="write the path of the stack settings file (settings: settings.yaml), or "
                                   "settings: null for the built-in settings; `agent validate` shows the line")
        if named:
            settings_path = str(real_path(inventory).parent / named)
    named_by = f"the `settings:` of {inventory}"
    if settings_path is None and os.environ.get("BOTWARDEN_SETTINGS"):
        settings_path, named_by = os.environ["BOTWARDEN_SETTINGS"], "$BOTWARDEN_SETTINGS"
    # A settings file's relative paths are relative to its own directory (its `root:` when it
    # writes one), as the agent, the bot and the web page read it; only the built-in settings
    # are rooted at the checkout. Rooting a file elsewhere at the checkout put supervisord's
    # socket where the agent did not look for it.
    try:
        settings = load_settings(settings_path, root=None if settings_path else str(root), named_by=named_by,
                                 empty_ok=False)
    except ValidationError as exc:  # a value of the wrong type, a broken rule: exit 3 naming each, never a bug
        raise ConfigError(f"{settings_path or 'the built-in settings'}: {settings_problems(exc)}",
                          hint="`agent validate` shows each at its line; fix them, then run this again") from None
    return Stack(root, settings, Path(settings_path) if settings_path else None, inventory, root / "playbooks",
                 root / "templates")


def bin_dir() -> Path:
    """The directory of this interpreter's console scripts (the venv's ``bin``)."""
    return Path(sys.executable).parent


def programs(stack: Stack, environments: Mapping[str, Mapping[str, str]] | None = None, *,
             mask: bool = False) -> list[dict[str, Any]]:
    """The supervised programs, in start order, each with its ``environment=`` line (from
    ``environments``: program -> variables; ``mask`` shows every value as ``***``)."""
    made = _programs(stack)
    for p in made:
        p["environment"] = conf_environment((environments or {}).get(p["name"], {}), mask=mask)
    return made


def _programs(stack: Stack) -> list[dict[str, Any]]:
    # Which secrets each program gets (each API wallet key only its own program's) is decided by
    # agent.stack.environment: supervisord itself starts with none of them.
    b = bin_dir()
    s = stack.settings
    settings_arg = f" --settings {stack.settings_path}" if stack.settings_path else ""
    return [
        {"name": s.inbox.program, "priority": 10, "command": f"{b}/agent inbox --inventory {stack.inventory}"},
        {"name": s.exchange.program, "priority": 20, "command": f"{b}/bot paper-exchange{settings_arg}"},
        # No autorestart for the bot: the agent restarts it under a budget (a crash loop must end
        # in a hand-over, not in supervisord restarting it forever).
        {"name": s.bot.program, "command": f"{b}/bot run{settings_arg}", "priority": 30,
         "stopwaitsecs": 10, "autorestart": "false"},
        {
            "name": s.agent.program,
            "command": f"{b}/agent run --inventory {stack.inventory} {stack.playbooks}",
            "priority": 40,
            "stopwaitsecs": 15,
        },
        # The operator's web page (agent/web): read-only on the store; the agent never needs it. It
        # runs plays in-process, so it signs exchange actions with the agent's wallet, never the bot's.
        {"name": s.web.program, "command": f"{b}/agent web --inventory {stack.inventory}",
         "priority": 50, "stopwaitsecs": 40},
    ]


def eventlisteners(stack: Stack) -> list[dict[str, Any]]:
    """supervisord event listeners: PROCESS_STATE forwarded to the agent (issue 6, detection)."""
    sock = stack.settings.path(stack.settings.agent.events_socket)
    return [{"name": "agent-events", "command": f"{bin_dir()}/agent events-listener --socket {sock}",
             "events": "PROCESS_STATE", "priority": 5}]


def render_conf(stack: Stack, *, nodaemon: bool = False, environments: Mapping[str, Mapping[str, str]] | None = None,
                mask: bool = False, only: Collection[str] | None = None) -> str:
    """The supervisord.conf of ``stack``; ``environments`` as :func:`programs` takes them;
    ``only``: just the programs of those names."""
    env = jinja2.Environment(
        loader=jinja2.FileSystemLoader(str(stack.templates)),
        undefined=jinja2.StrictUndefined,
        keep_trailing_newline=True,
    )
    tv = stack.settings.template_vars()
    return env.get_template(TEMPLATE).render(
        **tv,
        root=str(stack.root),
        logdir=str(stack.settings.path(stack.settings.supervisor.logdir)),
        nodaemon=nodaemon,
        programs=[p for p in programs(stack, environments, mask=mask) if only is None or p["name"] in only],
        eventlisteners=eventlisteners(stack),
    )


def secret_generators(stack: Stack) -> dict[str, Callable[[], str]]:
    """The secrets the stack generates when they are not exported: name -> how."""
    s = stack.settings
    token = lambda: secrets.token_urlsafe(24)  # noqa: E731
    key = lambda: "0x" + secrets.token_hex(32)  # noqa: E731
    generators = dict.fromkeys((s.bot.control_token_env, s.exchange.admin_token_env, s.web.operator_password_env,
                                s.web.viewer_password_env), token)
    if s.bot.network == "paper":
        generators.update({s.bot.api_wallet_key_env: key, s.agent.api_wallet_key_env: key})
    return generators


def token_names(stack: Stack) -> list[str]:
    """The secrets the stack generates when they are not exported."""
    return list(secret_generators(stack))


def ensure_secrets(stack: Stack) -> dict[str, str]:
    """Tokens the stack needs, from the environment or generated once into var/secrets.env (0600).

    A generated token is only for this machine's paper stack; an operator running for real sets
    them in the environment (they then win over the file). On paper the bot's and the agent's API
    wallet keys are generated the same way (off paper the operator approves and sets them).
    """
    generators = secret_generators(stack)
    stored = read_secrets_file(stack.secrets_file)
    changed = False
    for name, generate in generators.items():
        if name not in stored:
            stored[name] = generate()
            changed = True
    if changed:
        text = "# generated by `agent stack up`; environment variables of the same name win\n"
        write_private(stack.secrets_file, text + "".join(f"{k}={v}\n" for k, v in stored.items()))
    return {k: os.environ.get(k) or v for k, v in stored.items()}


def with_secrets(environ: Mapping[str, str], secrets: Mapping[str, str]) -> dict[str, str]:
    """The one precedence everywhere (the same-key rule, the wallets' approval, the programs, an
    operator's `agent` command, `agent validate`): a variable set (non-empty) in the environment
    wins; ``var/secrets.env`` fills what the environment lacks or leaves empty."""
    return {**environ, **{k: v for k, v in secrets.items() if v and not environ.get(k)}}


def proxy(stack: Stack, timeout: float = 5.0) -> Any:
    from supervisor.xmlrpc import SupervisorTransport

    transport = SupervisorTransport(None, None, f"unix://{stack.socket_path}")
    transport.timeout = timeout  # type: ignore[attr-defined]
    return xmlrpc.client.ServerProxy("http://127.0.0.1", transport=transport)


def is_up(stack: Stack) -> bool:
    if not stack.socket_path.exists():
        return False
    try:
        return proxy(stack).supervisor.getState()["statename"] == "RUNNING"
    except Exception:  # noqa: BLE001 - a stale socket or a dead supervisord: not up
        return False


def up(stack: Stack, *, wait: float = 30.0, environ: Mapping[str, str] | None = None) -> list[dict[str, Any]]:
    """Render the config and start supervisord, or apply the new config if it already runs.

    ``environ`` (default ``os.environ``) is where the programs' variables come from; a program
    whose variables changed is restarted by ``supervisorctl update``. Raises
    :class:`OperationalError` when a state file cannot be made private.
    """
    environ = dict(os.environ if environ is None else environ)
    secure_state(stack.settings)
    stack.settings.path(stack.settings.supervisor.logdir).mkdir(mode=0o700, parents=True, exist_ok=True)
    tokens = ensure_secrets(stack)
    shared = stack.settings.shared_key_problem(with_secrets(environ, tokens))
    if shared is not None:
        raise ConfigError(shared, hint=f"or unset ${stack.settings.agent.api_wallet_key_env}: the agent then signs "
                                        "with the account's own key")
    environments = program_environments(stack, environ, tokens)
    conf = render_conf(stack, environments=environments)
    if stack.settings_path is not None:  # what the programs will run (their digest): an agent without a
        write_applied_settings(stack.settings)  # last good configuration restarting past an edit runs these
    # A first start on paper brings up the exchange alone, approves the API wallets, then the rest:
    # a bot and an agent started first were refused by the exchange until the approval landed, and
    # the agent's checks read that as revoked credentials and ran the emergency on a fresh install.
    # Approvals are kept in the exchange's state file, so later starts need no such order.
    wallets_first = not is_up(stack) and stack.settings.bot.network == "paper"
    first = {stack.settings.inbox.program, stack.settings.exchange.program}
    write_private(stack.conf_path, render_conf(stack, environments=environments, only=first) if wallets_first
                  else conf)
    secure_state(stack.settings)  # and checked: secrets.env and the config just written included
    link = stack.root / "supervisord.conf"  # so a plain `supervisorctl status` finds it from the root
    if link.is_symlink() or not link.exists():
        if link.is_symlink():
            link.unlink()
        link.symlink_to(stack.conf_path)
    env = base_environment(environ, stack.root)  # supervisord and supervisorctl: nothing secret
    ctl = [str(bin_dir() / "supervisorctl"), "-c", str(stack.conf_path)]
    if is_up(stack):
        subprocess.run([*ctl, "update"], check=False, env=env, capture_output=True, timeout=30)
    else:
        if stack.socket_path.exists():
            stack.socket_path.unlink()  # stale socket of a dead supervisord
        supervisord = shutil.which("supervisord", path=str(bin_dir())) or "supervisord"
        res = subprocess.run([supervisord, "-c", str(stack.conf_path)], env=env, capture_output=True,
                             text=True, timeout=30)
        if res.returncode != 0:
            raise OperationalError(f"supervisord did not start: {res.stderr.strip() or res.stdout.strip()}",
                                   hint=f"see {stack.settings.path(stack.settings.supervisor.logdir)}/supervisord.log")
    if wallets_first:
        # The approval needs the exchange answering, not supervisord's RUNNING (its ``startsecs``
        # later): approving as soon as the port listens takes ~2 s off every first start.
        wait_listening(stack, wait)
        approve_api_wallets(stack, with_secrets(environ, tokens), wait)  # this process signs with the account's key
        write_private(stack.conf_path, conf)
        subprocess.run([*ctl, "update"], check=False, env=env, capture_output=True, timeout=30)
    infos = wait_running(stack, wait)
    if not wallets_first:
        approve_api_wallets(stack, with_secrets(environ, tokens), wait)
    return infos


EXCHANGE_START_BOUND_S = 180.0
"""How long ``stack up`` waits for a paper exchange that runs but does not answer yet (a cold
first start on a loaded two-core machine was seen taking 34-43 s: past the 30 s ``wait``, the
approval gave up, the bot never traded and the credentials check paged on a fresh install)."""


def approve_api_wallets(stack: Stack, environ: Mapping[str, str], wait: float) -> None:
    """On paper, approve the bot's and the agent's API wallets with the account's key (what an
    operator does once in Hyperliquid's app), retrying while the exchange starts. The bot waits
    for its approval before trading. Done by the bot's own command (``bot approve-wallets``):
    the agent never imports the bot.

    Any failure is retried for ``wait`` seconds; past that, only an exchange that cannot be
    reached yet while its program is alive (STARTING or RUNNING) is waited for, up to
    :data:`EXCHANGE_START_BOUND_S`, saying so once."""
    cmd = [str(bin_dir() / "bot"), "approve-wallets"]
    if stack.settings_path is not None:
        cmd += ["--settings", str(stack.settings_path)]
    started = time.monotonic()
    told = False
    while True:
        limit = max(5.0, wait)
        try:
            res = subprocess.run(cmd, env=dict(environ), cwd=stack.root, capture_output=True, text=True,
                                 timeout=limit, check=False)
        except subprocess.TimeoutExpired:  # connected, no answer: an exchange still loading (or hung)
            why = f"cannot reach the exchange: no answer in {limit:.0f}s"
        else:
            if res.returncode == 0:
                return
            why = (res.stderr.strip().splitlines() or [f"exit code {res.returncode}"])[-1]
        waited = time.monotonic() - started
        if waited > wait:
            starting = "cannot reach the exchange" in why and _exchange_alive(stack)
            if not starting or waited > max(wait, EXCHANGE_START_BOUND_S):
                raise OperationalError(
                    f"API wallets not approved: {why}",
                    hint="check the exchange program, then `bot drill approve bot` and `bot drill approve agent`")
            if not told:
                told = True
                print(f"the paper exchange runs but does not answer yet after {waited:.0f}s (a first start "
                      f"compiles and loads its libraries): waiting up to {EXCHANGE_START_BOUND_S:.0f}s",
                      file=sys.stderr, flush=True)
        time.sleep(0.3)


def _exchange_alive(stack: Stack) -> bool:
    try:
        info = proxy(stack).supervisor.getProcessInfo(stack.settings.exchange.program)
    except Exception:  # noqa: BLE001 - supervisord gone or no such program: not starting
        return False
    return info.get("statename") in ("STARTING", "RUNNING")


def wait_listening(stack: Stack, wait: float) -> None:
    """Until the paper exchange accepts connections on its port, or its program is neither
    starting nor running (what :func:`approve_api_wallets` then says), or ``wait`` seconds."""
    deadline = time.monotonic() + wait
    address = (stack.settings.exchange.host.strip("[]"), stack.settings.exchange.port)
    checked = 0.0
    while time.monotonic() < deadline:
        try:
            with socket.create_connection(address, timeout=1.0):
                return
        except OSError:
            pass
        if time.monotonic() - checked >= 1.0:  # supervisord asked once a second, the port more often
            checked = time.monotonic()
            try:
                state = proxy(stack).supervisor.getProcessInfo(stack.settings.exchange.program)["statename"]
            except Exception:  # noqa: BLE001 - socket not there yet
                state = "STARTING"
            if state not in ("STARTING", "RUNNING", "BACKOFF"):
                return
        time.sleep(0.05)


def wait_running(stack: Stack, wait: float) -> list[dict[str, Any]]:
    deadline = time.monotonic() + wait
    infos: list[dict[str, Any]] = []
    while time.monotonic() < deadline:
        try:
            infos = proxy(stack).supervisor.getAllProcessInfo()
        except Exception:  # noqa: BLE001 - socket not there yet
            time.sleep(0.2)
            continue
        if infos and all(i["statename"] in ("RUNNING", "FATAL") for i in infos):
            break
        time.sleep(0.3)
    return infos


def down(stack: Stack, *, wait: float = 30.0) -> bool:
    """Stop every program and supervisord. Returns False if it was not running."""
    if not is_up(stack):
        return False
    try:
        proxy(stack, timeout=wait).supervisor.shutdown()
    except Exception:  # noqa: BLE001 - shutdown may drop the connection as it exits
        pass
    deadline = time.monotonic() + wait
    while time.monotonic() < deadline and stack.socket_path.exists():
        time.sleep(0.2)
    return True
