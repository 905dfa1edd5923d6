"""Check: how often a pattern occurs in a log file within a time window.

Two line formats: the bot's JSON events (one object per line with ``ts`` ISO 8601 and
``level``), and plain text lines whose timestamp a regular expression finds
(``timestamp_regex``, first group or whole match, parsed as ISO 8601 or with
``timestamp_format``). ``format: auto`` takes a line starting with ``{`` as JSON.

Efficient on big files: the file is read backwards in blocks and the scan stops at the first
line older than the window, or after ``max_bytes`` (then ``truncated`` is true and the counts
cover only what was read). A line without a timestamp belongs to the window when it comes
after a line inside it (tracebacks, continuation lines).

Samples are redacted: key-shaped strings (0x + 64 hex, PEM private keys, bearer tokens,
credentials in URLs) and the agent's known secrets never leave this module, so the security
scan can count leaked key material without repeating it.
"""
from __future__ import annotations

import asyncio
import json
import os
import re
import time
import warnings
from datetime import UTC, datetime
from typing import Any, ClassVar, Literal

from pydantic import Field, field_validator, model_validator

from agent.core.secret_shapes import redact_line
from agent.core.values import Lookback, ParamProblem
from agent.modules.base import CheckModule, CheckResult, Params, RunContext

BLOCK_BYTES = 65536
SAMPLE_CHARS = 300


class LogCheckParams(Params):
    path: str = Field(description="the log file, e.g. {{ supervisor.logdir }}/bot.log")
    pattern: str | None = Field(None, description="regular expression searched in each line (give pattern or patterns)")
    patterns: dict[str, str] | None = Field(
        None, description="named regular expressions; a line counts once if any matches; counts per name are a fact"
    )
    window: Lookback = Field(3600.0, description="how far back to look, e.g. 5m, 1h, 7d")
    levels: list[str] = Field(
        default_factory=list, description="JSON lines only: count only these levels, e.g. [error, critical]"
    )
    format: Literal["auto", "json", "text"] = Field("auto", description="auto (JSON when a line starts with {), json or text")
    timestamp_regex: str = Field(
        r"^\[?(\d{4}-\d{2}-\d{2}[T ]\d{2}:\d{2}:\d{2}(?:[.,]\d+)?(?:Z|[+-]\d{2}:?\d{2})?)",
        description="text lines: regex finding the timestamp (first group, else the whole match)",
    )
    timestamp_format: str | None = Field(
        None, description="text lines: strptime format of the timestamp; default ISO 8601 (naive = UTC)"
    )
    ignore_case: bool = Field(False, description="match the patterns case-insensitively")
    max_bytes: int = Field(16 * 1024 * 1024, gt=0, le=2**30, description="read at most this many bytes from the end of the file")
    sample_size: int = Field(5, ge=0, le=50, description="keep this many of the latest matching lines (redacted)")
    missing_ok: bool = Field(True, description="a missing file counts as no matches (false: the check is UNKNOWN)")

    @model_validator(mode="after")
    def _one_pattern(self) -> LogCheckParams:
        if (self.pattern is None) == (self.patterns is None):
            raise ValueError("give exactly one of pattern or patterns")
        exprs: list[tuple[str | None, tuple[str, ...]]] = [(self.pattern, ("pattern",)),
                                                           (self.timestamp_regex, ("timestamp_regex",))]
        exprs += [(expr, ("patterns", name)) for name, expr in (self.patterns or {}).items()]
        for expr, at in exprs:
            if expr is not None:
                try:
                    with warnings.catch_warnings():  # "possible set difference": Python's, not the operator's
                        warnings.simplefilter("ignore", FutureWarning)
                        re.compile(expr)
                except re.error as exc:
                    raise ParamProblem(f"bad regular expression {expr!r}: {exc}", *at) from None
        return self

    @field_validator("levels")
    @classmethod
    def _lower(cls, levels: list[str]) -> list[str]:
        return [lvl.lower() for lvl in levels]


