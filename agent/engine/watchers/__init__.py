"""Event-driven detection: process exits (pidfd + supervisord events) and heartbeat deadlines.

Public API: :class:`Detection` (one of the agent's collaborators), imported on first use (PEP 562):
``agent events-listener`` (started with every stack) needs only ``supervisor_events``' encoder,
and importing ``detection`` with the package brought in every check module and SQLAlchemy
(about 750 modules, 0.4 s of CPU at every stack start) for nothing.
"""
from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from agent.engine.watchers.detection import Detection

__all__ = ["Detection"]


def __getattr__(name: str) -> Any:
    if name != "Detection":
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    from agent.engine.watchers.detection import Detection

    return Detection
