"""The seeded market, persistence across restarts, scheduled cancels, and the real command."""
from __future__ import annotations

import time
from collections.abc import Callable
from pathlib import Path

import pytest
from eth_account import Account
from hyperliquid.exchange import Exchange
from hyperliquid.info import Info
from hyperliquid.utils.signing import get_timestamp_ms, sign_l1_action

from bot.exchange import RunningExchange, serve_in_thread
from bot.exchange.market import Market
from bot.exchange.server import main
from botwarden.settings import PAPER_DEV_PRIVATE_KEY, load_settings
from tests.support import loopback

DEV = Account.from_key(PAPER_DEV_PRIVATE_KEY)


def closed_candles(info: Info, coin: str, interval: str, minutes: int) -> list[dict]:
    end = (int(time.time() * 1000) // 60_000) * 60_000 - 1  # last closed minute: identical everywhere
    # an interval's in-progress candle keeps growing; compare closed ones only
    return [k for k in info.candles_snapshot(coin, interval, end - minutes * 60_000, end) if k["T"] <= end]


def test_same_seed_same_candles_other_seed_other_market(tmp_path: Path) -> None:
    a = serve_in_thread(state=tmp_path / "a.db", seed=7)
    b = serve_in_thread(state=tmp_path / "b.db", seed=7)
    c = serve_in_thread(state=tmp_path / "c.db", seed=8)
    try:
        ia, ib, ic = (Info(x.url, skip_ws=True) for x in (a, b, c))
        ca = closed_candles(ia, "BTC", "1m", 600)
        assert len(ca) >= 500  # history exists at start
        assert ca == closed_candles(ib, "BTC", "1m", 600)
        assert ca != closed_candles(ic, "BTC", "1m", 600)
        assert closed_candles(ia, "ETH", "15m", 3000) == closed_candles(ib, "ETH", "15m", 3000)
    finally:
        for x in (a, b, c):
            x.stop()


def test_candles_are_consistent_across_intervals(hl_info: Info) -> None:
    ones = closed_candles(hl_info, "SOL", "1m", 60)
    fives = closed_candles(hl_info, "SOL", "5m", 60)
    first_five = next(k for k in fives if k["t"] == ones[0]["t"] or k["t"] > ones[0]["t"])
    members = [k for k in ones if first_five["t"] <= k["t"] < first_five["T"]]
    assert len(members) == 5
    assert first_five["o"] == members[0]["o"] and first_five["c"] == members[-1]["c"]
    assert float(first_five["h"]) == max(float(k["h"]) for k in members)
    assert float(first_five["l"]) == min(float(k["l"]) for k in members)
    for k in ones:
        assert float(k["l"]) <= min(float(k["o"]), float(k["c"])) <= max(float(k["o"]), float(k["c"])) <= float(k["h"])
        assert k["i"] == "1m" and k["s"] == "SOL" and k["T"] == k["t"] + 59_999


def test_book_surrounds_the_mid_and_time_moves_the_market() -> None:
    market = Market(seed=1, coins=["BTC"])
    now = int(time.time() * 1000)
    book = market.book("BTC", now)
    assert book.bids[0].px < book.mid < book.asks[0].px
    assert [x.px for x in book.bids] == sorted((x.px for x in book.bids), reverse=True)
    assert [x.px for x in book.asks] == sorted(x.px for x in book.asks)
    assert market.mark("BTC", now) != market.mark("BTC", now + 600_000)
    assert Market(seed=1, coins=["BTC"]).book("BTC", now) == book


def test_state_survives_a_restart(tmp_path: Path) -> None:
    state = tmp_path / "exchange.db"
    ex = serve_in_thread(state=state, seed=3)
    exchange = Exchange(DEV, ex.url)
    info = Info(ex.url, skip_ws=True)
    exchange.market_open("ETH", True, 0.3)
    px = round(float(info.all_mids()["BTC"]) * 0.9)
    oid = exchange.order("BTC", True, 0.01, px, {"limit": {"tif": "Gtc"}})["response"]["data"]["statuses"][0]["resting"]["oid"]
    nonce = get_timestamp_ms() + 5
    action = {"type": "cancel", "cancels": [{"a": 0, "o": 1}]}
    payload = {"action": action, "nonce": nonce, "signature": sign_l1_action(DEV, action, None, nonce, None, False),
               "vaultAddress": None, "expiresAfter": None}
    assert loopback.post(ex.url + "/exchange", json=payload).json()["status"] == "ok"
    before_state = info.user_state(DEV.address)
    fills_before = info.user_fills(DEV.address)
    ex.stop()

    again = serve_in_thread(state=state, seed=3)
    try:
        info2 = Info(again.url, skip_ws=True)
        [pos] = info2.user_state(DEV.address)["assetPositions"]
        assert pos["position"]["szi"] == "0.3"
        assert pos["position"]["entryPx"] == before_state["assetPositions"][0]["position"]["entryPx"]
        assert [o["oid"] for o in info2.open_orders(DEV.address)] == [oid]
        assert info2.user_fills(DEV.address) == fills_before
        replay = loopback.post(again.url + "/exchange", json=payload).json()
        assert replay == {"status": "err", "response": f"Invalid nonce: duplicate nonce {nonce}"}
        # new order ids continue after the old ones
        new = Exchange(DEV, again.url).order("BTC", True, 0.01, px, {"limit": {"tif": "Gtc"}})
        assert new["response"]["data"]["statuses"][0]["resting"]["oid"] > oid
    finally:
        again.stop()


def test_schedule_cancel_gates(paper_exchange: RunningExchange, hl_exchange: Exchange) -> None:
    now = get_timestamp_ms()
    too_soon = hl_exchange.schedule_cancel(now + 1000)
    assert too_soon["status"] == "err" and "too soon" in too_soon["response"]
    paper_exchange.admin("POST", "/admin/config", {"schedule_cancel_min_volume": 1_000_000})
    gated = hl_exchange.schedule_cancel(now + 60_000)
    assert gated == {"status": "err", "response":
                     "Cannot set scheduled cancel time until enough volume traded. Required: $1000000. Traded: $0.00."}
    paper_exchange.admin("POST", "/admin/config", {"schedule_cancel_min_volume": 0, "schedule_cancel_daily_limit": 0})
    limited = hl_exchange.schedule_cancel(now + 60_000)
    assert limited["status"] == "err" and "Too many scheduled cancel triggers" in limited["response"]
    paper_exchange.admin("POST", "/admin/config", {"schedule_cancel_daily_limit": 10})
    assert hl_exchange.schedule_cancel(now + 60_000) == {"status": "ok", "response": {"type": "default"}}
    assert hl_exchange.schedule_cancel(None) == {"status": "ok", "response": {"type": "default"}}
    assert paper_exchange.admin("GET", "/admin/state")["accounts"][DEV.address.lower()]["schedule_cancel_ms"] is None


@pytest.mark.slow
def test_schedule_cancel_cancels_every_open_order_at_its_time(hl_info: Info, hl_exchange: Exchange) -> None:
    px = round(float(hl_info.all_mids()["BTC"]) * 0.9)
    for i in range(3):
        hl_exchange.order("BTC", True, 0.01, px - i, {"limit": {"tif": "Gtc"}})
    oid = hl_info.open_orders(DEV.address)[0]["oid"]
    assert hl_exchange.schedule_cancel(get_timestamp_ms() + 5_100)["status"] == "ok"
    deadline = time.monotonic() + 15
    while hl_info.open_orders(DEV.address) and time.monotonic() < deadline:
        time.sleep(0.2)
    assert hl_info.open_orders(DEV.address) == []
    assert hl_info.query_order_by_oid(DEV.address, oid)["order"]["status"] == "scheduledCancel"


@pytest.mark.slow
def test_bot_paper_exchange_command_serves_the_sdk_and_stops_on_sigterm(
        spawn_paper_exchange: Callable[..., object], tmp_path: Path) -> None:
    spawned = spawn_paper_exchange(state=tmp_path / "cmd.db", seed=11)
    url = spawned.url  # type: ignore[attr-defined]
    resp = Exchange(DEV, url).market_open("SOL", True, 1.0)
    assert "filled" in resp["response"]["data"]["statuses"][0]
    assert Info(url, skip_ws=True).user_state(DEV.address)["assetPositions"][0]["position"]["coin"] == "SOL"
    assert spawned.stop() == 0  # type: ignore[attr-defined]
    assert (tmp_path / "cmd.db").exists()


def test_main_refuses_a_non_loopback_address(tmp_path: Path) -> None:
    settings = load_settings(root=str(tmp_path))
    assert main(settings, host="0.0.0.0", port=0, seed=1, state=str(tmp_path / "x.db")) == 2
    assert not (tmp_path / "x.db").exists()
