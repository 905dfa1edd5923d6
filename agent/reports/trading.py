"""The trading report: pure computation over the bot's and the agent's records.

:func:`compute_report` takes plain inputs (pandas frames of the bot's tables, the agent's
incident and action-run records, a :class:`Period`) and returns a frozen :class:`Report`.
It does no I/O and reads no clock, so its figures can be tested exactly;
:mod:`agent.reports.sources` loads the inputs and :mod:`agent.modules.actions.report` sends
the result.

Definitions (every window is half-open, ``since <= t < until``, in UTC):

* **trades**: round trips (``trades`` rows) *closed* in the window. ``trades_opened`` counts
  rows opened in the window, whatever their state.
* **win rate**: trades with ``pnl > 0`` divided by ``trades``; ``None`` when no trade closed.
  A trade with ``pnl == 0`` is neither a win nor a loss.
* **realized P&L**: sum of ``pnl`` of the trades closed in the window. The bot books a trade's
  ``pnl`` net of the fees of its fills, so fees are already inside it.
* **total P&L**: ``end_equity - start_equity``: the change of account value over the window,
  which adds the unrealized P&L of positions still open (and funding) to the realized P&L.
  ``start_equity`` is the last equity snapshot at or before ``since`` (else the first inside
  the window); ``end_equity`` the last snapshot inside the window. ``None`` without snapshots.
* **best / worst trade**: the closed trade with the highest / lowest ``pnl`` (ties: the one
  closed first). With one trade they are the same trade.
* **fees**: sum of ``fee`` of the fills (``fills`` rows) whose time is in the window.
* **max drawdown**: over the equity series (``start_equity`` then every snapshot in the
  window, in time order), the largest fall from the running peak: ``max_drawdown_usd`` is the
  largest ``peak - equity``, ``max_drawdown_pct`` the largest ``(peak - equity) / peak * 100``
  (each its own maximum). 0 when equity never fell.
* **open positions**: the ``positions`` rows given (the bot's last observed exchange
  positions, as of when the report is made, not as of ``until``).
* **incidents**: agent incidents whose life ``[opened_at, resolved_at or until)`` overlaps the
  window. ``incident_seconds`` sums each incident's overlap with the window (overlapping
  incidents both count: it is incident-time, not wall time).
* **remediations**: the agent's own audited action runs (actor ``agent``, not check mode)
  started in the window, grouped by remediation name (the task text before ``": "``); a
  remediation of two steps that ran once counts two runs (each step is audited).
* **uptime**: the bot writes an equity snapshot about every 60 s while its trading loop runs
  (``bot.trading.engine.EQUITY_SNAPSHOT_EVERY_S``). The loop counts as up at instant ``x``
  when some snapshot ``s`` has ``s <= x < s + uptime_grace_s`` (default 150 s, two and a half
  snapshot periods, so one late snapshot is not downtime). ``uptime_pct`` is the covered part
  of ``[since, until)`` over its length, times 100; ``downtime_seconds`` the uncovered part.
  A bot that is running but cannot reach the exchange writes no snapshot: that is downtime,
  deliberately (it is not trading).
* **gross profit / gross loss**: sum of ``pnl`` of the winning trades / of ``-pnl`` of the
  losing trades closed in the window (both >= 0; break-even trades add to neither).
* **profit factor**: ``gross_profit / gross_loss``. ``None`` when there is no losing trade
  (no trade at all, or only wins and break-evens: the ratio is undefined or infinite; the
  template says which). 0.0 when there are losses and no wins.
* **Sharpe ratio** (``sharpe_ratio``): from daily returns of the equity snapshots, days being
  UTC calendar days (the bot's trading day). A day's close is its last snapshot inside the
  window; the first return runs from ``start_equity`` to the first day's close, each next one
  from the previous close (days without a snapshot are skipped, so a return may span them).
  ``r = close / previous - 1``; Sharpe = ``mean(r) / stdev(r)`` with the sample standard
  deviation (n - 1), a risk-free rate of 0, **not annualised** (multiply by sqrt(365) for a
  yearly figure: crypto trades every day). ``None`` with fewer than 2 daily returns, when the
  returns do not vary, or when an equity is not positive. ``sharpe_days`` is how many
  returns it used.
* **daily loss used** (the bot's daily loss limit, ``bot.risk.daily_loss_limit_pct``): for the
  UTC day of the last snapshot in the window (``daily_loss_day``), with the bot's own
  definition: ``day_start`` is that day's first snapshot (even before ``since``), the loss is
  ``(day_start - equity) / day_start * 100`` (negative: a gain). ``daily_loss_pct`` uses the
  last snapshot of the window, ``daily_loss_worst_pct`` the lowest snapshot of that day before
  ``until`` (snapshots are a minute apart: a dip between two is not seen).
  ``daily_loss_used_pct`` / ``daily_loss_worst_used_pct`` are those losses (0 for a gain) as a
  percent of the limit: 100 means the bot halts new entries. ``None`` without snapshots (or
  without a limit, for the ``used`` figures).
* **log summary** and **API call volume**: given as inputs, see :mod:`agent.reports.logs` and
  :mod:`agent.reports.api_calls` for their definitions (``None`` when not available).
"""
from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any, Protocol

