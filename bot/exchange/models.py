"""Persisted state of the paper exchange (SQLAlchemy 2.0 typed models on SQLite).

The exchange keeps its working state in these ORM objects, held by one long-lived session
(``expire_on_commit=False``) that lives on the server's event loop: the identity map *is* the
in-memory state, and each request ends with one ``commit`` that writes what it changed. So a
restart reloads accounts, positions, open orders, fills, nonces and shocks as they were.

``SCHEMA_VERSION`` is stored in ``exchange_meta``. A file of an older version this build knows how
to upgrade (:data:`UPGRADES`: added tables and columns only) is upgraded in place at start-up; any
other version is refused rather than misread (delete it or point ``--state`` elsewhere).
"""
from __future__ import annotations

from pathlib import Path

from sqlalchemy import (
    BigInteger,
    Boolean,
    Float,
    ForeignKey,
    Index,
    Integer,
    String,
    create_engine,
    event,
    text,
)
from sqlalchemy.engine import Engine
from sqlalchemy.orm import DeclarativeBase, Mapped, Session, mapped_column

SCHEMA_VERSION = 3


class Base(DeclarativeBase):
    pass


class MetaRow(Base):
    """Key/value facts about the state file itself (schema version, next order id)."""

    __tablename__ = "exchange_meta"
    key: Mapped[str] = mapped_column(String(64), primary_key=True)
    value: Mapped[str] = mapped_column(String(256))


class Account(Base):
    """A trading account (a user address, lower-case hex)."""

    __tablename__ = "accounts"
    address: Mapped[str] = mapped_column(String(42), primary_key=True)
    balance: Mapped[float] = mapped_column(Float, default=0.0)  # USDC cash incl. realized P&L and fees
    cum_volume: Mapped[float] = mapped_column(Float, default=0.0)  # notional traded, USDC
    n_requests: Mapped[int] = mapped_column(Integer, default=0)  # address-based rate-limit usage
    schedule_cancel_ms: Mapped[int | None] = mapped_column(BigInteger, nullable=True)
    schedule_cancel_day: Mapped[int] = mapped_column(Integer, default=0)  # UTC day of the counter
    schedule_cancel_count: Mapped[int] = mapped_column(Integer, default=0)  # triggers that day


class Leverage(Base):
    """Per-account, per-coin leverage setting (updateLeverage)."""

    __tablename__ = "leverage"
    address: Mapped[str] = mapped_column(ForeignKey("accounts.address"), primary_key=True)
    coin: Mapped[str] = mapped_column(String(32), primary_key=True)
    value: Mapped[int] = mapped_column(Integer)
    is_cross: Mapped[bool] = mapped_column(Boolean, default=True)


class Position(Base):
    """One-way position: ``szi`` signed size (positive long), average entry price."""

    __tablename__ = "positions"
    address: Mapped[str] = mapped_column(ForeignKey("accounts.address"), primary_key=True)
    coin: Mapped[str] = mapped_column(String(32), primary_key=True)
    szi: Mapped[float] = mapped_column(Float, default=0.0)
    entry_px: Mapped[float] = mapped_column(Float, default=0.0)
    realized_pnl: Mapped[float] = mapped_column(Float, default=0.0)  # since the position opened
    margin_extra: Mapped[float] = mapped_column(Float, default=0.0)  # updateIsolatedMargin's additions


class Order(Base):
    """Every order ever accepted; ``status`` is Hyperliquid's orderStatus vocabulary."""

    __tablename__ = "orders"
    oid: Mapped[int] = mapped_column(BigInteger, primary_key=True)
    address: Mapped[str] = mapped_column(String(42), index=True)
    coin: Mapped[str] = mapped_column(String(32))
    is_buy: Mapped[bool] = mapped_column(Boolean)
    limit_px: Mapped[float] = mapped_column(Float)
    sz: Mapped[float] = mapped_column(Float)  # remaining
    orig_sz: Mapped[float] = mapped_column(Float)
    tif: Mapped[str | None] = mapped_column(String(8), nullable=True)  # Gtc/Ioc/Alo, None for triggers
    reduce_only: Mapped[bool] = mapped_column(Boolean, default=False)
    cloid: Mapped[str | None] = mapped_column(String(34), nullable=True)
    is_trigger: Mapped[bool] = mapped_column(Boolean, default=False)  # placed as a trigger (kept once fired)
    triggered: Mapped[bool] = mapped_column(Boolean, default=False)  # a trigger that fired: now a plain order
    trigger_px: Mapped[float] = mapped_column(Float, default=0.0)
    is_market: Mapped[bool] = mapped_column(Boolean, default=False)
    tpsl: Mapped[str | None] = mapped_column(String(2), nullable=True)
    grouping: Mapped[str] = mapped_column(String(16), default="na")
    parent_oid: Mapped[int | None] = mapped_column(BigInteger, nullable=True)  # normalTpsl child

    @property
    def waiting_trigger(self) -> bool:
        """A trigger order that has not fired yet (not on the book, its size not held)."""
        return self.is_trigger and not self.triggered

    @property
    def whole_position(self) -> bool:
        """A position TP/SL placed with size 0: it closes the whole position when it fires."""
        return self.grouping == "positionTpsl" and self.orig_sz == 0
    status: Mapped[str] = mapped_column(String(32), default="open")
    timestamp: Mapped[int] = mapped_column(BigInteger)
    status_ts: Mapped[int] = mapped_column(BigInteger)
    builder: Mapped[str | None] = mapped_column(String(42), nullable=True)  # order action's builder.b
    builder_fee: Mapped[int] = mapped_column(Integer, default=0)  # builder.f, tenths of a basis point

    __table_args__ = (Index("ix_orders_open", "status", "address"), Index("ix_orders_cloid", "address", "cloid"))


