"""Backup archives of SQLite databases and files: create, verify, find, extract, prune.

Shared by the ``backup`` and ``restore`` actions. An archive is ``<prefix>-<UTC stamp>.tar.gz``
holding ``manifest.json`` first, then ``databases/<name>.db`` (copied with SQLite's online
backup API, so a live writer is never blocked for long and the copy is consistent) and
``files/<path relative to root>``. The manifest records the sha256 and size of every member.

Contracts:
* an archive appears under its final name only once complete (written as a hidden partial
  file, then renamed), so a crash mid-backup never leaves something that looks like a backup;
* :func:`verify_archive` reads the whole archive: every manifest entry present with its sha256,
  and ``PRAGMA integrity_check`` == ok on every database copy;
* nothing here trusts member names from an archive: members are read by the names the
  manifest gives and written to paths the caller chooses (no path traversal).
"""
from __future__ import annotations

import hashlib
import json
import os
import re
import socket
import sqlite3
import tempfile
import time
import zlib
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any
from urllib.parse import quote

# tarfile is imported by the functions that read or write an archive: the resident agent loads
# this module at start (the drift check hashes files with it) and touches an archive only when a
# backup, verify or restore runs.
if TYPE_CHECKING:
    import tarfile

SUFFIX = ".tar.gz"
MANIFEST = "manifest.json"
FORMAT = 1
_STAMP = "%Y%m%dT%H%M%SZ"
_NAME = re.compile(r"^(?P<prefix>.+?)-(?P<stamp>\d{8}T\d{6}Z)(?:-(?P<seq>\d+))?\.tar\.gz$")


class BackupError(Exception):
    """An expected failure (missing source, unreadable archive); the message says what."""


@dataclass(frozen=True)
class BackupInfo:
    name: str  # file name without .tar.gz
    path: Path
    taken_at: datetime
    size: int

    def as_dict(self) -> dict[str, Any]:
        return {"name": self.name, "path": str(self.path), "taken_at": self.taken_at.isoformat(timespec="seconds"),
                "size": self.size}


@dataclass
class Verification:
    ok: bool
    problems: list[str] = field(default_factory=list)
    manifest: dict[str, Any] = field(default_factory=dict)


# -- naming and listing ------------------------------------------------------------------------
def list_backups(directory: Path, prefix: str | None = None) -> list[BackupInfo]:
    """Complete archives in ``directory`` (optionally of one prefix), oldest first."""
    if not directory.is_dir():
        return []
    out = []
    for p in directory.iterdir():
        m = _NAME.match(p.name)
        if not m or not p.is_file() or (prefix is not None and m.group("prefix") != prefix):
            continue
        taken = datetime.strptime(m.group("stamp"), _STAMP).replace(tzinfo=UTC)
        out.append(BackupInfo(p.name[: -len(SUFFIX)], p, taken, p.stat().st_size))
    return sorted(out, key=lambda b: (b.taken_at, int(_NAME.match(b.path.name).group("seq") or 0)))  # type: ignore[union-attr]


def find_backup(directory: Path, name: str | None, prefix: str | None = None) -> BackupInfo:
    """The archive called ``name`` (with or without .tar.gz), or the newest for None/'latest'."""
    backups = list_backups(directory, prefix)
    if not backups:
        raise BackupError(f"no backup in {directory}")
    if name in (None, "", "latest"):
        return backups[-1]
    wanted = name[: -len(SUFFIX)] if name.endswith(SUFFIX) else name  # type: ignore[union-attr]
    for b in backups:
        if b.name == wanted:
            return b
    raise BackupError(f"no backup named {name!r} in {directory} (newest: {backups[-1].name})")


def new_name(directory: Path, prefix: str, now: datetime) -> str:
    base = f"{prefix}-{now.astimezone(UTC).strftime(_STAMP)}"
    name, seq = base, 0
    while (directory / f"{name}{SUFFIX}").exists():
        seq += 1
        name = f"{base}-{seq}"
    return name


# -- SQLite ------------------------------------------------------------------------------------
def online_copy(source: Path, dest: Path, timeout: float) -> None:
    """Copy a live database with the online backup API; the copy is in rollback-journal mode
    (one self-contained file). Raises :class:`BackupError`."""
    if not source.is_file():
        raise BackupError(f"database {source} does not exist")
    deadline = time.monotonic() + timeout

    def progress(_status: int, _remaining: int, _total: int) -> None:
        if time.monotonic() > deadline:
            raise BackupError(f"backup of {source} did not finish within {timeout:g}s")

    try:
        src = sqlite3.connect(f"file:{quote(str(source))}?mode=ro", uri=True, timeout=timeout)
        try:
            dst = sqlite3.connect(dest)
            try:
                src.backup(dst, pages=1024, progress=progress)
                dst.execute("PRAGMA journal_mode=DELETE")
            finally:
                dst.close()
        finally:
            src.close()
    except sqlite3.DatabaseError as exc:
        raise BackupError(f"cannot back up {source}: {exc}") from None


