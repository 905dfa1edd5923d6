"""Engine construction: SQLite pragmas, write transactions that do not deadlock, migrations.

Alembic (with Mako and Pygments, about 11 MB of RSS in the resident agent) is imported only when
a migration is due: :func:`upgrade_to_head` first compares the revision stamped in the database
with the head of the shipped migrations, read from their files with one plain query and no
Alembic, and returns when they agree.
"""
from __future__ import annotations

import re
from pathlib import Path
from typing import TYPE_CHECKING, Any

from sqlalchemy import Engine, create_engine, event, inspect
from sqlalchemy.engine import Connection, make_url

if TYPE_CHECKING:
    from alembic.config import Config

MIGRATIONS_DIR = Path(__file__).with_name("migrations")
VERSIONS_DIR = MIGRATIONS_DIR / "versions"
VERSION_TABLE = "alembic_version"
_REVISION_LINE = re.compile(r"^(?P<key>revision|down_revision)\s*(?::[^=\n]*)?=\s*(?P<value>.+)$", re.M)

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
    from alembic.config import Config

    cfg = Config()
    cfg.set_main_option("script_location", str(MIGRATIONS_DIR))
    if connection is not None:
        cfg.attributes["connection"] = connection
    return cfg


def upgrade_to_head(engine: Engine) -> None:
    """Apply every migration not yet applied; a no-op on an up-to-date database.

    The no-op costs one query: Alembic is imported only when the database is new, behind, or
    in a state this check cannot vouch for (then Alembic decides, as it always did).
    """
    with engine.connect() as connection:
        head = shipped_head()
        if head is not None and stamped_revisions(connection) == {head}:
            connection.rollback()
            return
        from alembic import command

        command.upgrade(alembic_config(connection), "head")
        connection.commit()


def stamped_revisions(connection: Connection) -> set[str]:
    """The revisions recorded in the database's ``alembic_version`` table (empty when it has none)."""
    if not inspect(connection).has_table(VERSION_TABLE):
        return set()
    return {str(row[0]) for row in connection.exec_driver_sql(f"SELECT version_num FROM {VERSION_TABLE}")}


def shipped_head() -> str | None:
    """The single head revision of the shipped migrations, read from their files without Alembic.

    None when the files do not say plainly (a revision not written as a string literal, a
    merge, two heads): the caller then leaves the decision to Alembic.
    """
    revisions: set[str] = set()
    parents: set[str] = set()
    for path in VERSIONS_DIR.glob("*.py"):
        found = {m.group("key"): m.group("value").strip() for m in _REVISION_LINE.finditer(path.read_text("utf-8"))}
        revision = _string_literal(found.get("revision", ""))
        if revision is None:
            return None
        revisions.add(revision)
        parent = found.get("down_revision", "None")
        if parent != "None":
            parent_id = _string_literal(parent)
            if parent_id is None:
                return None
            parents.add(parent_id)
    heads = revisions - parents
    return heads.pop() if len(heads) == 1 else None


def _string_literal(text: str) -> str | None:
    match = re.fullmatch(r"""(["'])([^"'\\]+)\1""", text)
    return match.group(2) if match else None
