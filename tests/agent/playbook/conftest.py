from __future__ import annotations

from pathlib import Path

import pytest

from agent.modules.registry import Registry

from .modules_for_tests import make_registry

HERE = Path(__file__).parent
GOOD = HERE / "good"
BROKEN = HERE / "broken"


@pytest.fixture
def registry() -> Registry:
    return make_registry()
