"""Crontab expressions with crontab's weekday numbers.

APScheduler 3.x ``CronTrigger.from_crontab`` reads day-of-week numbers with 0 = Monday, while
crontab (and every operator) means 0 = Sunday: ``0 8 * * 1-5`` would fire Tuesday to
Saturday (apscheduler issue 286, fixed only in 4.x). :func:`crontab_trigger` rewrites numeric
weekdays to names before building the trigger, so the schedule means what crontab means.
"""
from __future__ import annotations

import functools
import re
from datetime import UTC, date, datetime, timedelta, tzinfo
from typing import Annotated, Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from apscheduler.triggers.base import BaseTrigger
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


_NICKNAMES = {"@yearly": "0 0 1 1 *", "@annually": "0 0 1 1 *", "@monthly": "0 0 1 * *", "@weekly": "0 0 * * 0",
              "@daily": "0 0 * * *", "@midnight": "0 0 * * *", "@hourly": "0 * * * *"}


def crontab_trigger(expr: str, timezone: tzinfo | str | None = None) -> CronTrigger:
    """A trigger for a 5-field crontab expression, read with crontab semantics.

    Raises ``ValueError`` with APScheduler's explanation when the expression is invalid.
    """
    fields = expr.split()
    if len(fields) == 1 and fields[0].lower() in _NICKNAMES:  # crontab's @daily & co: said with the fields
        raise ValueError(f"{fields[0]!r} is a crontab nickname, not read here: write its 5 fields, "
                         f"\"{_NICKNAMES[fields[0].lower()]}\"")
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


def day_fields_trap(expr: str) -> tuple[str, str] | None:
    """(message, hint) when a crontab expression restricts both the day of the month and the
    day of the week. crontab (Vixie, cronie, POSIX) then runs on days matching *either*; the
    agent's APScheduler ``CronTrigger`` runs only on days matching *both*: the same line means two
    different schedules, and the operator cannot tell which was meant."""
    fields = expr.split()
    if len(fields) != 5:
        return None
    day, weekday = fields[2], fields[4]
    if day in ("*", "?") or weekday in ("*", "?"):
        return None
    return (f"day of month {day!r} and day of week {weekday!r} are both set: crontab runs on days that "
            "match either, this agent only on days that match both (with '1 * 1': only a Monday that is "
            "the 1st, not every Monday and every 1st)",
            "set one of the two to *; to run on either kind of day write two schedules (two plays), and "
            "for 'the first Monday' write day 1-7 with the weekday, which is what this agent reads")


def dst_trap(expr: str, timezone: str, *, around: datetime | None = None) -> tuple[str, str] | None:
    """(message, hint) when, in ``timezone``, the schedule would run twice, at another time than
    written, or not advance at a daylight-saving change of the coming year (from ``around``,
    default now), as APScheduler's ``CronTrigger`` computes it. Found by asking the trigger itself
    for its fire times around each change, not by a rule of thumb: APScheduler 3.11 runs a time of
    the repeated hour twice, moves a time of the skipped hour to the hour after, and for some
    expressions returns the same fire time again (agronholm/apscheduler#1021, open for 3.x)."""
    try:
        zone = ZoneInfo(timezone)
        trigger = crontab_trigger(expr, zone)
        wall = crontab_trigger(expr, UTC)
    except (ValueError, KeyError, ZoneInfoNotFoundError):
        return None
    start = (around or datetime.now(UTC)).astimezone(UTC).replace(minute=0, second=0, microsecond=0)
    twice: set[str] = set()
    moved: set[str] = set()
    stuck = False
    for change in _offset_changes(zone, start, start + timedelta(days=366)):
        now, previous, seen = change - timedelta(hours=4), None, set()
        for _ in range(600):
            fire = trigger.get_next_fire_time(previous, now)
            if fire is None or fire > change + timedelta(hours=4):
                break
            if previous is not None and fire.astimezone(UTC) <= previous.astimezone(UTC):  # same tzinfo: wall times
                stuck = True
                break
            local = fire.astimezone(UTC).astimezone(zone).replace(tzinfo=None)  # not the trigger's own wall time
            if local in seen:
                twice.add(local.strftime("%H:%M"))
            seen.add(local)
            as_written = local.replace(tzinfo=UTC)
            if wall.get_next_fire_time(None, as_written) != as_written:
                moved.add(local.strftime("%H:%M"))
            previous, now = fire, fire + timedelta(seconds=1)
    if not (twice or moved or stuck):
        return None
    said = []
    if twice:
        said.append(f"runs twice at {', '.join(sorted(twice))} on the night the clocks go back")
    if moved:
        said.append(f"runs at {', '.join(sorted(moved))} instead of the time written on the night the clocks "
                    "go forward (that time does not exist)")
    if stuck:
        said.append("at a change of the clocks gets the run it just made back from APScheduler as its next "
                    "run (agronholm/apscheduler#1021)")
    return (f"in {timezone} this schedule " + " and ".join(said),
            "use timezone: UTC (and write the time in UTC), or a time outside the hours the clocks change "
            "(usually 01:00-03:00 local)")


