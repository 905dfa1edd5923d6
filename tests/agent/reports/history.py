"""A known trade history, written with the bot's own models and the agent's Store API.

The window is the UTC day 2024-03-15 up to 16:00 (the end-of-day review). Money values are
dyadic fractions (0.25, 4.75...) so sums are exact in binary floating point and the tests can
compare with ``==``. ``EXPECTED`` holds every figure the report must show, worked out by hand
in the comments next to the data.
"""
from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path

from sqlalchemy.orm import Session

from bot.trading.models import EquitySnapshot, FillRecord, HaltRecord, PositionRecord, TradeRecord
from bot.trading.store import Store as BotStore

UTC = UTC
SINCE = datetime(2024, 3, 15, 0, 0, tzinfo=UTC)
UNTIL = datetime(2024, 3, 15, 16, 0, tzinfo=UTC)


def at(hh: int, mm: int = 0, ss: int = 0, day: int = 15) -> datetime:
    return datetime(2024, 3, day, hh, mm, ss, tzinfo=UTC)


def ms(when: datetime) -> int:
    return int(when.timestamp()) * 1000 + when.microsecond // 1000


# id, coin, side, size, entry, exit, pnl, opened, closed, reason
TRADES = [
    (1, "BTC", "long", 0.01, 60000.0, 60500.0, 4.75, at(9), at(9, 30), "signal"),         # win, best
    (2, "ETH", "short", 0.5, 3000.0, 3020.0, -10.25, at(10), at(11), "stop_loss"),       # loss, worst
    (3, "BTC", "short", 0.02, 61000.0, 60800.0, 3.5, at(12), at(13, 15), "signal"),      # win
    (4, "ETH", "long", 1.0, 2990.0, 2990.5, 0.0, at(13, 30), at(14), "signal"),          # breakeven
    (5, "BTC", "long", 0.01, 59000.0, 60000.0, 100.0, at(23, day=14), at(23, 50, day=14), "signal"),  # before
    (6, "ETH", "long", 0.5, 3000.0, 2900.0, -50.0, at(15, 50), at(16, 30), "stop_loss"),  # closes after until
    (7, "SOL", "long", 2.0, 150.0, None, None, at(15), None, None),                       # still open
]
# time, fee
FILLS = [
    (at(0), 0.0625),                  # exactly at since: inside
    (at(9), 0.25), (at(9, 30), 0.25),
    (at(10), 0.5), (at(11), 0.5),
    (at(12), 0.125), (at(13, 15), 0.125),
    (at(13, 30), 0.75), (at(14), 0.75),
    (at(15), 0.5),
    (at(15, 50), 0.25),
    (at(23, 50, day=14), 1.0),        # before since
    (at(16), 2.0),                    # exactly at until: outside
    (at(16, 30), 1.0),                # after
]


def equity_points() -> list[tuple[datetime, float]]:
    """One snapshot a minute from 00:00 to 07:59 and from 12:00 to 15:59, plus one before.

    Block A holds 1000 with a dip at 03:00-03:01 (peak 1020 then 994.5: drawdown 25.5 USD,
    25.5 / 1020 = 2.5 %); block B opens at a new peak 1030, falls to 1012 (18 USD, 1.75 %),
    and ends at 1018. Uptime: [00:00, 07:59 + 150 s) and [12:00, 16:00) are covered:
    28890 s + 14400 s = 43290 s of 57600 s; downtime 14310 s.
    """
    points = [(at(23, 59, day=14), 1000.0)]
    overrides = {at(3): 1020.0, at(3, 1): 994.5, at(12): 1030.0, at(12, 1): 1012.0}
    for start, minutes, default in ((at(0), 8 * 60, 1000.0), (at(12), 4 * 60, 1018.0)):
        for i in range(minutes):
            t = start + timedelta(minutes=i)
            points.append((t, overrides.get(t, default)))
    points.append((at(16, 5), 900.0))  # after until: ignored
    return points


POSITIONS = [("SOL", 2.0, 150.0, 1.5), ("BTC", -0.01, 61000.0, -0.25)]
HALTS = [("control", "halt requested", at(10, 5)), ("daily_loss", "yesterday", at(18, day=14))]


@dataclass(frozen=True)
class IncidentSpec:
    check: str
    severity: str
    opened_at: datetime
    resolved_at: datetime | None


