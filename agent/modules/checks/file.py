"""Check: a file's existence, age, size, permissions and owner.

Used for backup freshness (the newest archive matching a glob is not older than a day) and for
secret hygiene (``var/secrets.env`` is 0600, ``var/`` is 0700). A missing file is a fact
(``exists: false``), not an error, so ``expect: "exists and age_s < 90000"`` reads naturally;
a path that cannot be inspected (permission denied on the parent) is an error (UNKNOWN).
"""
from __future__ import annotations

import asyncio
import glob
import grp
import os
import pwd
import stat
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, ClassVar

from pydantic import Field

from agent.modules.base import CheckModule, CheckResult, Params, RunContext

_GLOB_CHARS = frozenset("*?[")


class FileCheckParams(Params):
    path: str = Field(
        description="the file or directory; with glob characters (*, ?, [) the newest match by mtime, "
        "e.g. {{ var_dir }}/backups/*.tar.gz"
    )
    follow_symlinks: bool = Field(True, description="report on the symlink's target rather than the link itself")


class FileCheck(CheckModule):
    """``stat`` of one path (or of the newest match of a glob), as facts."""

    name: ClassVar[str] = "file"
    Params: ClassVar[type[FileCheckParams]] = FileCheckParams
    description: ClassVar[str] = "A file's existence, age (mtime), size, permissions and owner"
    default_value: ClassVar[str | None] = "age_s"
    facts: ClassVar[dict[str, str]] = {
        "exists": "true when the path (or some match of the glob) exists",
        "path": "the path inspected (the newest match for a glob)",
        "matches": "how many paths the glob matched (1 or 0 for a plain path)",
        "age_s": "seconds since the last modification (None when missing)",
        "mtime": "last modification, ISO 8601 UTC (None when missing)",
        "size": "size in bytes (None when missing)",
        "is_dir": "true for a directory",
        "mode": "permission bits as an octal string, e.g. '0600' (None when missing)",
        "group_or_other_access": "true when group or others have any permission (mode & 0o077)",
        "world_readable": "true when others may read",
        "owner": "owning user name (the uid as text when unknown)",
        "group": "owning group name (the gid as text when unknown)",
    }

    async def run(self, params: FileCheckParams, ctx: RunContext) -> CheckResult:
        try:
            facts = await asyncio.wait_for(ctx.run_blocking(inspect_path, params.path, params.follow_symlinks),
                                           timeout=ctx.timeout)
        except TimeoutError:
            return CheckResult.failed(f"stat of {params.path} timed out after {ctx.timeout:g}s")
        except OSError as exc:
            return CheckResult.failed(f"cannot inspect {params.path}: {exc.strerror or exc}")
        if not facts["exists"]:
            return CheckResult(facts=facts, value=None, summary=f"{params.path} does not exist")
        return CheckResult(
            facts=facts,
            value=facts["age_s"],
            summary=f"{facts['path']}: {facts['size']} bytes, mode {facts['mode']}, age {facts['age_s']:.0f}s",
        )


def inspect_path(path: str, follow_symlinks: bool = True) -> dict[str, Any]:
    """The facts of ``path`` (or of the newest match when it is a glob). Raises ``OSError``
    only when an existing path cannot be inspected."""
    if _GLOB_CHARS & set(path):
        matches = [m for m in glob.glob(path) if os.path.lexists(m)]
        if not matches:
            return _missing(path, 0)
        chosen = max(matches, key=lambda m: _mtime(m, follow_symlinks))
        return _stat_facts(chosen, len(matches), follow_symlinks)
    if not os.path.lexists(path):
        return _missing(path, 0)
    return _stat_facts(path, 1, follow_symlinks)


def _mtime(path: str, follow_symlinks: bool) -> float:
    try:
        return os.stat(path, follow_symlinks=follow_symlinks).st_mtime
    except OSError:
        return float("-inf")  # vanished between glob and stat: never the newest


def _missing(path: str, matches: int) -> dict[str, Any]:
    return {"exists": False, "path": path, "matches": matches, "age_s": None, "mtime": None, "size": None,
            "is_dir": False, "mode": None, "group_or_other_access": False, "world_readable": False,
            "owner": None, "group": None}


def _stat_facts(path: str, matches: int, follow_symlinks: bool) -> dict[str, Any]:
    try:
        st = os.stat(path, follow_symlinks=follow_symlinks)
    except FileNotFoundError:
        return _missing(path, matches)  # a dangling symlink, or removed since the glob
    perm = stat.S_IMODE(st.st_mode)
    return {
        "exists": True,
        "path": str(Path(path)),
        "matches": matches,
        "age_s": round(max(0.0, time.time() - st.st_mtime), 3),
        "mtime": datetime.fromtimestamp(st.st_mtime, UTC).isoformat(timespec="seconds"),
        "size": st.st_size,
        "is_dir": stat.S_ISDIR(st.st_mode),
        "mode": f"{perm:04o}",
        "group_or_other_access": bool(perm & 0o077),
        "world_readable": bool(perm & stat.S_IROTH),
        "owner": _user(st.st_uid),
        "group": _group(st.st_gid),
    }


def _user(uid: int) -> str:
    try:
        return pwd.getpwuid(uid).pw_name
    except KeyError:
        return str(uid)


def _group(gid: int) -> str:
    try:
        return grp.getgrgid(gid).gr_name
    except KeyError:
        return str(gid)
