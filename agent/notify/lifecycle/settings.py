"""The lifecycle's settings and the deadlines one pass collects."""
from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime


@dataclass(frozen=True)
class LifecycleSettings:
    """The inventory's ``notify.group_wait`` and ``notify.group_interval``, in seconds."""

    group_wait: float = 5.0
    group_interval: float = 60.0
    inhibit_grace: float = 30.0
    """After a parent recovers, its dependents stay held back this long (a restarted bot needs a
    few seconds before its endpoints answer: that warm-up must not page)."""


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