INCIDENTS = [
    IncidentSpec("bot process", "critical", at(22, day=14), at(0, 30)),   # 1800 s inside
    IncidentSpec("market data age", "warning", at(8), at(12)),           # 14400 s
    IncidentSpec("bot memory", "warning", at(15), None),                  # open: 3600 s up to until
    IncidentSpec("disk", "warning", at(10, day=14), at(11, day=14)),      # before: excluded
    IncidentSpec("bot cpu", "warning", at(16, 30), None),                 # after: excluded
]
# task, actor, check_mode, failed, started
ACTION_RUNS = [
    ("restart-bot: restart the crashed bot", "agent", False, False, at(8, 2)),
    ("restart-bot: restart the crashed bot", "agent", False, True, at(8, 5)),
    ("clean-logs: prune old logs", "agent", False, False, at(15, 10)),
    ("restart-bot: restart the crashed bot", "agent", True, False, at(9)),          # check mode
    ("stop the bot", "root via run-playbook", False, False, at(10)),               # an operator
    ("restart-bot: restart the crashed bot", "agent", False, False, at(12, day=14)),  # day before
]

DAILY_LOSS_LIMIT_PCT = 5.0
SECRET_KEY = "0x" + "ab" * 32

# The bot's log as supervisord writes it (JSON lines by the bot's own formatter, plus a raw
# traceback); the first two lines are in the rotated file bot.log.1. (when, level, event, msg)
LOG_ROTATED = [
    (at(23, 30, day=14), "error", "connect_failed", "exchange not reachable at start-up; retrying"),  # before
    (at(1), "info", "start", "bot started"),
]
LOG_CURRENT = [
    (at(2), "warning", "loop_error", "iteration failed"),
    (at(8, 1), "error", "loop_error", "exchange refused a request"),
    (at(8, 2), "error", "loop_bug", "bug in the trading loop"),
    "Traceback (most recent call last):",       # unstructured, after an in-window line: counted
    '  File "bot/trading/engine.py", line 1, in iterate',
    (at(9), "error", "loop_error", "exchange refused a request"),
    (at(10), "error", "loop_error", "exchange refused a request"),
    (at(11), "critical", "store_error", "database is locked"),
    (at(12), "error", "order_error", f"order rejected for key {SECRET_KEY}"),  # redacted in the summary
    (at(15, 59, 59), "info", "loop", "iteration done"),
    (at(16), "error", "loop_error", "exchange refused a request"),   # exactly at until: outside
    "a raw line after an out-of-window line: not counted",
    (at(17), "critical", "store_error", "database is locked"),       # after
]

EXPECTED = {
    "trades": 4, "trades_opened": 6, "wins": 2, "losses": 1, "win_rate": 0.5,
    "realized_pnl": -2.0,                 # 4.75 - 10.25 + 3.5 + 0.0
    "total_pnl": 18.0, "start_equity": 1000.0, "end_equity": 1018.0,
    "best_trade_id": 1, "best_pnl": 4.75, "worst_trade_id": 2, "worst_pnl": -10.25,
    "fees": 4.0625,                       # 0.0625 + 0.5 + 1.0 + 0.25 + 1.5 + 0.5 + 0.25
    "fills": 11,
    "max_drawdown_usd": 25.5, "max_drawdown_pct": 2.5,
    "open_positions": 2, "unrealized_pnl": 1.25,
    "incident_count": 3, "incident_seconds": 19800.0,   # 1800 + 14400 + 3600
    "remediation_runs": 3, "halts": 1,
    "uptime_pct": 43290 / 57600 * 100, "downtime_seconds": 14310.0,
    # wins 4.75 + 3.5, losses 10.25
    "gross_profit": 8.25, "gross_loss": 10.25, "profit_factor": 8.25 / 10.25,
    # one UTC day in the window: one daily return (1000 -> 1018), not enough for a Sharpe ratio
    "sharpe_ratio": None, "sharpe_days": 1,
    # day start 1000 (00:00, the first snapshot of the 15th), end 1018 (a gain), worst 994.5 (03:01)
    "daily_loss_day": "2024-03-15", "daily_loss_pct": (1000.0 - 1018.0) / 1000.0 * 100.0,
    "daily_loss_worst_pct": (1000.0 - 994.5) / 1000.0 * 100.0,
    "daily_loss_used_pct": 0.0, "daily_loss_worst_used_pct": (1000.0 - 994.5) / 1000.0 * 100.0 / 5.0 * 100.0,
    # 9 JSON lines from 01:00 to 15:59:59 (the 23:30 line, 16:00 and 17:00 are outside)
    "log_lines": 9, "log_levels": {"critical": 1, "error": 5, "info": 2, "warning": 1}, "log_errors": 6,
    "log_unstructured": 2,
    "log_top_errors": [
        (3, "error", "loop_error", "exchange refused a request"),
        (1, "critical", "store_error", "database is locked"),   # ties: the more severe level first,
        (1, "error", "loop_bug", "bug in the trading loop"),    # then by message
        (1, "error", "order_error", "order rejected for key ***"),
    ],
}


