"""Turn a report's ``period`` / ``since`` / ``until`` parameters into a :class:`Period`.

Calendar periods are read in the report's timezone, so "today" for an operator in New York is
New York's day, and every stored time stays UTC.
"""
from __future__ import annotations

from datetime import UTC, date, datetime, time, timedelta
from typing import Literal
from zoneinfo import ZoneInfo

from agent.core.values import parse_duration
from agent.reports.trading import Period

CalendarPeriod = Literal["day", "week", "month"]


def parse_instant(value: datetime | date | str, tz: ZoneInfo) -> datetime:
    """An ISO date/datetime (naive means ``tz``) as an aware UTC datetime.

    A bare date means its midnight in ``tz``.
    """
    if isinstance(value, str):
        text = value.strip()
        try:
            value = datetime.fromisoformat(text.replace("Z", "+00:00"))
        except ValueError:
            raise ValueError(f"{text!r} is not a date or time; write it like 2024-03-15 or "
                             "2024-03-15T16:00:00+00:00") from None
    if not isinstance(value, datetime):  # a date
        value = datetime.combine(value, time.min)
    if value.tzinfo is None:
        value = value.replace(tzinfo=tz)
    return value.astimezone(UTC)


def resolve_period(
    *,
    period: CalendarPeriod | None,
    since: datetime | date | str | None,
    until: datetime | date | str | None,
    tz_name: str,
    now: datetime,
    complete: bool = False,
) -> Period:
    """The window a report covers.

    * ``until``: ``None`` or ``"now"`` means ``now``; else an ISO date/datetime.
    * ``since``: a duration (``16h``, ``7d``) back from ``until``, or an ISO date/datetime.
    * ``period`` (when ``since`` is not given): ``day`` is the calendar day of ``until`` in the
      timezone from its midnight, ``week`` the ISO week (from Monday 00:00), ``month`` the
      calendar month (from the 1st). When ``until`` is exactly that midnight the previous whole
      day (week, month) is meant, so ``until: 2024-03-16`` with ``period: day`` is all of the
      15th and ``until: 2024-04-01`` with ``period: month`` all of March.
    * ``complete`` (with ``period``, not ``since``): the last *whole* period ending at or before
      ``until``: ``until`` is first moved back to the start of the period it falls in, so a
      monthly review on the 1st at 04:00 covers all of the previous month, not four hours.
    """
    tz = ZoneInfo(tz_name)
    end = now.astimezone(UTC) if until is None or until == "now" else parse_instant(until, tz)
    if since is not None:
        if isinstance(since, str) and _is_duration(since):
            start = end - timedelta(seconds=parse_duration(since))
            label = f"last {since.strip()}"
        else:
            start = parse_instant(since, tz)
            label = ""
    else:
        kind = period or "day"
        local_end = end.astimezone(tz)
        midnight = datetime.combine(local_end.date(), time.min, tzinfo=tz)
        if complete:
            boundary = {"day": midnight, "week": midnight - timedelta(days=local_end.weekday()),
                        "month": midnight.replace(day=1)}[kind]
            end = boundary.astimezone(UTC)
            local_end = boundary
            midnight = boundary if kind == "day" else datetime.combine(boundary.date(), time.min, tzinfo=tz)
        if kind == "day":
            start_local = midnight if midnight < local_end else midnight - timedelta(days=1)
            label = f"day {start_local.date().isoformat()}"
        elif kind == "month":
            first = midnight.replace(day=1)
            if first >= local_end:
                first = (first - timedelta(days=1)).replace(day=1)
            start_local = first
            label = f"month {start_local:%Y-%m}"
        else:
            monday = midnight - timedelta(days=local_end.weekday())
            start_local = monday if monday < local_end else monday - timedelta(days=7)
            iso = start_local.isocalendar()
            label = f"week {iso.year}-W{iso.week:02d}"
        start = start_local.astimezone(UTC)
    if not label:
        label = f"{start.astimezone(tz):%Y-%m-%d %H:%M} to {end.astimezone(tz):%Y-%m-%d %H:%M} {tz_name}"
    return Period(since=start, until=end, label=label, timezone=tz_name)


def _is_duration(text: str) -> bool:
    try:
        parse_duration(text)
    except ValueError:
        return False
    return True
