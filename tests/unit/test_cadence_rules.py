"""The follow-up cadence, pure and hand-computed (bot/domain/cadence.py's rule).

Two calendars, in UTC so every time below reads as written:
* `ROUND_THE_CLOCK`: every day, 00:00–24:00. Business time and calendar time agree on it, so
  these expectations hold whichever clock a duration like `14d` is read on.
* `OFFICE`: Monday to Friday, 09:00–17:00 (480 working minutes a day), with the standard
  written in explicit business time (`10 business days`).
2026-11-02 is a Monday.
"""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, datetime, timedelta

import pytest

from bot.domain.businesstime import BusinessCalendar
from bot.domain.cadence import (
    TOUCH_LADDER,
    Attempt,
    TouchDue,
    follow,
    interval,
    reminder_due_at,
    touch_reminder,
)
from bot.domain.lead import LeadView, Stage
from bot.domain.policy import FollowUp

ROUND_THE_CLOCK = BusinessCalendar(
    "UTC", ("mon", "tue", "wed", "thu", "fri", "sat", "sun"), datetime.min.time(), None
)
OFFICE = BusinessCalendar(
    "UTC",
    ("mon", "tue", "wed", "thu", "fri"),
    datetime(1, 1, 1, 9).time(),
    datetime(1, 1, 1, 17).time(),
)
TWO_WEEKS = FollowUp(min_attempts=6, within="14d")  # type: ignore[arg-type]
TEN_WORKING_DAYS = FollowUp(min_attempts=6, within="10 business days")  # type: ignore[arg-type]
DAY0 = datetime(2026, 11, 2, 10, 0, tzinfo=UTC)  # Monday 10:00
FIRST_TOUCH_DUE = datetime(2026, 11, 2, 12, 0, tzinfo=UTC)


def at(days: float = 0, hours: float = 0) -> datetime:
    return DAY0 + timedelta(days=days, hours=hours)


def calls(*times: datetime, kind: str = "call") -> list[Attempt]:
    return [Attempt(time, kind) for time in times]


def test_the_interval_is_the_window_shared_by_the_attempts() -> None:
    # 14 days ÷ 6 = 2 days 8 hours = 3,360 minutes; 10 working days ÷ 6 = 4,800 ÷ 6 = 800.
    assert interval(TWO_WEEKS, ROUND_THE_CLOCK).total_minutes(1440) == 3360
    assert interval(TEN_WORKING_DAYS, OFFICE).total_minutes(480) == 800


def test_before_any_attempt_the_first_touch_is_due_at_its_deadline() -> None:
    cadence = follow(TWO_WEEKS, ROUND_THE_CLOCK, FIRST_TOUCH_DUE, [])
    assert (cadence.counted, cadence.touch) == (0, 1)
    assert cadence.next_touch_due_at == FIRST_TOUCH_DUE
    assert not cadence.met
    assert reminder_due_at(cadence) is None  # the no_touch ladder reminds of the first touch


def test_a_two_week_cadence_meets_the_standard_on_its_sixth_attempt() -> None:
    days = [at(day) for day in (0, 2, 4, 7, 10, 13)]
    cadence = follow(TWO_WEEKS, ROUND_THE_CLOCK, FIRST_TOUCH_DUE, calls(*days))
    assert cadence.counted == 6
    assert cadence.met_at == at(13)
    assert cadence.next_touch_due_at is None
    assert reminder_due_at(cadence) is None


def test_the_next_touch_is_due_one_interval_after_the_latest_attempt() -> None:
    cadence = follow(TWO_WEEKS, ROUND_THE_CLOCK, FIRST_TOUCH_DUE, calls(at(0), at(2)))
    # Day 2 10:00 + 2 days 8 hours = Friday 6 November 18:00.
    assert cadence.next_touch_due_at == datetime(2026, 11, 6, 18, 0, tzinfo=UTC)
    assert cadence.touch == 3
    assert reminder_due_at(cadence) == cadence.next_touch_due_at


def test_six_attempts_over_four_days_are_six_of_six() -> None:
    # Seed 002: "Make minimum 6 contact attempts over 2 weeks", coverage = "MQLs receiving
    # minimum contact attempts": no spacing between them. Days 0, 1, 1½, 2, 3, 4 (gaps of 12
    # and 24 hours, under the old rule's 28 h) are six attempts, and the standard is met.
    days = [at(0), at(1), at(1.5), at(2), at(3), at(4)]
    for standard, calendar in ((TWO_WEEKS, ROUND_THE_CLOCK), (TEN_WORKING_DAYS, OFFICE)):
        cadence = follow(standard, calendar, FIRST_TOUCH_DUE, calls(*days))
        assert (cadence.counted, cadence.met_at, cadence.next_touch_due_at) == (6, at(4), None)
        assert reminder_due_at(cadence) is None


