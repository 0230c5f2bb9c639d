"""The digests' schedule in the team's zone: the job that sends a digest runs when the digest
is due (`digest_time`), once, also on the day the clocks skip or repeat its time."""

from __future__ import annotations

from datetime import date, timedelta
from zoneinfo import ZoneInfo

import pytest

from bot.app import PostingTrigger
from bot.domain.policy import MonthlyDigest, WeeklyDigest
from bot.domain.report import Period, period_of
from bot.services.digest import digest_time, monthly_digest_time

SWITCHES = [
    # Zones whose midnight jumps to 01:00: the whole first hour of the day does not exist.
    ("America/Santiago", "sun", "00:00", date(2026, 9, 6)),
    ("America/Santiago", "sun", "00:30", date(2026, 9, 6)),
    ("America/Havana", "sun", "00:00", date(2026, 3, 8)),
    ("Africa/Cairo", "fri", "00:15", date(2026, 4, 24)),
    # 02:00 -> 03:00, Lord Howe's 02:00 -> 02:30, and an hour that comes twice.
    ("America/New_York", "sun", "02:30", date(2026, 3, 8)),
    ("Australia/Lord_Howe", "sun", "02:15", date(2026, 10, 4)),
    ("America/New_York", "sun", "01:30", date(2026, 11, 1)),
    ("Europe/Berlin", "sun", "02:30", date(2026, 3, 29)),
    ("Europe/Berlin", "mon", "09:00", date(2026, 3, 30)),
]


@pytest.mark.parametrize(("zone", "day", "at", "switch"), SWITCHES)
def test_the_weekly_job_runs_when_the_digest_is_due(
    zone: str, day: str, at: str, switch: date
) -> None:
    # The job ran on the cron trigger: a day whose digest time the clocks skip after midnight
    # was passed over, and that week's digest and compliance alert were never sent.
    setting = WeeklyDigest(day=day, time=at)
    due = digest_time(period_of(switch - timedelta(days=7), zone), setting)
    assert due.astimezone(ZoneInfo(zone)).date() == switch
    trigger = PostingTrigger(at, zone, weekday=day)
    assert trigger.get_next_fire_time(None, due - timedelta(days=1)) == due
    assert trigger.get_next_fire_time(None, due) == due
    following = digest_time(period_of(switch, zone), setting)
    assert trigger.get_next_fire_time(due, due + timedelta(seconds=1)) == following


@pytest.mark.parametrize(
    ("zone", "day", "at", "switch"), [switch for switch in SWITCHES if switch[3].day <= 28]
)
def test_the_monthly_job_runs_when_the_digest_is_due(
    zone: str, day: str, at: str, switch: date
) -> None:
    setting = MonthlyDigest(day=switch.day, time=at)
    before = switch.replace(day=1) - timedelta(days=1)
    due = monthly_digest_time(Period(before.year, before.month, zone, "month"), setting)
    assert due.astimezone(ZoneInfo(zone)).date() == switch
    trigger = PostingTrigger(at, zone, day=switch.day)
    assert trigger.get_next_fire_time(None, due - timedelta(days=1)) == due
    following = monthly_digest_time(Period(switch.year, switch.month, zone, "month"), setting)
    assert trigger.get_next_fire_time(due, due + timedelta(seconds=1)) == following
