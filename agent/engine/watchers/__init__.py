"""Event-driven detection: process exits (pidfd + supervisord events) and heartbeat deadlines.

Public API: :func:`run_detection` (started by the resident agent), :class:`Detection`.
"""
from __future__ import annotations

from agent.engine.watchers.detection import Detection, run_detection

__all__ = ["Detection", "run_detection"]
