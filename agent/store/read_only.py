"""A read-only view of the agent's store, for readers that must never hold up the agent.

:class:`ReadOnlyStore` has every read of :class:`agent.store.Store` (and a few more, for status
pages) over its own engine:

* on SQLite the file is opened with ``mode=ro`` and ``PRAGMA query_only``: no statement can
  write, and no transaction is begun with ``BEGIN IMMEDIATE`` (the writer's engine takes the
  write lock at BEGIN; a reader doing that would queue the resident agent's writes behind it).
  Each read is one statement in SQLite's autocommit mode: WAL gives it a consistent snapshot
  and the agent's writer never waits for it;
* the file is never created: a store that does not exist yet raises :class:`StoreMissingError`
  (the page says so) instead of leaving an empty database where the agent will look;
* :meth:`ReadOnlyStore.replaced` tells when the path no longer names the file that was opened
  (deleted, or replaced: a restore, a new store made by a restarted agent): an open connection
  keeps reading the old file for ever, so a long-lived reader checks it and opens the path anew.

Calling a write method raises (SQLite refuses it); do writes through :class:`Store`.
"""
from __future__ import annotations

from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from datetime import datetime
from pathlib import Path
from typing import Any

from sqlalchemy import Engine, create_engine, event, func, select
from sqlalchemy.engine import make_url
from sqlalchemy.orm import Session, sessionmaker

from agent.store._operations import Operations
from agent.store._ops_audit import _event
from agent.store._ops_checks import _result
from agent.store._ops_common import aware
from agent.store._ops_outbox import _notification
from agent.store.models import CheckResultRow, EventRow, NotificationRow
from agent.store.records import CheckResultRecord, EventRecord, NotificationRecord
from botwarden.errors import OperationalError

READ_BUSY_TIMEOUT_MS = 1000
"""A read waits at most this long for SQLite (a checkpoint in progress); never the writer's 5 s."""


class StoreMissingError(OperationalError):
    """The store's file does not exist (the agent has not run here yet)."""


def sqlite_file(url: str) -> Path | None:
    """The database file of a SQLite URL (resolved), None for other databases."""
    parsed = make_url(url)
    if not parsed.drivername.startswith("sqlite") or not parsed.database or parsed.database == ":memory:":
        return None
    return Path(parsed.database).resolve()


def _identity(path: Path | None) -> tuple[int, int] | None:
    """(device, inode) of the file at ``path``; None when there is none (or no path)."""
    if path is None:
        return None
    try:
        st = path.stat()
    except OSError:
        return None
    return st.st_dev, st.st_ino


def read_only_engine(url: str) -> Engine:
    """An engine that cannot write: SQLite ``mode=ro`` + ``query_only``; other databases as given
    (use a read-only role there)."""
    parsed = make_url(url)
    if not parsed.drivername.startswith("sqlite"):
        return create_engine(url, pool_pre_ping=True)
    database = parsed.database or ""
    if not database or database == ":memory:":
        raise OperationalError("a read-only store needs a database file, not an in-memory database")
    path = Path(database).resolve()
    if not path.is_file():
        raise StoreMissingError(f"the agent store {path} does not exist", hint="start the agent (`make run`) first")
    engine = create_engine(f"sqlite:///file:{path}?mode=ro&uri=true",
                           connect_args={"timeout": READ_BUSY_TIMEOUT_MS / 1000, "check_same_thread": False})

    @event.listens_for(engine, "connect")
    def _on_connect(dbapi_connection: Any, _record: Any) -> None:
        cursor = dbapi_connection.cursor()
        try:
            cursor.execute("PRAGMA query_only=ON")
            cursor.execute(f"PRAGMA busy_timeout={READ_BUSY_TIMEOUT_MS}")
        finally:
            cursor.close()

    return engine


class ReadOnlyStore(Operations):
    """``ReadOnlyStore("sqlite:////abs/var/agent.db")``: the store's reads, and views for pages.

    Thread-safe (a new session per call); :meth:`close` releases the connections.
    """

    def __init__(self, url: str) -> None:
        self.url = url
        self._path = sqlite_file(url)
        self._identity = _identity(self._path)  # taken before the engine opens it: a swap after is seen
        self._engine = read_only_engine(url)
        self._sessions = sessionmaker(self._engine, expire_on_commit=False)

    @contextmanager
    def _session(self) -> Iterator[Session]:
        with self._sessions() as session:
            try:
                yield session
            finally:
                session.rollback()  # ends the read; nothing to commit

    def close(self) -> None:
        self._engine.dispose()

    def replaced(self) -> bool:
        """The path no longer names the file this store opened: it was deleted, or another file
        took its place (a restore, a new store of a restarted agent). The open connections still
        read the old one, which nothing writes any more: its incidents and check states are
        frozen, and would be shown as current. Always False for a database that is not a file."""
        return self._path is not None and _identity(self._path) != self._identity

    def __enter__(self) -> ReadOnlyStore:
        return self

    def __exit__(self, *exc: Any) -> None:
        self.close()

    # -- views for status pages --------------------------------------------------------------

    def recent_results_per_check(self, *, since: datetime, per_check: int = 60) -> dict[str, list[CheckResultRecord]]:
        """The newest ``per_check`` results of every check observed since ``since``, oldest first,
        by ``play/host/check`` key (one query, a window function)."""
        rank = func.row_number().over(
            partition_by=(CheckResultRow.play, CheckResultRow.host, CheckResultRow.check),
            order_by=(CheckResultRow.observed_at.desc(), CheckResultRow.id.desc()),
        ).label("rank")
        inner = select(CheckResultRow.id, rank).where(CheckResultRow.observed_at >= aware(since)).subquery()
        q = (select(CheckResultRow).join(inner, inner.c.id == CheckResultRow.id)
             .where(inner.c.rank <= per_check)
             .order_by(CheckResultRow.observed_at, CheckResultRow.id))
        out: dict[str, list[CheckResultRecord]] = {}
        with self._session() as s:
            for row in s.scalars(q):
                rec = _result(row)
                out.setdefault(rec.key, []).append(rec)
        return out

    def notification_counts(self) -> dict[str, int]:
        """Outbox rows by status (pending, sending, sent, failed, dead)."""
        with self._session() as s:
            rows = s.execute(select(NotificationRow.status, func.count()).group_by(NotificationRow.status))
            return {str(status): int(n) for status, n in rows}

    def recent_notifications(self, *, statuses: Sequence[str] | None = None, title_prefix: str | None = None,
                             limit: int = 20) -> list[NotificationRecord]:
        """Outbox rows newest first, optionally only of these statuses or titles starting so."""
        q = select(NotificationRow)
        if statuses is not None:
            q = q.where(NotificationRow.status.in_(list(statuses)))
        if title_prefix is not None:
            q = q.where(NotificationRow.title.startswith(title_prefix, autoescape=True))
        with self._session() as s:
            return [_notification(r) for r in s.scalars(q.order_by(NotificationRow.id.desc()).limit(limit))]

    def last_events(self, kinds: Sequence[str]) -> dict[str, EventRecord]:
        """The newest event of each of ``kinds`` (absent kinds are missing)."""
        newest = (select(func.max(EventRow.id)).where(EventRow.kind.in_(list(kinds)))
                  .group_by(EventRow.kind))
        with self._session() as s:
            return {r.kind: _event(r) for r in s.scalars(select(EventRow).where(EventRow.id.in_(newest)))}