from agent.reports.api_calls import ApiCallVolume
from agent.reports.logs import LogSummary

# pandas (with numpy) adds ~100 MB to a process; the resident agent imports this module through
# the module registry, so pandas is imported inside the functions that compute a report.
if TYPE_CHECKING:
    import pandas as pd

DEFAULT_UPTIME_GRACE_S = 150.0
"""Seconds one equity snapshot vouches for the trading loop (2.5 x the 60 s snapshot period)."""

TRADE_COLUMNS = ("id", "coin", "side", "size", "entry_px", "exit_px", "pnl", "opened_at", "closed_at", "close_reason")
FILL_COLUMNS = ("time_ms", "coin", "fee")
EQUITY_COLUMNS = ("at", "equity")
POSITION_COLUMNS = ("coin", "size", "entry_px", "unrealized_pnl")
HALT_COLUMNS = ("kind", "reason", "created_at", "cleared_at")


class IncidentLike(Protocol):
    """What the report reads of an incident (:class:`agent.store.IncidentRecord` fits)."""

    id: int
    play: str
    host: str
    check: str
    severity: str
    opened_at: datetime
    resolved_at: datetime | None
    summary: str


class ActionRunLike(Protocol):
    """What the report reads of an audited action run (:class:`agent.store.ActionRunRecord`)."""

    task: str
    actor: str
    check_mode: bool
    failed: bool
    started_at: datetime


@dataclass(frozen=True)
class Period:
    """The report's window ``[since, until)`` (aware datetimes), its label and display timezone."""

    since: datetime
    until: datetime
    label: str = ""
    timezone: str = "UTC"

    def __post_init__(self) -> None:
        if self.since.tzinfo is None or self.until.tzinfo is None:
            raise ValueError("a report period needs timezone-aware datetimes")
        if self.until <= self.since:
            raise ValueError(f"empty report period: until {self.until} is not after since {self.since}")

    @property
    def seconds(self) -> float:
        return (self.until - self.since).total_seconds()


@dataclass(frozen=True)
class TradeLine:
    id: int
    coin: str
    side: str
    size: float
    entry_px: float
    exit_px: float | None
    pnl: float
    opened_at: datetime
    closed_at: datetime
    close_reason: str | None


@dataclass(frozen=True)
class PositionLine:
    coin: str
    size: float
    entry_px: float
    unrealized_pnl: float


@dataclass(frozen=True)
class IncidentLine:
    id: int
    play: str
    host: str
    check: str
    severity: str
    opened_at: datetime
    resolved_at: datetime | None
    seconds_in_period: float
    summary: str = ""

    @property
    def is_open(self) -> bool:
        return self.resolved_at is None


