"""Business-time durations and the working calendar: what "due in 2h" means to a team."""

from __future__ import annotations

from datetime import UTC, date, datetime, time, timedelta
from zoneinfo import ZoneInfo

import holidays
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from bot.domain.businesstime import WEEKDAYS, BusinessCalendar
from bot.domain.durations import Clock, Duration, span_words, words
from bot.domain.policy import Policy, holiday_region, parse_policy

SYDNEY = ZoneInfo("Australia/Sydney")
LOS_ANGELES = ZoneInfo("America/Los_Angeles")
NSW = holiday_region("AU-NSW")
US_CA = holiday_region("US-CA")


def sydney(year: int, month: int, day: int, hour: int = 0, minute: int = 0) -> datetime:
    return datetime(year, month, day, hour, minute, tzinfo=SYDNEY)


def los_angeles(year: int, month: int, day: int, hour: int = 0, minute: int = 0) -> datetime:
    return datetime(year, month, day, hour, minute, tzinfo=LOS_ANGELES)


def us_calendar() -> BusinessCalendar:
    return BusinessCalendar(
        "America/Los_Angeles",
        WEEKDAYS[:5],
        time(9),
        time(17),
        is_holiday=lambda day: day in US_CA,
    )


def round_the_clock_policy() -> Policy:
    return parse_policy(
        {
            "timezone": "Australia/Sydney",
            "business_hours": {"days": list(WEEKDAYS), "start": "00:00", "end": "24:00"},
            "channels": {"marketing_feedback": "C0MKTFEED"},
            "segments": [{"name": "all", "channel": "C0ALL", "reps": ["U0REP1"]}],
            "tiers": [{"name": "any", "first_touch": "2h"}],
            "dispositions": [{"code": "qualified", "label": "Qualified", "outcome": "sql"}],
        }
    )


def is_open_at(calendar: BusinessCalendar, instant: datetime) -> bool:
    """Inside working hours of a working day, counting closing time (a deadline may land there)."""
    local = instant.astimezone(calendar.zone)
    if calendar.end is None:  # open until midnight
        return calendar.is_working_day(local.date()) or local.time() == time(0)
    return calendar.is_working_day(local.date()) and calendar.start < local.time() <= calendar.end


INSTANTS = st.datetimes(
    min_value=datetime(2026, 1, 1), max_value=datetime(2028, 12, 31), timezones=st.just(UTC)
)
MINUTES = st.integers(min_value=0, max_value=6000)
PROPERTY = settings(max_examples=100, deadline=None)


# --- durations -------------------------------------------------------------------------------


CALENDAR, BUSINESS = Clock.CALENDAR, Clock.BUSINESS


@pytest.mark.parametrize(
    ("text", "days", "minutes"),
    [
        ("30m", 0, 30),
        ("2h", 0, 120),
        ("3d", 3, 0),
        ("2w", 14, 0),
        ("1h30m", 0, 90),
        ("24h", 1, 0),  # 24 hours of elapsed time is one calendar day
        ("72h", 3, 0),
        (" 1d 2h ", 1, 120),
        ("2 hours", 0, 120),
        ("3 days", 3, 0),
    ],
)
def test_a_compact_duration_is_calendar_time(text: str, days: int, minutes: int) -> None:
    assert Duration.parse(text) == Duration(days=days, minutes=minutes, clock=CALENDAR)


@pytest.mark.parametrize(
    "text", ["h", "", "  ", "1.5h", "30", "-2h", "2h!", "24h, please", "1bd 4bh x"]
)
def test_duration_refuses_what_is_not_a_duration(text: str) -> None:
    with pytest.raises(ValueError, match="is not a duration: write calendar time: 30m, 24h"):
        Duration.parse(text)


def test_a_number_of_any_size_is_a_duration_or_a_value_error() -> None:
    # Python's ints do not overflow: the callers (`/handoff away`) need catch only ValueError.
    assert Duration.parse("99999999999999w").days == 7 * 99999999999999
    assert Duration.parse("9" * 4300 + "bd").days == int("9" * 4300)
    with pytest.raises(ValueError, match="is not a duration"):  # past int()'s 4300 digits
        Duration.parse("9" * 4301 + "d")


