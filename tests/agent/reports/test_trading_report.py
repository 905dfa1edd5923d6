"""The trading report's figures against a known history, exactly; its edge cases; its window.

The history (tests/agent/reports/history.py) is written to real SQLite files with the bot's
own models and the agent's Store API, then read back by the same loaders the action uses.
"""
from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path
from types import SimpleNamespace as NS

import pandas as pd
import pytest

from agent.reports import (
    Period,
    Report,
    compute_report,
    load_agent_records,
    load_bot_frames,
    read_log_summary,
    resolve_period,
)
from botwarden.errors import ModuleError
from tests.agent.reports.history import (
    DAILY_LOSS_LIMIT_PCT,
    EXPECTED,
    SINCE,
    UNTIL,
    at,
    build_agent_db,
    build_bot_db,
    build_bot_log,
)

UTC = UTC


@pytest.fixture
def dbs(tmp_path: Path) -> tuple[Path, Path]:
    build_bot_log(tmp_path / "log")
    return build_bot_db(tmp_path / "bot.db"), build_agent_db(tmp_path / "agent.db")


def report_of(bot_db: Path, agent_db: Path, since: datetime = SINCE, until: datetime = UNTIL) -> Report:
    frames = load_bot_frames(bot_db)
    records = load_agent_records(agent_db, since)
    log = read_log_summary(bot_db.parent / "log" / "bot.log", since, until)
    return compute_report(Period(since, until, "day 2024-03-15"), trades=frames.trades, fills=frames.fills,
                          equity=frames.equity, positions=frames.positions, halts=frames.halts,
                          incidents=records.incidents, action_runs=records.action_runs,
                          daily_loss_limit_pct=DAILY_LOSS_LIMIT_PCT, log=log)


def figures(report: Report) -> dict[str, object]:
    return {
        "trades": report.trades, "trades_opened": report.trades_opened, "wins": report.wins,
        "losses": report.losses, "win_rate": report.win_rate, "realized_pnl": report.realized_pnl,
        "total_pnl": report.total_pnl, "start_equity": report.start_equity, "end_equity": report.end_equity,
        "best_trade_id": report.best_trade.id if report.best_trade else None,
        "best_pnl": report.best_trade.pnl if report.best_trade else None,
        "worst_trade_id": report.worst_trade.id if report.worst_trade else None,
        "worst_pnl": report.worst_trade.pnl if report.worst_trade else None,
        "fees": report.fees, "fills": report.fills, "max_drawdown_usd": report.max_drawdown_usd,
        "max_drawdown_pct": report.max_drawdown_pct, "open_positions": len(report.open_positions),
        "unrealized_pnl": report.unrealized_pnl, "incident_count": report.incident_count,
        "incident_seconds": report.incident_seconds, "remediation_runs": report.remediation_runs,
        "halts": report.halts, "uptime_pct": report.uptime_pct, "downtime_seconds": report.downtime_seconds,
        "gross_profit": report.gross_profit, "gross_loss": report.gross_loss, "profit_factor": report.profit_factor,
        "sharpe_ratio": report.sharpe_ratio, "sharpe_days": report.sharpe_days,
        "daily_loss_day": report.daily_loss_day, "daily_loss_pct": report.daily_loss_pct,
        "daily_loss_worst_pct": report.daily_loss_worst_pct, "daily_loss_used_pct": report.daily_loss_used_pct,
        "daily_loss_worst_used_pct": report.daily_loss_worst_used_pct,
        "log_lines": report.log.lines if report.log else None,
        "log_levels": report.log.levels if report.log else None,
        "log_errors": report.log.errors if report.log else None,
        "log_unstructured": report.log.unstructured_lines if report.log else None,
        "log_top_errors": [(e.count, e.level, e.event, e.message) for e in report.log.top_errors]
        if report.log else None,
    }


def test_every_figure_of_the_known_day_matches_exactly(dbs: tuple[Path, Path]) -> None:
    report = report_of(*dbs)
    assert figures(report) == EXPECTED


def test_the_lists_behind_the_figures(dbs: tuple[Path, Path]) -> None:
    report = report_of(*dbs)
    assert [t.id for t in report.closed_trades] == [1, 2, 3, 4]
    assert [(t.coin, t.side, t.pnl, t.close_reason) for t in report.closed_trades][1] == (
        "ETH", "short", -10.25, "stop_loss")
    assert [(p.coin, p.size, p.unrealized_pnl) for p in report.open_positions] == [
        ("BTC", -0.01, -0.25), ("SOL", 2.0, 1.5)]
    assert [(i.check, i.seconds_in_period, i.is_open) for i in report.incidents] == [
        ("bot process", 1800.0, False), ("market data age", 14400.0, False), ("bot memory", 3600.0, True)]
    assert [(r.name, r.runs, r.failed) for r in report.remediations] == [("clean-logs", 1, 0), ("restart-bot", 2, 1)]


