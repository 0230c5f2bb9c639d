"""Durations of the SLA file, each on its clock.

A compact duration is calendar time, as most people read it: `30m`, `24h`, `3d`, `2w` (or
`1h30m`); `24h` is 24 hours of elapsed real time, whatever the working hours. Business time
says so: `2 business hours`, `1 business day`, `30 business minutes`, or the short forms `2bh`,
`1bd`, `30bm` (parts add up: `1bd 4bh`). A business day is one of the team's working days
(`business_hours`), so `1bd` from Monday 10:00 is Tuesday 10:00 and from Friday 10:00 is Monday
10:00. There is no month unit: months differ in length, so the file says weeks or days.

A calendar day is 24 hours of elapsed time: across a daylight-saving change `1d` ends an hour
later or earlier on the wall clock. That is what "within 24 hours" means to the person waiting.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import timedelta
from enum import StrEnum


class Clock(StrEnum):
    """Which time a duration counts: elapsed real time, or the team's working time."""

    CALENDAR = "calendar"
    BUSINESS = "business"


_UNITS = {  # a unit as written → (clock, minutes of it; 0 means one working day)
    "m": (Clock.CALENDAR, 1),
    "min": (Clock.CALENDAR, 1),
    "mins": (Clock.CALENDAR, 1),
    "minute": (Clock.CALENDAR, 1),
    "minutes": (Clock.CALENDAR, 1),
    "h": (Clock.CALENDAR, 60),
    "hour": (Clock.CALENDAR, 60),
    "hours": (Clock.CALENDAR, 60),
    "d": (Clock.CALENDAR, 24 * 60),
    "day": (Clock.CALENDAR, 24 * 60),
    "days": (Clock.CALENDAR, 24 * 60),
    "w": (Clock.CALENDAR, 7 * 24 * 60),
    "week": (Clock.CALENDAR, 7 * 24 * 60),
    "weeks": (Clock.CALENDAR, 7 * 24 * 60),
    "bm": (Clock.BUSINESS, 1),
    "bh": (Clock.BUSINESS, 60),
    "bd": (Clock.BUSINESS, 0),
    "business minute": (Clock.BUSINESS, 1),
    "business minutes": (Clock.BUSINESS, 1),
    "business hour": (Clock.BUSINESS, 60),
    "business hours": (Clock.BUSINESS, 60),
    "business day": (Clock.BUSINESS, 0),
    "business days": (Clock.BUSINESS, 0),
}
_MONTHS = {"mo", "mon", "mth", "month", "months", "bmo", "business month", "business months"}
# A number starts only where no digit comes before it, and is taken whole (`++`): a run of
# digits with no unit is given up in one pass, not retried from each of its digits (time
# growing with the square of its length; a number that began after a digit was never read).
_PART = re.compile(r"(?<!\d)(\d++)\s*(business\s+[a-z]+|[a-z]+)", re.IGNORECASE)
FORMS = (
    "calendar time: 30m, 24h, 3d, 2w; business time: 2 business hours, 1 business day, "
    "30 business minutes (or 2bh, 1bd, 30bm)"
)
_DAY = 24 * 60


def _parts(text: str) -> list[tuple[int, str]]:
    """`1d 2h` → [(1, "d"), (2, "h")]; ValueError when anything else is in the text."""
    found: list[tuple[int, str]] = []
    position = 0
    for match in _PART.finditer(text):
        if text[position : match.start()].strip():
            raise ValueError
        found.append((int(match.group(1)), " ".join(match.group(2).lower().split())))
        position = match.end()
    if not found or text[position:].strip():
        raise ValueError
    return found


