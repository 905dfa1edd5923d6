"""The trading page's facts: the account on the exchange, the bot's day, and the agent's timing.

* :func:`read_account`: the bot's account as the exchange sees it (public ``/info`` reads, no
  signature): equity, positions with their mark, and every resting order; a position is
  protected only when its stop-losses cover its whole size (:mod:`botwarden.protection`, the
  rule the bot follows too: a take-profit or a stop-loss for part of the size is no stop), and
  the stop shown is its stop-loss nearest to the mark;
* :func:`read_bot_db`: from the bot's SQLite file, opened ``mode=ro`` (tables reflected, the
  bot's code is not imported): the UTC day's equity
  snapshots (the bot's own daily-loss definition: loss from the day's first snapshot), closed
  trades and the last fills;
* :func:`parse_agent_metrics`: scheduler lateness quantiles from the agent's histogram (per
  bucket, so a figure is an upper bound: "p99 <= 25 ms"), over the interval since the previous
  read when it saw runs, else since the agent started.
"""
from __future__ import annotations

import json
import math
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import aiohttp
from sqlalchemy import MetaData, create_engine, select

from botwarden.protection import is_protected, stop_losses, tpsl_of

EXCHANGE_TIMEOUT_S = 3.0
TRADES_SHOWN = 50
FILLS_SHOWN = 20


def as_float(value: Any) -> float | None:
    """A finite number from a stored value (``"12.5"``, ``12``), else None (booleans are not numbers)."""
    if isinstance(value, bool) or value is None:
        return None
    try:
        number = float(value)
    except (TypeError, ValueError):
        return None
    return number if math.isfinite(number) else None


@dataclass(frozen=True)
class Position:
    coin: str
    size: float
    entry_px: float
    mark: float | None
    unrealized_pnl: float
    liquidation_px: float | None
    stop_px: float | None
    stop_distance_pct: float | None
    """How far the mark may move against the position before the stop triggers, % of the mark."""
    protected: bool = False
    """Reduce-only stop-losses cover the whole size (:func:`botwarden.protection.is_protected`)."""

    @property
    def side(self) -> str:
        return "long" if self.size > 0 else "short"


@dataclass(frozen=True)
class Order:
    coin: str
    side: str
    size: float
    limit_px: float
    trigger_px: float | None
    reduce_only: bool
    kind: str
    oid: int

    @property
    def is_buy(self) -> bool:
        return self.side == "B"

    @property
    def tpsl(self) -> str | None:
        """``"sl"`` or ``"tp"`` from the exchange's ``orderType`` ("Stop Market", "Take Profit Limit")."""
        return tpsl_of(self.kind, is_trigger=self.trigger_px is not None)


@dataclass(frozen=True)
class Account:
    equity: float
    positions: tuple[Position, ...]
    orders: tuple[Order, ...]

    def orders_adding_exposure(self) -> tuple[str, ...]:
        """The resting orders that can add exposure (not reduce-only), described."""
        return tuple(f"{o.coin} {'buy' if o.is_buy else 'sell'} {o.size:g} @ {o.trigger_px or o.limit_px:g}"
                     + (" (trigger)" if o.trigger_px is not None else "")
                     for o in self.orders if not o.reduce_only)

    def positions_without_stop(self) -> tuple[str, ...]:
        """Coins of the open positions whose stop-losses do not cover their whole size."""
        return tuple(p.coin for p in self.positions if not p.protected)


@dataclass(frozen=True)
class Stop:
    """A position's stop as the page shows it."""

    px: float | None
    """The stop-loss nearest to the mark (the first when the mark is unknown), None without one."""
    distance_pct: float | None
    protected: bool
    """Stop-losses cover the whole size: a take-profit or a partial stop-loss leaves this False."""


def stop_for(size: float, mark: float | None, orders: list[Order]) -> Stop:
    """The stop of a position of signed ``size`` among one coin's ``orders``: only stop-losses
    (:func:`botwarden.protection.stop_losses`) count."""
    stops = [o.trigger_px for o in stop_losses(size, orders) if o.trigger_px is not None]
    protected = is_protected(size, orders)
    if not stops:
        return Stop(None, None, protected)
    if mark is None:
        return Stop(stops[0], None, protected)
    stop = min(stops, key=lambda px: abs(mark - px))
    distance = (mark - stop) / mark * 100 if size > 0 else (stop - mark) / mark * 100
    return Stop(stop, distance, protected)