def test_as_dict_is_plain_data(dbs: tuple[Path, Path]) -> None:
    data = report_of(*dbs).as_dict()
    assert data["period"]["since"] == "2024-03-15T00:00:00+00:00"
    assert data["best_trade"]["closed_at"] == "2024-03-15T09:30:00+00:00"
    assert data["incident_count"] == 3 and data["incidents"][2]["resolved_at"] is None


def test_a_window_with_no_trades(dbs: tuple[Path, Path]) -> None:
    # 04:00-08:00: equity flat at 1000, no trade closed, no fill, no incident.
    report = report_of(*dbs, since=at(4), until=at(8))
    assert (report.trades, report.win_rate, report.realized_pnl, report.best_trade, report.worst_trade) == (
        0, None, 0.0, None, None)
    assert (report.fees, report.fills, report.max_drawdown_usd, report.max_drawdown_pct) == (0.0, 0, 0.0, 0.0)
    assert (report.total_pnl, report.incident_count, report.uptime_pct) == (0.0, 0, 100.0)


def test_a_window_after_the_last_snapshot_starts_from_the_last_known_equity(dbs: tuple[Path, Path]) -> None:
    # 09:00-11:00: the bot was down (snapshots stop at 07:59); equity known at 09:00 is 1000.
    report = report_of(*dbs, since=at(9), until=at(11))
    assert (report.start_equity, report.end_equity, report.total_pnl) == (1000.0, 1000.0, 0.0)
    assert (report.uptime_pct, report.downtime_seconds) == (0.0, 7200.0)
    assert report.trades == 1 and report.realized_pnl == 4.75  # trade 2 closed at 11:00 exactly: outside


def test_empty_bot_database_gives_an_empty_report(tmp_path: Path) -> None:
    from bot.trading.store import Store as BotStore

    BotStore(tmp_path / "bot.db").close()
    frames = load_bot_frames(tmp_path / "bot.db")
    report = compute_report(Period(SINCE, UNTIL), trades=frames.trades, fills=frames.fills, equity=frames.equity,
                            positions=frames.positions, halts=frames.halts)
    assert (report.trades, report.total_pnl, report.uptime_pct, report.open_positions) == (0, None, 0.0, ())


def test_missing_bot_database_is_an_error_and_is_not_created(tmp_path: Path) -> None:
    with pytest.raises(ModuleError, match="does not exist"):
        load_bot_frames(tmp_path / "nope.db")
    assert not (tmp_path / "nope.db").exists()


def test_missing_agent_store_is_a_note_not_an_error(tmp_path: Path) -> None:
    records = load_agent_records(tmp_path / "agent.db", SINCE)
    assert records.incidents == [] and "does not exist" in records.note
    assert not (tmp_path / "agent.db").exists()


def test_loading_does_not_write_the_bot_database(dbs: tuple[Path, Path]) -> None:
    bot_db, _ = dbs
    before = bot_db.read_bytes()
    assert len(load_bot_frames(bot_db).trades) == 7
    assert bot_db.read_bytes() == before
    # A WAL reader may create SQLite's shared-memory sidecar; it writes no log entry.
    wal = bot_db.with_name(bot_db.name + "-wal")
    assert not wal.exists() or wal.stat().st_size == 0


def _eq(*points: tuple[datetime, float]) -> pd.DataFrame:
    return pd.DataFrame({"at": [p[0] for p in points], "equity": [p[1] for p in points]})


NO_TRADES = pd.DataFrame({c: [] for c in ("id", "coin", "side", "size", "entry_px", "exit_px", "pnl", "opened_at",
                                          "closed_at", "close_reason")})
NO_FILLS = pd.DataFrame({"time_ms": [], "coin": [], "fee": []})


@pytest.mark.parametrize(
    ("points", "grace", "uptime", "downtime"),
    [
        ([], 150.0, 0.0, 3600.0),
        # one snapshot at the start vouches for 150 s
        ([(at(10), 1.0)], 150.0, 150 / 3600 * 100, 3450.0),
        # a snapshot before the window still covers its first seconds
        ([(at(9, 59), 1.0)], 150.0, 90 / 3600 * 100, 3510.0),
        # every 60 s for the whole hour: fully up
        ([(at(10) + timedelta(minutes=i), 1.0) for i in range(60)], 150.0, 100.0, 0.0),
        # every 5 minutes with a 150 s grace: half the time
        ([(at(10) + timedelta(minutes=5 * i), 1.0) for i in range(12)], 150.0, 50.0, 1800.0),
    ],
)
def test_uptime_is_the_covered_share_of_the_window(points, grace, uptime, downtime) -> None:
    report = compute_report(Period(at(10), at(11)), trades=NO_TRADES, fills=NO_FILLS, equity=_eq(*points),
                            uptime_grace_s=grace)
    assert report.uptime_pct == pytest.approx(uptime, abs=1e-9)
    assert report.downtime_seconds == pytest.approx(downtime, abs=1e-9)


