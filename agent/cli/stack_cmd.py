"""``agent stack up|down|status``: the supervised stack (what ``make run`` calls)."""
from __future__ import annotations

from typing import TYPE_CHECKING

import typer

from agent.cli import options
from agent.cli.common import console, new_table
from agent.playbook.files import real_path
from botwarden.errors import ExitCode

if TYPE_CHECKING:
    from rich.table import Table

app = typer.Typer(no_args_is_help=True, help="Bring the supervised stack up or down.")


def _table(infos: list[dict]) -> Table:
    t = new_table("program", "state", "pid", "description")
    for i in infos:
        style = "green" if i["statename"] == "RUNNING" else "red"
        t.add_row(i["name"], f"[{style}]{i['statename']}[/]", str(i.get("pid") or ""), i.get("description", ""))
    return t


@app.command("up")
def up(inventory: options.Inventory = options.DEFAULT_INVENTORY) -> None:
    """Render supervisord.conf from the settings and start (or update) supervisord."""
    from agent import stack

    st = stack.locate(inventory=real_path(inventory))
    infos = stack.up(st)
    console.print(_table(infos))
    console.print(f"supervisord config: {st.conf_path}  (control: supervisorctl -c {st.conf_path} status)")
    if any(i["statename"] != "RUNNING" for i in infos):
        raise typer.Exit(ExitCode.OPERATIONAL)


@app.command("down")
def down(inventory: options.Inventory = options.DEFAULT_INVENTORY) -> None:
    """Stop every program and supervisord."""
    from agent import stack

    st = stack.locate(inventory=real_path(inventory))
    console.print("stopped" if stack.down(st) else "not running")


@app.command("status")
def status(inventory: options.Inventory = options.DEFAULT_INVENTORY) -> None:
    """Show the supervised programs."""
    from agent import stack

    st = stack.locate(inventory=real_path(inventory))
    if not stack.is_up(st):
        console.print("supervisord is not running (start it with `make run`)")
        raise typer.Exit(ExitCode.OPERATIONAL)
    console.print(_table(stack.proxy(st).supervisor.getAllProcessInfo()))


@app.command("render")
def render(inventory: options.Inventory = options.DEFAULT_INVENTORY) -> None:
    """Print the supervisord.conf that `up` would write (every environment value shown as ***)."""
    import os

    from agent import stack
    from agent.stack.environment import program_environments

    st = stack.locate(inventory=real_path(inventory))
    tokens = dict.fromkeys(stack.token_names(st), "***")
    console.print(stack.render_conf(st, environments=program_environments(st, os.environ, tokens), mask=True),
                  markup=False)
