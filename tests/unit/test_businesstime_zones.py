"""Business time in zones whose daylight saving is unlike Sydney's, New York's or Berlin's 02:00
hour: Lord Howe Island moves its clocks by 30 minutes, Santiago's midnight jumps to 01:00 (and
repeats 23:00), Berlin 24x7 with Bavaria's holidays. The properties of
test_businesstime_properties.py, with fewer examples each: the calendar was right in every one
of these when they were written (this pins it)."""

from __future__ import annotations

from datetime import date, datetime, time, timedelta

import pytest
from hypothesis import example, given, settings
from hypothesis import strategies as st

from tests.unit.test_businesstime_properties import (
    MINUTE,
    MINUTES,
    MOMENTS,
    WEEKDAYS,
    Moment,
    Team,
    is_open_or_closing,
    local,
)

ZONES = {
    # Open 01:00-03:00 every day: Lord Howe's clocks go 02:00 -> 02:30 in October, 02:00 ->
    # 01:30 in April, inside the window.
    "lord_howe": Team("Australia/Lord_Howe", WEEKDAYS, time(1), time(3), ("AU-NSW",)),
    # 24x7 with Chile's holidays: midnight becomes 01:00 in September, 23:00 repeats in April.
    "santiago": Team("America/Santiago", WEEKDAYS, time(0), None, ("CL",)),
    # Open from midnight to 08:00, six days: Santiago's first hour is missing once a year.
    "santiago_early": Team("America/Santiago", WEEKDAYS[:6], time(0), time(8)),
    "berlin": Team("Europe/Berlin", WEEKDAYS, time(0), None, ("DE-BY",)),
}
NAMES = list(ZONES)
FEW = settings(max_examples=40, deadline=None)
zones = pytest.mark.parametrize("name", NAMES)


@zones
@FEW
@given(start=MOMENTS, minutes=MINUTES)
@example(start=local("dst", 0, "start", 0), minutes=60)
@example(start=local("dst", 1, "midnight", -30), minutes=90)
def test_business_time_added_is_business_time_elapsed(
    name: str, start: Moment, minutes: int
) -> None:
    team = ZONES[name]
    calendar, instant = team.calendar, start.at(team)
    due = calendar.add(instant, minutes)
    assert calendar.elapsed(instant, due) == minutes
    assert due >= instant + minutes * MINUTE
    if minutes:
        assert is_open_or_closing(team, due), (instant, due.astimezone(team.tz))


@zones
@FEW
@given(end=MOMENTS, minutes=MINUTES)
@example(end=local("dst", 0, "end", 0), minutes=120)
def test_counting_back_is_the_inverse_of_adding(name: str, end: Moment, minutes: int) -> None:
    team = ZONES[name]
    calendar, instant = team.calendar, end.at(team)
    start = calendar.before(instant, minutes)
    assert calendar.add(start, minutes) <= instant
    if minutes:
        assert calendar.add(start + timedelta(microseconds=1), minutes) > instant


@zones
@FEW
@given(start=MOMENTS, minutes=st.lists(MINUTES, max_size=4))
def test_several_steps_at_once_are_each_step(name: str, start: Moment, minutes: list[int]) -> None:
    team = ZONES[name]
    calendar, instant = team.calendar, start.at(team)
    assert calendar.add_all(instant, minutes) == [calendar.add(instant, m) for m in minutes]


@pytest.mark.parametrize(
    ("name", "day", "hours"),
    [
        ("lord_howe", date(2026, 10, 4), 1.5),  # 01:00 +10:30 to 03:00 +11:00
        ("lord_howe", date(2027, 4, 4), 2.5),  # 01:00 +11:00 to 03:00 +10:30
        ("lord_howe", date(2026, 4, 5), 0),  # Easter Sunday, a holiday in NSW
        ("lord_howe", date(2026, 10, 6), 2),
        ("santiago", date(2026, 9, 6), 23),  # midnight became 01:00
        ("santiago", date(2027, 4, 3), 25),  # 24:00 became 23:00 again
        ("santiago_early", date(2026, 9, 5), 8),
        ("berlin", date(2026, 3, 29), 23),
        ("berlin", date(2026, 10, 25), 25),
    ],
)
def test_a_day_counts_its_real_working_hours(name: str, day: date, hours: float) -> None:
    team = ZONES[name]
    opening = datetime.combine(day, time(0), team.tz)
    closing = datetime.combine(day + timedelta(days=1), time(0), team.tz)
    assert team.calendar.elapsed(opening, closing) == hours * 60


def test_lord_howe_s_half_hour_switch() -> None:
    """On 2026-10-04 the clock goes from 02:00 to 02:30: the 01:00-03:00 window holds 90
    minutes, so 90 business minutes from 00:30 end at 03:00, and 91 at 01:01 on Tuesday (the
    Monday is Labour Day in NSW)."""
    team = ZONES["lord_howe"]
    sunday = datetime(2026, 10, 4, 0, 30, tzinfo=team.tz)
    assert team.calendar.add(sunday, 90) == datetime(2026, 10, 4, 3, tzinfo=team.tz)
    assert team.calendar.add(sunday, 91) == datetime(2026, 10, 6, 1, 1, tzinfo=team.tz)
    assert team.calendar.before(datetime(2026, 10, 4, 3, tzinfo=team.tz), 90) == datetime(
        2026, 10, 4, 1, tzinfo=team.tz
    )
