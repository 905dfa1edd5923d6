"""Which files are playbooks: the paths given, directories expanded, nothing skipped silently.

A directory contributes its ``*.yaml`` and ``*.yml`` files, sorted. Whatever would otherwise be
skipped without a word is reported: a file whose suffix is ``.yaml`` in another case (``.YAML``:
rename it), a dangling symbolic link, an entry that cannot be read, a directory holding no
playbook at all, a path that does not exist.
"""
from __future__ import annotations

import os
from collections.abc import Sequence
from pathlib import Path

from agent.playbook.diagnostics import Diagnostic

PLAYBOOK_SUFFIXES = (".yaml", ".yml")


def playbook_files(paths: Sequence[Path]) -> tuple[list[Path], list[Diagnostic]]:
    """Expand directories to their playbook files (sorted); report what cannot be used."""
    files: list[Path] = []
    problems: list[Diagnostic] = []
    for path in paths:
        try:
            if path.is_dir():
                found, found_problems = _directory(path)
                files += found
                problems += found_problems
            elif path.is_file():
                files.append(path)
            elif path.is_symlink():
                problems.append(_dangling(path))
            else:
                problems.append(Diagnostic(str(path), 0, 0, "no such file or directory"))
        except OSError as exc:
            problems.append(Diagnostic(str(path), 0, 0, f"cannot read it: {exc.strerror or exc}"))
    return files, problems


def is_file(path: Path) -> bool:
    """``path.is_file()``, False when the answer cannot be had (a directory that may not be
    searched raises PermissionError there)."""
    try:
        return path.is_file()
    except OSError:
        return False


def is_dir(path: Path) -> bool:
    """``path.is_dir()``, False when the answer cannot be had."""
    try:
        return path.is_dir()
    except OSError:
        return False


def sibling_playbooks(path: Path) -> list[Path]:
    """The other playbook files in the directory of ``path`` (for cross-references)."""
    found, _ = _directory(path.parent)
    return [p for p in found if p.resolve() != path.resolve()]


def _directory(path: Path) -> tuple[list[Path], list[Diagnostic]]:
    problems: list[Diagnostic] = []
    try:
        entries = sorted(path.iterdir())
    except OSError as exc:
        return [], [Diagnostic(str(path), 0, 0, f"cannot list the directory: {exc.strerror or exc}",
                               "check its permissions")]
    found: list[Path] = []
    for entry in entries:
        suffix = entry.suffix
        if suffix.lower() not in PLAYBOOK_SUFFIXES:
            continue
        try:
            if suffix not in PLAYBOOK_SUFFIXES:
                problems.append(Diagnostic(str(entry), 0, 0, f"playbook files end in .yaml or .yml (lower "
                                           f"case); this one ends in {suffix!r} and would be skipped",
                                           f"rename it to {entry.with_suffix(suffix.lower()).name}"))
            elif entry.is_symlink() and not entry.exists():
                problems.append(_dangling(entry))
            elif entry.is_file():
                found.append(entry)
        except OSError as exc:
            problems.append(Diagnostic(str(entry), 0, 0, f"cannot read it: {exc.strerror or exc}"))
    if not found and not problems:
        problems.append(Diagnostic(str(path), 0, 0, "no playbook files (*.yaml, *.yml) in this directory",
                                   "name the directory that holds the playbooks, or a playbook file"))
    return found, problems


def _dangling(path: Path) -> Diagnostic:
    try:
        target = os.readlink(path)
    except OSError:
        target = "?"
    return Diagnostic(str(path), 0, 0, f"a symbolic link to {target}, which does not exist",
                      "point the link at the playbook, or remove it")
