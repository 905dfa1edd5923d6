"""Event-driven detection: process exits (pidfd + supervisord events) and heartbeat deadlines.

Public API: :class:`Detection` (one of the agent's collaborators).
"""
from __future__ import annotations

from agent.engine.watchers.detection import Detection

__all__ = ["Detection"]