async def read_account(http: aiohttp.ClientSession, url: str, address: str | None) -> tuple[Account | None, str]:
    """The account at ``url`` for ``address`` and "" , or None and why."""
    if not address:
        return None, "no account address: set bot.account_address (or the account's key in the environment)"
    base = url.rstrip("/") + "/info"

    async def info(body: dict[str, Any]) -> Any:
        async with http.post(base, json=body, timeout=aiohttp.ClientTimeout(total=EXCHANGE_TIMEOUT_S)) as r:
            if r.status != 200:
                raise ValueError(f"/info {body['type']}: HTTP {r.status}")
            return await r.json(content_type=None)

    try:
        mids = await info({"type": "allMids"})
        state = await info({"type": "clearinghouseState", "user": address})
        raw_orders = await info({"type": "frontendOpenOrders", "user": address})
    except (aiohttp.ClientError, TimeoutError, ValueError) as exc:
        return None, f"{type(exc).__name__}: {exc}"[:200]
    for kind, answer, shape in (("allMids", mids, Mapping), ("clearinghouseState", state, Mapping),
                                ("frontendOpenOrders", raw_orders, list)):
        if not isinstance(answer, shape) or (isinstance(answer, Mapping) and "error" in answer):
            return None, f"/info {kind}: unexpected answer: {_brief(answer)}"
    # No list of positions is not "no positions" (fail closed: unknown, never none).
    if not isinstance(state.get("assetPositions"), list) or not isinstance(state.get("marginSummary"), Mapping):
        return None, f"/info clearinghouseState: unexpected answer: {_brief(state)}"
    try:
        return _account(mids, state, raw_orders), ""
    except (KeyError, TypeError, ValueError, AttributeError) as exc:  # any other shape: an error, said briefly
        return None, f"/info: unexpected answer ({type(exc).__name__}: {str(exc)[:80]})"


def _brief(answer: Any) -> str:
    """An unexpected JSON answer, short (``{"error": "..."}``, ``null``): it may come from a proxy,
    never echo much of it."""
    return json.dumps(answer)[:120] if answer is None or isinstance(answer, (Mapping, list, str, int, float)) \
        else type(answer).__name__


def _account(mids: Mapping[str, Any], state: Mapping[str, Any], raw_orders: list[Any]) -> Account:
    orders = [Order(coin=str(o["coin"]), side=str(o["side"]), size=float(o["sz"]), limit_px=float(o["limitPx"]),
                    trigger_px=as_float(o.get("triggerPx")) if o.get("isTrigger") else None,
                    reduce_only=bool(o.get("reduceOnly")), kind=str(o.get("orderType", "Limit")), oid=int(o["oid"]))
              for o in raw_orders]
    positions = []
    for entry in state.get("assetPositions", []):
        p = entry.get("position", {})
        size = as_float(p.get("szi")) or 0.0
        if size == 0:
            continue
        coin = str(p["coin"])
        mark = as_float(mids.get(coin))
        entry_px = as_float(p.get("entryPx"))
        # No entry price, no side of it to be on: no order counts as its stop-loss (fail closed).
        stop = stop_for(size, mark, [o for o in orders if o.coin == coin])
        positions.append(Position(coin=coin, size=size, entry_px=entry_px or 0.0, mark=mark,
                                  unrealized_pnl=as_float(p.get("unrealizedPnl")) or 0.0,
                                  liquidation_px=as_float(p.get("liquidationPx")), stop_px=stop.px,
                                  stop_distance_pct=stop.distance_pct, protected=stop.protected))
    equity = as_float(state.get("marginSummary", {}).get("accountValue")) or 0.0
    return Account(equity, tuple(positions), tuple(orders))


@dataclass(frozen=True)
class Day:
    """The bot's UTC trading day from its equity snapshots."""

    day: str
    points: tuple[tuple[datetime, float], ...]
    day_start: float
    last: float
    peak: float
    loss_pct: float
    """Loss from the day's first snapshot, % (negative: a gain); the bot halts at the limit."""
    drawdown_pct: float
    """Fall of the last snapshot from the day's peak, %."""
    limit_pct: float
    used_pct: float
    """``max(loss, 0)`` as a % of the limit: 100 is where the bot halts new entries."""


@dataclass(frozen=True)
class Trade:
    id: int
    coin: str
    side: str
    size: float
    entry_px: float
    exit_px: float | None
    pnl: float
    closed_at: datetime


@dataclass(frozen=True)
class Fill:
    coin: str
    side: str
    px: float
    size: float
    fee: float
    closed_pnl: float
    at: datetime


def _utc(at: datetime) -> datetime:
    return at.replace(tzinfo=UTC) if at.tzinfo is None else at.astimezone(UTC)


def day_from_points(day: str, points: list[tuple[datetime, float]], limit_pct: float) -> Day | None:
    if not points:
        return None
    start, last = points[0][1], points[-1][1]
    peak = max(e for _, e in points)
    loss = (start - last) / start * 100 if start > 0 else 0.0
    drawdown = (peak - last) / peak * 100 if peak > 0 else 0.0
    return Day(day=day, points=tuple(points), day_start=start, last=last, peak=peak, loss_pct=loss,
               drawdown_pct=drawdown, limit_pct=limit_pct, used_pct=max(loss, 0.0) / limit_pct * 100)


