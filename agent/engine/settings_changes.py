"""A reload that changes the stack settings the supervised programs were started with.

The bot, the exchange, the inbox and the web page read the stack settings file once, when they
start; the agent reloads it with the playbooks. Applying a changed file on a reload (``bot.port``
edited) pointed the agent's checks at a port nothing served while the bot went on where it was,
and nothing said why: every check of the bot turned UNKNOWN, "connection refused". So a reload
that would change the settings is refused like a broken file (the agent keeps what it runs and
pages once per version) and says what changed and that ``agent stack up`` (``make run``)
applies it: it restarts the programs the settings file concerns, this agent included.
"""
from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any

from agent.playbook.diagnostics import Diagnostic
from botwarden.settings import StackSettings


def settings_changes(running: StackSettings, loaded: StackSettings) -> list[str]:
    """``bot.port: 8081 -> 8082`` for each setting that differs (values are names, ports and
    paths: a secret is never a setting, only the name of its variable)."""
    before, after = _leaves(running.model_dump(mode="json")), _leaves(loaded.model_dump(mode="json"))
    return [f"{key}: {before.get(key)!r} -> {after.get(key)!r}" for key in sorted(before.keys() | after.keys())
            if before.get(key) != after.get(key)]


def settings_changed(settings_file: Path | None, changes: list[str]) -> Diagnostic:
    """The rejection of a reload that changes the settings (:func:`settings_changes`)."""
    shown = "; ".join(changes[:8]) + (f"; and {len(changes) - 8} more" if len(changes) > 8 else "")
    return Diagnostic(
        str(settings_file) if settings_file is not None else "stack settings", 0, 0,
        f"the stack settings changed ({shown}): the bot, the exchange, the inbox and the web page still run on "
        "the settings they were started with, and the agent would watch what they no longer are",
        "run `agent stack up` (make run): it restarts the programs on the new settings, this agent included; "
        "until then the agent keeps the settings it runs (or undo the edit)")


def _leaves(data: Mapping[str, Any], prefix: str = "") -> dict[str, Any]:
    out: dict[str, Any] = {}
    for key, value in data.items():
        if isinstance(value, Mapping):
            out |= _leaves(value, f"{prefix}{key}.")
        else:
            out[f"{prefix}{key}"] = value
    return out
