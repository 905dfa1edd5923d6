"""``agent run-playbook NAME``: run a play's tasks once, Ansible-style, with a recap.

Destructive plays (a ``confirm:`` text, or a destructive module) ask first unless ``--yes``;
``--check`` previews every side effect and never asks. Exit 1 when a task failed.
"""
from __future__ import annotations

import asyncio
import difflib
import sys
from typing import Annotated, Any

import typer
import yaml
from rich.markup import escape

from agent.cli import options
from agent.cli.common import console, err_console, load
from agent.engine.play_runner import PlayRecap, TaskOutcome
from botwarden.errors import ConfigError, ExitCode

_STYLE = {"ok": "green", "changed": "yellow", "failed": "red", "skipped": "cyan", "ignored": "magenta"}
_WORD = {"ok": "ok", "changed": "changed", "failed": "failed", "skipped": "skipping", "ignored": "failed (ignored)"}


def _parse_extra(pairs: list[str] | None) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for pair in pairs or []:
        if "=" not in pair:
            raise ConfigError(f"-e {pair!r}: expected key=value")
        k, v = pair.split("=", 1)
        out[k.strip()] = yaml.safe_load(v) if v else ""
    return out


def _print_outcome(o: TaskOutcome) -> None:
    style = _STYLE.get(o.status, "white")
    line = f"[{style}]{_WORD.get(o.status, o.status)}: {escape(f'[{o.host}]')}[/] {escape(o.task)}"
    if o.attempts > 1:
        line += f" (attempts: {o.attempts})"
    if o.msg:
        line += f" => {escape(o.msg)}"
    console.print(line, highlight=False)


def print_recap(recap: PlayRecap) -> None:
    console.print("\nPLAY RECAP " + "*" * 60)
    for host, r in sorted(recap.hosts.items()):
        style = "red" if r.failed else ("yellow" if r.changed else "green")
        console.print(
            f"[{style}]{escape(host):<20}[/] : ok={r.ok} changed={r.changed} failed={r.failed} "
            f"skipped={r.skipped} ignored={r.ignored} rescued={r.rescued}"
        )


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
    from agent.playbook import resolve_hosts

    config = load(inventory, [Path(p) for p in paths] if paths else None)
    play = config.playbooks.get(name)
    if play is None:
        close = difflib.get_close_matches(name, list(config.playbooks), n=1)
        raise ConfigError(f"no playbook named {name!r}",
                          hint=f"did you mean {close[0]!r}?" if close else f"known: {', '.join(sorted(config.playbooks))}")
    host_names = resolve_hosts(config.inventory, play.hosts)
    if limit:
        wanted = {h.strip() for h in limit.split(",")}
        host_names = [h for h in host_names if h in wanted]
    if not host_names:
        raise ConfigError(f"playbook {name!r} matches no host" + (f" within --limit {limit}" if limit else ""))
    hosts = [config.hosts[h] for h in host_names]
    extra_vars = _parse_extra(extra)

    if not check and not yes and _needs_confirmation(play, config):
        question = _confirmation_text(play, config, host_names)
        if not sys.stdin.isatty():
            err_console.print(f"{question}\nrefusing without a terminal: pass --yes to confirm", markup=False)
            raise typer.Exit(ExitCode.DECLINED)
        if not typer.confirm(question, default=False):
            err_console.print("not confirmed; nothing was done")
            raise typer.Exit(ExitCode.DECLINED)

    mode = " (check mode: nothing will be changed)" if check else ""
    console.print(escape(f"PLAY [{play.name}] on {', '.join(host_names)}{mode} ") + "*" * 30)
    recap = asyncio.run(run_play_once(config, play, hosts, check_mode=check, extra_vars=extra_vars,
                                      on_outcome=_print_outcome, store_url=store))
    print_recap(recap)
    if recap.failed:
        raise typer.Exit(ExitCode.FAILED)


def _needs_confirmation(play: Any, config: Any) -> bool:
    if play.confirm:
        return True
    from agent.modules.registry import default_registry

    reg = default_registry()

    def destructive(tasks: list[Any]) -> bool:
        for t in tasks or []:
            if t.module and t.module in reg.actions and reg.actions[t.module].destructive:
                return True
            if destructive(getattr(t, "block", None) or []) or destructive(getattr(t, "rescue", None) or []) \
                    or destructive(getattr(t, "always", None) or []):
                return True
        return False

    return destructive(play.tasks)


def _confirmation_text(play: Any, config: Any, hosts: list[str]) -> str:
    if play.confirm:
        try:
            return config.templating.redact(config.templating.render_str(play.confirm,
                                                                         {"host": ", ".join(hosts), **play.vars}))
        except Exception:  # noqa: BLE001 - the raw text is still a fine question
            return play.confirm
    return f"Run destructive playbook {play.name!r} on {', '.join(hosts)}?"
