"""A crontab schedule runs each wall-clock time at most once, whatever the time zone does.

APScheduler 3.11 runs the times of the repeated hour twice on the night the clocks go back (a
daily 01:30 in New York at 01:30 EDT and again at 01:30 EST) and for some expressions hands back
the fire time it just made (agronholm/apscheduler#1021). The schedules of playbooks (their tasks:
a backup, a report, a maintenance play) and of the digest go through
:class:`agent.playbook.cron.WallClockOnce`; these tests walk a year of real offset changes in
several zones, fire by fire, as APScheduler's scheduler asks a trigger.
"""
from __future__ import annotations

from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from agent.playbook.cron import WallClockOnce, crontab_trigger
from agent.playbook.models import Schedule

ZONES = ["America/New_York", "Europe/London", "Europe/Berlin", "Australia/Lord_Howe", "America/Santiago",
         "Asia/Tehran", "Pacific/Chatham", "UTC"]
EXPRESSIONS = ["30 1 * * *", "*/20 1 * * *", "0 * * * *", "30 2 * * *", "*/7 0-3 * * *", "45 0,1,2 * * 0",
               "0 1 1 * *", "*/1 1 * * *"]


def fires(trigger: object, start: datetime, end: datetime) -> list[datetime]:
    out: list[datetime] = []
    previous, now = None, start
    while True:
        fire = trigger.get_next_fire_time(previous, now)  # type: ignore[attr-defined]
        if fire is None or fire.astimezone(UTC) > end:
            return out
        out.append(fire)
        previous, now = fire, fire  # what APScheduler's scheduler does after a run


def wall(fire: datetime, tz: ZoneInfo) -> datetime:
    """The wall-clock time of the instant ``fire`` (APScheduler hands a time of a spring-forward
    gap, e.g. 02:49 in Pacific/Chatham, as written: the instant is 03:49, the time read then)."""
    return fire.astimezone(UTC).astimezone(tz).replace(tzinfo=None)


def test_a_daily_time_of_the_repeated_hour_runs_once_on_the_night_the_clocks_go_back() -> None:
    zone = ZoneInfo("America/New_York")
    start = datetime(2026, 10, 31, 12, 0, tzinfo=zone)
    raw = fires(crontab_trigger("30 1 * * *", zone), start, start.astimezone(UTC) + timedelta(days=2))
    assert [f.astimezone(UTC).hour for f in raw] == [5, 6, 6]  # the defect: 01:30 EDT and 01:30 EST
    once = fires(Schedule(cron="30 1 * * *", timezone="America/New_York").trigger(), start,
                 start.astimezone(UTC) + timedelta(days=2))
    assert [f.astimezone(UTC).isoformat() for f in once] == ["2026-11-01T05:30:00+00:00", "2026-11-02T06:30:00+00:00"]


@settings(max_examples=40, deadline=None)
@given(zone=st.sampled_from(ZONES), expr=st.sampled_from(EXPRESSIONS), day=st.integers(0, 364))
def test_every_wall_clock_time_runs_once_in_order_and_none_is_lost(zone: str, expr: str, day: int) -> None:
    tz = ZoneInfo(zone)
    start = (datetime(2026, 1, 1, tzinfo=UTC) + timedelta(days=day)).astimezone(tz)
    end = start.astimezone(UTC) + timedelta(days=9)
    once = fires(WallClockOnce(crontab_trigger(expr, tz)), start, end)
    instants = [f.astimezone(UTC) for f in once]
    walls = [wall(f, tz) for f in once]
    assert instants == sorted(set(instants)), "runs in order, never the same instant twice"
    assert walls == sorted(set(walls)), "each wall-clock time once, in order"
    # Nothing else is lost: every wall-clock time the raw trigger reaches is run, once.
    raw_walls = {wall(f, tz) for f in fires(crontab_trigger(expr, tz), start, end)}
    assert set(walls) == raw_walls


@pytest.mark.parametrize("zone", ZONES)
def test_a_year_of_offset_changes_never_stalls(zone: str) -> None:
    tz = ZoneInfo(zone)
    start = datetime(2026, 1, 1, tzinfo=tz)
    once = fires(Schedule(cron="*/20 0-3 * * *", timezone=zone).trigger(), start,
                 start.astimezone(UTC) + timedelta(days=366))
    assert 366 * 12 + 1 - 2 * 3 <= len(once) <= 366 * 12 + 1  # at most the skipped hour's times are missing
