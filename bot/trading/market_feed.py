"""Market data and the account's fills from the websocket, and when they are fresh enough to use.

The bot subscribes to ``allMids``, one ``candle`` channel per coin (the strategy's interval) and
the account's ``userFills``. The :class:`Gateway` asks this feed first and falls back to REST
whenever the answer is None:

* :meth:`MarketFeed.mids`: the last ``allMids`` while the socket is connected and that channel
  spoke within ``stale_s`` (a stalled channel falls back even on a live connection);
* :meth:`MarketFeed.candles`: a window of candles built from a REST snapshot (:meth:`seed`)
  kept current by ``candle`` pushes; None when unseeded, stale, or not contiguous up to the
  current candle. Every reconnect drops the seeds: candles missed while down come from REST;
* ``on_candle(at)``: called for every current candle pushed, with the wall time its data is from
  (the bot counts it as fresh market data on /health, as it counts a current candle it fetched).
  Candles and mids carry no time of their own: the socket's lag is measured on the messages that
  do (``bbo`` per coin, ``time``), and data is dated at its receipt minus that lag, so a socket
  that delivers late (a lagging connection, an overloaded server) shows as old data;
* :meth:`MarketFeed.lag_s`: that lag; mids and candles lagging more than ``stale_s`` are not
  served (REST is asked);
* :meth:`MarketFeed.take_fills`: fills pushed since the last call, once the connection's
  ``isSnapshot`` message arrived; None when not live, or when the periodic REST check of fills
  is due (a safety net against a stream that stalls silently; fills are deduplicated by tid).
"""
from __future__ import annotations

import dataclasses
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from bot.trading.ws_client import HyperliquidSocket, State, WsStatus

Json = Any
REST_FILLS_EVERY_S = 60.0
INTERVAL_MS = {"1m": 60_000, "3m": 180_000, "5m": 300_000, "15m": 900_000, "30m": 1_800_000, "1h": 3_600_000,
               "2h": 7_200_000, "4h": 14_400_000, "8h": 28_800_000, "12h": 43_200_000, "1d": 86_400_000}


