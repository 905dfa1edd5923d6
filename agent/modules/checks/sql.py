"""Check: the value (and rows) of a read-only SQL query on a SQLAlchemy URL.

Example: trades opened in the last 4 hours, from the bot's database::

    sql:
      url: "sqlite:///{{ bot.db_path }}"
      query: "SELECT count(*) FROM trades WHERE opened_at > datetime('now', '-4 hours')"

Contract: the query never writes, anywhere. SQLite files are opened with ``mode=ro`` (a missing
file is an error, never silently created), no other database may be attached, and an authorizer
allows only reading: ``SELECT``, reading columns, functions (``load_extension`` excepted),
recursive CTEs and the pragmas of :data:`READ_ONLY_PRAGMAS`; everything else is refused before
it runs (``ATTACH 'file:x?mode=rwc'`` would create a file, ``VACUUM INTO`` writes a copy of the
database anywhere, a pragma may write). A progress handler aborts the query at the deadline.
Other databases run the query in a transaction marked read only (PostgreSQL) that is always
rolled back; give the check a role that may only read, as a transaction cannot stop everything
a server-side function may do. ``value`` is the first column of the first row (None for no rows).
"""
from __future__ import annotations

import asyncio
import base64
import sqlite3
import time
from datetime import date, datetime
from datetime import time as dtime
from decimal import Decimal
from typing import Annotated, Any, ClassVar
from urllib.parse import quote

from pydantic import Field, field_validator
from sqlalchemy import create_engine, text
from sqlalchemy.engine import Engine, make_url
from sqlalchemy.exc import ArgumentError, SQLAlchemyError
from sqlalchemy.pool import NullPool

from agent.core.values import Timeout
from agent.modules.base import CheckModule, CheckResult, Params, RunContext, Secret


class SqlCheckParams(Params):
    url: Annotated[str, Secret("url")] = Field(
        repr=False,
        description="SQLAlchemy URL, e.g. sqlite:///{{ bot.db_path }} (its password is secret: never stored, "
                    "shown or logged)",
    )
    query: str = Field(description="one SELECT statement; :name placeholders are bound from `params`")
    params: dict[str, Any] = Field(default_factory=dict, description="values bound to :name placeholders")
    max_rows: int = Field(100, ge=1, le=10_000, description="keep at most this many rows in the `rows` fact")
    timeout: Timeout | None = Field(None, description="query timeout; default and upper bound: the check's timeout")

    @field_validator("url")
    @classmethod
    def _parsable(cls, url: str) -> str:
        try:
            make_url(url)
        except ArgumentError:
            raise ValueError("not a SQLAlchemy URL; write it like sqlite:///var/bot.db") from None
        return url


class SqlCheck(CheckModule):
    """Runs the query read-only on a worker thread, bounded by the timeout."""

    name: ClassVar[str] = "sql"
    Params: ClassVar[type[SqlCheckParams]] = SqlCheckParams
    description: ClassVar[str] = ("A read-only SQL query's scalar value and rows (SQLite: opened with mode=ro, "
                                  "anything but reading refused)")
    default_value: ClassVar[str | None] = "value"
    facts: ClassVar[dict[str, str]] = {
        "value": "first column of the first row (None when there are no rows)",
        "rows": "the rows as mappings column -> value, at most max_rows",
        "row_count": "rows returned (counted up to max_rows + 1)",
        "columns": "column names",
        "truncated": "true when there were more than max_rows rows",
        "duration_ms": "milliseconds the query took",
    }

    async def run(self, params: SqlCheckParams, ctx: RunContext) -> CheckResult:
        timeout = min(params.timeout or ctx.timeout, ctx.timeout)
        try:
            facts = await asyncio.wait_for(ctx.run_blocking(run_query, params, timeout), timeout=timeout + 1.0)
        except TimeoutError:
            return CheckResult.failed(f"query timed out after {timeout:g}s")
        except QueryError as exc:
            return CheckResult.failed(str(exc))
        return CheckResult(facts=facts, value=facts["value"],
                           summary=f"value={facts['value']!r}, {facts['row_count']} row(s) in "
                                   f"{facts['duration_ms']:.0f}ms")


