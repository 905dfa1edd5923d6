"""Action: compute the trading report of a period and send it through the notifications.

Reads the bot's SQLite file (read-only) and the agent's store, computes the figures with
:func:`agent.reports.compute_report` (definitions there), renders them with a template from
``templates/`` (``daily-report.md.j2``) and hands the text to ``ctx.notifier`` like the
``notify`` action, so it goes through routes, the outbox and apprise. In check mode the
report is computed and rendered (the preview shows the figures) but nothing is queued.

Unless ``chart: false``, the report also gets the trading chart (equity, drawdown against the
daily loss limit, P&L per trade: :mod:`agent.reports.charts`, drawn in a child process so the
resident agent never imports matplotlib), written as a PNG under ``<var_dir>/reports/`` and
attached to the message for email targets. A chart that cannot be drawn leaves the report as it
is and says so in the task's message.

Besides the two stores it reads (read-only): the bot's log file and its rotations for the log
summary (:mod:`agent.reports.logs`), and, for a window that ends now, the bot's ``/metrics``
for the API call volume (:mod:`agent.reports.api_calls`). Either missing is a note in the
report, never a failure: the trading figures matter more than the extras.
"""
from __future__ import annotations

import asyncio
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, date, datetime
from pathlib import Path
from typing import Annotated, Any, ClassVar, Literal
from zoneinfo import ZoneInfo

from pydantic import Field, field_validator, model_validator

from agent.core.values import Grace, ParamProblem, Timezone, parse_duration
from agent.modules.base import ActionModule, ActionResult, Params, Refers, RunContext
from agent.rendering import SandboxedTemplates, TemplateRenderer, render_or_fallback
from agent.reports import (
    DEFAULT_UPTIME_GRACE_S,
    ApiCallVolume,
    Period,
    Report,
    compute_report,
    fetch_api_calls,
    load_agent_records,
    load_bot_frames,
    read_log_summary,
    resolve_period,
)
from agent.reports.charts import ChartData, ChartError, chart_data_from_frames, render_in_child_async
from botwarden.errors import ModuleError

Instant = datetime | date | str

API_CALLS_FRESH_S = 300.0
"""The API call volume (a counter read now) is shown only for windows ending this close to now."""


class ReportActionParams(Params):
    period: Literal["day", "week", "month"] = Field(
        "day", description="calendar period ending at `until` in `timezone` (day: from midnight; week: from "
                           "Monday 00:00; month: from the 1st); ignored when `since` is given"
    )
    since: Instant | None = Field(
        None, description="start of the window: a duration back from `until` (16h, 7d) or an ISO date/time"
    )
    until: Instant | None = Field(None, description="end of the window: 'now' (default) or an ISO date/time")
    timezone: Timezone = Field("UTC", description="IANA timezone of calendar periods and of times in the message")
    route: Annotated[str | None, Refers("route")] = Field(
        None, description="named route from the inventory; default: routed by severity")
    title: str | None = Field(None, description="message title; default 'Trading report <period> on <host>'")
    template: Annotated[str, Refers("template")] = Field("daily-report.md.j2", description="template file name in templates/ for the body")
    severity: Literal["info", "warning", "critical"] = Field("info", description="info, warning or critical")
    tags: list[str] = Field(default_factory=lambda: ["report"], description="tags routes can match on")
    bot_db: str | None = Field(None, description="the bot's SQLite file; default: host var bot.db_path")
    agent_db: str | None = Field(None, description="the agent's SQLite store; default: host var agent.db_path")
    uptime_grace: Grace = Field(
        DEFAULT_UPTIME_GRACE_S, description="how long one equity snapshot counts the bot's loop as up"
    )
    list_trades: int = Field(20, ge=0, le=10_000, description="at most this many closed trades are listed in the message")
    complete: bool = Field(
        False, description="report the last whole `period` ending at or before `until` (a monthly review on the "
                           "1st covers the previous month); ignored when `since` is given"
    )
    bot_log: str | None = Field(
        None, description="the bot's JSON log for the log summary (its rotations .1, .2... are read too); "
                          "default: host vars supervisor.logdir/bot.program.log; '' = no log summary"
    )
    log_top: int = Field(5, ge=0, le=50, description="how many of the most common error messages are listed")
    metrics_url: str | None = Field(
        None, description="the bot's Prometheus endpoint for the API call volume (read only when the window "
                          "ends now); default: host var bot.metrics_url; '' = none"
    )
    daily_loss_limit_pct: float | None = Field(
        None, gt=0, lt=100, description="the bot's daily loss limit, % (for 'daily loss used'); default: host var "
                                "bot.risk.daily_loss_limit_pct"
    )
    chart: bool = Field(
        True, description="attach the chart (equity, drawdown, P&L per trade) as a PNG to email targets; "
                          "written under <var_dir>/reports/"
    )

    @field_validator("template")
    @classmethod
    def _bare_name(cls, name: str) -> str:
        if "/" in name or "\\" in name or name.startswith("."):
            raise ValueError(f"template {name!r} must be a file name in templates/, not a path")
        return name

    @model_validator(mode="after")
    def _window_parses(self) -> ReportActionParams:
        # A bad date or duration, or an absolute window that is empty, fails at load time.
        for key, value in (("since", self.since), ("until", self.until)):
            if isinstance(value, str) and value != "now":
                try:
                    _check_instant_or_duration(value)
                except ValueError as exc:
                    raise ParamProblem(str(exc), key) from None
        if _is_absolute(self.since) and _is_absolute(self.until):
            resolve_period(period=self.period, since=self.since, until=self.until, tz_name=self.timezone,
                           now=datetime.now(UTC), complete=self.complete)
        return self