@dataclass(frozen=True)
class RemediationLine:
    name: str
    runs: int
    failed: int


@dataclass(frozen=True)
class Report:
    """Every figure of the trading report; see the module docstring for the definitions."""

    period: Period
    trades: int
    trades_opened: int
    wins: int
    losses: int
    win_rate: float | None
    realized_pnl: float
    total_pnl: float | None
    start_equity: float | None
    end_equity: float | None
    best_trade: TradeLine | None
    worst_trade: TradeLine | None
    fees: float
    fills: int
    max_drawdown_usd: float
    max_drawdown_pct: float
    open_positions: tuple[PositionLine, ...]
    unrealized_pnl: float
    incidents: tuple[IncidentLine, ...]
    incident_seconds: float
    remediations: tuple[RemediationLine, ...]
    remediation_runs: int
    halts: int
    uptime_pct: float | None
    downtime_seconds: float | None
    closed_trades: tuple[TradeLine, ...] = field(default=())
    gross_profit: float = 0.0
    gross_loss: float = 0.0
    profit_factor: float | None = None
    sharpe_ratio: float | None = None
    sharpe_days: int = 0
    daily_loss_day: str | None = None
    daily_loss_pct: float | None = None
    daily_loss_worst_pct: float | None = None
    daily_loss_limit_pct: float | None = None
    daily_loss_used_pct: float | None = None
    daily_loss_worst_used_pct: float | None = None
    log: LogSummary | None = None
    api_calls: ApiCallVolume | None = None

    @property
    def incident_count(self) -> int:
        return len(self.incidents)

    def as_dict(self) -> dict[str, Any]:
        """A plain, JSON-friendly view (datetimes as ISO text) for templates and results."""
        out = asdict(self)
        out["incident_count"] = self.incident_count
        if self.log is not None:
            out["log"]["errors"] = self.log.errors
        if self.api_calls is not None:
            out["api_calls"]["failed_pct"] = self.api_calls.failed_pct
        return _jsonable(out)


