"""log check on real files: JSON events and text lines, windows, levels, redaction, bounded reads."""
from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from agent.core.secret_shapes import redact_line
from agent.modules.checks.log import LogCheck, LogCheckParams

KEY = "0x" + "ab" * 32
_NOW: list[datetime] = []


@pytest.fixture(autouse=True)
def _now_of_this_test() -> None:
    """The lines are dated from the moment the test starts, not from the import: under xdist a
    module is imported minutes before its last test runs, and a window would slide past them."""
    _NOW[:] = [datetime.now(UTC)]


def now() -> datetime:
    return _NOW[0]


def event(minutes_ago: float, level: str, msg: str, **fields) -> str:
    ts = (now() - timedelta(minutes=minutes_ago)).isoformat(timespec="milliseconds")
    return json.dumps({"ts": ts, "level": level, "logger": "bot", "msg": msg, **fields})


@pytest.fixture
def bot_log(tmp_path: Path) -> Path:
    lines = [event(m, lvl, msg) for m, lvl, msg in [
        (180, "error", "order rejected"),     # outside a 1h window
        (50, "info", "loop ok"),
        (40, "error", "order rejected"),
        (30, "warning", "slow api"),
        (10, "error", "api timeout"),
        (2, "info", f"signed with {KEY}"),
    ]]
    path = tmp_path / "bot.log"
    path.write_text("\n".join(lines) + "\n")
    return path


async def run(make_ctx, **params):
    return await LogCheck().run(LogCheckParams(**params), make_ctx())


@pytest.mark.parametrize(("params", "count"), [
    ({"pattern": "order rejected", "window": "1h"}, 1),
    ({"pattern": "order rejected", "window": "4h"}, 2),
    ({"pattern": ".", "window": "1h", "levels": ["error", "critical"]}, 2),
    ({"pattern": ".", "window": "15m"}, 2),
    ({"pattern": "ORDER", "window": "4h", "ignore_case": True}, 2),
    ({"pattern": "nothing like this", "window": "4h"}, 0),
])
async def test_counts_within_the_window(bot_log, make_ctx, params, count):
    result = await run(make_ctx, path=str(bot_log), **params)
    assert result.error is None
    assert result.value == count


async def test_facts_rate_last_match_and_sample_newest_first(bot_log, make_ctx):
    result = await run(make_ctx, path=str(bot_log), pattern="error|rejected|timeout", window="1h", levels=["error"])
    f = result.facts
    assert f["count"] == 2 and f["rate_per_min"] == pytest.approx(2 / 60, rel=1e-3)
    since_start = (datetime.now(UTC) - now()).total_seconds()  # the lines are dated from now()
    assert 540 < f["last_match_age_s"] - since_start < 700
    assert "api timeout" in f["sample"][0] and "order rejected" in f["sample"][1]
    assert f["lines_scanned"] == 5 and f["truncated"] is False


async def test_the_result_is_dated_by_its_newest_counted_line(bot_log, make_ctx):
    """``evidence_at``: when the newest line the count rests on was written (the dependency hold
    tells apart errors of a parent's past fault from new ones by it); none without a match."""
    result = await run(make_ctx, path=str(bot_log), pattern=".", window="1h", levels=["error"])
    newest = (now() - timedelta(minutes=10)).timestamp()  # "api timeout", 10 minutes before now()
    assert result.evidence_at is not None and abs(result.evidence_at - newest) < 1.0
    quiet = await run(make_ctx, path=str(bot_log), pattern="nothing like this", window="1h")
    assert quiet.evidence_at is None


async def test_the_result_names_its_oldest_counted_line_too(bot_log, make_ctx):
    """``evidence_since``: the oldest line in the window the count rests on (errors logged before a
    parent's fault began are not that fault's); none without a match, and not among the facts."""
    result = await run(make_ctx, path=str(bot_log), pattern=".", window="1h", levels=["error"])
    oldest = (now() - timedelta(minutes=40)).timestamp()  # "order rejected" 40 minutes before (not the 180)
    assert result.evidence_since is not None and abs(result.evidence_since - oldest) < 1.0
    assert "first_match_age_s" not in result.facts
    quiet = await run(make_ctx, path=str(bot_log), pattern="nothing like this", window="1h")
    assert quiet.evidence_since is None


