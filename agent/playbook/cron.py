"""Crontab expressions with crontab's weekday numbers.

APScheduler 3.x ``CronTrigger.from_crontab`` reads day-of-week numbers with 0 = Monday, while
crontab (and every operator) means 0 = Sunday: ``0 8 * * 1-5`` would fire Tuesday to
Saturday (apscheduler issue 286, fixed only in 4.x). :func:`crontab_trigger` rewrites numeric
weekdays to names before building the trigger, so the schedule means what crontab means.
"""
from __future__ import annotations

import re
from datetime import tzinfo
from typing import Annotated

from apscheduler.triggers.cron import CronTrigger
from pydantic import AfterValidator

_DAY_NAMES = ("sun", "mon", "tue", "wed", "thu", "fri", "sat")
_PART_RE = re.compile(r"^(?:(\*)|(\d+)(?:-(\d+))?)(?:/(\d+))?$")


def _weekday_field(field: str) -> str:
    """Rewrite a crontab day-of-week field (0/7 = Sunday) into APScheduler's names."""
    out: list[str] = []
    for part in field.split(","):
        match = _PART_RE.match(part)
        if not match or part == "*":
            out.append(part)  # '*', names and name ranges mean the same in both
            continue
        star, first, last, step = match.groups()
        lo, hi = (0, 6) if star else (int(first), int(last) if last is not None else int(first))
        if step and not star and last is None:
            hi = 6  # "1/2": from Monday, every second day
        if not (0 <= lo <= 7 and 0 <= hi <= 7) or lo > hi:
            raise ValueError(f"day-of-week {part!r} is out of range 0-7 (0 and 7 are Sunday)")
        days = sorted({day % 7 for day in range(lo, hi + 1, int(step or 1))})
        out.extend(_DAY_NAMES[d] for d in days)
    return ",".join(out)


def crontab_trigger(expr: str, timezone: tzinfo | str | None = None) -> CronTrigger:
    """A trigger for a 5-field crontab expression, read with crontab semantics.

    Raises ``ValueError`` with APScheduler's explanation when the expression is invalid.
    """
    fields = expr.split()
    if len(fields) != 5:
        raise ValueError(f"a cron expression has 5 fields (minute hour day month weekday), got {len(fields)}")
    minute, hour, day, month, weekday = fields
    return CronTrigger(minute=minute, hour=hour, day=day, month=month,
                       day_of_week=_weekday_field(weekday), timezone=timezone)


_MONTHS = ("jan", "feb", "mar", "apr", "may", "jun", "jul", "aug", "sep", "oct", "nov", "dec")
_MONTH_DAYS = (31, 29, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31)  # February: 29 in a leap year


def _values(field: str, lo: int, hi: int, names: tuple[str, ...] = ()) -> set[int] | None:
    """The numbers a crontab field lists (``*/5``, ``1-5``, ``3,7``, ``feb``); None when the field
    has a form this does not read (APScheduler has accepted it: it is then not judged here)."""
    out: set[int] = set()
    for part in field.lower().split(","):
        for i, name in enumerate(names, start=lo):
            part = re.sub(rf"\b{name}\b", str(i), part)
        match = _PART_RE.match(part)
        if not match:
            return None
        star, first, last, step = match.groups()
        start, end = (lo, hi) if star else (int(first), int(last) if last is not None else int(first))
        if step and not star and last is None:
            end = hi
        out.update(range(start, end + 1, int(step or 1)))
    return out


def impossible_day(day: str, month: str) -> str | None:
    """Why a day-of-month field never matches in the months listed (``30`` in ``2``), or None."""
    days, months = _values(day, 1, 31), _values(month, 1, 12, _MONTHS)
    if not days or not months:
        return None
    if min(days) > max(_MONTH_DAYS[m - 1] for m in months if 1 <= m <= 12):
        listed = ", ".join(_MONTHS[m - 1].capitalize() for m in sorted(months))
        return (f"day {min(days)} never comes in {listed}: the schedule would never run" if len(days) == 1 else
                f"days {','.join(map(str, sorted(days)))} never come in {listed}: the schedule would never run")
    return None


def check_crontab(value: str) -> str:
    """A 5-field crontab expression that runs at some time, or ValueError naming what is wrong."""
    try:
        crontab_trigger(value)
    except ValueError as exc:
        raise ValueError(f"invalid cron expression {value!r}: {exc}") from None
    problem = impossible_day(value.split()[2], value.split()[3])
    if problem:
        raise ValueError(f"cron expression {value!r}: {problem}")
    return value


Crontab = Annotated[str, AfterValidator(check_crontab)]
"""A 5-field crontab expression (``0 8 * * 1-5``, 0 = Sunday), validated."""
