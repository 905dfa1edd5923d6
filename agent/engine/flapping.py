"""Flap detection, Icinga style, over a check's last N results.

The history is the list of the last ``window`` raw states (oldest first). Each change between
two consecutive results is weighted linearly from 0.8 (the oldest change) to 1.2 (the newest),
and the percent state change is ``100 * sum(weights of changes) / (window - 1)``. The check
starts FLAPPING when that reaches ``start`` and stops when it falls below ``stop`` (``stop <
start``: hysteresis, so it does not flap about flapping). Nothing is decided before the
history is full, so a young check never flaps.

The history lives in ``CheckStatus.extra["flapping"]`` and is persisted with the check state,
so an agent restart neither forgets a flapping check nor announces it twice.
"""
from __future__ import annotations

from collections.abc import MutableMapping, Sequence
from dataclasses import dataclass
from typing import Any, Literal

EXTRA_KEY = "flapping"


def percent_state_change(states: Sequence[str], window: int) -> float:
    """The weighted percent of state changes in ``states`` (oldest first), 0..100."""
    recent = list(states)[-window:]
    if len(recent) < 2:
        return 0.0
    changes = len(recent) - 1
    total = 0.0
    for i in range(changes):
        if recent[i] != recent[i + 1]:
            total += 0.8 + 0.4 * (i / (changes - 1) if changes > 1 else 1.0)
    return 100.0 * total / max(1, window - 1)


@dataclass(frozen=True)
class FlapChange:
    """Flapping began (``started``) or ended, at this percent of weighted changes."""

    started: bool
    percent: float


def is_flapping(extra: MutableMapping[str, Any] | None) -> bool:
    return bool((extra or {}).get(EXTRA_KEY, {}).get("active"))


def fold(extra: MutableMapping[str, Any], state: str, *, window: int, start: float, stop: float) -> FlapChange | None:
    """Add one raw state to the history in ``extra``; return the start or end of flapping."""
    data = dict(extra.get(EXTRA_KEY) or {})
    history = [*list(data.get("history") or []), state][-window:]
    percent = percent_state_change(history, window)
    active = bool(data.get("active"))
    change: Literal["start", "stop"] | None = None
    if len(history) >= window and not active and percent >= start:
        active, change = True, "start"
    elif active and percent < stop:
        active, change = False, "stop"
    extra[EXTRA_KEY] = {"history": history, "active": active, "percent": round(percent, 1)}
    if change is None:
        return None
    return FlapChange(started=change == "start", percent=percent)
