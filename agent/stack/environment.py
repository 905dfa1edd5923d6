"""What each supervised program finds in its environment: only the variables it needs.

supervisord itself is started with :data:`BASE_VARIABLES` only; each program gets the rest as
its own ``environment=`` line in ``supervisord.conf`` (mode 0600, in the 0700 ``var/``):

* the inbox and the events listener: nothing more;
* the paper exchange: the variables named by the ``exchange.*_env`` settings (its admin token);
* the bot: the ``bot.*_env`` settings (control token, signing key, its API wallet key) and the
  network variables (proxies, CA bundles);
* the agent: the ``bot.*_env`` settings but the bot's API wallet key, the ``agent.*_env``
  settings (its own API wallet key), the network variables, and every
  variable its configuration reads by name (``env.X``, ``env['X']``, ``env.get('X')`` in the
  inventory, the playbooks and the templates: :func:`referenced_variables`). A name computed at
  run time cannot be known; export such a variable under a name written literally;
* the web page: what the agent gets (it loads the same configuration and runs plays as the
  operator) and the ``web.*_env`` settings (the sign-in passwords);
* every program that reads the stack settings file: the digest of the settings it reads
  (:func:`settings_digest`, :data:`SETTINGS_READ`), so ``supervisorctl update`` restarts it when
  one of them changed, and only then.

Values come from the environment of ``agent stack up`` (``make run``), the stack's tokens from
``var/secrets.env`` unless exported. Because they are in the rendered file, ``supervisorctl
update`` sees a changed value as a changed program and restarts that program: a
``SLACK_WEBHOOK_URL`` exported before ``make run`` reaches the agent even when the stack was
already up (supervisord's own environment never changes after it started).
"""
from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any

import jinja2
import yaml

from agent.rendering import env_references
from botwarden import safe_yaml
from botwarden.errors import ConfigError
from botwarden.safe_files import FileProblem, read_file
from botwarden.settings import StackSettings

BASE_VARIABLES = ("PATH", "HOME", "USER", "LOGNAME", "LANG", "LANGUAGE", "TZ", "TMPDIR")
"""Every program (and supervisord) gets these, plus ``LC_*`` and ``BOTWARDEN_ROOT``/``_SETTINGS``."""
NETWORK_VARIABLES = ("HTTP_PROXY", "HTTPS_PROXY", "NO_PROXY", "ALL_PROXY", "http_proxy", "https_proxy",
                     "no_proxy", "all_proxy", "SSL_CERT_FILE", "SSL_CERT_DIR", "REQUESTS_CA_BUNDLE")
"""For the programs that talk to the outside (the bot off paper, the agent's targets)."""
_NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")


def base_environment(environ: Mapping[str, str], root: Path) -> dict[str, str]:
    """supervisord's own environment: nothing secret."""
    out = {k: v for k, v in environ.items() if k in BASE_VARIABLES or k.startswith("LC_")}
    out["BOTWARDEN_ROOT"] = str(root)
    if environ.get("BOTWARDEN_SETTINGS"):
        out["BOTWARDEN_SETTINGS"] = environ["BOTWARDEN_SETTINGS"]
    return out


def settings_variables(settings: StackSettings, section: str) -> list[str]:
    """The environment variables the settings of ``section`` name (fields ending in ``_env``)."""
    data = getattr(settings, section).model_dump()
    return sorted({str(v) for k, v in data.items() if k.endswith("_env") and isinstance(v, str) and v})


def referenced_variables(inventory: Path, playbooks: Path, templates: Path) -> set[str]:
    """Names of the environment variables the configuration's templates read literally.

    Every string of the inventory and of ``playbooks/*.yaml`` with Jinja2 markup, and every
    file of ``templates/`` but ``supervisord.conf.j2``, is parsed; a file that does not parse is
    skipped (``agent validate`` reports it).
    """
    env = jinja2.Environment()
    names: set[str] = set()

    def scan(source: str) -> None:
        try:
            names.update(env_references(env.parse(source)))
        except jinja2.TemplateError:
            pass

    files = [inventory, *sorted(playbooks.glob("*.y*ml"))] if playbooks.is_dir() else [inventory]
    for path in files:
        try:  # never blocks: a FIFO in playbooks/ hung agent stack up (agent validate names it)
            data = safe_yaml.load(read_file(path).decode("utf-8"))  # a YAML bomb: skipped, never walked
        except (FileProblem, UnicodeDecodeError, yaml.YAMLError):
            continue
        for text in _strings(data):
            if "{{" in text or "{%" in text:
                scan(text)
    if templates.is_dir():
        for path in sorted(templates.iterdir()):
            if path.is_file() and path.name != "supervisord.conf.j2":
                try:
                    scan(read_file(path).decode("utf-8"))
                except (FileProblem, UnicodeDecodeError):
                    continue
    return names


def _strings(data: Any) -> Iterable[str]:
    if isinstance(data, str):
        yield data
    elif isinstance(data, dict):
        for v in data.values():
            yield from _strings(v)
    elif isinstance(data, list):
        for v in data:
            yield from _strings(v)


