"""A real trading engine that signs with its own API wallet (approved by the paper account's key)
on the paper exchange: the fixtures ``wallet`` and ``engine`` of the tests where the exchange
refuses that wallet. Import both into a test module to use them."""
from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
from eth_account import Account

from bot import api_wallets
from bot.trading.engine import TradingEngine
from bot.trading.gateway import Gateway
from bot.trading.metrics import BotMetrics
from bot.trading.status import RuntimeStatus
from bot.trading.store import Store
from botwarden.settings import PAPER_DEV_PRIVATE_KEY, StackSettings

DEV = Account.from_key(PAPER_DEV_PRIVATE_KEY).address
NAME = "botwarden-bot"


@pytest.fixture
def wallet(bot_settings: StackSettings) -> Any:
    agent = Account.create()
    api_wallets.approve(bot_settings.exchange_url, PAPER_DEV_PRIVATE_KEY, agent.address, NAME)
    return agent


@pytest.fixture
def engine(bot_settings: StackSettings, wallet: Any) -> Iterator[TradingEngine]:
    metrics = BotMetrics()
    status = RuntimeStatus(loop_seconds=bot_settings.bot.loop_seconds, candle_seconds=3600)
    gw = Gateway(bot_settings.exchange_url, wallet.key.hex(), timeout_s=5, metrics=metrics,
                 account_address=DEV, lookup_backoff_s=0.05)
    store = Store(bot_settings.path("bot.db"))
    try:
        yield TradingEngine(bot_settings, gw, store, metrics, status)
    finally:
        store.close()
