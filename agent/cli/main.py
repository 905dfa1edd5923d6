"""Entry point of the ``agent`` command.

Exit codes (also in the README):
  0 ok · 1 validation errors or a failed task · 2 usage · 3 configuration cannot be loaded ·
  4 operational problem (supervisord, store, exchange unreachable) · 5 confirmation declined ·
  250 internal error (a bug: run again with -v for the traceback and report it).
Expected errors never print a traceback; ``-v`` shows one for unexpected errors.
"""
from __future__ import annotations

import logging
import os
import sys
from typing import Annotated

import typer

from agent.cli import events_cmd, inbox_cmd, modules_cmd, stack_cmd, validate
from agent.cli.common import Redaction, Verbosity, err_console, print_traceback
from botwarden.errors import BotwardenError, ExitCode

app = typer.Typer(
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
    help="botwarden: the ops agent that keeps a Hyperliquid trading bot safe.",
)


@app.callback()
def _root(
    verbose: Annotated[int, typer.Option("--verbose", "-v", count=True, help="more output; -v shows tracebacks")] = 0,
) -> None:
    Verbosity.level = verbose
    logging.basicConfig(
        level=logging.DEBUG if verbose >= 2 else logging.INFO if verbose else logging.WARNING,
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
    )


app.command("validate")(validate.validate)
app.command("modules")(modules_cmd.modules)
app.command("inbox")(inbox_cmd.inbox)
app.command("events-listener")(events_cmd.events_listener)
app.add_typer(stack_cmd.app, name="stack")


LIGHT_COMMANDS = frozenset({"validate", "modules", "inbox", "events-listener", "stack"})
"""Commands registered above, whose modules do not import the engine."""


# Commands whose modules import the engine: (module in agent.cli, function) by command name.
OPTIONAL_COMMANDS: dict[str, tuple[str, str]] = {
    "run": ("run_cmd", "run"),
    "run-playbook": ("run_playbook", "run_playbook"),
    "status": ("status_cmd", "status"),
    # alert lifecycle (issue 4): acknowledgements, silences, history and explanations
    "ack": ("ack_cmd", "ack"),
    "silence": ("silence_cmd", "silence"),
    "history": ("history_cmd", "history"),
    "explain": ("explain_cmd", "explain"),
    "web": ("web_cmd", "web"),
    # the bot's circuit breaker (issue 13): why it is halted, halt, resume with confirmation
    "halt": ("halt_cmd", "halt"),
    "resume": ("halt_cmd", "resume"),
}


def _register_optional(command: str | None = None) -> None:
    """Commands whose modules import the engine; registered here so `validate` stays light.
    A command registers only itself: ``agent run`` (the resident agent, which lives for weeks)
    would keep the other commands' modules in its memory for nothing (about 1 MB of its idle RSS),
    and ``agent web`` (started with every stack) imported all of them at 0.3 s of CPU. A light
    command registers none of them: ``agent inbox`` and ``agent events-listener`` start with every
    stack, and importing the engine (the store, SQLAlchemy, the notifiers) took them ~0.3 s of CPU
    each for nothing. No command, or one not known (a typo): all of them, for the help and the
    "No such command" message."""
    import importlib

    if command in LIGHT_COMMANDS:
        return
    wanted = [command] if command in OPTIONAL_COMMANDS else list(OPTIONAL_COMMANDS)
    for name in wanted:
        module, function = OPTIONAL_COMMANDS[name]
        app.command(name)(getattr(importlib.import_module(f"agent.cli.{module}"), function))


def main(argv: list[str] | None = None) -> int:
    os.umask(0o077)  # what the agent creates (database, backups, locks, logs) is private from the start
    args = sys.argv[1:] if argv is None else argv
    _register_optional(next((a for a in args if not a.startswith("-")), None))
    try:
        rc = app(args=argv, standalone_mode=False)
        return int(rc) if isinstance(rc, int) else 0
    except SystemExit as exc:  # typer.Exit inside standalone_mode=False arrives as its code
        return int(exc.code or 0)
    except BotwardenError as exc:
        err_console.print(Redaction.redact(f"error: {exc}"), markup=False)
        if Verbosity.level:
            print_traceback()
        return exc.exit_code
    except KeyboardInterrupt:
        err_console.print("interrupted")
        return 130
    except Exception as exc:  # noqa: BLE001 - the last line of defence
        usage = _command_line_error(exc)
        if usage is not None:
            return usage
        err_console.print(Redaction.redact(f"internal error (a bug, please report it): {type(exc).__name__}: {exc}"),
                          markup=False)
        if Verbosity.level:
            print_traceback()
        else:
            err_console.print("run again with -v to see the traceback")
        return ExitCode.BUG


def _command_line_error(exc: Exception) -> int | None:
    """The exit code of a command-line parsing outcome (shown to the operator), else None.

    Typer raises click's exceptions, from click itself or (typer >= 0.17) from the copy of click
    it ships; both are recognised through their public base classes.
    """
    import click

    bases: tuple[type[Exception], ...] = (click.ClickException, *(
        [typer.TyperException] if hasattr(typer, "TyperException") else []))
    aborts: tuple[type[Exception], ...] = (click.exceptions.Abort, typer.Abort)
    if isinstance(exc, click.exceptions.Exit):
        return exc.exit_code
    if isinstance(exc, aborts) or type(exc).__name__ == "Abort":
        err_console.print("aborted")
        return ExitCode.DECLINED
    if isinstance(exc, bases) and callable(getattr(exc, "show", None)):
        exc.show()  # type: ignore[attr-defined]  # "Usage: ..." and the problem, as click prints them
        code = getattr(exc, "exit_code", ExitCode.USAGE)
        return code if isinstance(code, int) and code != ExitCode.BUG else ExitCode.USAGE
    return None

if __name__ == "__main__":
    sys.exit(main())
