"""Engine construction: SQLite pragmas, write transactions that do not deadlock, migrations."""
from __future__ import annotations

from pathlib import Path
from typing import Any

from alembic import command
from alembic.config import Config
from sqlalchemy import Engine, create_engine, event
from sqlalchemy.engine import Connection, make_url

MIGRATIONS_DIR = Path(__file__).with_name("migrations")

BUSY_TIMEOUT_MS = 5000
"""How long a writer waits for another process (e.g. ``agent ack``) holding the write lock."""


def create_store_engine(url: str) -> Engine:
    """An engine for ``url``; for SQLite, a WAL database whose transactions begin IMMEDIATE.

    Why IMMEDIATE: with SQLite's default deferred BEGIN, two connections that both read then
    write can deadlock, and SQLite then fails one at once with "database is locked" instead
    of waiting ``busy_timeout``. Taking the write lock at BEGIN makes writers queue instead.
    The parent folder of a SQLite file is created (``var/`` on a fresh checkout).
    """
    parsed = make_url(url)
    if not parsed.drivername.startswith("sqlite"):
        return create_engine(url, pool_pre_ping=True)
    if parsed.database and parsed.database != ":memory:":
        Path(parsed.database).parent.mkdir(parents=True, exist_ok=True)
    engine = create_engine(url, connect_args={"timeout": BUSY_TIMEOUT_MS / 1000})

    @event.listens_for(engine, "connect")
    def _on_connect(dbapi_connection: Any, _record: Any) -> None:
        # Let SQLAlchemy, not the sqlite3 module, decide when transactions begin.
        dbapi_connection.isolation_level = None
        cursor = dbapi_connection.cursor()
        try:
            cursor.execute("PRAGMA journal_mode=WAL")
            cursor.execute(f"PRAGMA busy_timeout={BUSY_TIMEOUT_MS}")
            # NORMAL is durable across application crashes in WAL mode; only an OS crash or
            # power loss can lose the last commits, and fsync per commit is not worth that.
            cursor.execute("PRAGMA synchronous=NORMAL")
            cursor.execute("PRAGMA foreign_keys=ON")
        finally:
            cursor.close()

    @event.listens_for(engine, "begin")
    def _on_begin(conn: Connection) -> None:
        conn.exec_driver_sql("BEGIN IMMEDIATE")

    return engine


def alembic_config(connection: Connection | None = None) -> Config:
    """An Alembic config pointing at the migrations shipped in the package (no .ini needed)."""
    cfg = Config()
    cfg.set_main_option("script_location", str(MIGRATIONS_DIR))
    if connection is not None:
        cfg.attributes["connection"] = connection
    return cfg


def upgrade_to_head(engine: Engine) -> None:
    """Apply every migration not yet applied; a no-op on an up-to-date database."""
    with engine.connect() as connection:
        command.upgrade(alembic_config(connection), "head")
        connection.commit()