def test_six_attempts_logged_overnight_count_as_six() -> None:
    night = [at(hours=12 + half / 2) for half in range(6)]  # Monday 22:00, 22:30 … 00:30
    for standard, calendar in ((TWO_WEEKS, ROUND_THE_CLOCK), (TEN_WORKING_DAYS, OFFICE)):
        cadence = follow(standard, calendar, FIRST_TOUCH_DUE, calls(*night))
        assert (cadence.counted, cadence.met_at) == (6, night[-1])


def test_an_attempt_soon_after_another_counts_and_moves_the_next_touch_on() -> None:
    # Day 1 10:00 is 24 h after day 0: it counts (2 of 6), and the next touch is due one
    # interval after it, not after day 0: the rep is not nudged at day 2 08:00, 22 hours after
    # an attempt.
    early = follow(TWO_WEEKS, ROUND_THE_CLOCK, FIRST_TOUCH_DUE, calls(at(0), at(1)))
    assert (early.counted, early.touch) == (2, 3)
    assert early.next_touch_due_at == at(3, 8)
    assert reminder_due_at(early) == at(3, 8)


def test_the_reminder_waits_a_whole_interval_after_the_latest_attempt() -> None:
    # Three calls an hour apart on Monday: 3 of 6, and the next reminder is 2 days 8 hours after
    # the latest (Wednesday 20:00), never sooner than the old rule's spacing of 28 h.
    three = calls(at(0), at(hours=1), at(hours=2))
    cadence = follow(TWO_WEEKS, ROUND_THE_CLOCK, FIRST_TOUCH_DUE, three)
    assert (cadence.counted, cadence.met) == (3, False)
    due = reminder_due_at(cadence)
    assert due == at(2, 10)
    assert due - at(hours=2) >= timedelta(hours=28)
    # On the office clock (10 business days): 12:00 Monday + 800 working minutes = Tuesday
    # 09:00–17:00 (300 left on Monday, 480 on Tuesday), 20 more: Wednesday 09:20.
    office = follow(TEN_WORKING_DAYS, OFFICE, FIRST_TOUCH_DUE, three)
    assert reminder_due_at(office) == datetime(2026, 11, 4, 9, 20, tzinfo=UTC)


def test_a_working_time_cadence_over_two_weeks() -> None:
    # 10 working days ÷ 6: 800 working minutes (13 h 20 m of working time).
    # Mon 10:00, Tue 10:00, Wed 10:00, Fri 10:00, Tue, Thu: six attempts.
    days = [at(0), at(1), at(2), at(4), at(8), at(10)]
    cadence = follow(TEN_WORKING_DAYS, OFFICE, FIRST_TOUCH_DUE, calls(*days))
    assert (cadence.counted, cadence.met_at) == (6, at(10))
    # Mon 10:00 + 800: 420 left on Monday, 380 more from Tuesday 09:00 is Tuesday 15:20.
    one = follow(TEN_WORKING_DAYS, OFFICE, FIRST_TOUCH_DUE, calls(at(0)))
    assert one.next_touch_due_at == datetime(2026, 11, 3, 15, 20, tzinfo=UTC)


def test_attempts_from_a_crm_count_in_time_order_whatever_order_they_arrive() -> None:
    days = [at(day) for day in (13, 0, 7, 2, 10, 4)]
    cadence = follow(TWO_WEEKS, ROUND_THE_CLOCK, None, calls(*days))
    assert (cadence.counted, cadence.met_at) == (6, at(13))


def test_channel_variety_holds_the_standard_until_another_channel_is_used() -> None:
    varied = FollowUp(min_attempts=3, within="6d", channels=2)  # type: ignore[arg-type]
    # 6 days ÷ 3 = 2 days.
    three_calls = calls(at(0), at(2), at(4))
    cadence = follow(varied, ROUND_THE_CLOCK, None, three_calls)
    assert (cadence.counted, cadence.channels, cadence.met) == (3, 1, False)
    assert cadence.next_touch_due_at == at(6)
    assert cadence.touch == 4
    emailed = follow(varied, ROUND_THE_CLOCK, None, [*three_calls, Attempt(at(5), "email")])
    assert (emailed.counted, emailed.channels, emailed.met_at) == (4, 2, at(5))
    # A quick email right after a call counts too, and so does its channel.
    quick = follow(varied, ROUND_THE_CLOCK, None, [*three_calls, Attempt(at(4, 1), "email")])
    assert (quick.counted, quick.channels, quick.met_at) == (4, 2, at(4, 1))


