"""backup action on real SQLite files: online copy of a live database, manifest, verify, retention."""
from __future__ import annotations

import io
import json
import sqlite3
import tarfile
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from agent.modules import _sqlite_backup as bk
from agent.modules.actions.backup import BackupAction, BackupActionParams
from tests.agent.modules._sqlite_fixtures import count, damage, make_db


@pytest.fixture
def world(tmp_path: Path) -> Path:
    (tmp_path / "var").mkdir()
    make_db(tmp_path / "var" / "bot.db")
    make_db(tmp_path / "var" / "agent.db", rows=5)
    (tmp_path / "settings.yaml").write_text("bot: {port: 1}\n")
    (tmp_path / "playbooks").mkdir()
    (tmp_path / "playbooks" / "a.yaml").write_text("version: 1\n")
    return tmp_path


def params(world: Path, **kw) -> BackupActionParams:
    base = dict(dest=str(world / "var" / "backups"), root=str(world),
                databases={"bot": str(world / "var" / "bot.db"), "agent": str(world / "var" / "agent.db")},
                files=["settings.yaml", "playbooks"])
    return BackupActionParams(**{**base, **kw})


async def test_backup_of_a_live_database_is_complete_and_verified(world, make_ctx):
    writer = sqlite3.connect(world / "var" / "bot.db")  # the bot keeps its connection open
    writer.execute("INSERT INTO trades (coin, pnl, note) VALUES ('ETH', 1, 'live')")
    writer.commit()  # committed into the WAL, not yet checkpointed into the main file
    try:
        result = await BackupAction().run(params(world), make_ctx())
    finally:
        writer.close()
    assert not result.failed, result.msg
    assert result.changed and result.data["verified"] is True
    archive = Path(result.data["path"])
    assert archive.name.startswith("botwarden-") and archive.name.endswith(".tar.gz")
    assert oct(archive.stat().st_mode & 0o777) == "0o600" and oct(archive.parent.stat().st_mode & 0o777) == "0o700"
    with tarfile.open(archive) as tar:
        names = tar.getnames()
        manifest = json.loads(tar.extractfile("manifest.json").read())
    assert names[0] == "manifest.json"
    assert set(names) == {"manifest.json", "databases/bot.db", "databases/agent.db", "files/settings.yaml",
                          "files/playbooks/a.yaml"}
    entries = {e["arcname"]: e for e in manifest["entries"]}
    assert entries["databases/bot.db"]["integrity"] == "ok"
    assert entries["files/settings.yaml"]["sha256"] == bk.sha256_file(world / "settings.yaml")
    restored = world / "copy.db"
    bk.extract_database(archive, "bot", restored)
    assert count(restored) == 51  # the row still in the WAL is in the backup


async def test_check_mode_lists_sources_and_writes_nothing(world, make_ctx):
    result = await BackupAction().run(params(world), make_ctx(check_mode=True))
    assert result.changed and not result.failed
    assert {s["path"] for s in result.data["sources"]} >= {str(world / "var" / "bot.db"), str(world / "settings.yaml")}
    assert "would archive 2 database(s) and 2 file(s)" in result.msg
    assert not (world / "var" / "backups").exists()


async def test_missing_sources_fail_unless_skipped(world, make_ctx):
    p = params(world, files=["settings.yaml", "nope.yaml"])
    result = await BackupAction().run(p, make_ctx())
    assert result.failed and "nope.yaml" in result.msg
    assert not (world / "var" / "backups").exists()
    result = await BackupAction().run(params(world, files=["nope.yaml"], skip_missing=True), make_ctx())
    assert not result.failed and result.data["missing"] == ["nope.yaml"]


async def test_a_corrupt_source_is_reported(world, make_ctx):
    make_db(world / "var" / "big.db", rows=2000, wal=False)
    damage(world / "var" / "big.db")
    result = await BackupAction().run(params(world, databases={"big": str(world / "var" / "big.db")}), make_ctx())
    assert result.failed
    assert "integrity" in result.msg or "cannot back up" in result.msg


