"""The report's strategy and operations figures: profit factor, Sharpe ratio, daily loss used,
the log summary and the API call volume, each on hand-worked inputs and at its edges."""
from __future__ import annotations

import os
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pandas as pd
import pytest

from agent.reports import (
    Period,
    compute_report,
    parse_api_calls,
    read_log_summary,
    resolve_period,
    summarize_log,
)
from bot.trading.metrics import BotMetrics
from tests.agent.reports.history import at

UTC = UTC
NO_FILLS = pd.DataFrame({"time_ms": [], "coin": [], "fee": []})
NO_TRADES = pd.DataFrame({c: [] for c in ("id", "coin", "side", "size", "entry_px", "exit_px", "pnl", "opened_at",
                                          "closed_at", "close_reason")})


def _eq(*points: tuple[datetime, float]) -> pd.DataFrame:
    return pd.DataFrame({"at": [p[0] for p in points], "equity": [p[1] for p in points]})


def _trades(*pnls: float) -> pd.DataFrame:
    n = len(pnls)
    return pd.DataFrame({
        "id": list(range(1, n + 1)), "coin": ["BTC"] * n, "side": ["long"] * n, "size": [1.0] * n,
        "entry_px": [1.0] * n, "exit_px": [1.0] * n, "pnl": list(pnls), "opened_at": [at(10)] * n,
        "closed_at": [at(10, i + 1) for i in range(n)], "close_reason": ["signal"] * n,
    })


# -- profit factor ---------------------------------------------------------------------------------
@pytest.mark.parametrize(("pnls", "gross_profit", "gross_loss", "factor"), [
    ((), 0.0, 0.0, None),                        # no trade: undefined
    ((4.0, 2.0), 6.0, 0.0, None),                # only wins: infinite, reported as None
    ((0.0,), 0.0, 0.0, None),                    # a break-even trade is neither
    ((-3.0, -1.0), 0.0, 4.0, 0.0),               # only losses
    ((6.0, -2.0, 0.0, -2.0), 6.0, 4.0, 1.5),
])
def test_profit_factor(pnls, gross_profit, gross_loss, factor) -> None:
    report = compute_report(Period(at(10), at(11)), trades=_trades(*pnls) if pnls else NO_TRADES, fills=NO_FILLS,
                            equity=_eq())
    assert (report.gross_profit, report.gross_loss, report.profit_factor) == (gross_profit, gross_loss, factor)


# -- Sharpe ratio ----------------------------------------------------------------------------------
def test_sharpe_from_daily_closes_exactly() -> None:
    # Start 1000 (known at since); the closes of 10, 11 and 12 March are the last snapshot of
    # each UTC day: 1100, 1045, 1149.5 -> returns +10 %, -5 %, +10 %: mean 0.05, sample stdev
    # sqrt(0.0075): Sharpe = 0.05 / 0.0866... = 1 / sqrt(3).
    points = [(at(23, day=9), 1000.0),
              (at(8, day=10), 990.0), (at(20, day=10), 1100.0),
              (at(1, day=11), 1200.0), (at(23, 59, day=11), 1045.0),
              (at(12, day=12), 1149.5),
              (at(1, day=13), 5.0)]  # after until: ignored
    report = compute_report(Period(at(0, day=10), at(0, day=13)), trades=NO_TRADES, fills=NO_FILLS,
                            equity=_eq(*points))
    assert report.sharpe_days == 3
    assert report.sharpe_ratio == pytest.approx(1 / 3 ** 0.5, rel=1e-12)


def test_days_without_a_snapshot_are_skipped() -> None:
    # 10th close 1100, no snapshot on the 11th, 12th close 1210: two returns of +10 %: no spread.
    points = [(at(0, day=10), 1000.0), (at(12, day=10), 1100.0), (at(12, day=12), 1210.0)]
    report = compute_report(Period(at(0, day=10), at(0, day=13)), trades=NO_TRADES, fills=NO_FILLS,
                            equity=_eq(*points))
    assert (report.sharpe_days, report.sharpe_ratio) == (2, None)


@pytest.mark.parametrize(("points", "days"), [
    ([], 0),
    ([(at(10), 1000.0), (at(10, 30), 1010.0)], 1),   # one day: one return
])
def test_sharpe_needs_two_daily_returns(points, days) -> None:
    report = compute_report(Period(at(10), at(11)), trades=NO_TRADES, fills=NO_FILLS, equity=_eq(*points))
    assert (report.sharpe_ratio, report.sharpe_days) == (None, days)


# -- daily loss used --------------------------------------------------------------------------------
def test_daily_loss_used_of_the_limit() -> None:
    # The 15th starts at 1000 (00:00, before the window), dips to 960, ends the window at 970.
    points = [(at(23, day=14), 2000.0), (at(0), 1000.0), (at(12), 960.0), (at(13), 970.0), (at(17), 1.0)]
    report = compute_report(Period(at(12), at(16)), trades=NO_TRADES, fills=NO_FILLS, equity=_eq(*points),
                            daily_loss_limit_pct=5.0)
    assert report.daily_loss_day == "2024-03-15"
    assert report.daily_loss_pct == (1000.0 - 970.0) / 1000.0 * 100.0
    assert report.daily_loss_worst_pct == (1000.0 - 960.0) / 1000.0 * 100.0
    assert report.daily_loss_used_pct == pytest.approx(60.0, rel=1e-12)
    assert report.daily_loss_worst_used_pct == pytest.approx(80.0, rel=1e-12)
    assert report.daily_loss_limit_pct == 5.0


