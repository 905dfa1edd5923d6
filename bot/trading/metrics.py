"""Prometheus metrics of the bot, in a registry of its own (no import-time global state).

Names follow the operations guide the operators already use (seed 000): ``trading_win_rate``,
``trading_positions_active``, ``api_request_duration_seconds``, ``api_requests_total{status}``,
``process_resident_memory_bytes``; and Prometheus' conventions, which ``promtool check metrics``
enforces: ``_total`` only on counters, the unit as a suffix. So the guide's ``trading_pnl_total``
(a gauge: P&L goes down too) is exported as ``trading_pnl_usd``.
"""
from __future__ import annotations

from collections.abc import Callable
from typing import Any

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, ProcessCollector, generate_latest

API_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0)


class BotMetrics:
    """Every metric the bot exports. ``render()`` gives the Prometheus text format."""

    def __init__(self) -> None:
        self.registry = CollectorRegistry()
        r = self.registry
        # Process memory and CPU (process_resident_memory_bytes, ...) from /proc.
        ProcessCollector(registry=r)
        self.equity = Gauge("trading_equity_usd", "Account value on the exchange, USD (NaN: not known yet)",
                            registry=r)
        self.equity.set(float("nan"))  # unknown until the first reading, never a false 0
        self.pnl = Gauge("trading_pnl_usd", "Realized plus unrealized P&L, USD", registry=r)
        self.pnl_daily_percent = Gauge(
            "trading_pnl_daily_percent", "P&L since the start of the UTC day, % of that day's start equity",
            registry=r,
        )
        self.win_rate = Gauge("trading_win_rate", "Share of winning trades among the last 20 closed (0..1)",
                              registry=r)
        self.exposure_percent = Gauge("trading_exposure_percent", "Sum of |position notional|, % of equity",
                                      registry=r)
        self.positions_active = Gauge("trading_positions_active", "Open positions", registry=r)
        self.open_orders = Gauge("trading_open_orders", "Orders resting on the exchange", registry=r)
        self.halted = Gauge("trading_halted", "1 while new entries are halted", registry=r)
        self.market_data_age = Gauge("trading_market_data_age_seconds", "Age of the freshest candle data",
                                     registry=r)
        self.last_loop = Gauge("trading_loop_last_completed_timestamp_seconds",
                               "Unix time of the last completed loop iteration", registry=r)
        self.loop_duration = Histogram("trading_loop_duration_seconds", "Duration of one loop iteration",
                                       buckets=API_BUCKETS, registry=r)
        self.orders_total = Counter("trading_orders_total", "Orders sent, by intent and outcome",
                                    ["intent", "outcome"], registry=r)
        self.duplicates_avoided = Counter(
            "trading_duplicate_orders_avoided_total", "Orders not sent because the exchange already had the cloid",
            registry=r,
        )
        self.api_latency = Histogram("api_request_duration_seconds", "Exchange API call latency",
                                     ["method"], buckets=API_BUCKETS, registry=r)
        self.api_requests = Counter("api_requests_total", "Exchange API calls by outcome",
                                    ["method", "status"], registry=r)
        self.api_errors = Counter("api_errors_total", "Exchange API errors by kind", ["kind"], registry=r)

    def watch_websocket(self, status: Callable[[], Any]) -> None:
        """Export the market feed's socket, read at scrape time: ``trading_ws_connected`` (1/0),
        ``trading_ws_last_message_age_seconds`` (-1 before the first message),
        ``trading_ws_down_seconds`` and ``trading_ws_reconnects``."""
        r = self.registry
        Gauge("trading_ws_connected", "1 while the market-data websocket is connected", registry=r) \
            .set_function(lambda: 1.0 if status().state == "connected" else 0.0)
        Gauge("trading_ws_last_message_age_seconds",
              "Seconds since the websocket's last message (-1: none yet)",
              registry=r).set_function(lambda: -1.0 if (a := status().last_message_age_s) is None else a)
        Gauge("trading_ws_down_seconds", "Seconds the websocket has been down (0 while connected)",
              registry=r).set_function(lambda: status().down_for_s)
        Gauge("trading_ws_reconnects", "Websocket reconnections since start", registry=r) \
            .set_function(lambda: float(status().reconnects))

    def observe_api(self, method: str, seconds: float, error_kind: str | None) -> None:
        self.api_latency.labels(method=method).observe(seconds)
        self.api_requests.labels(method=method, status="error" if error_kind else "ok").inc()
        if error_kind:
            self.api_errors.labels(kind=error_kind).inc()

    def render(self) -> bytes:
        return generate_latest(self.registry)