def test_verify_finds_tampering(world, tmp_path):
    info, _ = bk.create_archive(world / "var" / "backups", "botwarden", {"bot": world / "var" / "bot.db"},
                                bk.expand_files(["settings.yaml"], world), now=datetime.now(UTC), timeout=10)
    assert bk.verify_archive(info.path).ok
    # Rewrite the archive with a changed settings file but the old manifest.
    forged = tmp_path / "forged.tar.gz"
    with tarfile.open(info.path) as src, tarfile.open(forged, "w:gz") as dst:
        for m in src.getmembers():
            data = src.extractfile(m).read()
            if m.name == "files/settings.yaml":
                data = b"bot: {port: 666}\n"
                m.size = len(data)

            dst.addfile(m, io.BytesIO(data))
    check = bk.verify_archive(forged)
    assert not check.ok and check.problems == ["files/settings.yaml: sha256 mismatch"]
    truncated = tmp_path / "truncated.tar.gz"
    truncated.write_bytes(info.path.read_bytes()[:200])
    assert not bk.verify_archive(truncated).ok


def _infos(stamps: list[datetime]) -> list[bk.BackupInfo]:
    return [bk.BackupInfo(f"b-{s:%Y%m%dT%H%M%SZ}", Path(f"/x/b-{s:%Y%m%dT%H%M%SZ}.tar.gz"), s, 1) for s in stamps]


@pytest.mark.parametrize(("keep", "expected_kept"), [
    # 30 daily backups at 02:00 from 2025-01-01 (a Wednesday) to 2025-01-30, plus two extra on the last day
    ({"keep_last": 1, "keep_daily": 0, "keep_weekly": 0, "keep_monthly": 0}, 1),
    ({"keep_last": 3, "keep_daily": 0, "keep_weekly": 0, "keep_monthly": 0}, 3),
    ({"keep_last": 1, "keep_daily": 7, "keep_weekly": 0, "keep_monthly": 0}, 7),
    ({"keep_last": 3, "keep_daily": 7, "keep_weekly": 0, "keep_monthly": 0}, 9),
    # weeks 5 and 4 are covered by the dailies (Jan 24-30); weeks 3 and 2 add Jan 19 and Jan 12
    ({"keep_last": 1, "keep_daily": 7, "keep_weekly": 4, "keep_monthly": 0}, 9),
    ({"keep_last": 1, "keep_daily": 0, "keep_weekly": 0, "keep_monthly": 2}, 1),
])
def test_retention_plan(keep, expected_kept):
    start = datetime(2025, 1, 1, 2, tzinfo=UTC)
    stamps = [start + timedelta(days=i) for i in range(30)]
    stamps += [stamps[-1] + timedelta(hours=1), stamps[-1] + timedelta(hours=2)]
    backups = _infos(stamps)
    kept, deleted = bk.retention_plan(backups, **keep)
    assert len(kept) == expected_kept and len(kept) + len(deleted) == len(backups)
    assert backups[-1] in kept  # the newest always survives


async def test_retention_runs_after_a_good_backup_and_is_previewed(world, make_ctx):
    dest = world / "var" / "backups"
    dest.mkdir(mode=0o700)
    old = [datetime(2024, 1, d, 2, tzinfo=UTC) for d in (1, 2, 3, 4)]
    for s in old:
        (dest / f"botwarden-{s:%Y%m%dT%H%M%SZ}.tar.gz").write_bytes(b"old")
    (dest / "other-20240101T020000Z.tar.gz").write_bytes(b"other prefix: never touched")
    retention = {"keep_last": 2, "keep_daily": 0, "keep_weekly": 0}
    preview = await BackupAction().run(params(world, retention=retention), make_ctx(check_mode=True))
    assert preview.data["would_delete"] == ["botwarden-20240101T020000Z", "botwarden-20240102T020000Z",
                                            "botwarden-20240103T020000Z"]
    assert len(list(dest.glob("botwarden-*"))) == 4
    result = await BackupAction().run(params(world, retention=retention), make_ctx())
    assert not result.failed, result.msg
    assert sorted(p.name for p in dest.glob("*.tar.gz")) == sorted(
        ["botwarden-20240104T020000Z.tar.gz", Path(result.data["path"]).name, "other-20240101T020000Z.tar.gz"])


def test_names_are_unique_within_a_second(world):
    now = datetime.now(UTC)
    dest = world / "var" / "backups"
    a, _ = bk.create_archive(dest, "botwarden", {"bot": world / "var" / "bot.db"}, [], now=now, timeout=10)
    b, _ = bk.create_archive(dest, "botwarden", {"bot": world / "var" / "bot.db"}, [], now=now, timeout=10)
    assert a.name != b.name and bk.find_backup(dest, "latest").name == b.name
    assert bk.find_backup(dest, a.name + ".tar.gz").path == a.path
    with pytest.raises(bk.BackupError, match="no backup named"):
        bk.find_backup(dest, "botwarden-19990101T000000Z")
