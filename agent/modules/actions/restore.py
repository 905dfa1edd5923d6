"""Action: restore SQLite databases and configuration files from a named (or the latest) backup.

Order, so a bad archive never costs the current data: verify the whole archive first
(checksums, integrity of every database copy); extract each database and each chosen file next
to its target and check it again (integrity for databases, sha256 against the manifest for
files); only then move the current file (and a database's ``-wal``/``-shm``) aside
(``<path>.replaced-<stamp>``: a damaged or wrongly edited file is evidence, never deleted) and
rename the copy into place. Contract: whatever writes a database target (the bot) is stopped
first; the restore playbook stops it through supervisord, restores, starts it again only if it
was running, and checks its health. A program reads a restored configuration file when it
(re)starts (the agent reloads its own playbooks and inventory by itself).

A restore never resumes trading: the bot's halts live in its halt file (the host's
``bot.halt_path``), outside every database, so restoring an older database keeps them; the
result lists them (``halts_in_force``). The halt file itself is never restored (a ``files``
entry naming it is refused): a halt ends only by an explicit resume.

Configuration files (seeds 000 "Configuration restore", 004 ``restore_backup --type config``):
``files`` names what to bring back as the backup stored it, relative to the backup's root
(``settings.yaml``, ``playbooks/bot-health.yaml``; a directory such as ``playbooks`` restores
every archived file under it). They are written under ``root`` (default: the parent of
``var_dir``, as the backup action reads them). A file whose current content already equals the
archived one is left alone (not changed); a restored file keeps the permission bits of the file
it replaces (a private secrets file stays private), else those recorded in the archive.

Check mode verifies the archive (read-only) and reports what would be replaced.
"""
from __future__ import annotations

import asyncio
import hashlib
import os
import zlib
from datetime import UTC, datetime
from pathlib import Path, PurePosixPath
from typing import Any, ClassVar

from pydantic import Field, model_validator

from agent.core.values import ParamProblem
from agent.modules import _sqlite_backup as bk
from agent.modules.base import ActionModule, ActionResult, Params, RunContext
from botwarden.halts import HaltFile

_SIDECARS = ("-wal", "-shm", "-journal")
_FILES_PREFIX = "files/"
_OUTSIDE_ROOT = "abs/"  # how the backup stores a file outside its root: files/abs/<absolute path>


class RestoreActionParams(Params):
    source: str = Field(description="directory of the archives, e.g. {{ var_dir }}/backups")
    backup: str = Field("latest", description="archive name (with or without .tar.gz), or latest")
    prefix: str | None = Field(None, description="only consider archives of this prefix (for latest)")
    databases: dict[str, str] = Field(
        default_factory=dict,
        description="archive database name -> file to replace, e.g. {bot: '{{ bot.db_path }}'}",
    )
    files: list[str] = Field(
        default_factory=list,
        description="configuration files to restore as the backup stored them, relative to its root "
                    "(settings.yaml, playbooks/bot-health.yaml; a directory restores every file under it)",
    )
    root: str | None = Field(
        None, description="directory the files are restored under; default: the parent of var_dir (as backup)"
    )
    keep_replaced: bool = Field(True, description="move the current files aside (<path>.replaced-<stamp>) "
                                                  "instead of deleting them")

    @model_validator(mode="after")
    def _something_to_restore(self) -> RestoreActionParams:
        if not self.databases and not self.files:
            raise ValueError("give databases or files (or both) to restore")
        for i, name in enumerate(self.files):
            parts = PurePosixPath(name).parts
            if not name.strip() or ".." in parts or name.startswith("/"):
                raise ParamProblem(f"file {name!r}: give a path relative to the backup's root, without '..'", "files", i)
        return self


