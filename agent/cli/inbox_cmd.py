"""``agent inbox``: the local json:// alert receiver of the offline stack."""
from __future__ import annotations

import logging
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer

from agent.cli import options
from agent.cli.common import console, err_console
from agent.playbook.files import real_path

if TYPE_CHECKING:
    from botwarden.settings import StackSettings


def inbox(
    show: Annotated[bool, typer.Option("--show", help="print the last alerts received and exit")] = False,
    last: Annotated[int, typer.Option(help="how many to show")] = 20,
    inventory: options.Inventory = options.DEFAULT_INVENTORY,
) -> None:
    """Receive alerts posted by apprise's json:// target into var/inbox.jsonl (or show them)."""
    from agent.stack import inbox as inbox_mod

    settings = _settings(inventory)
    path = settings.path(settings.inbox.file)
    if show:
        from rich.markup import escape  # rich with the first print, not at the command line's import

        damaged: list[int] = []
        for rec in inbox_mod.read(path, last, damaged):
            console.print(f"[bold]{escape(str(rec.get('received_at', '')))}[/] "
                          f"{escape(str(rec.get('type', '')))}: {escape(str(rec.get('title', '')))}")
            console.print(str(rec.get("message", "")), markup=False)
            console.print()
        if damaged:
            shown = ", ".join(map(str, damaged[:10])) + (" ..." if len(damaged) > 10 else "")
            typer.echo(f"warning: {path}: {len(damaged)} line(s) not an alert (damaged: no JSON object), left "
                       f"out: line {shown}", err=True)
        return
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s %(message)s")
    server = inbox_mod.make_server(settings.inbox.host, settings.inbox.port, path)
    logging.getLogger("agent.inbox").info("listening on %s, writing %s", settings.inbox.url, path)
    try:
        server.serve_forever()
    except KeyboardInterrupt:
        pass
    finally:
        server.server_close()


def _settings(inventory: Path) -> StackSettings:
    """The stack settings; when the inventory or the settings file cannot be read, those of what
    the agent runs on (the last good configuration...), so the local receiver the agent pages
    through keeps listening (supervisord runs this: an exit would be a crash loop)."""
    from agent import stack
    from botwarden.errors import ConfigError

    try:
        return stack.locate(inventory=real_path(inventory)).settings
    except (ConfigError, ValueError, OSError) as exc:
        from agent.cli.common import load_chosen
        from agent.engine.config_source import START_ORDER

        err_console.print(f"warning: {exc}; using the settings of what the agent runs on", markup=False)
        chosen, _ = load_chosen(inventory, None, START_ORDER)
        settings: StackSettings = chosen.config.settings
        return settings