def read_bot_db(path: Path, now: datetime, limit_pct: float) -> dict[str, Any]:
    """``{"day": Day | None, "trades": [Trade], "fills": [Fill]}`` from the bot's file (read-only,
    its tables reflected from the file as :mod:`agent.reports.sources` does); ``{"error": ...}``
    when the file does not exist."""
    if not path.is_file():
        return {"error": f"the bot's database {path} does not exist yet"}
    engine = create_engine(f"sqlite:///file:{path.resolve()}?mode=ro&uri=true", connect_args={"timeout": 1.0})
    day = now.astimezone(UTC).strftime("%Y-%m-%d")
    try:
        with engine.connect() as conn:
            meta = MetaData()
            meta.reflect(conn, only=("equity_snapshots", "trades", "fills"))
            eq, tr, fl = (meta.tables[n].c for n in ("equity_snapshots", "trades", "fills"))
            points = [(_utc(at), float(value)) for at, value in conn.execute(
                select(eq.at, eq.equity).where(eq.day == day).order_by(eq.at, eq.id))]
            trades = [Trade(id=t.id, coin=t.coin, side=t.side, size=t.size, entry_px=t.entry_px, exit_px=t.exit_px,
                            pnl=float(t.pnl or 0.0), closed_at=_utc(t.closed_at)) for t in conn.execute(
                select(tr.id, tr.coin, tr.side, tr.size, tr.entry_px, tr.exit_px, tr.pnl, tr.closed_at)
                .where(tr.closed_at.is_not(None)).order_by(tr.closed_at.desc()).limit(TRADES_SHOWN))]
            fills = [Fill(coin=f.coin, side="buy" if f.is_buy else "sell", px=f.px, size=f.size, fee=f.fee,
                          closed_pnl=f.closed_pnl, at=datetime.fromtimestamp(f.time_ms / 1000, UTC))
                     for f in conn.execute(select(fl.coin, fl.is_buy, fl.px, fl.size, fl.fee, fl.closed_pnl, fl.time_ms)
                                           .order_by(fl.time_ms.desc()).limit(FILLS_SHOWN))]
    finally:
        engine.dispose()
    return {"day": day_from_points(day, points, limit_pct), "trades": list(reversed(trades)), "fills": fills}


def bucket_quantile(buckets: Mapping[float, float], q: float) -> float | None:
    """The upper bound of the first cumulative bucket holding fraction ``q`` of the samples."""
    total = buckets.get(math.inf, 0.0)
    if total <= 0:
        return None
    for bound in sorted(buckets):
        if buckets[bound] >= q * total:
            return bound
    return math.inf


def parse_agent_metrics(text: str, previous: Mapping[float, float] | None) -> tuple[dict[str, Any], dict[float, float]]:
    """Lateness quantiles (ms), RSS (MB), checks in flight and ``loop_alive_ts`` (Unix time its
    event loop last ran; absent from an agent that does not export it) from the agent's /metrics
    text; also the lateness buckets, to pass back as ``previous`` next time."""
    from prometheus_client.parser import text_string_to_metric_families

    buckets: dict[float, float] = {}
    out: dict[str, Any] = {}
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            if sample.name == "botwarden_scheduler_lateness_seconds_bucket":
                buckets[float(sample.labels["le"])] = sample.value
            elif sample.name == "process_resident_memory_bytes":
                out["rss_mb"] = sample.value / 1e6
            elif sample.name == "botwarden_checks_in_flight":
                out["checks_in_flight"] = int(sample.value)
            elif sample.name == "botwarden_agent_loop_alive_timestamp_seconds":
                out["loop_alive_ts"] = sample.value
    window = buckets
    if previous and buckets.get(math.inf, 0) > previous.get(math.inf, 0):
        window = {b: n - previous.get(b, 0.0) for b, n in buckets.items()}
    p50, p99 = bucket_quantile(window, 0.5), bucket_quantile(window, 0.99)
    highest = max((b for b, n in window.items() if n > 0 and (b == min(window) or
                                                                n > window.get(_below(window, b), 0))),
                  default=None)
    out.update(lateness_p50_ms=None if p50 is None else p50 * 1000,
               lateness_p99_ms=None if p99 is None else p99 * 1000,
               lateness_max_bucket_ms=None if highest is None else highest * 1000,
               lateness_samples=int(window.get(math.inf, 0)))
    return out, buckets


def _below(buckets: Mapping[float, float], bound: float) -> float:
    lower = [b for b in buckets if b < bound]
    return max(lower) if lower else -math.inf
