"""The last good configuration: the files of the last configuration that loaded, kept under ``var/``.

After every successful start or reload the resident agent writes the bytes its configuration
was loaded from (inventory, settings, playbooks, the templates it validated: ``Config.files``)
to ``var/last-good-config.json``, atomically (a temporary file, fsync, rename), private (0600).
When the files on disk do not load, the agent, ``agent run-playbook`` and the web page can load
this snapshot instead: :func:`load_snapshot` runs the same validation over the same paths, so
messages, relative paths and settings roots are the ones the operator knows, and the
configuration renders the snapshot's templates.

A snapshot belongs to one inventory and set of playbook paths (a checkout); one written for
another is never used.

``var/`` never holds a secret (backups copy it, docs/security.md): a file that holds a value
the configuration's redactor knows (a literal parameter marked secret, such as a ``command``
``env`` value or an ``http`` header) is kept as its SHA-256 only, and the snapshot restores it
only while the file on disk still has that checksum.
"""
from __future__ import annotations

import base64
import hashlib
import json
import os
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from agent.playbook.files import MAX_BYTES, ConfigReader, FileProblem, FrozenReader, key, read_file
from botwarden.files import write_durably

SNAPSHOT_NAME = "last-good-config.json"
FORMAT_VERSION = 1
_LIMIT = 64 * MAX_BYTES  # a snapshot holds at most a few dozen files of at most 1 MiB


@dataclass(frozen=True)
class Snapshot:
    """A last good configuration as stored (see the module docstring)."""

    path: Path
    saved_at: datetime
    inventory: str
    playbook_paths: tuple[str, ...]
    playbook_files: tuple[str, ...]
    templates_dir: str | None
    files: Mapping[str, bytes]
    checksums: Mapping[str, str]
    """Files kept as their SHA-256 only (they hold a secret): read from disk while unchanged."""

    def matches(self, inventory: Path, playbook_paths: Sequence[Path]) -> bool:
        """Whether this snapshot was written for ``inventory`` and ``playbook_paths``."""
        return self.inventory == key(inventory) and sorted(self.playbook_paths) == sorted(key(p) for p in playbook_paths)

    @property
    def when(self) -> str:
        """When it was saved, for messages (UTC)."""
        return self.saved_at.astimezone(UTC).strftime("%Y-%m-%d %H:%M:%S UTC")

    def reader(self) -> FrozenReader:
        """Serves the snapshot's files at their original paths (from the disk only the files
        kept as a checksum, while they are unchanged)."""
        return FrozenReader(self.files, fallback=_Unchanged(self.checksums))


def snapshot_path(var_dir: Path) -> Path:
    return Path(var_dir) / SNAPSHOT_NAME


def save_snapshot(var_dir: Path, *, files: Mapping[str, bytes], inventory: Path, playbook_paths: Sequence[Path],
                  playbook_files: Sequence[str], templates_dir: Path | None, now: datetime | None = None,
                  redact: Callable[[str], str] | None = None) -> Path:
    """Write the snapshot of a configuration that loaded; raises ``OSError`` when it cannot.
    A file in which ``redact`` changes anything is kept as its checksum only."""
    var_dir = Path(var_dir)
    var_dir.mkdir(mode=0o700, parents=True, exist_ok=True)
    record: dict[str, Any] = {
        "version": FORMAT_VERSION,
        "saved_at": (now or datetime.now(UTC)).isoformat(),
        "inventory": key(inventory),
        "playbook_paths": [key(p) for p in playbook_paths],
        "playbook_files": list(playbook_files),
        "templates_dir": key(templates_dir) if templates_dir is not None else None,
        "files": {name: _encode(data, redact) for name, data in sorted(files.items())},
    }
    target = snapshot_path(var_dir)
    payload = json.dumps(record, indent=1).encode("utf-8")
    write_durably(target, payload)
    return target


