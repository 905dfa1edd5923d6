"""Helpers shared by CLI commands: console, config loading, verbosity."""
from __future__ import annotations

import os
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

from agent.playbook.files import real_path
from botwarden.errors import ConfigError

if TYPE_CHECKING:
    from rich.console import Console
    from rich.table import Table


class _Console:
    """A rich ``Console`` made at its first use: ``agent run`` prints nothing once it is up, and
    the resident agent then never holds rich (about 3 MB of its idle RSS)."""

    def __init__(self, **options: Any) -> None:
        self._options = options
        self._console: Console | None = None

    def _real(self) -> Console:
        if self._console is None:
            from rich.console import Console

            self._console = Console(**self._options)
        return self._console

    def __getattr__(self, name: str) -> Any:
        return getattr(self._real(), name)

    def __setattr__(self, name: str, value: Any) -> None:
        if name.startswith("_"):
            object.__setattr__(self, name, value)
        else:  # console.width = 300, console.file = ...: the real console's
            setattr(self._real(), name, value)


console: Console = _Console(highlight=False, emoji=False)  # type: ignore[assignment]  # :100: in file:100:3 is a position, not an emoji
err_console: Console = _Console(stderr=True, highlight=False, soft_wrap=True, emoji=False)  # type: ignore[assignment]  # never break file:line:col


def escape(markup: str) -> str:
    """:func:`rich.markup.escape`, imported when a command prints (see :class:`_Console`)."""
    from rich.markup import escape as rich_escape

    return rich_escape(markup)


def new_table(*headers: str, **options: Any) -> Table:
    """A :class:`rich.table.Table`, imported when a command prints (see :class:`_Console`)."""
    from rich.table import Table

    return Table(*headers, **options)


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
    return real_path(inventory).parent / "templates"


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
        path = locate(root=real_path(inventory).parent, inventory=inventory).settings.secrets_path
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


def load(inventory: Path, paths: Sequence[Path] | None, *, need_play: str | None = None,
         for_reading: bool = False) -> Any:
    """The configuration to act on, or raise ConfigError after printing every diagnostic.

    When the files on disk do not load, an operator's command still runs, saying so: on the
    valid part of the files (the inventory and settings, and the playbooks that are valid
    with what they refer to), on the files as they read (when only a rule refusing what runs
    otherwise than meant refuses them) or else on the last good configuration the agent saved; with
    ``need_play``, only on one that holds that playbook (``agent run-playbook emergency`` is
    not blocked by a typo in another playbook). The stack's ``var/secrets.env`` fills what the
    environment lacks (:func:`use_stack_secrets`).

    ``for_reading``: the command reads the store and changes nothing the resident agent sends
    (``status``, ``explain``, ``history``, ``ack``, ``silence``): it shows what the agent runs,
    the last good configuration before the valid part; it needs the checks, not the
    notification secrets, so an environment variable a template reads without a default may be
    unset here; the command works and says which ones it went without."""
    # Reading the agent's state shows what the agent runs: the last good configuration before the
    # valid part (a broken playbook is not "no checks with problems" while the agent pages on it).
    from agent.engine.config_source import ACT_ORDER

    order = ("disk", "last-good", "as-read", "valid-part") if for_reading else ACT_ORDER
    chosen, _ = load_chosen(inventory, paths, order, need_play=need_play, for_reading=for_reading)
    return chosen.config


def load_chosen(inventory: Path, paths: Sequence[Path] | None, order: Sequence[Any], *,
                need_play: str | None = None, for_reading: bool = False) -> tuple[Any, Any]:
    """:func:`load` with the order of what to fall back on
    (:meth:`agent.engine.config_source.ConfigSource.choose`); returns the ``Chosen`` and the
    ``ConfigSource`` (to load again)."""
    from agent.engine.config_source import ConfigSource

    use_stack_secrets(inventory)
    paths = list(paths) if paths else [real_path(inventory).parent / "playbooks"]
    source = ConfigSource(inventory, paths, env=dict(os.environ), templates_dir=templates_dir(inventory),
                          unset_env="placeholder" if for_reading else "error")
    chosen, disk = source.choose(order, need_play=need_play)
    if chosen is None and need_play is not None and not disk.diagnostics:
        chosen, _ = source.choose(order, first=disk)  # no such playbook: said by the caller, with a hint
    for d in disk.diagnostics:
        err_console.print(str(d), markup=False)
    if chosen is None:
        holding = f" that holds playbook {need_play!r}" if need_play else ""
        raise ConfigError(f"{len(disk.diagnostics)} error(s) in the configuration, and neither a valid part "
                          f"nor a last good configuration{holding} to fall back on; nothing was changed",
                          hint="fix the lines above and run `agent validate`")
    if chosen.origin != "disk":
        err_console.print(f"warning: the configuration on disk has {len(disk.diagnostics)} error(s) (above); "
                          f"{_fallback_text(chosen, need_play)}", markup=False, style="bold yellow")
    _redact_output(chosen.config.templating.redactor)
    unset = sorted(chosen.config.templating.unset_env_used)
    if unset:
        err_console.print(f"warning: {', '.join('$' + n for n in unset)} not set in this shell: not needed to read "
                          "the agent's state (the resident agent has its own environment; `agent validate` run "
                          "with that environment checks what uses them)", markup=False)
    return chosen, source


def _fallback_text(chosen: Any, need_play: str | None) -> str:
    what = f"playbook {need_play!r}" if need_play else "this command"
    if chosen.origin == "as-read":
        left = f" (left out: {', '.join(chosen.left_out)})" if chosen.left_out else ""
        return (f"{what} runs from the files as they read, as the resident agent does without a last good "
                f"configuration{left}")
    if chosen.origin == "valid-part":
        left = ", ".join(chosen.left_out) or "none"
        return f"{what} runs from the files that are valid (left out: {left})"
    if chosen.origin == "last-good":
        return (f"{what} runs from the last good configuration, saved {chosen.snapshot.when} (what the "
                "resident agent runs while the files do not load)")
    return f"{what} runs on the built-in configuration"


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