def compute_report(
    period: Period,
    *,
    trades: pd.DataFrame,
    fills: pd.DataFrame,
    equity: pd.DataFrame,
    positions: pd.DataFrame | None = None,
    halts: pd.DataFrame | None = None,
    incidents: Iterable[IncidentLike] = (),
    action_runs: Iterable[ActionRunLike] = (),
    uptime_grace_s: float = DEFAULT_UPTIME_GRACE_S,
    daily_loss_limit_pct: float | None = None,
    log: LogSummary | None = None,
    api_calls: ApiCallVolume | None = None,
) -> Report:
    """Compute the report of ``period`` from the given records (pure: no I/O, no clock).

    Frames need at least the columns named in ``TRADE_COLUMNS``, ``FILL_COLUMNS``,
    ``EQUITY_COLUMNS`` (and ``POSITION_COLUMNS``, ``HALT_COLUMNS``); datetimes may be naive
    (read as UTC, which is how both stores write them) or aware. ``daily_loss_limit_pct`` is
    the bot's limit (for the daily-loss-used figures); ``log`` and ``api_calls`` are passed
    through into the report.
    """
    since, until = period.since, period.until
    trades = _with_utc(trades, ("opened_at", "closed_at"))
    closed = trades[trades["closed_at"].notna()]
    closed = closed[(closed["closed_at"] >= since) & (closed["closed_at"] < until)]
    closed = closed.sort_values(["closed_at", "id"], kind="stable")
    pnl = closed["pnl"].fillna(0.0).astype(float)
    opened_in = trades[(trades["opened_at"] >= since) & (trades["opened_at"] < until)]
    lines = tuple(_trade_line(row) for row in closed.to_dict("records"))

    fills_in = _fills_in(fills, since, until)
    start_equity, end_equity, dd_usd, dd_pct = _equity_figures(equity, since, until)
    pos_lines = _positions(positions)
    incident_lines = _incidents(incidents, since, until)
    rem_lines = _remediations(action_runs, since, until)
    halts_in = 0
    if halts is not None and not halts.empty:
        h = _with_utc(halts, ("created_at",))
        halts_in = int(((h["created_at"] >= since) & (h["created_at"] < until)).sum())

    wins, losses = int((pnl > 0).sum()), int((pnl < 0).sum())
    gross_profit, gross_loss = float(pnl[pnl > 0].sum()), float(-pnl[pnl < 0].sum())
    uptime, downtime = _uptime(equity, since, until, uptime_grace_s)
    sharpe, sharpe_days = _sharpe(equity, since, until, start_equity)
    loss = _daily_loss(equity, since, until, daily_loss_limit_pct)
    return Report(
        period=period,
        trades=len(lines),
        trades_opened=len(opened_in),
        wins=wins,
        losses=losses,
        win_rate=wins / len(lines) if lines else None,
        realized_pnl=float(pnl.sum()) if lines else 0.0,
        total_pnl=None if start_equity is None or end_equity is None else end_equity - start_equity,
        start_equity=start_equity,
        end_equity=end_equity,
        # max()/min() keep the first of equal values: ties go to the trade closed first.
        best_trade=max(lines, key=lambda t: t.pnl) if lines else None,
        worst_trade=min(lines, key=lambda t: t.pnl) if lines else None,
        fees=float(fills_in["fee"].astype(float).sum()) if not fills_in.empty else 0.0,
        fills=len(fills_in),
        max_drawdown_usd=dd_usd,
        max_drawdown_pct=dd_pct,
        open_positions=pos_lines,
        unrealized_pnl=sum(p.unrealized_pnl for p in pos_lines),
        incidents=incident_lines,
        incident_seconds=sum(i.seconds_in_period for i in incident_lines),
        remediations=rem_lines,
        remediation_runs=sum(r.runs for r in rem_lines),
        halts=halts_in,
        uptime_pct=uptime,
        downtime_seconds=downtime,
        closed_trades=lines,
        gross_profit=gross_profit,
        gross_loss=gross_loss,
        profit_factor=gross_profit / gross_loss if gross_loss > 0 else None,
        sharpe_ratio=sharpe,
        sharpe_days=sharpe_days,
        **loss,
        log=log,
        api_calls=api_calls,
    )


# -- pieces ----------------------------------------------------------------------------------------

def as_utc(value: Any) -> datetime:
    """A datetime (or pandas Timestamp) as an aware UTC ``datetime``; naive means UTC."""
    import pandas as pd  # heavy (~100 MB RSS): only when a report is computed

    if isinstance(value, pd.Timestamp):
        value = value.to_pydatetime()
    if not isinstance(value, datetime):
        raise TypeError(f"expected a datetime, got {value!r}")
    return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)


def _with_utc(frame: pd.DataFrame, columns: Sequence[str]) -> pd.DataFrame:
    import pandas as pd  # heavy (~100 MB RSS): only when a report is computed

    out = frame.copy()
    for col in columns:
        out[col] = pd.to_datetime(out[col], utc=True) if len(out) else pd.Series([], dtype="datetime64[ns, UTC]")
    return out


def _trade_line(row: Mapping[str, Any]) -> TradeLine:
    import pandas as pd  # heavy (~100 MB RSS): only when a report is computed

    exit_px = row.get("exit_px")
    return TradeLine(
        id=int(row["id"]), coin=str(row["coin"]), side=str(row["side"]), size=float(row["size"]),
        entry_px=float(row["entry_px"]),
        exit_px=None if exit_px is None or pd.isna(exit_px) else float(exit_px),
        pnl=0.0 if pd.isna(row["pnl"]) else float(row["pnl"]),
        opened_at=as_utc(row["opened_at"]), closed_at=as_utc(row["closed_at"]),
        close_reason=None if pd.isna(row.get("close_reason")) else str(row["close_reason"]),
    )


