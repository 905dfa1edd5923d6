"""The bot's websocket feed against a real paper exchange: market data and fills from the
socket, REST while it is down or a channel is silent, reconnection with backoff, and the
socket's state on /health and /metrics."""
from __future__ import annotations

import functools
import time
from collections.abc import Iterator
from typing import Any

import pytest
from eth_account import Account
from hyperliquid.exchange import Exchange

from bot.trading.gateway import Gateway
from bot.trading.market_feed import MarketFeed
from bot.trading.metrics import BotMetrics
from bot.trading.status import RuntimeStatus
from botwarden.settings import PAPER_DEV_PRIVATE_KEY
from tests.support.stack import wait_until

DEV = Account.from_key(PAPER_DEV_PRIVATE_KEY)


wait_for = functools.partial(wait_until, interval=0.05)


def rest_calls(metrics: BotMetrics, method: str) -> float:
    value = metrics.registry.get_sample_value("api_requests_total", {"method": method, "status": "ok"})
    return value or 0.0


class World:
    def __init__(self, exchange: Any, stale_s: float = 1.5) -> None:
        self.exchange = exchange
        self.metrics = BotMetrics()
        self.feed = MarketFeed(exchange.url, DEV.address.lower(), ["BTC", "ETH"], "1m", stale_s=stale_s)
        self.metrics.watch_websocket(self.feed.status)
        self.status = RuntimeStatus(loop_seconds=1, candle_seconds=60, websocket=self.feed.status)
        self.feed.start()
        self.gw = Gateway(exchange.url, PAPER_DEV_PRIVATE_KEY, timeout_s=5, metrics=self.metrics, feed=self.feed)

    def connected(self) -> bool:
        return self.feed.status().state == "connected"

    def mids_from_socket(self) -> bool:
        before = rest_calls(self.metrics, "all_mids")
        mids = self.gw.mids()
        return set(mids) == {"BTC", "ETH", "SOL"} and rest_calls(self.metrics, "all_mids") == before


@pytest.fixture
def world(paper_exchange: Any) -> Iterator[World]:
    w = World(paper_exchange)
    try:
        yield w
    finally:
        w.feed.stop()


def test_mids_candles_and_fills_come_from_the_socket(world: World, paper_exchange: Any) -> None:
    wait_for(world.connected, what="connected")
    wait_for(world.mids_from_socket, what="mids from the socket")
    now = int(time.time() * 1000)
    first = world.gw.candles("BTC", "1m", now - 30 * 60_000, now)  # REST: seeds the window
    assert rest_calls(world.metrics, "candles") == 1
    # the pushes keep it current: later windows are served without REST
    again = wait_for(lambda: (w := world.gw.candles("BTC", "1m", now - 30 * 60_000, int(time.time() * 1000)))
                     and w, what="candles from the socket")
    assert rest_calls(world.metrics, "candles") == 1
    assert [c["t"] for c in again][: len(first) - 1] == [c["t"] for c in first][: len(first) - 1]
    assert world.gw.fills() == []  # the first call asks REST (the periodic safety net), none yet
    assert rest_calls(world.metrics, "user_fills") == 1
    Exchange(DEV, paper_exchange.url).market_open("ETH", True, 0.05)
    pushed = wait_for(lambda: world.gw.fills(), what="the fill from the socket")
    assert pushed[0]["coin"] == "ETH" and rest_calls(world.metrics, "user_fills") == 1


def test_down_socket_falls_back_to_rest_and_reconnects(world: World, paper_exchange: Any) -> None:
    wait_for(world.connected, what="connected")
    wait_for(world.mids_from_socket, what="mids from the socket")
    paper_exchange.admin("POST", "/admin/faults", {"ws_outage": True})
    wait_for(lambda: world.feed.status().state != "connected", what="the socket down")
    before = rest_calls(world.metrics, "all_mids")
    assert set(world.gw.mids()) == {"BTC", "ETH", "SOL"}  # trading carries on, over REST
    assert rest_calls(world.metrics, "all_mids") == before + 1
    # waited for on /health's own figure: it is rounded to the millisecond, and the feed's 0.5004 s
    # read 0.5 there (ci34: `0.5 > 0.5`)
    wait_for(lambda: world.status.health()["websocket"]["down_for_s"] > 0.5, what="down for a while")
    health = world.status.health()["websocket"]
    assert health["state"] in ("down", "connecting") and health["down_for_s"] > 0.5
    text = world.metrics.render().decode()
    assert "trading_ws_connected 0.0" in text
    tries = world.feed.status().reconnects
    wait_for(lambda: world.feed.status().reconnects >= tries + 2, what="retries while refused")
    paper_exchange.admin("DELETE", "/admin/faults")
    wait_for(world.connected, what="reconnected")
    wait_for(world.mids_from_socket, what="mids from the socket again")
    assert world.status.health()["websocket"]["down_for_s"] == 0.0
    assert "trading_ws_connected 1.0" in world.metrics.render().decode()


