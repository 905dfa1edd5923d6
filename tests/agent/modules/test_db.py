"""db action on real SQLite files: integrity, checkpoint, analyze, vacuum, check mode."""
from __future__ import annotations

import sqlite3
from collections.abc import Iterator
from pathlib import Path

import pytest

from agent.modules.actions.db import DbAction, DbActionParams
from tests.agent.modules._sqlite_fixtures import count, damage, make_db


@pytest.fixture
def fragmented(tmp_path: Path) -> Iterator[Path]:
    """Free pages to reclaim and frames in the WAL, with the writer (the bot) still connected:
    closing the last connection would checkpoint and delete the WAL."""
    path = make_db(tmp_path / "bot.db", rows=3000)
    conn = sqlite3.connect(path)
    conn.execute("PRAGMA wal_autocheckpoint=0")
    conn.execute("DELETE FROM trades WHERE id % 2 = 0")
    conn.commit()
    conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    conn.execute("DELETE FROM trades WHERE id % 3 = 0")  # leaves frames in the WAL
    conn.commit()
    try:
        yield path
    finally:
        conn.close()


async def test_full_maintenance_reclaims_space(fragmented, make_ctx):
    wal_before = Path(f"{fragmented}-wal").stat().st_size
    assert wal_before > 0
    result = await DbAction().run(DbActionParams(path=str(fragmented)), make_ctx())
    assert not result.failed, result.msg
    assert result.changed and result.data["integrity"] == "ok"
    assert result.data["ran"] == ["analyze", "vacuum", "wal_checkpoint"]
    assert result.data["after"]["freelist_pages"] == 0 and result.data["reclaimed_bytes"] > 0
    assert count(fragmented) == 1000
    conn = sqlite3.connect(fragmented)
    assert conn.execute("SELECT count(*) FROM sqlite_master WHERE name = 'sqlite_stat1'").fetchone()[0] == 1
    conn.close()


async def test_check_mode_reports_and_changes_nothing(fragmented, make_ctx):
    size = fragmented.stat().st_size
    result = await DbAction().run(DbActionParams(path=str(fragmented)), make_ctx(check_mode=True))
    assert result.changed and not result.failed
    assert result.data["plan"] == {"integrity_check": False, "analyze": True, "vacuum": True, "wal_checkpoint": True}
    assert "would run analyze, vacuum, wal_checkpoint" in result.msg
    assert fragmented.stat().st_size == size and Path(f"{fragmented}-wal").stat().st_size > 0


async def test_nothing_to_do_is_ok_not_changed(tmp_path, make_ctx):
    path = make_db(tmp_path / "tidy.db", rows=10, wal=False)
    result = await DbAction().run(DbActionParams(path=str(path), operations=["integrity_check", "vacuum",
                                                                              "wal_checkpoint"]), make_ctx())
    assert not result.failed and not result.changed and result.data["ran"] == []


async def test_integrity_failure_fails_the_task_before_anything_runs(tmp_path, make_ctx):
    path = make_db(tmp_path / "bad.db", rows=3000, wal=False)
    damage(path)
    for check_mode in (True, False):
        result = await DbAction().run(DbActionParams(path=str(path)), make_ctx(check_mode=check_mode))
        assert result.failed and "integrity_check" in result.msg and "ran" not in result.data


async def test_missing_database(tmp_path, make_ctx):
    result = await DbAction().run(DbActionParams(path=str(tmp_path / "none.db")), make_ctx())
    assert result.failed and "does not exist" in result.msg
    assert not (tmp_path / "none.db").exists()
