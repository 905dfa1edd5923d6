"""The lifecycle's settings and the deadlines one pass collects."""
from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime


@dataclass(frozen=True)
class LifecycleSettings:
    """The inventory's ``notify`` settings the lifecycle reads, in seconds."""

    group_wait: float = 5.0
    group_interval: float = 60.0
    inhibit_grace: float = 30.0
    """After a parent recovers, its dependents stay held back this long (a restarted bot needs a
    few seconds before its endpoints answer: that warm-up must not page)."""
    dependency_hold: float = 90.0
    """At most this long after it opened, a dependent waits for its parents to be seen healthy
    (:mod:`agent.notify.lifecycle.dependency_hold`)."""
    remediation_wait: float = 10.0
    """The first alert of a problem that names ``remediate:`` waits at most this long for the
    remediation's outcome (:mod:`agent.notify.lifecycle.remediation_notes`)."""


@dataclass
class Deadlines:
    """The moments after ``now`` at which a later pass would queue something waiting now."""

    now: datetime
    found: list[datetime] = field(default_factory=list)

    def add(self, when: datetime) -> None:
        if when > self.now:
            self.found.append(when)

    @property
    def earliest(self) -> datetime | None:
        return min(self.found, default=None)