def _is_absolute(value: Instant | None) -> bool:
    """A date or time (not unset, ``now`` or a duration back from ``until``)."""
    if value is None or value == "now":
        return False
    if isinstance(value, str):
        try:
            parse_duration(value)
            return False
        except ValueError:
            return True
    return True


def _check_instant_or_duration(text: str) -> None:
    try:
        parse_duration(text)
        return
    except ValueError:
        pass
    try:
        datetime.fromisoformat(text.strip().replace("Z", "+00:00"))
    except ValueError:
        raise ValueError(f"{text!r} is neither a duration (16h, 7d) nor an ISO date/time (2024-03-15T16:00)") from None


class ReportAction(ActionModule):
    """Computes the report in a worker thread (pandas and SQLite block), then notifies."""

    name: ClassVar[str] = "report"
    Params: ClassVar[type[ReportActionParams]] = ReportActionParams
    description: ClassVar[str] = (
        "Trading report of a period (trades, win rate, P&L, profit factor, Sharpe, best/worst, drawdown, daily loss "
        "used, fees, positions, incidents, remediations, uptime, log summary, API calls) from the bot's and the "
        "agent's stores, sent through a route"
    )
    supports_check_mode: ClassVar[bool] = True
    template_vars: ClassVar[frozenset[str]] = frozenset({"title", "host", "report", "trades_listed", "local", "note"})

    async def run(self, params: ReportActionParams, ctx: RunContext) -> ActionResult:
        if ctx.notifier is None:
            return ActionResult(failed=True, msg="notifications are not configured")
        bot_db = params.bot_db or _host_path(ctx, "bot")
        agent_db = params.agent_db or _host_path(ctx, "agent")
        if not bot_db:
            return ActionResult(failed=True, msg="no bot database: set bot_db or the host var bot.db_path")
        extras = _Extras(
            bot_log=params.bot_log if params.bot_log is not None else _host_bot_log(ctx),
            metrics_url=params.metrics_url if params.metrics_url is not None else _host_bot_var(ctx, "metrics_url"),
            daily_loss_limit_pct=params.daily_loss_limit_pct if params.daily_loss_limit_pct is not None
            else _host_loss_limit(ctx),
        )
        now = datetime.now(UTC)
        try:
            period = _period(params, now)
            api_calls, api_note = await _api_calls(extras.metrics_url, period, now)
            report, note, chart_data = await asyncio.to_thread(_build, params, period, bot_db, agent_db, extras,
                                                               api_calls, api_note)
        except (ModuleError, ValueError) as exc:
            return ActionResult(failed=True, msg=f"cannot compute the report: {exc}")
        title = params.title or f"Trading report {report.period.label} on {ctx.host.name}"
        body = self._render(params, ctx, report, note, title)
        attachments, chart_note = await _chart_file(params, ctx, chart_data, title)
        outcome = dict(await ctx.notifier.notify(
            route=params.route, title=title, body=body, severity=params.severity, host=ctx.host.name,
            tags=tuple(params.tags), check_mode=ctx.check_mode, attachments=attachments,
        ))
        figures = report.as_dict()
        data = {**outcome, "report": figures, "body": body}
        if outcome.get("error"):
            return ActionResult(failed=True, msg=f"cannot notify: {outcome['error']}", data=data)
        verb = "would send" if ctx.check_mode else "sent"
        targets = outcome.get("targets") or []
        data["chart"] = attachments[0] if attachments else None
        return ActionResult(changed=True, data=data, msg=(
            f"{verb} {report.period.label} report to {len(targets)} target(s): {report.trades} trade(s), "
            f"realized P&L {report.realized_pnl:+.2f}, {report.incident_count} incident(s)" + chart_note
        ))

    @staticmethod
    def _render(params: ReportActionParams, ctx: RunContext, report: Report, note: str, title: str) -> str:
        renderer: TemplateRenderer = getattr(ctx.notifier, "templating", None) or SandboxedTemplates()
        tz = ZoneInfo(params.timezone)
        figures = report.as_dict()
        template_vars: dict[str, Any] = {
            **ctx.template_vars,
            "title": title,
            "host": ctx.host.name,
            "report": figures,
            "trades_listed": figures["closed_trades"][-params.list_trades:] if params.list_trades else [],
            "local": {k: _local(v, tz) for k, v in (("since", report.period.since), ("until", report.period.until))},
            "note": note,
        }
        return render_or_fallback(renderer, params.template, template_vars)


