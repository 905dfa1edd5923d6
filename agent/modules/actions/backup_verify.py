"""Action: verify a backup archive, optionally as a restore drill into a scratch directory.

Verification reads the whole archive: every manifest member present with its sha256, and
``PRAGMA integrity_check`` == ok on every database copy. With ``drill_dir`` the databases are
also restored into that scratch directory (never over the live files) and their tables
counted, so the monthly drill proves the archive restores into something the bot can read.
Changes nothing the bot uses, so it is not destructive; in check mode the archive is still
verified (reading is not a side effect) but nothing is written to ``drill_dir``.
"""
from __future__ import annotations

import asyncio
import shutil
import sqlite3
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, ClassVar

from pydantic import Field

from agent.modules import _sqlite_backup as bk
from agent.modules.base import ActionModule, ActionResult, Params, RunContext


class BackupVerifyActionParams(Params):
    source: str = Field(description="directory of the archives, e.g. {{ var_dir }}/backups")
    backup: str = Field("latest", description="archive name (with or without .tar.gz), or latest")
    prefix: str | None = Field(None, description="only consider archives of this prefix (for latest)")
    drill_dir: str | None = Field(
        None, description="restore every database into this scratch directory (emptied first) and count its rows"
    )


class BackupVerifyAction(ActionModule):
    """Fails when the archive does not verify (or the drill cannot read a restored database)."""

    name: ClassVar[str] = "backup_verify"
    Params: ClassVar[type[BackupVerifyActionParams]] = BackupVerifyActionParams
    description: ClassVar[str] = "Verify a backup archive (checksums, integrity); optionally a restore drill"
    supports_check_mode: ClassVar[bool] = True

    async def run(self, params: BackupVerifyActionParams, ctx: RunContext) -> ActionResult:
        return await asyncio.to_thread(self._run, params, ctx)

    def _run(self, params: BackupVerifyActionParams, ctx: RunContext) -> ActionResult:
        try:
            info = bk.find_backup(Path(params.source), params.backup, params.prefix)
        except bk.BackupError as exc:
            return ActionResult(failed=True, msg=str(exc))
        check = bk.verify_archive(info.path, timeout=ctx.timeout)
        databases = [e["name"] for e in check.manifest.get("entries", []) if e.get("kind") == "database"]
        data: dict[str, Any] = {"backup": info.as_dict(), "name": info.name, "verified": check.ok,
                                "problems": check.problems, "databases": databases,
                                "age_s": round((datetime.now(UTC) - info.taken_at).total_seconds())}
        if not check.ok:
            return ActionResult(failed=True, data=data, msg=f"backup {info.name} does not verify: "
                                                            f"{'; '.join(check.problems)}")
        summary = f"backup {info.name} verified ({len(check.manifest['entries'])} member(s))"
        if params.drill_dir is None:
            return ActionResult(changed=False, data=data, msg=summary)
        if ctx.check_mode:
            return ActionResult(changed=True, data=data,
                                msg=f"{summary}; would restore {', '.join(databases)} into {params.drill_dir}")
        drill = Path(params.drill_dir)
        shutil.rmtree(drill, ignore_errors=True)
        drill.mkdir(parents=True, mode=0o700)
        rows: dict[str, dict[str, int]] = {}
        try:
            for name in databases:
                target = drill / f"{name}.db"
                bk.extract_database(info.path, name, target)
                rows[name] = _row_counts(target)
        except (bk.BackupError, sqlite3.DatabaseError, OSError) as exc:
            return ActionResult(changed=True, failed=True, data=data, msg=f"restore drill failed: {exc}")
        data["drill"] = {"dir": str(drill), "rows": rows}
        total = sum(sum(t.values()) for t in rows.values())
        return ActionResult(changed=True, data=data,
                            msg=f"{summary}; drill restored {len(rows)} database(s), {total} row(s), into {drill}")


def _row_counts(path: Path) -> dict[str, int]:
    conn = sqlite3.connect(f"file:{path}?mode=ro", uri=True)
    try:
        tables = [r[0] for r in conn.execute("SELECT name FROM sqlite_master WHERE type = 'table' "
                                             "AND name NOT LIKE 'sqlite_%' ORDER BY name")]
        return {t: conn.execute(f'SELECT count(*) FROM "{t}"').fetchone()[0] for t in tables}
    finally:
        conn.close()
