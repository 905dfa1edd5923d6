"""``agent run-playbook NAME``: run a play's tasks once, Ansible-style, with a recap.

Destructive plays (a ``confirm:`` text, or a destructive module) ask first unless ``--yes``;
``--check`` previews every side effect and never asks. Exit 1 when a task failed.
"""
from __future__ import annotations

import asyncio
from typing import Annotated, Any

import typer
import yaml

from agent.cli import options
from agent.cli.common import confirm_or_exit, console, escape, load
from agent.engine.operator_actions import (
    confirmation_text,
    find_play,
    needs_confirmation,
    outcome_line,
    recap_lines,
)
from agent.engine.play_runner import PlayRecap, TaskOutcome
from botwarden.errors import ConfigError, ExitCode

__all__ = ["confirmation_text", "find_play", "needs_confirmation", "outcome_line", "print_recap", "recap_lines",
           "run_playbook"]

_STYLE = {"ok": "green", "changed": "yellow", "failed": "red", "skipped": "cyan", "ignored": "magenta"}


def _parse_extra(pairs: list[str] | None) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for pair in pairs or []:
        if "=" not in pair:
            raise ConfigError(f"-e {pair!r}: expected key=value")
        k, v = pair.split("=", 1)
        out[k.strip()] = yaml.safe_load(v) if v else ""
    return out


def _print_outcome(o: TaskOutcome) -> None:
    status, line = outcome_line(o)
    console.print(f"[{_STYLE.get(status, 'white')}]{escape(line)}[/]", highlight=False)


def print_recap(recap: PlayRecap) -> None:
    console.print("\nPLAY RECAP " + "*" * 60)
    for worst, line in recap_lines(recap):
        console.print(f"[{_STYLE.get(worst, 'white')}]{escape(line)}[/]", highlight=False)


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

    config = load(inventory, [Path(p) for p in paths] if paths else None, need_play=name)
    play, hosts = find_play(config, name, limit)
    host_names = [h.name for h in hosts]
    extra_vars = _parse_extra(extra)

    if not check and not yes and needs_confirmation(play, config):
        confirm_or_exit(confirmation_text(play, config, host_names))

    mode = " (check mode: nothing will be changed)" if check else ""
    console.print(escape(f"PLAY [{play.name}] on {', '.join(host_names)}{mode} ") + "*" * 30)

    async def once() -> Any:
        from agent.http import close_shared_clients

        try:
            return await run_play_once(config, play, hosts, check_mode=check, extra_vars=extra_vars,
                                       on_outcome=_print_outcome, store_url=store)
        finally:  # the modules' HTTP sessions, closed in their loop (else 'Unclosed client session' at exit)
            await close_shared_clients()

    recap = asyncio.run(once())
    print_recap(recap)
    if recap.failed:
        raise typer.Exit(ExitCode.FAILED)
