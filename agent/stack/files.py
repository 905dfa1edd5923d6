"""The stack's state files are private to the user who runs it, set and checked on every start.

``var/`` is 0700; the agent's database, the bot's and the exchange's (with their ``-wal``,
``-shm`` and ``-journal`` files), ``secrets.env`` and the rendered ``supervisord.conf`` (it
holds the programs' environments) are 0600. :func:`secure_state` makes them so and then checks
them: a file it cannot change (another user's) is an :class:`OperationalError` that names it,
its mode and its owner, so nothing starts on files others can read. ``agent stack up`` and
the agent itself (``agent run``, ``agent run-playbook``) call it before they open anything; the
``agent`` and ``bot`` commands and supervisord also run with umask 077, so what they create
later (backups, logs, locks) is private from the start.
"""
from __future__ import annotations

import os
import stat
from pathlib import Path

from botwarden.errors import OperationalError
from botwarden.settings import StackSettings

PRIVATE_DIR = 0o700
PRIVATE_FILE = 0o600
_SQLITE_SIDE_FILES = ("", "-wal", "-shm", "-journal")


def state_files(settings: StackSettings) -> list[Path]:
    """The files that must be private (those that exist are set and checked)."""
    var = settings.path(settings.var_dir)
    out = [var / "secrets.env", settings.path(settings.supervisor.config)]
    for db in (settings.agent.db, settings.bot.db, settings.exchange.state):
        out.extend(Path(f"{settings.path(db)}{suffix}") for suffix in _SQLITE_SIDE_FILES)
    return out


def secure_state(settings: StackSettings) -> None:
    """Create ``var/`` (0700) if needed, make it and every existing state file private, and check.

    Raises :class:`OperationalError` listing each path that is still readable by others.
    """
    var = settings.path(settings.var_dir)
    var.mkdir(mode=PRIVATE_DIR, parents=True, exist_ok=True)
    problems = [p for p in [_fix(var, PRIVATE_DIR)] + [_fix(f, PRIVATE_FILE) for f in state_files(settings)] if p]
    if problems:
        raise OperationalError("state files are readable by other users and could not be made private: "
                               + "; ".join(problems),
                               hint="chown them to this user (or remove them), then start again")


def _fix(path: Path, mode: int) -> str | None:
    """None when ``path`` is missing or private (after a chmod if needed), else the problem."""
    try:
        st = path.stat()
    except FileNotFoundError:
        return None
    if stat.S_IMODE(st.st_mode) & 0o077:
        try:
            os.chmod(path, mode)
            st = path.stat()
        except OSError:
            pass
    if stat.S_IMODE(st.st_mode) & 0o077:
        return f"{path} is mode {stat.S_IMODE(st.st_mode):04o}, owned by uid {st.st_uid}"
    return None


def write_private(path: Path, text: str) -> None:
    """Write ``text`` to ``path`` atomically, the file 0600 from its first byte."""
    path.parent.mkdir(mode=PRIVATE_DIR, parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.tmp")
    tmp.unlink(missing_ok=True)
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, PRIVATE_FILE)
    with os.fdopen(fd, "w", encoding="utf-8") as fh:
        fh.write(text)
    os.replace(tmp, path)
    os.chmod(path, PRIVATE_FILE)


def private_umask() -> None:
    """Files this process creates from now on are private (the ``agent`` and ``bot`` commands)."""
    os.umask(0o077)


APPLIED_SETTINGS = "settings-applied.yaml"
"""Under ``var_dir``: the stack settings ``agent stack up`` last applied (what the programs it
started run: their digest is in each one's environment)."""


def write_applied_settings(settings: StackSettings) -> None:
    """Keep ``settings`` as the ones applied (``agent stack up``): an agent that restarts by itself
    after the settings file was edited, with no last good configuration, runs the files with these
    (:func:`agent.engine.settings_changes.started_on_other_settings`), not with the edit the
    programs do not run. Settings hold no secret (names of variables only)."""
    import yaml

    write_private(settings.path(settings.var_dir) / APPLIED_SETTINGS,
                  "# the stack settings `agent stack up` applied last (written by it; not read as settings)\n"
                  + yaml.safe_dump(settings.model_dump(mode="json"), sort_keys=True))
