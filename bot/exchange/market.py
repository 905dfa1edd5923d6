"""The simulated market: a seeded, deterministic price process per coin.

Contract:

* The path is a function of ``(seed, coin, absolute UTC time)`` only, so two exchanges started
  with the same seed serve the same candles and the same mids at the same instant, and a
  restart does not rewrite history. It is built in two levels:
  - a daily anchor ``L(d)`` (log price at 00:00 UTC of day ``d``), drawn independently per day
    from a generator keyed by ``(seed, coin, d)`` - random access, no need to walk from genesis;
  - a minute skeleton inside the day: a Brownian bridge from ``L(d)`` to ``L(d+1)``, drawn by the
    same day generator, plus per-minute high/low excursions and volumes.
  The mark at any second is the linear interpolation of the skeleton, so it always lies within
  the candle's low/high.
* Price shocks (fault injection) multiply every price from their time onward; they are state
  (persisted by the caller) and are passed in, not drawn.
* The order book is synthetic liquidity around the mid: ``levels`` price levels per side one
  tick apart, sizes drawn from ``(seed, coin, second)``; the same instant gives the same book.
"""
from __future__ import annotations

import math
import zlib
from bisect import bisect_right
from dataclasses import dataclass, field
from functools import lru_cache

import numpy as np

DAY_S = 86_400
MINUTE_S = 60
INTERVAL_SECONDS: dict[str, int] = {
    "1m": 60, "3m": 180, "5m": 300, "15m": 900, "30m": 1800, "1h": 3600, "2h": 7200,
    "4h": 14_400, "8h": 28_800, "12h": 43_200, "1d": 86_400, "3d": 259_200, "1w": 604_800,
}
MAX_CANDLES = 5000  # Hyperliquid serves at most the most recent 5000 candles per request


@dataclass(frozen=True)
class CoinSpec:
    """Static description of a perp market (what ``meta`` announces)."""

    name: str
    sz_decimals: int
    max_leverage: int
    base_px: float


# Well-known markets get Hyperliquid's real size decimals and leverage caps; other coins get a
# generic spec so settings.exchange.coins may name anything.
KNOWN_COINS: dict[str, CoinSpec] = {
    "BTC": CoinSpec("BTC", 5, 40, 60_000.0),
    "ETH": CoinSpec("ETH", 4, 25, 3_000.0),
    "SOL": CoinSpec("SOL", 2, 20, 150.0),
    "DOGE": CoinSpec("DOGE", 0, 10, 0.15),
    "ARB": CoinSpec("ARB", 1, 10, 1.0),
}


def coin_spec(name: str) -> CoinSpec:
    return KNOWN_COINS.get(name, CoinSpec(name, 2, 10, 10.0))


def tick_size(px: float, sz_decimals: int) -> float:
    """Smallest valid price step at ``px``: 5 significant figures, at most 6 - szDecimals decimals."""
    if px <= 0:
        return 10.0 ** -(6 - sz_decimals)
    sig_step = 10.0 ** (math.floor(math.log10(px)) - 4)
    return max(sig_step, 10.0 ** -(6 - sz_decimals))


def round_to_tick(px: float, tick: float, up: bool) -> float:
    steps = px / tick
    steps = math.ceil(steps - 1e-9) if up else math.floor(steps + 1e-9)
    decimals = max(0, -math.floor(math.log10(tick))) if tick < 1 else 0
    return round(steps * tick, decimals)


@dataclass(frozen=True)
class Candle:
    t: int  # open time, ms
    T: int  # close time, ms (inclusive, Hyperliquid style: t + interval - 1)
    o: float
    h: float
    l: float  # noqa: E741 - Hyperliquid's field name
    c: float
    v: float
    n: int


@dataclass(frozen=True)
class BookLevel:
    px: float
    sz: float
    n: int


@dataclass(frozen=True)
class Book:
    coin: str
    bids: list[BookLevel]  # best first
    asks: list[BookLevel]  # best first
    time_ms: int

    @property
    def best_bid(self) -> float:
        return self.bids[0].px

    @property
    def best_ask(self) -> float:
        return self.asks[0].px

    @property
    def mid(self) -> float:
        return (self.best_bid + self.best_ask) / 2


@dataclass
class Shock:
    at_ms: int
    pct: float