def _fills_in(fills: pd.DataFrame, since: datetime, until: datetime) -> pd.DataFrame:
    if fills.empty:
        return fills
    lo, hi = _ms(since), _ms(until)
    t = fills["time_ms"].astype("int64")
    return fills[(t >= lo) & (t < hi)]


def _ms(at: datetime) -> int:
    # Exact integer milliseconds (a float timestamp would round 1 ms off some instants).
    delta = as_utc(at) - datetime(1970, 1, 1, tzinfo=UTC)
    return (delta.days * 86_400 + delta.seconds) * 1000 + delta.microseconds // 1000


def _equity_series(equity: pd.DataFrame) -> pd.DataFrame:
    import pandas as pd  # heavy (~100 MB RSS): only when a report is computed

    if equity.empty:
        return pd.DataFrame({"at": pd.Series([], dtype="datetime64[ns, UTC]"), "equity": pd.Series([], dtype=float)})
    eq = _with_utc(equity, ("at",))
    sort = ["at", "id"] if "id" in eq.columns else ["at"]
    return eq.sort_values(sort, kind="stable")


def _equity_figures(
    equity: pd.DataFrame, since: datetime, until: datetime
) -> tuple[float | None, float | None, float, float]:
    import pandas as pd  # heavy (~100 MB RSS): only when a report is computed

    eq = _equity_series(equity)
    before = eq[eq["at"] <= since]
    inside = eq[(eq["at"] >= since) & (eq["at"] < until)]
    series = inside["equity"].astype(float)
    if not before.empty and (inside.empty or inside["at"].iloc[0] > since):
        # The last value known at `since` is where the window starts.
        series = pd.concat([before["equity"].astype(float).iloc[-1:], series], ignore_index=True)
    if series.empty:
        return None, None, 0.0, 0.0
    peak = series.cummax()
    fall = peak - series
    pct = (fall / peak.where(peak > 0)).fillna(0.0) * 100.0
    end = float(inside["equity"].astype(float).iloc[-1]) if not inside.empty else float(series.iloc[-1])
    return float(series.iloc[0]), end, float(fall.max()), float(pct.max())


def _sharpe(equity: pd.DataFrame, since: datetime, until: datetime,
            start_equity: float | None) -> tuple[float | None, int]:
    """(Sharpe ratio, number of daily returns); see the module docstring."""
    import pandas as pd  # heavy (~100 MB RSS): only when a report is computed

    eq = _equity_series(equity)
    inside = eq[(eq["at"] >= since) & (eq["at"] < until)]
    if start_equity is None or inside.empty:
        return None, 0
    days = inside["at"].dt.strftime("%Y-%m-%d")
    closes = inside["equity"].astype(float).groupby(days.values, sort=True).last()
    levels = [start_equity, *closes.tolist()]
    if any(v <= 0 for v in levels):
        return None, len(closes)
    returns = pd.Series(levels[1:]) / pd.Series(levels[:-1]) - 1.0
    if len(returns) < 2:
        return None, len(returns)
    spread = float(returns.std(ddof=1))
    return (float(returns.mean()) / spread if spread > 0 else None), len(returns)


def _daily_loss(equity: pd.DataFrame, since: datetime, until: datetime,
                limit_pct: float | None) -> dict[str, Any]:
    """The daily-loss figures of the Report; see the module docstring."""
    out: dict[str, Any] = {"daily_loss_day": None, "daily_loss_pct": None, "daily_loss_worst_pct": None,
                           "daily_loss_limit_pct": limit_pct, "daily_loss_used_pct": None,
                           "daily_loss_worst_used_pct": None}
    eq = _equity_series(equity)
    inside = eq[(eq["at"] >= since) & (eq["at"] < until)]
    if inside.empty:
        return out
    last_at = as_utc(inside["at"].iloc[-1])
    day = last_at.strftime("%Y-%m-%d")
    of_day = eq[(eq["at"].dt.strftime("%Y-%m-%d") == day) & (eq["at"] < until)]["equity"].astype(float)
    day_start = float(of_day.iloc[0])
    if day_start <= 0:
        return {**out, "daily_loss_day": day}
    end_loss = (day_start - float(inside["equity"].astype(float).iloc[-1])) / day_start * 100.0
    worst_loss = (day_start - float(of_day.min())) / day_start * 100.0
    out.update(daily_loss_day=day, daily_loss_pct=end_loss, daily_loss_worst_pct=worst_loss)
    if limit_pct is not None and limit_pct > 0:
        out.update(daily_loss_used_pct=max(0.0, end_loss) / limit_pct * 100.0,
                   daily_loss_worst_used_pct=max(0.0, worst_loss) / limit_pct * 100.0)
    return out