def read_snapshot(path: Path) -> Snapshot | None:
    """The snapshot at ``path``; None when there is none; raises :class:`FileProblem` when it
    cannot be used (unreadable, damaged, another format)."""
    if not os.path.lexists(path):
        return None
    raw = read_file(path, _LIMIT)
    try:
        record = json.loads(raw.decode("utf-8"))
        if not isinstance(record, dict) or record.get("version") != FORMAT_VERSION:
            raise FileProblem(f"not a last good configuration of format {FORMAT_VERSION}")
        saved_at = datetime.fromisoformat(record["saved_at"])
        entries = dict(record["files"])
        checksums = {str(name): str(value["sha256"]) for name, value in entries.items()
                     if isinstance(value, dict) and "sha256" in value}
        files = {str(name): _decode(value) for name, value in entries.items() if name not in checksums}
        return Snapshot(path=Path(path), saved_at=saved_at, inventory=str(record["inventory"]),
                        playbook_paths=tuple(str(p) for p in record["playbook_paths"]),
                        playbook_files=tuple(str(p) for p in record["playbook_files"]),
                        templates_dir=record.get("templates_dir"), files=files, checksums=checksums)
    except FileProblem:
        raise
    except (ValueError, KeyError, TypeError, AttributeError, RecursionError) as exc:  # [[[[... too: a crash loop
        raise FileProblem(f"damaged ({type(exc).__name__}: {str(exc)[:200]})",
                          "it is rewritten after the next configuration that loads; delete it to get rid of it") \
            from None


def find_snapshot(var_dirs: Sequence[Path], inventory: Path, playbook_paths: Sequence[Path]
                  ) -> tuple[Snapshot | None, list[str]]:
    """The first snapshot in ``var_dirs`` written for this configuration, and why others could
    not be used (for the log)."""
    problems: list[str] = []
    seen: set[str] = set()
    for var_dir in var_dirs:
        path = snapshot_path(var_dir)
        if key(path) in seen:
            continue
        seen.add(key(path))
        try:
            snap = read_snapshot(path)
        except FileProblem as exc:
            problems.append(f"{path}: {exc.message}")
            continue
        if snap is not None and snap.matches(inventory, playbook_paths):
            return snap, problems
        if snap is not None:
            problems.append(f"{path}: written for {snap.inventory}, not this configuration")
    return None, problems


class _Unchanged(ConfigReader):
    """The files of a snapshot kept as a checksum: read from disk while they still match it."""

    def __init__(self, checksums: Mapping[str, str]) -> None:
        self.checksums = dict(checksums)

    def exists(self, path: Path) -> bool:
        return key(path) in self.checksums

    def problem(self, path: Path) -> FileProblem | None:
        try:
            self.read(path)
        except FileProblem as exc:
            return exc
        return None

    def read(self, path: Path, limit: int = MAX_BYTES) -> bytes:
        wanted = self.checksums.get(key(path))
        if wanted is None:
            raise FileProblem("not part of the last good configuration")
        data = read_file(path, limit)
        if hashlib.sha256(data).hexdigest() != wanted:
            raise FileProblem("changed since the last good configuration, which keeps only its checksum (the "
                              "file holds a secret, and var/ never does)", "fix the file: `agent validate`")
        return data

    def is_dir(self, path: Path) -> bool:
        return False

    def list_dir(self, path: Path) -> list[Path]:
        return []

    def version(self, path: Path) -> object:
        return "frozen"


def _encode(data: bytes, redact: Callable[[str], str] | None) -> dict[str, str]:
    text = data.decode("utf-8", errors="replace")
    if redact is not None and redact(text) != text:  # holds a secret: var/ never does
        return {"sha256": hashlib.sha256(data).hexdigest()}
    try:
        return {"text": data.decode("utf-8")}
    except UnicodeDecodeError:
        return {"base64": base64.b64encode(data).decode("ascii")}


def _decode(value: Any) -> bytes:
    if isinstance(value, dict) and isinstance(value.get("text"), str):
        return str(value["text"]).encode("utf-8")
    if isinstance(value, dict) and isinstance(value.get("base64"), str):
        return base64.b64decode(value["base64"], validate=True)
    raise ValueError("a file entry is neither text nor base64")
