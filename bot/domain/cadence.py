"""The follow-up cadence: from the SLA's standard (`follow_up: {min_attempts, within, channels}`)
and a lead's contact attempts, when its next touch is due and whether the standard is met.

The rule (docs/sla-file.md says the same):

* The touch interval is `i = within ÷ min_attempts` (whole minutes, on `within`'s clock);
  6 attempts within 2 weeks is one touch every 2 days 8 hours.
* Every attempt counts, however close to the one before: seed 002 asks for "minimum 6 contact
  attempts over 2 weeks" and its coverage KPI counts "MQLs receiving minimum contact
  attempts", with no spacing between them. Six calls logged over four days are 6 of 6.
* The standard is met when `min_attempts` attempts were made and, with `channels` set, they
  used at least that many channels (email, call, LinkedIn). It is met at the time of the
  attempt that completed it.
* The next touch is due `i` after the latest attempt (for a calendar-time `within`,
  moved to the next opening of working time when that falls outside it: nobody is reminded to
  call at 22:34); before any attempt, at the tier's first-touch deadline (the no-touch ladder
  polices that one). Once the standard is met, no touch is due. So a rep who has just logged
  an attempt is not reminded of the next one for a whole interval, however many came before.

Pure: no clock, no I/O; all time arithmetic goes through the lead's calendar (`add`) with
Duration values, so each duration keeps its own clock.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime

from bot.domain.businesstime import BusinessCalendar, carried
from bot.domain.durations import Clock, Duration
from bot.domain.lead import LeadView, Stage, counted_attempts
from bot.domain.policy import FollowUp

# The escalation ladder name of a cadence reminder: its step is the number of the touch due,
# so each overdue touch is reminded once per cycle (the escalations' unique key fences it).
TOUCH_LADDER = "next_touch"


@dataclass(frozen=True)
class Attempt:
    """A contact attempt: when, and through which channel (email, call, linkedin)."""

    at: datetime
    kind: str


@dataclass(frozen=True)
class Cadence:
    """Where a lead stands against the follow-up standard."""

    counted: int  # the attempts that count towards the standard: every one
    channels: int  # the channels the attempts used
    met_at: datetime | None  # when the standard was met (None: not yet)
    next_touch_due_at: datetime | None  # None once the standard is met

    @property
    def met(self) -> bool:
        return self.met_at is not None

    @property
    def touch(self) -> int:
        """The number of the touch due next (1 before any attempt)."""
        return self.counted + 1


def interval(standard: FollowUp, calendar: BusinessCalendar) -> Duration:
    """The touch interval `i = within ÷ min_attempts`."""
    return standard.interval(calendar.minutes_per_day)


def follow(
    standard: FollowUp,
    calendar: BusinessCalendar,
    first_touch_due_at: datetime | None,
    attempts: Iterable[Attempt],
) -> Cadence:
    """The lead's cadence after `attempts` (in any order): see the module's rule."""
    step = interval(standard, calendar)
    ordered = sorted(attempts, key=lambda attempt: attempt.at)
    wanted = standard.channels or 1
    counted = 0
    kinds: set[str] = set()
    last: datetime | None = None
    met_at: datetime | None = None
    for attempt in ordered:
        counted += 1
        kinds.add(attempt.kind)
        last = attempt.at
        if met_at is None and counted >= standard.min_attempts and len(kinds) >= wanted:
            met_at = attempt.at
    if met_at is not None:
        due = None
    elif last is None:
        due = first_touch_due_at
    else:  # a calendar-time interval that ends at night is due when work opens
        due = calendar.add(last, step)
        due = calendar.at_work(due) if step.is_calendar else due
    return Cadence(counted, len(kinds), met_at, due)


def reminder_due_at(cadence: Cadence) -> datetime | None:
    """When the sweep reminds the owner of the next touch: at its due time, from the second
    touch on (the first touch has its own ladder, `no_touch`); None when nothing is due."""
    if cadence.next_touch_due_at is None or cadence.counted == 0:
        return None
    return cadence.next_touch_due_at


@dataclass(frozen=True)
class TouchDue:
    """An overdue touch the owner is reminded of, in the lead's thread."""

    touch: int  # its number: 3 is the lead's third attempt
    due_at: datetime


def touch_reminder(
    lead: LeadView, now: datetime, recorded: set[tuple[str, int]]
) -> tuple[TouchDue | None, datetime | None]:
    """The sweep's look at a lead's cadence, from its stored columns: the touch to remind its
    owner of now (once: `recorded` holds the reminders of this cycle already sent), or when
    to look again (None: no reminder waits). A snoozed lead's reminder waits for the snooze's
    end, which the escalation plan looks at."""
    due = lead.next_touch_due_at
    if lead.stage is not Stage.SAL or lead.owner is None or due is None:
        return None, None
    if lead.waiting_for_info:  # its clocks are paused while marketing has its question
        return None, None
    touch = counted_attempts(lead) + 1
    if touch == 1 or (TOUCH_LADDER, touch) in recorded:
        return None, None
    if 0 < lead.touches_counted < lead.attempts and (
        (TOUCH_LADDER, lead.touches_counted + 1) in recorded
    ):
        return None, None  # stored under the old span rule: its due touch was reminded already
    if due > now:
        return None, due
    if lead.snoozed_until is not None and now < lead.snoozed_until:
        return None, None
    return TouchDue(touch, due), None


def next_touch_carried(
    lead: LeadView,
    within: Clock,
    held: datetime,
    resumed: datetime,
    was: BusinessCalendar,
    now_on: BusinessCalendar | None = None,
) -> datetime | None:
    """The lead's next touch when its clocks hold at `held` and run again from `resumed` (an
    answer from marketing; a new owner on other hours, `now_on`). Before any attempt it is the
    first touch, which the caller moves as the first touch (returned as it is); after, it keeps
    the time it had left (`carried`), and on a calendar `within` nobody is reminded at night."""
    due = lead.next_touch_due_at
    if due is None or lead.touches_counted == 0:
        return due
    on = was if now_on is None else now_on
    moved = carried(due, within, held, resumed, was, on)
    return on.at_work(moved) if moved is not None and within is Clock.CALENDAR else moved