class RestoreAction(ActionModule):
    """Verifies, then replaces; destructive (the play asks unless --yes)."""

    name: ClassVar[str] = "restore"
    Params: ClassVar[type[RestoreActionParams]] = RestoreActionParams
    description: ClassVar[str] = ("Restore SQLite databases and configuration files from a verified backup archive "
                                  "(current copies kept aside)")
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
        entries = check.manifest["entries"]
        in_archive = {e["name"] for e in entries if e["kind"] == "database"}
        absent = sorted(set(params.databases) - in_archive)
        if absent:
            return ActionResult(failed=True, data=data,
                                msg=f"backup {info.name} has no database {', '.join(absent)} "
                                    f"(it has {', '.join(sorted(in_archive)) or 'none'})")
        root = Path(params.root) if params.root else _default_root(ctx)
        try:
            chosen = _chosen_files(entries, params.files, root, info.name)
        except bk.BackupError as exc:
            return ActionResult(failed=True, data=data, msg=str(exc))
        halt_path = _halt_path(ctx)
        if halt_path is not None and any(target.resolve() == halt_path for _rel, target, _entry in chosen):
            return ActionResult(failed=True, data=data,
                                msg=f"refusing to restore the halt file {halt_path}: a restore never ends a halt "
                                    "(`agent resume` does)")
        targets = [{"database": n, "path": p, "exists": Path(p).exists()} for n, p in params.databases.items()]
        file_plan = [{"file": rel, "path": str(target), "exists": target.exists(),
                      "unchanged": target.is_file() and bk.sha256_file(target) == entry["sha256"]}
                     for rel, target, entry in chosen]
        data["targets"] = targets
        data["files"] = file_plan
        to_write = [c for c, plan in zip(chosen, file_plan, strict=True) if not plan["unchanged"]]
        if not params.databases and not to_write:
            return ActionResult(changed=False, data=data,
                                msg=f"{len(chosen)} file(s) already as in {info.name}; nothing to restore")
        what = _describe(list(params.databases), [c[0] for c in to_write])
        if ctx.check_mode:
            return ActionResult(changed=True, data=data,
                                msg=f"would restore {what} from {info.name} "
                                    f"(taken {info.taken_at:%Y-%m-%d %H:%M:%S} UTC, verified)")

        stamp = datetime.now(UTC).strftime("%Y%m%dT%H%M%SZ")
        staged: list[tuple[Path, Path, tuple[str, ...], int | None]] = []  # tmp, target, sidecars, mode
        try:
            for name, target in params.databases.items():
                target_path = Path(target)
                target_path.parent.mkdir(parents=True, exist_ok=True)
                tmp = target_path.with_name(f".{target_path.name}.restoring")
                staged.append((tmp, target_path, _SIDECARS, None))
                bk.extract_database(info.path, name, tmp)
                result = bk.integrity(tmp, ctx.timeout)
                if result != "ok":
                    raise bk.BackupError(f"{name} from {info.name}: integrity_check: {result}")
            for _rel, target_path, entry in to_write:
                target_path.parent.mkdir(parents=True, exist_ok=True)
                tmp = target_path.with_name(f".{target_path.name}.restoring")
                staged.append((tmp, target_path, (), None))
                archived_mode = _extract_file(info.path, entry, tmp)
                file_mode = target_path.stat().st_mode & 0o7777 if target_path.is_file() else archived_mode
                staged[-1] = (tmp, target_path, (), file_mode)
        except (bk.BackupError, OSError) as exc:
            for tmp, *_ in staged:
                tmp.unlink(missing_ok=True)
            return ActionResult(failed=True, data=data, msg=f"restore aborted, nothing was replaced: {exc}")

        moved_aside: list[str] = []
        for tmp, target_path, sidecars, mode in staged:
            if mode is not None:
                os.chmod(tmp, mode)
            for suffix in ("", *sidecars):
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
        halts = [h.as_dict() for h in HaltFile(halt_path).active()] if halt_path is not None else []
        data["halts_in_force"] = halts
        return ActionResult(changed=True, data=data,
                            msg=f"restored {what} from {info.name}"
                                + (f"; previous files kept as *.replaced-{stamp}" if moved_aside else "")
                                + (f"; {len(halts)} halt(s) still in force (a restore never resumes trading)"
                                   if halts else ""))