def test_an_unknown_unit_is_named_with_the_forms() -> None:
    with pytest.raises(ValueError) as caught:
        Duration.parse("2x")
    assert str(caught.value) == (
        "'2x': 'x' is not a unit of time: write calendar time: 30m, 24h, 3d, 2w; business "
        "time: 2 business hours, 1 business day, 30 business minutes (or 2bh, 1bd, 30bm)"
    )


@pytest.mark.parametrize("text", ["1mo", "2 months", "1 month"])
def test_there_is_no_month_unit(text: str) -> None:
    with pytest.raises(ValueError, match=r"there is no month unit .* like 4w or 30d"):
        Duration.parse(text)


def test_one_duration_has_one_clock() -> None:
    with pytest.raises(ValueError, match="mixes calendar and business time"):
        Duration.parse("1bd 2h")


@pytest.mark.parametrize(
    "text",
    [
        "30m",
        "24h",
        "72h",
        "3d",
        "10d",
        "2w",
        "1h30m",
        "4d12h",
        "7d30m",  # a week and a half hour is not `1w`
        "90m",
        "2 business hours",
        "1 business day",
        "30bm",
        "1bd 4bh",
        "3bd",
        "1bd 1bh 30bm",
        "2 hours 30 minutes",
    ],
)
def test_str_and_words_parse_back_to_the_same_duration(text: str) -> None:
    duration = Duration.parse(text)
    assert Duration.parse(str(duration)) == duration
    assert Duration.parse(duration.words) == duration


@pytest.mark.parametrize(
    ("text", "shown", "spoken"),
    [
        ("24h", "24h", "24 hours"),
        ("72h", "72h", "72 hours"),
        ("3d", "72h", "72 hours"),
        ("10d", "10d", "10 days"),
        ("14d", "2w", "2 weeks"),
        ("2bh", "2 business hours", "2 business hours"),
        ("1bd", "1 business day", "1 business day"),
    ],
)
def test_a_duration_says_its_clock(text: str, shown: str, spoken: str) -> None:
    duration = Duration.parse(text)
    assert (str(duration), duration.words) == (shown, spoken)


@pytest.mark.parametrize("text", ["0h", "0m", "0d0h"])
def test_duration_refuses_zero(text: str) -> None:
    with pytest.raises(ValueError, match="is zero"):
        Duration.parse(text)


def test_a_business_day_is_the_calendar_s_working_day_and_a_calendar_day_is_24_hours() -> None:
    assert Duration.parse("2bd 30bm").total_minutes(480) == 2 * 480 + 30
    assert Duration.parse("2d30m").total_minutes(480) == 2 * 1440 + 30
    assert str(Duration.parse("1h30m")) == "1h30m"
    assert str(Duration.parse("10d")) == "10d"


def test_business_time_has_no_fixed_length() -> None:
    """`2 business hours` from Friday 16:00 ends Monday 10:00: it has no elapsed length of its
    own, so asking for one is refused rather than answered as two hours."""
    assert Duration.parse("24h").delta == timedelta(hours=24)
    with pytest.raises(ValueError, match="is business time: its length depends on the calendar"):
        _ = Duration.parse("2 business hours").delta


def test_the_touch_interval_is_whole_minutes_and_at_least_one() -> None:
    """`within ÷ min_attempts` (the follow-up cadence's interval): 6 attempts within 2 weeks
    is a touch every 56 hours; 7 within an hour every 8 minutes (8.57 cut to whole minutes);
    6 within 5 minutes every minute, never every 0 minutes."""
    assert Duration.parse("2w").scaled(1, 6, 480) == Duration.parse("56h")
    assert Duration.parse("1h").scaled(1, 7, 480) == Duration(minutes=8, clock=CALENDAR)
    assert Duration.parse("5m").scaled(1, 6, 480) == Duration(minutes=1, clock=CALENDAR)
    assert Duration.parse("1bd").scaled(1, 3, 480) == Duration.parse("160 business minutes")