def test_daily_loss_without_a_limit_or_snapshots() -> None:
    report = compute_report(Period(at(12), at(16)), trades=NO_TRADES, fills=NO_FILLS,
                            equity=_eq((at(0), 1000.0), (at(12), 990.0)))
    assert report.daily_loss_pct == pytest.approx(1.0) and report.daily_loss_used_pct is None
    empty = compute_report(Period(at(12), at(16)), trades=NO_TRADES, fills=NO_FILLS, equity=_eq(),
                           daily_loss_limit_pct=5.0)
    assert (empty.daily_loss_day, empty.daily_loss_pct, empty.daily_loss_used_pct) == (None, None, None)


# -- log summary ------------------------------------------------------------------------------------
def _line(when: datetime, level: str, msg: str, event: str = "e") -> str:
    return f'{{"ts":"{when.isoformat()}","level":"{level}","logger":"bot","msg":"{msg}","event":"{event}"}}'


def test_summary_counts_levels_and_ranks_errors() -> None:
    lines = [_line(at(10), "error", "b"), _line(at(10, 1), "error", "a"), _line(at(10, 2), "error", "b"),
             _line(at(10, 3), "info", "x"), "not json {", _line(at(9), "error", "early"), "", "{\"no\": \"ts\"}"]
    summary = summarize_log(lines, at(10), at(11), top=1)
    assert (summary.lines, summary.levels, summary.errors) == (4, {"error": 3, "info": 1}, 3)
    assert [(e.count, e.message) for e in summary.top_errors] == [(2, "b")]
    # "not json {" follows an in-window line; the line without ts follows an out-of-window one
    assert summary.unstructured_lines == 1


def test_rotated_files_older_than_the_window_are_not_read(tmp_path: Path) -> None:
    log = tmp_path / "bot.log"
    log.write_text(_line(at(10, 30), "error", "now") + "\n")
    old = tmp_path / "bot.log.1"
    old.write_text(_line(at(10, 10), "error", "misdated but old file") + "\n")
    os.utime(old, (at(9).timestamp(), at(9).timestamp()))   # last written before since
    summary = read_log_summary(log, at(10), at(11))
    assert summary is not None and summary.lines == 1 and summary.files == (str(log),)


def test_byte_budget_reads_the_newest_files_and_says_truncated(tmp_path: Path) -> None:
    log = tmp_path / "bot.log"
    log.write_text(_line(at(10, 30), "error", "newest") + "\n")
    (tmp_path / "bot.log.1").write_text((_line(at(10, 10), "error", "older") + "\n") * 50)
    summary = read_log_summary(log, at(10), at(11), max_bytes=log.stat().st_size + 10)
    assert summary is not None and summary.truncated and summary.lines == 1
    full = read_log_summary(log, at(10), at(11))
    assert full is not None and not full.truncated and full.lines == 51
    assert [(e.count, e.message) for e in full.top_errors] == [(50, "older"), (1, "newest")]


def test_missing_log_is_none(tmp_path: Path) -> None:
    assert read_log_summary(tmp_path / "bot.log", at(10), at(11)) is None


# -- API call volume --------------------------------------------------------------------------------
def test_api_calls_from_the_bots_own_metrics() -> None:
    metrics = BotMetrics()
    for method, error in (("info", None), ("info", None), ("info", "timeout"), ("order", None), ("order", "rejected")):
        metrics.observe_api(method, 0.01, error)
    as_of = datetime(2024, 3, 15, 16, tzinfo=UTC)
    volume = parse_api_calls(metrics.render().decode(), as_of)
    assert (volume.calls, volume.failed, volume.as_of) == (5, 2, as_of)
    assert [(m.method, m.calls, m.failed) for m in volume.by_method] == [("info", 3, 1), ("order", 2, 1)]
    assert volume.failed_pct == 40.0
    assert volume.process_started_at is not None


def test_metrics_that_are_not_the_bots_are_refused() -> None:
    with pytest.raises(ValueError, match="no api_requests_total"):
        parse_api_calls("# HELP up x\n# TYPE up gauge\nup 1\n", datetime.now(UTC))


# -- complete periods (the weekly and monthly reviews) ----------------------------------------------
@pytest.mark.parametrize(("period", "now", "since", "until", "label"), [
    # the monthly review on the 1st at 04:00 covers the whole previous month
    ("month", datetime(2024, 4, 1, 4, tzinfo=UTC), datetime(2024, 3, 1, tzinfo=UTC), datetime(2024, 4, 1, tzinfo=UTC),
     "month 2024-03"),
    # mid-month: still the previous whole month
    ("month", datetime(2024, 4, 17, 9, tzinfo=UTC), datetime(2024, 3, 1, tzinfo=UTC),
     datetime(2024, 4, 1, tzinfo=UTC), "month 2024-03"),
    # on Sunday the current ISO week is not over: the one before
    ("week", datetime(2024, 3, 17, 3, tzinfo=UTC), datetime(2024, 3, 4, tzinfo=UTC),
     datetime(2024, 3, 11, tzinfo=UTC), "week 2024-W10"),
    ("day", datetime(2024, 3, 16, 0, 0, 1, tzinfo=UTC), datetime(2024, 3, 15, tzinfo=UTC),
     datetime(2024, 3, 16, tzinfo=UTC), "day 2024-03-15"),
])
def test_complete_periods(period, now, since, until, label) -> None:
    p = resolve_period(period=period, since=None, until=None, tz_name="UTC", now=now, complete=True)
    assert (p.since, p.until, p.label) == (since, until, label)
    assert p.until - p.since >= timedelta(days=1)
