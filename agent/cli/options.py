"""Command-line options shared by several commands, defined once."""
from __future__ import annotations

import os
from pathlib import Path
from typing import Annotated

import typer


def _named_inventory_exists(ctx: typer.Context, param: typer.CallbackParam, value: Path | None) -> Path | None:
    """An inventory named on the command line must exist (only the default may be absent: the
    built-in inventory stands in for it); a usage error (exit 2) otherwise. Something that is
    there but cannot be used (a symbolic link that loops, a FIFO) is loaded and reported with
    what it is, like any other broken file (the resident agent then falls back on the last good
    configuration instead of exiting)."""
    source = ctx.get_parameter_source(param.name or "inventory")
    if value is not None and source is not None and source.name != "DEFAULT" and not os.path.lexists(value):
        raise typer.BadParameter(f"{value} does not exist")
    return value


Inventory = Annotated[
    Path, typer.Option("--inventory", "-i", help="inventory file (hosts, groups, notification targets)",
                       callback=_named_inventory_exists)
]
InventoryIfGiven = Annotated[
    Path | None, typer.Option("--inventory", "-i", help="inventory file (hosts, groups, notification targets); "
                              "default ./inventory.yaml, or a built-in one when there is none")
]
"""The inventory option where a named file that does not exist must be an error."""
PlaybookPaths = Annotated[
    list[Path] | None, typer.Argument(help="playbook files or directories (default: playbooks/)")
]
CheckMode = Annotated[bool, typer.Option("--check", "-C", help="preview every side effect without doing it")]
Limit = Annotated[str | None, typer.Option("--limit", "-l", help="only these hosts (comma-separated)")]
Store = Annotated[str | None, typer.Option("--store", help="SQLAlchemy URL of the agent store")]

MAX_ID = 2**63 - 1
"""The largest row id SQLite stores: a larger incident or silence number is a usage error (exit 2),
not an integer the store cannot bind (an internal error)."""
IncidentId = Annotated[int, typer.Argument(help="incident number (agent status --problems shows it)", min=1,
                                           max=MAX_ID)]

DEFAULT_INVENTORY = Path("inventory.yaml")
DEFAULT_PLAYBOOKS = [Path("playbooks")]
