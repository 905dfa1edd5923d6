"""The paper exchange: a local server speaking Hyperliquid's HTTP API (``/info``, ``/exchange``)
closely enough that the unmodified hyperliquid-python-sdk trades on it, plus a fault-injection
admin API. See :mod:`bot.exchange.server` for the entry points and the admin endpoints.
"""
from __future__ import annotations

from bot.exchange.server import (
    DEFAULT_ADMIN_TOKEN,
    DEV_ADDRESS,
    PaperExchange,
    RunningExchange,
    main,
    serve_in_thread,
)

__all__ = ["DEFAULT_ADMIN_TOKEN", "DEV_ADDRESS", "PaperExchange", "RunningExchange", "main", "serve_in_thread"]