def build_bot_log(logdir: Path, program: str = "bot") -> Path:
    """Write ``<logdir>/<program>.log`` and its rotation ``.log.1`` with the bot's JSON formatter."""
    import logging
    import os

    from bot.trading.jsonlog import JsonFormatter

    formatter = JsonFormatter()
    logdir.mkdir(parents=True, exist_ok=True)

    def render(entry: object) -> str:
        if isinstance(entry, str):
            return entry
        when, level, event, msg = entry  # type: ignore[misc]
        record = logging.makeLogRecord({"name": "bot", "levelname": level.upper(), "msg": msg, "event": event,
                                        "created": when.timestamp()})
        return formatter.format(record)

    current = logdir / f"{program}.log"
    rotated = logdir / f"{program}.log.1"
    for path, entries in ((rotated, LOG_ROTATED), (current, LOG_CURRENT)):
        path.write_text("".join(render(e) + "\n" for e in entries))
    # Each file was last written when its last line was (read_log_summary skips older files).
    os.utime(rotated, (at(1).timestamp(), at(1).timestamp()))
    os.utime(current, (at(17).timestamp(), at(17).timestamp()))
    return current


def build_bot_db(path: Path) -> Path:
    """Create the bot's database (schema by the bot's Store) and write the history with its models."""
    store = BotStore(path)
    try:
        with Session(store.engine) as s, s.begin():
            for tid, coin, side, size, entry, exit_px, pnl, opened, closed, reason in TRADES:
                s.add(TradeRecord(id=tid, coin=coin, side=side, size=size, entry_px=entry, entry_key=ms(opened),
                                  opened_at=opened, closed_at=closed, exit_px=exit_px, pnl=pnl,
                                  close_reason=reason))
            for n, (when, fee) in enumerate(FILLS, start=1):
                s.add(FillRecord(tid=n, oid=n, coin="BTC", is_buy=bool(n % 2), px=100.0, size=1.0, fee=fee,
                                 closed_pnl=0.0, time_ms=ms(when)))
            for when, value in equity_points():
                s.add(EquitySnapshot(at=when, day=when.strftime("%Y-%m-%d"), equity=value))
            for coin, size, entry, upnl in POSITIONS:
                s.add(PositionRecord(coin=coin, size=size, entry_px=entry, unrealized_pnl=upnl))
            for kind, reason, created in HALTS:
                s.add(HaltRecord(kind=kind, reason=reason, day=created.strftime("%Y-%m-%d"), created_at=created))
    finally:
        store.close()
    return path


def build_agent_db(path: Path) -> Path:
    """Write the incidents and action runs through the agent's Store, as the engine does."""
    from agent.core.states import State
    from agent.store import Store, check_key

    store = Store(f"sqlite:///{path}")
    store.migrate()
    try:
        for spec in INCIDENTS:
            key = check_key("bot-health", "local", spec.check)
            state = State.CRITICAL if spec.severity == "critical" else State.WARNING
            with store.transaction() as tx:
                # The engine records the opening transition before the incident exists.
                tx.add_event("transition", key, None, f"OK -> {state.name}", {}, at=spec.opened_at)
                iid = tx.open_incident(play="bot-health", host="local", check=spec.check, state=state,
                                       severity=spec.severity, opened_at=spec.opened_at, summary=spec.check)
            if spec.resolved_at is not None:
                with store.transaction() as tx:
                    tx.add_event("transition", key, iid, f"{state.name} -> OK", {}, at=spec.resolved_at)
                    tx.resolve_incident(iid, spec.resolved_at)
        for task, actor, check_mode, failed, started in ACTION_RUNS:
            store.record_action_run(play="bot-health", host="local", task=task, module="supervisor", actor=actor,
                                    check_mode=check_mode, failed=failed, started_at=started,
                                    finished_at=started + timedelta(seconds=1))
    finally:
        store.close()
    return path
