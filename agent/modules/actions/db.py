"""Action: SQLite maintenance: integrity_check, wal_checkpoint, analyze, vacuum.

What would change is decided first: ``vacuum`` only when there are free pages to reclaim,
``wal_checkpoint`` only when the WAL holds frames, ``analyze`` always changes the statistics,
``integrity_check`` never changes anything and fails the task unless SQLite answers "ok" (it
is read-only, so it also runs in check mode: a ``--check`` run still finds corruption).

Operations run in the order given, on a connection that waits for the bot's writes (busy
timeout) instead of failing at the first lock.
"""
from __future__ import annotations

import asyncio
import sqlite3
from collections.abc import Sequence
from pathlib import Path
from typing import Any, ClassVar, Literal
from urllib.parse import quote

from pydantic import Field

from agent.modules import _sqlite_backup as bk
from agent.modules.base import ActionModule, ActionResult, Params, RunContext

Operation = Literal["integrity_check", "wal_checkpoint", "analyze", "vacuum"]


def _default_operations() -> list[Operation]:
    return ["integrity_check", "analyze", "vacuum", "wal_checkpoint"]


class DbActionParams(Params):
    path: str = Field(description="the SQLite file, e.g. {{ bot.db_path }}")
    operations: list[Operation] = Field(
        default_factory=_default_operations, min_length=1,
        description="what to run, in order (a WAL database shrinks on disk only at a checkpoint after vacuum)",
    )
    checkpoint_mode: Literal["PASSIVE", "FULL", "RESTART", "TRUNCATE"] = Field(
        "TRUNCATE", description="wal_checkpoint mode (TRUNCATE also shrinks the -wal file to zero)"
    )


class DbAction(ActionModule):
    """Reports sizes before and after; changed when an operation rewrote something."""

    name: ClassVar[str] = "db"
    Params: ClassVar[type[DbActionParams]] = DbActionParams
    description: ClassVar[str] = "SQLite maintenance: integrity_check (fails unless ok), wal_checkpoint, analyze, vacuum"
    supports_check_mode: ClassVar[bool] = True

    async def run(self, params: DbActionParams, ctx: RunContext) -> ActionResult:
        return await asyncio.to_thread(self._run, params, ctx)

    def _run(self, params: DbActionParams, ctx: RunContext) -> ActionResult:
        path = Path(params.path)
        if not path.is_file():
            return ActionResult(failed=True, msg=f"database {path} does not exist", data={"path": str(path)})
        try:
            before = _sizes(path, ctx.timeout)
        except sqlite3.DatabaseError as exc:
            return ActionResult(failed=True, msg=f"cannot open {path}: {exc}", data={"path": str(path)})
        plan = _plan(params.operations, before)
        data: dict[str, Any] = {"path": str(path), "before": before, "plan": plan}
        integrity = None
        if "integrity_check" in params.operations:
            integrity = bk.integrity(path, ctx.timeout)
            data["integrity"] = integrity
        failed = integrity not in (None, "ok")
        to_run = [op for op in params.operations if op != "integrity_check" and plan[op]]
        if failed:
            return ActionResult(failed=True, data=data, msg=f"integrity_check of {path.name}: {integrity}")
        if ctx.check_mode:
            summary = ", ".join(to_run) or "nothing"
            return ActionResult(changed=bool(to_run), data=data,
                                msg=f"{path.name}: {before['size']} bytes, {before['freelist_pages']} free page(s), "
                                    f"wal {before['wal_size']} bytes; would run {summary}")
        try:
            conn = sqlite3.connect(path, timeout=ctx.timeout, isolation_level=None)
            try:
                for op in to_run:
                    conn.execute(_SQL[op].format(mode=params.checkpoint_mode)).fetchall()
            finally:
                conn.close()
        except sqlite3.DatabaseError as exc:
            return ActionResult(changed=bool(to_run), failed=True, data=data, msg=f"{path.name}: {exc}")
        after = _sizes(path, ctx.timeout)
        data.update(after=after, ran=to_run, reclaimed_bytes=before["size"] - after["size"])
        ok_text = "integrity ok; " if integrity == "ok" else ""
        return ActionResult(changed=bool(to_run), data=data,
                            msg=f"{path.name}: {ok_text}ran {', '.join(to_run) or 'nothing'}; "
                                f"{before['size']} -> {after['size']} bytes")


_SQL = {"wal_checkpoint": "PRAGMA wal_checkpoint({mode})", "analyze": "ANALYZE", "vacuum": "VACUUM"}


def _plan(operations: Sequence[str], before: dict[str, Any]) -> dict[str, bool]:
    """Which operations would change something, in order: a checkpoint after a write in WAL
    mode has frames to copy even when the WAL was empty before."""
    plan: dict[str, bool] = {}
    wal_dirty = before["wal_size"] > 0
    for op in operations:
        if op == "vacuum":
            plan[op] = before["freelist_pages"] > 0
        elif op == "wal_checkpoint":
            plan[op] = wal_dirty and before["journal_mode"] == "wal"
        else:
            plan[op] = op == "analyze"
        if plan[op] and op in ("vacuum", "analyze"):
            wal_dirty = True
    return plan


def _sizes(path: Path, timeout: float) -> dict[str, Any]:
    conn = sqlite3.connect(f"file:{quote(str(path))}?mode=ro", uri=True, timeout=timeout)
    try:
        page_size = conn.execute("PRAGMA page_size").fetchone()[0]
        page_count = conn.execute("PRAGMA page_count").fetchone()[0]
        freelist = conn.execute("PRAGMA freelist_count").fetchone()[0]
        mode = conn.execute("PRAGMA journal_mode").fetchone()[0]
    finally:
        conn.close()
    wal = Path(f"{path}-wal")
    return {"size": path.stat().st_size, "page_size": page_size, "page_count": page_count,
            "freelist_pages": freelist, "journal_mode": mode, "wal_size": wal.stat().st_size if wal.exists() else 0}
