"""Which price the paper exchange uses where, as Hyperliquid documents it: TP/SL orders trigger on
the mark price (not the book's mid); ``metaAndAssetCtxs`` reports that mark as ``markPx`` beside the
book's ``midPx``. The trigger is decided at one fixed instant on the real ledger (real SQLite, the
real price process) so the mark and the mid are known exactly; the SDK sees the same prices."""
from __future__ import annotations

import time
from pathlib import Path

import pytest
from hyperliquid.info import Info

from bot.exchange.ledger import Ledger
from bot.exchange.market import Market
from bot.exchange.market_views import MarketViews
from bot.exchange.models import open_database
from bot.exchange.trading import Trading

NOW = 1_790_000_123_456  # a fixed instant: the same seed gives the same mark and book
TRADER = "0x" + "ab" * 20


def _ledger(tmp_path: Path) -> tuple[Ledger, Trading]:
    led = Ledger(open_database(tmp_path / "exchange.db"), Market(seed=42, coins=["BTC"]), clock=lambda: NOW)
    led.fund(TRADER, 100_000.0)
    led.commit()
    return led, Trading(led)


def test_a_stop_loss_triggers_on_the_mark_not_the_mid(tmp_path: Path) -> None:
    led, trading = _ledger(tmp_path)
    mark, book = led.market.mark("BTC", NOW), led.market.book("BTC", NOW)
    assert book.mid > mark  # the instant is one where the two differ (the mid lies above the mark)
    buy = {"a": 0, "b": True, "p": str(round(mark * 1.01)), "s": "0.01", "r": False, "t": {"limit": {"tif": "Ioc"}}}
    status, _ = trading.place(TRADER, buy, NOW)
    assert "filled" in status, status
    led.commit()  # the server commits after every request and tick
    trigger = int(mark)  # the mark has reached the stop; the mid (above it) has not
    stop = {"a": 0, "b": False, "p": str(round(mark * 0.9)), "s": "0.01", "r": True,
            "t": {"trigger": {"triggerPx": str(trigger), "isMarket": True, "tpsl": "sl"}}}
    status, order = trading.place(TRADER, stop, NOW)
    assert "resting" in status and order is not None, status
    led.commit()
    trading.tick(NOW)
    assert order.status == "filled"
    assert led.position(TRADER, "BTC") == 0.0


def test_a_stop_loss_beyond_the_mark_waits(tmp_path: Path) -> None:
    led, trading = _ledger(tmp_path)
    mark = led.market.mark("BTC", NOW)
    buy = {"a": 0, "b": True, "p": str(round(mark * 1.01)), "s": "0.01", "r": False, "t": {"limit": {"tif": "Ioc"}}}
    trading.place(TRADER, buy, NOW)
    led.commit()
    stop = {"a": 0, "b": False, "p": str(round(mark * 0.9)), "s": "0.01", "r": True,
            "t": {"trigger": {"triggerPx": str(int(mark) - 1), "isMarket": True, "tpsl": "sl"}}}
    _, order = trading.place(TRADER, stop, NOW)
    trading.tick(NOW)
    assert order is not None and order.status == "open"
    assert led.position(TRADER, "BTC") == pytest.approx(0.01)


def test_asset_contexts_report_the_mark_and_the_mid() -> None:
    market = Market(seed=42, coins=["BTC"])
    ctx = MarketViews(market, ["BTC"]).asset_ctx("BTC", NOW)
    book = market.book("BTC", NOW)
    assert float(ctx["markPx"]) == market.mark("BTC", NOW) == float(ctx["oraclePx"])
    assert float(ctx["midPx"]) == book.mid != float(ctx["markPx"])
    assert [float(p) for p in ctx["impactPxs"]] == [book.best_bid, book.best_ask]


def test_the_sdk_sees_the_mark_the_clearinghouse_uses(hl_info: Info) -> None:
    meta, ctxs = hl_info.meta_and_asset_ctxs()
    for asset, ctx in zip(meta["universe"], ctxs, strict=True):
        assert ctx["markPx"] == ctx["oraclePx"], asset
        bid, ask = (float(p) for p in ctx["impactPxs"])
        assert bid < float(ctx["midPx"]) < ask and bid <= float(ctx["markPx"]) <= ask, (asset, ctx)


def test_candles_and_the_days_open_are_prices_an_order_could_carry(hl_info: Info) -> None:
    """Hyperliquid's candles and prevDayPx are trade prices, on the tick grid (5 significant figures,
    6 - szDecimals decimals). The paper exchange wrote its unrounded price process: ETH closes such
    as "3004.45" and a prevDayPx of "3120.280291", so a bot that places a limit at the last close
    (or the day's open) was refused "Price must be divisible by tick size." on paper only."""
    from decimal import Decimal

    from bot.exchange.rules import on_tick

    now = int(time.time() * 1000)
    meta, ctxs = hl_info.meta_and_asset_ctxs()
    for asset, (spec, ctx) in enumerate(zip(meta["universe"], ctxs, strict=True)):
        coin, dec = spec["name"], spec["szDecimals"]
        rows = hl_info.candles_snapshot(coin, "1m", now - 3 * 3_600_000, now)
        assert rows, coin
        off = [(k, r[k]) for r in rows for k in "ochl" if not on_tick(Decimal(r[k]), dec)]
        assert off == [], f"{coin} (asset {asset}): candle prices off the tick grid: {off[:5]}"
        assert on_tick(Decimal(ctx["prevDayPx"]), dec), f"{coin}: prevDayPx {ctx['prevDayPx']}"