def _offset_changes(zone: ZoneInfo, start: datetime, end: datetime) -> list[datetime]:
    """The instants (UTC, to the minute) at which ``zone``'s UTC offset changes in [start, end)."""
    out: list[datetime] = []
    t = start
    offset = t.astimezone(zone).utcoffset()
    while t < end:
        after = t + timedelta(hours=1)
        if after.astimezone(zone).utcoffset() != offset:
            lo, hi = t, after
            while hi - lo > timedelta(minutes=1):
                mid = lo + (hi - lo) / 2
                lo, hi = (mid, hi) if mid.astimezone(zone).utcoffset() == offset else (lo, mid)
            out.append(hi.replace(second=0, microsecond=0))
            offset = after.astimezone(zone).utcoffset()
        t = after
    return out


_POSIX_OFFSET = re.compile(r"^(?:Etc/)?GMT([+-])(\d{1,2})$")
_FIXED_LEGACY = {"EST": ("UTC-5", "America/New_York"), "MST": ("UTC-7", "America/Denver or America/Phoenix"),
                 "HST": ("UTC-10", "Pacific/Honolulu")}


def timezone_trap(timezone: str) -> tuple[str, str] | None:
    """(message, hint) when ``timezone`` is a fixed offset that reads as something else: a POSIX
    ``Etc/GMT+2`` is two hours *behind* UTC (the sign counts backwards), and the legacy ``EST``,
    ``MST``, ``HST`` never change for summer time, unlike the places they are named after."""
    match = _POSIX_OFFSET.match(timezone)
    if match and int(match[2]):
        actual = f"UTC{'-' if match[1] == '+' else '+'}{int(match[2])}"
        return (f"timezone {timezone!r} is {actual}: POSIX zone names count the offset backwards, and it never "
                "changes for summer time", "write UTC (and convert the times), or the place whose clock is "
                "meant (e.g. Europe/Berlin)")
    if timezone in _FIXED_LEGACY:
        offset, place = _FIXED_LEGACY[timezone]
        return (f"timezone {timezone!r} is {offset} all year: it does not follow the summer time of the place "
                "it is named after", f"write {place} for local time there, or UTC")
    return None


def schedule_traps(cron: str | None, timezone: str) -> list[tuple[str, str]]:
    """(message, hint) of each way a cron schedule reads differently from what it seems to say."""
    if not cron:
        return []
    found = [day_fields_trap(cron)]
    if timezone.upper() not in ("UTC", "ETC/UTC", "GMT", "ETC/GMT", "Z"):
        found.append(_dst_trap_on(cron, timezone, datetime.now(UTC).date()))
    return [f for f in found if f is not None]


@functools.lru_cache(maxsize=256)
def _dst_trap_on(cron: str, timezone: str, day: date) -> tuple[str, str] | None:
    """:func:`dst_trap` from the start of ``day``: asked once a day per schedule (about 60 ms
    each), not at every reload."""
    return dst_trap(cron, timezone, around=datetime(day.year, day.month, day.day, tzinfo=UTC))


class WallClockOnce(BaseTrigger):
    """A crontab schedule that runs each wall-clock time at most once, as cron does.

    APScheduler 3.11's ``CronTrigger`` runs the times of the repeated hour twice on the night the
    clocks go back (a daily 01:30 in America/New_York runs at 01:30 EDT and again at 01:30 EST: a
    backup, a report, a maintenance play twice), and for some expressions hands back the fire time
    it just made (agronholm/apscheduler#1021). This wrapper asks the inner trigger again past any
    fire whose local wall-clock time is not after the previous fire's (the repeated hour, skipped:
    Vixie cron's rule for fixed times), and past any fire not after the previous one in absolute
    time. ``agent validate`` also warns about such schedules (:func:`dst_trap`)."""

    MAX_SKIPS = 10_000
    """A bound on the fires looked past (the repeated hour of a schedule every minute: 60)."""

    def __init__(self, inner: CronTrigger) -> None:
        self.inner = inner

    def get_next_fire_time(self, previous_fire_time: datetime | None, now: datetime) -> datetime | None:
        fire = self.inner.get_next_fire_time(previous_fire_time, now)
        if previous_fire_time is None:
            return fire
        # Instants compared and moved in UTC: two datetimes of one zone compare, and add, as wall
        # times (01:00 EST sorts before 01:40 EDT; a second after 01:30 EST is 01:30:01 EDT).
        before = previous_fire_time.astimezone(UTC)
        for _ in range(self.MAX_SKIPS):
            if fire is None:
                return None
            at = fire.astimezone(UTC)
            if at > before and fire.replace(tzinfo=None) > previous_fire_time.astimezone(fire.tzinfo).replace(tzinfo=None):
                return fire
            fire = self.inner.get_next_fire_time(None, max(at, before) + timedelta(seconds=1))
        return None

    def __str__(self) -> str:
        return f"{self.inner} (each wall-clock time once)"


def timezone_unused(schedule: Any) -> tuple[str, str] | None:
    """``(message, hint)`` when a schedule writes a ``timezone`` beside ``every``: an interval runs
    every so long from the start whatever the clock says, so the timezone is ignored (it was meant
    for a time of day: a cron schedule)."""
    if getattr(schedule, "every", None) is None or "timezone" not in schedule.model_fields_set:
        return None
    return ("timezone is ignored: an 'every' schedule runs at an interval, not at a time of day",
            "remove timezone:, or write a cron schedule for a time of day (cron: \"0 8 * * *\", timezone: ...)")
