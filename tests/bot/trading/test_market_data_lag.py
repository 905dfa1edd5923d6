"""A websocket that delivers late (the `ws_delay_ms` drill) shows as old market data: the feed measures
its lag on the messages that carry their own time (``bbo``) and dates pushed candles by it on
/health, while the connection itself stays up (a lag beyond ``stale_s`` is a silence the watchdog
already drops)."""
from __future__ import annotations

import functools
import time
from collections.abc import Iterator
from typing import Any

import pytest
from eth_account import Account

from bot.trading.gateway import Gateway
from bot.trading.market_feed import MarketFeed
from bot.trading.metrics import BotMetrics
from bot.trading.status import RuntimeStatus
from botwarden.settings import PAPER_DEV_PRIVATE_KEY
from tests.support.stack import wait_until

DEV = Account.from_key(PAPER_DEV_PRIVATE_KEY)
DELAY_S = 3.0


wait_for = functools.partial(wait_until, interval=0.05)


class Bot:
    def __init__(self, exchange: Any) -> None:
        self.metrics = BotMetrics()
        self.status = RuntimeStatus(loop_seconds=1, candle_seconds=60, connected=True)

        def fresh(at: float) -> None:
            self.status.market_data_wall = at

        self.feed = MarketFeed(exchange.url, DEV.address.lower(), ["BTC"], "1m", stale_s=6.0, on_candle=fresh)
        self.status.websocket = self.feed.status
        self.feed.start()
        self.gw = Gateway(exchange.url, PAPER_DEV_PRIVATE_KEY, timeout_s=5, metrics=self.metrics, feed=self.feed)

    def rest_mids(self) -> float:
        return self.metrics.registry.get_sample_value("api_requests_total", {"method": "all_mids", "status": "ok"}) or 0


@pytest.fixture
def bot(paper_exchange: Any) -> Iterator[Bot]:
    b = Bot(paper_exchange)
    try:
        yield b
    finally:
        b.feed.stop()


def test_a_lagging_socket_shows_as_old_data(bot: Bot, paper_exchange: Any) -> None:
    wait_for(lambda: bot.status.health()["market_data_age_s"] is not None
             and bot.status.health()["market_data_age_s"] < 1.0, what="fresh pushed data")
    before = bot.rest_mids()
    assert bot.gw.mids() and bot.rest_mids() == before  # from the socket
    paper_exchange.admin("POST", "/admin/faults", {"ws_delay_ms": DELAY_S * 1000})
    try:
        wait_for(lambda: bot.status.health()["websocket"]["lag_s"] >= DELAY_S * 0.8,
                 what="the lag measured")
        wait_for(lambda: bot.status.health()["market_data_age_s"] >= DELAY_S * 0.8, what="candles dated by the lag")
        # data keeps flowing (late): every reading over a few pushes says how old it is, not
        # only the gap when the delay began
        samples = []
        n = bot.feed.status().last_message_age_s
        for _ in range(20):
            time.sleep(0.1)
            samples.append(bot.status.health())
        assert n is not None and all(h["websocket"]["state"] == "connected" for h in samples)
        ages = [h["market_data_age_s"] for h in samples]
        assert min(ages) >= DELAY_S * 0.8, ages
    finally:
        paper_exchange.admin("DELETE", "/admin/faults")
    wait_for(lambda: bot.status.health()["websocket"]["lag_s"] < 1.0, what="the lag gone")