class MarketFeed:
    def __init__(self, base_url: str, account: str, coins: list[str], interval: str, *, stale_s: float,
                 clock: Callable[[], float] = time.monotonic,
                 socket_factory: Callable[..., HyperliquidSocket] = HyperliquidSocket,
                 on_candle: Callable[[float], None] | None = None, outage_file: Path | None = None) -> None:
        self.coins = list(coins)
        self.interval = interval
        self.step_ms = INTERVAL_MS[interval]
        self.stale_s = stale_s
        self.clock = clock
        self._lock = threading.Lock()
        self._mids: dict[str, float] | None = None
        self._mids_at = 0.0
        self._candles: dict[str, dict[int, Json]] = {}
        self._candle_at: dict[str, float] = {}
        self._fills: list[Json] = []
        self._fills_live = False
        self._rest_fills_due = 0.0
        self._keep = 0  # candles kept per coin: the largest window asked for, plus slack
        self._lag_s = 0.0  # receipt minus the data's own time, on the last timestamped message
        self.on_candle = on_candle
        subs: list[dict[str, Any]] = [{"type": "allMids"}]
        subs += [{"type": "candle", "coin": c, "interval": interval} for c in coins]
        subs += [{"type": "bbo", "coin": c} for c in coins]  # timestamped: the socket's lag
        subs.append({"type": "userFills", "user": account})
        extra: dict[str, Any] = {"outage_file": outage_file} if outage_file is not None else {}
        self.socket = socket_factory(base_url, subs, self._on_message, stale_s=stale_s,
                                     on_state=self._on_state, **extra)

    def start(self) -> None:
        self.socket.start()

    def stop(self) -> None:
        self.socket.stop()

    def status(self) -> WsStatus:
        return dataclasses.replace(self.socket.status(), lag_s=self._lag_s)

    # ----- what the socket delivers (its thread) ---------------------------------------------
    def _on_state(self, state: State) -> None:
        if state != "connected":
            with self._lock:
                self._lag_s = 0.0  # measured again on the next connection
                self._fills_live = False
                self._candles.clear()  # a gap may open: reseed from REST after the reconnect
                self._candle_at.clear()

    def _on_message(self, channel: str, data: Json) -> None:
        now = self.clock()
        with self._lock:
            if channel == "allMids" and isinstance(data, dict):
                self._mids = {k: float(v) for k, v in (data.get("mids") or {}).items()}
                self._mids_at = now
            elif channel == "bbo" and isinstance(data, dict) and isinstance(data.get("time"), int):
                self._lag_s = max(0.0, time.time() - data["time"] / 1000.0)
            elif channel == "candle" and isinstance(data, dict) and data.get("i") == self.interval:
                current = int(data.get("t", 0)) >= time.time() * 1000 - 2 * self.step_ms
                if self.on_candle is not None and current:
                    self.on_candle(time.time() - self._lag_s)  # current market data, dated
                coin = data.get("s")
                cache = self._candles.get(coin) if isinstance(coin, str) else None
                if cache is not None:
                    cache[int(data["t"])] = data
                    self._candle_at[str(coin)] = now
                    self._trim(cache)
            elif channel == "userFills" and isinstance(data, dict):
                self._fills.extend(data.get("fills") or [])
                if data.get("isSnapshot"):
                    self._fills_live = True

    def _trim(self, cache: dict[int, Json]) -> None:
        if self._keep and len(cache) > self._keep:
            for t in sorted(cache)[: len(cache) - self._keep]:
                del cache[t]

    # ----- what the gateway asks (the trading loop's thread) ----------------------------------
    def connected(self) -> bool:
        return self.socket.status().state == "connected"

    def lag_s(self) -> float:
        """How late the socket delivers: receipt minus the data's own time (0 when not measured)."""
        return self._lag_s

    def mids(self) -> dict[str, float] | None:
        with self._lock:
            if self._mids is None or not self.connected() or self.clock() - self._mids_at > self.stale_s \
                    or self._lag_s > self.stale_s:
                return None
            return dict(self._mids)

    def seed(self, coin: str, rows: list[Json], start_ms: int, end_ms: int) -> None:
        """Remember a REST window of candles for ``coin``; pushes keep it current from now on."""
        if not self.connected():
            return
        with self._lock:
            self._keep = max(self._keep, (end_ms - start_ms) // self.step_ms + 4)
            cache = self._candles.setdefault(coin, {})
            for row in rows:
                cache[int(row["t"])] = row
            self._candle_at.setdefault(coin, self.clock())
            self._trim(cache)

    def candles(self, coin: str, start_ms: int, end_ms: int) -> list[Json] | None:
        """Candles opening in [start_ms, end_ms] from the pushes, or None (ask REST)."""
        with self._lock:
            cache = self._candles.get(coin)
            stale = self.clock() - self._candle_at.get(coin, 0.0) > self.stale_s or self._lag_s > self.stale_s
            if not cache or not self.connected() or stale:
                return None
            first = -(-start_ms // self.step_ms) * self.step_ms
            last = (end_ms // self.step_ms) * self.step_ms
            wanted = range(max(first, min(cache)), last + 1, self.step_ms)
            if min(cache) > first + self.step_ms or any(t not in cache for t in wanted):
                return None  # history too short or a candle missing: not contiguous
            return [cache[t] for t in wanted]

    def take_fills(self) -> list[Json] | None:
        """Fills pushed since the last call, or None when REST must be asked (not live, or the
        periodic REST check is due)."""
        now = self.clock()
        with self._lock:
            if not self._fills_live or not self.connected() or now >= self._rest_fills_due:
                return None
            fills, self._fills = self._fills, []
            return fills

    def rest_fills_done(self) -> None:
        """REST has just returned every recent fill; the next REST check is due in a minute. Fills
        pushed meanwhile stay queued (the store drops the ones it already has, by tid)."""
        with self._lock:
            self._rest_fills_due = self.clock() + REST_FILLS_EVERY_S
