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
    shown_from: int = 0
    """Where in the file's line ``source_line`` starts (0-based): a line longer than
    :data:`MAX_SHOWN_LINE` is kept only around the column."""
    cut_short: bool = False
    """``source_line`` stops before the end of the file's line."""
    ran_as_read: bool = False
    """An error of a rule judging what runs, but not as the operator plainly meant (:func:`ran_as_read`):
    it refuses the files on disk; a last good configuration (which loaded before the rule) loads with
    it as a warning."""

    def __post_init__(self) -> None:
        # Everything a diagnostic holds may be shown (stderr, the agent's log, the [CONFIG] page)
        # and may quote the file: whoever made it, it holds no secret the finder sees in its
        # source line, its message or its hint, and no line or message of unbounded length.
        from agent.playbook.literal_secrets import (  # reads this module
            MAX_SCANNED_LINE,
            line_secrets,
            mask_shown,
        )

        source, shown_from = self.source_line, self.shown_from
        if source is not None and len(source) > MAX_SHOWN_LINE:
            at = max(self.column - 1 - shown_from, 0)
            lo = max(at - MAX_SCANNED_LINE, 0)
            window = mask_shown(source[lo:at + MAX_SCANNED_LINE]) or ""
            start = max(at - lo - MAX_SHOWN_LINE // 2, 0)
            source, shown_from = window[start:start + MAX_SHOWN_LINE], shown_from + lo + start
            object.__setattr__(self, "cut_short", lo + start + MAX_SHOWN_LINE < len(self.source_line or ""))
        else:
            source = mask_shown(source)
        parts = line_secrets(self.source_line) if self.source_line and len(self.source_line) <= MAX_SCANNED_LINE else ()
        object.__setattr__(self, "source_line", source)
        object.__setattr__(self, "shown_from", shown_from)
        object.__setattr__(self, "message", _bounded(mask_shown(self.message[:2 * MAX_SCANNED_LINE], parts) or ""))
        if self.hint:
            object.__setattr__(self, "hint", _bounded(mask_shown(self.hint[:2 * MAX_SCANNED_LINE], parts) or ""))

    def __str__(self) -> str:
        where = f"{self.file}:{self.line}:{self.column}" if self.line else self.file
        out = [f"{where}: {self.severity}: {self.message}"]
        if self.source_line is not None and self.line:
            cut_before = "\u2026" if self.shown_from else ""
            cut_after = "\u2026" if self.cut_short else ""
            out.append(f"  {cut_before}{printable(self.source_line).rstrip()}{cut_after}")
            out.append("  " + " " * max(self.column - 1 - self.shown_from + len(cut_before), 0) + "^")
        if self.hint:
            out.append(f"  hint: {self.hint}")
        return "\n".join(out)


MAX_SHOWN_LINE = 200
"""The most of a source line a diagnostic shows (around its column)."""
MAX_MESSAGE = 600
"""The longest message or hint a diagnostic shows (one may quote a value of the file)."""


def _bounded(text: str) -> str:
    return text if len(text) <= MAX_MESSAGE else text[:MAX_MESSAGE] + "\u2026 (cut)"


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


def ran_as_read(diagnostic: Diagnostic) -> Diagnostic:
    """``diagnostic`` (an error) from a rule that refuses what has one reading the agent runs, just not
    the one the operator plainly meant (an empty ``when:`` runs the step always, a var named ``host``
    is never read): the files on disk are refused, but a last good configuration holding it loads
    (``load_config(..., last_good=True)``) with it as a warning. Such a rule is new for a
    configuration that ran before it: the last good one, judged again at a start, must not leave an
    upgraded agent without the plays it guarded with (an empty ``when:`` in the emergency playbook
    dropped it and every play whose budget hands over to it: the bot unguarded)."""
    return dataclasses.replace(diagnostic, ran_as_read=True)


def order(diagnostic: Diagnostic) -> tuple[str, int, int]:
    """Sort key of diagnostics: by file (the same file named by a relative and an absolute path
    sorts as one), line and column."""
    try:
        where = os.path.realpath(diagnostic.file) if diagnostic.file else ""
    except (OSError, ValueError):
        where = diagnostic.file
    return (where, diagnostic.line, diagnostic.column)
