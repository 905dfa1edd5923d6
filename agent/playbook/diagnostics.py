"""Diagnostics: one problem found while loading configuration, with where it is.

A :class:`Diagnostic` renders the way Ansible and compilers do::

    playbooks/health.yaml:12:5: error: unknown key 'expct'
      expct: "status_code == 200"
      ^
      hint: did you mean 'expect'?

Messages never contain rendered template values (they may carry secrets from ``env``); the
source line shown is the raw YAML line as written in the file.
"""
from __future__ import annotations

import dataclasses
import difflib
import os
import re
from collections.abc import Iterable
from dataclasses import dataclass


@dataclass(frozen=True)
class Diagnostic:
    """A load-time error or warning. ``line`` and ``column`` are 1-based; 0 means "the whole file"."""

    file: str
    line: int
    column: int
    message: str
    hint: str | None = None
    source_line: str | None = None
    severity: str = "error"
    """``error`` (the configuration is refused) or ``warning`` (it loads, but something in it is
    ignored or cannot do what it says: a playbook in a subdirectory, a play with no hosts, a route
    no alert can reach, an ``expect`` that never fails, a cron schedule that reads differently)."""

    def __str__(self) -> str:
        where = f"{self.file}:{self.line}:{self.column}" if self.line else self.file
        out = [f"{where}: {self.severity}: {self.message}"]
        if self.source_line is not None and self.line:
            out.append(f"  {printable(self.source_line).rstrip()}")
            out.append("  " + " " * max(self.column - 1, 0) + "^")
        if self.hint:
            out.append(f"  hint: {self.hint}")
        return "\n".join(out)


_UNPRINTABLE = re.compile("[\x00-\x08\x0b-\x1f\x7f-\x9f\u2028\u2029]")


def printable(text: str) -> str:
    """``text`` with control characters shown as U+FFFD, one for one (the caret stays aligned):
    a pasted escape sequence must not drive the operator's terminal."""
    return _UNPRINTABLE.sub("\ufffd", text)


def suggest(word: str, candidates: Iterable[str]) -> str | None:
    """``did you mean 'x'?`` for the nearest candidate, or ``None`` when nothing is close."""
    matches = difflib.get_close_matches(str(word), sorted(set(candidates)), n=1, cutoff=0.6)
    return f"did you mean {matches[0]!r}?" if matches else None


def valid_keys_hint(word: str, candidates: Iterable[str]) -> str:
    """The nearest key if one is close, else the list of valid keys."""
    cands = sorted(set(candidates))
    return suggest(word, cands) or f"valid keys: {', '.join(cands)}"


def warning(diagnostic: Diagnostic) -> Diagnostic:
    """``diagnostic`` as a warning."""
    return dataclasses.replace(diagnostic, severity="warning")


def order(diagnostic: Diagnostic) -> tuple[str, int, int]:
    """Sort key of diagnostics: by file (the same file named by a relative and an absolute path
    sorts as one), line and column."""
    try:
        where = os.path.realpath(diagnostic.file) if diagnostic.file else ""
    except (OSError, ValueError):
        where = diagnostic.file
    return (where, diagnostic.line, diagnostic.column)