async def test_security_scan_counts_key_material_without_repeating_it(bot_log, tmp_path, make_ctx):
    with bot_log.open("a") as fh:
        fh.write(event(1, "info", "auth", header="Authorization: Bearer abcdefghijklmnop123") + "\n")
        fh.write(event(1, "info", "pem -----BEGIN EC PRIVATE KEY-----MHcCAQEEI-----END EC PRIVATE KEY-----") + "\n")
    patterns = {"private_key": r"PRIVATE KEY-----", "bearer": r"(?i)bearer\s+\S{8,}", "hex_key": r"\b(0x)?[0-9a-fA-F]{64}\b"}
    result = await run(make_ctx, path=str(bot_log), patterns=patterns, window="7d")
    assert result.facts["counts"] == {"private_key": 1, "bearer": 1, "hex_key": 1}
    assert result.value == 3
    text = json.dumps(result.facts)
    assert KEY not in text and KEY[2:] not in text and "abcdefghijklmnop123" not in text and "MHcCAQEEI" not in text


@pytest.mark.parametrize(("line", "hidden"), [
    (f"key={KEY} done", KEY[2:]),
    ("curl -H 'Authorization: Bearer tok_1234567890'", "tok_1234567890"),
    ("url https://user:hunter2@host/x", "hunter2"),
])
def test_redact_line(line, hidden):
    assert hidden not in redact_line(line) and "***" in redact_line(line)


async def test_text_lines_with_tracebacks_belong_to_their_timestamped_line(tmp_path, make_ctx):
    old = (now() - timedelta(hours=2)).strftime("%Y-%m-%d %H:%M:%S")
    new = (now() - timedelta(minutes=5)).strftime("%Y-%m-%d %H:%M:%S")
    path = tmp_path / "app.log"
    path.write_text(f"{old} ERROR old failure\nTraceback (old)\n{new} ERROR Connection reset\n"
                    "Traceback (most recent call last):\n  ConnectionError: reset\n{new} INFO fine\n".replace("{new}", new))
    result = await run(make_ctx, path=str(path), pattern="Traceback|ConnectionError", window="1h")
    assert result.value == 2  # the new traceback's two lines; the old one is outside the window
    result = await run(make_ctx, path=str(path), pattern=".", window="1h", levels=["error"])
    assert result.value == 3  # the ERROR line and its continuation lines


async def test_custom_timestamp_format(tmp_path, make_ctx):
    stamp = (now() - timedelta(minutes=3)).strftime("%d/%m/%Y %H:%M:%S")
    path = tmp_path / "custom.log"
    path.write_text(f"01/01/2001 00:00:00 boom\n{stamp} boom\n")
    result = await run(make_ctx, path=str(path), pattern="boom", window="10m",
                       timestamp_regex=r"^(\d\d/\d\d/\d{4} \d\d:\d\d:\d\d)", timestamp_format="%d/%m/%Y %H:%M:%S")
    assert result.value == 1


async def test_reads_a_bounded_number_of_bytes_from_the_end(tmp_path, make_ctx):
    path = tmp_path / "big.log"
    filler = event(1, "info", "x" * 200) + "\n"
    with path.open("w") as fh:
        fh.write(event(1, "error", "early boom") + "\n")
        fh.write(filler * 2000)  # ~0.5 MB, all inside the window
        fh.write(event(0.5, "error", "late boom") + "\n")
    result = await run(make_ctx, path=str(path), pattern="boom", window="1h", max_bytes=100_000)
    assert result.value == 1 and result.facts["truncated"] is True
    result = await run(make_ctx, path=str(path), pattern="boom", window="1h")
    assert result.value == 2 and result.facts["truncated"] is False


async def test_missing_file(tmp_path, make_ctx):
    result = await run(make_ctx, path=str(tmp_path / "none.log"), pattern="x")
    assert result.value == 0 and result.facts["exists"] is False
    result = await run(make_ctx, path=str(tmp_path / "none.log"), pattern="x", missing_ok=False)
    assert result.error and "does not exist" in result.error


def test_params_need_exactly_one_pattern_and_valid_regexes():
    with pytest.raises(ValueError, match="exactly one"):
        LogCheckParams(path="x")
    with pytest.raises(ValueError, match="bad regular expression"):
        LogCheckParams(path="x", pattern="(")


async def test_a_line_nested_past_what_json_reads_is_a_text_line(bot_log, make_ctx):
    """A log line '{"a": [[[[...' 100 000 deep (a payload logged as received, a torn line) raised
    RecursionError out of the log check (an internal error at every run) and out of the logs
    report; it is read as a line of text, the lines around it counted (r15c)."""
    from agent.reports.logs import _json_object

    nested = '{"a": ' + "[" * 100_000
    bot_log.write_text(bot_log.read_text() + nested + "\n" + event(1, "error", "order rejected") + "\n")
    result = await run(make_ctx, path=str(bot_log), pattern="order rejected", window="1h")
    assert result.error is None, result
    assert result.value == 2
    assert _json_object(nested) is None
