from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from agent.modules.registry import Registry

from .modules_for_tests import make_registry

HERE = Path(__file__).parent
REPO = HERE.parents[2]
GOOD = HERE / "good"
BROKEN = HERE / "broken"


@pytest.fixture
def registry() -> Registry:
    return make_registry()


def copy_of_the_shipped_configuration(root: Path) -> Path:
    """``root`` with a copy of the repository's playbooks, templates and inventory."""
    shutil.copytree(REPO / "playbooks", root / "playbooks")
    shutil.copytree(REPO / "templates", root / "templates")
    shutil.copy(REPO / "inventory.yaml", root / "inventory.yaml")
    return root