class QueryError(Exception):
    """The query could not run (bad SQL, missing database, timeout); the message says why."""


def run_query(params: SqlCheckParams, timeout: float) -> dict[str, Any]:
    """Blocking: run ``params.query`` read-only; raises :class:`QueryError`."""
    engine, authorizer = _read_only_engine(params.url, timeout)
    refused = (lambda: authorizer.refused) if authorizer is not None else (lambda: None)
    started = time.perf_counter()
    try:
        with engine.connect() as conn:
            if conn.dialect.name == "postgresql":
                conn.exec_driver_sql("SET TRANSACTION READ ONLY")
            result = conn.execute(text(params.query), params.params)
            columns = list(result.keys()) if result.returns_rows else []
            raw = result.fetchmany(params.max_rows + 1) if result.returns_rows else []
            conn.rollback()  # read only: nothing is ever committed
    except sqlite3.Error as exc:
        raise QueryError(_sqlite_message(exc, timeout, refused())) from None
    except SQLAlchemyError as exc:
        orig = getattr(exc, "orig", None)
        if isinstance(orig, sqlite3.Error):
            raise QueryError(_sqlite_message(orig, timeout, refused())) from None
        raise QueryError(f"query failed: {(str(orig) if orig else str(exc)).splitlines()[0]}") from None
    finally:
        engine.dispose()
    duration_ms = (time.perf_counter() - started) * 1000.0
    truncated = len(raw) > params.max_rows
    rows = [{c: _plain(v) for c, v in zip(columns, row, strict=True)} for row in raw[: params.max_rows]]
    value = _plain(raw[0][0]) if raw and columns else None
    return {"value": value, "rows": rows, "row_count": len(raw), "columns": columns, "truncated": truncated,
            "duration_ms": round(duration_ms, 3)}


def _read_only_engine(url: str, timeout: float) -> tuple[Engine, _ReadOnlyAuthorizer | None]:
    """The engine, and for SQLite the authorizer of its connections (what it refused)."""
    parsed = make_url(url)
    if parsed.get_backend_name() != "sqlite":
        return create_engine(parsed, poolclass=NullPool, pool_pre_ping=False), None
    path = parsed.database or ""
    if not path or path == ":memory:":
        raise QueryError("an in-memory SQLite database has nothing to read; give a file path")
    deadline = time.monotonic() + timeout
    authorizer = _ReadOnlyAuthorizer()

    def connect() -> sqlite3.Connection:
        try:
            conn = sqlite3.connect(f"file:{quote(path)}?mode=ro", uri=True, timeout=timeout,
                                   check_same_thread=False)
        except sqlite3.OperationalError as exc:
            raise QueryError(f"cannot open {path} read-only: {exc}") from None
        # Abort a runaway query at the deadline (checked every 10k VM steps) instead of leaving
        # a thread behind: a non-zero return interrupts the statement.
        conn.set_progress_handler(lambda: int(time.monotonic() > deadline), 10_000)
        conn.setlimit(sqlite3.SQLITE_LIMIT_ATTACHED, 0)  # no ATTACH, hence no VACUUM INTO either
        conn.set_authorizer(authorizer)
        return conn

    return create_engine("sqlite://", creator=connect, poolclass=NullPool), authorizer


