"""The alert-lifecycle parts of the language: dependencies, flapping, escalation, maintenance.

Broken files live in ``broken_lifecycle/`` (one mistake each, one positioned diagnostic).
"""
from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

import pytest

from agent.modules.registry import Registry
from agent.playbook import load_config
from agent.playbook.inventory import MaintenanceWindow

from .conftest import GOOD
from .corpus import Case, the_one_diagnostic

BROKEN = Path(__file__).parent / "broken_lifecycle"


CASES = [
    Case("depends_on_missing.yaml", 11, 18, "depends_on: no other check named 'bot proces'",
         "did you mean 'bot process'?"),
    Case("flapping_thresholds_reversed.yaml", 8, 15, "flapping 'stop' (40) must be below 'start' (20)"),
    Case("inventory_escalate_unknown_route.yaml", 12, 35, "route 'default' escalates to unknown route 'pagr'",
         "did you mean 'pager'?"),
    Case("inventory_maintenance_both_forms.yaml", 13, 5, "either cron + duration, or weekdays/start/end"),
    Case("inventory_maintenance_bad_time.yaml", 15, 12, "'25:00' is not a time"),
]


@pytest.mark.parametrize("case", CASES, ids=[c.file for c in CASES])
def test_broken_lifecycle_file_gives_one_positioned_diagnostic(case: Case, registry: Registry) -> None:
    path = BROKEN / case.file
    if case.file.startswith("inventory"):
        result = load_config(path, [GOOD / "playbooks"], registry, env={})
    else:
        result = load_config(GOOD / "inventory.yaml", [GOOD / "playbooks" / "emergency.yaml", path], registry, env={})
    the_one_diagnostic(result, case)


def test_every_lifecycle_broken_file_is_covered() -> None:
    assert {p.name for p in BROKEN.iterdir() if p.suffix == ".yaml"} == {c.file for c in CASES}


UTC = UTC


@pytest.mark.parametrize(("window", "at", "active"), [
    (dict(weekdays=["sat"], start="22:00", end="02:00"), datetime(2026, 1, 3, 23, 0, tzinfo=UTC), True),
    (dict(weekdays=["sat"], start="22:00", end="02:00"), datetime(2026, 1, 4, 1, 59, tzinfo=UTC), True),
    (dict(weekdays=["sat"], start="22:00", end="02:00"), datetime(2026, 1, 4, 2, 0, tzinfo=UTC), False),
    (dict(weekdays=["sat"], start="22:00", end="02:00"), datetime(2026, 1, 2, 23, 0, tzinfo=UTC), False),
    (dict(start="09:00", end="10:00", timezone="Europe/Paris"), datetime(2026, 1, 5, 8, 30, tzinfo=UTC), True),
    (dict(start="09:00", end="10:00", timezone="Europe/Paris"), datetime(2026, 1, 5, 9, 30, tzinfo=UTC), False),
    (dict(cron="0 2 * * 0", duration="1h"), datetime(2026, 1, 4, 2, 30, tzinfo=UTC), True),  # a Sunday
    (dict(cron="0 2 * * 0", duration="1h"), datetime(2026, 1, 4, 3, 0, tzinfo=UTC), False),
    (dict(cron="0 2 * * 0", duration="1h"), datetime(2026, 1, 5, 2, 30, tzinfo=UTC), False),  # a Monday
])
def test_maintenance_window_is_active_exactly_inside(window: dict, at: datetime, active: bool) -> None:
    assert MaintenanceWindow(name="w", **window).active(at) is active


def test_the_repository_inventory_and_playbooks_declare_lifecycle_settings(registry: Registry) -> None:
    repo = Path(__file__).resolve().parents[3]
    from agent.modules.registry import default_registry

    result = load_config(repo / "inventory.yaml", [repo / "playbooks"], default_registry(), env={})
    assert result.diagnostics == []
    config = result.config
    assert config.inventory.maintenance and any(r.escalate for r in config.inventory.notify.routes)
    health = config.playbooks["bot-health"]
    dependents, grew = {"bot process"}, True
    while grew:  # everything that depends on the process, directly or through another check
        more = {c.name for c in health.checks if set(c.depends_on) & dependents}
        grew = not more <= dependents
        dependents |= more
    assert {"bot health endpoint", "bot loop age", "market data age", "bot heartbeat"} <= dependents