def test_elapsed_calendar_time_backwards_is_none(policy: Policy) -> None:
    """Elapsed (calendar) minutes from a later instant to an earlier one are 0, as business
    minutes are: "overdue by" never shows a negative span."""
    later, earlier = sydney(2026, 11, 24, 12), sydney(2026, 11, 24, 10)
    assert policy.calendar.elapsed(later, earlier, Clock.CALENDAR) == 0
    assert policy.calendar.elapsed(earlier, later, Clock.CALENDAR) == 120


def test_a_deadline_due_at_the_question_s_instant_stays_passed(policy: Policy) -> None:
    """A deadline held at the very instant it falls due (a question to marketing asked then)
    was missed: the answer an hour later does not move it (bot/domain/businesstime.py
    `carried`: one already passed at `held` stays passed)."""
    from bot.domain.businesstime import carried

    due = sydney(2026, 11, 24, 12)
    answered = sydney(2026, 11, 24, 13)
    for clock in (Clock.CALENDAR, Clock.BUSINESS):
        assert carried(due, clock, due, answered, policy.calendar) == due
    ahead = carried(due, Clock.CALENDAR, due - timedelta(minutes=1), answered, policy.calendar)
    assert ahead == answered + timedelta(minutes=1)


def test_a_duration_without_a_clock_is_business_time() -> None:
    """What a snapshot stored before durations carried their clock meant."""
    assert Duration(days=1).clock is BUSINESS


@pytest.mark.parametrize(
    ("minutes", "text"),
    [(0, "0m"), (45, "45m"), (60, "1h"), (80, "1h 20m"), (120, "2h"), (1500, "25h"), (-5, "0m")],
)
def test_words_reads_like_a_person_would_say_it(minutes: int, text: str) -> None:
    assert words(minutes) == text


# --- the example SLA's calendar: Sydney, Mon-Fri 09:00-17:00, AU-NSW, two shutdown days -------


def test_friday_afternoon_rolls_over_the_weekend(policy: Policy) -> None:
    due = policy.calendar.add(sydney(2026, 11, 20, 16), Duration.parse("2bh"))
    assert due == sydney(2026, 11, 23, 10)
    assert due.tzinfo is UTC


def test_a_lead_before_opening_counts_from_opening(policy: Policy) -> None:
    assert policy.calendar.add(sydney(2026, 11, 24, 7, 30), 30) == sydney(2026, 11, 24, 9, 30)
    assert policy.calendar.elapsed(sydney(2026, 11, 24, 7), sydney(2026, 11, 24, 9, 45)) == 45


def test_a_lead_after_closing_counts_from_next_opening(policy: Policy) -> None:
    assert policy.calendar.add(sydney(2026, 11, 24, 18), 60) == sydney(2026, 11, 25, 10)


def test_a_deadline_may_land_exactly_at_closing(policy: Policy) -> None:
    assert policy.calendar.add(sydney(2026, 11, 24, 15), 120) == sydney(2026, 11, 24, 17)


def test_a_message_at_closing_time_waits_for_the_next_opening(policy: Policy) -> None:
    """A deadline may land at 17:00, but nobody is at work then: a calendar-time reminder that
    falls at Friday 17:00 exactly (and a lead arriving then, for the daily cap) waits for Monday
    09:00; one minute before closing it goes out as it is."""
    calendar = policy.calendar
    assert calendar.at_work(sydney(2026, 11, 20, 17)) == sydney(2026, 11, 23, 9)
    assert calendar.at_work(sydney(2026, 11, 20, 16, 59)) == sydney(2026, 11, 20, 16, 59)
    assert calendar.at_work(sydney(2026, 11, 20, 8)) == sydney(2026, 11, 20, 9)


def test_working_days_count_in_days_of_working_hours(policy: Policy) -> None:
    assert policy.calendar.minutes_per_day == 8 * 60
    assert policy.calendar.add(sydney(2026, 11, 23, 10), Duration(days=3)) == sydney(
        2026, 11, 26, 10
    )


