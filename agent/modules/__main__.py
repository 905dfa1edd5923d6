"""``python -m agent.modules > docs/modules.md``: the module reference as Markdown (``make docs``)."""
from __future__ import annotations

from agent.modules.reference import render_reference
from agent.modules.registry import default_registry

HEADER = "<!-- Do not edit by hand: `make docs` regenerates this file from the modules' models. -->\n\n"


def markdown() -> str:
    return HEADER + render_reference(default_registry(), fmt="markdown").rstrip() + "\n"


if __name__ == "__main__":
    print(markdown(), end="")
