"""Suite-wide collection order: modules with end-to-end tests (``slow``) first.

``make test`` spreads the suite over pytest-xdist workers (``--dist loadgroup``), which hand out
tests in collection order (``xdist_group`` groups first). The end-to-end modules take most of
the time; started first, they end before the short unit tests that fill the workers last,
instead of one of them starting last and running alone. Only the order changes (stable, and
whole modules move together): every test still passes alone and in any order.
"""
from __future__ import annotations

import pytest


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    slow = {getattr(item, "module", None) for item in items if item.get_closest_marker("slow") is not None}
    slow.discard(None)
    items.sort(key=lambda item: getattr(item, "module", None) not in slow)