def test_drawdown_is_measured_from_the_running_peak() -> None:
    # 100 -> 120 -> 90 (-30, 25 %) -> 130 -> 100 (-30, 23.08 %): both falls are 30 USD.
    points = [(at(10, i), v) for i, v in enumerate([100.0, 120.0, 90.0, 130.0, 100.0])]
    report = compute_report(Period(at(10), at(11)), trades=NO_TRADES, fills=NO_FILLS, equity=_eq(*points))
    assert (report.max_drawdown_usd, report.max_drawdown_pct) == (30.0, 25.0)
    assert report.total_pnl == 0.0


def test_ties_for_best_and_worst_go_to_the_trade_closed_first() -> None:
    trades = pd.DataFrame({
        "id": [1, 2], "coin": ["BTC", "ETH"], "side": ["long", "long"], "size": [1.0, 1.0],
        "entry_px": [1.0, 1.0], "exit_px": [2.0, 2.0], "pnl": [5.0, 5.0], "opened_at": [at(10), at(10)],
        "closed_at": [at(10, 30), at(10, 20)], "close_reason": ["signal", "signal"],
    })
    report = compute_report(Period(at(10), at(11)), trades=trades, fills=NO_FILLS, equity=_eq())
    assert report.best_trade is not None and report.worst_trade is not None
    assert (report.best_trade.id, report.worst_trade.id, report.win_rate) == (2, 2, 1.0)


@pytest.mark.parametrize(
    ("resolved", "seconds"),
    [(at(10), None), (at(10, 0, 1), 1.0), (None, 3600.0)],
)
def test_incident_boundaries(resolved, seconds) -> None:
    inc = NS(id=1, play="p", host="h", check="c", severity="warning", opened_at=at(9), resolved_at=resolved,
             summary="")
    report = compute_report(Period(at(10), at(11)), trades=NO_TRADES, fills=NO_FILLS, equity=_eq(), incidents=[inc])
    assert [i.seconds_in_period for i in report.incidents] == ([] if seconds is None else [seconds])


NOW = datetime(2024, 3, 15, 16, 0, 5, tzinfo=UTC)


@pytest.mark.parametrize(
    ("kw", "since", "until", "label"),
    [
        ({"period": "day"}, datetime(2024, 3, 15, tzinfo=UTC), NOW, "day 2024-03-15"),
        ({"period": "day", "until": "2024-03-16"}, datetime(2024, 3, 15, tzinfo=UTC),
         datetime(2024, 3, 16, tzinfo=UTC), "day 2024-03-15"),
        ({"period": "week"}, datetime(2024, 3, 11, tzinfo=UTC), NOW, "week 2024-W11"),
        ({"period": "month"}, datetime(2024, 3, 1, tzinfo=UTC), NOW, "month 2024-03"),
        ({"period": "month", "until": "2024-03-01"}, datetime(2024, 2, 1, tzinfo=UTC),
         datetime(2024, 3, 1, tzinfo=UTC), "month 2024-02"),
        ({"period": "day", "since": "16h"}, NOW - timedelta(hours=16), NOW, "last 16h"),
        ({"period": "day", "since": "2024-03-14T16:00:00Z", "until": "2024-03-15T08:00:00Z"},
         datetime(2024, 3, 14, 16, tzinfo=UTC), datetime(2024, 3, 15, 8, tzinfo=UTC), None),
        # New York's 15 March starts at 04:00 UTC (EDT since 10 March)
        ({"period": "day", "tz_name": "America/New_York"}, datetime(2024, 3, 15, 4, tzinfo=UTC), NOW,
         "day 2024-03-15"),
    ],
)
def test_resolve_period(kw, since, until, label) -> None:
    args = {"period": None, "since": None, "until": None, "tz_name": "UTC", **kw}
    period = resolve_period(now=NOW, **args)
    assert (period.since, period.until) == (since, until)
    if label is not None:
        assert period.label == label


def test_resolve_period_refuses_an_empty_window() -> None:
    with pytest.raises(ValueError, match="empty report period"):
        resolve_period(period=None, since="2024-03-16", until="2024-03-15", tz_name="UTC", now=NOW)
