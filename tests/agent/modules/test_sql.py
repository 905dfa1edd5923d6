"""sql check against real SQLite files: value, rows, read-only, timeouts, errors."""
from __future__ import annotations

import sqlite3
from pathlib import Path

import pytest

from agent.modules.checks.sql import SqlCheck, SqlCheckParams


@pytest.fixture
def trades_db(tmp_path: Path) -> Path:
    path = tmp_path / "bot.db"
    conn = sqlite3.connect(path)
    conn.execute("PRAGMA journal_mode=WAL")
    conn.execute("CREATE TABLE trades (id INTEGER PRIMARY KEY, coin TEXT, pnl REAL, opened_at TEXT)")
    conn.executemany("INSERT INTO trades (coin, pnl, opened_at) VALUES (?, ?, datetime('now', ?))",
                     [("BTC", 12.5, "-1 hours"), ("ETH", -3.0, "-3 hours"), ("BTC", 7.0, "-6 hours")])
    conn.commit()
    conn.close()
    return path


async def run(make_ctx, **params):
    return await SqlCheck().run(SqlCheckParams(**params), make_ctx())


@pytest.mark.parametrize(("query", "value", "row_count"), [
    ("SELECT count(*) FROM trades WHERE opened_at > datetime('now', '-4 hours')", 2, 1),
    ("SELECT sum(pnl) FROM trades", 16.5, 1),
    ("SELECT coin FROM trades WHERE pnl > 100", None, 0),
])
async def test_value_is_first_column_of_first_row(trades_db, make_ctx, query, value, row_count):
    result = await run(make_ctx, url=f"sqlite:///{trades_db}", query=query)
    assert result.error is None
    assert result.value == value and result.facts["value"] == value
    assert result.facts["row_count"] == row_count


async def test_rows_columns_bind_params_and_truncation(trades_db, make_ctx):
    result = await run(make_ctx, url=f"sqlite:///{trades_db}", query="SELECT coin, pnl FROM trades WHERE coin = :c "
                       "ORDER BY pnl DESC", params={"c": "BTC"}, max_rows=1)
    assert result.facts["columns"] == ["coin", "pnl"]
    assert result.facts["rows"] == [{"coin": "BTC", "pnl": 12.5}]
    assert result.facts["truncated"] is True


async def test_never_writes_and_never_creates(trades_db, tmp_path, make_ctx):
    result = await run(make_ctx, url=f"sqlite:///{trades_db}", query="DELETE FROM trades")
    assert result.error and "only reads" in result.error
    conn = sqlite3.connect(trades_db)
    assert conn.execute("SELECT count(*) FROM trades").fetchone()[0] == 3
    conn.close()
    missing = tmp_path / "nope.db"
    result = await run(make_ctx, url=f"sqlite:///{missing}", query="SELECT 1")
    assert result.error and "cannot open" in result.error
    assert not missing.exists()


async def test_bad_sql_is_an_error_not_a_traceback(trades_db, make_ctx):
    result = await run(make_ctx, url=f"sqlite:///{trades_db}", query="SELECT nope FROM trades")
    assert result.error and result.error.startswith("query failed") and "nope" in result.error


async def test_reads_while_a_writer_holds_the_wal(trades_db, make_ctx):
    writer = sqlite3.connect(trades_db)
    writer.execute("BEGIN IMMEDIATE")
    writer.execute("INSERT INTO trades (coin, pnl, opened_at) VALUES ('SOL', 1, datetime('now'))")
    try:
        result = await run(make_ctx, url=f"sqlite:///{trades_db}", query="SELECT count(*) FROM trades")
        assert result.value == 3  # the uncommitted row is invisible; the reader is not blocked
    finally:
        writer.rollback()
        writer.close()


async def test_runaway_query_is_interrupted_at_the_timeout(trades_db, make_ctx):
    query = ("WITH RECURSIVE n(x) AS (SELECT 1 UNION ALL SELECT x + 1 FROM n) SELECT count(*) FROM n")
    result = await run(make_ctx, url=f"sqlite:///{trades_db}", query=query, timeout="300ms")
    assert result.error == "query timed out after 0.3s"


def test_params_reject_a_non_url_and_hide_the_url():
    with pytest.raises(ValueError, match="SQLAlchemy URL"):
        SqlCheckParams(url="not a url", query="SELECT 1")
    params = SqlCheckParams(url="postgresql://u:s3cret@db/x", query="SELECT 1")
    assert "s3cret" not in repr(params)


@pytest.mark.parametrize(("query", "refused"), [
    ("VACUUM INTO '{dir}/copy.db'", "ATTACH"),
    ("ATTACH 'file:{dir}/created.db?mode=rwc' AS x", "ATTACH"),
    ("ATTACH '{dir}/created.db' AS x", "ATTACH"),
    ("PRAGMA user_version = 7", "PRAGMA user_version"),
    ("PRAGMA journal_mode = DELETE", "PRAGMA journal_mode"),
    ("PRAGMA writable_schema = 1", "PRAGMA writable_schema"),
    ("DELETE FROM trades", "DELETE trades"),
    ("CREATE TEMP TABLE t AS SELECT * FROM trades", "INSERT sqlite_temp_master"),
    ("BEGIN IMMEDIATE", "TRANSACTION BEGIN"),
    ("SELECT load_extension('{dir}/evil.so')", "FUNCTION load_extension"),
])
async def test_everything_but_reading_is_refused_before_it_runs(trades_db, tmp_path, make_ctx, query, refused):
    await run(make_ctx, url=f"sqlite:///{trades_db}", query="SELECT count(*) FROM trades")  # WAL: adds -shm
    before = sorted(p.name for p in tmp_path.iterdir())
    snapshot = trades_db.read_bytes()
    result = await run(make_ctx, url=f"sqlite:///{trades_db}", query=query.format(dir=tmp_path))
    assert result.error is not None and f"refused ({refused}" in result.error, result.error
    assert "the sql check only reads" in result.error
    assert sorted(p.name for p in tmp_path.iterdir()) == before  # no file created, not even a copy
    assert trades_db.read_bytes() == snapshot


@pytest.mark.parametrize("query", [
    "PRAGMA table_info(trades)",
    "PRAGMA integrity_check",
    "PRAGMA user_version",
    "WITH RECURSIVE c(x) AS (SELECT 1 UNION ALL SELECT x + 1 FROM c WHERE x < 3) SELECT count(*) FROM c",
])
async def test_reading_pragmas_and_recursive_queries_still_work(trades_db, make_ctx, query):
    result = await run(make_ctx, url=f"sqlite:///{trades_db}", query=query)
    assert result.error is None, result.error
