"""Persistence of the bot's state: a thin, thread-safe API over the SQLAlchemy models.

Every method runs in its own short transaction, so the trading loop and the HTTP thread can
both use one :class:`Store`. Returned rows are detached snapshots (``expire_on_commit=False``).
"""
from __future__ import annotations

from collections.abc import Iterable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from sqlalchemy import create_engine, event, func, select, update
from sqlalchemy.engine import Engine
from sqlalchemy.orm import Session, sessionmaker

from bot.trading.models import (
    SCHEMA_VERSION,
    Base,
    EquitySnapshot,
    FillRecord,
    HaltRecord,
    OrderRecord,
    PositionRecord,
    SchemaInfo,
    TradeRecord,
    utcnow,
)
from botwarden.errors import ConfigError

LIVE_ORDER_STATUSES = ("pending", "open")


def utc_day(at: datetime | None = None) -> str:
    return (at or utcnow()).astimezone(UTC).strftime("%Y-%m-%d")


def _sqlite_pragmas(dbapi_conn: Any, _record: Any) -> None:
    # WAL lets /health read while the loop writes; busy_timeout waits out the other writer.
    cur = dbapi_conn.cursor()
    cur.execute("PRAGMA journal_mode=WAL")
    cur.execute("PRAGMA busy_timeout=5000")
    cur.execute("PRAGMA synchronous=NORMAL")
    cur.close()


