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


def check_crontab(value: str) -> str:
    """A 5-field crontab expression, or ValueError naming what is wrong."""
    try:
        crontab_trigger(value)
    except ValueError as exc:
        raise ValueError(f"invalid cron expression {value!r}: {exc}") from None
    return value


Crontab = Annotated[str, AfterValidator(check_crontab)]
"""A 5-field crontab expression (``0 8 * * 1-5``, 0 = Sunday), validated."""