@dataclass(frozen=True)
class _Extras:
    """Where the optional figures come from (resolved from params and host vars)."""

    bot_log: str | None
    metrics_url: str | None
    daily_loss_limit_pct: float | None


def _period(params: ReportActionParams, now: datetime) -> Period:
    period = resolve_period(period=params.period, since=params.since, until=params.until,
                            tz_name=params.timezone, now=now, complete=params.complete)
    if period.until > now:
        # The future has no records: a window ending later is cut at now (so uptime is honest).
        period = type(period)(since=period.since, until=now, label=period.label, timezone=period.timezone)
    return period


async def _api_calls(metrics_url: str | None, period: Period, now: datetime) -> tuple[ApiCallVolume | None, str]:
    """The bot's API call volume for a window that ends now, or a note saying why there is none.

    Read here, on the agent's loop (through its shared HTTP session), not in the worker thread."""
    if not metrics_url or (now - period.until).total_seconds() > API_CALLS_FRESH_S:
        return None, ""
    try:
        return await fetch_api_calls(metrics_url), ""
    except ValueError as exc:
        return None, f"API call volume: {exc}"


def _build(params: ReportActionParams, period: Period, bot_db: str, agent_db: str | None, extras: _Extras,
           api_calls: ApiCallVolume | None, api_note: str) -> tuple[Report, str, ChartData]:
    frames = load_bot_frames(bot_db)
    records = load_agent_records(agent_db, period.since) if agent_db else None
    notes = [records.note if records else "no agent store configured: incidents and remediations not included"]
    log = None
    if extras.bot_log:
        try:
            log = read_log_summary(extras.bot_log, period.since, period.until, top=params.log_top)
        except OSError as exc:
            notes.append(f"log summary: cannot read {extras.bot_log}: {exc.strerror or exc}")
        else:
            if log is None:
                notes.append(f"log summary: {extras.bot_log} does not exist")
    notes.append(api_note)
    report = compute_report(
        period, trades=frames.trades, fills=frames.fills, equity=frames.equity, positions=frames.positions,
        halts=frames.halts, incidents=records.incidents if records else (),
        action_runs=records.action_runs if records else (), uptime_grace_s=params.uptime_grace,
        daily_loss_limit_pct=extras.daily_loss_limit_pct, log=log, api_calls=api_calls,
    )
    chart = chart_data_from_frames(f"Trading report {period.label}", period.since, period.until,
                                   frames.equity, frames.trades, extras.daily_loss_limit_pct)
    return report, "; ".join(n for n in notes if n), chart


async def _chart_file(params: ReportActionParams, ctx: RunContext, data: ChartData,
                      title: str) -> tuple[list[str], str]:
    """([the PNG's path], "") once drawn; ([], why not) when off, in check mode or on failure."""
    if not params.chart:
        return [], ""
    if ctx.check_mode:
        return [], "; would attach the chart"
    var_dir = ctx.host.vars.get("var_dir")
    if not var_dir:
        return [], "; no chart: no var_dir for the host"
    try:
        png = await render_in_child_async(data, "png")
    except ChartError as exc:
        return [], f"; no chart: {exc}"
    slug = "".join(c if c.isalnum() or c in "-_" else "-" for c in title.lower()).strip("-")[:80]
    path = Path(str(var_dir)) / "reports" / f"{slug}.png"

    def write() -> None:
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(png)

    await asyncio.to_thread(write)
    return [str(path)], "; chart attached for email"


def _host_bot_var(ctx: RunContext, key: str) -> str | None:
    bot = ctx.host.vars.get("bot")
    value = bot.get(key) if isinstance(bot, Mapping) else None
    return str(value) if value else None


def _host_bot_log(ctx: RunContext) -> str | None:
    """``<supervisor.logdir>/<bot.program>.log``, where supervisord writes the bot's output
    (the same path the bot-health log checks read; relative to the agent's directory)."""
    supervisor = ctx.host.vars.get("supervisor")
    logdir = supervisor.get("logdir") if isinstance(supervisor, Mapping) else None
    program = _host_bot_var(ctx, "program")
    return f"{logdir}/{program}.log" if logdir and program else None


def _host_loss_limit(ctx: RunContext) -> float | None:
    bot = ctx.host.vars.get("bot")
    risk = bot.get("risk") if isinstance(bot, Mapping) else None
    value = risk.get("daily_loss_limit_pct") if isinstance(risk, Mapping) else None
    return float(value) if isinstance(value, (int, float)) and value > 0 else None


def _host_path(ctx: RunContext, section: str) -> str | None:
    value = ctx.host.vars.get(section)
    path = value.get("db_path") if isinstance(value, Mapping) else None
    return str(path) if path else None


def _local(at: datetime, tz: ZoneInfo) -> str:
    return at.astimezone(tz).strftime("%Y-%m-%d %H:%M %Z")
