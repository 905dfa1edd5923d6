"""Helpers shared by CLI commands: console, config loading, verbosity."""
from __future__ import annotations

import os
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from rich.console import Console

from botwarden.errors import ConfigError

console = Console(highlight=False)
err_console = Console(stderr=True, highlight=False, soft_wrap=True)  # never break file:line:col


class Verbosity:
    level: int = 0


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
    return result.config


def store_url(config: Any, override: str | None) -> str:
    if override:
        return override
    return os.environ.get("BOTWARDEN_STORE_URL") or f"sqlite:///{config.settings.path(config.settings.agent.db)}"