def test_a_single_attempt_standard_is_met_by_its_first_attempt() -> None:
    one = FollowUp(min_attempts=1, within="1d")  # type: ignore[arg-type]
    cadence = follow(one, ROUND_THE_CLOCK, FIRST_TOUCH_DUE, calls(at(0)))
    assert (cadence.met_at, cadence.next_touch_due_at) == (at(0), None)


@pytest.mark.parametrize(("attempts", "within"), [(50, "1h"), (7, "10m")])
def test_a_tiny_interval_is_at_least_a_minute(attempts: int, within: str) -> None:
    standard = FollowUp(min_attempts=attempts, within=within)  # type: ignore[arg-type]
    assert interval(standard, ROUND_THE_CLOCK).total_minutes(1440) >= 1


def claimed(**fields: object) -> LeadView:
    lead = LeadView(
        id=1,
        external_id="hs-1",
        email="a@b.example",
        stage=Stage.SAL,
        segment="enterprise",
        channel="C0ENT",
        tier="hot",
        score=90,
        sla_version="v1",
        received_at=DAY0,
        owner="U0REP1",
        attempts=1,
        touches_counted=1,
        next_touch_due_at=at(2, 8),
    )
    return replace(lead, **fields)  # type: ignore[arg-type]


def test_the_sweep_reminds_of_an_overdue_touch_once() -> None:
    lead = claimed()
    assert touch_reminder(lead, at(2), set()) == (None, at(2, 8))  # not yet: look again then
    assert touch_reminder(lead, at(2, 8), set()) == (TouchDue(2, at(2, 8)), None)
    assert touch_reminder(lead, at(3), {(TOUCH_LADDER, 2)}) == (None, None)  # reminded already
    later = replace(lead, attempts=2, touches_counted=2, next_touch_due_at=at(5))
    assert touch_reminder(later, at(5), {(TOUCH_LADDER, 2)}) == (TouchDue(3, at(5)), None)


def test_no_reminder_for_the_first_touch_a_closed_lead_or_while_snoozed() -> None:
    first = claimed(attempts=0, touches_counted=0, next_touch_due_at=at(0, 2))
    assert touch_reminder(first, at(1), set()) == (None, None)  # the no_touch ladder's job
    for stage in (Stage.SQL, Stage.RECYCLE, Stage.MQL):
        assert touch_reminder(claimed(stage=stage), at(3), set()) == (None, None)
    assert touch_reminder(claimed(next_touch_due_at=None), at(3), set()) == (None, None)
    snoozed = claimed(snoozed_until=at(3))
    assert touch_reminder(snoozed, at(2, 12), set()) == (None, None)
    assert touch_reminder(snoozed, at(3), set()) == (TouchDue(2, at(2, 8)), None)


def test_a_calendar_time_touch_that_falls_at_night_is_due_when_work_opens() -> None:
    # 6 attempts within 14 days on office hours: a call Monday 10:00 makes the next touch due
    # 2 days 8 hours later, Wednesday 18:00, after the office closes: it is due Thursday 09:00.
    # A call Monday 14:00 gives Wednesday 22:00, due Thursday 09:00 too; one Tuesday 08:00
    # gives Thursday 16:00, inside office hours, due as computed. Friday 10:00 + 2d 8h is
    # Sunday 18:00: due Monday 09:00.
    def due_after(call: datetime) -> datetime | None:
        return follow(TWO_WEEKS, OFFICE, FIRST_TOUCH_DUE, calls(call)).next_touch_due_at

    thursday_9am = datetime(2026, 11, 5, 9, 0, tzinfo=UTC)
    assert due_after(at()) == thursday_9am
    assert due_after(at(hours=4)) == thursday_9am
    assert due_after(at(days=1, hours=-2)) == datetime(2026, 11, 5, 16, 0, tzinfo=UTC)
    assert due_after(at(days=4)) == datetime(2026, 11, 9, 9, 0, tzinfo=UTC)
    # In business time (`10 business days`) the interval already ends inside working hours.
    business = follow(TEN_WORKING_DAYS, OFFICE, FIRST_TOUCH_DUE, calls(at()))
    assert business.next_touch_due_at == OFFICE.add(at(), interval(TEN_WORKING_DAYS, OFFICE))


def test_a_touch_reminded_under_the_old_span_rule_is_not_reminded_again() -> None:
    # Stored when an attempt close to the one before did not count: 3 attempts, 2 counted, its
    # next touch (the third that counted) due at day 2 08:00 and reminded already. Every
    # attempt counts now, but the stored due time is the same one: no second reminder of it.
    stored = claimed(attempts=3, touches_counted=2, next_touch_due_at=at(2, 8))
    assert touch_reminder(stored, at(3), {(TOUCH_LADDER, 3)}) == (None, None)
    assert touch_reminder(stored, at(3), set()) == (TouchDue(4, at(2, 8)), None)
