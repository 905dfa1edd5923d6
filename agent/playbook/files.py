"""How configuration files are found and read: nothing skipped silently, nothing that can hang.

Every file of the configuration (inventory, stack settings, playbooks, named templates) is read
through a :class:`ConfigReader`, and whatever makes a path unusable is a :class:`FileProblem`
(:mod:`botwarden.safe_files`) that names it and says what is wrong: no such file, a symbolic
link to nothing or one that loops, a directory, a named pipe (FIFO), a socket or a device where
a file belongs, no permission, too large. A FIFO is never opened for reading, so it never
blocks a load.

A directory of playbooks contributes its ``*.yaml`` and ``*.yml`` entries, sorted, except hidden,
editor and backup files (:func:`editor_or_hidden`, said at debug level); each entry
that is not a readable file is reported, as is a file whose suffix is ``.yaml`` in another
case (``.YAML``: rename it), a directory holding no playbook at all, a path that does not exist.

:class:`DiskReader` reads the disk and keeps the bytes of everything it read: a configuration
that loaded runs on exactly those bytes (its templates render from them) and they are what the
last good configuration snapshot stores (:mod:`agent.playbook.last_good`). :class:`FrozenReader`
serves such bytes back.
"""
from __future__ import annotations

import errno
import logging
import os
import stat
from collections.abc import Mapping, Sequence
from pathlib import Path

from agent.playbook.diagnostics import Diagnostic, warning
from botwarden.safe_files import (
    MAX_BYTES,
    NOT_A_FILE_HINT,
    FileProblem,
    file_problem,
    key,
    kind_of,
    os_problem,
    read_file,
    real_path,
)

__all__ = ["DISK", "MAX_BYTES", "PLAYBOOK_SUFFIXES", "ConfigReader", "DiskReader", "FileProblem", "FrozenReader",
           "file_problem", "is_dir", "is_file", "key", "kind_of", "os_problem", "playbook_files", "read_file",
           "real_path", "sibling_playbooks"]
PLAYBOOK_SUFFIXES = (".yaml", ".yml")
log = logging.getLogger(__name__)


def editor_or_hidden(name: str) -> bool:
    """A directory entry no one means as a playbook, skipped as Ansible skips it in a vars
    directory: a hidden file (``.x.yaml``, an Emacs lock ``.#x.yaml``, which is a symbolic
    link to nothing, a Vim swap ``.x.yaml.swp``), a backup (``x.yaml~``, ``x.yaml.bak``) or an
    Emacs auto-save (``#x.yaml#``)."""
    return name.startswith((".", "#")) or name.endswith(("~", "#", ".swp", ".swo", ".bak", ".orig", ".rej"))


class ConfigReader:
    """Where the loader reads configuration files from. Every method answers for a path; none
    raises but :meth:`read` (a :class:`FileProblem`) and :meth:`list_dir` (the same)."""

    def exists(self, path: Path) -> bool:
        """Whether there is anything at ``path`` (a dangling symbolic link counts: reading it says why)."""
        raise NotImplementedError

    def problem(self, path: Path) -> FileProblem | None:
        """Why ``path`` cannot be read as a configuration file, or None."""
        raise NotImplementedError

    def read(self, path: Path, limit: int = MAX_BYTES) -> bytes:
        raise NotImplementedError

    def is_dir(self, path: Path) -> bool:
        raise NotImplementedError

    def list_dir(self, path: Path) -> list[Path]:
        """The entries of directory ``path``, sorted."""
        raise NotImplementedError

    def version(self, path: Path) -> object:
        """Changes when the file at ``path`` changes (templates are reloaded on a change)."""
        raise NotImplementedError


class DiskReader(ConfigReader):
    """Reads the disk (:func:`read_file`) and keeps what it read, by :func:`key`."""

    def __init__(self) -> None:
        self.read_files: dict[str, bytes] = {}

    def exists(self, path: Path) -> bool:
        try:
            return os.path.lexists(path)
        except (OSError, ValueError):
            return False

    def problem(self, path: Path) -> FileProblem | None:
        return file_problem(path)

    def read(self, path: Path, limit: int = MAX_BYTES) -> bytes:
        data = read_file(path, limit)
        self.read_files[key(path)] = data
        return data

    def is_dir(self, path: Path) -> bool:
        try:
            return stat.S_ISDIR(os.stat(path).st_mode)
        except (OSError, ValueError):
            return False

    def list_dir(self, path: Path) -> list[Path]:
        try:
            return sorted(Path(path) / name for name in os.listdir(path))
        except OSError as exc:
            problem = os_problem(path, exc)
            raise FileProblem(f"cannot list the directory: {exc.strerror or exc}"
                              if exc.errno in (errno.EACCES, errno.EPERM) else problem.message,
                              "check its permissions" if exc.errno in (errno.EACCES, errno.EPERM)
                              else problem.hint) from None

    def version(self, path: Path) -> object:
        try:
            info = os.stat(path)
            return (info.st_mtime_ns, info.st_size, info.st_ino)
        except (OSError, ValueError):
            return None