class Store:
    """The bot's SQLite database. Creates the schema on first use and refuses a database
    written by a different schema version (a :class:`ConfigError` with a hint)."""

    def __init__(self, path: str | Path) -> None:
        self.path = Path(path)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self.engine: Engine = create_engine(
            f"sqlite:///{self.path}", connect_args={"check_same_thread": False, "timeout": 5}
        )
        event.listen(self.engine, "connect", _sqlite_pragmas)
        self._session = sessionmaker(self.engine, expire_on_commit=False)
        Base.metadata.create_all(self.engine)
        with self._session.begin() as s:
            info = s.get(SchemaInfo, 1)
            if info is None:
                s.add(SchemaInfo(id=1, version=SCHEMA_VERSION))
            elif info.version != SCHEMA_VERSION:
                raise ConfigError(
                    f"{self.path} has bot schema version {info.version}, this bot needs {SCHEMA_VERSION}",
                    hint="restore a matching backup or move the file aside and let reconciliation adopt",
                )

    def close(self) -> None:
        self.engine.dispose()

    def session(self) -> Session:
        return self._session()

    # --- orders -------------------------------------------------------------------------
    def order_by_cloid(self, cloid: str) -> OrderRecord | None:
        with self._session() as s:
            return s.scalar(select(OrderRecord).where(OrderRecord.cloid == cloid))

    def order_by_oid(self, oid: int) -> OrderRecord | None:
        with self._session() as s:
            return s.scalar(select(OrderRecord).where(OrderRecord.oid == oid))

    def add_order(self, **fields: Any) -> OrderRecord:
        with self._session.begin() as s:
            row = OrderRecord(**fields)
            s.add(row)
        return row

    def update_order(self, order_id: int, **fields: Any) -> None:
        with self._session.begin() as s:
            s.execute(update(OrderRecord).where(OrderRecord.id == order_id).values(updated_at=utcnow(), **fields))

    def live_orders(self, coin: str | None = None) -> list[OrderRecord]:
        """Orders believed pending or open."""
        with self._session() as s:
            q = select(OrderRecord).where(OrderRecord.status.in_(LIVE_ORDER_STATUSES))
            if coin is not None:
                q = q.where(OrderRecord.coin == coin)
            return list(s.scalars(q.order_by(OrderRecord.id)))

    def all_orders(self) -> list[OrderRecord]:
        with self._session() as s:
            return list(s.scalars(select(OrderRecord).order_by(OrderRecord.id)))

    # --- fills --------------------------------------------------------------------------
    def add_fills(self, fills: Iterable[dict[str, Any]]) -> list[FillRecord]:
        """Insert fills not seen before (by ``tid``); return the new ones."""
        new: list[FillRecord] = []
        with self._session.begin() as s:
            for f in fills:
                if s.scalar(select(FillRecord.id).where(FillRecord.tid == f["tid"])) is not None:
                    continue
                row = FillRecord(**f)
                s.add(row)
                new.append(row)
        return new

    def fills_since(self, coin: str, since_ms: int) -> list[FillRecord]:
        with self._session() as s:
            q = select(FillRecord).where(FillRecord.coin == coin, FillRecord.time_ms >= since_ms)
            return list(s.scalars(q.order_by(FillRecord.time_ms, FillRecord.tid)))

    # --- trades -------------------------------------------------------------------------
    def open_trade(self, coin: str) -> TradeRecord | None:
        with self._session() as s:
            q = select(TradeRecord).where(TradeRecord.coin == coin, TradeRecord.closed_at.is_(None))
            return s.scalar(q.order_by(TradeRecord.id.desc()))

    def open_trades(self) -> list[TradeRecord]:
        with self._session() as s:
            return list(s.scalars(select(TradeRecord).where(TradeRecord.closed_at.is_(None))))

    def add_trade(self, **fields: Any) -> TradeRecord:
        with self._session.begin() as s:
            row = TradeRecord(**fields)
            s.add(row)
        return row

    def close_trade(self, trade_id: int, *, exit_px: float | None, pnl: float, reason: str) -> None:
        with self._session.begin() as s:
            s.execute(
                update(TradeRecord)
                .where(TradeRecord.id == trade_id)
                .values(closed_at=utcnow(), exit_px=exit_px, pnl=pnl, close_reason=reason)
            )

    def closed_trades(self, limit: int) -> list[TradeRecord]:
        """The ``limit`` most recently closed trades, newest first."""
        with self._session() as s:
            q = select(TradeRecord).where(TradeRecord.closed_at.is_not(None))
            return list(s.scalars(q.order_by(TradeRecord.closed_at.desc(), TradeRecord.id.desc()).limit(limit)))

    def realized_pnl(self) -> float:
        with self._session() as s:
            return float(s.scalar(select(func.coalesce(func.sum(TradeRecord.pnl), 0.0))) or 0.0)

    def last_trade_at(self) -> datetime | None:
        """Time of the last trade event (an entry or an exit)."""
        with self._session() as s:
            opened = s.scalar(select(func.max(TradeRecord.opened_at)))
            closed = s.scalar(select(func.max(TradeRecord.closed_at)))
        stamps = [_aware(t) for t in (opened, closed) if t is not None]
        return max(stamps) if stamps else None

    # --- positions ----------------------------------------------------------------------
    def positions(self) -> list[PositionRecord]:
        with self._session() as s:
            return list(s.scalars(select(PositionRecord).order_by(PositionRecord.coin)))

    def set_positions(self, positions: dict[str, dict[str, Any]]) -> None:
        """Replace the mirror of exchange positions: ``{coin: {size, entry_px, unrealized_pnl,
        trade_id}}``; coins not present are flat and their rows are removed."""
        with self._session.begin() as s:
            for row in s.scalars(select(PositionRecord)):
                if row.coin not in positions:
                    s.delete(row)
            for coin, values in positions.items():
                existing = s.get(PositionRecord, coin)
                if existing is None:
                    s.add(PositionRecord(coin=coin, **values))
                else:
                    for k, v in values.items():
                        setattr(existing, k, v)

    # --- equity -------------------------------------------------------------------------
    def snapshot_equity(self, equity: float, at: datetime | None = None) -> None:
        at = at or utcnow()
        with self._session.begin() as s:
            s.add(EquitySnapshot(at=at, day=utc_day(at), equity=equity))

    def day_start_equity(self, day: str) -> float | None:
        """First equity snapshot of a UTC day: the base of the daily loss limit."""
        with self._session() as s:
            q = select(EquitySnapshot.equity).where(EquitySnapshot.day == day)
            return s.scalar(q.order_by(EquitySnapshot.at, EquitySnapshot.id).limit(1))

    def first_equity(self) -> float | None:
        with self._session() as s:
            return s.scalar(select(EquitySnapshot.equity).order_by(EquitySnapshot.id).limit(1))

    # --- halt history -------------------------------------------------------------------
    # The halts in force live in the halt file (botwarden.halts), never here: a restored or
    # lost database must not end a halt. These rows are the history the reports count.
    def add_halt(self, kind: str, reason: str) -> HaltRecord:
        """Record that a halt was taken (history only)."""
        with self._session.begin() as s:
            row = HaltRecord(kind=kind, reason=reason, day=utc_day())
            s.add(row)
        return row

    def last_halt_at(self, reason_prefix: str) -> datetime | None:
        """When the latest halt whose reason starts with ``reason_prefix`` was taken (history)."""
        with self._session() as s:
            at = s.scalar(select(HaltRecord.created_at).where(HaltRecord.reason.startswith(reason_prefix, autoescape=True))
                          .order_by(HaltRecord.id.desc()).limit(1))
        return None if at is None else _aware(at)

    def clear_halts(self, by: str) -> int:
        """Record that every halt ended (history only); return how many rows were open."""
        with self._session.begin() as s:
            result = s.execute(
                update(HaltRecord).where(HaltRecord.cleared_at.is_(None)).values(cleared_at=utcnow(), cleared_by=by)
            )
            # Session.execute is typed as returning Result; for an UPDATE it is a CursorResult (rowcount)
            return int(result.rowcount or 0)  # type: ignore[attr-defined]


def _aware(t: datetime) -> datetime:
    # SQLite drops tzinfo; every stored time is UTC.
    return t if t.tzinfo else t.replace(tzinfo=UTC)
