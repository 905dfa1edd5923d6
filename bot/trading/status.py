"""What /health reports: a snapshot the trading loop writes and the HTTP thread reads.

Writers replace whole attributes (atomic under the GIL); readers never block the loop.
"""
from __future__ import annotations

import os
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any, Protocol

from bot import __version__ as BOT_VERSION  # noqa: N812


class SocketStatus(Protocol):
    @property
    def state(self) -> str: ...
    @property
    def last_message_age_s(self) -> float | None: ...
    @property
    def down_for_s(self) -> float: ...
    @property
    def reconnects(self) -> int: ...
    @property
    def lag_s(self) -> float: ...


@dataclass
class RuntimeStatus:
    loop_seconds: float
    candle_seconds: float
    started_monotonic: float = field(default_factory=time.monotonic)
    started_wall: float = field(default_factory=time.time)
    last_loop_wall: float | None = None
    last_loop_monotonic: float | None = None
    market_data_wall: float | None = None
    last_trade_at: datetime | None = None
    positions: list[dict[str, Any]] = field(default_factory=list)
    open_orders: int = 0
    halted_reason: str | None = None
    halts: list[dict[str, Any]] = field(default_factory=list)
    last_error: str | None = None
    exchange_refusal: str | None = None
    """The exchange refuses the bot's signed requests (a revoked or expired API wallet...): the
    gateway's :attr:`~bot.trading.gateway.Gateway.refusal`, copied after every iteration."""
    connected: bool = False
    stopping: bool = False
    websocket: Callable[[], SocketStatus] | None = None
    """The market feed's socket status, once the feed exists (None: no websocket)."""
    redact: Callable[[str], str] = str
    """Masks the bot's secrets (its key, its control token) in the texts /health quotes: the
    exchange's refusal and the last error, which the agent's alerts quote in turn."""
    role: str = "active"
    """``active``, or ``interim``: the warm spare standing in for a bot that died."""

    def health(self) -> dict[str, Any]:
        """The /health document.

        ``status`` is ``halted`` while entries are halted (``halts`` lists each halt in force:
        id, kind, reason, by, at), ``degraded`` when the loop has not
        completed an iteration within 3 loop periods (or 30 s), market data is older than two
        candles, the exchange is unreachable, the exchange refuses the bot's signed requests
        (``exchange_refusal``: a revoked or expired API wallet...), or the last iteration hit an
        error; else ``healthy``. ``websocket`` reports the market feed's socket (state, age of its last
        message, how long it has been down, reconnects); a socket that is down does not degrade
        the bot by itself: it reads REST meanwhile, and market-data staleness still counts.
        """
        now_m, now_w = time.monotonic(), time.time()
        loop_age = now_m - (self.last_loop_monotonic or self.started_monotonic)
        data_age = None if self.market_data_wall is None else max(0.0, now_w - self.market_data_wall)
        reasons: list[str] = []
        if not self.connected:
            reasons.append("exchange not connected")
        if loop_age > max(3 * self.loop_seconds, 30.0):
            reasons.append(f"loop stalled for {loop_age:.0f}s")
        if data_age is None or data_age > 2 * self.candle_seconds + self.loop_seconds:
            reasons.append("market data stale")
        refusal = self.redact(self.exchange_refusal) if self.exchange_refusal else None
        if refusal:
            reasons.append(f"exchange refuses the bot's requests: {refusal}")
        if self.last_error and not (self.exchange_refusal and self.exchange_refusal in self.last_error):
            reasons.append(self.redact(self.last_error))
        status = "halted" if self.halted_reason else ("degraded" if reasons else "healthy")
        return {
            "status": status,
            "loop_age_s": round(loop_age, 3),
            "last_loop_at": _iso(self.last_loop_wall),
            "market_data_age_s": None if data_age is None else round(data_age, 3),
            "last_trade_at": self.last_trade_at.isoformat() if self.last_trade_at else None,
            "positions": self.positions,
            "unprotected": [p["coin"] for p in self.positions if p.get("protected") is False],
            "open_orders": self.open_orders,
            "halted_reason": self.halted_reason,
            "halts": self.halts,
            "degraded_reasons": reasons,
            "exchange_refusal": refusal,
            "version": BOT_VERSION,
            "uptime_s": round(now_m - self.started_monotonic, 3),
            "websocket": self._websocket(),
            "pid": os.getpid(),
            "role": self.role,
        }

    def _websocket(self) -> dict[str, Any] | None:
        if self.websocket is None:
            return None
        ws = self.websocket()
        age = ws.last_message_age_s
        return {"state": ws.state, "last_message_age_s": None if age is None else round(age, 3),
                "down_for_s": round(ws.down_for_s, 3), "reconnects": ws.reconnects, "lag_s": round(ws.lag_s, 3)}


def _iso(wall: float | None) -> str | None:
    return None if wall is None else datetime.fromtimestamp(wall, UTC).isoformat()
