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


def print_traceback() -> None:
    """The current exception's traceback on stderr, redacted (``-v``)."""
    import traceback

    err_console.print(Redaction.redact(traceback.format_exc()), markup=False, highlight=False)


def templates_dir(inventory: Path) -> Path:
    return inventory.resolve().parent / "templates"


def load(inventory: Path, paths: Sequence[Path] | None) -> Any:
    """Load and validate everything, or raise ConfigError after printing every diagnostic."""
    from agent.modules.registry import default_registry
    from agent.playbook import load_config

    paths = list(paths) if paths else [inventory.resolve().parent / "playbooks"]
    result = load_config(inventory, paths, default_registry(), env=dict(os.environ),
                         templates_dir=templates_dir(inventory))
    if result.diagnostics:
        for d in result.diagnostics:
            err_console.print(str(d), markup=False)
        raise ConfigError(f"{len(result.diagnostics)} error(s) in the configuration; nothing was changed",
                          hint="fix the lines above and run `agent validate`")
    assert result.config is not None
    _redact_output(result.config.templating.redactor)
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