def _chosen_files(entries: list[dict[str, Any]], wanted: list[str], root: Path,
                  backup: str) -> list[tuple[str, Path, dict[str, Any]]]:
    """(name as archived, target path, manifest entry) of every archived file ``wanted`` names.

    Raises :class:`bk.BackupError` when a name matches nothing (the message lists what the
    archive has) or an archived name would escape its target directory.
    """
    files = {e["arcname"][len(_FILES_PREFIX):]: e for e in entries
             if e["kind"] == "file" and e["arcname"].startswith(_FILES_PREFIX)}
    chosen: dict[str, tuple[str, Path, dict[str, Any]]] = {}
    for want in wanted:
        key = PurePosixPath(want).as_posix().rstrip("/")
        hits = [rel for rel in files if rel == key or rel.startswith(key + "/")]
        if not hits:
            listed = ", ".join(sorted(files)[:8]) + (" ..." if len(files) > 8 else "")
            raise bk.BackupError(f"backup {backup} has no file {want!r} (it has {listed or 'no files'})")
        for rel in sorted(hits):
            chosen[rel] = (rel, _target_of(rel, root, backup), files[rel])
    return list(chosen.values())


def _target_of(rel: str, root: Path, backup: str) -> Path:
    """Where an archived file goes; never outside ``root`` unless archived as an absolute path."""
    path = PurePosixPath(rel)
    if ".." in path.parts or path.is_absolute():
        raise bk.BackupError(f"backup {backup}: refusing the archived name {rel!r}")
    if rel.startswith(_OUTSIDE_ROOT):
        return Path("/" + rel[len(_OUTSIDE_ROOT):])
    return root / Path(*path.parts)


def _extract_file(archive: Path, entry: dict[str, Any], dest: Path) -> int:
    """Write the member of ``entry`` to ``dest``, check its sha256; return its archived mode."""
    import tarfile  # here, not at the top: see agent.modules._sqlite_backup

    try:
        with tarfile.open(archive, "r:gz") as tar:
            member = tar.getmember(entry["arcname"])
            fobj = tar.extractfile(member)
            if fobj is None:
                raise bk.BackupError(f"{entry['arcname']} is not a file in {archive.name}")
            digest = hashlib.sha256()
            with open(dest, "wb") as out:
                for chunk in iter(lambda: fobj.read(1 << 20), b""):
                    digest.update(chunk)
                    out.write(chunk)
                out.flush()
                os.fsync(out.fileno())
    except (tarfile.TarError, EOFError, zlib.error, KeyError) as exc:
        raise bk.BackupError(f"cannot read {entry['arcname']} from {archive.name}: {exc}") from None
    if digest.hexdigest() != entry["sha256"]:
        raise bk.BackupError(f"{entry['arcname']} in {archive.name}: sha256 mismatch")
    return member.mode & 0o7777


def _describe(databases: list[str], files: list[str]) -> str:
    parts = list(databases)
    if files:
        parts.append(f"{len(files)} file(s) ({', '.join(files[:5])}{' ...' if len(files) > 5 else ''})")
    return ", ".join(parts)


def _halt_path(ctx: RunContext) -> Path | None:
    bot = ctx.host.vars.get("bot")
    path = bot.get("halt_path") if isinstance(bot, dict) else None
    return Path(path).resolve() if path else None


def _default_root(ctx: RunContext) -> Path:
    """The parent of ``var_dir``: the root the backup action stores files relative to."""
    var_dir = ctx.host.vars.get("var_dir") or ctx.template_vars.get("var_dir")
    return Path(var_dir).resolve().parent if var_dir else Path.cwd()
