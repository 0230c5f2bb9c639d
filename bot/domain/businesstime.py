"""Time arithmetic on a team's calendar: working days and hours in its zone, minus holidays.

`add` and `before` honour a duration's clock: a calendar duration (`24h`, `2w`) is elapsed real
time (a day is 24 hours, also across a daylight-saving change), a business one (`2 business
hours`) is working time. Plain minutes are working minutes, as they always were."""

from __future__ import annotations

from collections.abc import Callable, Iterable
from datetime import UTC, date, datetime, time, timedelta
from zoneinfo import ZoneInfo

from bot.domain.durations import Clock, Duration

WEEKDAYS = ("mon", "tue", "wed", "thu", "fri", "sat", "sun")

# Holiday lookups come from outside the domain (the `holidays` package) as a plain function.
HolidayLookup = Callable[[date], bool]


def _no_holidays(_: date) -> bool:
    return False


class BusinessCalendar:
    """Time on one team's calendar: `add` a duration on its clock, `elapsed` minutes."""

    def __init__(
        self,
        zone: str,
        days: Iterable[str],
        start: time,
        end: time | None,
        is_holiday: HolidayLookup = _no_holidays,
        closed: Iterable[date] = (),
    ) -> None:
        self.zone = ZoneInfo(zone)
        self.days = frozenset(WEEKDAYS.index(day) for day in days)
        self.start = start
        self.end = end  # None means midnight at the end of the day ("24:00")
        self.is_holiday = is_holiday
        self.closed = frozenset(closed)
        self.minutes_per_day = self._day_minutes()
        self._working: dict[date, bool] = {}  # holiday look-ups are slow; a date never changes
        self._windows: dict[date, tuple[datetime, datetime]] = {}  # zone look-ups, likewise

    def _day_minutes(self) -> int:
        start = self.start.hour * 60 + self.start.minute
        end = 24 * 60 if self.end is None else self.end.hour * 60 + self.end.minute
        return end - start

    def is_working_day(self, day: date) -> bool:
        known = self._working.get(day)
        if known is None:
            known = day.weekday() in self.days and day not in self.closed
            known = known and not self.is_holiday(day)
            self._working[day] = known
        return known

    def working_window(self, day: date) -> tuple[datetime, datetime] | None:
        """When `day`'s working time opens and closes, or None on a closed day."""
        return self._window(day) if self.is_working_day(day) else None

    def at_work(self, instant: datetime) -> datetime:
        """`instant` if it falls in working time, else the next moment working time opens (a
        calendar-time due date a person is reminded of, moved out of the night)."""
        cursor = instant.astimezone(UTC)
        day = cursor.astimezone(self.zone).date()
        for _ in range(3660):  # ten years of days, as in `add`
            window = self.working_window(day)
            if window is not None and cursor < window[1]:
                return max(cursor, window[0])
            day += timedelta(days=1)
        raise ValueError("the business calendar has no working time in the next ten years")

    def _window(self, day: date) -> tuple[datetime, datetime]:
        known = self._windows.get(day)
        if known is None:
            opens = self._first_reading(day, self.start)
            if self.end is None:  # 24:00 is the next day's midnight
                closes = self._first_reading(day + timedelta(days=1), time(0))
            else:
                closes = self._first_reading(day, self.end)
            known = self._windows[day] = (opens, closes)
        return known

    def _first_reading(self, day: date, clock: time) -> datetime:
        """The first instant the zone's wall clock reads `clock` (or later) on `day`, in UTC."""
        wall = datetime.combine(day, clock)
        instant = wall.replace(tzinfo=self.zone).astimezone(UTC)
        if instant.astimezone(self.zone).replace(tzinfo=None) == wall:
            return instant
        # A DST jump skips `clock` (02:30 when 02:00 becomes 03:00): the answer is the jump, which
        # lies after `clock` read with the later offset; halve on whole seconds (tzdata's unit).
        low = int(wall.replace(tzinfo=self.zone, fold=1).timestamp())
        high = int(instant.timestamp())
        while high - low > 1:
            middle = (low + high) // 2
            local = datetime.fromtimestamp(middle, self.zone).replace(tzinfo=None)
            low, high = (middle, high) if local < wall else (low, middle)
        return datetime.fromtimestamp(high, UTC)

    def _span(self, duration: Duration | int | timedelta) -> timedelta:
        """A business duration (or working minutes) as a timedelta of working time: exact to
        the microsecond, not float minutes, so add, before and elapsed agree."""
        if isinstance(duration, timedelta):
            return duration
        minutes = (
            duration.total_minutes(self.minutes_per_day)
            if isinstance(duration, Duration)
            else duration
        )
        return timedelta(minutes=minutes)

    def add(self, instant: datetime, duration: Duration | int | timedelta) -> datetime:
        """The instant `duration` after `instant` (UTC-aware in and out): elapsed time for a
        calendar duration, working time for a business one, for plain minutes or for a
        timedelta (what `worked` measures)."""
        if isinstance(duration, Duration) and duration.is_calendar:
            return instant.astimezone(UTC) + duration.delta
        remaining, cursor = self._span(duration), instant.astimezone(UTC)
        if remaining <= timedelta(0):
            return cursor
        day = cursor.astimezone(self.zone).date()
        for _ in range(3660):  # ten years of days: a calendar with no working time fails loudly
            if self.is_working_day(day):
                opens, closes = self._window(day)
                cursor = max(cursor, opens)
                if cursor < closes:
                    available = closes - cursor
                    if remaining <= available:
                        return cursor + remaining
                    remaining -= available
            day += timedelta(days=1)
        raise ValueError("the business calendar has no working time in the next ten years")

    def add_all(self, instant: datetime, minutes: list[int]) -> list[datetime]:
        """`[add(instant, m) for m in minutes]` (working minutes), in one walk over the working
        days: a lead's escalation steps are several shares of one window (issue 15)."""
        cursor = instant.astimezone(UTC)
        answers = [cursor] * len(minutes)  # 0 minutes or fewer: the instant itself
        todo = sorted((timedelta(minutes=m), i) for i, m in enumerate(minutes) if m > 0)
        if not todo:
            return answers
        done = timedelta(0)  # working time walked past already
        next_one = 0
        day = cursor.astimezone(self.zone).date()
        for _ in range(3660):  # ten years of days, as in `add`
            if self.is_working_day(day):
                opens, closes = self._window(day)
                cursor = max(cursor, opens)
                if cursor < closes:
                    available = closes - cursor
                    while next_one < len(todo) and todo[next_one][0] - done <= available:
                        wanted, index = todo[next_one]
                        answers[index] = cursor + (wanted - done)
                        next_one += 1
                    if next_one == len(todo):
                        return answers
                    done += available
            day += timedelta(days=1)
        raise ValueError("the business calendar has no working time in the next ten years")

    def before(self, instant: datetime, duration: Duration | int) -> datetime:
        """The latest start whose `add(start, duration)` is at or before `instant`: `duration`
        back from `instant` on its clock (a report's "whose window has closed by now")."""
        if isinstance(duration, Duration) and duration.is_calendar:
            return instant.astimezone(UTC) - duration.delta
        remaining, cursor = self._span(duration), instant.astimezone(UTC)
        if remaining <= timedelta(0):
            return cursor
        day = cursor.astimezone(self.zone).date()
        for _ in range(3660):  # ten years of days, as in `add`
            if self.is_working_day(day):
                opens, closes = self._window(day)
                cursor = min(cursor, closes)
                if cursor > opens:
                    available = cursor - opens
                    if remaining <= available:
                        return cursor - remaining
                    remaining -= available
            day -= timedelta(days=1)
        raise ValueError("the business calendar has no working time in the last ten years")

    def elapsed(self, start: datetime, end: datetime, clock: Clock = Clock.BUSINESS) -> int:
        """Whole minutes of `clock` between two instants (0 if `end` is before `start`):
        business minutes unless asked for elapsed (calendar) minutes."""
        if clock is Clock.CALENDAR:
            return max(timedelta(0), end - start) // timedelta(minutes=1)
        return self.worked(start, end) // timedelta(minutes=1)

    def worked(self, start: datetime, end: datetime) -> timedelta:
        """The working time between two instants, to the microsecond (none if `end` is before
        `start`): what a deadline keeps of it when it is held and runs again (`carried`)."""
        start, end = start.astimezone(UTC), end.astimezone(UTC)
        if end <= start:
            return timedelta(0)
        total = timedelta(0)
        day = start.astimezone(self.zone).date()
        last = end.astimezone(self.zone).date()
        while day <= last:
            if self.is_working_day(day):
                opens, closes = self._window(day)
                low, high = max(opens, start), min(closes, end)
                if high > low:
                    total += high - low
            day += timedelta(days=1)
        return total


def carried(
    due: datetime | None,
    clock: Clock,
    held: datetime,
    resumed: datetime,
    was: BusinessCalendar,
    now_on: BusinessCalendar | None = None,
) -> datetime | None:
    """A deadline held at `held` and running again from `resumed` (a lead back from marketing,
    or one handed to an owner on other hours: then `held` is `resumed`). One already passed
    at `held` stays passed; one still ahead keeps the time it had left then: elapsed time on a
    calendar clock, working time on a business one, measured on `was` and added from
    `resumed` on `now_on` (by default the same calendar)."""
    if due is None or due <= held:
        return due
    if clock is Clock.CALENDAR:
        return due + (resumed - held)
    on = was if now_on is None else now_on
    return on.add(resumed, was.worked(held, due))