class LogCheck(CheckModule):
    """Counts matching lines of the last ``window``, reading the file from its end."""

    name: ClassVar[str] = "log"
    Params: ClassVar[type[LogCheckParams]] = LogCheckParams
    description: ClassVar[str] = "Pattern counts in a log file over a time window (JSON events or text lines)"
    default_value: ClassVar[str | None] = "count"
    facts: ClassVar[dict[str, str]] = {
        "count": "matching lines within the window",
        "counts": "matching lines per named pattern (patterns), or {'pattern': count}",
        "rate_per_min": "count divided by the window in minutes",
        "last_match": "timestamp of the latest matching line, ISO 8601 UTC (None: no match)",
        "last_match_age_s": "seconds since the latest matching line (None: no match)",
        "sample": "the latest matching lines, newest first, redacted and cut to 300 characters",
        "lines_scanned": "lines read within the window",
        "truncated": "true when max_bytes was reached before the start of the window",
        "exists": "false when the file does not exist",
    }

    async def run(self, params: LogCheckParams, ctx: RunContext) -> CheckResult:
        try:
            now = time.time()
            facts = await asyncio.wait_for(ctx.run_blocking(scan_log, params, now), timeout=ctx.timeout)
        except TimeoutError:
            return CheckResult.failed(f"scanning {params.path} timed out after {ctx.timeout:g}s")
        except FileNotFoundError:
            return CheckResult.failed(f"{params.path} does not exist")
        except OSError as exc:
            return CheckResult.failed(f"cannot read {params.path}: {exc.strerror or exc}")
        newest, oldest = facts.get("last_match_age_s"), facts.pop("first_match_age_s", None)
        return CheckResult(facts=facts, value=facts["count"],
                           summary=f"{facts['count']} match(es) in the last {params.window:g}s of {params.path}",
                           evidence_at=now - newest if newest is not None else None,
                           evidence_since=now - oldest if oldest is not None else None)


def scan_log(params: LogCheckParams, now: float) -> dict[str, Any]:
    """Blocking scan; see the module docstring. Raises ``FileNotFoundError`` unless missing_ok."""
    if not os.path.exists(params.path):
        if not params.missing_ok:
            raise FileNotFoundError(params.path)
        return _facts(params, {}, 0, [], None, 0, False, now, exists=False)
    flags = re.IGNORECASE if params.ignore_case else 0
    named = {k: re.compile(v, flags) for k, v in (params.patterns or {"pattern": params.pattern or ""}).items()}
    ts_regex = re.compile(params.timestamp_regex)
    start = now - params.window
    counts = dict.fromkeys(named, 0)
    total, scanned = 0, 0
    samples: list[str] = []
    last_match: float | None = None
    first_match: float | None = None
    pending: list[str] = []  # untimestamped lines seen (newest first) since the last timestamped one
    truncated = False

    def count(line: str, ts: float | None, level: str | None) -> None:
        nonlocal total, last_match, first_match
        if params.levels and (level or "") not in params.levels:
            return
        hits = [k for k, rx in named.items() if rx.search(line)]
        if not hits:
            return
        total += 1
        for k in hits:
            counts[k] += 1
        if ts is not None and (last_match is None or ts > last_match):
            last_match = ts
        if ts is not None and (first_match is None or ts < first_match):
            first_match = ts
        if len(samples) < params.sample_size:
            samples.append(redact_line(line)[:SAMPLE_CHARS])

    done = False
    for line, hit_limit in _lines_backwards(params.path, params.max_bytes):
        if hit_limit:
            truncated = True
            break
        ts, level = _parse(line, params, ts_regex)
        if ts is None:
            pending.append(line)
            continue
        if ts < start:
            done = True
            break
        scanned += 1 + len(pending)
        for cont in pending:  # continuation lines of this in-window line
            count(cont, ts, level)
        pending.clear()
        count(line, ts, level)
    if not done:
        # Reached the start of the file (or the byte limit): untimestamped lines at the very top
        # have no line to belong to; count them as in the window rather than lose them.
        scanned += len(pending)
        for cont in pending:
            count(cont, None, None)
    facts = _facts(params, counts, total, samples, last_match, scanned, truncated, now, exists=True)
    if first_match is not None:
        facts["first_match_age_s"] = round(now - first_match, 3)
    return facts


