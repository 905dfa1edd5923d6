"""Suite-wide collection order: the end-to-end tests (marked ``slow``) first.

``make test`` runs ``-n 4 --dist loadgroup``: pytest-xdist hands out the ``xdist_group`` groups
first (largest first), then every other test one at a time in collection order. In path order the
end-to-end suites (tests/e2e, 20-45 s a test) came after 2,600 unit tests of well under a second,
so the run ended on a few long tests with the other workers idle. Longest first is the classic
remedy: the short tests fill the end instead. Only the order changes; the order within each part
is the collection's own (a stable sort), and every test still owns its ports and directories.
"""
from __future__ import annotations

import pytest


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    items.sort(key=lambda item: item.get_closest_marker("slow") is None)
