"""Configuration drift: snapshot files and settings, record a baseline, compare against it.

Shared by the ``drift`` check (compare) and the ``drift`` action (record). A baseline is
``<dir>/<name>.json``: the sha256 of every file the patterns name (paths relative to ``root``)
and the sha256 of each selected setting's rendered value. Setting values are stored only as
digests, so a setting that holds a secret never lands on disk in clear.
"""
from __future__ import annotations

import hashlib
import json
import os
from collections.abc import Iterable, Mapping
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from pydantic import Field

from agent.modules import _sqlite_backup as bk
from agent.modules.base import Params, RunContext

FORMAT = 1


class DriftParams(Params):
    """Parameters shared by the drift check and the drift action."""

    files: list[str] = Field(
        default_factory=list, description="files, directories or globs to watch (relative to root), e.g. playbooks/*.yaml"
    )
    settings: dict[str, Any] = Field(
        default_factory=dict, description="named values to watch, e.g. {risk: '{{ bot.risk }}'} (stored as digests)"
    )
    name: str = Field("config", pattern=r"^[A-Za-z0-9_.-]+$", description="baseline name (one file per name)")
    dir: str | None = Field(None, description="where baselines live; default {{ var_dir }}/baselines")
    root: str | None = Field(None, description="directory file paths are relative to; default: the parent of var_dir")


def locations(params: DriftParams, ctx: RunContext) -> tuple[Path, Path]:
    """(baseline file, root) for ``params`` on the host of ``ctx``."""
    var_dir = ctx.host.vars.get("var_dir") or ctx.template_vars.get("var_dir")
    root = Path(params.root) if params.root else (Path(var_dir).resolve().parent if var_dir else Path.cwd())
    directory = Path(params.dir) if params.dir else (Path(var_dir) if var_dir else root / "var") / "baselines"
    return directory / f"{params.name}.json", root


def snapshot(files: Iterable[str], settings: Mapping[str, Any], root: Path) -> dict[str, Any]:
    """The current state: {'files': {relpath: sha256}, 'settings': {key: sha256}}."""
    found = {arc.removeprefix("files/"): bk.sha256_file(path) for path, arc in bk.expand_files(files, root)}
    return {"files": dict(sorted(found.items())),
            "settings": {k: _digest(v) for k, v in sorted(settings.items())}}


def _digest(value: Any) -> str:
    return hashlib.sha256(json.dumps(value, sort_keys=True, default=str).encode()).hexdigest()


def load(path: Path) -> dict[str, Any] | None:
    if not path.exists():
        return None
    try:
        doc = json.loads(path.read_bytes())
    except RecursionError:
        raise ValueError(f"{path}: damaged: nested past what JSON reads") from None
    if not isinstance(doc, dict):  # JSON, but no baseline: damaged (a torn write, a hand edit)
        raise ValueError(f"{path}: damaged: a baseline is a JSON object, this holds {type(doc).__name__}")
    if doc.get("format") != FORMAT:
        raise ValueError(f"{path}: unknown baseline format {doc.get('format')!r}")
    for part in ("files", "settings"):
        if not isinstance(doc.get(part, {}), dict):
            raise ValueError(f"{path}: damaged: {part} is a {type(doc[part]).__name__}, not a mapping")
    return doc


def save(path: Path, snap: Mapping[str, Any]) -> dict[str, Any]:
    path.parent.mkdir(parents=True, exist_ok=True)
    doc = {"format": FORMAT, "recorded_at": datetime.now(UTC).isoformat(timespec="seconds"), **snap}
    tmp = path.with_suffix(".json.tmp")
    tmp.write_text(json.dumps(doc, indent=2, sort_keys=True))
    os.replace(tmp, path)
    return doc


def compare(baseline: Mapping[str, Any], current: Mapping[str, Any]) -> dict[str, Any]:
    """What changed from ``baseline`` to ``current``: sorted lists and a total count."""
    bf, cf = baseline.get("files", {}), current.get("files", {})
    bs, cs = baseline.get("settings", {}), current.get("settings", {})
    changed = sorted(p for p in bf.keys() & cf.keys() if bf[p] != cf[p])
    added = sorted(cf.keys() - bf.keys())
    removed = sorted(bf.keys() - cf.keys())
    settings_changed = sorted(k for k in bs.keys() | cs.keys() if bs.get(k) != cs.get(k))
    return {"changed": changed, "added": added, "removed": removed, "settings_changed": settings_changed,
            "count": len(changed) + len(added) + len(removed) + len(settings_changed)}