def test_nsw_christmas_holidays_and_shutdown_days_are_skipped(policy: Policy) -> None:
    # What the holidays package says about NSW (checked, not guessed): Christmas falls on a
    # Friday in 2026 and Boxing Day on a Saturday, observed on Monday the 28th.
    assert date(2026, 12, 25) in NSW
    assert date(2026, 12, 26) in NSW
    assert date(2026, 12, 28) in NSW
    assert date(2026, 12, 29) not in NSW
    calendar = policy.calendar
    for day in (24, 25, 26, 27, 28):  # 24th: company shutdown; 26th-27th: weekend
        assert not calendar.is_working_day(date(2026, 12, day)), day
    assert calendar.is_working_day(date(2026, 12, 29))
    due = calendar.add(sydney(2026, 12, 23, 16), Duration.parse("2 business hours"))
    assert due == sydney(2026, 12, 29, 10)
    assert calendar.elapsed(sydney(2026, 12, 23, 16), due) == 120


def test_new_year_shutdown_and_public_holiday_are_skipped(policy: Policy) -> None:
    assert date(2027, 1, 1) in NSW
    # 31 Dec is a shutdown day, 1 Jan a public holiday, then the weekend.
    due = policy.calendar.add(sydney(2026, 12, 30, 16, 30), 60)
    assert due == sydney(2027, 1, 4, 9, 30)


def test_every_nsw_public_holiday_on_a_weekday_is_closed(policy: Policy) -> None:
    listed = holidays.country_holidays("AU", subdiv="NSW", years=[2026, 2027])
    weekday_holidays = [day for day in listed if day.weekday() < 5]
    assert len(weekday_holidays) >= 16
    for day in weekday_holidays:
        assert not policy.calendar.is_working_day(day), (day, listed[day])


def test_sydney_dst_start_keeps_working_hours(policy: Policy) -> None:
    # DST starts Sun 2026-10-04; Mon 2026-10-05 is Labour Day in NSW.
    assert date(2026, 10, 5) in NSW
    start = sydney(2026, 10, 2, 16)  # AEST, UTC+10
    due = policy.calendar.add(start, 120)
    assert due == sydney(2026, 10, 6, 10)  # AEDT, UTC+11
    assert due == datetime(2026, 10, 5, 23, tzinfo=UTC)
    assert policy.calendar.elapsed(start, due) == 120


def test_an_opening_the_clocks_skip_is_the_jump_to_the_second() -> None:
    """A seven-day desk opening at 02:01 or 02:06 Sydney time: on Sunday 4 October 2026 the
    clocks jump from 02:00 to 03:00 (AEDT), so those openings never show on the wall clock and
    the desk opens at 03:00:00 sharp, not a second later (a lead at 03:00 is in working time)."""
    for minute in (1, 6, 30):
        calendar = BusinessCalendar("Australia/Sydney", WEEKDAYS, time(2, minute), time(12))
        window = calendar.working_window(date(2026, 10, 4))
        assert window is not None
        assert window[0] == sydney(2026, 10, 4, 3) == datetime(2026, 10, 3, 16, tzinfo=UTC)


def test_sydney_dst_end_keeps_working_hours(policy: Policy) -> None:
    # DST ends Sun 2027-04-04; Mon 2027-04-05 is an ordinary working day.
    assert date(2027, 4, 5) not in NSW
    start = sydney(2027, 4, 2, 16)  # AEDT, UTC+11
    due = policy.calendar.add(start, 120)
    assert due == sydney(2027, 4, 5, 10)  # AEST, UTC+10
    assert due == datetime(2027, 4, 5, 0, tzinfo=UTC)
    assert policy.calendar.elapsed(start, due) == 120


def test_elapsed_is_zero_when_end_is_not_after_start(policy: Policy) -> None:
    calendar = policy.calendar
    assert calendar.elapsed(sydney(2026, 11, 24, 12), sydney(2026, 11, 24, 10)) == 0
    assert calendar.elapsed(sydney(2026, 11, 24, 12), sydney(2026, 11, 24, 12)) == 0


def test_elapsed_over_a_weekend_counts_only_working_hours(policy: Policy) -> None:
    assert policy.calendar.elapsed(sydney(2026, 11, 20, 16), sydney(2026, 11, 23, 10)) == 120
    assert policy.calendar.elapsed(sydney(2026, 11, 21, 10), sydney(2026, 11, 22, 16)) == 0


