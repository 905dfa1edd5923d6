"""``agent modules``: the reference of every check and action module, from their models."""
from __future__ import annotations

from typing import Annotated

import typer

from agent.cli.common import console


def modules(
    markdown: Annotated[bool, typer.Option("--markdown", help="print Markdown (as in docs/modules.md)")] = False,
) -> None:
    """Print every module, its parameters (type, default, description) and facts."""
    from agent.modules.reference import render_reference
    from agent.modules.registry import default_registry

    text = render_reference(default_registry(), fmt="markdown" if markdown else "text")
    console.print(text, markup=False, highlight=False, soft_wrap=True)
