"""Engine construction: SQLite pragmas, write transactions that do not deadlock, migrations.

Alembic (with Mako and Pygments, about 11 MB of RSS in the resident agent) is imported only when
a migration is due: :func:`upgrade_to_head` first compares the revision stamped in the database
with the head of the shipped migrations, read from their files with one plain query and no
Alembic, and returns when they agree. A caller that stays resident can have a due migration run
in a short-lived child interpreter instead, so it never holds Alembic at all.
"""
from __future__ import annotations

import ast
import functools
import logging
import subprocess
import sys
from pathlib import Path
from typing import TYPE_CHECKING, Any

from sqlalchemy import Engine, create_engine, event, inspect
from sqlalchemy.engine import Connection, make_url

from botwarden.errors import OperationalError

if TYPE_CHECKING:
    from alembic.config import Config

log = logging.getLogger(__name__)
MIGRATIONS_DIR = Path(__file__).with_name("migrations")
VERSIONS_DIR = MIGRATIONS_DIR / "versions"
VERSION_TABLE = "alembic_version"

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


def upgrade_to_head(engine: Engine, *, in_child_process: bool = False) -> None:
    """Apply every migration not yet applied; a no-op on an up-to-date database.

    The no-op costs one query: Alembic is imported only when the database is new, behind, or
    in a state this check cannot vouch for (then Alembic decides, as it always did). With
    ``in_child_process`` that import happens in a child interpreter that migrates and exits
    (its log lines are passed on); a failure there raises :class:`OperationalError`.
    """
    with engine.connect() as connection:
        head = shipped_head()
        if head is not None and stamped_revisions(connection) == {head}:
            connection.rollback()
            return
        if not in_child_process:
            from alembic import command

            command.upgrade(alembic_config(connection), "head")
            connection.commit()
            return
    _upgrade_in_child(engine)


_CHILD = """
import logging, sys, traceback
logging.basicConfig(level=logging.WARNING, format="%(levelname)s %(name)s: %(message)s")
logging.getLogger("alembic.runtime.migration").setLevel(logging.INFO)  # "Running upgrade 0001 -> 0002"
from agent.store._database import create_store_engine, upgrade_to_head
engine = create_store_engine(sys.stdin.read().strip())
try:
    upgrade_to_head(engine)
except Exception as exc:
    traceback.print_exc()
    print(f"{type(exc).__name__}: " + (str(exc).splitlines() or [""])[0], file=sys.stderr)
    sys.exit(1)
finally:
    engine.dispose()
"""


def _upgrade_in_child(engine: Engine) -> None:
    # The URL goes through stdin, not argv, where any user could read a password in it. No
    # timeout, like the in-process migration: batch mode may copy a large results table.
    url = engine.url.render_as_string(hide_password=False)
    proc = subprocess.run([sys.executable, "-c", _CHILD], input=url, capture_output=True, text=True, check=False)
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


def stamped_revisions(connection: Connection) -> set[str]:
    """The revisions recorded in the database's ``alembic_version`` table (empty when it has none)."""
    if not inspect(connection).has_table(VERSION_TABLE):
        return set()
    return {str(row[0]) for row in connection.exec_driver_sql(f"SELECT version_num FROM {VERSION_TABLE}")}


@functools.cache
def shipped_head() -> str | None:
    """The single head revision of the shipped migrations, read from their files without Alembic.

    None when the files do not say plainly (a revision not written as a string literal, a
    merge, two heads): the caller then leaves the decision to Alembic. Read once per process:
    the shipped files do not change under a running agent.
    """
    revisions: set[str] = set()
    parents: set[str] = set()
    for path in VERSIONS_DIR.glob("*.py"):
        try:
            found = _module_literals(path.read_text("utf-8"), ("revision", "down_revision"))
        except (SyntaxError, ValueError):  # Alembic will say what is wrong with the file
            return None
        revision = found.get("revision")
        if not isinstance(revision, str) or not revision:
            return None
        revisions.add(revision)
        parent = found.get("down_revision")
        if parent is not None:
            if not isinstance(parent, str) or not parent:
                return None  # a merge (a tuple of parents) or not a literal
            parents.add(parent)
    heads = revisions - parents
    return heads.pop() if len(heads) == 1 else None


_NOT_LITERAL = object()


def _module_literals(source: str, names: tuple[str, ...]) -> dict[str, object]:
    """The values of the module-level assignments to ``names`` (``x = ...`` or ``x: T = ...``).

    A name assigned something other than a literal maps to a placeholder that is no str or None;
    a name not assigned at all is missing.
    """
    found: dict[str, object] = {}
    for node in ast.parse(source).body:
        if isinstance(node, ast.Assign) and len(node.targets) == 1:
            target, value = node.targets[0], node.value
        elif isinstance(node, ast.AnnAssign) and node.value is not None:
            target, value = node.target, node.value
        else:
            continue
        if isinstance(target, ast.Name) and target.id in names:
            try:
                found[target.id] = ast.literal_eval(value)
            except (ValueError, TypeError, SyntaxError, MemoryError, RecursionError):
                found[target.id] = _NOT_LITERAL
    return found