def _uptime(equity: pd.DataFrame, since: datetime, until: datetime, grace_s: float) -> tuple[float | None, float | None]:
    import pandas as pd  # heavy (~100 MB RSS): only when a report is computed

    total = (until - since).total_seconds()
    if total <= 0:
        return None, None
    eq = _equity_series(equity)
    grace = pd.Timedelta(seconds=grace_s)
    stamps = eq["at"][(eq["at"] > since - grace) & (eq["at"] < until)].sort_values()
    covered = 0.0
    cur_start: datetime | None = None
    cur_end: datetime | None = None
    for ts in stamps:
        start, end = max(as_utc(ts), since), min(as_utc(ts) + grace.to_pytimedelta(), until)
        if cur_end is not None and start <= cur_end:
            cur_end = max(cur_end, end)
            continue
        if cur_start is not None and cur_end is not None:
            covered += (cur_end - cur_start).total_seconds()
        cur_start, cur_end = start, end
    if cur_start is not None and cur_end is not None:
        covered += (cur_end - cur_start).total_seconds()
    return covered / total * 100.0, total - covered


def _positions(positions: pd.DataFrame | None) -> tuple[PositionLine, ...]:
    import pandas as pd  # heavy (~100 MB RSS): only when a report is computed

    if positions is None or positions.empty:
        return ()
    rows = positions.sort_values("coin").to_dict("records")
    return tuple(
        PositionLine(coin=str(r["coin"]), size=float(r["size"]), entry_px=float(r["entry_px"]),
                     unrealized_pnl=0.0 if pd.isna(r.get("unrealized_pnl")) else float(r["unrealized_pnl"]))
        for r in rows
    )


def _incidents(incidents: Iterable[IncidentLike], since: datetime, until: datetime) -> tuple[IncidentLine, ...]:
    out: dict[int, IncidentLine] = {}
    for inc in incidents:
        opened = as_utc(inc.opened_at)
        ended = as_utc(inc.resolved_at) if inc.resolved_at is not None else until
        start, end = max(opened, since), min(ended, until)
        if opened >= until or ended <= since:
            continue
        out[inc.id] = IncidentLine(
            id=inc.id, play=inc.play, host=inc.host, check=inc.check, severity=inc.severity,
            opened_at=opened, resolved_at=as_utc(inc.resolved_at) if inc.resolved_at is not None else None,
            seconds_in_period=(end - start).total_seconds(), summary=inc.summary or "",
        )
    return tuple(sorted(out.values(), key=lambda i: (i.opened_at, i.id)))


def _remediations(runs: Iterable[ActionRunLike], since: datetime, until: datetime) -> tuple[RemediationLine, ...]:
    counts: dict[str, list[int]] = {}
    for run in runs:
        at = as_utc(run.started_at)
        if run.actor != "agent" or run.check_mode or not (since <= at < until):
            continue
        name = run.task.split(": ", 1)[0]
        entry = counts.setdefault(name, [0, 0])
        entry[0] += 1
        entry[1] += int(bool(run.failed))
    return tuple(RemediationLine(name=n, runs=c[0], failed=c[1]) for n, c in sorted(counts.items()))


def _jsonable(value: Any) -> Any:
    if isinstance(value, datetime):
        return value.isoformat()
    if isinstance(value, Mapping):
        return {k: _jsonable(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_jsonable(v) for v in value]
    return value
