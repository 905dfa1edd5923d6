"""The log summary of a report: lines per level and the most common errors in a window.

The bot logs one JSON object per line (``bot.trading.jsonlog``: ``ts``, ``level``, ``logger``,
``msg``, ``event`` and event fields); supervisord writes its stdout and stderr to
``<supervisor.logdir>/<bot.program>.log`` and rotates it to ``.log.1`` .. ``.log.N``.

Definitions (window ``since <= ts < until``, ``ts`` read as UTC):

* **lines**: JSON lines whose ``ts`` is in the window; **levels**: those lines per ``level``
  (lower case, as written).
* **unstructured lines**: lines that are not JSON objects with a ``ts`` (a traceback printed by
  a crash, a library writing to stderr) that follow an in-window JSON line: they belong to it.
* **top errors**: lines of level ``error`` or ``critical`` grouped by (level, event, message),
  the ``top`` largest groups, largest first (ties: more severe level first, then message).
  Messages are redacted (key-shaped strings never leave the agent) and cut to 200 characters.

:func:`summarize_log` is pure (any iterable of lines); :func:`read_log_summary` reads the files.
"""
from __future__ import annotations

import json
from collections import Counter
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

from agent.core.secret_shapes import redact_line

ERROR_LEVELS = ("critical", "error")
MESSAGE_CHARS = 200
DEFAULT_MAX_BYTES = 256 * 1024 * 1024
"""Read at most this many bytes of log (newest files first); past it the summary is ``truncated``."""


@dataclass(frozen=True)
class MessageCount:
    """One group of the most common errors."""

    level: str
    event: str
    message: str
    count: int


@dataclass(frozen=True)
class LogSummary:
    """See the module docstring for each figure."""

    lines: int
    levels: dict[str, int]
    top_errors: tuple[MessageCount, ...]
    unstructured_lines: int = 0
    files: tuple[str, ...] = ()
    truncated: bool = False

    @property
    def errors(self) -> int:
        """Lines of level error or critical."""
        return sum(self.levels.get(level, 0) for level in ERROR_LEVELS)


def summarize_log(lines: Iterable[str], since: datetime, until: datetime, *, top: int = 5) -> LogSummary:
    """Summarize ``lines`` (oldest first) over ``[since, until)``; pure (see module docstring)."""
    lo, hi = since.timestamp(), until.timestamp()
    levels: Counter[str] = Counter()
    groups: Counter[tuple[str, str, str]] = Counter()
    counted, unstructured = 0, 0
    previous_in_window = False
    for raw in lines:
        line = raw.strip()
        if not line:
            continue
        doc = _json_object(line)
        at = _timestamp(doc.get("ts")) if doc is not None else None
        if at is None:
            unstructured += int(previous_in_window)
            continue
        previous_in_window = lo <= at < hi
        if not previous_in_window:
            continue
        assert doc is not None
        counted += 1
        level = str(doc.get("level", "unknown")).lower()
        levels[level] += 1
        if level in ERROR_LEVELS:
            message = redact_line(str(doc.get("msg", "")))[:MESSAGE_CHARS]
            groups[(level, str(doc.get("event") or ""), message)] += 1
    severity = {lvl: i for i, lvl in enumerate(ERROR_LEVELS)}
    ranked = sorted(groups.items(), key=lambda kv: (-kv[1], severity[kv[0][0]], kv[0][2], kv[0][1]))
    return LogSummary(
        lines=counted, levels=dict(sorted(levels.items())), unstructured_lines=unstructured,
        top_errors=tuple(MessageCount(level=k[0], event=k[1], message=k[2], count=n) for k, n in ranked[:top]),
    )


def rotated_files(path: str | Path) -> list[Path]:
    """``path`` and its rotations (``path.1``, ``path.2``...) that exist, newest first."""
    base = Path(path)
    found = [base] if base.is_file() else []
    n = 1
    while (rotated := Path(f"{base}.{n}")).is_file():
        found.append(rotated)
        n += 1
    return found


def read_log_summary(path: str | Path, since: datetime, until: datetime, *, top: int = 5,
                     max_bytes: int = DEFAULT_MAX_BYTES) -> LogSummary | None:
    """The summary of the log file ``path`` and its rotations over the window.

    ``None`` when neither ``path`` nor a rotation exists. Files last written before ``since``
    hold nothing of the window and are not read; of the rest, the newest are read first up to
    ``max_bytes`` in total (older ones left out make the summary ``truncated``). Lines are fed
    oldest first so continuation lines follow the line they belong to.
    """
    candidates = rotated_files(path)
    if not candidates:
        return None
    since_ts = since.timestamp()
    chosen: list[Path] = []
    budget, truncated = max_bytes, False
    for f in candidates:  # newest first
        stat = f.stat()
        if stat.st_mtime < since_ts:
            break  # this file and every older one ended before the window
        if stat.st_size > budget:
            truncated = True
            break
        budget -= stat.st_size
        chosen.append(f)
    summary = summarize_log(_lines_of(reversed(chosen)), since, until, top=top)
    return LogSummary(lines=summary.lines, levels=summary.levels, top_errors=summary.top_errors,
                      unstructured_lines=summary.unstructured_lines, files=tuple(str(f) for f in chosen),
                      truncated=truncated)


def _lines_of(files: Iterable[Path]) -> Iterator[str]:
    for f in files:
        try:
            with open(f, encoding="utf-8", errors="replace") as fh:
                yield from fh
        except FileNotFoundError:  # rotated away between listing and reading
            continue


def _json_object(line: str) -> dict[str, object] | None:
    if not line.startswith("{"):
        return None
    try:
        doc = json.loads(line)
    except (ValueError, RecursionError):  # RecursionError: nested past what JSON reads
        return None
    return doc if isinstance(doc, dict) else None


def _timestamp(value: object) -> float | None:
    if not isinstance(value, str):
        return None
    try:
        at = datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        return None
    return (at if at.tzinfo else at.replace(tzinfo=UTC)).timestamp()
