"""Helpers shared by CLI commands: console, config loading, verbosity."""
from __future__ import annotations

import os
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

from rich.console import Console

from botwarden.errors import ConfigError

console = Console(highlight=False)
err_console = Console(stderr=True, highlight=False, soft_wrap=True)  # never break file:line:col


class Verbosity:
    level: int = 0


class Redaction:
    """What this command prints and logs is redacted with the loaded configuration's redactor
    (set by :func:`load`; before a configuration is loaded nothing is known to redact)."""

    redact: Callable[[str], str] = staticmethod(lambda text: text)
    installed: Any = None
    """The log filter :func:`load` installed on the root logger (its handlers redact as they format)."""


def confirm_or_exit(question: str) -> None:
    """Ask ``question`` at the terminal; without a terminal, or when the answer is no, exit
    :attr:`ExitCode.DECLINED` having done nothing."""
    import sys

    import typer

    from botwarden.errors import ExitCode

    if not sys.stdin.isatty():
        err_console.print(f"{question}\nrefusing without a terminal: pass --yes to confirm", markup=False)
        raise typer.Exit(ExitCode.DECLINED)
    if not typer.confirm(question, default=False):
        err_console.print("not confirmed; nothing was done")
        raise typer.Exit(ExitCode.DECLINED)


def print_traceback() -> None:
    """The current exception's traceback on stderr, redacted (``-v``)."""
    import traceback

    err_console.print(Redaction.redact(traceback.format_exc()), markup=False, highlight=False)


def templates_dir(inventory: Path) -> Path:
    return inventory.resolve().parent / "templates"


def use_stack_secrets(inventory: Path) -> None:
    """Give this process the variables of the stack's ``var/secrets.env`` its environment lacks.

    ``agent stack up`` (``make run``) gives supervisord, hence the resident agent and the bot,
    the environment with these added, the environment winning; an operator's ``agent`` command
    in another shell gets the same view here, so it authenticates to the bot as the resident
    agent does. The values are secrets: only names ever reach a message.
    """
    from agent.stack import locate
    from botwarden.settings import read_secrets_file

    try:
        path = locate(root=inventory.resolve().parent, inventory=inventory).settings.secrets_path
    except (ConfigError, ValueError, OSError):
        return  # load_config reports a broken inventory or settings file with file:line
    try:
        stored = read_secrets_file(path)
    except OSError as exc:
        err_console.print(f"warning: cannot read {path} ({exc.strerror or exc}): its tokens are not used",
                          markup=False)
        return
    for name, value in stored.items():
        if value and not os.environ.get(name):
            os.environ[name] = value


def load(inventory: Path, paths: Sequence[Path] | None, *, for_reading: bool = False) -> Any:
    """Load and validate everything, or raise ConfigError after printing every diagnostic.
    The stack's ``var/secrets.env`` fills what the environment lacks (:func:`use_stack_secrets`).

    ``for_reading``: the command reads the store and changes nothing the resident agent sends
    (``status``, ``explain``, ``history``, ``ack``, ``silence``): it needs the checks, not the
    notification secrets, so an environment variable a template reads without a default may be
    unset here; the command works and says which ones it went without."""
    from agent.modules.registry import default_registry
    from agent.playbook import load_config

    use_stack_secrets(inventory)

    paths = list(paths) if paths else [inventory.resolve().parent / "playbooks"]
    result = load_config(inventory, paths, default_registry(), env=dict(os.environ),
                         templates_dir=templates_dir(inventory),
                         unset_env="placeholder" if for_reading else "error")
    if result.diagnostics:
        for d in result.diagnostics:
            err_console.print(str(d), markup=False)
        raise ConfigError(f"{len(result.diagnostics)} error(s) in the configuration; nothing was changed",
                          hint="fix the lines above and run `agent validate`")
    assert result.config is not None
    _redact_output(result.config.templating.redactor)
    unset = sorted(result.config.templating.unset_env_used)
    if unset:
        err_console.print(f"warning: {', '.join('$' + n for n in unset)} not set in this shell: not needed to read "
                          "the agent's state (the resident agent has its own environment; `agent validate` run "
                          "with that environment checks what uses them)", markup=False)
    return result.config


def _redact_output(redactor: Any) -> None:
    import logging

    from agent.core.redaction import install, uninstall

    root = logging.getLogger()
    if Redaction.installed is not None:  # a second load in one process (tests): one filter, the latest
        uninstall(root, Redaction.installed)
    Redaction.redact = redactor.redact
    Redaction.installed = install(root, redactor)


def store_url(config: Any, override: str | None) -> str:
    if override:
        return override
    return os.environ.get("BOTWARDEN_STORE_URL") or f"sqlite:///{config.settings.path(config.settings.agent.db)}"
