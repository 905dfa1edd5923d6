"""Command-line options shared by several commands, defined once."""
from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

Inventory = Annotated[
    Path, typer.Option("--inventory", "-i", help="inventory file (hosts, groups, notification targets)")
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

DEFAULT_INVENTORY = Path("inventory.yaml")
DEFAULT_PLAYBOOKS = [Path("playbooks")]
