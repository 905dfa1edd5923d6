"""docs/modules.md is the generated reference: it must match the models (run `make docs`)."""
from __future__ import annotations

from pathlib import Path

from agent.modules.__main__ import markdown

DOC = Path(__file__).resolve().parents[3] / "docs" / "modules.md"


def test_docs_modules_matches_the_models():
    assert DOC.read_text() == markdown(), "docs/modules.md is stale: run `make docs` and commit it"