@dataclass
class Market:
    """Deterministic price process for ``coins``; all methods take absolute times."""

    seed: int
    coins: list[str]
    daily_anchor_sigma: float = 0.06  # spread of the 00:00 UTC log-price anchors around base
    minute_sigma: float = 0.0012  # per-minute log volatility of the intraday bridge
    book_levels: int = 20
    book_notional_per_level: float = 40_000.0
    shocks: dict[str, list[Shock]] = field(default_factory=dict)

    def __post_init__(self) -> None:
        self.specs = {c: coin_spec(c) for c in self.coins}
        self._coin_keys = {c: zlib.crc32(c.encode()) for c in self.coins}
        # lru_cache on a bound method would pin self; a per-instance cache keeps it local.
        self._day_cache: dict[tuple[str, int], tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]] = {}

    # ----- the path -------------------------------------------------------------------------
    def _anchor(self, coin: str, day: int) -> float:
        rng = np.random.default_rng([self.seed, self._coin_keys[coin], day, 1])
        return math.log(self.specs[coin].base_px) + self.daily_anchor_sigma * float(rng.standard_normal())

    def _day(self, coin: str, day: int) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
        """Minute skeleton of ``day``: (prices at the 1441 minute boundaries, up, down, volume)."""
        key = (coin, day)
        hit = self._day_cache.get(key)
        if hit is not None:
            return hit
        rng = np.random.default_rng([self.seed, self._coin_keys[coin], day, 2])
        steps = rng.standard_normal(1440) * self.minute_sigma
        walk = np.concatenate(([0.0], np.cumsum(steps)))
        frac = np.linspace(0.0, 1.0, 1441)
        bridge = walk - frac * walk[-1]
        a0, a1 = self._anchor(coin, day), self._anchor(coin, day + 1)
        prices = np.exp(a0 + frac * (a1 - a0) + bridge)
        up = np.abs(rng.standard_normal(1440)) * self.minute_sigma * 0.6
        down = np.abs(rng.standard_normal(1440)) * self.minute_sigma * 0.6
        base_vol = 2_000_000.0 / self.specs[coin].base_px
        vol = base_vol * np.exp(0.5 * rng.standard_normal(1440))
        if len(self._day_cache) > 64 * max(1, len(self.coins)):
            self._day_cache.clear()
        self._day_cache[key] = (prices, up, down, vol)
        return self._day_cache[key]

    def shock_multiplier(self, coin: str, at_ms: int) -> float:
        """The product of every shock of ``coin`` up to ``at_ms`` (1.0: unshocked)."""
        return self._shock_multiplier(coin, at_ms)

    def _shock_multiplier(self, coin: str, at_ms: int) -> float:
        mult = 1.0
        for s in self.shocks.get(coin, ()):
            if s.at_ms <= at_ms:
                mult *= 1.0 + s.pct / 100.0
        return mult

    def base_price(self, coin: str, at_ms: int) -> float:
        """Unshocked price at ``at_ms``: linear between the minute skeleton points."""
        sec = at_ms / 1000.0
        day = int(sec // DAY_S)
        prices = self._day(coin, day)[0]
        pos = (sec - day * DAY_S) / MINUTE_S
        k = min(int(pos), 1439)
        w = pos - k
        return float(prices[k] * (1 - w) + prices[k + 1] * w)

    def mark(self, coin: str, at_ms: int) -> float:
        """Mark price of ``coin`` at ``at_ms`` (the price process, shocks included, rounded down to a
        valid tick): what margining, unrealized P&L and TP/SL triggers use. The book is built around
        the unrounded price, so its mid generally differs from the mark by part of a tick."""
        px = self.base_price(coin, at_ms) * self._shock_multiplier(coin, at_ms)
        tick = tick_size(px, self.specs[coin].sz_decimals)
        return round_to_tick(px, tick, up=False)

    def add_shock(self, coin: str, pct: float, at_ms: int) -> None:
        self.shocks.setdefault(coin, []).append(Shock(at_ms, pct))
        self.shocks[coin].sort(key=lambda s: s.at_ms)

    # ----- candles --------------------------------------------------------------------------
    def _minute_candles(self, coin: str, start_min: int, end_min: int, now_ms: int) -> list[Candle]:
        """1m candles for minutes [start_min, end_min] (indices = epoch minutes), up to now."""
        out: list[Candle] = []
        now_min = now_ms // 60_000
        end_min = min(end_min, now_min)
        m = start_min
        shock_times = sorted(s.at_ms for s in self.shocks.get(coin, ()))
        while m <= end_min:
            day = (m * MINUTE_S) // DAY_S
            prices, up, down, vol = self._day(coin, day)
            first = m - day * 1440
            last = min(end_min - day * 1440, 1439)
            for k in range(first, last + 1):
                t_ms = (day * 1440 + k) * 60_000
                o = float(prices[k]) * self._shock_multiplier(coin, t_ms)
                in_progress = t_ms + 60_000 > now_ms
                close_ms = now_ms if in_progress else t_ms + 59_999
                c = self.base_price(coin, close_ms) * self._shock_multiplier(coin, close_ms)
                elapsed = 1.0 if not in_progress else max(0.0, (now_ms - t_ms) / 60_000)
                hi = max(o, c) * (1.0 + float(up[k]) * elapsed)
                lo = min(o, c) * (1.0 - float(down[k]) * elapsed)
                # a shock inside this minute: the candle spans both price levels
                if shock_times and bisect_right(shock_times, close_ms) != bisect_right(shock_times, t_ms):
                    hi, lo = max(hi, o, c), min(lo, o, c)
                out.append(Candle(t_ms, t_ms + 59_999, o, hi, lo, c, float(vol[k]) * elapsed,
                                  int(vol[k] * elapsed * self.specs[coin].base_px / 5000) + 1))
            m = (day + 1) * 1440
        return out

    def candles(self, coin: str, interval: str, start_ms: int, end_ms: int, now_ms: int) -> list[Candle]:
        """Candles of ``interval`` whose open time lies in [start_ms, end_ms], none after now.

        At most the most recent :data:`MAX_CANDLES` of the range, as Hyperliquid does.
        Raises ``KeyError`` for an unknown interval.
        """
        step_s = INTERVAL_SECONDS[interval]
        step_ms = step_s * 1000
        end_ms = min(end_ms, now_ms)
        first_open = -(-start_ms // step_ms) * step_ms
        last_open = (end_ms // step_ms) * step_ms
        if last_open < first_open:
            return []
        count = (last_open - first_open) // step_ms + 1
        if count > MAX_CANDLES:
            first_open = last_open - (MAX_CANDLES - 1) * step_ms
        minutes = self._minute_candles(coin, first_open // 60_000, (last_open + step_ms) // 60_000 - 1, now_ms)
        if step_s == 60:
            return minutes
        out: list[Candle] = []
        per = step_s // 60
        for i in range(0, len(minutes), per):
            chunk = minutes[i:i + per]
            t = chunk[0].t
            out.append(Candle(t, t + step_ms - 1, chunk[0].o, max(x.h for x in chunk),
                              min(x.l for x in chunk), chunk[-1].c, sum(x.v for x in chunk),
                              sum(x.n for x in chunk)))
        return out

    # ----- the book -------------------------------------------------------------------------
    def book(self, coin: str, at_ms: int) -> Book:
        """Synthetic L2 book around the mark at ``at_ms`` (same instant, same book)."""
        spec = self.specs[coin]
        mid = self.base_price(coin, at_ms) * self._shock_multiplier(coin, at_ms)
        tick = tick_size(mid, spec.sz_decimals)
        half = max(tick / 2, mid * 0.00005)
        bid0 = round_to_tick(mid - half, tick, up=False)
        ask0 = round_to_tick(mid + half, tick, up=True)
        if ask0 <= bid0:
            ask0 = round_to_tick(bid0 + tick, tick, up=True)
        sizes = _level_sizes(self.seed, self._coin_keys[coin], at_ms // 1000, 2 * self.book_levels)
        lot = 10.0 ** -spec.sz_decimals
        bids: list[BookLevel] = []
        asks: list[BookLevel] = []
        for i in range(self.book_levels):
            for side, px in ((bids, bid0 - i * tick), (asks, ask0 + i * tick)):
                j = i if side is bids else self.book_levels + i
                notional = self.book_notional_per_level * (1.0 + 0.25 * i) * sizes[j]
                sz = max(lot, round(notional / px, spec.sz_decimals))
                side.append(BookLevel(round_to_tick(px, tick, up=side is asks), sz, 1 + int(sizes[j] * 5)))
        return Book(coin, bids, asks, at_ms)


@lru_cache(maxsize=4096)
def _level_sizes(seed: int, coin_key: int, second: int, n: int) -> tuple[float, ...]:
    rng = np.random.default_rng([seed, coin_key, second, 3])
    return tuple(float(x) for x in rng.uniform(0.5, 1.5, n))
