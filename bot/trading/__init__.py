"""The MACD trading bot (``bot run``): strategy, risk, state, reconciliation, HTTP surface.

Entry point: :func:`bot.trading.app.main`.
"""
from __future__ import annotations