class Fill(Base):
    """One execution of an order against the simulated book."""

    __tablename__ = "fills"
    # Integer, not BigInteger: only "INTEGER PRIMARY KEY" autoincrements in SQLite (it is 64-bit anyway)
    tid: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    address: Mapped[str] = mapped_column(String(42), index=True)
    oid: Mapped[int] = mapped_column(BigInteger)
    coin: Mapped[str] = mapped_column(String(32))
    px: Mapped[float] = mapped_column(Float)
    sz: Mapped[float] = mapped_column(Float)
    side: Mapped[str] = mapped_column(String(1))  # "B" or "A"
    time: Mapped[int] = mapped_column(BigInteger, index=True)
    start_position: Mapped[float] = mapped_column(Float)
    dir: Mapped[str] = mapped_column(String(32))
    closed_pnl: Mapped[float] = mapped_column(Float)
    fee: Mapped[float] = mapped_column(Float)
    crossed: Mapped[bool] = mapped_column(Boolean)  # True = taker
    hash: Mapped[str] = mapped_column(String(66))
    cloid: Mapped[str | None] = mapped_column(String(34), nullable=True)
    builder_fee: Mapped[float] = mapped_column(Float, default=0.0)  # USDC to the builder, part of ``fee``


class NonceRow(Base):
    """The highest nonces seen per signer (at most ``NONCE_SET_SIZE`` kept)."""

    __tablename__ = "nonces"
    signer: Mapped[str] = mapped_column(String(42), primary_key=True)
    nonce: Mapped[int] = mapped_column(BigInteger, primary_key=True)


class ShockRow(Base):
    """A price shock injected through the admin API (persists so marks survive a restart)."""

    __tablename__ = "shocks"
    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    coin: Mapped[str] = mapped_column(String(32))
    at_ms: Mapped[int] = mapped_column(BigInteger)
    pct: Mapped[float] = mapped_column(Float)


class ApiWallet(Base):
    """An API (agent) wallet approved by ``master`` with ``approveAgent``; signs L1 actions for it."""

    __tablename__ = "api_wallets"
    address: Mapped[str] = mapped_column(String(42), primary_key=True)
    master: Mapped[str] = mapped_column(String(42), index=True)
    name: Mapped[str] = mapped_column(String(64), default="")  # "" = the account's unnamed agent
    valid_until: Mapped[int | None] = mapped_column(BigInteger, nullable=True)  # ms; None = no expiry
    approved_at: Mapped[int] = mapped_column(BigInteger)


class BuilderApproval(Base):
    """``approveBuilderFee``: the highest fee ``user`` lets ``builder`` charge (tenths of a basis point)."""

    __tablename__ = "builder_approvals"
    user: Mapped[str] = mapped_column(String(42), primary_key=True)
    builder: Mapped[str] = mapped_column(String(42), primary_key=True)
    max_fee: Mapped[int] = mapped_column(Integer)


class LedgerUpdate(Base):
    """A non-funding ledger update (transfer, withdrawal): what ``userNonFundingLedgerUpdates`` lists."""

    __tablename__ = "ledger_updates"
    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    address: Mapped[str] = mapped_column(String(42), index=True)
    time: Mapped[int] = mapped_column(BigInteger)
    hash: Mapped[str] = mapped_column(String(66))
    delta: Mapped[str] = mapped_column(String(1024))  # JSON of Hyperliquid's delta object


# Upgrades from an older schema version: each adds columns (new tables come from create_all).
UPGRADES: dict[int, list[str]] = {
    1: ["ALTER TABLE positions ADD COLUMN margin_extra FLOAT NOT NULL DEFAULT 0",
        "ALTER TABLE orders ADD COLUMN builder VARCHAR(42)",
        "ALTER TABLE orders ADD COLUMN builder_fee INTEGER NOT NULL DEFAULT 0",
        "ALTER TABLE fills ADD COLUMN builder_fee FLOAT NOT NULL DEFAULT 0"],
    2: ["ALTER TABLE orders ADD COLUMN triggered BOOLEAN NOT NULL DEFAULT 0"],
}


def open_database(path: str | Path) -> Engine:
    """Create (or open) the SQLite state file, its tables, and check the schema version.

    Raises ``RuntimeError`` when the file was written by an incompatible schema version.
    """
    Path(path).parent.mkdir(parents=True, exist_ok=True)
    engine = create_engine(f"sqlite:///{path}")

    @event.listens_for(engine, "connect")
    def _pragmas(dbapi_conn, _record) -> None:  # type: ignore[no-untyped-def]
        # WAL + NORMAL: a commit per request stays cheap, and a crash loses at most the last one.
        cur = dbapi_conn.cursor()
        cur.execute("PRAGMA journal_mode=WAL")
        cur.execute("PRAGMA synchronous=NORMAL")
        cur.close()

    Base.metadata.create_all(engine)
    with Session(engine) as s:
        row = s.get(MetaRow, "schema_version")
        if row is None:
            s.add(MetaRow(key="schema_version", value=str(SCHEMA_VERSION)))
            s.commit()
        elif int(row.value) in UPGRADES:
            version = int(row.value)
            while version < SCHEMA_VERSION:
                for statement in UPGRADES[version]:
                    s.execute(text(statement))
                version += 1
            row.value = str(version)
            s.commit()
        elif int(row.value) != SCHEMA_VERSION:
            raise RuntimeError(
                f"{path}: exchange state schema v{row.value}, this build reads v{SCHEMA_VERSION}; "
                "move the file away or pass another --state"
            )
    return engine