def program_environments(stack: Any, environ: Mapping[str, str], tokens: Mapping[str, str]) -> dict[str, dict[str, str]]:
    """Program name -> the variables added to its environment (values from ``environ``, the
    stack's ``tokens`` when the variable is not exported)."""
    s: StackSettings = stack.settings
    values = {**tokens, **{k: v for k, v in environ.items() if v}}

    def pick(names: Iterable[str]) -> dict[str, str]:
        return {n: values[n] for n in sorted(set(names)) if n in values}

    bot_vars = settings_variables(s, "bot")
    guard_vars = [n for n in bot_vars if n != s.bot.api_wallet_key_env]  # the bot's wallet is the bot's only
    web_vars = settings_variables(s, "web")
    web_prefixes = tuple(f"{n}_" for n in web_vars)  # `<password_env>_<NAME>` adds a user
    agent_vars = {*guard_vars, *settings_variables(s, "agent"), *NETWORK_VARIABLES,
                  *referenced_variables(stack.inventory, stack.playbooks, stack.templates)}
    def read(role: str) -> dict[str, str]:
        return settings_digest(stack.settings_path, s, SETTINGS_READ[role])

    return {
        s.inbox.program: read("inbox"),
        s.exchange.program: {**pick(settings_variables(s, "exchange")), **read("exchange")},
        s.bot.program: {**pick([*bot_vars, *NETWORK_VARIABLES]), **read("bot")},
        s.agent.program: {**pick(agent_vars), **read("agent")},
        s.web.program: {**pick([*agent_vars, *web_vars, *(n for n in values if n.startswith(web_prefixes))]),
                        **read("web")},
    }


SETTINGS_DIGEST = "BOTWARDEN_SETTINGS_DIGEST"
"""The SHA-256 of the stack settings each program was started with, of those it reads (brk15)."""

SETTINGS_READ: dict[str, tuple[str, ...] | None] = {
    "inbox": ("supervisor", "inbox"),
    "exchange": ("supervisor", "exchange"),
    # the exchange's URL; the agent's wallet variable: signing_key's shared_key_problem reads it
    "bot": ("supervisor", "bot", "exchange", "agent.api_wallet_key_env"),
    "agent": None,  # every setting: the inventory shows them all to the playbooks
    "web": None,  # the agent's configuration, loaded the same way
}
"""The settings each supervised program reads (sections or dotted names; ``root`` and ``var_dir``
always; None: all of them), by its section in the settings. An edit of a setting restarts, on
``agent stack up``, only the programs that read it: an agent-only setting (``agent.store_grace``)
restarted the trading bot and the exchange. ``tests/agent/test_stack_environment.py`` reads the
code of the bot, the exchange and the inbox for any other section they touch."""


def settings_digest(settings_path: Path | None, settings: Any, reads: tuple[str, ...] | None = None) -> dict[str, str]:
    """``{SETTINGS_DIGEST: digest}`` of the settings read from the settings file (nothing for the
    built-in settings): :meth:`~botwarden.settings.StackSettings.digest` of ``reads``
    (:data:`SETTINGS_READ`; None: every setting, what the agent compares at a start).

    Every program reads the settings file once, when it starts, and ``supervisorctl update``
    restarts only a program whose section of ``supervisord.conf`` changed: the digest in each
    program's environment makes an edited setting (``bot.port``) a changed program, so ``agent
    stack up`` (``make run``) applies it to every program that reads it. Without it the bot went on
    serving the old port while the agent checked the new one. The digest is of the settings as
    read, not of the file's bytes: a comment added to the file restarted every program, the
    trading bot and the exchange included; and of the settings the program reads: an edit of the
    agent's restarted the bot."""
    if settings_path is None:
        return {}
    return {SETTINGS_DIGEST: settings.digest(reads)}


def conf_environment(variables: Mapping[str, str], *, mask: bool = False) -> str:
    """``KEY="value",...`` as supervisord's ``environment=`` reads it back exactly.

    supervisord expands ``%`` (so it is doubled), splits on unquoted commas and strips quote
    characters from both ends of a value: a value is double-quoted, or single-quoted when it
    holds a double quote. Raises :class:`ConfigError` for what it cannot carry (a newline, both
    quote kinds, a quote at either end). ``mask``: every value shown as ``***`` (for printing).
    """
    parts = []
    for name, value in sorted(variables.items()):
        if not _NAME.match(name):
            raise ConfigError(f"environment variable name {name!r} cannot be passed to a supervised program")
        if mask:
            parts.append(f'{name}="***"')
            continue
        bad = ("\n" in value or "\r" in value or "\0" in value or ('"' in value and "'" in value)
               or value[:1] in ("'", '"') or value[-1:] in ("'", '"'))
        if bad:
            raise ConfigError(f"${name} holds a character supervisord cannot pass to a program (a newline, both "
                              "kinds of quote, or a quote at either end)", hint=f"change the value of ${name}")
        quote = "'" if '"' in value else '"'
        parts.append(f"{name}={quote}{value.replace('%', '%%')}{quote}")
    return ",".join(parts)
