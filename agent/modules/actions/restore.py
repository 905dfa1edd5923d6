"""Action: restore SQLite databases from a named (or the latest) backup archive.

Order, so a bad archive never costs the current data: verify the whole archive first
(checksums, integrity of every database copy); extract each database next to its target and
check it again; only then move the current file and its ``-wal``/``-shm`` aside
(``<db>.replaced-<stamp>``: a damaged database is evidence, never deleted) and rename the copy
into place. Contract: whatever writes the target (the bot) is stopped first; the restore
playbook stops it through supervisord, restores, starts it and checks its health.

Check mode verifies the archive (read-only) and reports what would be replaced.
"""
from __future__ import annotations

import asyncio
import os
from datetime import datetime, timezone
from pathlib import Path
from typing import Any, ClassVar

from pydantic import Field

from agent.modules import _sqlite_backup as bk
from agent.modules.base import ActionModule, ActionResult, Params, RunContext

_SIDECARS = ("-wal", "-shm", "-journal")


class RestoreActionParams(Params):
    source: str = Field(description="directory of the archives, e.g. {{ var_dir }}/backups")
    backup: str = Field("latest", description="archive name (with or without .tar.gz), or latest")
    prefix: str | None = Field(None, description="only consider archives of this prefix (for latest)")
    databases: dict[str, str] = Field(
        min_length=1, description="archive database name -> file to replace, e.g. {bot: '{{ bot.db_path }}'}"
    )
    keep_replaced: bool = Field(True, description="move the current files aside (<db>.replaced-<stamp>) "
                                                  "instead of deleting them")


class RestoreAction(ActionModule):
    """Verifies, then replaces; destructive (the play asks unless --yes)."""

    name: ClassVar[str] = "restore"
    Params: ClassVar[type[RestoreActionParams]] = RestoreActionParams
    description: ClassVar[str] = "Restore SQLite databases from a verified backup archive (current copy kept aside)"
    supports_check_mode: ClassVar[bool] = True
    destructive: ClassVar[bool] = True

    async def run(self, params: RestoreActionParams, ctx: RunContext) -> ActionResult:
        return await asyncio.to_thread(self._run, params, ctx)

    def _run(self, params: RestoreActionParams, ctx: RunContext) -> ActionResult:
        try:
            info = bk.find_backup(Path(params.source), params.backup, params.prefix)
        except bk.BackupError as exc:
            return ActionResult(failed=True, msg=str(exc))
        data: dict[str, Any] = {"backup": info.as_dict(), "name": info.name}
        check = bk.verify_archive(info.path, timeout=ctx.timeout)
        data.update(verified=check.ok, problems=check.problems)
        if not check.ok:
            return ActionResult(failed=True, data=data,
                                msg=f"backup {info.name} does not verify; nothing was replaced: "
                                    f"{'; '.join(check.problems)}")
        in_archive = {e["name"] for e in check.manifest["entries"] if e["kind"] == "database"}
        absent = sorted(set(params.databases) - in_archive)
        if absent:
            return ActionResult(failed=True, data=data,
                                msg=f"backup {info.name} has no database {', '.join(absent)} "
                                    f"(it has {', '.join(sorted(in_archive)) or 'none'})")
        targets = [{"database": n, "path": p, "exists": Path(p).exists()} for n, p in params.databases.items()]
        data["targets"] = targets
        if ctx.check_mode:
            return ActionResult(changed=True, data=data,
                                msg=f"would restore {', '.join(params.databases)} from {info.name} "
                                    f"(taken {info.taken_at:%Y-%m-%d %H:%M:%S} UTC, verified)")

        stamp = datetime.now(timezone.utc).strftime("%Y%m%dT%H%M%SZ")
        staged: list[tuple[Path, Path]] = []
        try:
            for name, target in params.databases.items():
                target_path = Path(target)
                target_path.parent.mkdir(parents=True, exist_ok=True)
                tmp = target_path.with_name(f".{target_path.name}.restoring")
                bk.extract_database(info.path, name, tmp)
                result = bk.integrity(tmp, ctx.timeout)
                if result != "ok":
                    raise bk.BackupError(f"{name} from {info.name}: integrity_check: {result}")
                staged.append((tmp, target_path))
        except (bk.BackupError, OSError) as exc:
            for tmp, _ in staged:
                tmp.unlink(missing_ok=True)
            return ActionResult(failed=True, data=data, msg=f"restore aborted, nothing was replaced: {exc}")

        moved_aside: list[str] = []
        for tmp, target_path in staged:
            for suffix in ("", *_SIDECARS):
                current = Path(f"{target_path}{suffix}")
                if not current.exists():
                    continue
                if params.keep_replaced:
                    aside = Path(f"{target_path}.replaced-{stamp}{suffix}")
                    os.replace(current, aside)
                    moved_aside.append(str(aside))
                else:
                    current.unlink()
            os.replace(tmp, target_path)
        data["moved_aside"] = moved_aside
        return ActionResult(changed=True, data=data,
                            msg=f"restored {', '.join(params.databases)} from {info.name}"
                                + (f"; previous files kept as *.replaced-{stamp}" if moved_aside else ""))
