"""The SLA report: every KPI defined once, for a period and optionally a segment, source or rep.

The database counts (storage/reports.py returns `Counts` per segment × source × rep, the
disposition mix, the fired escalations, and the period's stage times); this module turns them
into KPIs with their targets, their colour and their change against the previous period. It is
pure: it takes `as_of` (the report's "now") and the policy, and never reads a clock.

Definitions (docs/reports.md says the same):

* **MQL volume**: leads received in the period that qualified as MQLs, per segment, against
  `targets.mql_per_week` (per week; a month or a quarter scales it by its days ÷ 7).
* **Data completeness**: share of the period's leads that arrived with every required field.
* **ICP match**: share of the period's leads that fit `icp:` (not shown without it).
* **MQL → SAL (acceptance)**: accepted / posted, of the period's MQLs claimed or past their
  claim deadline by `as_of` (one still inside its claim window is not refused yet). Accepted
  means claimed and not closed with a `reject` outcome (not a fit, bad data); a nurture or
  recycle outcome was worked by sales, so it stays accepted (docs/reports.md quotes seed 001).
* **SAL → SQL**: SQLs / accepted. **MQL → SQL**: SQLs / posted (shown apart, labelled).
* **Response time** (seed 002): MQL creation → first touch (a lead untouched past its deadline
  counts at its time so far, unless it was closed), mean and median (the target is
  the mean's: seed 002's "average", for the leads' mix of tiers: `_mix_target`); **speed to
  lead**: posted → first touch, median and p90 (nearest rank), overall and by tier; **time
  to claim**: posted → claimed, median. All in business minutes of the team's calendar. A
  tier's speed is coloured against `targets.speed_to_lead`, or the tier's first-touch window
  where the SLA gives it longer (a warm lead's business day); the overall speed only when
  every tier has the same target.
* **First-touch compliance**: of the MQLs touched or whose first-touch deadline has passed by
  `as_of`, the share touched by their deadline (the deadline the lead got from its SLA version);
  a lead rejected untouched by its deadline is left out (storage/reports.py `first_touch_due`).
* **Coverage**: of the claimed MQLs whose attempt window has closed (`follow_up.within` after the
  claim has passed by `as_of`, or the lead was dispositioned), the share that met the follow-up
  standard by `as_of` (`follow_up.min_attempts` attempts, every one counting, on
  `follow_up.channels` channels if set: bot/domain/cadence.py) or was resolved by a
  conversation first (an outcome of `sql`, `reject` or `nurture`: the rep reached someone, or
  found there is nobody to reach).
* **Feedback completion**: of the claimed leads dispositioned or past their disposition deadline
  by `as_of`, the share dispositioned by the deadline.
* **Final disposition on time** (seed 001: "maximum time-to-disposition"): of the claimed leads
  closed or past their final-disposition deadline by `as_of`, the share closed by it (no
  target: a lead left open shows here).
* **Disposition mix** and **rejection reasons**, each reason tagged routing / data / definition
  by the SLA file (`problem` / `problems` of its disposition code).
* **Conversion**: MQLs posted → SALs (accepted) → SQLs.
* **SQL → SQO**: SQLs whose CRM deal reached the opportunity stage / SQLs.
* **Win rate**: won / (won + lost) deals; **pipeline** and **won**: their amounts.
* **Lead velocity**: mean calendar days of each step MQL → SAL → SQL → opportunity → won,
  over the leads that made it.
* **Recycle → SQL**: of the leads back in the period from recycling or nurture (any way back:
  storage/cycles.py `came_back`), the share qualified.
* **Lead quality**: the owners' mean rating of fit and of timing (1–5), by source too.
* **By source and by campaign**: the same KPIs for each source and source · campaign.
* **Escalations**: steps fired in the period, by ladder and action.

Colours: green at or above target (at or under it for a time), yellow off it by at most
`report.yellow_margin`, red beyond; for MQL volume, amounts, ratings and times the margin is
relative to the target. No target, no colour.
"""

from __future__ import annotations

import math
import re
from bisect import bisect_right
from collections.abc import Callable, Collection, Iterable, Sequence
from dataclasses import dataclass, field, fields, replace
from datetime import UTC, date, datetime, time, timedelta
from operator import attrgetter
from typing import Literal, NamedTuple
from zoneinfo import ZoneInfo

from bot.domain.businesstime import BusinessCalendar
from bot.domain.durations import Clock, Duration
from bot.domain.lead import Stage
from bot.domain.naming import readable
from bot.domain.policy import Policy, Problem
from bot.domain.refusal import Refusal

Rag = Literal["green", "yellow", "red"]
Unit = Literal["share", "minutes", "count", "days", "amount", "score"]
PERIOD_WORDS = (
    "`this-week` (the default), `last-week`, `this-month`, `last-month`, `this-quarter`, "
    "`last-quarter`, an ISO week like `2026-W47`, a month like `2026-11`, a quarter like "
    "`2026-Q4` or a range of days like `2026-11-02..2026-11-29`"
)

# Seed 001's stages: a rejected lead (not a fit, bad data) was never a sales-accepted lead; a
# nurtured or recycled one was accepted and worked, then routed back to marketing.
NOT_ACCEPTED = (Stage.REJECT,)
# Closed by a conversation (or by finding nobody to converse with): no more attempts needed.
RESOLVED_WITHOUT_ATTEMPTS = (Stage.SQL, Stage.REJECT, Stage.NURTURE)


# --- periods ---------------------------------------------------------------------------------


PeriodKind = Literal["week", "month", "quarter", "range"]
_ADJECTIVES: dict[PeriodKind, str] = {
    "week": "weekly",
    "month": "monthly",
    "quarter": "quarterly",
    "range": "the period's",
}
MAX_RANGE_DAYS = 366  # an explicit range: at most a year (a longer one is a different question)


