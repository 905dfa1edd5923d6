"""The agent's store: results, check states, incidents, the notification outbox, the audit trail.

Contract:

* synchronous and thread-safe: one :class:`threading.RLock` serialises transactions inside
  the process, and SQLite's write lock (taken at BEGIN, waited for up to ``busy_timeout``)
  serialises them against other processes such as ``agent ack``;
* every method of :class:`Store` runs in its own short transaction; ``with
  store.transaction() as tx:`` exposes the same methods on one transaction, so a state
  transition, its incident and its outbox rows commit together or not at all;
* callers get frozen value objects (:mod:`agent.store.records`), never ORM objects;
* every datetime in and out is timezone-aware UTC (naive datetimes are refused);
* ``Store(url, redact=...)``: every free-text and JSON column (messages, errors, alert bodies,
  task parameters, event data) is redacted on the way in, so neither the file nor a backup
  of it ever holds a secret the redactor knows.
"""
from __future__ import annotations

import logging
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any

from sqlalchemy import Engine
from sqlalchemy.orm import Session, sessionmaker

from agent.store._database import create_store_engine, upgrade_to_head
from agent.store._operations import Operations
from agent.store.models import WRITE_REDACTION

log = logging.getLogger(__name__)


def _unchanged(text: str) -> str:
    return text


class StoreTransaction(Operations):
    """One unit of work: every method runs in the same database transaction.

    Obtained from :meth:`Store.transaction`; do not keep it after the ``with`` block.
    ``after_commit(callback)`` runs ``callback()`` once the transaction has committed (and
    never if it rolls back): the place to wake the outbox, so it cannot look for rows that
    are not visible yet. A callback registered again (the same function, or an equal bound
    method: each queued batch registers the outbox's wake) still runs once.
    """

    def __init__(self, session: Session) -> None:
        self._session_obj = session
        self._after_commit: list[Callable[[], None]] = []

    @contextmanager
    def _session(self) -> Iterator[Session]:
        yield self._session_obj

    def after_commit(self, callback: Callable[[], None]) -> None:
        if callback not in self._after_commit:  # equality: a bound method is a new object each time
            self._after_commit.append(callback)


class Store(Operations):
    """The agent's database. ``Store("sqlite:////abs/var/agent.db")``, then :meth:`migrate`."""

    def __init__(self, url: str, *, create: bool = True, redact: Callable[[str], str] | None = None) -> None:
        """``create=False``: refuse a database file that does not exist (the CLI's commands).
        ``redact`` is applied to every free-text and JSON column on the way in (:mod:`agent.core.redaction`)."""
        self.url = url
        self.redact: Callable[[str], str] = redact or _unchanged
        self._engine: Engine = create_store_engine(url, create=create)
        self._sessions = sessionmaker(self._engine, expire_on_commit=False)
        self._lock = threading.RLock()
        self._local = threading.local()

    def migrate(self, *, in_child_process: bool = False) -> None:
        """Upgrade the schema to the newest migration shipped with the package.

        Alembic is imported only when a migration is due; with ``in_child_process`` (the
        resident agent) a due migration runs in a child interpreter, so this process never
        carries Alembic (see :func:`agent.store._database.upgrade_to_head`).
        """
        with self._lock:
            upgrade_to_head(self._engine, in_child_process=in_child_process)

    def close(self) -> None:
        """Release every connection. The store must not be used afterwards."""
        with self._lock:
            self._engine.dispose()

    @property
    def engine(self) -> Engine:
        """For migrations tests and maintenance only; use the methods otherwise."""
        return self._engine

    @contextmanager
    def transaction(self) -> Iterator[StoreTransaction]:
        """A unit of work: commits when the block exits normally, rolls back on an exception."""
        with self._lock:
            if getattr(self._local, "active", False):
                # A second transaction on this thread would wait forever on our own write lock.
                raise RuntimeError("a store transaction is already open on this thread; use its tx")
            self._local.active = True
            redaction = WRITE_REDACTION.set(self.redact)
            try:
                with self._sessions() as session, session.begin():
                    tx = StoreTransaction(session)
                    yield tx
            finally:
                WRITE_REDACTION.reset(redaction)
                self._local.active = False
        for callback in tx._after_commit:
            try:
                callback()
            except Exception:  # a wake-up hook must never undo or hide a committed write
                log.exception("after-commit callback %r failed", callback)

    @contextmanager
    def _session(self) -> Iterator[Session]:
        with self.transaction() as tx:
            yield tx._session_obj

    def __enter__(self) -> Store:
        return self

    def __exit__(self, *exc: Any) -> None:
        self.close()