@dataclass(frozen=True)
class Duration:
    """A duration on its clock: whole days (calendar days of 24 hours, or working days) plus
    minutes (elapsed, or working). Without a clock it is business time: that is what an SLA
    snapshot stored before durations carried their clock means."""

    days: int = 0
    minutes: int = 0
    clock: Clock = Clock.BUSINESS

    def __post_init__(self) -> None:
        object.__setattr__(self, "clock", Clock(self.clock))
        if self.clock is Clock.CALENDAR and self.minutes >= _DAY:  # `72h` is `3d`: one value
            days, minutes = divmod(self.minutes, _DAY)
            object.__setattr__(self, "days", self.days + days)
            object.__setattr__(self, "minutes", minutes)

    @classmethod
    def parse(cls, text: str) -> Duration:
        """Parse `30m`, `24h`, `3d`, `2w`, `1h30m` (calendar) or `2 business hours`, `1bd`
        (business); ValueError with a message naming the forms."""
        if not isinstance(text, str) or not text.strip():
            raise ValueError(f"{text!r} is not a duration: write {FORMS}")
        try:
            parts = _parts(text)
        except ValueError:
            raise ValueError(f"{text!r} is not a duration: write {FORMS}") from None
        clocks: set[Clock] = set()
        days = minutes = 0
        for amount, unit in parts:
            if unit in _MONTHS:
                raise ValueError(
                    f"{text!r}: there is no month unit (months differ in length): write weeks "
                    "or days, like 4w or 30d"
                )
            if unit not in _UNITS:
                raise ValueError(f"{text!r}: {unit!r} is not a unit of time: write {FORMS}")
            clock, size = _UNITS[unit]
            clocks.add(clock)
            if size == 0:  # working days: their length is the calendar's
                days += amount
            else:
                minutes += amount * size
        if len(clocks) > 1:
            raise ValueError(
                f"{text!r} mixes calendar and business time: write one clock, like 1bd 4bh or 1d 4h"
            )
        if days == 0 and minutes == 0:
            raise ValueError(f"{text!r} is zero: a deadline needs a positive duration")
        return cls(days=days, minutes=minutes, clock=clocks.pop())

    @property
    def is_calendar(self) -> bool:
        return self.clock is Clock.CALENDAR

    @property
    def delta(self) -> timedelta:
        """Elapsed time of a calendar duration (a day is 24 hours). ValueError for business
        time, whose length depends on when it starts."""
        if not self.is_calendar:
            raise ValueError(f"{self} is business time: its length depends on the calendar")
        return timedelta(days=self.days, minutes=self.minutes)

    def total_minutes(self, minutes_per_day: int) -> int:
        """Minutes of the duration's own clock: a business day is `minutes_per_day` working
        minutes; a calendar day is 1440 minutes whatever `minutes_per_day` says."""
        per_day = 24 * 60 if self.is_calendar else minutes_per_day
        return self.days * per_day + self.minutes

    def scaled(self, numerator: int, denominator: int, minutes_per_day: int) -> Duration:
        """`self × numerator ÷ denominator`, in whole minutes (at least one), on its own clock."""
        minutes = self.total_minutes(minutes_per_day) * numerator // denominator
        return Duration(minutes=max(1, minutes), clock=self.clock)

    def __str__(self) -> str:
        """A form that parses back to the same duration: `30m`, `72h`, `10d`, `2w`, `4d12h`, or
        `2 business hours`, `1 business day 4 business hours`."""
        hours, minutes = divmod(self.minutes, 60)
        if self.is_calendar:
            if self.days and self.days % 7 == 0 and not self.minutes:
                return f"{self.days // 7}w"
            if self.days <= 3 and not minutes:  # `72h`, as the seeds say it
                return f"{self.days * 24 + hours}h"
            parts = [f"{self.days}d" if self.days else "", f"{hours}h" if hours else ""]
            return "".join([*parts, f"{minutes}m" if minutes else ""]) or "0m"
        named = [
            _plural(self.days, "business day"),
            _plural(hours, "business hour"),
            _plural(minutes, "business minute"),
        ]
        return " ".join(part for part in named if part) or "0 business minutes"

    @property
    def words(self) -> str:
        """For people, its clock in the words: `72 hours`, `2 weeks`, `10 days`, `2 business
        hours` (each also parses back to the same duration)."""
        if not self.is_calendar:
            return str(self)
        hours, minutes = divmod(self.minutes, 60)
        if self.days and self.days % 7 == 0 and not self.minutes:
            return _plural(self.days // 7, "week")
        if self.days <= 3 and not minutes:  # "within 72 hours", as the seeds say it
            return _plural(self.days * 24 + hours, "hour")
        parts = [_plural(self.days, "day"), _plural(hours, "hour"), _plural(minutes, "minute")]
        return " ".join(part for part in parts if part) or "0 minutes"


def _plural(amount: int, unit: str) -> str:
    if not amount:
        return ""
    return f"{amount} {unit}" + ("" if amount == 1 else "s")


def words(total_minutes: int) -> str:
    """`80` → `1h 20m`; a span of minutes shown to people (the caller says which clock)."""
    hours, minutes = divmod(max(0, int(total_minutes)), 60)
    if hours and minutes:
        return f"{hours}h {minutes}m"
    if hours:
        return f"{hours}h"
    return f"{minutes}m"


def span_words(total_minutes: int, clock: Clock) -> str:
    """A span on its clock, for people: `2d 3h` of elapsed time (days past 48 hours), or
    `1h 20m of business time`."""
    total = max(0, int(total_minutes))
    if clock is Clock.BUSINESS:
        return f"{words(total)} of business time"
    if total >= 48 * 60:
        days, rest = divmod(total, 24 * 60)
        return f"{days}d {words(rest)}" if rest else f"{days}d"
    return words(total)