def test_a_silent_channel_falls_back_while_the_socket_stays_up(world: World, paper_exchange: Any) -> None:
    wait_for(world.connected, what="connected")
    wait_for(world.mids_from_socket, what="mids from the socket")
    paper_exchange.admin("POST", "/admin/faults", {"ws_stall": ["allMids"]})
    wait_for(lambda: not world.mids_from_socket(), what="mids from REST during the stall")
    assert world.connected()  # candles and pongs still flow: the connection itself is fine
    paper_exchange.admin("DELETE", "/admin/faults")
    wait_for(world.mids_from_socket, what="mids from the socket again")


def test_a_silent_connection_is_dropped_and_reopened(world: World, paper_exchange: Any) -> None:
    wait_for(world.connected, what="connected")
    reconnects = world.feed.status().reconnects
    # Nothing at all comes through, pongs included: a half-open connection looks like this.
    paper_exchange.admin("POST", "/admin/faults", {"ws_stall": ["allMids", "candle", "bbo", "userFills", "pong"]})
    wait_for(lambda: world.feed.status().reconnects > reconnects, what="the watchdog reconnecting")
    paper_exchange.admin("DELETE", "/admin/faults")
    wait_for(world.mids_from_socket, what="mids after the reconnect")


def test_a_connection_that_answers_pings_but_delivers_no_data_is_down_and_reopened(world: World,
                                                                                    paper_exchange: Any) -> None:
    """Every data channel silent while pongs still come (a server that stopped feeding a live
    connection): data-wise the socket is down. It said connected with down_for_s 0 for as long as it
    lasted, so bot-health's websocket alert never fired and the bot never reconnected to get its
    feed back; a drop followed by the same silence was counted down. The same silence is now down
    either way, counted from the last data, and the connection is reopened."""
    wait_for(world.connected, what="connected")
    wait_for(world.mids_from_socket, what="mids from the socket")
    reconnects = world.feed.status().reconnects
    paper_exchange.admin("POST", "/admin/faults", {"ws_stall": ["allMids", "candle", "bbo", "userFills"]})
    try:
        wait_for(lambda: world.feed.status().down_for_s > world.feed.stale_s, timeout=20,
                 what="the data outage counted")
        wait_for(lambda: world.feed.status().reconnects > reconnects, timeout=20, what="the socket reopened")
        assert world.status.health()["websocket"]["down_for_s"] > world.feed.stale_s
    finally:
        paper_exchange.admin("DELETE", "/admin/faults")
    wait_for(world.mids_from_socket, timeout=20, what="mids from the socket again")
    assert world.feed.status().down_for_s == 0.0


def test_a_reconnect_reseeds_candles_from_rest(world: World, paper_exchange: Any) -> None:
    wait_for(world.connected, what="connected")
    now = int(time.time() * 1000)
    world.gw.candles("ETH", "1m", now - 10 * 60_000, now)
    wait_for(lambda: world.feed.candles("ETH", now - 10 * 60_000, int(time.time() * 1000)), what="pushed candles")
    paper_exchange.admin("POST", "/admin/ws/drop")
    wait_for(lambda: world.feed.candles("ETH", now - 10 * 60_000, int(time.time() * 1000)) is None,
             what="the seed forgotten")
    wait_for(world.connected, what="reconnected")
    calls = rest_calls(world.metrics, "candles")
    world.gw.candles("ETH", "1m", now - 10 * 60_000, int(time.time() * 1000))
    assert rest_calls(world.metrics, "candles") == calls + 1  # candles missed while down come from REST