class FrozenReader(ConfigReader):
    """Serves fixed file contents by :func:`key`: what a load read, or a last good snapshot.
    Paths it does not hold go to ``fallback`` (the disk), or do not exist without one."""

    def __init__(self, files: Mapping[str, bytes], *, fallback: ConfigReader | None = None) -> None:
        self.files = dict(files)
        self.fallback = fallback

    def exists(self, path: Path) -> bool:
        if key(path) in self.files:
            return True
        return self.fallback.exists(path) if self.fallback is not None else False

    def problem(self, path: Path) -> FileProblem | None:
        if key(path) in self.files:
            return None
        if self.fallback is not None:
            return self.fallback.problem(path)
        return FileProblem("not part of the last good configuration")

    def read(self, path: Path, limit: int = MAX_BYTES) -> bytes:
        data = self.files.get(key(path))
        if data is not None:
            return data
        if self.fallback is not None:
            return self.fallback.read(path, limit)
        raise FileProblem("not part of the last good configuration")

    def is_dir(self, path: Path) -> bool:
        prefix = key(path).rstrip(os.sep) + os.sep
        if any(name.startswith(prefix) for name in self.files):
            return True
        return self.fallback.is_dir(path) if self.fallback is not None else False

    def list_dir(self, path: Path) -> list[Path]:
        prefix = key(path).rstrip(os.sep) + os.sep
        names = {name[len(prefix):].split(os.sep, 1)[0] for name in self.files if name.startswith(prefix)}
        if not names and self.fallback is not None:
            return self.fallback.list_dir(path)
        return sorted(Path(path) / name for name in names)

    def version(self, path: Path) -> object:
        if key(path) in self.files:
            return "frozen"
        return self.fallback.version(path) if self.fallback is not None else None


DISK: ConfigReader = DiskReader()
"""A reader of the disk for callers that keep nothing (what it read is not looked at)."""


def playbook_files(paths: Sequence[Path], reader: ConfigReader | None = None) -> tuple[list[Path], list[Diagnostic]]:
    """Expand directories to their playbook files (sorted); report what cannot be used."""
    reader = reader or DiskReader()
    files: list[Path] = []
    problems: list[Diagnostic] = []
    for path in paths:
        if reader.is_dir(path):
            found, found_problems = _directory(path, reader)
            files += found
            problems += found_problems
            continue
        problem = reader.problem(path)
        if problem is None:
            files.append(path)
        else:
            problems.append(Diagnostic(str(path), 0, 0, problem.message, problem.hint))
    return files, problems


def is_file(path: Path) -> bool:
    """Whether ``path`` is a regular file (following symbolic links); False when the answer
    cannot be had (a loop, a directory that may not be searched)."""
    return file_problem(path) is None


def is_dir(path: Path) -> bool:
    """``path.is_dir()``, False when the answer cannot be had."""
    return DISK.is_dir(path)


def sibling_playbooks(path: Path) -> list[Path]:
    """The other playbook files in the directory of ``path`` (for cross-references)."""
    found, _ = _directory(path.parent, DISK)
    me = real_path(path)
    return [p for p in found if real_path(p) != me]


def _directory(path: Path, reader: ConfigReader) -> tuple[list[Path], list[Diagnostic]]:
    problems: list[Diagnostic] = []
    try:
        entries = reader.list_dir(path)
    except FileProblem as exc:
        return [], [Diagnostic(str(path), 0, 0, exc.message, exc.hint)]
    found: list[Path] = []
    for entry in entries:
        if editor_or_hidden(entry.name):
            log.debug("skipped %s in the playbooks directory: a hidden, editor or backup file", entry)
            continue
        suffix = entry.suffix
        if suffix.lower() not in PLAYBOOK_SUFFIXES:
            nested = _nested_playbooks(entry, reader)
            if not nested:
                log.debug("skipped %s in the playbooks directory: not a *.yaml or *.yml file", entry)
            if nested:
                problems.append(warning(Diagnostic(
                    str(entry), 0, 0, f"this subdirectory holds {nested} playbook file(s) that are not loaded: "
                    f"only the files directly in {path} are playbooks",
                    f"move them up into {path} to run them, or out of it (or rename them to end in "
                    ".disabled) to say they are kept on purpose")))
            continue
        if suffix not in PLAYBOOK_SUFFIXES:
            problems.append(Diagnostic(str(entry), 0, 0, f"playbook files end in .yaml or .yml (lower "
                                       f"case); this one ends in {suffix!r} and would be skipped",
                                       f"rename it to {entry.with_suffix(suffix.lower()).name}"))
            continue
        problem = reader.problem(entry)
        if problem is None:
            found.append(entry)
        elif reader.is_dir(entry):
            problems.append(Diagnostic(str(entry), 0, 0, "a directory named like a playbook; playbooks are "
                                       "files and this one would be skipped",
                                       "rename it so that it does not end in .yaml or .yml, or move it out"))
        else:
            problems.append(Diagnostic(str(entry), 0, 0, problem.message,
                                       problem.hint if problem.hint != NOT_A_FILE_HINT else
                                       "a playbook must be a file: replace it with one, or remove it"))
    if not found and all(p.severity != "error" for p in problems):
        problems.append(Diagnostic(str(path), 0, 0, "no playbook files (*.yaml, *.yml) in this directory",
                                   "name the directory that holds the playbooks, or a playbook file"))
    return found, problems



def _nested_playbooks(path: Path, reader: ConfigReader, depth: int = 3) -> int:
    """How many playbook-named files lie in the subdirectory ``path`` (and its own, ``depth``
    levels down): files an operator may expect to run, which are not read. 0 when ``path`` is
    not a directory or cannot be listed."""
    if depth <= 0 or not reader.is_dir(path):
        return 0
    try:
        entries = reader.list_dir(path)
    except FileProblem:
        return 0
    count = 0
    for entry in entries:
        if editor_or_hidden(entry.name):
            continue
        if entry.suffix.lower() in PLAYBOOK_SUFFIXES and not reader.is_dir(entry):
            count += 1
        else:
            count += _nested_playbooks(entry, reader, depth - 1)
    return count
