"""Fixtures for the bot's tests: a real paper exchange on loopback and a real engine on it."""
from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from botwarden.settings import PAPER_DEV_PRIVATE_KEY, StackSettings


@pytest.fixture
def paper_exchange(tmp_path: Path) -> Iterator[Any]:
    """A paper exchange served in-process on an ephemeral 127.0.0.1 port (real HTTP, real SQLite)."""
    from bot.exchange.server import serve_in_thread

    ex = serve_in_thread(state=tmp_path / "exchange.db", seed=42, coins=["BTC", "ETH", "SOL"])
    try:
        yield ex
    finally:
        ex.stop()


@pytest.fixture
def bot_settings(tmp_path: Path, paper_exchange: Any) -> StackSettings:
    """Stack settings pointing the bot at ``paper_exchange``; files under ``tmp_path``."""
    return StackSettings.model_validate({
        "root": str(tmp_path),
        "exchange": {"port": paper_exchange.port},
        # Hourly candles keep MACD flips (legitimate exits and re-entries) out of a test's seconds.
        "bot": {"port": 0, "db": "bot.db", "heartbeat_file": "bot.heartbeat", "loop_seconds": 0.5,
                "candle_interval": "1h"},
    })


@pytest.fixture
def make_engine(bot_settings: StackSettings) -> Iterator[Callable[..., Any]]:
    """Build a real TradingEngine (Gateway + Store) on the paper exchange; ``db`` and bot
    overrides select a database file and settings (e.g. ``reconcile_policy``)."""
    from bot.trading.engine import TradingEngine
    from bot.trading.gateway import Gateway
    from bot.trading.metrics import BotMetrics
    from bot.trading.status import RuntimeStatus
    from bot.trading.store import Store

    stores: list[Any] = []

    def build(db: str = "bot.db", **bot_overrides: Any) -> Any:
        data = bot_settings.model_dump()
        data["bot"].update(bot_overrides, db=db)
        settings = StackSettings.model_validate(data)
        metrics = BotMetrics()
        status = RuntimeStatus(loop_seconds=settings.bot.loop_seconds, candle_seconds=3600)
        gw = Gateway(settings.exchange_url, PAPER_DEV_PRIVATE_KEY, timeout_s=5, metrics=metrics,
                     lookup_backoff_s=0.05)
        store = Store(settings.path(db))
        stores.append(store)
        return TradingEngine(settings, gw, store, metrics, status)

    yield build
    for s in stores:
        s.close()
