"""Maintenance runbooks against the running stack: every playbook previews cleanly, and a
damaged bot database is brought back by `restore` from a backup (the bot runs and reconciles)."""
from __future__ import annotations

import json
import sqlite3

import pytest

from agent.modules import _sqlite_backup as bk
from tests.support.stack import running_stack, wait_until  # noqa: F401 (fixture)

pytestmark = pytest.mark.slow
PLAYBOOKS = ("backup", "restore", "weekly", "monthly")


def _trades(path) -> int:
    conn = sqlite3.connect(f"file:{path}?mode=ro", uri=True)
    try:
        return conn.execute("SELECT count(*) FROM trades").fetchone()[0]
    finally:
        conn.close()


def _trades_so_far(path) -> int:
    """0 until the bot has created its schema (the file appears before its tables)."""
    try:
        return _trades(path) if path.exists() else 0
    except sqlite3.OperationalError:
        return 0


def test_maintenance_playbooks_check_backup_damage_restore(running_stack):
    stack = running_stack(shipped_playbooks=True)
    stack.wait_running()
    bot_db = stack.settings.path(stack.settings.bot.db)
    backups = stack.var / "backups"
    wait_until(lambda: _trades_so_far(bot_db) > 0, 90, what="the bot's first trade in its database")

    # 1. Backup for real first, so restore/weekly/monthly have an archive to preview against.
    taken = stack.agent("run-playbook", "backup")
    assert taken.returncode == 0, taken.stdout + taken.stderr
    archives = bk.list_backups(backups)
    assert len(archives) == 1 and bk.verify_archive(archives[0].path).ok
    with __import__("tarfile").open(archives[0].path) as tar:
        names = set(tar.getnames())
    assert {"databases/bot.db", "databases/agent.db", "databases/exchange.db", "files/inventory.yaml"} <= names

    # 2. Every playbook runs in check mode: exit 0, and nothing changes on disk.
    before = {p.name: p.stat().st_mtime_ns for p in backups.iterdir()}
    bot_bytes = bot_db.stat().st_size
    for name in PLAYBOOKS:
        res = stack.agent("run-playbook", name, "--check")
        assert res.returncode == 0, f"{name}:\n{res.stdout}\n{res.stderr}"
        assert "failed=0" in res.stdout, res.stdout
    assert {p.name: p.stat().st_mtime_ns for p in backups.iterdir()} == before
    assert not (stack.var / "baselines").exists() and not (stack.var / "restore-drill").exists()
    assert stack.info("bot")["statename"] == "RUNNING"
    assert bot_db.exists() and abs(bot_db.stat().st_size - bot_bytes) < 10_000_000

    # 3. Damage the bot's database while it is stopped (as a disk fault would), then restore.
    trades_in_backup = _trades_in_archive(archives[0].path, stack.var)
    stack.ctl("stop", "bot")
    with open(bot_db, "r+b") as fh:
        fh.seek(0)
        fh.write(b"\x00" * 4096)  # the header page: SQLite no longer recognises the file
    assert bk.integrity(bot_db) != "ok"
    stack.ctl("start", "bot")  # the damaged bot cannot come up properly on this file

    restored = stack.agent("run-playbook", "restore", "--yes", "-e", f"backup={archives[0].name}")
    assert restored.returncode == 0, restored.stdout + restored.stderr
    assert "restored bot from" in restored.stdout
    assert bk.integrity(bot_db) == "ok" and _trades(bot_db) >= trades_in_backup
    assert list(bot_db.parent.glob("bot.db.replaced-*"))  # the damaged copy was kept aside

    stack.wait_state("bot", "RUNNING")
    wait_until(lambda: stack.try_health().get("status") == "healthy", 60, what="the restored bot healthy")
    log = stack.log("bot", tail=400_000)
    assert log.count('"event":"reconcile') >= 1 or log.count('"event": "reconcile') >= 1, log[-2000:]


def test_weekly_and_monthly_run_for_real(running_stack):
    stack = running_stack(shipped_playbooks=True)
    stack.wait_running()
    bot_db = stack.settings.path(stack.settings.bot.db)
    wait_until(lambda: _trades_so_far(bot_db) > 0, 90, what="the bot's first trade")
    assert stack.agent("run-playbook", "backup").returncode == 0

    weekly = stack.agent("run-playbook", "weekly")
    assert weekly.returncode == 0, weekly.stdout + weekly.stderr
    baseline = json.loads((stack.var / "baselines" / "config.json").read_text())
    assert "inventory.yaml" in baseline["files"]

    (stack.root / "playbooks" / "weekly.yaml").write_text(
        (stack.root / "playbooks" / "weekly.yaml").read_text() + "\n# drifted\n")
    monthly = stack.agent("run-playbook", "monthly")
    assert monthly.returncode == 0, monthly.stdout + monthly.stderr
    assert "1 difference(s)" in monthly.stdout  # the review reports the edited playbook
    drill = stack.var / "restore-drill" / "bot.db"
    assert drill.exists() and _trades(drill) > 0
    assert stack.info("bot")["statename"] == "RUNNING"


def _trades_in_archive(archive, scratch) -> int:
    target = scratch / "count-check.db"
    bk.extract_database(archive, "bot", target)
    try:
        return _trades(target)
    finally:
        target.unlink()
