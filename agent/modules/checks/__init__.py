"""Check modules. ``ALL`` lists them for the registry."""
from __future__ import annotations

from agent.modules.base import CheckModule

ALL: list[type[CheckModule]] = []
