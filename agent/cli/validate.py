"""``agent validate [PATH...]``: check playbooks and the inventory; print every error."""
from __future__ import annotations

import os

import typer

from agent.cli import options
from agent.cli.common import console, err_console, templates_dir
from botwarden.errors import ExitCode


def validate(
    paths: options.PlaybookPaths = None,
    inventory: options.Inventory = options.DEFAULT_INVENTORY,
) -> None:
    """Validate playbooks and inventory. Exit 0 when valid, 1 with every error printed."""
    from agent.modules.registry import default_registry
    from agent.playbook import load_config

    targets = list(paths) if paths else [inventory.resolve().parent / "playbooks"]
    result = load_config(inventory, targets, default_registry(), env=dict(os.environ),
                         templates_dir=templates_dir(inventory))
    for d in result.diagnostics:
        err_console.print(str(d), markup=False)
    if result.diagnostics:
        err_console.print(f"{len(result.diagnostics)} error(s)", style="bold red")
        raise typer.Exit(ExitCode.FAILED)
    cfg = result.config
    assert cfg is not None
    console.print(
        f"ok: {len(cfg.playbooks)} playbook(s), {len(cfg.bound_checks)} check(s) on "
        f"{len(cfg.hosts)} host(s)"
    )