@dataclass(frozen=True)
class Period:
    """A week, a calendar month or a calendar quarter in the team's time zone, from midnight
    of its first day to midnight after its last (a week is an ISO week: Monday to Monday)."""

    year: int
    number: int  # the ISO week, the month (1–12) or the quarter (1–4); 0 for a range
    zone: str
    kind: PeriodKind = "week"
    span: tuple[date, date] | None = None  # a range's first and last day (inclusive)

    @classmethod
    def between(cls, first: date, last: date, zone: str) -> Period:
        """An explicit range of days, both inclusive."""
        return cls(first.year, 0, zone, "range", (first, last))

    @property
    def noun(self) -> str:
        """`week`, `month`, `quarter`, or `period` for a range ("No leads this period")."""
        return "period" if self.kind == "range" else self.kind

    @property
    def label(self) -> str:
        """`2026-W48`, `2026-11`, `2026-Q4` or `2026-11-02..2026-11-29`: the form
        `parse_period` reads back."""
        if self.span is not None:
            return f"{self.span[0].isoformat()}..{self.span[1].isoformat()}"
        if self.kind == "month":
            return f"{self.year}-{self.number:02d}"
        if self.kind == "quarter":
            return f"{self.year}-Q{self.number}"
        return f"{self.year}-W{self.number:02d}"

    @property
    def adjective(self) -> str:
        """`weekly`, `monthly`, `quarterly`."""
        return _ADJECTIVES[self.kind]

    @property
    def first_day(self) -> date:
        if self.span is not None:
            return self.span[0]
        if self.kind == "month":
            return date(self.year, self.number, 1)
        if self.kind == "quarter":
            return date(self.year, 3 * self.number - 2, 1)
        return date.fromisocalendar(self.year, self.number, 1)

    @property
    def last_day(self) -> date:
        if self.span is not None:
            return self.span[1]
        if self.kind == "week":
            return self.first_day + timedelta(days=6)
        months = 1 if self.kind == "month" else 3
        after = self.first_day.month - 1 + months  # months since January of the next start
        return date(self.year + after // 12, after % 12 + 1, 1) - timedelta(days=1)

    @property
    def days(self) -> list[date]:
        first = self.first_day
        return [first + timedelta(days=offset) for offset in range(self.length)]

    @property
    def length(self) -> int:
        """Calendar days in the period (7 for a week, 28–31 for a month, 90–92 for a quarter)."""
        return (self.last_day - self.first_day).days + 1

    @property
    def start(self) -> datetime:
        return _midnight(self.first_day, self.zone)

    @property
    def end(self) -> datetime:
        return _midnight(self.last_day + timedelta(days=1), self.zone)

    def previous(self) -> Period:
        """The period of the same kind just before this one (the report's comparison); for a
        range, as many days just before it."""
        if self.span is not None:
            last = self.first_day - timedelta(days=1)
            return Period.between(last - timedelta(days=self.length - 1), last, self.zone)
        return period_of(self.first_day - timedelta(days=1), self.zone, self.kind)

    def words(self) -> str:
        """`2026-W48 (Mon 23 – Sun 29 Nov 2026)`, `2026-11 (November 2026)`,
        `2026-Q4 (Oct – Dec 2026)`."""
        first, last = self.first_day, self.last_day
        if self.kind == "range":
            start = f"{first:%a} {first.day} {first:%b}" + (
                "" if first.year == last.year else f" {first.year}"
            )
            days = f"{self.length} day{'' if self.length == 1 else 's'}"
            return f"{self.label} ({start} – {last:%a} {last.day} {last:%b %Y}, {days})"
        if self.kind == "month":
            return f"{self.label} ({first:%B %Y})"
        if self.kind == "quarter":
            return f"{self.label} ({first:%b} – {last:%b %Y})"
        start = f"{first:%a} {first.day}" + ("" if first.month == last.month else f" {first:%b}")
        return f"{self.label} ({start} – {last:%a} {last.day} {last:%b %Y})"


def leads_count(count: int) -> str:
    """`1 lead`, `3 leads`."""
    return "1 lead" if count == 1 else f"{count} leads"


def _midnight(day: date, zone: str) -> datetime:
    return datetime.combine(day, time(0), tzinfo=ZoneInfo(zone)).astimezone(UTC)


def week_of(day: date, zone: str) -> Period:
    year, week, _ = day.isocalendar()
    return Period(year, week, zone)


def period_of(day: date, zone: str, kind: PeriodKind = "week") -> Period:
    """The week, month or quarter that holds `day`."""
    if kind == "month":
        return Period(day.year, day.month, zone, "month")
    if kind == "quarter":
        return Period(day.year, (day.month - 1) // 3 + 1, zone, "quarter")
    return week_of(day, zone)


# word → (kind, how many periods back)
_PERIOD_NAMES: dict[str, tuple[PeriodKind, int]] = {
    "this-week": ("week", 0),
    "this": ("week", 0),
    "week": ("week", 0),
    "last-week": ("week", 1),
    "last": ("week", 1),
    "this-month": ("month", 0),
    "month": ("month", 0),
    "last-month": ("month", 1),
    "this-quarter": ("quarter", 0),
    "quarter": ("quarter", 0),
    "last-quarter": ("quarter", 1),
}
_EXPLICIT = re.compile(
    r"(?P<year>\d{4})-(?:W(?P<week>\d+)|Q(?P<quarter>\d+)|(?P<month>\d+))", re.ASCII
)
# Before any lead, and far in the future: both keep `previous()` and `end` inside the calendar.
_FIRST_YEAR, _LAST_YEAR = 1970, 9998


def parse_period(text: str | None, now: datetime, zone: str) -> Period:
    """`this-week` (the default), `last-week`, `this-month`, `last-month`, `this-quarter`,
    `last-quarter`, or `YYYY-Www`, `YYYY-MM`, `YYYY-Qn`, or a range of days
    `YYYY-MM-DD..YYYY-MM-DD` (both included). A Refusal names the valid forms; a
    period that has not started by `now` is refused too (it has nothing to count)."""
    word = (text or "this-week").strip().lower()
    today = now.astimezone(ZoneInfo(zone)).date()
    if word in _PERIOD_NAMES:
        kind, back = _PERIOD_NAMES[word]
        period = period_of(today, zone, kind)
        return period.previous() if back else period
    if ".." in word:
        return _range(word, today, zone)
    period = _explicit((text or "").strip(), zone)
    if period.start > now:
        raise Refusal(
            f"{period.words()} has not started yet, so there is nothing to report: "
            f"ask for this {period.kind} or an earlier one."
        )
    return period


def _range(word: str, today: date, zone: str) -> Period:
    """`2026-11-02..2026-11-29`: days in the team's zone, both inclusive; refused when
    reversed, ending after today, or longer than MAX_RANGE_DAYS."""
    first_text, _, last_text = word.partition("..")
    days = []
    for text in (first_text, last_text):
        try:
            days.append(date.fromisoformat(text.strip()))
        except ValueError:
            raise Refusal(
                f"{_shown(text)} is not a date: write a range as two dates, "
                "like `2026-11-02..2026-11-29` (both days included)."
            ) from None
    first, last = days
    if last < first:
        raise Refusal(
            f"{_shown(word)} ends before it starts: put the earlier day first, "
            f"like `{last.isoformat()}..{first.isoformat()}`."
        )
    if first > today:
        raise Refusal(
            f"{_shown(word)} starts after today ({today.isoformat()}), so nothing in it has "
            "happened yet: ask for a range that has."
        )
    if last > today:
        raise Refusal(
            f"{_shown(word)} ends after today ({today.isoformat()}), so part of it has not "
            f"happened yet: end it today or earlier, like `{first.isoformat()}.."
            f"{today.isoformat()}`."
        )
    length = (last - first).days + 1
    if first.year < _FIRST_YEAR:
        raise Refusal(f"{first.year} is too long ago for a report: use {PERIOD_WORDS}.")
    if length > MAX_RANGE_DAYS:
        raise Refusal(
            f"{_shown(word)} is {length} days long: a range covers at most {MAX_RANGE_DAYS} "
            "days (ask for a quarter, or several ranges)."
        )
    return Period.between(first, last, zone)


def _explicit(word: str, zone: str) -> Period:
    """`YYYY-Www`, `YYYY-MM` or `YYYY-Qn` (any case), checked against the calendar."""
    match = _EXPLICIT.fullmatch(word.upper())
    if match is None:
        raise Refusal(f"{_shown(word)} is not a period Handoff knows: use {PERIOD_WORDS}.")
    year = int(match["year"])
    if year < _FIRST_YEAR:
        raise Refusal(f"{year} is too long ago for a report: use {PERIOD_WORDS}.")
    if year > _LAST_YEAR:
        raise Refusal(f"{year} has not started yet, so there is nothing to report.")
    if match["week"]:
        try:
            date.fromisocalendar(year, int(match["week"]), 1)
        except ValueError:
            raise Refusal(f"{year} has no week {int(match['week'])}: use {PERIOD_WORDS}.") from None
        return Period(year, int(match["week"]), zone)
    if match["quarter"]:
        if not 1 <= int(match["quarter"]) <= 4:
            raise Refusal(f"A year has quarters Q1 to Q4, not Q{match['quarter']}.")
        return Period(year, int(match["quarter"]), zone, "quarter")
    if not 1 <= int(match["month"]) <= 12:
        raise Refusal(f"A year has months 01 to 12, not {match['month']}: a month is `{year}-11`.")
    return Period(year, int(match["month"]), zone, "month")


def parse_request(text: str | None, now: datetime, policy: Policy) -> tuple[Period, str | None]:
    """`/sla-report [period] [segment]`, in either order; a Refusal lists what is valid."""
    words = (text or "").split()
    names = [segment.name for segment in policy.segments]
    segment, rest = _segment_named(words, names)
    if len(rest) > 1 and (segment is not None or len(words) > 2):
        raise Refusal(f"Usage: `/sla-report [period] [segment]`, where a period is {PERIOD_WORDS}.")
    if len(rest) > 1 or (rest and _looks_like_segment(rest[0]) and segment is None):
        unknown = next((word for word in rest if _looks_like_segment(word)), rest[-1])
        segments = f"one of {', '.join(f'`{n}`' for n in names)} (or leave it out for all)"
        if len(rest) > 1:  # a period beside it: this one was meant as the segment
            raise Refusal(f"{_shown(unknown)} is not a segment of the SLA: use {segments}.")
        raise Refusal(
            f"{_shown(unknown)} is neither a period nor a segment of the SLA: a period is "
            f"{PERIOD_WORDS}; a segment is {segments}."
        )
    period = parse_period(rest[0] if rest else None, now, policy.timezone)
    return period, segment


def segment_named(text: str, names: list[str]) -> str | None:
    """The segment `text` names in full, as `/sla-report` reads one (`SMB`, `mid market`), or
    None: `handoff report --segment` takes the same names."""
    segment, rest = _segment_named(text.split(), names)
    return segment if not rest else None


def _segment_named(words: list[str], names: list[str]) -> tuple[str | None, list[str]]:
    """The segment `words` name first or last, and the words left for the period. A segment is
    named as the SLA spells it or as reports show it, in any case and spacing: `Enterprise
    Accounts` (a name of two words, which `handoff check` accepts), `SMB` for `smb`, `mid
    market` for `mid_market`; the SLA's own spelling first, when two names differ only so."""
    for same, spelled in ((str, str), (str.casefold, str), (str.casefold, readable)):
        for name in sorted(names, key=lambda name: -len(spelled(name).split())):
            wanted = [same(word) for word in spelled(name).split()]
            size = len(wanted)
            if [same(word) for word in words[:size]] == wanted:
                return name, words[size:]
            if size < len(words) and [same(word) for word in words[-size:]] == wanted:
                return name, words[:-size]
    return None, words


def _looks_like_segment(word: str) -> bool:
    """A word that reads as a period is refused as a period (with the valid forms)."""
    lowered = word.lower()
    return not (lowered in _PERIOD_NAMES or "-w" in lowered or re.match(r"\d{4}-", lowered))


def _shown(text: str | None) -> str:
    return f"`{(text or '').strip()[:40]}`"


# --- what the database counts ----------------------------------------------------------------


@dataclass
class Counts:
    """Counts over one group of leads received in a period (they add up across groups)."""

    received: int = 0
    mql: int = 0
    complete: int = 0
    complete_known: int = 0
    icp: int = 0
    icp_known: int = 0
    posted: int = 0
    claimed: int = 0  # of the posted MQLs (a rep claims before any disposition)
    accept_due: int = 0  # of the posted MQLs: claimed, or past their claim deadline by `as_of`
    accepted: int = 0  # SAL: claimed, and not closed with a `reject` outcome
    sql: int = 0  # of the accepted
    touch_due: int = 0  # touched, or past the first-touch deadline by `as_of`
    touched_on_time: int = 0
    attempts_closed: int = 0  # claimed MQLs whose attempt window closed by `as_of`
    attempts_covered: int = 0  # of those: the minimum attempts, or resolved by a conversation
    feedback_due: int = 0  # claimed, and dispositioned or past its deadline by `as_of`
    feedback_on_time: int = 0
    final_due: int = 0  # claimed, and dispositioned or past the final deadline by `as_of`
    final_on_time: int = 0
    progressing: int = 0  # open, their feedback so far "progressing" (the disposition mix)
    sqo: int = 0  # of the SQLs: reached the CRM's opportunity stage
    opportunities: int = 0  # of the MQLs: reached the opportunity stage (SQL or not)
    won: int = 0
    lost: int = 0
    pipeline: float = 0.0  # the opportunities' amounts
    won_amount: float = 0.0  # the won deals' amounts
    fit_rated: int = 0  # leads whose rep rated their fit (1–5)...
    fit_total: int = 0  # ...and the sum of those ratings
    timing_rated: int = 0
    timing_total: int = 0
    recycled: int = 0  # leads whose cycle began in the period, back from recycling/nurture...
    recycled_sql: int = 0  # ...of which closed as SQL in that cycle
    # Lead velocity: the calendar days spent in each step, summed, over the leads that made it.
    mql_to_sal_days: float = 0.0
    mql_to_sal_leads: int = 0
    sal_to_sql_days: float = 0.0
    sal_to_sql_leads: int = 0
    sql_to_opportunity_days: float = 0.0
    sql_to_opportunity_leads: int = 0
    opportunity_to_won_days: float = 0.0
    opportunity_to_won_leads: int = 0

    def __add__(self, other: Counts) -> Counts:
        return Counts(**{f.name: getattr(self, f.name) + getattr(other, f.name) for f in _FIELDS})


_FIELDS = fields(Counts)
AMOUNTS = frozenset(f.name for f in _FIELDS if f.type in ("float", float))  # float fields


@dataclass(frozen=True)
class Group:
    """The key of a row of counts: who the leads went to."""

    segment: str
    source: str
    rep: str | None  # the owner; None while unclaimed
    campaign: str = "(none)"
    # Leads routed straight to nurture at intake: never MQLs, never meant for a rep.
    nurtured: bool = False


UNCLAIMED = "(unclaimed)"  # by rep: the MQLs nobody has
NURTURED = "(nurtured at intake)"  # by rep: the leads that never went to sales


def rep_of(group: Group) -> str:
    """A group's row in the by-rep table: its rep; "(unclaimed)" holds the MQLs nobody claimed,
    and the leads nurtured at intake have a row of their own, so that "(unclaimed)" means
    what a manager reads in it and the table still counts every lead once."""
    if group.nurtured:
        return NURTURED
    return group.rep if group.rep is not None else UNCLAIMED


Seconds = float  # an instant as seconds since the Unix epoch (UTC), to the millisecond


class Times(NamedTuple):
    """One MQL's stage times in the period (for durations, velocity and the daily compliance),
    as epoch seconds: a quarter holds hundreds of thousands of them (docs/benchmarks.md), so a
    named tuple (immutable, and built three times faster than a frozen dataclass)."""

    group: Group
    received_at: Seconds
    posted_at: Seconds | None
    claimed_at: Seconds | None
    first_touch_at: Seconds | None
    first_touch_due_at: Seconds | None  # None: not measured (rejected untouched by it, too)
    mql_at: Seconds | None = None  # this cycle's MQL creation; None: `received_at`
    tier: str | None = None  # the lead's tier (speed to lead by tier)
    closed_at: Seconds | None = None  # dispositioned (an untouched lead closed was not ignored)

    @classmethod
    def of(cls, group: Group, *instants: datetime | None, tier: str | None = None) -> Times:
        """From datetimes, in the order of the fields (received, posted, claimed, touched,
        due, and optionally MQL creation)."""
        seconds = [None if value is None else value.timestamp() for value in instants]
        seconds += [None] * (6 - len(seconds))
        received, posted, claimed, touched, due, created = seconds
        assert received is not None
        return cls(group, received, posted, claimed, touched, due, created, tier)


class CalendarClock:
    """Elapsed time: an instant reads as itself (an SLA whose first touch is calendar time)."""

    def at(self, instant: Seconds) -> float:
        return instant

    def minutes(self, start: Seconds, end: Seconds) -> int:
        """Whole minutes from `start` to `end` (0 if `end` is not after it)."""
        if end <= start:
            return 0
        return round((end - start) * 1000) // 60_000


class WorkingClock:
    """Working seconds since the start of a range of days, on a calendar: the business time
    between two instants is a subtraction, so a quarter's durations cost one bisect each
    instead of a walk through the days (`BusinessCalendar.elapsed` gives the same minutes).
    It covers `first` to `last`, and grows to any instant it is asked about (earlier days
    read as negative seconds, so readings taken before and after agree)."""

    def __init__(self, calendar: BusinessCalendar, first: date, last: date) -> None:
        self.calendar = calendar
        self.first, self.last = first, last
        windows = self._windows(first, last)
        self.opens = [opens for opens, _ in windows]
        self.closes = [closes for _, closes in windows]
        self.before: list[float] = []  # working seconds before each window opens
        total = 0.0
        for opens, closes in windows:
            self.before.append(total)
            total += closes - opens
        self._bounds()

    def _windows(self, first: date, last: date) -> list[tuple[float, float]]:
        found = []
        day = first
        while day <= last:
            window = self.calendar.working_window(day)
            if window is not None:
                opens, closes = window
                found.append((opens.timestamp(), closes.timestamp()))
            day += timedelta(days=1)
        return found

    def _bounds(self) -> None:
        """The instants covered: [low, high), midnight to midnight in the team's zone; and
        each window's working seconds, so a reading does not subtract them again."""
        zone = self.calendar.zone
        after = self.last + timedelta(days=1)
        self.low = datetime.combine(self.first, time(0), tzinfo=zone).timestamp()
        self.high = datetime.combine(after, time(0), tzinfo=zone).timestamp()
        self.lengths = [
            closes - opens for opens, closes in zip(self.opens, self.closes, strict=True)
        ]

    def _cover(self, instant: Seconds) -> None:
        day = datetime.fromtimestamp(instant, self.calendar.zone).date()
        if instant >= self.high:  # later days: a month more at a time
            total = self.before[-1] + self.closes[-1] - self.opens[-1] if self.opens else 0.0
            for opens, closes in self._windows(self.last + timedelta(days=1), day + timedelta(31)):
                self.opens.append(opens)
                self.closes.append(closes)
                self.before.append(total)
                total += closes - opens
            self.last = day + timedelta(days=31)
        else:  # earlier days, counted back from the first
            earlier = self._windows(day - timedelta(days=1), self.first - timedelta(days=1))
            total = self.before[0] if self.before else 0.0
            before = []
            for opens, closes in reversed(earlier):
                total -= closes - opens
                before.append(total)
            self.opens[:0] = [opens for opens, _ in earlier]
            self.closes[:0] = [closes for _, closes in earlier]
            self.before[:0] = list(reversed(before))
            self.first = day - timedelta(days=1)
        self._bounds()

    def at(self, instant: Seconds) -> float:
        if not self.low <= instant < self.high:
            self._cover(instant)
        index = bisect_right(self.opens, instant) - 1
        if index < 0:  # before the first window: the working time before it (0 until grown back)
            return self.before[0] if self.before else 0.0
        # The working seconds of its window so far, at most the window's: a quarter reads
        # hundreds of thousands of instants, so no `min` call (the same value).
        worked, length = instant - self.opens[index], self.lengths[index]
        return self.before[index] + (worked if worked < length else length)

    def minutes(self, start: Seconds, end: Seconds) -> int:
        """Whole working minutes from `start` to `end` (0 if `end` is not after it)."""
        if end <= start:
            return 0
        return round((self.at(end) - self.at(start)) * 1000) // 60_000


@dataclass(frozen=True)
class Facts:
    """Everything the database says about a period (and a filter)."""

    counts: dict[Group, Counts]
    dispositions: dict[tuple[str, str | None], int]  # (code, reason) → leads
    escalations: dict[tuple[str, str], int]  # (ladder, action) → fired steps
    times: list[Times]


# --- KPIs ------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Kpi:
    key: str
    label: str
    unit: Unit
    value: float | None  # None: nothing to measure ("no leads")
    target: float | None = None
    rag: Rag | None = None
    previous: float | None = None
    detail: str = ""  # the counts behind a share: "45 of 50"

    @property
    def change(self) -> float | None:
        if self.value is None or self.previous is None:
            return None
        return self.value - self.previous


@dataclass(frozen=True)
class Reason:
    code: str
    reason: str
    problem: Problem | None
    leads: int


@dataclass(frozen=True)
class Slice:
    """The KPIs of one segment, source or rep."""

    name: str
    received: int
    kpis: list[Kpi]


@dataclass(frozen=True)
class Funnel:
    """The period's MQLs through the stages, each rate over the stage before it (seed 002)."""

    mql: int  # qualified as MQLs
    posted: int  # of those, handed to sales (posted): the funnel's base
    sal: int  # accepted: claimed, and not rejected
    sql: int
    waiting: int = 0  # of the posted: unclaimed, still inside their claim window

    @property
    def mql_to_sal(self) -> float | None:
        """Of the posted MQLs that could have been claimed by now (acceptance's base)."""
        return share(self.sal, self.posted - self.waiting)

    @property
    def sal_to_sql(self) -> float | None:
        return share(self.sql, self.sal)

    @property
    def mql_to_sql(self) -> float | None:
        return share(self.sql, self.posted)


@dataclass(frozen=True)
class Report:
    period: Period
    previous_period: Period
    as_of: datetime
    segment: str | None
    headline: list[Kpi]
    volume: list[Kpi]  # MQLs per segment against its weekly target
    by_segment: list[Slice]
    by_source: list[Slice]
    by_campaign: list[Slice]  # "source · campaign"
    by_rep: list[Slice]
    dispositions: list[tuple[str, str, int]]  # code, label, leads
    reasons: list[Reason]  # most frequent first
    problems: dict[str, int]  # routing / data / definition / untagged → rejections
    conversion: Funnel
    escalations: list[tuple[str, str, int]]  # ladder, action, fired
    speed_minutes: list[int]  # posted → first touch, business minutes (for the chart)
    speed_on_time: list[bool]  # each of those leads: touched by its own deadline
    window_minutes: dict[str, int]  # each tier's first-touch window (the chart's lines)
    first_touch: tuple[int, int]  # first-touch compliance's (touched by the deadline, due)
    daily_compliance: list[tuple[date, float | None]]
    in_progress: bool  # the period has not ended at `as_of`
    elapsed: bool = False  # response times in calendar time (`responds_in_calendar_time`)

    @property
    def received(self) -> int:
        return sum(s.received for s in self.by_segment)

    @property
    def empty(self) -> bool:
        return self.received == 0


def share(part: int, whole: int) -> float | None:
    return part / whole if whole else None


def percentile(values: list[int], fraction: float) -> int | None:
    """Nearest-rank percentile (p50 = median) of whole minutes; None for no values."""
    if not values:
        return None
    ordered = sorted(values)
    rank = max(1, math.ceil(fraction * len(ordered)))
    return ordered[rank - 1]


@dataclass(frozen=True)
class AttemptStandard:
    """The follow-up standard a report measures coverage against, as of its `as_of`."""

    min_attempts: int
    closed_before: datetime  # a claim at or before this has had its whole attempt window
    channels: int | None = None  # `follow_up.channels`: the channels the attempts must use


def attempt_standard(policy: Policy, as_of: datetime) -> AttemptStandard:
    """`follow_up.min_attempts` and `channels`, and the latest claim whose window
    (`follow_up.within` after the claim, on the team's calendar) has ended by `as_of`."""
    closed_before = policy.calendar.before(as_of, policy.follow_up.within)
    standard = policy.follow_up
    return AttemptStandard(standard.min_attempts, closed_before, standard.channels)


def mean(values: list[int]) -> float | None:
    """The arithmetic mean, rounded to whole minutes like the percentiles; None for no values."""
    return float(round(sum(values) / len(values))) if values else None


def rag(
    value: float | None, target: float | None, margin: float, relative: bool = False
) -> Rag | None:
    if value is None or target is None:
        return None
    if value >= target:
        return "green"
    floor = target * (1 - margin) if relative else target - margin
    return "yellow" if value >= floor else "red"


def rag_within(value: float | None, target: float | None, margin: float) -> Rag | None:
    """The colour of a time, where less is better: green at or under target, yellow over it by at
    most `margin` of the target, red beyond."""
    if value is None or target is None:
        return None
    if value <= target:
        return "green"
    return "yellow" if value <= target * (1 + margin) else "red"


def responds_in_calendar_time(policy: Policy) -> bool:
    """Whether the SLA's first-touch clock is calendar time: every tier's `first_touch` is
    (`24h`); one business-time tier (`2 business hours`) makes it working time."""
    return all(tier.first_touch.clock is Clock.CALENDAR for tier in policy.tiers)


def response_clock(policy: Policy, times: Iterable[Times]) -> WorkingClock | CalendarClock:
    """The clock a report measures response time, speed to lead and time to claim in: the
    SLA's first-touch clock (`responds_in_calendar_time`): elapsed time, or working time on
    the team's calendar."""
    if responds_in_calendar_time(policy):
        return CalendarClock()
    calendar = policy.calendar
    # The clock starts the day before the earliest arrival and grows to later instants.
    low = min(map(attrgetter("received_at"), times), default=0.0)
    first = datetime.fromtimestamp(low, calendar.zone).date() - timedelta(days=1)
    last = first + timedelta(days=7)
    return WorkingClock(calendar, first, last)


def clock_minutes(duration: Duration, policy: Policy) -> int:
    """`duration` in the minutes `response_clock` measures. On the working clock a calendar
    duration (a `24h` tier beside a `2 business hours` one) is the most working time it can
    hold (`most_worked`). `24h` is one working day (480 minutes on 09:00–17:00), never 1,440
    working minutes (three days); `1w` is five on Monday to Friday, not seven."""
    minutes = duration.total_minutes(policy.calendar.minutes_per_day)
    if duration.clock is not Clock.CALENDAR or responds_in_calendar_time(policy):
        return minutes
    return most_worked(policy.calendar, minutes)


_WEEK_MINUTES = 7 * 24 * 60


def most_worked(calendar: BusinessCalendar, minutes: int) -> int:
    """The most working minutes `minutes` of elapsed time can hold on `calendar`'s week (its
    working days and hours; holidays aside, as they only take time away). Its most is where
    it starts as a working day opens or ends as one closes; each whole week holds its all."""
    weeks, minutes = divmod(minutes, _WEEK_MINUTES)
    opens = calendar.start.hour * 60 + calendar.start.minute
    spans = [
        (day * 24 * 60 + opens, day * 24 * 60 + opens + calendar.minutes_per_day)
        for day in sorted(calendar.days)
    ]

    def held(begin: int) -> int:
        end, total = begin + minutes, 0
        for week in range(begin // _WEEK_MINUTES - 1, end // _WEEK_MINUTES + 1):
            for first, last in spans:
                shift = week * _WEEK_MINUTES
                total += max(0, min(last + shift, end) - max(first + shift, begin))
        return total

    most = max((held(start) for span in spans for start in (span[0], span[1] - minutes)), default=0)
    return weeks * len(spans) * calendar.minutes_per_day + most


def target_minutes(target: Duration | None, policy: Policy) -> float | None:
    """A time target in the minutes `response_clock` measures (`clock_minutes`)."""
    if target is None:
        return None
    return float(clock_minutes(target, policy))


def speed_targets(policy: Policy, target_of: Duration | None = None) -> dict[str, float | None]:
    """Each tier's speed-to-lead target in `target_minutes`: `targets.speed_to_lead`, or the
    tier's first-touch window where the SLA gives the tier longer (a warm lead's business day
    is not late at three hours); None without `targets.speed_to_lead`. `target_of`: another
    time target judged the same way (`targets.response_time`)."""
    chosen = policy.targets.speed_to_lead if target_of is None else target_of
    target = target_minutes(chosen, policy)
    found: dict[str, float | None] = {}
    for tier in policy.tiers:
        window = float(clock_minutes(tier.first_touch, policy))
        found[tier.name] = None if target is None else max(target, window)
    return found


@dataclass
class _Durations:
    claim: list[int] = field(default_factory=list)
    speed: list[int] = field(default_factory=list)
    on_time: list[bool] = field(default_factory=list)  # each `speed`: touched by its deadline
    tier_speed: dict[str, list[int]] = field(default_factory=dict)
    response: list[int] = field(default_factory=list)
    response_tiers: list[str | None] = field(default_factory=list)  # each `response`'s tier
    # Of `speed` and `response`: leads not touched yet, past their first-touch deadline, at
    # their time so far (a lower bound: leaving them out made ignored leads improve the
    # figures), overall and by tier.
    untouched: int = 0
    tier_untouched: dict[str, int] = field(default_factory=dict)

    def so_far(self, count: int, untouched: int) -> str:
        """`6 leads` or `6 leads, 2 not touched yet`."""
        return leads_count(count) + (f", {untouched} not touched yet" if untouched else "")


def _measure(
    times: Sequence[Times], clock: WorkingClock | CalendarClock, as_of: Seconds
) -> dict[Group, _Durations]:
    """Each posted MQL's time to claim, speed to lead and response time, in working minutes,
    by group: once per report (a slice merges its groups' lists). A lead not touched by
    `as_of` and past its first-touch deadline counts at its time so far."""
    found: dict[Group, _Durations] = {}
    # Each group's durations by the group's id first: a group hashes its fields at every
    # look-up, and rows share one group object (`times` keeps them, so no id is reused).
    by_id: dict[int, _Durations] = {}
    at = clock.at
    now = at(as_of)
    for item in times:
        posted = item.posted_at
        if posted is None:
            continue
        durations = by_id.get(id(item.group))
        if durations is None:
            durations = found.get(item.group)
            if durations is None:
                durations = found[item.group] = _Durations()
            by_id[id(item.group)] = durations
        opened = at(posted)
        claimed = item.claimed_at
        if claimed is not None:
            durations.claim.append(_minutes(opened, at(claimed)) if claimed > posted else 0)
        touched, due = item.first_touch_at, item.first_touch_due_at
        closed = item.closed_at is not None and item.closed_at <= as_of
        waiting = touched is None and due is not None and due <= as_of and not closed
        if touched is None and not waiting:
            continue
        until = as_of if touched is None else touched
        reached = now if touched is None else at(touched)
        speed = _minutes(opened, reached) if until > posted else 0
        durations.speed.append(speed)
        # as the lead's card says
        durations.on_time.append(touched is not None and (due is None or touched <= due))
        if item.tier is not None:
            durations.tier_speed.setdefault(item.tier, []).append(speed)
        created = item.mql_at or item.received_at
        response = _minutes(at(created), reached) if until > created else 0
        durations.response.append(response)
        durations.response_tiers.append(item.tier)
        if waiting:
            durations.untouched += 1
            if item.tier is not None:
                tiers = durations.tier_untouched
                tiers[item.tier] = tiers.get(item.tier, 0) + 1
    return found


def _minutes(start: float, end: float) -> int:
    """Whole minutes between two readings of a clock, in seconds (kept to the millisecond)."""
    return round((end - start) * 1000) // 60_000


def _merge(parts: Iterable[_Durations]) -> _Durations:
    found = _Durations()
    for part in parts:
        found.claim += part.claim
        found.speed += part.speed
        found.on_time += part.on_time
        found.response += part.response
        found.response_tiers += part.response_tiers
        found.untouched += part.untouched
        for tier, count in part.tier_untouched.items():
            found.tier_untouched[tier] = found.tier_untouched.get(tier, 0) + count
        for tier, speeds in part.tier_speed.items():
            found.tier_speed.setdefault(tier, []).extend(speeds)
    return found


def _shares(counts: Counts, policy: Policy, previous: Counts | None) -> list[Kpi]:
    """The share KPIs of one group of counts."""
    targets, margin = policy.targets, policy.report.yellow_margin
    before = previous or Counts()
    rows: list[tuple[str, str, int, int, int, int, float | None]] = [
        (
            "first_touch",
            "First-touch compliance",
            counts.touched_on_time,
            counts.touch_due,
            before.touched_on_time,
            before.touch_due,
            targets.first_touch_compliance,
        ),
        (
            "acceptance",
            "MQL → SAL (acceptance)",
            counts.accepted,
            counts.accept_due,
            before.accepted,
            before.accept_due,
            targets.acceptance_rate,
        ),
        (
            "sal_to_sql",
            "SAL → SQL",
            counts.sql,
            counts.accepted,
            before.sql,
            before.accepted,
            targets.sal_to_sql_rate,
        ),
        (
            "mql_to_sql",
            "MQL → SQL",
            counts.sql,
            counts.posted,
            before.sql,
            before.posted,
            targets.mql_to_sql_rate,
        ),
        (
            "sql_to_sqo",
            "SQL → SQO",
            counts.sqo,
            counts.sql,
            before.sqo,
            before.sql,
            targets.sql_to_sqo_rate,
        ),
        (
            "win_rate",
            "Win rate",
            counts.won,
            counts.won + counts.lost,
            before.won,
            before.won + before.lost,
            targets.win_rate,
        ),
        (
            "recycle_to_sql",
            "Recycle → SQL",
            counts.recycled_sql,
            counts.recycled,
            before.recycled_sql,
            before.recycled,
            targets.recycle_to_sql_rate,
        ),
        (
            "feedback",
            "Feedback completion",
            counts.feedback_on_time,
            counts.feedback_due,
            before.feedback_on_time,
            before.feedback_due,
            targets.feedback_completion,
        ),
        (
            "final",
            "Final disposition on time",
            counts.final_on_time,
            counts.final_due,
            before.final_on_time,
            before.final_due,
            None,
        ),
        (
            "attempts",
            "Coverage (minimum attempts)",
            counts.attempts_covered,
            counts.attempts_closed,
            before.attempts_covered,
            before.attempts_closed,
            targets.attempts_coverage,
        ),
        (
            "completeness",
            "Data completeness",
            counts.complete,
            counts.complete_known,
            before.complete,
            before.complete_known,
            targets.data_completeness,
        ),
    ]
    if policy.icp is not None:
        rows.append(
            (
                "icp",
                "ICP match",
                counts.icp,
                counts.icp_known,
                before.icp,
                before.icp_known,
                targets.icp_match,
            )
        )
    kpis = []
    for key, label, part, whole, part_before, whole_before, target in rows:
        value = share(part, whole)
        kpis.append(
            Kpi(
                key,
                label,
                "share",
                value,
                target,
                rag(value, target, margin),
                share(part_before, whole_before) if previous is not None else None,
                f"{part} of {whole}",
            )
        )
    return kpis


def _timing(
    now: _Durations,
    before: _Durations | None,
    policy: Policy,
    keys: Collection[str] | None = None,
) -> list[Kpi]:
    """The duration KPIs (`keys`: only those, as a slice shows speed to lead alone): `None`
    as the fraction means the mean. Less is better."""
    targets, margin = policy.targets, policy.report.yellow_margin
    response = None  # the mean response time's target reads every lead's tier: only if shown
    if keys is None or "response_mean" in keys:
        response = _mix_target(now.response_tiers, targets.response_time, policy)
    # All leads together have one speed target only when every tier has the same one.
    by_tier = set(speed_targets(policy).values())
    speed = by_tier.pop() if len(by_tier) == 1 else None
    claim = target_minutes(targets.time_to_claim, policy)
    rows: list[tuple[str, str, str, float | None, float | None]] = [
        ("response_mean", "Response time from MQL creation (mean)", "response", None, response),
        # seed 002's target is the mean's ("average time"): the median has none of its own
        ("response_median", "Response time from MQL creation (median)", "response", 0.5, None),
        ("speed_median", "Speed to lead from the post (median)", "speed", 0.5, speed),
        ("speed_p90", "Speed to lead from the post (p90)", "speed", 0.9, speed),
        ("claim_median", "Time to claim (median)", "claim", 0.5, claim),
    ]

    # A quarter's list holds 200,000 minutes: sorted once for its median and its p90 (a
    # sorted list sorts again in one pass).
    ordered: dict[tuple[bool, str], list[int]] = {}

    def measure(durations: _Durations, name: str, fraction: float | None) -> float | None:
        values: list[int] = getattr(durations, name)
        if fraction is None:
            return mean(values)
        key = (durations is now, name)
        if key not in ordered:
            ordered[key] = sorted(values)
        return _float(percentile(ordered[key], fraction))

    kpis = []
    for key, label, name, fraction, target in rows:
        if keys is not None and key not in keys:
            continue
        earlier = None if before is None else measure(before, name, fraction)
        value = measure(now, name, fraction)
        kpis.append(
            Kpi(
                key,
                label,
                "minutes",
                value,
                target,
                rag_within(value, target, margin),
                previous=earlier,
                detail=now.so_far(len(getattr(now, name)), 0 if name == "claim" else now.untouched),
            )
        )
    return kpis


def _mix_target(tiers: list[str | None], target: Duration | None, policy: Policy) -> float | None:
    """The mean response time the SLA allows for the leads measured: each lead's tier target
    (`targets.response_time`, or the tier's first-touch window where it is longer, as for
    speed), averaged over them. A warm lead touched on its business day is on time, so it must
    not turn the mean red (seed 000: "2 hours for high‑intent, 24 hours for mid‑funnel")."""
    base = target_minutes(target, policy)
    if base is None:
        return None
    by_tier = {tier: minutes or base for tier, minutes in speed_targets(policy, target).items()}
    if len(set(by_tier.values())) == 1:
        return next(iter(by_tier.values()))
    if not tiers:
        return base
    allowed = [by_tier.get(tier, base) if tier else base for tier in tiers]
    return float(round(sum(allowed) / len(allowed)))


def _speed_by_tier(now: _Durations, before: _Durations | None, policy: Policy) -> list[Kpi]:
    """Speed to lead of each tier (the SLA's, then any other a lead was given), median and
    p90, against the tier's own target (`speed_targets`): keys `speed_median.hot`, …."""
    targets, margin = speed_targets(policy), policy.report.yellow_margin
    tiers = list(targets) + sorted(set(now.tier_speed) - set(targets))
    kpis = []
    for tier in tiers:
        # sorted once for the median and the p90 (`_timing`)
        values = sorted(now.tier_speed.get(tier, []))
        earlier = None if before is None else sorted(before.tier_speed.get(tier, []))
        for key, name, fraction in (("speed_median", "median", 0.5), ("speed_p90", "p90", 0.9)):
            value = _float(percentile(values, fraction))
            kpis.append(
                Kpi(
                    f"{key}.{tier}",
                    f"Speed to lead from the post, {tier} ({name})",
                    "minutes",
                    value,
                    targets.get(tier),
                    rag_within(value, targets.get(tier), margin),
                    previous=None if earlier is None else _float(percentile(earlier, fraction)),
                    detail=now.so_far(len(values), now.tier_untouched.get(tier, 0)),
                )
            )
    return kpis


# The headline's sums over the period (the rest are rates, times and ratings, which read the
# same part way through a period): a period in progress has no change for these.
RUNNING_TOTALS = frozenset({"mql", "pipeline", "won_amount"})

VELOCITY_LABELS = {
    "mql_to_sal": "MQL → SAL",
    "sal_to_sql": "SAL → SQL",
    "sql_to_opportunity": "SQL → opportunity",
    "opportunity_to_won": "opportunity → won",
}


def _velocity(counts: Counts, before: Counts, policy: Policy) -> list[Kpi]:
    """Lead velocity (seed 002): the mean calendar days of each step, over the leads that made
    that step."""
    targets, margin = policy.targets.lead_velocity, policy.report.yellow_margin
    kpis = []
    for step, label in VELOCITY_LABELS.items():
        leads, old = getattr(counts, f"{step}_leads"), getattr(before, f"{step}_leads")
        value = getattr(counts, f"{step}_days") / leads if leads else None
        target = targets.get(step)
        kpis.append(
            Kpi(
                f"velocity_{step}",
                f"Lead velocity {label}",
                "days",
                value,
                target,
                rag_within(value, target, margin),
                getattr(before, f"{step}_days") / old if old else None,
                leads_count(leads),
            )
        )
    return kpis


def _revenue(
    counts: Counts,
    before: Counts,
    policy: Policy,
    period: Period | None,
    in_progress: bool,
) -> list[Kpi]:
    """Pipeline generated, won amounts and the reps' lead-quality ratings. `period`: scale the
    weekly amount targets to it (None: a slice, which has no amount target)."""
    targets, margin = policy.targets, policy.report.yellow_margin
    weeks = period.length / 7 if period is not None else None

    def amount(key: str, label: str, value: float, old: float, per_week: float | None) -> Kpi:
        target = per_week * weeks if per_week is not None and weeks is not None else None
        colour = None if in_progress else rag(value, target, margin, relative=True)
        return Kpi(key, label, "amount", value, target, colour, old)

    def quality(key: str, label: str, total: int, rated: int, old: tuple[int, int]) -> Kpi:
        value = total / rated if rated else None
        target = targets.lead_quality
        earlier = old[0] / old[1] if old[1] else None
        colour = rag(value, target, margin, relative=True)
        return Kpi(key, label, "score", value, target, colour, earlier, f"{rated} rated")

    opportunities = (
        f"{counts.opportunities} opportunit{'y' if counts.opportunities == 1 else 'ies'}"
    )
    return [
        replace(
            amount(
                "pipeline",
                "Pipeline generated",
                counts.pipeline,
                before.pipeline,
                targets.pipeline_per_week,
            ),
            detail=opportunities,
        ),
        replace(
            amount("won_amount", "Won", counts.won_amount, before.won_amount, targets.won_per_week),
            detail=f"{counts.won} won, {counts.lost} lost",
        ),
        quality(
            "quality_fit",
            "Lead quality: fit",
            counts.fit_total,
            counts.fit_rated,
            (before.fit_total, before.fit_rated),
        ),
        quality(
            "quality_timing",
            "Lead quality: timing",
            counts.timing_total,
            counts.timing_rated,
            (before.timing_total, before.timing_rated),
        ),
    ]


def _float(value: int | None) -> float | None:
    return None if value is None else float(value)


def _total(counts: Iterable[Counts]) -> Counts:
    total = Counts()
    for item in counts:
        total += item
    return total


def _slices(
    facts: Facts,
    previous: Facts,
    measured: tuple[dict[Group, _Durations], dict[Group, _Durations]],
    policy: Policy,
    key: str | Callable[[Group], str],
) -> list[Slice]:
    def name_of(group: Group) -> str:
        value = key(group) if callable(key) else getattr(group, key)
        return value if value is not None else UNCLAIMED

    names = sorted({name_of(group) for group in facts.counts})
    slices = []
    for name in names:
        now = _total(c for g, c in facts.counts.items() if name_of(g) == name)
        before = _total(c for g, c in previous.counts.items() if name_of(g) == name)
        times = _merge(d for g, d in measured[0].items() if name_of(g) == name)
        earlier = _merge(d for g, d in measured[1].items() if name_of(g) == name)
        kpis = [
            Kpi("mql", "MQLs", "count", float(now.mql), previous=float(before.mql)),
            Kpi("sql", "SQLs", "count", float(now.sql), previous=float(before.sql)),
            Kpi("opportunities", "Opportunities", "count", float(now.opportunities)),
            *_shares(now, policy, before),
            *_timing(times, earlier, policy, ("speed_median",)),
            *_revenue(now, before, policy, None, True),
        ]
        slices.append(Slice(name, now.received, kpis))
    return slices


def build_report(
    period: Period,
    facts: Facts,
    previous: Facts,
    policy: Policy,
    as_of: datetime,
    segment: str | None = None,
) -> Report:
    """The report of `period` from what the database counted (and the period before it)."""
    margin = policy.report.yellow_margin
    total, before = _total(facts.counts.values()), _total(previous.counts.values())
    clock = response_clock(policy, [*facts.times, *previous.times])
    seconds = as_of.timestamp()
    measured = (_measure(facts.times, clock, seconds), _measure(previous.times, clock, seconds))
    now_times = _merge(measured[0].values())
    before_times = _merge(measured[1].values()) if previous.times else None
    in_progress = as_of < period.end
    headline = [
        Kpi(
            "mql",
            "MQLs",
            "count",
            float(total.mql),
            previous=float(before.mql),
            detail=f"of {leads_count(total.received)} received",
        ),
        *_shares(total, policy, before),
        *_timing(now_times, before_times, policy),
        *_speed_by_tier(now_times, before_times, policy),
        *_velocity(total, before, policy),
        *_revenue(total, before, policy, period, in_progress),
    ]
    if in_progress:
        # A count or an amount so far against the whole period before read as a fall ("MQLs
        # 0 · ▼ 31" on Monday morning): compared once the period has ended, as it is coloured.
        headline = [
            replace(kpi, previous=None) if kpi.key in RUNNING_TOTALS else kpi for kpi in headline
        ]
    volume = []
    segments = [segment] if segment else [s.name for s in policy.segments]
    for name in segments:
        got = sum(c.mql for g, c in facts.counts.items() if g.segment == name)
        had = sum(c.mql for g, c in previous.counts.items() if g.segment == name)
        target, detail = _volume_target(policy.targets.mql_per_week.get(name), period)
        colour = None if in_progress else rag(float(got), target, margin, relative=True)
        volume.append(Kpi(name, name, "count", float(got), target, colour, float(had), detail))
    labels = {d.code: d.label for d in policy.dispositions}
    mix: dict[str, int] = {}
    reasons: list[Reason] = []
    problems: dict[str, int] = {}
    for (code, reason), leads in facts.dispositions.items():
        mix[code] = mix.get(code, 0) + leads
        disposition = policy.disposition(code)
        if disposition is None or disposition.outcome != "reject":
            continue
        problem = disposition.problem_of(reason)
        reasons.append(Reason(code, reason or "(no reason)", problem, leads))
        problems[problem or "untagged"] = problems.get(problem or "untagged", 0) + leads
    reasons.sort(key=lambda r: (-r.leads, r.reason))
    progressing = [d for d in policy.dispositions if d.outcome == "progressing"]
    if total.progressing:  # marketing hears "contacted" too (seed 000's picklist)
        code = progressing[0].code if progressing else "progressing"
        labels[code] = f"{labels.get(code, 'Progressing')} (still open)"
        mix[code] = mix.get(code, 0) + total.progressing
    # Most first; equal counts by name, as reasons are, whatever order the database grouped in.
    dispositions = sorted(
        ((c, labels.get(c, c), n) for c, n in mix.items()), key=lambda x: (-x[2], x[1])
    )
    escalations = sorted(
        ((lad, act, n) for (lad, act), n in facts.escalations.items()), key=lambda x: (x[0], x[1])
    )
    windows = {t.name: clock_minutes(t.first_touch, policy) for t in policy.tiers}
    return Report(
        period=period,
        previous_period=period.previous(),
        as_of=as_of,
        segment=segment,
        headline=headline,
        volume=volume,
        by_segment=_slices(facts, previous, measured, policy, "segment"),
        by_source=_slices(facts, previous, measured, policy, "source"),
        by_campaign=_slices(facts, previous, measured, policy, campaign_of),
        by_rep=_slices(facts, previous, measured, policy, rep_of),
        dispositions=dispositions,
        reasons=reasons,
        problems=problems,
        conversion=Funnel(
            total.mql, total.posted, total.accepted, total.sql, total.posted - total.accept_due
        ),
        escalations=escalations,
        speed_minutes=now_times.speed,
        speed_on_time=now_times.on_time,
        window_minutes=windows,
        first_touch=(total.touched_on_time, total.touch_due),
        daily_compliance=daily_compliance(period, facts.times, as_of),
        in_progress=in_progress,
        elapsed=responds_in_calendar_time(policy),
    )


def campaign_of(group: Group) -> str:
    """A campaign's name in the report: its source and campaign (`webinar · Q4 launch`)."""
    return f"{group.source} · {group.campaign}"


def _volume_target(per_week: int | None, period: Period) -> tuple[float | None, str]:
    """A segment's MQL target for the period: the weekly target, times the period's days ÷ 7
    for a month or a quarter (a month has about 4.3 weeks, a quarter 13)."""
    if per_week is None:
        return None, "no target"
    if period.kind == "week":
        return float(per_week), f"target {per_week}"
    target = per_week * period.length / 7
    return target, f"target {target:.0f} ({per_week} a week × {period.length / 7:.1f} weeks)"


def daily_compliance(
    period: Period, times: list[Times], as_of: datetime
) -> list[tuple[date, float | None]]:
    """First-touch compliance of the MQLs received each day of the period (None: none due)."""
    days = period.days
    midnights = [_midnight(day, period.zone).timestamp() for day in days]
    now = as_of.timestamp()
    due = [0] * len(days)
    met = [0] * len(days)
    for item in times:
        deadline = item.first_touch_due_at
        if deadline is None:
            continue
        touched = item.first_touch_at
        if touched is None and deadline > now:
            continue  # still running
        index = bisect_right(midnights, item.received_at) - 1
        if not 0 <= index < len(days):
            continue
        due[index] += 1
        if touched is not None and touched <= deadline:
            met[index] += 1
    return [(day, share(met[i], due[i])) for i, day in enumerate(days)]
