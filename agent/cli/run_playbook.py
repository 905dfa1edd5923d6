"""``agent run-playbook NAME``: run a play's tasks once, Ansible-style, with a recap.

Destructive plays (a ``confirm:`` text, or a destructive module) ask first unless ``--yes``;
``--check`` previews every side effect and never asks. Exit 1 when a task failed or the run was
interrupted: SIGINT (Ctrl-C), SIGTERM and SIGHUP stop it between two tasks (the task under way
finishes), and what is left is printed on stderr while the terminal still works (after SIGHUP
nothing is written to it); the run's record tells the resident agent (:mod:`agent.engine.play_runs`).
"""
from __future__ import annotations

import asyncio
import signal
from typing import Annotated, Any

import typer

from agent.cli import options
from agent.cli.common import confirm_or_exit, console, err_console, escape, load
from agent.cli.extra_vars import extra_var_problems, parse_extra_vars, unread_extra_vars
from agent.engine.operator_actions import (
    confirmation_text,
    find_play,
    needs_confirmation,
    outcome_line,
    recap_lines,
)
from agent.engine.play_runner import PlayRecap, TaskOutcome
from botwarden.errors import ExitCode

__all__ = ["confirmation_text", "find_play", "needs_confirmation", "outcome_line", "print_recap", "recap_lines",
           "run_playbook"]

_INTERRUPTS = (signal.SIGINT, signal.SIGTERM, signal.SIGHUP)
"""Stop a run between two tasks (Ctrl-C, a kill, an SSH hang-up); its record says what is left."""
_STYLE = {"ok": "green", "changed": "yellow", "failed": "red", "skipped": "cyan", "ignored": "magenta"}


def _print_outcome(o: TaskOutcome) -> None:
    status, line = outcome_line(o)
    try:
        console.print(f"[{_STYLE.get(status, 'white')}]{escape(line)}[/]", highlight=False)
    except OSError:  # the terminal is gone (EIO, EPIPE): the play goes on, its record says what it did
        _mute()


def _mute() -> None:
    """The terminal hung up (SIGHUP) or its writes fail: nothing more is written to it (a write
    to a dead terminal fails or blocks, and must not stop the play)."""
    import os

    devnull = open(os.devnull, "w")  # lives as long as the process
    console.file = devnull
    err_console.file = devnull


def _on_signal(name: str) -> None:
    if name == "SIGHUP":
        _mute()


def print_interrupted(recap: PlayRecap, play: Any) -> None:
    """What an interrupted run left undone, and who finishes it, on stderr (if it still works)."""
    resumes = getattr(play, "on_interrupt", "tell") == "resume" and recap.interrupted != "SIGINT"
    then = ("the resident agent runs it again from its first task and pages" if resumes
            else "the resident agent pages this; nothing re-runs it")
    lines = [f"PLAY INTERRUPTED by {recap.interrupted}: the task under way finished, no other started."]
    lines += [f"  {host}: NOT done: {'; '.join(left)}" for host, left in recap.left.items()]
    lines += [f"  {then}.", f"  To finish it yourself: agent run-playbook {play.name} --limit "
                             f"{','.join(recap.left)} --yes"]
    try:
        err_console.print("\n".join(lines), markup=False)
    except OSError:
        pass


def print_recap(recap: PlayRecap) -> None:
    try:
        console.print("\nPLAY RECAP " + "*" * 60)
        for worst, line in recap_lines(recap):
            console.print(f"[{_STYLE.get(worst, 'white')}]{escape(line)}[/]", highlight=False)
    except OSError:
        _mute()


def run_playbook(
    name: Annotated[str, typer.Argument(help="the playbook's name (its `name:` field)")],
    limit: options.Limit = None,
    check: options.CheckMode = False,
    yes: Annotated[bool, typer.Option("--yes", "-y", help="do not ask before destructive plays")] = False,
    extra: Annotated[list[str] | None, typer.Option("-e", "--extra-vars", help="key=value, repeatable")] = None,
    inventory: options.Inventory = options.DEFAULT_INVENTORY,
    paths: Annotated[list[str] | None, typer.Option("--playbooks", help="playbook files/dirs")] = None,
    store: options.Store = None,
) -> None:
    """Run a playbook's tasks once and print a per-task line and a recap."""
    from pathlib import Path

    from agent.engine.operator_run import run_play_once
    from agent.modules.registry import default_registry

    extra_vars = parse_extra_vars(extra)  # a command-line mistake is said before anything is loaded
    config = load(inventory, [Path(p) for p in paths] if paths else None, need_play=name)
    play, hosts = find_play(config, name, limit)
    host_names = [h.name for h in hosts]
    for said in unread_extra_vars(play, config.templating, extra_vars, [h.vars for h in hosts]):
        err_console.print(said, markup=False)
    broken = extra_var_problems(play, config, hosts, extra_vars, default_registry())
    if broken:  # said before anything runs: a step would fail on it (the emergency's flatten, ignored)
        for said in broken:
            err_console.print(f"error: {said}", markup=False)
        err_console.print(f"error: -e: {len(broken)} problem(s) above; nothing was run", markup=False)
        raise typer.Exit(ExitCode.USAGE)

    if not check and not yes and needs_confirmation(play, config):
        confirm_or_exit(confirmation_text(play, config, host_names))

    mode = " (check mode: nothing will be changed)" if check else ""
    console.print(escape(f"PLAY [{play.name}] on {', '.join(host_names)}{mode} ") + "*" * 30)

    async def once() -> Any:
        from agent.http import close_shared_clients

        try:
            return await run_play_once(config, play, hosts, check_mode=check, extra_vars=extra_vars,
                                       on_outcome=_print_outcome, store_url=store,
                                       interrupt_on=() if check else _INTERRUPTS, on_signal=_on_signal)
        finally:  # the modules' HTTP sessions, closed in their loop (else 'Unclosed client session' at exit)
            await close_shared_clients()

    recap = asyncio.run(once())
    print_recap(recap)
    if recap.interrupted:
        print_interrupted(recap, play)
    if recap.failed or recap.interrupted:
        raise typer.Exit(ExitCode.FAILED)
