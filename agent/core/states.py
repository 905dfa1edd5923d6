"""Check states, ordered by badness."""
from __future__ import annotations

import enum


class State(enum.IntEnum):
    """Nagios-style states. UNKNOWN means the check itself could not tell (error, timeout)."""

    OK = 0
    WARNING = 1
    CRITICAL = 2
    UNKNOWN = 3

    @property
    def is_problem(self) -> bool:
        return self is not State.OK

    @classmethod
    def parse(cls, text: str) -> State:
        return cls[text.strip().upper()]


class Severity(enum.StrEnum):
    """How bad a check is when its expectation fails (for ``expect:`` checks)."""

    INFO = "info"
    WARNING = "warning"
    CRITICAL = "critical"

    def to_state(self) -> State:
        return State.CRITICAL if self is Severity.CRITICAL else State.WARNING
