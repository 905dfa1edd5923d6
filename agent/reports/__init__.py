"""Reports computed from the bot's and the agent's stores (the ``report`` action sends them).

Public API::

    from agent.reports import Period, Report, compute_report, resolve_period
    from agent.reports import load_bot_frames, load_agent_records
    from agent.reports import read_log_summary, fetch_api_calls   # the log summary, API call volume
"""
from __future__ import annotations

from agent.reports.api_calls import ApiCallVolume, MethodCalls, fetch_api_calls, parse_api_calls
from agent.reports.logs import LogSummary, MessageCount, read_log_summary, summarize_log
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
    "ApiCallVolume",
    "BotFrames",
    "IncidentLine",
    "LogSummary",
    "MessageCount",
    "MethodCalls",
    "Period",
    "PositionLine",
    "RemediationLine",
    "Report",
    "TradeLine",
    "compute_report",
    "fetch_api_calls",
    "load_agent_records",
    "load_bot_frames",
    "parse_api_calls",
    "parse_instant",
    "read_log_summary",
    "resolve_period",
    "summarize_log",
]
