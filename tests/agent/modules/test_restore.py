"""restore action on real SQLite files: verify first, keep the damaged copy, replace atomically."""
from __future__ import annotations

import sqlite3
from datetime import UTC, datetime
from pathlib import Path

import pytest

from agent.modules import _sqlite_backup as bk
from agent.modules.actions.restore import RestoreAction, RestoreActionParams
from tests.agent.modules._sqlite_fixtures import count, damage, make_db


@pytest.fixture
def world(tmp_path: Path) -> dict[str, Path]:
    var = tmp_path / "var"
    var.mkdir()
    bot = make_db(var / "bot.db", rows=2000)
    backups = var / "backups"
    first, _ = bk.create_archive(backups, "botwarden", {"bot": bot}, [], now=datetime(2025, 1, 1, 2, tzinfo=UTC),
                                 timeout=10)
    make_db(bot, rows=10)  # more trades after the first backup
    latest, _ = bk.create_archive(backups, "botwarden", {"bot": bot}, [], now=datetime.now(UTC), timeout=10)
    return {"var": var, "bot": bot, "backups": backups, "first": first.path, "latest": latest.path}


def params(w, **kw) -> RestoreActionParams:
    return RestoreActionParams(**{"source": str(w["backups"]), "databases": {"bot": str(w["bot"])}, **kw})


def test_restore_is_destructive():
    assert RestoreAction.destructive is True


async def test_latest_backup_replaces_a_damaged_database_and_keeps_it_aside(world, make_ctx):
    damage(world["bot"])
    assert bk.integrity(world["bot"]) != "ok"
    damaged_bytes = world["bot"].read_bytes()
    result = await RestoreAction().run(params(world), make_ctx())
    assert not result.failed, result.msg
    assert result.changed and result.data["name"] == world["latest"].name.removesuffix(".tar.gz")
    assert bk.integrity(world["bot"]) == "ok" and count(world["bot"]) == 2010
    aside = [Path(p) for p in result.data["moved_aside"]]
    assert aside and aside[0].name.startswith("bot.db.replaced-") and aside[0].read_bytes() == damaged_bytes
    assert not list(world["var"].glob(".bot.db.restoring"))


async def test_named_backup(world, make_ctx):
    result = await RestoreAction().run(params(world, backup=world["first"].name), make_ctx())
    assert not result.failed, result.msg
    assert count(world["bot"]) == 2000


async def test_wal_sidecars_of_the_old_database_are_moved_too(world, make_ctx):
    conn = sqlite3.connect(world["bot"])
    conn.execute("PRAGMA wal_autocheckpoint=0")
    conn.execute("INSERT INTO trades (coin, pnl, note) VALUES ('X', 0, 'in the wal')")
    conn.commit()
    assert Path(f"{world['bot']}-wal").exists()
    conn.close()
    Path(f"{world['bot']}-wal").write_bytes(b"stale wal that must not be replayed onto the restored file")
    result = await RestoreAction().run(params(world), make_ctx())
    assert not result.failed, result.msg
    assert not Path(f"{world['bot']}-wal").exists()
    assert any(p.endswith("-wal") for p in result.data["moved_aside"])
    assert count(world["bot"]) == 2010


async def test_check_mode_verifies_and_touches_nothing(world, make_ctx):
    before = world["bot"].read_bytes()
    result = await RestoreAction().run(params(world), make_ctx(check_mode=True))
    assert result.changed and not result.failed and result.data["verified"] is True
    assert "would restore bot from" in result.msg
    assert world["bot"].read_bytes() == before and not list(world["var"].glob("*.replaced-*"))


async def test_a_bad_archive_replaces_nothing(world, make_ctx):
    data = bytearray(world["latest"].read_bytes())
    data[len(data) // 2] ^= 0xFF
    world["latest"].write_bytes(bytes(data))
    before = world["bot"].read_bytes()
    result = await RestoreAction().run(params(world), make_ctx())
    assert result.failed and "does not verify; nothing was replaced" in result.msg
    assert world["bot"].read_bytes() == before


@pytest.mark.parametrize(("kw", "message"), [
    ({"backup": "botwarden-19990101T000000Z"}, "no backup named"),
    ({"databases": {"exchange": "/tmp/x.db"}}, "has no database exchange"),
])
async def test_wrong_names_fail_clearly(world, make_ctx, kw, message):
    result = await RestoreAction().run(params(world, **kw), make_ctx())
    assert result.failed and message in result.msg


async def test_no_backups_at_all(tmp_path, make_ctx):
    result = await RestoreAction().run(RestoreActionParams(source=str(tmp_path), databases={"bot": "x"}), make_ctx())
    assert result.failed and "no backup in" in result.msg