def test_us_calendar_skips_thanksgiving_and_the_day_after() -> None:
    assert date(2026, 11, 26) in US_CA
    assert date(2026, 11, 27) in US_CA
    calendar = us_calendar()
    due = calendar.add(los_angeles(2026, 11, 25, 16), Duration.parse("2bh"))
    assert due == los_angeles(2026, 11, 30, 10)


def test_us_calendar_across_dst_start() -> None:
    # Los Angeles springs forward on Sun 2026-03-08.
    start = los_angeles(2026, 3, 6, 16)  # PST, UTC-8
    due = us_calendar().add(start, 120)
    assert due == los_angeles(2026, 3, 9, 10)  # PDT, UTC-7
    assert due == datetime(2026, 3, 9, 17, tzinfo=UTC)


# --- a 24x7 team --------------------------------------------------------------------------------


def test_round_the_clock_calendar_never_closes() -> None:
    calendar = round_the_clock_policy().calendar
    assert calendar.minutes_per_day == 24 * 60
    assert calendar.is_working_day(date(2026, 12, 25))  # no holiday region configured
    assert calendar.add(sydney(2026, 11, 21, 23, 30), 120) == sydney(2026, 11, 22, 1, 30)
    assert calendar.add(sydney(2026, 11, 21, 12), Duration(days=1)) == sydney(2026, 11, 22, 12)


def test_round_the_clock_calendar_across_dst_counts_real_hours() -> None:
    calendar = round_the_clock_policy().calendar
    start = sydney(2026, 10, 4, 1)  # clocks jump from 02:00 AEST to 03:00 AEDT
    due = calendar.add(start, 120)
    assert due - start == timedelta(hours=2)
    assert due == sydney(2026, 10, 4, 4)
    assert calendar.elapsed(start, due) == 120
    assert calendar.elapsed(sydney(2026, 10, 3, 12), sydney(2026, 10, 5, 12)) == 47 * 60


# --- properties: the Sydney calendar, a US-CA calendar and a 24x7 one -----------------------


@pytest.fixture(scope="module", params=["sydney", "us-ca", "24x7"])
def calendar(request: pytest.FixtureRequest, policy: Policy) -> BusinessCalendar:
    if request.param == "24x7":
        return round_the_clock_policy().calendar
    return policy.calendar if request.param == "sydney" else us_calendar()


@PROPERTY
@given(start=INSTANTS, first=MINUTES, second=MINUTES)
def test_adding_in_two_steps_equals_adding_once(
    calendar: BusinessCalendar, start: datetime, first: int, second: int
) -> None:
    assert calendar.add(calendar.add(start, first), second) == calendar.add(start, first + second)


@PROPERTY
@given(start=INSTANTS, minutes=MINUTES)
def test_elapsed_undoes_add_from_any_instant(
    calendar: BusinessCalendar, start: datetime, minutes: int
) -> None:
    # Holds from closed time too: the clock starts at the next opening.
    assert calendar.elapsed(start, calendar.add(start, minutes)) == minutes


def test_elapsed_is_exact_for_instants_with_seconds(policy: Policy) -> None:
    # Regression: float minutes once made this 359 (a 6h speed-to-lead shown as 5h 59m).
    start = datetime(2026, 1, 2, 0, 0, 21, 495, tzinfo=UTC)
    due = policy.calendar.add(start, 360)
    assert due == datetime(2026, 1, 4, 22, 0, 21, 495, tzinfo=UTC)
    assert policy.calendar.elapsed(start, due) == 360


@PROPERTY
@given(start=INSTANTS, minutes=st.integers(min_value=1, max_value=6000))
def test_a_deadline_never_lands_in_closed_time(
    calendar: BusinessCalendar, start: datetime, minutes: int
) -> None:
    due = calendar.add(start, minutes)
    assert due > start
    assert is_open_at(calendar, due), due.astimezone(calendar.zone)


