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
from typing import TYPE_CHECKING, Any

from agent.engine.config_source import Chosen, ConfigSource
from agent.playbook.diagnostics import Diagnostic
from agent.playbook.files import key as file_key
from agent.playbook.files import real_path
from agent.stack.environment import SETTINGS_DIGEST
from botwarden.settings import StackSettings

if TYPE_CHECKING:
    from agent.playbook.loader import Config


def started_digest(source: ConfigSource) -> str | None:
    """The digest of the settings file the supervised programs were started with (``agent stack up``
    put it in this agent's environment), None when not started by the stack."""
    return source.env.get(SETTINGS_DIGEST) or None


def as_started(source: ConfigSource, config: Config) -> bool:
    """``config``'s settings are the ones the programs were started with (their digest)."""
    started = started_digest(source)
    return started is not None and config.settings.digest() == started


def started_on_other_settings(source: ConfigSource, disk: Config) -> Chosen | None:
    """At a start, the last good configuration when the settings on disk are not those the
    supervised programs were started with (else None: start on ``disk``).

    ``agent stack up`` puts the digest of the settings it read in every program's environment
    (:data:`~agent.stack.environment.SETTINGS_DIGEST`, :meth:`StackSettings.digest`). An agent that restarts by itself (a crash,
    supervisord's autorestart) after ``bot.port`` was edited read the new file and watched a port
    nothing served, the bot still on the old one: every check of the bot UNKNOWN, no restart that
    helps, what a reload refuses. When the settings on disk are not those of the digest (a comment,
    whitespace or order is no change) and the last good configuration holds those, the agent
    starts on the last good configuration and
    pages, as for a reload; ``agent stack up`` applies the edit. Without that snapshot, on the files
    with the settings ``agent stack up`` applied (:func:`_on_applied_settings`); without those
    either, nothing tells what the programs run, and the agent starts on the disk."""
    path = source.settings_path
    if started_digest(source) is None or path is None or file_key(path) not in disk.files or as_started(source, disk):
        return None
    snap, _ = source.last_good()
    result = source.load_snapshot(snap) if snap is not None else None
    if result is None or result.config is None or not as_started(source, result.config):
        return _on_applied_settings(source, disk, path)
    changes = settings_changes(result.config.settings, disk.settings)
    if not changes:
        return None
    return Chosen(result.config, "last-good", [settings_changed(path, changes)], snapshot=snap)


def _on_applied_settings(source: ConfigSource, disk: Config, path: Path) -> Chosen | None:
    """Without a last good configuration holding the settings the programs run (a fresh ``var/``,
    files that never all loaded): the files on disk with the settings ``agent stack up`` applied
    (kept under ``var/``, :func:`agent.stack.files.write_applied_settings`), when they are those
    of the programs' digest. It took the edited file: bot.port edited, the agent restarted by
    itself and watched a port nothing served, every check of the bot UNKNOWN (brk15)."""
    applied = _applied_settings(source)
    if applied is None:
        return None
    chosen = source.choose_with_settings(applied, ("disk", "as-read", "valid-part"))
    if chosen is None or not as_started(source, chosen.config):
        return None
    changes = settings_changes(chosen.config.settings, disk.settings)
    if not changes:
        return None
    return Chosen(chosen.config, "as-started" if chosen.origin == "disk" else chosen.origin,
                  [settings_changed(path, changes), *chosen.problems], left_out=chosen.left_out)


def _applied_settings(source: ConfigSource) -> bytes | None:
    """The settings ``agent stack up`` applied, as YAML, when they are those of the digest the
    programs run (a file of an earlier ``stack up`` is not); looked for where the last good
    configuration is."""
    import yaml

    from agent.stack.files import APPLIED_SETTINGS
    from botwarden import safe_yaml
    from botwarden.safe_files import FileProblem, read_file

    candidates = [d for d in (source.var_dir,) if d is not None]
    candidates.append(real_path(source.inventory).parent / "var")
    for var_dir in candidates:
        try:
            data = read_file(var_dir / APPLIED_SETTINGS)
            settings = StackSettings.model_validate(safe_yaml.load(data.decode("utf-8")))
        except (FileProblem, UnicodeDecodeError, yaml.YAMLError, ValueError, TypeError):
            continue
        if settings.digest() == started_digest(source):
            return data
    return None


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