def _facts(params: LogCheckParams, counts: dict[str, int], total: int, samples: list[str],
           last_match: float | None, scanned: int, truncated: bool, now: float, *, exists: bool) -> dict[str, Any]:
    if not counts:
        counts = dict.fromkeys(params.patterns or {"pattern": ""}, 0)
    return {
        "count": total,
        "counts": counts,
        "rate_per_min": round(total / (params.window / 60.0), 6),
        "last_match": datetime.fromtimestamp(last_match, UTC).isoformat(timespec="seconds")
        if last_match is not None else None,
        "last_match_age_s": round(now - last_match, 3) if last_match is not None else None,
        "sample": samples,
        "lines_scanned": scanned,
        "truncated": truncated,
        "exists": exists,
    }


def _lines_backwards(path: str, max_bytes: int):  # type: ignore[no-untyped-def]
    """Yield ``(line, False)`` from the last line to the first, then ``("", True)`` when
    ``max_bytes`` ran out before the start of the file."""
    with open(path, "rb") as fh:
        fh.seek(0, os.SEEK_END)
        pos = fh.tell()
        budget = max_bytes
        rest = b""
        while pos > 0 and budget > 0:
            size = min(BLOCK_BYTES, pos, budget)
            pos -= size
            budget -= size
            fh.seek(pos)
            chunk = fh.read(size) + rest
            parts = chunk.split(b"\n")
            rest = parts[0]  # possibly incomplete: joined with the previous block
            for raw in reversed(parts[1:]):
                if raw.strip():
                    yield raw.decode("utf-8", errors="replace").rstrip("\r"), False
        if pos == 0:
            if rest.strip():
                yield rest.decode("utf-8", errors="replace").rstrip("\r"), False
        else:
            yield "", True


def _parse(line: str, params: LogCheckParams, ts_regex: re.Pattern[str]) -> tuple[float | None, str | None]:
    """The line's timestamp (epoch seconds) and level, either of which may be None."""
    if params.format == "json" or (params.format == "auto" and line.lstrip().startswith("{")):
        try:
            doc = json.loads(line)
        except (ValueError, RecursionError):  # RecursionError: nested past what JSON reads
            doc = None
        if isinstance(doc, dict):
            level = doc.get("level")
            return _parse_time(doc.get("ts"), None), level.lower() if isinstance(level, str) else None
        if params.format == "json":
            return None, None
    m = ts_regex.search(line)
    if not m:
        return None, None
    return _parse_time(m.group(1) if m.groups() else m.group(0), params.timestamp_format), _text_level(line)


_LEVEL_WORD = re.compile(r"\b(DEBUG|INFO|WARNING|WARN|ERROR|CRITICAL|FATAL)\b")


def _text_level(line: str) -> str | None:
    m = _LEVEL_WORD.search(line)
    if not m:
        return None
    word = m.group(1).lower()
    return {"warn": "warning", "fatal": "critical"}.get(word, word)


def _parse_time(value: Any, fmt: str | None) -> float | None:
    if isinstance(value, (int, float)):
        return float(value)
    if not isinstance(value, str):
        return None
    try:
        if fmt:
            parsed = datetime.strptime(value, fmt)  # noqa: DTZ007 - a zone-less format is UTC (below)
        else:
            parsed = datetime.fromisoformat(value.replace(",", ".").replace("Z", "+00:00"))
    except ValueError:
        return None
    if parsed.tzinfo is None:
        parsed = parsed.replace(tzinfo=UTC)
    return parsed.timestamp()
