"""Reports computed from the bot's and the agent's stores (the ``report`` action sends them).

Public API::

    from agent.reports import Period, Report, compute_report, resolve_period
    from agent.reports import load_bot_frames, load_agent_records
"""
from __future__ import annotations

from agent.reports.period import parse_instant, resolve_period
from agent.reports.sources import AgentRecords, BotFrames, load_agent_records, load_bot_frames
from agent.reports.trading import (
    DEFAULT_UPTIME_GRACE_S,
    IncidentLine,
    Period,
    PositionLine,
    RemediationLine,
    Report,
    TradeLine,
    compute_report,
)

__all__ = [
    "DEFAULT_UPTIME_GRACE_S",
    "AgentRecords",
    "BotFrames",
    "IncidentLine",
    "Period",
    "PositionLine",
    "RemediationLine",
    "Report",
    "TradeLine",
    "compute_report",
    "load_agent_records",
    "load_bot_frames",
    "parse_instant",
    "resolve_period",
]
