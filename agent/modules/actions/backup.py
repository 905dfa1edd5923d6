"""Action: back up SQLite databases and files into a verified, timestamped tar.gz; prune old ones.

Databases are copied with SQLite's online backup API, so the bot keeps running. The archive
carries a manifest (sha256 per member); ``verify`` re-reads it after writing (checksums and
``PRAGMA integrity_check`` on every database copy) and a failed verification fails the task
and removes the bad archive. ``retention`` then deletes older archives of the same prefix
beyond keep_last / keep_daily / keep_weekly / keep_monthly (grandfather-father-son).

Check mode lists what would be archived (with sizes) and which archives retention would
delete, and writes nothing.
"""
from __future__ import annotations

import asyncio
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, ClassVar

from pydantic import Field, field_validator

from agent.modules import _sqlite_backup as bk
from agent.modules.base import ActionModule, ActionResult, Params, RunContext


class Retention(Params):
    keep_last: int = Field(3, ge=1, le=10_000, description="always keep this many newest archives")
    keep_daily: int = Field(7, ge=0, le=10_000, description="keep the newest archive of each of the last N days that have one")
    keep_weekly: int = Field(4, ge=0, le=10_000, description="keep the newest archive of each of the last N ISO weeks")
    keep_monthly: int = Field(0, ge=0, le=10_000, description="keep the newest archive of each of the last N months")


class BackupActionParams(Params):
    dest: str = Field(description="directory of the archives, e.g. {{ var_dir }}/backups (created 0700)")
    databases: dict[str, str] = Field(
        default_factory=dict, description="name -> SQLite file, e.g. {bot: '{{ bot.db_path }}'}"
    )
    files: list[str] = Field(
        default_factory=list, description="files, directories or globs to include (settings, inventory, playbooks)"
    )
    root: str | None = Field(
        None, description="files are stored relative to this directory; default: the parent of var_dir"
    )
    prefix: str = Field("botwarden", pattern=r"^[A-Za-z0-9_.]+$",
                        description="archive name prefix: <prefix>-<UTC stamp>.tar.gz")
    skip_missing: bool = Field(False, description="a missing database or file is skipped instead of failing")
    verify: bool = Field(True, description="re-read the archive after writing: checksums and integrity_check")
    retention: Retention | None = Field(None, description="prune older archives of this prefix after a good backup")

    @field_validator("databases")
    @classmethod
    def _names(cls, dbs: dict[str, str]) -> dict[str, str]:
        for name in dbs:
            if not name.replace("_", "").replace("-", "").isalnum():
                raise ValueError(f"database name {name!r}: use letters, digits, - and _")
        return dbs


class BackupAction(ActionModule):
    """Decides the sources and the retention plan first; writes only outside check mode."""

    name: ClassVar[str] = "backup"
    Params: ClassVar[type[BackupActionParams]] = BackupActionParams
    description: ClassVar[str] = "Online SQLite backup + files into a verified tar.gz with a manifest; retention"
    supports_check_mode: ClassVar[bool] = True

    async def run(self, params: BackupActionParams, ctx: RunContext) -> ActionResult:
        return await asyncio.to_thread(self._run, params, ctx)

    def _run(self, params: BackupActionParams, ctx: RunContext) -> ActionResult:
        dest = Path(params.dest)
        root = Path(params.root) if params.root else _default_root(ctx)
        databases: dict[str, Path] = {}
        missing: list[str] = []
        for name, path in params.databases.items():
            if Path(path).is_file():
                databases[name] = Path(path)
            else:
                missing.append(path)
        files = bk.expand_files(params.files, root)
        missing += [p for p in params.files if not bk.expand_files([p], root)]
        if missing and not params.skip_missing:
            return ActionResult(failed=True, msg=f"missing: {', '.join(missing)}", data={"missing": missing})
        sources: list[dict[str, Any]] = [
            {"kind": "database", "name": n, "path": str(p), "size": p.stat().st_size}
            for n, p in databases.items()
        ]
        sources += [{"kind": "file", "path": str(p), "arcname": a, "size": p.stat().st_size} for p, a in files]
        data: dict[str, Any] = {"dest": str(dest), "sources": sources, "missing": missing}
        if not sources:
            return ActionResult(failed=True, msg="nothing to back up", data=data)

        existing = bk.list_backups(dest, params.prefix)
        if ctx.check_mode:
            planned = bk.BackupInfo("(new)", dest / "(new)", datetime.now(UTC), 0)
            _, doomed = self._plan([*existing, planned], params)
            data["would_delete"] = [b.name for b in doomed]
            total = sum(s["size"] for s in sources)
            return ActionResult(changed=True, data=data,
                                msg=f"would archive {len(databases)} database(s) and {len(files)} file(s) "
                                    f"({total} bytes) into {dest}; retention would delete {len(doomed)}")

        try:
            info, manifest = bk.create_archive(dest, params.prefix, databases, files,
                                               now=datetime.now(UTC), timeout=ctx.timeout)
        except (bk.BackupError, OSError) as exc:
            return ActionResult(failed=True, msg=f"backup failed: {exc}", data=data)
        data.update(backup=info.as_dict(), name=info.name, path=str(info.path), manifest=manifest)
        bad_copies = [e["name"] for e in manifest["entries"] if e["kind"] == "database" and e["integrity"] != "ok"]
        if params.verify:
            check = bk.verify_archive(info.path, timeout=ctx.timeout)
            data["verified"] = check.ok
            data["problems"] = check.problems
            if not check.ok:
                info.path.unlink(missing_ok=True)  # a backup that does not verify must never be restored
                return ActionResult(changed=True, failed=True, data=data,
                                    msg=f"backup {info.name} failed verification (removed): {'; '.join(check.problems)}")
        if bad_copies:
            # The source itself is corrupt: keep the archive (it may still be the best copy) but say so.
            return ActionResult(changed=True, failed=True, data=data,
                                msg=f"backup {info.name} written, but integrity_check failed for {', '.join(bad_copies)}")
        _, doomed = self._plan(bk.list_backups(dest, params.prefix), params)
        for b in doomed:
            b.path.unlink(missing_ok=True)
        data["deleted"] = [b.name for b in doomed]
        return ActionResult(changed=True, data=data,
                            msg=f"backup {info.name} ({info.size} bytes, {len(manifest['entries'])} member(s))"
                                f"{', verified' if params.verify else ''}; retention deleted {len(doomed)}")

    @staticmethod
    def _plan(backups: list[bk.BackupInfo], params: BackupActionParams) -> tuple[list[bk.BackupInfo],
                                                                                list[bk.BackupInfo]]:
        if params.retention is None:
            return backups, []
        r = params.retention
        return bk.retention_plan(backups, keep_last=r.keep_last, keep_daily=r.keep_daily,
                                 keep_weekly=r.keep_weekly, keep_monthly=r.keep_monthly)


def _default_root(ctx: RunContext) -> Path:
    var_dir = ctx.host.vars.get("var_dir") or ctx.template_vars.get("var_dir")
    return Path(var_dir).resolve().parent if var_dir else Path.cwd()