def integrity(path: Path, timeout: float = 30.0) -> str:
    """``PRAGMA integrity_check`` of ``path``: 'ok', or the problems it found (first 5 lines)."""
    try:
        conn = sqlite3.connect(f"file:{quote(str(path))}?mode=ro", uri=True, timeout=timeout)
        try:
            rows = conn.execute("PRAGMA integrity_check(5)").fetchall()
        finally:
            conn.close()
    except sqlite3.DatabaseError as exc:
        return f"unreadable: {exc}"
    lines = [str(r[0]) for r in rows]
    return "ok" if lines == ["ok"] else "; ".join(lines)


def sha256_file(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as fh:
        for chunk in iter(lambda: fh.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


# -- sources -----------------------------------------------------------------------------------
def expand_files(patterns: Iterable[str], root: Path) -> list[tuple[Path, str]]:
    """(path, arcname) for each regular file named by ``patterns`` (paths, globs, directories)."""
    import glob as _glob

    out: dict[str, tuple[Path, str]] = {}
    for pattern in patterns:
        full = pattern if os.path.isabs(pattern) else str(root / pattern)
        matches = sorted(_glob.glob(full, recursive=True)) if any(c in pattern for c in "*?[") else [full]
        for m in matches:
            p = Path(m)
            candidates = sorted(q for q in p.rglob("*") if q.is_file()) if p.is_dir() else [p]
            for q in candidates:
                if q.is_file():
                    out[str(q.resolve())] = (q.resolve(), "files/" + _relative(q.resolve(), root))
    return list(out.values())


def _relative(path: Path, root: Path) -> str:
    try:
        return path.relative_to(root.resolve()).as_posix()
    except ValueError:
        return "abs/" + path.as_posix().lstrip("/")


# -- create ------------------------------------------------------------------------------------
def create_archive(directory: Path, prefix: str, databases: Mapping[str, Path], files: list[tuple[Path, str]],
                   *, now: datetime, timeout: float) -> tuple[BackupInfo, dict[str, Any]]:
    """Write a complete archive (see module docstring); returns it and its manifest."""
    import tarfile

    directory.mkdir(parents=True, exist_ok=True)
    os.chmod(directory, 0o700)  # the archive holds the trading history
    name = new_name(directory, prefix, now)
    entries: list[dict[str, Any]] = []
    with tempfile.TemporaryDirectory(prefix=".staging-", dir=directory) as staging:
        members: list[tuple[Path, str]] = []
        for db_name, source in databases.items():
            copy = Path(staging) / f"{db_name}.db"
            online_copy(source, copy, timeout)
            entries.append({"kind": "database", "name": db_name, "source": str(source),
                            "arcname": f"databases/{db_name}.db", "sha256": sha256_file(copy),
                            "size": copy.stat().st_size, "integrity": integrity(copy)})
            members.append((copy, f"databases/{db_name}.db"))
        for path, arcname in files:
            entries.append({"kind": "file", "source": str(path), "arcname": arcname, "sha256": sha256_file(path),
                            "size": path.stat().st_size})
            members.append((path, arcname))
        manifest = {"format": FORMAT, "name": name, "created_at": now.isoformat(timespec="seconds"),
                    "host": socket.gethostname(), "entries": entries}
        manifest_path = Path(staging) / MANIFEST
        manifest_path.write_text(json.dumps(manifest, indent=2, sort_keys=True))
        partial = directory / f".{name}{SUFFIX}.partial"
        with tarfile.open(partial, "w:gz") as tar:
            tar.add(manifest_path, arcname=MANIFEST)
            for path, arcname in members:
                tar.add(path, arcname=arcname, recursive=False)
        os.chmod(partial, 0o600)
        with open(partial, "rb") as fh:
            os.fsync(fh.fileno())
        final = directory / f"{name}{SUFFIX}"
        os.replace(partial, final)
    _fsync_dir(directory)
    return BackupInfo(name, final, now, final.stat().st_size), manifest


def _fsync_dir(directory: Path) -> None:
    fd = os.open(directory, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


# -- verify and extract ------------------------------------------------------------------------
def read_manifest(tar: tarfile.TarFile) -> dict[str, Any]:
    member = tar.extractfile(MANIFEST)
    if member is None:
        raise BackupError("the archive has no manifest.json")
    manifest = json.loads(member.read())
    if manifest.get("format") != FORMAT:
        raise BackupError(f"unknown manifest format {manifest.get('format')!r}")
    return manifest


def verify_archive(path: Path, *, timeout: float = 60.0) -> Verification:
    """Checksums of every member and integrity of every database copy (see module docstring)."""
    import tarfile

    problems: list[str] = []
    manifest: dict[str, Any] = {}
    try:
        with tarfile.open(path, "r:gz") as tar, tempfile.TemporaryDirectory(prefix="bw-verify-") as work:
            manifest = read_manifest(tar)
            for entry in manifest.get("entries", []):
                arcname = entry["arcname"]
                try:
                    fobj = tar.extractfile(arcname)
                except KeyError:
                    fobj = None
                if fobj is None:
                    problems.append(f"{arcname}: missing from the archive")
                    continue
                if entry["kind"] == "database":
                    copy = Path(work) / "check.db"
                    digest = _write_hashed(fobj, copy)
                    result = integrity(copy, timeout) if digest == entry["sha256"] else "skipped"
                    if result not in ("ok", "skipped"):
                        problems.append(f"{arcname}: integrity_check: {result}")
                    copy.unlink()
                else:
                    digest = _hash_stream(fobj)
                if digest != entry["sha256"]:
                    problems.append(f"{arcname}: sha256 mismatch")
    except (tarfile.TarError, EOFError, zlib.error, OSError, ValueError, KeyError) as exc:
        problems.append(f"archive unreadable: {exc}")
    except BackupError as exc:
        problems.append(str(exc))
    return Verification(ok=not problems, problems=problems, manifest=manifest)


def extract_database(path: Path, db_name: str, dest: Path) -> dict[str, Any]:
    """Write database ``db_name`` of archive ``path`` to ``dest``; checks its sha256.
    Returns the manifest entry. Raises :class:`BackupError`."""
    import tarfile

    try:
        with tarfile.open(path, "r:gz") as tar:
            manifest = read_manifest(tar)
            entry = next((e for e in manifest["entries"] if e["kind"] == "database" and e["name"] == db_name), None)
            if entry is None:
                known = [e["name"] for e in manifest["entries"] if e["kind"] == "database"]
                raise BackupError(f"backup {path.name} has no database {db_name!r} (it has {', '.join(known) or 'none'})")
            fobj = tar.extractfile(entry["arcname"])
            if fobj is None:
                raise BackupError(f"{entry['arcname']} is not a file in {path.name}")
            if _write_hashed(fobj, dest) != entry["sha256"]:
                raise BackupError(f"{entry['arcname']} in {path.name}: sha256 mismatch")
            return entry
    except (tarfile.TarError, EOFError, zlib.error, KeyError) as exc:
        raise BackupError(f"cannot read {path.name}: {exc}") from None


def database_names(path: Path) -> list[str]:
    import tarfile

    with tarfile.open(path, "r:gz") as tar:
        return [e["name"] for e in read_manifest(tar)["entries"] if e["kind"] == "database"]


def _hash_stream(fobj: Any) -> str:
    h = hashlib.sha256()
    for chunk in iter(lambda: fobj.read(1 << 20), b""):
        h.update(chunk)
    return h.hexdigest()


def _write_hashed(fobj: Any, dest: Path) -> str:
    h = hashlib.sha256()
    with open(dest, "wb") as out:
        for chunk in iter(lambda: fobj.read(1 << 20), b""):
            h.update(chunk)
            out.write(chunk)
        out.flush()
        os.fsync(out.fileno())
    return h.hexdigest()


# -- retention ---------------------------------------------------------------------------------
def retention_plan(backups: list[BackupInfo], *, keep_last: int, keep_daily: int, keep_weekly: int,
                   keep_monthly: int) -> tuple[list[BackupInfo], list[BackupInfo]]:
    """Grandfather-father-son: keep the newest ``keep_last``, plus the newest backup of each of
    the last ``keep_daily`` days, ``keep_weekly`` ISO weeks and ``keep_monthly`` months that have
    one. Returns (kept, deleted), both oldest first."""
    newest_first = sorted(backups, key=lambda b: b.taken_at, reverse=True)
    keep: set[Path] = {b.path for b in newest_first[:keep_last]}
    for count, period in ((keep_daily, lambda d: d.date()), (keep_weekly, lambda d: d.isocalendar()[:2]),
                          (keep_monthly, lambda d: (d.year, d.month))):
        seen: list[Any] = []
        for b in newest_first:
            key = period(b.taken_at)
            if key in seen:
                continue
            if len(seen) >= count:
                break
            seen.append(key)
            keep.add(b.path)
    kept = [b for b in backups if b.path in keep]
    deleted = [b for b in backups if b.path not in keep]
    return kept, deleted
