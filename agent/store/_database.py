"""Engine construction: SQLite pragmas, write transactions that do not deadlock, migrations.

Alembic (with Mako and Pygments, about 11 MB of RSS in the resident agent) is imported only when
a migration is due (see :func:`upgrade_to_head`); a caller that stays resident has a due
migration run in a short-lived child interpreter, so it never holds Alembic at all.
"""
from __future__ import annotations

import functools
import hashlib
import logging
import sqlite3
import subprocess
import sys
from pathlib import Path
from typing import TYPE_CHECKING, Any
from urllib.parse import quote

from sqlalchemy import Engine, create_engine, event
from sqlalchemy.engine import URL, Connection, make_url

from botwarden.errors import OperationalError

if TYPE_CHECKING:
    from alembic.config import Config

log = logging.getLogger(__name__)
MIGRATIONS_DIR = Path(__file__).with_name("migrations")
VERSIONS_DIR = MIGRATIONS_DIR / "versions"
VERSION_TABLE = "alembic_version"

BUSY_TIMEOUT_MS = 5000
"""How long a writer waits for another process (e.g. ``agent ack``) holding the write lock."""


def create_store_engine(url: str, *, create: bool = True) -> Engine:
    """An engine for ``url``; for SQLite, a WAL database whose transactions begin IMMEDIATE.

    Why IMMEDIATE: with SQLite's default deferred BEGIN, two connections that both read then
    write can deadlock, and SQLite then fails one at once with "database is locked" instead
    of waiting ``busy_timeout``. Taking the write lock at BEGIN makes writers queue instead.
    With ``create`` the parent folder of a SQLite file is created (``var/`` on a fresh checkout)
    and so is the file, once, here; without it, a missing file is refused
    (:class:`OperationalError`). Either way every connection opens the file ``mode=rw``, so no
    later connection creates a file: the CLI's commands never make a database the resident agent
    does not read, and a pool connection opened after the file was deleted fails instead of
    writing into a new, empty file that :class:`agent.engine.store_file.StoreFileWatch` would
    then report as a replacement.
    """
    parsed = make_url(url)
    if not parsed.drivername.startswith("sqlite"):
        return create_engine(url, pool_pre_ping=True)
    connect_args: dict[str, Any] = {"timeout": BUSY_TIMEOUT_MS / 1000}
    if parsed.database and parsed.database != ":memory:" and not parsed.database.startswith("file:"):
        path = Path(parsed.database)
        if create:
            path.parent.mkdir(parents=True, exist_ok=True)
            sqlite3.connect(path).close()  # creates the file now, once
        elif not path.is_file():
            raise OperationalError(
                f"the agent's database {path} does not exist",
                hint="is the agent running with this inventory? (`agent run` creates it; check the inventory's "
                     "settings or --store)")
        # SQLite reads the file name as a URI: quoted, a '#', '?' or '%' in a folder name stays a path.
        uri = URL.create("sqlite", database=f"file:{quote(str(path.resolve()))}", query={"mode": "rw", "uri": "true"})
        engine = create_engine(uri, connect_args=connect_args)
    else:
        engine = create_engine(url, connect_args=connect_args)

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


def upgrade_to_head(engine: Engine, *, in_child_process: bool = False) -> None:
    """Apply every migration not yet applied, through Alembic's own command API.

    Whether one is due is known without Alembic on SQLite: after every upgrade the database is
    stamped (``PRAGMA user_version``) with a fingerprint of the shipped migration files (their
    bytes, hashed, not parsed); equal stamps mean "migrated by exactly these files", and the
    check costs one pragma read. Why not ask Alembic: importing it (with Mako and Pygments) adds
    about 11 MB to the resident agent for good, and running it in a child interpreter at every
    start costs 0.4-0.9 s on 2 cores (measured); so Alembic runs only when the stamp differs, in
    a child interpreter (``python -m agent.store.migrate``) with ``in_child_process``, in this
    process otherwise. A failure in the child raises :class:`OperationalError` with its reason.
    """
    if _stamped(engine):
        return
    if in_child_process:
        _upgrade_in_child(engine)
        return
    from alembic import command

    with engine.connect() as connection:
        command.upgrade(alembic_config(connection), "head")
        connection.commit()
    _stamp(engine)


def _stamped(engine: Engine) -> bool:
    if engine.dialect.name != "sqlite":
        return False  # no stamp there: Alembic decides (a no-op upgrade when nothing is due)
    with engine.connect() as connection:
        stamp = connection.exec_driver_sql("PRAGMA user_version").scalar()
        connection.rollback()
    return bool(stamp == migrations_fingerprint())


def _stamp(engine: Engine) -> None:
    if engine.dialect.name != "sqlite":
        return
    with engine.connect() as connection:
        connection.exec_driver_sql(f"PRAGMA user_version = {migrations_fingerprint():d}")
        connection.commit()


@functools.cache
def migrations_fingerprint() -> int:
    """A positive 31-bit number that changes when any shipped migration file changes (read once
    per process: the shipped files do not change under a running agent)."""
    digest = hashlib.sha256()
    for path in sorted(VERSIONS_DIR.glob("*.py")):
        digest.update(path.name.encode() + b"\0" + path.read_bytes() + b"\0")
    return int.from_bytes(digest.digest()[:4], "big") & 0x7FFFFFFF or 1


def _upgrade_in_child(engine: Engine) -> None:
    # The URL goes through stdin, not argv, where any user could read a password in it. No
    # timeout, like the in-process migration: batch mode may copy a large results table.
    url = engine.url.render_as_string(hide_password=False)
    proc = subprocess.run([sys.executable, "-m", "agent.store.migrate"], input=url, capture_output=True, text=True,
                          check=False)
    lines = [line for line in proc.stderr.splitlines() if line.strip()]
    if proc.returncode == 0:
        for line in lines:
            log.info("migration: %s", line)
        return
    log.error("the migration of the store failed in a child process:\n%s", proc.stderr.rstrip())
    why = lines[-1] if lines else f"exit code {proc.returncode}"
    raise OperationalError(f"migrating the store {engine.url!r} failed: {why}",
                           hint="the log above has the migration's traceback; `agent status` runs the same "
                                "migration in the foreground")