@PROPERTY
@given(start=INSTANTS, end=INSTANTS)
def test_elapsed_never_exceeds_wall_clock_time(
    calendar: BusinessCalendar, start: datetime, end: datetime
) -> None:
    elapsed = calendar.elapsed(start, end)
    assert 0 <= elapsed <= max(0, (end - start) // timedelta(minutes=1))


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("2 business hours", Duration(minutes=120)),
        ("1 business day", Duration(days=1)),
        ("30 business minutes", Duration(minutes=30)),
        ("2bh", Duration(minutes=120)),
        ("1bd", Duration(days=1)),
        ("30bm", Duration(minutes=30)),
    ],
)
def test_the_spec_s_explicit_business_forms_read_as_business_time(
    text: str, expected: Duration
) -> None:
    assert Duration.parse(text) == expected


@pytest.mark.parametrize("text", ["2 business weeks", "business hours", "0 business days"])
def test_a_malformed_business_duration_is_refused(text: str) -> None:
    with pytest.raises(ValueError):
        Duration.parse(text)


# --- calendar and business arithmetic: `add` and `before` honour the duration's clock ------


def test_friday_afternoon_24h_is_saturday_afternoon_but_1bd_is_monday(policy: Policy) -> None:
    friday = sydney(2026, 11, 20, 16)
    assert policy.calendar.add(friday, Duration.parse("24h")) == sydney(2026, 11, 21, 16)
    assert policy.calendar.add(friday, Duration.parse("1bd")) == sydney(2026, 11, 23, 16)
    assert policy.calendar.add(friday, Duration.parse("2bh")) == sydney(2026, 11, 23, 10)
    assert policy.calendar.add(friday, Duration.parse("2h")) == sydney(2026, 11, 20, 18)


def test_before_goes_back_on_the_duration_s_clock(policy: Policy) -> None:
    monday = sydney(2026, 11, 23, 10)
    assert policy.calendar.before(monday, Duration.parse("24h")) == sydney(2026, 11, 22, 10)
    assert policy.calendar.before(monday, Duration.parse("2bh")) == sydney(2026, 11, 20, 16)
    assert policy.calendar.before(monday, Duration.parse("2w")) == sydney(2026, 11, 9, 10)


def test_a_calendar_day_is_24_hours_across_daylight_saving(policy: Policy) -> None:
    """Sydney springs forward on Sunday 2026-10-04 (02:00 → 03:00): 24 hours after Saturday
    12:00 is Sunday 13:00 on the wall clock; a business day stays on the working hours."""
    saturday = sydney(2026, 10, 3, 12)
    assert policy.calendar.add(saturday, Duration.parse("1d")) == sydney(2026, 10, 4, 13)
    assert policy.calendar.before(sydney(2026, 10, 4, 13), Duration.parse("24h")) == saturday
    # Monday 2026-10-05 is Labour Day in NSW: one business day from Friday 10:00 is Tuesday's.
    friday = sydney(2026, 10, 2, 10)
    assert policy.calendar.add(friday, Duration.parse("1bd")) == sydney(2026, 10, 6, 10)
    # Autumn back (2027-04-04, 03:00 → 02:00): 24 hours after Saturday 12:00 is Sunday 11:00.
    autumn = sydney(2027, 4, 3, 12)
    assert policy.calendar.add(autumn, Duration.parse("24h")) == sydney(2027, 4, 4, 11)


def test_elapsed_counts_the_clock_asked_for(policy: Policy) -> None:
    friday, monday = sydney(2026, 11, 20, 16), sydney(2026, 11, 23, 10)
    assert policy.calendar.elapsed(friday, monday) == 120
    assert policy.calendar.elapsed(friday, monday, Clock.CALENDAR) == 66 * 60


@pytest.mark.parametrize(
    ("minutes", "clock", "text"),
    [
        (80, Clock.BUSINESS, "1h 20m of business time"),
        (80, Clock.CALENDAR, "1h 20m"),
        (47 * 60, Clock.CALENDAR, "47h"),
        (51 * 60 + 5, Clock.CALENDAR, "2d 3h 5m"),
    ],
)
def test_a_span_says_its_clock(minutes: int, clock: Clock, text: str) -> None:
    assert span_words(minutes, clock) == text
