"""SQLAlchemy 2.0 typed models of the bot's state (SQLite at ``settings.bot.db``).

The exchange is the source of truth for positions and resting orders; these tables are the
bot's memory of what it intended and observed, used for idempotency (orders by cloid),
accounting (fills, trades, equity) and history (halts taken; the halts in force live in the
halt file, outside this database).
"""
from __future__ import annotations

from datetime import UTC, datetime

from sqlalchemy import Boolean, DateTime, Float, Integer, String, Text
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column

SCHEMA_VERSION = 1


def utcnow() -> datetime:
    return datetime.now(UTC)


class Base(DeclarativeBase):
    pass


class SchemaInfo(Base):
    """One row holding the schema version, checked at start-up."""

    __tablename__ = "schema_info"
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    version: Mapped[int] = mapped_column(Integer)


class OrderRecord(Base):
    """An order the bot sent (or adopted). ``status``: pending (sent, outcome unknown), open,
    filled, canceled, rejected, triggered, unknown (never reached the exchange), refused (the
    exchange refused the request as a whole for its signer: never on the book, its client order
    id is sent again by the next send of its intent: ``created_at`` is then that send's)."""

    __tablename__ = "orders"
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    cloid: Mapped[str | None] = mapped_column(String(34), unique=True, index=True)
    oid: Mapped[int | None] = mapped_column(Integer, index=True)
    coin: Mapped[str] = mapped_column(String(32))
    is_buy: Mapped[bool] = mapped_column(Boolean)
    size: Mapped[float] = mapped_column(Float)
    limit_px: Mapped[float] = mapped_column(Float)
    trigger_px: Mapped[float | None] = mapped_column(Float)
    reduce_only: Mapped[bool] = mapped_column(Boolean, default=False)
    intent: Mapped[str] = mapped_column(String(32))
    status: Mapped[str] = mapped_column(String(16), default="pending")
    origin: Mapped[str] = mapped_column(String(16), default="bot")
    filled_size: Mapped[float] = mapped_column(Float, default=0.0)
    avg_px: Mapped[float | None] = mapped_column(Float)
    error: Mapped[str | None] = mapped_column(Text)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow, onupdate=utcnow)


class FillRecord(Base):
    """A fill reported by the exchange (``userFills``), unique by trade id ``tid``."""

    __tablename__ = "fills"
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    tid: Mapped[int] = mapped_column(Integer, unique=True)
    oid: Mapped[int | None] = mapped_column(Integer, index=True)
    cloid: Mapped[str | None] = mapped_column(String(34))
    coin: Mapped[str] = mapped_column(String(32), index=True)
    is_buy: Mapped[bool] = mapped_column(Boolean)
    px: Mapped[float] = mapped_column(Float)
    size: Mapped[float] = mapped_column(Float)
    fee: Mapped[float] = mapped_column(Float, default=0.0)
    closed_pnl: Mapped[float] = mapped_column(Float, default=0.0)
    time_ms: Mapped[int] = mapped_column(Integer, index=True)


class TradeRecord(Base):
    """A round trip: opened when a position appears, closed when it is gone.
    ``pnl`` is realized P&L net of fees of the fills in between."""

    __tablename__ = "trades"
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    coin: Mapped[str] = mapped_column(String(32), index=True)
    side: Mapped[str] = mapped_column(String(8))  # long | short
    size: Mapped[float] = mapped_column(Float)
    entry_px: Mapped[float] = mapped_column(Float)
    entry_key: Mapped[int] = mapped_column(Integer)  # regime start (ms) or adoption time
    origin: Mapped[str] = mapped_column(String(16), default="bot")
    opened_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)
    closed_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    exit_px: Mapped[float | None] = mapped_column(Float)
    pnl: Mapped[float | None] = mapped_column(Float)
    close_reason: Mapped[str | None] = mapped_column(String(32))


class PositionRecord(Base):
    """The last observed exchange position of a coin (absent row = flat)."""

    __tablename__ = "positions"
    coin: Mapped[str] = mapped_column(String(32), primary_key=True)
    size: Mapped[float] = mapped_column(Float)  # signed: > 0 long, < 0 short
    entry_px: Mapped[float] = mapped_column(Float)
    unrealized_pnl: Mapped[float] = mapped_column(Float, default=0.0)
    trade_id: Mapped[int | None] = mapped_column(Integer)
    updated_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow, onupdate=utcnow)


class EquitySnapshot(Base):
    __tablename__ = "equity_snapshots"
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow, index=True)
    day: Mapped[str] = mapped_column(String(10), index=True)  # UTC date, YYYY-MM-DD
    equity: Mapped[float] = mapped_column(Float)


class HaltRecord(Base):
    """History of halts of new entries: taken at ``created_at``, ended at ``cleared_at``. The
    halts *in force* are in the halt file (:mod:`botwarden.halts`), which a restore of this
    database cannot drop; these rows are what the reports count."""

    __tablename__ = "halts"
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    kind: Mapped[str] = mapped_column(String(32))  # control | daily_loss | reconcile | error
    reason: Mapped[str] = mapped_column(Text)
    day: Mapped[str] = mapped_column(String(10))
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)
    cleared_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    cleared_by: Mapped[str | None] = mapped_column(String(32))