READ_ONLY_PRAGMAS = frozenset({
    "table_info", "table_xinfo", "table_list", "index_list", "index_info", "index_xinfo", "foreign_key_list",
    "foreign_key_check", "integrity_check", "quick_check", "collation_list", "function_list", "module_list",
    "pragma_list", "database_list", "compile_options", "data_version", "freelist_count", "page_count",
    "page_size", "user_version", "schema_version", "application_id", "encoding", "journal_mode",
    "read_uncommitted",  # SQLAlchemy reads it when it connects
})
"""Pragmas a check may read; those also settable (``page_size``, ``user_version``...) only without
a value: ``PRAGMA user_version = 3`` is refused."""
_PRAGMAS_WITH_ARGUMENT = frozenset({
    "table_info", "table_xinfo", "table_list", "index_list", "index_info", "index_xinfo", "foreign_key_list",
    "foreign_key_check", "integrity_check", "quick_check",
})
"""Of :data:`READ_ONLY_PRAGMAS`, those whose argument names what to read, never a new value."""
_ALLOWED_ACTIONS = {sqlite3.SQLITE_SELECT, sqlite3.SQLITE_READ, sqlite3.SQLITE_FUNCTION, sqlite3.SQLITE_RECURSIVE}
_ACTION_NAMES = {getattr(sqlite3, f"SQLITE_{name}"): name for name in (
    "CREATE_INDEX", "CREATE_TABLE", "CREATE_TEMP_INDEX", "CREATE_TEMP_TABLE", "CREATE_TEMP_TRIGGER",
    "CREATE_TEMP_VIEW", "CREATE_TRIGGER", "CREATE_VIEW", "DELETE", "DROP_INDEX", "DROP_TABLE", "DROP_TEMP_INDEX",
    "DROP_TEMP_TABLE", "DROP_TEMP_TRIGGER", "DROP_TEMP_VIEW", "DROP_TRIGGER", "DROP_VIEW", "INSERT", "PRAGMA",
    "READ", "SELECT", "TRANSACTION", "UPDATE", "ATTACH", "DETACH", "ALTER_TABLE", "REINDEX", "ANALYZE",
    "CREATE_VTABLE", "DROP_VTABLE", "FUNCTION", "SAVEPOINT", "RECURSIVE")}
"""Authorizer action codes by name (sqlite3 also has error and limit constants of the same values)."""


class _ReadOnlyAuthorizer:
    """sqlite3 authorizer: allows reading only, remembers the first thing it refused."""

    def __init__(self) -> None:
        self.refused: str | None = None

    def __call__(self, action: int, arg1: str | None, arg2: str | None, _db: str | None, _trigger: str | None) -> int:
        if action in _ALLOWED_ACTIONS and not (action == sqlite3.SQLITE_FUNCTION and arg2 == "load_extension"):
            return sqlite3.SQLITE_OK
        if action == sqlite3.SQLITE_PRAGMA and arg1 is not None and arg1.lower() in READ_ONLY_PRAGMAS \
                and (arg2 is None or arg1.lower() in _PRAGMAS_WITH_ARGUMENT):
            return sqlite3.SQLITE_OK
        if self.refused is None:
            what = _ACTION_NAMES.get(action, str(action))
            detail = arg2 if action == sqlite3.SQLITE_FUNCTION else arg1
            self.refused = f"{what} {detail}" if detail else what
        return sqlite3.SQLITE_DENY


def _sqlite_message(exc: sqlite3.Error, timeout: float, refused: str | None = None) -> str:
    text_ = str(exc)
    if "interrupted" in text_:
        return f"query timed out after {timeout:g}s"
    if refused is not None and ("not authorized" in text_ or "authorization denied" in text_):
        return f"the query was refused ({refused}): the sql check only reads (SELECT, read-only pragmas)"
    if "readonly" in text_ or "read-only" in text_:
        return "the query tried to write; the sql check only reads"
    return f"query failed: {text_}"


def _plain(value: Any) -> Any:
    """JSON-friendly values for facts and the stored result."""
    if isinstance(value, (datetime, date, dtime)):
        return value.isoformat()
    if isinstance(value, Decimal):
        return float(value)
    if isinstance(value, (bytes, bytearray, memoryview)):
        return base64.b64encode(bytes(value)).decode()
    return value
