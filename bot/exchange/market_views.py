"""Market data in Hyperliquid's shapes (string-encoded numbers): meta, mids, books, candles,
asset contexts. Shared by ``/info`` and the websocket channels."""
from __future__ import annotations

from typing import Any

from bot.exchange.market import Candle, Market, tick_size
from bot.exchange.rules import wire

Json = Any


class MarketViews:
    def __init__(self, market: Market, coins: list[str]) -> None:
        self.market = market
        self.coins = coins

    def sz(self, coin: str, x: float) -> str:
        return wire(x, self.market.specs[coin].sz_decimals)

    def px(self, coin: str, x: float) -> str:
        """A price as Hyperliquid shows a traded or resting one: on the tick grid (the nearest tick:
        5 significant figures, 6 - szDecimals decimals), so a client may send it back in an order.
        Candles and the day's open come from the unrounded price process; book levels already are."""
        dec = self.market.specs[coin].sz_decimals
        tick = tick_size(x, dec)
        return wire(round(x / tick) * tick, 6 - dec)

    def meta(self) -> Json:
        return {"universe": [{"name": c, "szDecimals": s.sz_decimals, "maxLeverage": s.max_leverage,
                              "marginTableId": s.max_leverage} for c, s in self.market.specs.items()]}

    @staticmethod
    def spot_meta() -> Json:
        usdc = {"name": "USDC", "szDecimals": 8, "weiDecimals": 8, "index": 0,
                "tokenId": "0x6d1e7cde53ba9467b783cb7c530ce054", "isCanonical": True, "evmContract": None,
                "fullName": None}
        return {"universe": [], "tokens": [usdc]}

    def all_mids(self, now: int) -> dict[str, str]:
        return {c: wire(self.market.book(c, now).mid, 6) for c in self.coins}

    def asset_ctx(self, coin: str, now: int) -> Json:
        """``markPx`` is the mark the clearinghouse margins and triggers TP/SL with; ``midPx`` the
        book's mid. Paper: no external feeds, so the oracle is the mark's own price process."""
        book = self.market.book(coin, now)
        mark = self.market.mark(coin, now)
        day = self.market.candles(coin, "1d", now - 86_400_000, now, now)
        return {"funding": "0.0000125", "openInterest": "0.0", "prevDayPx": self.px(coin, day[0].o if day else mark),
                "dayNtlVlm": "0.0", "premium": "0.0", "oraclePx": wire(mark, 6), "markPx": wire(mark, 6),
                "midPx": wire(book.mid, 6), "impactPxs": [wire(book.best_bid, 6), wire(book.best_ask, 6)]}

    def meta_and_asset_ctxs(self, now: int) -> Json:
        return [self.meta(), [self.asset_ctx(c, now) for c in self.coins]]

    def l2_book(self, coin: str, now: int) -> Json:
        book = self.market.book(coin, now)
        side = lambda levels: [{"px": self.px(coin, x.px), "sz": self.sz(coin, x.sz), "n": x.n}  # noqa: E731
                               for x in levels]
        return {"coin": coin, "time": now, "levels": [side(book.bids), side(book.asks)]}

    def bbo(self, coin: str, now: int) -> Json:
        book = self.market.book(coin, now)
        level = lambda x: {"px": self.px(coin, x.px), "sz": self.sz(coin, x.sz), "n": x.n}  # noqa: E731
        return {"coin": coin, "time": now, "bbo": [level(book.bids[0]), level(book.asks[0])]}

    def candle(self, coin: str, interval: str, k: Candle) -> Json:
        return {"t": k.t, "T": k.T, "s": coin, "i": interval, "o": self.px(coin, k.o),
                "c": self.px(coin, k.c), "h": self.px(coin, k.h), "l": self.px(coin, k.l),
                "v": self.sz(coin, k.v), "n": k.n}

    def candles(self, coin: str, interval: str, start: int, end: int, now: int) -> list[Json]:
        return [self.candle(coin, interval, k) for k in self.market.candles(coin, interval, start, end, now)]

    def current_candle(self, coin: str, interval: str, now: int) -> Json | None:
        step = self._step_ms(interval)
        found = self.market.candles(coin, interval, now - now % step, now, now)
        return self.candle(coin, interval, found[-1]) if found else None

    @staticmethod
    def _step_ms(interval: str) -> int:
        from bot.exchange.market import INTERVAL_SECONDS

        return INTERVAL_SECONDS[interval] * 1000
