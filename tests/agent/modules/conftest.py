"""Fixtures for the module suites: a real supervisord (see tests/support/supervisord.py)."""
from __future__ import annotations

from tests.support.supervisord import supervisord_factory  # noqa: F401  (pytest fixture)
