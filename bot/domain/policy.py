"""The SLA file (`sla.yaml`) as a typed, validated policy, and its problems as readable lines."""

from __future__ import annotations

import difflib
import hashlib
import json
import math
import re
import sys
import unicodedata
from collections import Counter
from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from datetime import date, datetime, time, timedelta
from functools import cached_property
from typing import Annotated, Any, Literal, Self, TypeVar, get_args, get_origin
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError, available_timezones

import holidays as holiday_data
import yaml
from pydantic import (
    AfterValidator,
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    ValidationError,
    ValidationInfo,
    field_serializer,
    field_validator,
    model_validator,
)

from bot.domain.accounts import FREE_MAIL, normalise_domain, parse_named_accounts
from bot.domain.businesstime import WEEKDAYS, BusinessCalendar
from bot.domain.durations import Clock, Duration

LEAD_FIELDS = (
    "email",
    "name",
    "title",
    "phone",
    "company.name",
    "company.domain",
    "company.employees",
    "company.industry",
    "company.country",
    "source",
    "campaign",
)
# `progressing` is feedback, not an outcome that closes the lead: the rep made contact and keeps
# working it; its final disposition (one of the others) comes later, by the final deadline.
Outcome = Literal["sql", "reject", "nurture", "recycle", "progressing", "more_info"]
# What a rejection says went wrong: the lead went to the wrong place, its data was bad, or the
# MQL definition let it through.
Problem = Literal["routing", "data", "definition"]
Weekday = Literal["mon", "tue", "wed", "thu", "fri", "sat", "sun"]
_WEEK: tuple[Weekday, ...] = ("mon", "tue", "wed", "thu", "fri", "sat", "sun")
# A Slack id says its kind by its first letter: a user U or W (Enterprise Grid), a channel C
# (public) or G (private); D, a direct message, is no field's.
_ID_SHAPE = re.compile(r"^[A-Z0-9][A-Z0-9_]{1,30}$")
_KIND_ID = {
    "user": re.compile(r"^[UW][A-Z0-9_]{1,30}$"),
    "channel": re.compile(r"^[CG][A-Z0-9_]{1,30}$"),
}
_KIND_OF = {"U": "user", "W": "user", "C": "channel", "G": "channel", "D": "direct message"}
_EXAMPLE_ID = {"user": "U0123ABCD", "channel": "C0123ABCD"}
# A pasted link: …slack.com/archives/C0MKTFEED(/p…), …/team/U0123ABCD, …/client/T…/C0MKTFEED.
_LINKED_ID = re.compile(r"slack\.com/(?:[^?#\s]*/)?([UWCGD][A-Z0-9]{2,30})(?:[/?#]|$)")
_CODE = re.compile(r"^[a-z][a-z0-9_]{0,40}$")


class PolicyError(Exception):
    """A broken SLA file: every problem, each as `path: message`."""

    def __init__(self, problems: list[str], source: str = "sla.yaml") -> None:
        self.problems = problems
        self.source = source
        super().__init__(f"{source}: " + "; ".join(problems))


# YAML 1.1 reads these words without quotes as booleans, which pydantic takes as 1 and 0 where a
# number belongs: `threshold: yes` made any lead with a point an MQL.
_BOOL_AS_NUMBER = {
    True: "read as true (YAML reads yes, on and y without quotes as true): write a number",
    False: "read as false (YAML reads no, off and n without quotes as false): write a number",
}


def _holds_number(annotation: Any) -> bool:
    """A field's type is a number (`int`, `float | None`, `Annotated[int, …]`): no boolean."""
    if get_origin(annotation) is Annotated:
        return _holds_number(get_args(annotation)[0])
    kinds = set(get_args(annotation) or (annotation,)) - {type(None)}
    return bool(kinds) and kinds <= {int, float}


class _Model(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    @field_validator("*", mode="before")
    @classmethod
    def _no_boolean_numbers(cls, value: Any, info: ValidationInfo) -> Any:
        """A boolean where a number belongs (or in a mapping of numbers) is refused."""
        if info.field_name is None:
            return value
        annotation = cls.model_fields[info.field_name].annotation
        if isinstance(value, bool) and _holds_number(annotation):
            raise ValueError(_BOOL_AS_NUMBER[value])
        return value


def _no_boolean(value: Any) -> Any:
    """A number in a mapping of numbers (`weights`, `mql_per_week`): no boolean either."""
    if isinstance(value, bool):
        raise ValueError(_BOOL_AS_NUMBER[value])
    return value


# The numbers of a mapping of numbers, each refused by its own path if YAML read it as a boolean.
WholeNumber = Annotated[int, BeforeValidator(_no_boolean)]
Number = Annotated[float, BeforeValidator(_no_boolean)]


# The longest duration an SLA file may give (in days of either clock): past it, deadlines
# would fall beyond any calendar the product can count in.
LONGEST_DAYS = 3 * 366


# What YAML reads as no value: `key:` with nothing after it, and `key: #enterprise`, where the #
# starts a comment. Said with what to write: pydantic's "input should be a valid string" (or the
# text 'None') left a person wondering what was wrong with what they wrote.
_NOTHING = "(YAML reads an empty value, or one that starts with #, as nothing)"
_DURATION_LIKE = "a duration, like 72h or 2 business hours"


def _no_value(write: str) -> str:
    """The problem of a key given no value, saying what to `write` there."""
    return f"has no value: write {write} {_NOTHING}"


def _stored(info: ValidationInfo) -> bool:
    """Whether what is read is a stored SLA version (`check_policy(stored=True)`), not a file."""
    return bool((info.context or {}).get("stored"))


def _duration(value: Any, stored: bool = False) -> Duration:
    """A duration of the SLA file, or (`stored`) of a stored SLA version."""
    duration = _any_duration(value)
    if duration.days + duration.minutes / (24 * 60) > LONGEST_DAYS:
        raise ValueError(
            f"{_as_written(value)} is longer than 3 years: an SLA's durations are at most 3 years "
            "(write days or weeks, like 90d or 26w)"
        )
    # After the length: past 3 years, either form `_clockless` gives would be refused in turn.
    if isinstance(value, dict) and "clock" not in value and not stored:
        raise ValueError(_clockless(value, duration.days, duration.minutes))
    return duration


def _any_duration(value: Any) -> Duration:
    if isinstance(value, Duration):
        return value
    if value is None:
        raise ValueError(_no_value(_DURATION_LIKE))
    if isinstance(value, dict):  # a stored snapshot's form; in the file it says its clock
        days, minutes = value.get("days", 0), value.get("minutes", 0)
        # A snapshot stored before durations carried their clock counted business time, and
        # a running lead keeps the meaning it arrived with; the file's is refused (`_duration`).
        clock = value.get("clock", Clock.BUSINESS.value)
        parts_ok = all(type(part) is int and part >= 0 for part in (days, minutes))
        known = clock in (Clock.CALENDAR.value, Clock.BUSINESS.value)
        if set(value) - {"days", "minutes", "clock"} or not parts_ok or not known:
            raise ValueError(
                f"{_as_written(value)} is not a duration: write it like 30m, 24h or 1bd"
            )
        if days + minutes == 0:
            raise ValueError(
                f"{_as_written(value)} is not a duration: write it like 30m, 24h or 1bd"
            )
        return Duration(days=days, minutes=minutes, clock=Clock(clock))
    if _no_number(value):  # -5, .nan, .inf: no unit would make them one
        raise ValueError(f"{value:g} is not a duration: write it like 30m, 24h or 1bd")
    if isinstance(value, bool) or isinstance(value, int | float):
        raise ValueError(
            f"{value!r} has no unit: write a duration with its clock, like {value:g}h "
            f"(calendar hours) or {value:g} business hours"
        )
    return Duration.parse(str(value))


def _clockless(value: dict[str, Any], days: int, minutes: int) -> str:
    """The problem of a duration mapping in the file that does not say its clock. SPEC.md: "A
    compact duration is calendar time: `30m`, `24h`, `3d`, `2w`. Business time says so: `2
    business hours`…": such a mapping says neither, and a stored version reads the same mapping
    as business time (above), so the file may not read it either way (docs/sla-file.md#durations-
    and-clocks)."""
    calendar = Duration(days=days, minutes=minutes, clock=Clock.CALENDAR)
    business = Duration(days=days, minutes=minutes, clock=Clock.BUSINESS)
    written = _as_written(value)
    return f"{written} does not say its clock: write {calendar} (calendar time) or {business}"


def _as_written(value: Any) -> str:
    """A duration's value as the file writes it: a mapping in YAML's flow style
    (`{minutes: 120}`, not Python's `{'minutes': 120}`), anything else quoted."""
    if isinstance(value, dict):
        return "{" + ", ".join(f"{key}: {part}" for key, part in value.items()) + "}"
    return repr(value)


def _no_number(value: Any) -> bool:
    """A number (not a boolean) no unit makes a duration: negative, zero, NaN or infinite."""
    if isinstance(value, bool) or not isinstance(value, int | float):
        return False
    return not math.isfinite(value) or value <= 0


IdKind = Literal["user", "channel"]


def _slack_id(value: str, kind: IdKind, info: ValidationInfo) -> str:
    """`value`, a Slack id of its kind; ValueError otherwise. A stored SLA version's ids are
    not checked again: they passed the checks of their day, and its running leads keep them."""
    if (info.context or {}).get("stored"):
        return value
    problem = _slack_id_problem(value, kind)
    if problem is not None:
        raise ValueError(problem)
    return value


def _slack_id_problem(value: str, kind: IdKind) -> str | None:
    """Why `value` is not a Slack `kind` id, with an example of that kind (None: it is one):
    another kind's id says which, and a pasted Slack link names the id it holds."""
    if _KIND_ID[kind].match(value):
        return None
    like = f"like {_EXAMPLE_ID[kind]}"
    link = _LINKED_ID.search(value)
    if link is not None:
        linked = link.group(1)
        if _KIND_ID[kind].match(linked):
            return f"{value!r} is a Slack link, not a {kind} id: did you mean {linked}?"
        return f"{value!r} is a link to a Slack {_KIND_OF[linked[0]]}, not a {kind} id ({like})"
    other = _KIND_OF.get(value[:1])
    if other is not None and _ID_SHAPE.match(value):
        return f"{value!r} is a Slack {other} id, not a {kind} id ({like})"
    return f"{value!r} is not a Slack {kind} id ({like})"


def _clock(value: Any) -> time | None:
    text = str(value)
    if text == "24:00":
        return None
    match = re.fullmatch(r"([01]?\d|2[0-3]):([0-5]\d)", text)
    if not match:
        raise ValueError(f"{text!r} is not a time of day like 09:00")
    return time(int(match.group(1)), int(match.group(2)))


# The time after a date that is the day itself, midnight (`2026-12-24 00:00`, `…T00:00:00Z`):
# pydantic takes the date, as it did before a time of day was refused.
_MIDNIGHT = re.compile(r"[Tt ]0?0:00(?::00(?:\.0+)?)?\s*(?:[Zz]|[+-]\d{2}(?::?\d{2})?)?")


def _closed_day(value: Any) -> Any:
    """A closed day is a date: pydantic reads a number (or a number in quotes) as seconds since
    1970 (`closed: [0]` closed 1 January 1970) and words a date with a time in its own terms."""
    if isinstance(value, bool | int | float) or (
        isinstance(value, str) and re.fullmatch(r"[-+]?\d+(?:\.\d+)?", value.strip())
    ):
        raise ValueError(f"{str(value).strip()} is not a date: write it like 2026-12-24")
    if isinstance(value, datetime):  # YAML's timestamp: `2026-12-24 10:00` unquoted
        if value.time() == time(0):
            return value
        raise ValueError(
            f"{value:%Y-%m-%d %H:%M} has a time of day: write the date alone, like {value:%Y-%m-%d}"
        )
    text = str(value).strip()
    timed = re.fullmatch(r"(\d{4}-\d{2}-\d{2})([Tt ]\d.*)", text)
    if timed is not None and not _MIDNIGHT.fullmatch(timed.group(2)):
        raise ValueError(f"{text} has a time of day: write the date alone, like {timed.group(1)}")
    return value


class BusinessHours(_Model):
    # `holidays` comes first: without `days`, the working week is its country's (`_days`).
    holidays: str | list[str] | None = None
    days: list[Weekday] = Field(default=None, validate_default=True, min_length=1)
    start: str = "09:00"
    end: str = "17:00"
    closed: list[Annotated[date, BeforeValidator(_closed_day)]] = Field(default_factory=list)

    @field_validator("days", mode="before")
    @classmethod
    def _days(cls, value: Any, info: ValidationInfo) -> Any:
        """No `days`: the days outside the holiday country's weekend (Monday–Friday without
        holidays, or when `holidays` is itself broken: that is reported on its own)."""
        if value is not None:
            return value
        holidays = info.data.get("holidays")
        regions = [holidays] if isinstance(holidays, str) else list(holidays or [])
        weekends = {region: region_weekend(holiday_region(region)) for region in regions}
        if len(set(weekends.values())) > 1:
            said = "; ".join(f"{region}: {_day_names(days)}" for region, days in weekends.items())
            weeks = " or ".join(
                f"days: [{', '.join(_working_week(days))}]"
                for days in dict.fromkeys(weekends.values())
            )
            raise ValueError(
                f"holidays {' and '.join(weekends)} have different weekends ({said}), so the "
                f"working week is not clear: write it, like {weeks}"
            )
        weekend = next(iter(weekends.values()), _SAT_SUN)
        return _working_week(weekend)

    @field_validator("start", "end", mode="before")
    @classmethod
    def _times(cls, value: Any) -> str:
        if value is None:
            raise ValueError(_no_value('a time of day, like "09:00"'))
        if isinstance(value, int | float) and not isinstance(value, bool):
            raise ValueError(f'{value} is not a time of day: write it in quotes, like "09:00"')
        _clock(value)
        return str(value)

    @field_validator("holidays", mode="before")
    @classmethod
    def _yaml_booleans(cls, value: Any) -> Any:
        # YAML 1.1 reads Norway's code unquoted as false: say so once, also in a list (where
        # the type errors would name the list's form as well as the item).
        items = value if isinstance(value, list) else [value]
        read = next((item for item in items if isinstance(item, bool)), None)
        if read is not None:
            raise ValueError(_READ_AS_BOOL[read])
        return value

    @field_validator("holidays")
    @classmethod
    def _regions(cls, value: str | list[str] | None) -> str | list[str] | None:
        for region in [value] if isinstance(value, str) else value or []:
            holiday_region(region)
        return value

    @model_validator(mode="after")
    def _order(self) -> BusinessHours:
        start, end = _clock(self.start), _clock(self.end)
        if start is None:
            raise ValueError("start: 24:00 is only valid as an end time")
        if end == start:
            raise ValueError(
                f"start and end are both {self.start}: working hours can't be empty "
                '(a 24×7 team writes start: "00:00", end: "24:00")'
            )
        if end == time(0):  # 00:00 read as "midnight", the end of the day
            raise ValueError(
                f"end {self.end} is the midnight that starts the day, before start "
                f'{self.start}: for working hours until midnight write end: "24:00"'
            )
        if end is not None and end < start:  # a night shift: the calendar has a window a day
            raise ValueError(
                f"end {self.end} is before start {self.start}: working hours that run past "
                f"midnight ({self.start}–{self.end}, a night shift) are not supported; Handoff "
                'counts them within one day, so write an end later that day (end: "24:00" for '
                "midnight)"
            )
        return self

    @property
    def regions(self) -> list[str]:
        return [self.holidays] if isinstance(self.holidays, str) else list(self.holidays or [])


# The week whose weekend a holiday region is read for (Monday 15 June 2026): a fixed one, so
# a file means the same working week whenever it is read (the domain reads no clock).
_WEEKEND_WEEK = date(2026, 6, 15)
_SAT_SUN = frozenset({5, 6})


def region_weekend(region: holiday_data.HolidayBase) -> frozenset[int]:
    """The weekdays (0 = Monday) the holiday region rests, as the `holidays` package says:
    `HolidayBase.is_weekend` (holidays 0.109, holiday_base.py), which reads the country's
    `weekend` (IL, SA, EG: Friday and Saturday; AE: Saturday and Sunday) and the rules that
    depend on the subdivision or the year (`_get_weekend`: Malaysia's Kedah, Kelantan and
    Terengganu rest Friday and Saturday; the UAE did until 2022), for one recent week."""
    week = (_WEEKEND_WEEK + timedelta(days=offset) for offset in range(7))
    return frozenset(day.weekday() for day in week if region.is_weekend(day))


def _working_week(weekend: frozenset[int]) -> list[Weekday]:
    """The days outside `weekend`, from the first one after it: `[sun, mon, tue, wed, thu]`."""
    first = (max(weekend) + 1) % 7 if weekend else 0
    order = [(first + offset) % 7 for offset in range(7)]
    return [_WEEK[day] for day in order if day not in weekend]


def _day_names(days: frozenset[int]) -> str:
    return ", ".join(_WEEK[day].capitalize() for day in sorted(days)) or "none"


def holiday_region(region: str) -> holiday_data.HolidayBase:
    """`AU-NSW` → the holidays of New South Wales; ValueError naming what is unknown."""
    if "," in str(region):  # `US-CA, US-NY`: a YAML list was meant
        listed = ", ".join(part.strip() for part in str(region).split(","))
        raise ValueError(
            f"{region!r} names several regions: write them as a list, holidays: [{listed}]"
        )
    country, _, subdivision = str(region).strip().partition("-")
    country = country.upper()
    subdivisions = holiday_data.list_supported_countries().get(country)
    # The package's names for subdivisions (California: CA), by their spelling in capitals.
    aliases = getattr(getattr(holiday_data, country, None), "subdivisions_aliases", {})
    codes = {name.upper(): name for name in [*aliases, *(subdivisions or [])]}
    if subdivision and subdivisions:  # `au-nsw` is AU-NSW, `gb-england` GB-England
        subdivision = codes.get(subdivision.upper(), subdivision)
    try:
        return holiday_data.country_holidays(country, subdiv=subdivision or None)
    except (NotImplementedError, KeyError, AttributeError):
        pass
    if subdivisions is None:
        raise ValueError(
            f"{region!r} is not a known holiday region: {country or '(empty)'!r} is not a "
            "country code with holidays (use an ISO code such as AU, optionally with a "
            "subdivision such as AU-NSW, US-CA, GB-ENG)"
        )
    listed = ", ".join(subdivisions[:12]) + (", …" if len(subdivisions) > 12 else "")
    known = f"known: {listed}" if subdivisions else f"{country} has none"
    nearest = [codes[name] for name in difflib.get_close_matches(subdivision.upper(), codes, n=1)]
    hint = "".join(f"; did you mean {country}-{aliases.get(name, name)}?" for name in nearest)
    raise ValueError(
        f"{region!r} is not a known holiday region: {country} has no subdivision "
        f"{subdivision!r} ({known}; or write just {country} for its national holidays){hint}"
    )


class Channels(_Model):
    marketing_feedback: str
    escalations: str | None = None
    digest: str | None = None

    @field_validator("marketing_feedback", "escalations", "digest")
    @classmethod
    def _ids(cls, value: str | None, info: ValidationInfo) -> str | None:
        return None if value is None else _slack_id(value, "channel", info)


def _headcount_words(low: int | None, high: int | None) -> list[str]:
    """`51–500 employees`, `1,000+ employees`, `up to 50 employees`, or nothing."""
    if low is not None and high is not None:
        return [f"{low:,}–{high:,} employees"]
    if low is not None:
        return [f"{low:,}+ employees"]
    return [] if high is None else [f"up to {high:,} employees"]


def _choices(value: str | list[str]) -> set[str]:
    """A `when` key's values as routing compares them (bot/domain/routing.py: `_matches`)."""
    return {option.lower() for option in ([value] if isinstance(value, str) else value)}


def _narrower(later: str | list[str] | None, earlier: str | list[str] | None) -> bool:
    """Every value `later` lets through, `earlier` lets through too (None: any value)."""
    return earlier is None or (later is not None and _choices(later) <= _choices(earlier))


def _listed(name: str, value: str | list[str] | None) -> list[str]:
    if value is None:
        return []
    return [f"{name} {value if isinstance(value, str) else '/'.join(value)}"]


class SegmentWhen(_Model):
    employees_min: int | None = Field(default=None, ge=0)
    employees_max: int | None = Field(default=None, ge=0)
    country: str | list[str] | None = None
    industry: str | list[str] | None = None
    source: str | list[str] | None = None

    @model_validator(mode="after")
    def _range(self) -> SegmentWhen:
        low, high = self.employees_min, self.employees_max
        if low is not None and high is not None and high < low:
            raise ValueError(f"employees_max {high} is below employees_min {low}")
        return self

    def covers(self, later: SegmentWhen | None) -> bool:
        """Every lead `later` matches (None: every lead), this matches too: certain, not
        guessed (a lead without an employee count matches no employee range)."""
        later = later or SegmentWhen()
        if self.employees_min is not None or self.employees_max is not None:
            if later.employees_min is None and later.employees_max is None:
                return False
            low, high = self.employees_min or 0, self.employees_max
            if (later.employees_min or 0) < low:
                return False
            if high is not None and (later.employees_max is None or later.employees_max > high):
                return False
        return all(
            _narrower(getattr(later, key), getattr(self, key))
            for key in ("country", "industry", "source")
        )

    def describe(self) -> str:
        """`200–999 employees, country AU/NZ` (`any lead` without a condition)."""
        parts = _headcount_words(self.employees_min, self.employees_max)
        parts += _listed("country", self.country) + _listed("industry", self.industry)
        parts += _listed("source", self.source)
        return ", ".join(parts) or "any lead"


class Cap(_Model):
    """A rep at a cap is skipped by the rotation: `open` counts the leads the rep owns (claimed,
    not yet dispositioned), `per_day` the leads the rotation suggested to the rep that
    business day."""

    open: int | None = Field(default=None, ge=0, le=100_000)
    per_day: int | None = Field(default=None, ge=0, le=100_000)


class Segment(_Model):
    name: str = Field(min_length=1, max_length=40)
    when: SegmentWhen | None = None
    channel: str
    reps: list[str] = Field(min_length=1)
    # Who may claim a new lead: `open`, anyone in the pool; `assigned`, its suggested owner
    # alone for `claim_window` from the post, then the pool (bot/domain/claim.py).
    claim: Literal["open", "assigned"] = "open"
    claim_window: Duration | None = Field(default=None, validate_default=True)

    @field_validator("claim_window", mode="before")
    @classmethod
    def _window(cls, value: Any, info: ValidationInfo) -> Duration | None:
        claim = info.data.get("claim")
        if value is None:
            if claim == "assigned":
                raise ValueError(
                    "claim: assigned needs a claim_window: how long the suggested owner has "
                    "the lead alone, like 15 business minutes"
                )
            return None
        # With claim: open a window does nothing (`policy_warnings` says so): SPEC.md's routing
        # keys write `claim: open` beside `claim_window`, so such a file is valid, not refused.
        return _duration(value, _stored(info))

    weights: dict[str, WholeNumber] = Field(default_factory=dict)  # a rep not listed weighs 1
    cap: Cap | None = None

    @field_validator("weights")
    @classmethod
    def _weights(cls, value: dict[str, int], info: ValidationInfo) -> dict[str, int]:
        for rep, weight in value.items():
            _slack_id(rep, "user", info)
            if weight < 0:
                raise ValueError(f"a weight of {weight} ({rep}) is negative; write 0 or more")
            if weight > 1000:
                raise ValueError(f"a weight of {weight} ({rep}) is over 1000")
        return value

    def weight(self, rep: str) -> int:
        return self.weights.get(rep, 1)

    @field_validator("channel")
    @classmethod
    def _channel(cls, value: str, info: ValidationInfo) -> str:
        return _slack_id(value, "channel", info)

    @field_validator("reps")
    @classmethod
    def _reps(cls, value: list[str], info: ValidationInfo) -> list[str]:
        return [_slack_id(rep, "user", info) for rep in value]


# The engagement types an intent signal names (what the workshop lists): a page visited, content
# downloaded, an event attended, a demo requested, an intent-data topic. What marketing systems
# send under other names counts as its type (bot/domain/scoring.py: ENGAGEMENT_ALIASES).
ENGAGEMENT_TYPES = ("page_view", "content_download", "event", "demo_request", "intent_topic")
# Title seniority a fit signal may name, each matched by whole title words (scoring.py).
SENIORITY = ("executive", "vp", "director", "manager")


def _points(value: Any) -> Any:
    if isinstance(value, int) and not isinstance(value, bool) and value < 0:
        raise ValueError(f"{value} is negative: points add to the score (0 to 100)")
    return value


def _keywords(value: list[str] | None) -> list[str] | None:
    if value is not None and not all(str(item).strip() for item in value):
        raise ValueError("an empty word matches nothing: remove it")
    return value


class _Signal(_Model):
    """What every signal has: its `label` on the lead's post, its `points`, and `qualifies`:
    this signal alone makes the lead an MQL (its required fields still apply)."""

    label: str | None = Field(default=None, min_length=1, max_length=60)
    points: int = Field(default=0, le=100)
    qualifies: bool = False

    _no_negative = field_validator("points", mode="before")(lambda cls, v: _points(v))

    def _described(self, rule: str) -> str:
        name = f"{self.label}: " if self.label else ""
        alone = " (qualifies alone)" if self.qualifies else ""
        return f"{name}{rule} +{self.points}{alone}"


class FitSignal(_Signal):
    """Who the lead is: each condition given must hold (employee range, industries, countries,
    title keywords or seniority)."""

    employees_min: int | None = Field(default=None, ge=0)
    employees_max: int | None = Field(default=None, ge=0)
    industries: list[str] | None = Field(default=None, min_length=1)
    countries: list[str] | None = Field(default=None, min_length=1)
    titles: list[str] | None = Field(default=None, min_length=1)
    seniority: list[Literal["executive", "vp", "director", "manager"]] | None = Field(
        default=None, min_length=1
    )

    _words = field_validator("industries", "countries", "titles")(lambda cls, v: _keywords(v))

    @model_validator(mode="after")
    def _condition(self) -> FitSignal:
        conditions = (
            self.employees_min,
            self.employees_max,
            self.industries,
            self.countries,
            self.titles,
            self.seniority,
        )
        if all(item is None for item in conditions):
            raise ValueError(
                "a fit signal needs a condition: employees_min, employees_max, industries, "
                "countries, titles or seniority"
            )
        low, high = self.employees_min, self.employees_max
        if low is not None and high is not None and high < low:
            raise ValueError(f"employees_max {high} is below employees_min {low}")
        return self

    def describe(self) -> str:
        """`51–500 employees, industry Software/SaaS +20`: the signal in words."""
        parts = _headcount_words(self.employees_min, self.employees_max)
        if self.industries:
            parts.append(f"industry {'/'.join(self.industries)}")
        if self.countries:
            parts.append(f"country {'/'.join(self.countries)}")
        if self.seniority:
            parts.append(f"{'/'.join(self.seniority)} title")
        if self.titles:
            parts.append(f"title has {'/'.join(self.titles)}")
        return self._described(", ".join(parts))


class IntentSignal(_Signal):
    """What the lead did: an engagement of `type`, optionally whose `url` or `title` (the page,
    the asset, the topic) contains a text, `within` a recency window before the lead arrived."""

    type: str
    url: str | None = Field(default=None, min_length=1, max_length=500)
    title: str | None = Field(default=None, min_length=1, max_length=500)
    within: Duration | None = None

    def describe(self) -> str:
        """`Pricing page: page view, url has /pricing, in the last 7 days +20`."""
        parts = [self.type.replace("_", " ")]
        parts += [f"url has {self.url}"] if self.url else []
        parts += [f"title has {self.title}"] if self.title else []
        window = self.within
        if window is not None:  # "7 days", as the workshop says it (not "1 week")
            whole = window.days and not window.minutes
            words = f"{window.days} day{'s' if window.days != 1 else ''}" if whole else window.words
            parts.append(f"in the last {words}")
        return self._described(", ".join(parts))

    @field_validator("type")
    @classmethod
    def _type(cls, value: str) -> str:
        if value not in ENGAGEMENT_TYPES:
            near = difflib.get_close_matches(value, ENGAGEMENT_TYPES, n=1)
            hint = f" (did you mean {near[0]!r}?)" if near else ""
            raise ValueError(
                f"unknown engagement type {value!r}{hint}; the types are "
                f"{', '.join(ENGAGEMENT_TYPES)}"
            )
        return value

    @field_validator("within", mode="before")
    @classmethod
    def _window(cls, value: Any) -> Duration | None:
        if value is None:
            return None
        if isinstance(value, str) and re.fullmatch(r"\s*\d+(?:\.\d+)?\s*", value):
            value = float(value) if "." in value else int(value)  # "7": no unit either
        if _no_number(value):
            raise ValueError(f"{value:g} is not a duration: write a recency window like 7d")
        if isinstance(value, int | float) and not isinstance(value, bool):
            raise ValueError(f"{value!r} has no unit: write a recency window like {value:g}d")
        written = value
        if isinstance(value, dict) and "clock" not in value:
            value = {**value, "clock": Clock.CALENDAR.value}  # a window was never business time
        try:
            window = _duration(value)
        except ValueError as error:  # named as written, not with the clock added here
            said = str(error).replace(_as_written(value), _as_written(written), 1)
            raise ValueError(said) from None
        if not window.is_calendar:
            raise ValueError(
                f"{window} is business time: a recency window is calendar time, like 7d or 2w"
            )
        return window


def _prefixes(value: str | list[str]) -> set[str]:
    """Postcode prefixes as routing compares them (bot/domain/routing.py: `_in_territory`)."""
    return {
        item.replace(" ", "").lower() for item in ([value] if isinstance(value, str) else value)
    }


class TerritoryWhen(_Model):
    """Where a lead comes from: each listed key must match (letter case aside)."""

    country: str | list[str] | None = None
    state: str | list[str] | None = None  # state or region
    postcode_prefix: str | list[str] | None = None
    industry: str | list[str] | None = None

    @field_validator("postcode_prefix", mode="before")
    @classmethod
    def _quoted(cls, value: Any) -> Any:
        items = value if isinstance(value, list) else [value]
        if any(isinstance(item, int | float) and not isinstance(item, bool) for item in items):
            # YAML reads 2000 and 0200 as numbers (the SLA file's loader reads 0200 as 200)
            raise ValueError(
                'write postcodes in quotes, like "2000" (0200 without quotes is read as a number)'
            )
        return value

    def covers(self, later: TerritoryWhen) -> bool:
        """Every lead `later` matches, this matches too: each key this lists, `later` lists
        with no value outside this one's (a key not listed takes any value), and each of
        `later`'s postcode prefixes starts with one of these."""
        if self.postcode_prefix is not None:
            if later.postcode_prefix is None:
                return False
            mine = _prefixes(self.postcode_prefix)
            theirs = _prefixes(later.postcode_prefix)
            if not all(any(prefix.startswith(own) for own in mine) for prefix in theirs):
                return False
        return all(
            _narrower(getattr(later, key), getattr(self, key))
            for key in ("country", "state", "industry")
        )

    def describe(self) -> str:
        """`country AU, state NSW, postcode prefix 20`: the places in words."""
        parts = _listed("country", self.country) + _listed("state", self.state)
        parts += _listed("postcode prefix", self.postcode_prefix)
        return ", ".join(parts + _listed("industry", self.industry)) or "any lead"


class Territory(_Model):
    """Leads matching `when` go to `segment` (first matching territory wins, before the
    segments' own `when`)."""

    name: str | None = Field(default=None, max_length=40)
    when: TerritoryWhen
    segment: str

    @property
    def label(self) -> str:
        return self.name or self.segment


class Partner(_Model):
    """Partner-sourced leads (their `source` is one of `sources`) go to the partner manager."""

    manager: str
    sources: list[str] = Field(default_factory=lambda: ["partner"], min_length=1)

    @field_validator("manager")
    @classmethod
    def _manager(cls, value: str, info: ValidationInfo) -> str:
        return _slack_id(value, "user", info)


class Mql(_Model):
    """The MQL definition, the workshop's output: the required fields, the `fit` and `intent`
    signals with their points, and the `threshold`. Without signals the built-in definition
    scores (bot/domain/scoring.py: senior title, 50+ employees, engagement)."""

    required_fields: list[str] = Field(default_factory=lambda: ["email"])
    threshold: int = Field(default=0, ge=0, le=100)
    fit: list[FitSignal] = Field(default_factory=list, max_length=50)
    intent: list[IntentSignal] = Field(default_factory=list, max_length=50)

    @field_validator("required_fields")
    @classmethod
    def _known(cls, value: list[str]) -> list[str]:
        unknown = [name for name in value if name not in LEAD_FIELDS]
        if unknown:
            raise ValueError(f"unknown lead field {unknown[0]!r}; known: {', '.join(LEAD_FIELDS)}")
        return value

    @property
    def has_signals(self) -> bool:
        """Whether the file defines its own signals (else the built-in definition scores)."""
        return bool(self.fit or self.intent)

    @property
    def reachable(self) -> int:
        """The highest score the signals can give (every one of them at once, at most 100)."""
        return min(100, sum(signal.points for signal in [*self.fit, *self.intent]))

    @property
    def qualifies_alone(self) -> bool:
        return any(signal.qualifies for signal in [*self.fit, *self.intent])


class TierWhen(_Model):
    score_min: int | None = Field(default=None, ge=0, le=100)
    source: str | list[str] | None = None

    def covers(self, later: TierWhen | None) -> bool:
        """Every lead `later` matches (None: every lead), this matches too. A score runs from
        0 to 100, so no `score_min` is `score_min: 0`."""
        later = later or TierWhen()
        return (self.score_min or 0) <= (later.score_min or 0) and _narrower(
            later.source, self.source
        )

    def describe(self) -> str:
        """`score ≥ 80, source webinar` (`any lead` without a condition)."""
        parts = [] if self.score_min is None else [f"score ≥ {self.score_min}"]
        return ", ".join(parts + _listed("source", self.source)) or "any lead"


class Tier(_Model):
    name: str = Field(min_length=1, max_length=40)
    when: TierWhen | None = None
    first_touch: Duration
    claim: Duration | None = None

    _parse = field_validator("first_touch", "claim", mode="before")(
        lambda cls, v, info: None if v is None else _duration(v, _stored(info))
    )


class FollowUp(_Model):
    """The follow-up standard: `min_attempts` over `within`, on at least `channels` channels
    (email, call, LinkedIn; unset: any). bot/domain/cadence.py turns it into a cadence."""

    min_attempts: int = Field(default=6, ge=1, le=50)
    within: Duration = Duration(days=14, clock=Clock.CALENDAR)  # 6 attempts over 2 weeks
    channels: int | None = Field(default=None, ge=1, le=3)

    _parse = field_validator("within", mode="before")(
        lambda cls, v, info: _duration(v, _stored(info))
    )

    def interval(self, minutes_per_day: int) -> Duration:
        """The touch interval `within ÷ min_attempts`: 6 attempts within 2 weeks is a touch
        every 2 days 8 hours. It times the next touch (one interval after the latest attempt);
        it does not decide which attempts count: every one does (seed 002)."""
        return self.within.scaled(1, self.min_attempts, minutes_per_day)

    @field_validator("channels")
    @classmethod
    def _variety(cls, value: int | None, info: ValidationInfo) -> int | None:
        attempts = info.data.get("min_attempts")
        if value is not None and attempts is not None and value > attempts:
            raise ValueError(
                f"{value} channels need at least {value} attempts, but min_attempts is "
                f"{attempts}: lower channels or raise min_attempts"
            )
        return value


StepAction = Literal["remind_channel", "remind_owner", "notify_manager", "reassign"]
STEP_ACTIONS: tuple[StepAction, ...] = (
    "remind_channel",
    "remind_owner",
    "notify_manager",
    "reassign",
)
LADDERS = ("unclaimed", "no_touch", "no_feedback", "no_outcome")
_PERCENT = re.compile(r"(-?\d+(?:\.\d+)?)\s*%")
_NUMBER = re.compile(r"-?\d+(?:\.\d+)?")


def _share(value: Any) -> float:
    """`50%` → 0.5: a step's share of its clock's window; ValueError for anything else."""
    if value is None:
        raise ValueError(_no_value("a percentage of the deadline, like 50%"))
    text = str(value).strip()
    match = _PERCENT.fullmatch(text)
    if not match:
        if not isinstance(value, bool) and _NUMBER.fullmatch(text):
            number = float(text)  # 50 → "50%"; a fraction like 0.5 → "50%"
            meant = f"{number:g}%" if abs(number) >= 1 else f"{number * 100:g}%"
            raise ValueError(
                f'{text} has no % sign: write a share of the clock\'s window like "{meant}" '
                "(100% = the deadline)"
            )
        raise ValueError(f"{text!r} is not a percentage of the deadline like 50% or 150%")
    share = float(match.group(1)) / 100
    if share <= 0:
        raise ValueError(
            f"{text} is not after the clock starts: use a percentage above 0%, like 50%"
        )
    if share > 10:
        raise ValueError(f"{text} is too late: a step can be at most 1000% of its window")
    return share


class EscalationStep(_Model):
    """One rung of a ladder: at `at` of the clock's window (1.0 = the deadline), do `do`."""

    at: float = Field(gt=0, le=10)
    do: StepAction

    @field_validator("at", mode="before")
    @classmethod
    def _percent(cls, value: Any) -> float:
        return _share(value)

    @field_validator("do", mode="before")
    @classmethod
    def _action(cls, value: Any) -> Any:
        if value is None:
            raise ValueError(_no_value(f"one of {', '.join(STEP_ACTIONS)}"))
        if value not in STEP_ACTIONS:
            raise ValueError(f"{value!r} is not a step: use one of {', '.join(STEP_ACTIONS)}")
        return value

    @field_serializer("at")
    def _dump(self, value: float) -> str:  # snapshots store what the file says: "50%"
        return f"{value * 100:g}%"

    @property
    def percent(self) -> str:
        return f"{self.at * 100:g}%"


def _ladder(*steps: tuple[float, StepAction]) -> list[EscalationStep]:
    return [EscalationStep.model_construct(at=at, do=do) for at, do in steps]


class Escalation(_Model):
    """The escalation ladders (SPEC: without this key, these defaults apply)."""

    unclaimed: list[EscalationStep] = Field(
        default_factory=lambda: _ladder(
            (0.5, "remind_channel"), (1.0, "notify_manager"), (1.5, "reassign")
        )
    )
    no_touch: list[EscalationStep] = Field(
        default_factory=lambda: _ladder(
            (0.75, "remind_owner"), (1.0, "notify_manager"), (2.0, "reassign")
        )
    )
    no_feedback: list[EscalationStep] = Field(
        default_factory=lambda: _ladder((1.0, "remind_owner"), (1.5, "notify_manager"))
    )
    # claim → final disposition deadline (the cadence's end): the lead is still open.
    no_outcome: list[EscalationStep] = Field(
        default_factory=lambda: _ladder((1.0, "remind_owner"), (1.5, "notify_manager"))
    )

    def ladder(self, name: str) -> list[EscalationStep]:
        return list(getattr(self, name))

    def describe(self, name: str) -> str:
        """`50% remind_channel → 100% notify_manager → 150% reassign` (or `off`)."""
        return " → ".join(f"{s.percent} {s.do}" for s in self.ladder(name)) or "off"


class Disposition(_Model):
    code: str
    label: str = Field(min_length=1, max_length=30)
    outcome: Outcome
    reason_required: bool = False
    reasons: list[str] = Field(default_factory=list)
    requires_attempts: bool = False
    problem: Problem | None = None  # what this code's rejections say went wrong, by default
    problems: dict[str, Problem] = Field(default_factory=dict)  # by reason, over `problem`

    @model_validator(mode="before")
    @classmethod
    def _recycle_needs_attempts(cls, data: Any) -> Any:
        # "Unable to contact" means the cadence ran out: by default it needs the minimum
        # attempts. (A stored snapshot says so explicitly, whatever it said then.)
        if isinstance(data, dict) and data.get("outcome") == "recycle":
            data = {"requires_attempts": True, **data}
        # "Rejections require a reason and a note" (SPEC): a reject code asks for them unless
        # the file says otherwise, so marketing always hears why.
        if isinstance(data, dict) and data.get("outcome") == "reject":
            data = {"reason_required": True, **data}
        return data

    @field_validator("code")
    @classmethod
    def _code(cls, value: str) -> str:
        if not _CODE.match(value):
            raise ValueError(f"{value!r} is not a code: use lower_snake_case like not_a_fit")
        return value

    @field_validator("reasons")
    @classmethod
    def _reasons(cls, value: list[str]) -> list[str]:
        for reason in value:
            if not reason.strip() or len(reason) > 75:
                raise ValueError(f"reason {reason!r} must be 1 to 75 characters")
        return value

    @model_validator(mode="after")
    def _needs_reasons(self) -> Disposition:
        if self.reason_required and not self.reasons and self.outcome == "reject":
            raise ValueError(
                "a rejection needs reasons to choose from (marketing hears why it was rejected): "
                'add reasons: ["…", "…"]'
            )
        if self.reason_required and not self.reasons:
            raise ValueError("reason_required needs a list of reasons to choose from")
        unknown = [reason for reason in self.problems if reason not in self.reasons]
        if unknown:
            raise ValueError(f"problems names {unknown[0]!r}, which is not one of its reasons")
        if self.outcome == "more_info" and (self.reason_required or self.requires_attempts):
            raise ValueError(
                "a more_info code asks marketing a question and closes nothing: remove "
                "reason_required and requires_attempts"
            )
        return self

    def problem_of(self, reason: str | None) -> Problem | None:
        """What a rejection for `reason` says went wrong (None: not tagged)."""
        return self.problems.get(reason or "", self.problem)


SHARE_TARGETS = (
    "first_touch_compliance",
    "acceptance_rate",
    "sal_to_sql_rate",
    "mql_to_sql_rate",
    "sql_to_sqo_rate",
    "recycle_to_sql_rate",
    "win_rate",
    "data_completeness",
    "feedback_completion",
    "icp_match",
    "attempts_coverage",
)
VELOCITY_STEPS = ("mql_to_sal", "sal_to_sql", "sql_to_opportunity", "opportunity_to_won")


_PERCENT_WRITTEN = re.compile(r"\s*(\d+(?:\.\d+)?)\s*%\s*")


def _as_percentage(value: Any) -> str | None:
    """The problem of a share written as a percentage (`75%`), saying how to write it; None
    for anything else."""
    match = _PERCENT_WRITTEN.fullmatch(value) if isinstance(value, str) else None
    if match is None:
        return None
    percent = float(match.group(1))
    return (
        f"{value!r} is a percentage: write it as a share, like {percent / 100:g} for {percent:g}%"
    )


def _share_target(value: Any) -> Any:
    """A KPI target that is a share: between 0 and 1, with a message a person can act on."""
    if value is None:
        return None
    if (percentage := _as_percentage(value)) is not None:
        raise ValueError(percentage)
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise ValueError(f"{value!r} is not a share between 0 and 1 (0.7 = 70%)")
    if not 0 <= value <= 1:
        hint = f": write {value / 100:g} for {value:g}%" if 1 < value <= 100 else ""
        raise ValueError(f"{value:g} is not a share between 0 and 1 (0.7 = 70%){hint}")
    return float(value)


def _weekly_count(value: int, info: ValidationInfo) -> int:
    """A weekly MQL target, 0 to 1,000,000. A stored SLA version is not checked again: its
    running leads keep the target of their day (refused, it would not load at all)."""
    if (info.context or {}).get("stored"):
        return value
    if value < 0:
        raise ValueError(f"{value} is negative: write a count of MQLs a week, 0 or more")
    if value > 1_000_000:
        raise ValueError(f"{value} is over 1000000 MQLs a week")
    return value


class Targets(_Model):
    """`targets:` what each KPI is coloured against (docs/reports.md). Shares are 0..1;
    times are durations in the SLA's clock; lead velocity is calendar days per step."""

    first_touch_compliance: float | None = None
    acceptance_rate: float | None = None  # MQL → SAL
    sal_to_sql_rate: float | None = None
    mql_to_sql_rate: float | None = None
    sql_to_sqo_rate: float | None = None  # SQLs that became opportunities in the CRM
    recycle_to_sql_rate: float | None = None  # leads back from recycle that became SQLs
    win_rate: float | None = None  # won ÷ closed opportunities
    data_completeness: float | None = None
    feedback_completion: float | None = None
    icp_match: float | None = None
    attempts_coverage: float | None = None
    response_time: Duration | None = None  # MQL creation → first touch (mean and median)
    speed_to_lead: Duration | None = None  # posted → first touch (median and p90)
    time_to_claim: Duration | None = None  # posted → claimed (median)
    lead_velocity: dict[str, Number] = Field(default_factory=dict)  # step → calendar days
    lead_quality: float | None = Field(default=None, ge=1, le=5)  # the reps' 1–5 rating
    pipeline_per_week: float | None = Field(default=None, ge=0, le=1e12)  # opportunity amounts
    won_per_week: float | None = Field(default=None, ge=0, le=1e12)  # won amounts
    # MQLs a week by segment: a count (a negative one was taken, and never met or always met).
    mql_per_week: dict[str, Annotated[WholeNumber, AfterValidator(_weekly_count)]] = Field(
        default_factory=dict
    )

    _shares = field_validator(*SHARE_TARGETS, mode="before")(lambda cls, v: _share_target(v))
    _times = field_validator("response_time", "speed_to_lead", "time_to_claim", mode="before")(
        lambda cls, v, info: None if v is None else _duration(v, _stored(info))
    )

    @field_validator("lead_velocity")
    @classmethod
    def _velocity(cls, value: dict[str, float]) -> dict[str, float]:
        for step, days in value.items():
            if step not in VELOCITY_STEPS:
                raise ValueError(f"{step!r} is not a step: use {', '.join(VELOCITY_STEPS)}")
            if not 0 < days <= 3650:
                raise ValueError(f"{step}: {days:g} is not a number of days above 0")
        return value


class _Posting(_Model):
    """A scheduled post's time of day, in the team's time zone."""

    time: str = "09:00"

    @field_validator("time")
    @classmethod
    def _time(cls, value: str) -> str:
        if _clock(value) is None:
            raise ValueError("24:00 is not a time to post at; use 00:00")
        return value


class WeeklyDigest(_Posting):
    day: Weekday = "mon"


class MonthlyDigest(_Posting):
    """`report.monthly_digest`: the previous calendar month's report, for the operations review
    (seed 001). Days 1–28 exist in every month."""

    day: int = Field(default=1, ge=1, le=28)


class ComplianceAlert(_Model):
    below: float = Field(default=0.8, ge=0, le=1)  # first-touch compliance under this...
    weeks: int = Field(default=2, ge=1, le=12)  # ...this many weeks running...
    notify: list[str] = Field(min_length=1)  # ...tells these people (a DM each)

    @field_validator("notify")
    @classmethod
    def _people(cls, value: list[str], info: ValidationInfo) -> list[str]:
        return [_slack_id(user, "user", info) for user in value]


class ReportSettings(_Model):
    yellow_margin: float = Field(default=0.05, ge=0, le=1)  # within this under target: yellow
    weekly_digest: WeeklyDigest | None = Field(default_factory=WeeklyDigest)
    monthly_digest: MonthlyDigest | None = Field(default_factory=MonthlyDigest)  # null: none
    compliance_alert: ComplianceAlert | None = None


def _rate(value: Any) -> Any:
    """A share written as a percentage by mistake (25 for 25%, or "25%") gets a message that
    says so."""
    if (percentage := _as_percentage(value)) is not None:
        raise ValueError(percentage)
    if isinstance(value, int | float) and not isinstance(value, bool) and 1 < value <= 100:
        raise ValueError(f"{value:g} is over 1: write a share like {value / 100:g} for {value:g}%")
    return value


class PlanSettings(_Model):
    """`plan:` the numbers `/sla-plan` works back from while the CRM has not measured them."""

    sal_rate: float | None = Field(default=None, gt=0, le=1)  # MQL → SAL
    sql_rate: float | None = Field(default=None, gt=0, le=1)  # SAL → SQL
    opportunity_rate: float | None = Field(default=None, gt=0, le=1)  # MQL → opportunity
    win_rate: float | None = Field(default=None, gt=0, le=1)  # opportunity → won
    average_deal: float | None = Field(default=None, gt=0, le=1e12)
    currency: str | None = None  # ISO 4217, e.g. AUD
    revenue_split: dict[str, Number] = Field(default_factory=dict)  # segment → share of goal

    _rates = field_validator("sal_rate", "sql_rate", "opportunity_rate", "win_rate", mode="before")(
        lambda cls, v: _rate(v)
    )

    @field_validator("currency")
    @classmethod
    def _currency(cls, value: str | None) -> str | None:
        if value is not None and not re.fullmatch(r"[A-Z]{3}", value):
            raise ValueError(f"{value!r} is not a currency code: write three capitals like AUD")
        return value

    @field_validator("revenue_split")
    @classmethod
    def _split(cls, value: dict[str, float]) -> dict[str, float]:
        for name, share in value.items():
            if not 0 <= share <= 1:
                raise ValueError(f"{name}: {share:g} is not a share between 0 and 1")
        if value and abs(sum(value.values()) - 1) > 0.001:
            raise ValueError(f"the shares add up to {sum(value.values()):g}; they must add up to 1")
        return value


class Crm(_Model):
    """The `crm:` section: which CRM learns our changes, and how our states and fields map to
    its own (bot/domain/crm.py; docs/crm.md). Secrets come from the environment."""

    kind: Literal["hubspot", "salesforce", "webhook"]
    # Slack user id -> the CRM's owner id (HubSpot owner / Salesforce User); a member not
    # listed is found by their email.
    owners: dict[str, str] = Field(default_factory=dict)
    # our state (new, claimed, attempted, sql, reject, nurture, recycle) or a disposition code
    # -> the CRM's lead status value, over the CRM's defaults
    status: dict[str, str] = Field(default_factory=dict)
    # the same keys -> HubSpot's lifecycle stage, over the defaults
    lifecycle: dict[str, str] = Field(default_factory=dict)
    # our field (bot.domain.crm.FIELDS) -> the CRM's property or field name
    fields: dict[str, str] = Field(default_factory=dict)
    attempt_notes: bool = False  # a note (HubSpot) or a Task (Salesforce) per attempt too
    # The CRM's own limit, as a rolling window: `writes_per_second` × `window_seconds` HTTP
    # requests in any `window_seconds`, every request a write sends counted (a look-up by
    # email, the PATCH, a note, a retry): set it to the portal's limit (100 or 190 requests per
    # 10 s for HubSpot's private apps); a 429's wait is honoured either way (docs/crm.md).
    writes_per_second: float = Field(default=5.0, gt=0, le=100)
    window_seconds: float = Field(default=10.0, ge=1, le=60)
    events: list[str] | None = None  # webhook: the event types sent (default: every one)
    # HubSpot: the portal (account) id whose webhooks are taken. An app installed in several
    # portals (a sandbox beside production) is signed with one secret: another portal's
    # events are ignored, not applied to this one's leads. Unset: every portal's are taken.
    portal: int | None = Field(default=None, ge=1)

    @field_validator("owners")
    @classmethod
    def _members(cls, value: dict[str, str], info: ValidationInfo) -> dict[str, str]:
        for member in value:
            _slack_id(member, "user", info)
        return value


def _time_zone(value: str) -> str:
    """`value`, a time zone the tz database knows; ValueError with a suggestion otherwise."""
    try:
        ZoneInfo(value)
    except (ZoneInfoNotFoundError, ValueError) as error:
        hint = zone_hint(value)
        raise ValueError(f"{value!r} is not a time zone (like Australia/Sydney){hint}") from error
    return value


# The tz database names a place's zone Area/Location, its areas these (its Theory file, "Names of
# timezones"); a suggestion is one of those or UTC, never a legacy name such as EST, MST, NZ or
# WET, which a spelling match offers for an abbreviation (AEST is not EST, New York's winter).
ZONE_AREAS = (
    "Africa/", "America/", "Antarctica/", "Arctic/", "Asia/", "Atlantic/", "Australia/",
    "Europe/", "Indian/", "Pacific/",
)  # fmt: skip
ZONE_OFFSET = re.compile(r"(?i)(utc|gmt)?\s*[+\-\u2212]\s*\d{1,2}(:?\d{2})?")
ZONE_ABBREVIATION = re.compile(r"[A-Za-z]{2,5}")


def zone_hint(value: str) -> str:
    """What to write instead of `value`, which is not a time zone: `; did you mean …?` (the
    name in another case or with spaces, a city alone, or a near spelling of a place's zone),
    why an abbreviation or an offset is none, or '' when nothing fits."""
    text = value.strip()
    zones = sorted(available_timezones())
    places = [zone for zone in zones if zone.startswith(ZONE_AREAS)]
    wanted = text.replace(" ", "_").casefold()
    meant = [zone for zone in zones if zone.casefold() == wanted] or [
        zone for zone in places if zone.rsplit("/", 1)[-1].casefold() == wanted
    ]
    if meant:
        return f"; did you mean {meant[0]}?"
    if ZONE_OFFSET.fullmatch(text):
        return (
            "; an offset names no place and no daylight saving: write the place's name, like "
            "Australia/Sydney (or UTC)"
        )
    if ZONE_ABBREVIATION.fullmatch(text):
        return (
            "; it is an abbreviation, which names no place and no daylight saving: write the "
            "place's name, like Australia/Sydney or America/New_York"
        )
    close = difflib.get_close_matches(text, [*places, "UTC"], n=1)
    return f"; did you mean {close[0]}?" if close else ""


@dataclass(frozen=True)
class MeantZone:
    """The place a team most likely means by a legacy zone name, its time in words, and who
    keeps the legacy name's one offset all year (`kept_by`, in `kept_zone`), if anyone does."""

    zone: str
    words: str
    kept_by: str = ""
    kept_zone: str = ""


# The tz database's legacy System V names EST, MST and HST (its `northamerica` file; `backward`
# since 2024b) keep one offset all year, unlike the US time they are named after; so does GMT
# (`etcetera`), unlike the UK's. Whether a
# name and its place have daylight saving is read from zoneinfo (`_daylight_saving`), not here.
MEANT_ZONES = {
    "EST": MeantZone("America/New_York", "US Eastern time"),
    "MST": MeantZone("America/Denver", "US Mountain time", "Arizona", "America/Phoenix"),
    "HST": MeantZone("Pacific/Honolulu", "Hawaii time"),  # no daylight saving there either
    "GMT": MeantZone("Europe/London", "UK time"),  # the UK keeps British Summer Time
}
_ZONE_SAMPLE_YEAR = 2026


@dataclass(frozen=True)
class DaylightSaving:
    """A zone's daylight saving: the months it starts and ends in, and the hours it adds."""

    starts: str
    ends: str
    hours: float


def _daylight_saving(zone: str) -> DaylightSaving | None:
    """The months `zone`'s daylight saving starts and ends in a sample year (northern: it ends
    on the first day whose noon is back on standard time), and its hours (None: it has none)."""
    tz = ZoneInfo(zone)
    first = date(_ZONE_SAMPLE_YEAR, 1, 1)
    saved = [datetime.combine(first + timedelta(days=n), time(12), tz).dst() for n in range(365)]
    summer = [n for n, amount in enumerate(saved) if amount]
    if not summer:
        return None
    ends = first + timedelta(days=summer[-1] + 1)
    hours = max(amount or timedelta() for amount in saved).total_seconds() / 3600
    return DaylightSaving(f"{first + timedelta(days=summer[0]):%B}", f"{ends:%B}", hours)


def _utc_offset(zone: str) -> str:
    """`zone`'s offset on the sample year's first day, like UTC-05:00."""
    offset = datetime(_ZONE_SAMPLE_YEAR, 1, 1, tzinfo=ZoneInfo(zone)).utcoffset()
    minutes = int((offset or timedelta()).total_seconds() // 60)
    return f"UTC{'-' if minutes < 0 else '+'}{abs(minutes) // 60:02}:{abs(minutes) % 60:02}"


def zone_warning(key: str, zone: str) -> str | None:
    """One line for a zone (a known one) written under `key` that has no daylight saving where
    the place it is named after has: the zone to write instead. None for any other zone. Such
    a zone is valid all the same (some teams mean it), so nothing is refused."""
    meant = MEANT_ZONES.get(zone)
    if meant is None or _daylight_saving(zone) is not None:
        return None
    saving = _daylight_saving(meant.zone)
    if saving is None:
        return None  # HST: Hawaii's own time keeps one offset all year too
    offset = _utc_offset(zone)
    off = "an hour" if saving.hours == 1 else f"{saving.hours:g} hours"
    kept = (
        f"; {meant.kept_by}, which keeps {offset}, writes {meant.kept_zone}"
        if meant.kept_by
        else ""
    )
    return (
        f"{key}: {zone!r} is {offset} all year, with no daylight saving: for {meant.words} write "
        f"{meant.zone} (with {zone} every deadline and business hour is {off} off from "
        f"{saving.starts} to {saving.ends}{kept})"
    )


def policy_warnings(policy: Policy) -> list[str]:
    """What a valid SLA file says that is likely not what its team means, one line each with
    its key; `handoff check` and `serve`'s start print them, and nothing is refused. The team's
    `timezone` is the one zone the file names (an owner's comes from Slack)."""
    lines = [zone_warning("timezone", policy.timezone)]
    lines += [
        f"segments[{index}].claim_window: {segment.claim_window} does nothing with claim: open "
        "(anyone in the pool may claim at once); add claim: assigned to give the suggested rep "
        "the lead alone for it, or remove the window"
        for index, segment in enumerate(policy.segments)
        if segment.claim == "open" and segment.claim_window is not None
    ]
    lines += _default_track_misspelled(policy.talk_tracks)
    return [line for line in lines if line is not None]


def _default_track_misspelled(tracks: dict[str, str]) -> list[str]:
    """`talk_tracks` is keyed by lead source, any text, so a misspelled `default` is valid: a
    key near it, without a `default` (letter case aside), is likely what was meant."""
    if any(key.lower() == "default" for key in tracks):
        return []
    return [
        f"talk_tracks.{key}: no track is called default, so a lead whose source has no track "
        "of its own gets none; did you mean default?"
        for key in tracks
        if difflib.get_close_matches(key.lower(), ["default"], n=1, cutoff=0.8)
    ]


def _business_calendar(zone: str, hours: BusinessHours) -> BusinessCalendar:
    """The business time of `hours` (valid) in `zone` (a known time zone)."""
    regions = [holiday_region(region) for region in hours.regions]
    start = _clock(hours.start)
    assert start is not None  # validated: 24:00 is never a start
    return BusinessCalendar(
        zone,
        hours.days,
        start,
        _clock(hours.end),
        is_holiday=lambda day: any(day in region for region in regions),
        closed=hours.closed,
    )


class Policy(_Model):
    """The whole SLA file. Build with `parse_policy`; `version` identifies its content."""

    name: str = "Marketing–Sales SLA"
    timezone: str
    # `owner`: a claimed lead's clocks run on its owner's working hours in the owner's own
    # Slack time zone (holidays and closed dates stay the team's); `team`: the team's zone.
    clock: Literal["team", "owner"] = "team"
    business_hours: BusinessHours = Field(default_factory=BusinessHours)
    channels: Channels
    managers: list[str] = Field(default_factory=list)
    reporters: list[str] = Field(default_factory=list)  # may run /sla-report, nothing else
    # May look up any lead's data (`/lead`), nothing else: the marketing team, for example.
    viewers: list[str] = Field(default_factory=list)
    segments: list[Segment] = Field(min_length=1)
    mql: Mql = Field(default_factory=Mql)
    tiers: list[Tier] = Field(min_length=1)
    follow_up: FollowUp = Field(default_factory=FollowUp)
    # The first feedback on a claimed lead (any disposition, "progressing" too) is due this
    # long after the claim; the final disposition by `final_disposition_deadline`, by default
    # when the follow-up cadence ends (claim + follow_up.within).
    disposition_deadline: Duration = Duration(days=3, clock=Clock.CALENDAR)
    final_disposition_deadline: Duration | None = None
    dispositions: list[Disposition] = Field(min_length=1)
    targets: Targets = Field(default_factory=Targets)
    icp: SegmentWhen | None = None  # the ideal customer profile, for the ICP-match KPI
    report: ReportSettings = Field(default_factory=ReportSettings)
    talk_tracks: dict[str, str] = Field(default_factory=dict)
    escalation: Escalation = Field(default_factory=Escalation)
    # A recycled lead returns to its queue this long after its disposition.
    recycle_after: Duration = Duration(days=30, clock=Clock.CALENDAR)
    # A nurtured lead is scored again this long after it was nurtured.
    nurture_after: Duration = Duration(days=90, clock=Clock.CALENDAR)
    plan: PlanSettings | None = None  # `/sla-plan`'s numbers until the CRM has measured them
    # Slack statuses that mean the rep is away (until the status expires): an emoji written
    # `:palm_tree:` matches the status emoji, any other entry a status text containing it.
    away_statuses: list[str] = Field(default_factory=list)
    # Routing (docs/sla-file.md#routing), in this order: named accounts, lead-to-account
    # matching, partner-sourced, the segment's pool; territories pick the segment.
    named_accounts: dict[str, str] = Field(default_factory=dict)  # company domain -> owner
    named_accounts_file: str | None = None  # CSV `domain,owner`, beside the SLA file
    account_matching: bool = False
    account_recent: Duration = Duration(days=90, clock=Clock.CALENDAR)
    account_subdomains: bool = False  # eu.northwind.example matches northwind.example
    territories: list[Territory] = Field(default_factory=list)
    partner: Partner | None = None
    fallback_owner: str | None = None  # default: the first manager
    catch_up: bool = False  # a rep back from time away gets the leads they missed
    crm: Crm | None = None  # the CRM that learns our changes (docs/crm.md)
    version: str = ""

    _deadline = field_validator(
        "disposition_deadline",
        "final_disposition_deadline",
        "recycle_after",
        "nurture_after",
        "account_recent",
        mode="before",
    )(lambda cls, v, info: None if v is None else _duration(v, _stored(info)))

    @field_validator("named_accounts")
    @classmethod
    def _named(cls, value: dict[str, str], info: ValidationInfo) -> dict[str, str]:
        for domain, owner in value.items():
            try:
                _slack_id(owner, "user", info)
            except ValueError as error:
                raise ValueError(f"{domain}: {error}") from None
        return value

    @field_validator("fallback_owner")
    @classmethod
    def _fallback(cls, value: str | None, info: ValidationInfo) -> str | None:
        return None if value is None else _slack_id(value, "user", info)

    @field_validator("timezone")
    @classmethod
    def _zone(cls, value: str) -> str:
        return _time_zone(value)

    @field_validator("away_statuses")
    @classmethod
    def _away_statuses(cls, value: list[str]) -> list[str]:
        for entry in value:
            if not entry.strip():
                raise ValueError("an away status is an emoji like :palm_tree: or some text")
            # An emoji, or one in a skin tone as Slack writes it (`:raised_hand::skin-tone-3:`).
            emoji = r":[\w+\-']+:(?::skin-tone-[2-6]:)?"
            if entry.strip().startswith(":") and not re.fullmatch(emoji, entry.strip()):
                raise ValueError(f"{entry!r} is not an emoji: write it like :palm_tree:")
        return [entry.strip() for entry in value]

    @field_validator("managers", "reporters", "viewers")
    @classmethod
    def _managers(cls, value: list[str], info: ValidationInfo) -> list[str]:
        return [_slack_id(user, "user", info) for user in value]

    def disposition(self, code: str) -> Disposition | None:
        return next((item for item in self.dispositions if item.code == code), None)

    def tier(self, name: str) -> Tier:
        """The tier called `name` (a lead's, under its own SLA version), else the last one."""
        return next((item for item in self.tiers if item.name == name), self.tiers[-1])

    @property
    def final_deadline(self) -> Duration:
        """How long after the claim a lead's final disposition is due: the key, else the end of
        the follow-up cadence (`follow_up.within`)."""
        return self.final_disposition_deadline or self.follow_up.within

    def segment(self, name: str | None) -> Segment | None:
        return next((item for item in self.segments if item.name == name), None)

    def talk_track(self, source: str | None) -> str | None:
        tracks = {key.lower(): text for key, text in self.talk_tracks.items()}
        return tracks.get((source or "").lower()) or tracks.get("default")

    @property
    def currency(self) -> str | None:
        """The plan's currency (`plan.currency`, ISO 4217), in which amounts are shown; None
        without one."""
        return self.plan.currency if self.plan else None

    def is_manager(self, user: str) -> bool:
        return user in self.managers

    def is_reporter(self, user: str) -> bool:
        return user in self.reporters

    def is_viewer(self, user: str) -> bool:
        return user in self.viewers

    def segments_of(self, user: str) -> list[str]:
        """The segments whose rep pool includes `user`."""
        return [segment.name for segment in self.segments if user in segment.reps]

    @property
    def fallback(self) -> str | None:
        """Who gets a lead nobody else can take: `fallback_owner`, else the first manager."""
        return self.fallback_owner or next(iter(self.managers), None)

    def is_known(self, user: str) -> bool:
        """In some segment's pool, or a manager: someone who can claim a lead."""
        return self.is_manager(user) or bool(self.segments_of(user))

    @cached_property
    def named_index(self) -> dict[str, str]:
        """Named accounts by normalised domain (what a lead's account is looked up by)."""
        subdomains = self.account_subdomains
        index: dict[str, str] = {}
        for domain, owner in self.named_accounts.items():
            if (normal := normalise_domain(domain, subdomains=subdomains)) is not None:
                index.setdefault(normal, owner)
        return index

    @cached_property
    def routed_people(self) -> frozenset[str]:
        """Everyone the routing rules can hand a lead to: the pools' reps, the named accounts'
        owners, the partner manager, the fallback owner and the managers (whose time away
        routing reads). Built once per policy: a sweep asks for it on each page, intake for
        each lead that comes back and qualifies, and a CSV can name 5,000 owners."""
        people = {rep for segment in self.segments for rep in segment.reps}
        people |= set(self.named_index.values()) | set(self.managers)
        if self.fallback_owner is not None:
            people.add(self.fallback_owner)
        if self.partner is not None:
            people.add(self.partner.manager)
        return frozenset(people)

    def model_copy(self, *, update: Mapping[str, Any] | None = None, deep: bool = False) -> Self:
        """A copy; one with other content (not just another `version`) computes its indexes,
        people and calendars again: a plain copy would keep the cached ones."""
        copy = super().model_copy(update=update, deep=deep)
        if set(update or ()) - {"version"}:
            fields = type(self).model_fields
            for key in [key for key in copy.__dict__ if key not in fields]:
                del copy.__dict__[key]
        return copy

    def __getstate__(self) -> dict[Any, Any]:
        """Pickled (a report built in a worker process) without what it computes and caches
        (calendars, indexes): the copy computes them again when asked."""
        state = super().__getstate__()
        fields = type(self).model_fields
        state["__dict__"] = {k: v for k, v in state["__dict__"].items() if k in fields}
        return state

    @cached_property
    def calendar(self) -> BusinessCalendar:
        """The team's business time."""
        return self._calendar_in(self.timezone)

    def day_of(self, now: datetime) -> date:
        """The team's date at `now` (the file's `timezone`): "once a day" and "tomorrow" are
        the team's, whose midnight nobody works across, not UTC's (mid-morning in Sydney)."""
        return now.astimezone(self.calendar.zone).date()

    def calendar_for(self, owner_zone: str | None) -> BusinessCalendar:
        """The clock of a lead whose owner works in `owner_zone`: with `clock: owner` the
        team's hours and holidays in that zone, else (or with no zone known) the team's."""
        if self.clock == "team" or not owner_zone or owner_zone == self.timezone:
            return self.calendar
        if owner_zone not in self._zone_calendars:
            try:
                self._zone_calendars[owner_zone] = self._calendar_in(owner_zone)
            except (ZoneInfoNotFoundError, ValueError):
                return self.calendar  # a zone this machine's tz database does not know
        return self._zone_calendars[owner_zone]

    @cached_property
    def _zone_calendars(self) -> dict[str, BusinessCalendar]:
        return {}

    def _calendar_in(self, zone: str) -> BusinessCalendar:
        return _business_calendar(zone, self.business_hours)


# Parts pydantic adds to a location that are not keys: union members, validator wrappers.
_TYPE_TAG = re.compile(r"^(?:str|int|float|bool|[\w-]+\[.*\])$")


def _path(location: tuple[int | str, ...]) -> str:
    path = ""
    for part in location:
        if isinstance(part, int):
            path += f"[{part}]"
        elif not _TYPE_TAG.match(part):
            path += f".{part}" if path else str(part)
    return path or "(top level)"


_MESSAGES = {
    "missing": "required",
    "extra_forbidden": "unknown key (check its spelling)",
}
# YAML 1.1 reads these words without quotes as booleans: `holidays: NO` (Norway) is false.
_READ_AS_BOOL = {
    False: "read as false: YAML reads no, off and n without quotes (in any letter case) as "
    'false; write the text in quotes, like "NO"',
    True: "read as true: YAML reads yes, on and y without quotes (in any letter case) as true; "
    'write the text in quotes, like "ON"',
}
# Names that the tz database answers but that are no team's time zone.
_NOT_A_TEAM_ZONE = re.compile(r"^(?:localtime|Factory|posixrules|(?:posix|right)/.*)$")


def _keys_at(location: tuple[int | str, ...]) -> list[str]:
    """The keys the mapping holding `location`'s last key takes (its model's fields), found by
    following the location's keys down from `Policy`; none if it leads to no model."""
    model: type[BaseModel] = Policy
    for part in location[:-1]:
        if not isinstance(part, str) or _TYPE_TAG.match(part):
            continue  # a list's index, or a tag pydantic adds
        field = model.model_fields.get(part)
        inner = _model_in(field.annotation) if field is not None else None
        if inner is None:
            return []
        model = inner
    return list(model.model_fields)


def _model_in(annotation: Any) -> type[BaseModel] | None:
    """The model a field's type holds (`Segment` in `list[Segment]`, `Cap` in `Cap | None`)."""
    if isinstance(annotation, type) and issubclass(annotation, BaseModel):
        return annotation
    found = (_model_in(argument) for argument in get_args(annotation))
    return next((model for model in found if model is not None), None)


def _unknown_key(location: tuple[int | str, ...]) -> str:
    """An unknown key, with the nearest known one at its level (a misspelled `manager:`)."""
    key = location[-1] if location else ""
    near = difflib.get_close_matches(str(key), _keys_at(location), n=1)
    return f"unknown key (did you mean {near[0]}?)" if near else _MESSAGES["extra_forbidden"]


# What a key of each type takes, for one given no value (pydantic's error type → words).
_WRITE = {
    "string_type": "text",
    "list_type": "a list, like [a, b]",
    "dict_type": "its keys under it (key: value)",
    "model_type": "its keys under it (key: value)",
    "int_type": "a whole number",
    "float_type": "a number",
    "bool_type": "true or false",
    "date_type": "a date, like 2026-12-24",
    "dataclass_type": _DURATION_LIKE,  # Duration is the one dataclass a key holds
}
# The numbers read as `float_parsing` that are shares (0.05 = 5%): the others (a rating, an
# amount, days) are not told to write a percentage as a share. The targets' shares and the plan's
# rates say so in their own validators (`_share_target`, `_rate`).
_SHARE_KEYS = frozenset({"revenue_split", "yellow_margin", "below"})
# A number as a person writes it by hand: `1,000`, `$40,000`, `60%` (group 1: its digits).
_HAND_NUMBER = re.compile(r"\s*[$€£¥]?\s*(\d{1,3}(?:[,_ ]\d{3})+|\d+)(\.\d+)?\s*%?\s*")


def _kind_of(value: Any) -> str:
    """What YAML read `value` as, in a person's words: text, a list, a number."""
    if isinstance(value, bool):
        return str(value).lower()
    if isinstance(value, int | float):
        return "a number"
    if isinstance(value, list):
        return "a list"
    if isinstance(value, date):
        return "a date"
    return "a mapping" if isinstance(value, dict) else "text"


def _not_a_number(value: Any, whole: bool) -> str:
    """`'1,000' is not a whole number: write 1000`: a number written with words, units or
    separators, with its digits when they can be told."""
    kind = "a whole number" if whole else "a number"
    match = _HAND_NUMBER.fullmatch(value) if isinstance(value, str) else None
    if match is None or (whole and match.group(2)):
        return f"{value!r} is not {kind}: write it in digits"
    digits = re.sub(r"[,_ ]", "", match.group(1)) + (match.group(2) or "")
    return f"{value!r} is not {kind}: write {digits}"


def _plain_type_error(error: Any) -> str | None:
    """A type error in plain words (None: pydantic's own words say it): no value, a mapping
    written as something else, text YAML read as a number, a number written by hand."""
    kind, value, location = error["type"], error["input"], error["loc"]
    union = any(isinstance(part, str) and _TYPE_TAG.match(part) for part in location)
    if location[-1:] == ("[key]",) and kind == "string_type":  # a key YAML read as no text
        return _key_not_text(value)
    if value is None and kind in _WRITE:
        return _no_value(_WRITE[kind])
    if kind in ("model_type", "dict_type"):
        return f"should be a mapping of keys (key: value), not {_kind_of(value)}"
    if kind == "string_type" and not union and not isinstance(value, bool):
        if isinstance(value, int | float | date):
            read = "a date" if isinstance(value, date) else "a number"
            return f'{value} is read as {read}: write it in quotes, like "{value}"'
    if kind == "int_parsing":
        return _not_a_number(value, whole=True)
    if kind == "float_parsing" and _SHARE_KEYS & set(location):
        return _as_percentage(value) or _not_a_number(value, whole=False)
    if kind == "float_parsing":  # a rating, an amount, days: `80%` is no share of them
        return _not_a_number(value, whole=False)
    if kind == "int_from_float":
        return f"{value:g} is not a whole number"
    if kind == "bool_parsing":
        return f"{value!r} is not true or false"
    if kind == "invalid_key":  # a key that is not text: `42: x`, `~: x`
        if value is None:
            return "a key has no name (nothing, ~ or null before its colon)"
        return f"{value} is not a key name (a key is text, like timezone)"
    return None


# A no-break space or a byte-order mark pasted from a document looks like nothing, or a space:
# `clock: team` refused as "input should be 'team' or 'owner'" could not be understood.
_UNSEEN = "holds a character that does not show: retype it"


def _unseen(value: Any) -> bool:
    """Text with a character that does not show as itself (Python's repr escapes each one)."""
    return isinstance(value, str) and any(
        not character.isprintable() or (character.isspace() and character != " ")
        for character in value
    )


def _key_not_text(value: Any) -> str:
    """A mapping's key that YAML read as no text: nothing, a number, a date (true or false is
    `_READ_AS_BOOL`'s)."""
    if value is None:
        return "a key has no name (nothing, ~ or null before its colon)"
    read = "a date" if isinstance(value, date) else "a number"
    return f'the key {value} is read as {read}: write it in quotes, like "{value}"'


def _message(error: Any) -> str:
    location = error["loc"]
    if error["type"] == "extra_forbidden" and len(location) == 2 and location[0] == "escalation":
        return f"unknown ladder (the ladders are {', '.join(LADDERS)})"
    if error["type"] == "extra_forbidden" and _unseen(location[-1]):
        return f"unknown key: {location[-1]!r} {_UNSEEN}"
    if error["type"] == "extra_forbidden":
        return _unknown_key(location)
    if error["type"] == "too_short" and location and location[-1] == "reps":
        return "at least one rep is required"
    if error["type"] == "too_short":
        return f"at least one {str(location[-1]).rstrip('s')} is required"
    if error["type"] in _MESSAGES:
        return _MESSAGES[error["type"]]
    if error["type"] in ("string_type", "list_type") and isinstance(error["input"], bool):
        return _READ_AS_BOOL[error["input"]]
    if (plain := _plain_type_error(error)) is not None:
        return plain
    if error["type"] == "literal_error" and _unseen(error["input"]):
        return f"{error['input']!r} {_UNSEEN} ({str(error['msg'])[0].lower()}{error['msg'][1:]})"
    if error["type"] == "date_from_datetime_parsing" and isinstance(error["input"], str):
        return (
            f"{error['input']!r} is not a date ({error['ctx']['error']}): write it like 2026-12-24"
        )
    message = str(error["msg"]).removeprefix("Value error, ")
    return message[0].lower() + message[1:] if message else "invalid"


def _cross_checks(parts: Parts) -> list[str]:
    """What no one key says wrong but several together do: a catch-all before the end, a name
    or code used twice, a target or a split naming no segment, plan rates that disagree."""
    problems: list[str] = []
    for index, segment in parts.segments:
        if segment.when is None and index < parts.segment_count - 1:
            after = [name for at, name in parts.segment_names if at > index]
            problems.append(
                f"segments[{index}].when: only the last segment may match everything; "
                f"segments after it ({', '.join(after)}) could never match"
            )
    problems += [
        f"segments[{index}].name: {name!r} is used twice"
        for index, name in _repeated(parts.segment_names)
    ]
    for index, tier in parts.tiers:
        if tier.when is None and index < parts.tier_count - 1:
            problems.append(f"tiers[{index}].when: only the last tier may match everything")
    twice = [
        (index, f"dispositions[{index}].{key}: {value!r} is used twice")
        for key, items in (("code", parts.codes), ("label", parts.labels))
        for index, value in _repeated(items)
    ]
    problems += [problem for _, problem in sorted(twice, key=lambda item: item[0])]
    if parts.disposition_count > 20:
        problems.append("dispositions: at most 20 codes fit on a Slack message")
    names = parts.routing.segment_names
    named = [("targets.mql_per_week", parts.mql_per_week), ("plan.revenue_split", parts.split)]
    for where, keys in named:
        unknown = [key for key in keys if key not in names] if names is not None else []
        problems += [f"{where}.{key}: no segment is called {key!r}" for key in unknown]
    settings = parts.plan
    if settings and settings.opportunity_rate and settings.sal_rate and settings.sql_rate:
        through = settings.sal_rate * settings.sql_rate
        if settings.opportunity_rate > through + 1e-9:
            problems.append(
                f"plan.opportunity_rate: {settings.opportunity_rate:g} of MQLs cannot become "
                f"opportunities when only {through:g} become SQLs (plan.sal_rate × "
                "plan.sql_rate): lower it, or raise those"
            )
    return problems


def _repeated_with_first(items: tuple[tuple[int, str], ...]) -> list[tuple[int, str, int]]:
    """The items whose value an earlier item has already, each with that earlier item's index."""
    first: dict[str, int] = {}
    repeated: list[tuple[int, str, int]] = []
    for index, value in items:
        if value in first:
            repeated.append((index, value, first[value]))
        else:
            first[value] = index
    return repeated


def _repeated(items: tuple[tuple[int, str], ...]) -> list[tuple[int, str]]:
    """The items whose value an earlier item has already."""
    return [(index, value) for index, value, _ in _repeated_with_first(items)]


def _ladder_order(content: dict[str, Any]) -> list[str]:
    """Steps out of order, read from the file itself: reported even when other keys are broken
    (the steps whose `at` is itself wrong have their own problem and are passed over here)."""
    ladders = content.get("escalation")
    ladders = ladders if isinstance(ladders, dict) else {}
    problems: list[str] = []
    for name in LADDERS:
        steps = ladders.get(name)
        previous: float | None = None
        for index, step in enumerate(steps if isinstance(steps, list) else []):
            try:
                share = _share(step["at"])
            except (TypeError, KeyError, ValueError):
                continue
            if previous is not None and share <= previous:
                same = "; two steps can't share a percentage" if share == previous else ""
                problems.append(
                    f"escalation.{name}[{index}].at: {share * 100:g}% must come after "
                    f"{previous * 100:g}% (steps go in order{same})"
                )
            previous = share
    return problems


def _file_checks(parts: Parts) -> list[str]:
    """Checks added after SLA versions were first stored: run on files, not on the snapshots
    of running leads (a lead keeps the SLA it arrived under, even if today's rules are stricter)."""
    problems: list[str] = []
    mql = parts.mql
    if mql and mql.has_signals and mql.reachable < mql.threshold and not mql.qualifies_alone:
        problems.append(
            f"mql.threshold: {mql.threshold} cannot be reached: all the fit and intent signals "
            f"together give {mql.reachable} points, so no lead would ever be an MQL; lower the "
            "threshold, add points, or mark a signal `qualifies: true`"
        )
    if parts.timezone is not None and _NOT_A_TEAM_ZONE.match(parts.timezone):
        problems.append(
            f"timezone: {parts.timezone!r} is not a team's time zone: name it, like "
            "Australia/Sydney or UTC"
        )
    # A lead keeps its tier's name, and its rules are found by it: the second is never used.
    problems += [
        f"tiers[{index}].name: {name!r} is used twice: leads of it would follow tiers"
        f"[{first}]'s rules"
        for index, name, first in _repeated_with_first(parts.tier_names)
    ]
    days = parts.business_hours.days if parts.business_hours else []
    for index, day in enumerate(days):
        if day in days[:index]:
            problems.append(f"business_hours.days[{index}]: {day!r} is listed twice")
    # The rotation counts each rep once: a rep's share is their weight, not their places.
    for index, segment in parts.segments:
        for rep, times in Counter(segment.reps).items():
            if times > 1:
                problems.append(
                    f"segments[{index}].reps: {rep} is listed "
                    f"{'twice' if times == 2 else f'{times} times'} in {segment.name}'s reps (a "
                    "rep takes one place in the rotation: to give them more leads, give them a "
                    f"weight, like weights: {{{rep}: 2}})"
                )
    problems += _people_listed_twice(parts)
    if parts.business_hours is not None:
        problems += _kingdom_alone(parts.business_hours)
    if parts.calendar is not None:
        problems += _window_checks(parts, parts.calendar)
    problems += _unreachable(parts) + routing_checks(parts.routing)
    return problems + _deadline_checks(parts) + _slack_limits(parts)


# The lists of people by role (docs/sla-file.md#who-may-do-what): each names a person once.
PEOPLE_KEYS = ("managers", "reporters", "viewers")
_LISTED_TWICE_HARM = {"managers": ": every escalation alert mentions each manager listed"}


def _people_listed_twice(parts: Parts) -> list[str]:
    """A person listed more than once in managers, reporters or viewers, as a rep listed twice
    in a segment is: a second place gives no more rights (and a manager's, a second mention)."""
    return [
        f"{key}: {person} is listed {'twice' if times == 2 else f'{times} times'} in {key} "
        f"(list each person once{_LISTED_TWICE_HARM.get(key, '')})"
        for key, people in parts.people
        for person, times in Counter(people).items()
        if times > 1
    ]


def _kingdom_alone(hours: BusinessHours) -> list[str]:
    """`UK` or `GB` without a nation: the holidays package keeps only the days all four nations
    share, a calendar no team in the UK works to (gov.uk lists each nation's bank holidays)."""
    return [
        f"business_hours.holidays: {region!r} is not one calendar: England and Wales, Scotland "
        "and Northern Ireland each have their own bank holidays (alone it leaves out Easter "
        "Monday and the August bank holiday); write GB-ENG, GB-WLS, GB-SCT or GB-NIR"
        for region in hours.regions
        if "-" not in region and holiday_region(region).country == "GB"
    ]


def _window_checks(parts: Parts, calendar: BusinessCalendar) -> list[str]:
    """A claim, or a claim window, that ends after the first touch is due."""
    problems: list[str] = []
    for index, tier in parts.tiers:
        if tier.claim is not None and _ends_later(tier.claim, tier.first_touch, calendar):
            problems.append(
                f"tiers[{index}].claim: {tier.claim} is longer than first_touch "
                f"{tier.first_touch} (a lead is claimed before it is first touched)"
            )
    for index, segment in parts.segments:
        window = segment.claim_window
        if window is None or segment.claim != "assigned":  # open: the window does nothing
            continue
        for _, tier in parts.tiers:
            if _ends_later(window, tier.first_touch, calendar):
                problems.append(
                    f"segments[{index}].claim_window: {window} is longer than the {tier.name} "
                    f"tier's first_touch ({tier.first_touch}): its first touch would be due "
                    "while only the suggested rep may claim it; shorten the window"
                )
    return problems


def _unreachable(parts: Parts) -> list[str]:
    """Tiers and segments an earlier one leaves no lead: the first whose `when` matches wins.
    Each is compared with one earlier `when` at a time, so what is reported is certain (an
    earlier one that is broken is passed over). (An earlier one without `when` is
    `_cross_checks`' to report.)"""
    problems: list[str] = []
    last = parts.tier_count - 1
    for index, tier in parts.tiers:
        # The last tier also takes every lead no tier matches (routing's `choose_tier`).
        when = None if index == last else tier.when
        for before, earlier in parts.tiers:
            if before < index and earlier.when is not None and earlier.when.covers(when):
                problems.append(
                    f"tiers[{index}]: {tier.name} can never match: tiers[{before}] "
                    f"({earlier.name}, {earlier.when.describe()}) takes every lead it would"
                )
                break
    for index, segment in parts.segments:
        for before, other in parts.segments:
            if before < index and other.when is not None and other.when.covers(segment.when):
                problems.append(
                    f"segments[{index}]: {segment.name} can never match: segments[{before}] "
                    f"({other.name}, {other.when.describe()}) takes every lead it would"
                )
                break
    return problems


# A business and a calendar duration have no fixed ratio: they are compared where they end,
# started together at every half hour of one week (from Monday 15 June 2026).
_SAMPLE_WEEK = date(2026, 6, 15)


def _ends_later(longer: Duration, shorter: Duration, calendar: BusinessCalendar) -> bool:
    """True if `longer`, started with `shorter`, can end after it (on their own clocks)."""
    if longer.clock is shorter.clock:
        per_day = calendar.minutes_per_day
        return longer.total_minutes(per_day) > shorter.total_minutes(per_day)
    opens = datetime.combine(_SAMPLE_WEEK, time(0), calendar.zone)
    starts = (opens + timedelta(minutes=30 * step) for step in range(7 * 48))
    return any(calendar.add(start, longer) > calendar.add(start, shorter) for start in starts)


def _deadline_checks(parts: Parts) -> list[str]:
    """The deadlines and the follow-up cadence must fit each other: feedback, then the
    cadence, then the final disposition; "Unable to contact" only after the attempts."""
    problems: list[str] = []
    calendar, follow_up = parts.calendar, parts.follow_up
    given, final = parts.final_disposition_deadline, parts.final_deadline
    if calendar is not None and given is not None and follow_up is not None:
        cadence = follow_up.within
        if _ends_later(cadence, given, calendar):
            problems.append(
                f"final_disposition_deadline: {given} ends before follow_up.within ({cadence}): "
                "a rep following the cadence could not finish it before the final disposition "
                f"is due; make it at least {cadence}, or leave it out (it defaults to the "
                "cadence's end)"
            )
    feedback = parts.disposition_deadline
    if calendar is not None and final is not None and feedback is not None:
        if _ends_later(feedback, final, calendar):
            where = (
                "final_disposition_deadline"
                if given is not None
                else "follow_up.within, the cadence's end"
            )
            problems.append(
                f"disposition_deadline: {feedback} (the first feedback) ends after the final "
                f"disposition deadline ({final}, {where}): the feedback deadline must be the "
                "shorter one; shorten it, or lengthen the other"
            )
    for index, tier in parts.tiers:
        if calendar is None or final is None:
            break
        if _ends_later(tier.first_touch, final, calendar):
            problems.append(
                f"tiers[{index}].first_touch: {tier.first_touch} ends after the final "
                f"disposition deadline ({final}): the cadence starts with the first touch and "
                "must fit before the final disposition; shorten first_touch, or lengthen "
                "follow_up.within"
            )
    minimum = f" ({follow_up.min_attempts})" if follow_up is not None else ""
    for index, item in parts.dispositions:
        if item.outcome == "recycle" and not item.requires_attempts:
            problems.append(
                f"dispositions[{index}].requires_attempts: {item.label!r} (recycle) could be "
                f"picked before follow_up.min_attempts{minimum} attempts; set "
                "requires_attempts: true (the default for a recycle outcome)"
            )
        if item.outcome == "progressing" and (item.reason_required or item.requires_attempts):
            problems.append(
                f"dispositions[{index}]: {item.label!r} (progressing) is feedback on an open "
                "lead: it takes no reason_required and no requires_attempts"
            )
    return problems


# A static select holds at most 100 options (docs.slack.dev/reference/block-kit/block-elements/
# select-menu-element#static_select); past that Slack refuses the modal or the message. The
# other limits are kept by the model: an option's text and a button's text are at most 75
# characters (composition-objects/option-object, block-elements/button-element), and
# `Disposition` keeps reasons to 75 and labels to 30.
MAX_SELECT_OPTIONS = 100


def _slack_limits(parts: Parts) -> list[str]:
    """Lists Slack could not show: a disposition's reasons (the modal's menu). A segment's reps
    are not limited: past a static select's 100 options, Reassign offers Slack's user picker."""
    problems: list[str] = []
    for index, item in parts.dispositions:
        if len(item.reasons) > MAX_SELECT_OPTIONS:
            problems.append(
                f"dispositions[{index}].reasons: {len(item.reasons)} reasons, but Slack's menu "
                f"holds at most {MAX_SELECT_OPTIONS}"
            )
    return problems


@dataclass(frozen=True)
class RoutingKeys:
    """What the routing checks read: a valid policy's routing keys, or, in a file with other
    problems, those of its parts that are valid on their own, so that one wrong type does not
    hide the routing's problems. What cannot be known from a broken file is None, and the
    checks that need it are passed over (a problem reported is certain)."""

    segments: tuple[tuple[int, Segment], ...] = ()
    segment_names: frozenset[str] | None = None
    people: frozenset[str] | None = None  # every segment's reps and the managers
    named_accounts: dict[str, str] = field(default_factory=dict)
    subdomains: bool = False
    territories: tuple[tuple[int, Territory], ...] = ()
    partner_manager: str | None = None
    fallback_owner: str | None = None

    @classmethod
    def of(cls, policy: Policy) -> RoutingKeys:
        reps = {rep for segment in policy.segments for rep in segment.reps}
        return cls(
            segments=tuple(enumerate(policy.segments)),
            segment_names=frozenset(segment.name for segment in policy.segments),
            people=frozenset(reps | set(policy.managers)),
            named_accounts=dict(policy.named_accounts),
            subdomains=policy.account_subdomains,
            territories=tuple(enumerate(policy.territories)),
            partner_manager=policy.partner.manager if policy.partner else None,
            fallback_owner=policy.fallback_owner,
        )

    @classmethod
    def of_content(cls, content: dict[str, Any]) -> RoutingKeys:
        """The routing keys of a file that is not valid as a whole (its parsed YAML)."""
        segments = content.get("segments")
        # No segment list (or an empty one, which is refused): nobody's pool, no name is known.
        segments = segments if isinstance(segments, list) and segments else None
        items = [item if isinstance(item, dict) else None for item in segments or []]
        named = [item.get("name") if item is not None else None for item in items]
        names = [name for name in named if isinstance(name, str)]
        pools = [_strings(content.get("managers", []))]
        pools += [_strings(item.get("reps", [])) if item is not None else None for item in items]
        people = [person for pool in pools for person in pool or []]
        known = segments is not None and all(pool is not None for pool in pools)
        accounts = content.get("named_accounts")
        partner = _valid(Partner, content.get("partner"))
        fallback = content.get("fallback_owner")
        return cls(
            segments=_valid_items(Segment, segments),
            segment_names=frozenset(names) if len(names) == len(items) > 0 else None,
            people=frozenset(people) if known else None,
            named_accounts={
                domain: owner
                for domain, owner in (accounts.items() if isinstance(accounts, dict) else [])
                if isinstance(domain, str) and isinstance(owner, str)
            },
            subdomains=content.get("account_subdomains") is True,
            territories=_valid_items(Territory, content.get("territories")),
            partner_manager=partner.manager if partner is not None else None,
            fallback_owner=fallback if _is_user(fallback) else None,
        )

    def who(self, user: str) -> str | None:
        """Why `user` cannot be routed a lead (None: they can, or the pools are not known)."""
        if self.people is None or user in self.people:
            return None
        return f"{user} is in no segment's reps and is not a manager (nobody could claim for them)"


def _strings(value: Any) -> list[str] | None:
    """`value` if it is a list of text (None otherwise)."""
    if isinstance(value, list) and all(isinstance(item, str) for item in value):
        return value
    return None


def _is_user(value: Any) -> bool:
    return isinstance(value, str) and _slack_id_problem(value, "user") is None


_M = TypeVar("_M", bound=_Model)


def _valid(model: type[_M], value: Any, *, stored: bool = False) -> _M | None:
    """`value` as `model` if it is valid on its own (its problems are pydantic's to report)."""
    if value is None:
        return None
    try:
        return model.model_validate(value, context={"stored": stored})
    except ValidationError:
        return None


def _valid_items(
    model: type[_M], value: Any, *, stored: bool = False
) -> tuple[tuple[int, _M], ...]:
    """The items of the list `value` that are valid `model`s, each with its index."""
    items = value if isinstance(value, list) else []
    valid = ((index, _valid(model, item, stored=stored)) for index, item in enumerate(items))
    return tuple((index, item) for index, item in valid if item is not None)


def _texts(value: Any, key: str) -> tuple[tuple[int, str], ...]:
    """Each item's `key` where it is text, with the item's index (`value`: the file's list)."""
    items = value if isinstance(value, list) else []
    return tuple(
        (index, item[key])
        for index, item in enumerate(items)
        if isinstance(item, dict) and isinstance(item.get(key), str)
    )


def _text_keys(content: dict[str, Any], section: str, key: str) -> tuple[str, ...]:
    """The text keys of the mapping `section.key` of the file (none if it is not a mapping)."""
    part = content.get(section)
    mapping = part.get(key) if isinstance(part, dict) else None
    if not isinstance(mapping, dict):
        return ()
    return tuple(name for name in mapping if isinstance(name, str))


def _part(content: dict[str, Any], key: str, model: type[_M], stored: bool) -> _M | None:
    """The top-level `key` as `model`: its default if the file leaves it out, None if it is
    not valid on its own."""
    if key not in content:
        default: _M | None = Policy.model_fields[key].get_default(call_default_factory=True)
        return default
    return _valid(model, content[key], stored=stored)


def _deadline(content: dict[str, Any], key: str, stored: bool) -> Duration | None:
    """The top-level duration `key`: its default if the file leaves it out, None if it is not
    a duration (or, for `final_disposition_deadline`, not given)."""
    if key not in content:
        default: Duration | None = Policy.model_fields[key].get_default()
        return default
    try:
        return None if content[key] is None else _duration(content[key], stored)
    except (ValueError, TypeError):
        return None


@dataclass(frozen=True)
class Parts:
    """What the checks across keys read: a valid policy's keys, or, in a file with type errors,
    each part that is valid on its own, so that a wrong type hides no other problem. A list's
    valid items keep their index in the file (the broken ones are left out, with the file's
    count); what cannot be known is None (an empty list), and a check that needs it is
    passed over for that part alone: a problem reported is certain."""

    segments: tuple[tuple[int, Segment], ...] = ()
    segment_count: int = 0  # the file's segments, valid or not
    tiers: tuple[tuple[int, Tier], ...] = ()
    tier_count: int = 0
    dispositions: tuple[tuple[int, Disposition], ...] = ()
    disposition_count: int = 0
    # Names, codes and labels as the file writes them: of every item, valid or not.
    segment_names: tuple[tuple[int, str], ...] = ()
    tier_names: tuple[tuple[int, str], ...] = ()
    codes: tuple[tuple[int, str], ...] = ()
    labels: tuple[tuple[int, str], ...] = ()
    mql_per_week: tuple[str, ...] = ()  # the segments `targets.mql_per_week` names
    split: tuple[str, ...] = ()  # the segments `plan.revenue_split` names
    plan: PlanSettings | None = None
    mql: Mql | None = None
    timezone: str | None = None
    business_hours: BusinessHours | None = None
    calendar: BusinessCalendar | None = None
    follow_up: FollowUp | None = None
    disposition_deadline: Duration | None = None
    final_disposition_deadline: Duration | None = None  # None: not given (or not valid)
    final_deadline: Duration | None = None  # the key, else the cadence's end (None: unknown)
    routing: RoutingKeys = RoutingKeys()
    people: tuple[tuple[str, tuple[str, ...]], ...] = ()  # PEOPLE_KEYS' lists that are valid

    @classmethod
    def of(cls, policy: Policy) -> Parts:
        segments, dispositions = policy.segments, policy.dispositions
        return cls(
            segments=tuple(enumerate(segments)),
            segment_count=len(segments),
            tiers=tuple(enumerate(policy.tiers)),
            tier_count=len(policy.tiers),
            dispositions=tuple(enumerate(dispositions)),
            disposition_count=len(dispositions),
            segment_names=tuple(enumerate(segment.name for segment in segments)),
            tier_names=tuple(enumerate(tier.name for tier in policy.tiers)),
            codes=tuple(enumerate(item.code for item in dispositions)),
            labels=tuple(enumerate(item.label for item in dispositions)),
            mql_per_week=tuple(policy.targets.mql_per_week),
            split=tuple(policy.plan.revenue_split if policy.plan else ()),
            plan=policy.plan,
            mql=policy.mql,
            timezone=policy.timezone,
            business_hours=policy.business_hours,
            calendar=policy.calendar,
            follow_up=policy.follow_up,
            disposition_deadline=policy.disposition_deadline,
            final_disposition_deadline=policy.final_disposition_deadline,
            final_deadline=policy.final_deadline,
            routing=RoutingKeys.of(policy),
            people=tuple((key, tuple(getattr(policy, key))) for key in PEOPLE_KEYS),
        )

    @classmethod
    def of_content(cls, content: dict[str, Any], *, stored: bool = False) -> Parts:
        """The parts of a file that is not valid as a whole (its parsed YAML)."""
        segments, tiers = content.get("segments"), content.get("tiers")
        dispositions = content.get("dispositions")
        zone = content.get("timezone")
        try:
            zone = _time_zone(zone) if isinstance(zone, str) else None
        except ValueError:
            zone = None
        hours = _part(content, "business_hours", BusinessHours, stored)
        follow_up = _part(content, "follow_up", FollowUp, stored)
        given = _deadline(content, "final_disposition_deadline", stored)
        known = content.get("final_disposition_deadline") is None or given is not None
        cadence_end = follow_up.within if follow_up is not None else None
        return cls(
            segments=_valid_items(Segment, segments, stored=stored),
            segment_count=len(segments) if isinstance(segments, list) else 0,
            tiers=_valid_items(Tier, tiers, stored=stored),
            tier_count=len(tiers) if isinstance(tiers, list) else 0,
            dispositions=_valid_items(Disposition, dispositions, stored=stored),
            disposition_count=len(dispositions) if isinstance(dispositions, list) else 0,
            segment_names=_texts(segments, "name"),
            tier_names=_texts(tiers, "name"),
            codes=_texts(dispositions, "code"),
            labels=_texts(dispositions, "label"),
            mql_per_week=_text_keys(content, "targets", "mql_per_week"),
            split=_text_keys(content, "plan", "revenue_split"),
            plan=_valid(PlanSettings, content.get("plan"), stored=stored),
            mql=_part(content, "mql", Mql, stored),
            timezone=zone,
            business_hours=hours,
            calendar=None if zone is None or hours is None else _business_calendar(zone, hours),
            follow_up=follow_up,
            disposition_deadline=_deadline(content, "disposition_deadline", stored),
            final_disposition_deadline=given,
            final_deadline=(given or cadence_end) if known else None,
            routing=RoutingKeys.of_content(content),
            people=tuple(
                (key, tuple(people))
                for key in PEOPLE_KEYS
                if (people := _strings(content.get(key, []))) is not None
            ),
        )


def _territory_checks(keys: RoutingKeys) -> list[str]:
    """Territories must name a segment and a place, and be reachable: the first whose `when`
    matches wins, so one whose places an earlier one covers gets no lead (compared one earlier
    territory at a time, so what is reported is certain)."""
    problems: list[str] = []
    names = keys.segment_names
    placed: list[tuple[int, Territory]] = []
    for index, territory in keys.territories:
        where = f"territories[{index}]"
        if names is not None and territory.segment not in names:
            problems.append(f"{where}.segment: no segment is called {territory.segment!r}")
        if not territory.when.model_dump(exclude_none=True):
            problems.append(
                f"{where}.when: name at least one of country, state, postcode_prefix, industry"
            )
            continue
        for before, earlier in placed:
            if earlier.when.covers(territory.when):
                fix = (
                    f"both go to {earlier.segment}: remove it"
                    if earlier.segment == territory.segment
                    else f"to {earlier.segment}, not {territory.segment}: put the narrower "
                    "one first"
                )
                problems.append(
                    f"{where}: {territory.label} can never match: territories[{before}] "
                    f"({earlier.label}, {earlier.when.describe()}) takes every lead it would "
                    f"({fix})"
                )
                break
        placed.append((index, territory))
    return problems


def routing_checks(keys: RoutingKeys) -> list[str]:
    """The routing keys must be able to route: known reps, a rotation someone can take, named
    accounts that can match, territories that are reachable and agree."""
    problems: list[str] = []
    for index, segment in keys.segments:
        where = f"segments[{index}]"
        for rep in segment.weights:
            if rep not in segment.reps:
                problems.append(f"{where}.weights.{rep}: {rep} is not in this segment's reps")
        if segment.weights and all(segment.weight(rep) == 0 for rep in segment.reps):
            problems.append(f"{where}.weights: every rep weighs 0; nobody is in the rotation")
        for name in ("open", "per_day"):
            if segment.cap is not None and getattr(segment.cap, name) == 0:
                problems.append(
                    f"{where}.cap.{name}: a cap of 0 holds every rep at the cap, so the "
                    "rotation never suggests anyone; leave it out for no cap"
                )
    owners: dict[str, str] = {}  # by domain (letter case and www. aside): the first listed
    accounts: dict[str, str] = {}  # by account (routing's `named_index`): the first listed
    for domain, owner in keys.named_accounts.items():
        where = f"named_accounts.{domain}"
        normal = normalise_domain(domain)
        account = normalise_domain(domain, subdomains=keys.subdomains)
        if normal is None or account is None:
            problems.append(f"{where}: not a domain (like northwind.example)")
            continue
        if account in FREE_MAIL:
            problems.append(f"{where}: a free-mail domain is nobody's account; it never matches")
        if normal in owners:
            problems.append(
                f"{where}: the same domain as {owners[normal]} (letter case and "
                "www. aside); a domain has one owner"
            )
        elif account in accounts:
            other = f"named_accounts.{accounts[account]}"
            problems.append(f"{where}: {_one_account(other, account)}")
        owners.setdefault(normal, domain)
        accounts.setdefault(account, domain)
        # An owner that is not a user id is pydantic's to report (a file with other problems).
        if _is_user(owner) and (unknown := keys.who(owner)) is not None:
            problems.append(f"{where}: {unknown}")
    if keys.partner_manager is not None and (unknown := keys.who(keys.partner_manager)):
        problems.append(f"partner.manager: {unknown}")
    if keys.fallback_owner is not None and (unknown := keys.who(keys.fallback_owner)):
        problems.append(f"fallback_owner: {unknown}")
    return problems + _territory_checks(keys)


def _one_account(other: str, account: str) -> str:
    """Why a named domain that `account_subdomains: true` makes `other`'s account conflicts."""
    return (
        f"the same account as {other} with account_subdomains: true (both are {account}); "
        "an account has one owner"
    )


def _csv_accounts(keys: RoutingKeys, text: str, source: str) -> tuple[dict[str, str], list[str]]:
    """The named accounts of a CSV (`text`, read from `source`) by domain, and each of its
    lines that is wrong or conflicts with the SLA file's own list, in line order."""
    accounts, problems = parse_named_accounts(text)

    def account_of(domain: str) -> str | None:
        return normalise_domain(domain, subdomains=keys.subdomains)

    inline = {normalise_domain(domain): domain for domain in keys.named_accounts}
    inline_accounts = {account_of(domain): domain for domain in reversed(keys.named_accounts)}
    lines: dict[str, tuple[str, int]] = {}  # by account: the first line listing it
    found: dict[str, str] = {}
    for domain, entry in accounts.items():
        problem: str | None
        account = account_of(domain) or domain
        if domain in inline:
            problem = f"{domain} is in named_accounts too; a domain has one owner"
        elif account in inline_accounts:
            other = f"named_accounts.{inline_accounts[account]}"
            problem = f"{domain} is {_one_account(other, account)}"
        elif account in lines:
            first, line = lines[account]
            problem = f"{domain} is {_one_account(f'{first} on line {line}', account)}"
        elif account in FREE_MAIL:
            problem = f"{domain} is a free-mail domain; it never matches"
        else:
            problem = _slack_id_problem(entry.owner, "user") or keys.who(entry.owner)
        if problem is not None:
            problems.append((entry.line, problem))
        lines.setdefault(account, (domain, entry.line))
        found[domain] = entry.owner
    problems.sort(key=lambda item: item[0])  # the CSV's own problems and the SLA's, merged
    return found, [f"{source} line {n}: {message}" for n, message in problems]


def named_accounts_problems(keys: RoutingKeys, text: str, source: str) -> list[str]:
    """Each line of the named-accounts CSV `text` (read from `source`) that is wrong or
    conflicts with the SLA file's routing keys, `source line N: problem`, in line order."""
    return _csv_accounts(keys, text, source)[1]


def with_named_accounts(policy: Policy, text: str, source: str) -> Policy:
    """`policy` with the named accounts of its CSV (`text`, read from `source`) added; a
    PolicyError naming each CSV line that is wrong or conflicts with the file's own list, in
    line order. The version covers the CSV's content, so a lead keeps the accounts it was
    routed by."""
    accounts, problems = _csv_accounts(RoutingKeys.of(policy), text, source)
    if problems:
        raise PolicyError(problems, source)
    digest = hashlib.sha256(f"{policy.version}:{text}".encode()).hexdigest()[:12]
    merged = {**policy.named_accounts, **accounts}
    return policy.model_copy(update={"named_accounts": merged, "version": digest})


@dataclass(frozen=True)
class Checked:
    """An SLA file checked: its policy (None when it has a problem), every problem once, and
    what its named-accounts CSV (`accounts_file`, as the file names it) is checked against."""

    policy: Policy | None
    problems: list[str]
    routing: RoutingKeys = RoutingKeys()
    accounts_file: str | None = None

    def valid(self, source: str) -> Policy:
        """The policy; PolicyError listing the problems, naming `source`, if there are any."""
        if self.policy is None or self.problems:
            raise PolicyError(self.problems, source)
        return self.policy


def _type_problems(error: ValidationError) -> list[str]:
    by_path: dict[str, list[str]] = {}
    for item in error.errors():  # the alternatives of a union share one path: "a or b"
        location = item["loc"]
        if item["type"] == "invalid_key":  # the key is the location's last part: not a path
            location = location[:-1]
        elif location[-1:] == ("[key]",):  # a mapping's key: the key, then pydantic's marker
            location = location[:-2]
        by_path.setdefault(_path(location), []).append(_message(item))
    return [f"{path}: {' or '.join(dict.fromkeys(messages))}" for path, messages in by_path.items()]


def check_policy(data: Any, *, stored: bool = False) -> Checked:
    """Validate the parsed YAML of an SLA file: its policy, or every problem found. Keys of the
    wrong type do not hide the rest: every check across keys (names used twice, tiers that can
    never match, deadlines, the steps' order, the routing keys) runs on the parts that are
    valid on their own (`Parts`).

    `stored`: the snapshot of an SLA version already in use (skips the later `_file_checks`).
    """
    if not isinstance(data, dict):
        return Checked(None, ["(top level): the SLA file must be a mapping of keys"])
    content = {key: value for key, value in data.items() if key != "version"}
    accounts_file = content.get("named_accounts_file")
    accounts_file = accounts_file if isinstance(accounts_file, str) else None
    try:
        policy = Policy.model_validate(content, context={"stored": stored})
    except ValidationError as error:
        parts = Parts.of_content(content, stored=stored)
        problems = _type_problems(error) + _checks(parts, content, stored)
        return Checked(None, list(dict.fromkeys(problems)), parts.routing, accounts_file)
    parts = Parts.of(policy)
    problems = _checks(parts, content, stored)
    if problems:
        return Checked(None, list(dict.fromkeys(problems)), parts.routing, accounts_file)
    canonical = json.dumps(_with_read_week(content, policy), sort_keys=True, default=str)
    version = hashlib.sha256(canonical.encode()).hexdigest()[:12]
    return Checked(policy.model_copy(update={"version": version}), [], parts.routing, accounts_file)


def _with_read_week(content: dict[str, Any], policy: Policy) -> dict[str, Any]:
    """`content`, with the working week read from its holiday country when that is not
    Monday–Friday: the same text, read so since, is a new version, and the leads of the one
    stored before (Monday–Friday) keep it. Other files keep the version they had."""
    hours = content.get("business_hours")
    days = policy.business_hours.days
    if not isinstance(hours, dict) or "days" in hours or days == _working_week(_SAT_SUN):
        return content
    return content | {"business_hours": hours | {"days": days}}


def _checks(parts: Parts, content: dict[str, Any], stored: bool) -> list[str]:
    """The checks across keys, on what `parts` knows (a stored version skips `_file_checks`)."""
    problems = _cross_checks(parts) + _ladder_order(content)
    return problems + ([] if stored else _file_checks(parts))


def parse_policy(data: Any, source: str = "sla.yaml", *, stored: bool = False) -> Policy:
    """Validate the parsed YAML of an SLA file; raise PolicyError listing every problem.

    `stored`: the snapshot of an SLA version already in use (skips the later `_file_checks`).
    """
    return check_policy(data, stored=stored).valid(source)


class SlaLoader(yaml.SafeLoader):
    """YAML's safe loader that notes each key a mapping lists more than once: plain YAML keeps
    the last silently, and in an SLA file that is a rule lost without a word. A key a merge
    (`<<: *defaults`) brings in may still be set again: that is what a merge is for."""

    def __init__(self, stream: str) -> None:
        super().__init__(stream)
        self.repeated: list[tuple[yaml.MappingNode, Any, list[int]]] = []

    def construct_sla_int(self, node: yaml.ScalarNode) -> int | str:
        """An integer; `9:00` stays the text written (YAML 1.1 reads it in base 60 as 540), and
        `060` is 60 (YAML 1.1 reads a leading 0 as octal, 48; YAML 1.2 does not)."""
        text = self.construct_scalar(node)
        if ":" in text:
            return text
        digits, limit = sum(character.isdigit() for character in text), sys.get_int_max_str_digits()
        if limit and digits > limit:  # int() refuses it (4300 digits by default): no traceback
            raise yaml.constructor.ConstructorError(
                None, None, f"a number of {digits} digits, too long to read", node.start_mark
            )
        if re.fullmatch(r"[-+]?0[0-7_]+", text):
            return int(text.replace("_", ""), 10)
        return super().construct_yaml_int(node)

    def construct_sla_timestamp(self, node: yaml.ScalarNode) -> date | datetime | str:
        """A date; one that is no date (2026-11-31) stays the text, for the check to name."""
        try:
            return super().construct_yaml_timestamp(node)
        except ValueError:
            return str(self.construct_scalar(node))

    def construct_mapping(self, node: yaml.MappingNode, deep: bool = False) -> dict[Any, Any]:
        lines: dict[Any, list[int]] = {}
        for key_node, _ in node.value:
            if key_node.tag == "tag:yaml.org,2002:merge":
                continue
            key = self.construct_object(key_node, deep=True)
            try:
                lines.setdefault(key, []).append(key_node.start_mark.line + 1)
            except TypeError:  # a key that is a list or a mapping: the constructor says so
                continue
        self.repeated += [(node, key, at) for key, at in lines.items() if len(at) > 1]
        return super().construct_mapping(node, deep=deep)


SlaLoader.add_constructor("tag:yaml.org,2002:int", SlaLoader.construct_sla_int)
SlaLoader.add_constructor("tag:yaml.org,2002:timestamp", SlaLoader.construct_sla_timestamp)


def _node_paths(root: yaml.Node) -> dict[int, str]:
    """Each mapping node's path in the document (`segments[0].weights`), by the node's id."""
    paths: dict[int, str] = {}
    stack: list[tuple[yaml.Node, str]] = [(root, "")]
    while stack:  # not recursive: a file may nest deeper than Python's stack
        node, path = stack.pop()
        if id(node) in paths:
            continue  # an alias: the anchor's path
        paths[id(node)] = path or "(top level)"
        if isinstance(node, yaml.MappingNode):
            for key, value in node.value:
                name = str(key.value) if isinstance(key, yaml.ScalarNode) else "?"
                stack.append((value, f"{path}.{name}" if path else name))
        elif isinstance(node, yaml.SequenceNode):
            stack += [(item, f"{path}[{index}]") for index, item in enumerate(node.value)]
    return paths


def _listed_twice(loader: SlaLoader, root: yaml.Node | None) -> list[str]:
    if root is None or not loader.repeated:
        return []
    paths = _node_paths(root)
    problems = []
    for node, key, lines in loader.repeated:
        times = "twice" if len(lines) == 2 else f"{len(lines)} times"
        distinct = list(dict.fromkeys(lines))  # `{a: 1, a: 2}` lists both on one line
        at = ", ".join(map(str, distinct[:-1])) + f" and {distinct[-1]}"
        where = f"lines {at}" if len(distinct) > 1 else f"line {lines[0]}"
        problems.append(f"{paths.get(id(node), '(file)')}: {key} is listed {times} ({where})")
    return problems


def read_sla_yaml(text: str, source: str = "sla.yaml") -> tuple[Any, list[str]]:
    """An SLA file's YAML as data, and a problem for each key a mapping lists more than once
    (the data keeps the last); PolicyError, naming `source`, if it is not valid YAML."""
    try:
        loader = SlaLoader(text)
    except yaml.reader.ReaderError as error:  # a character YAML refuses: a NUL, a control
        raise PolicyError([_refused_character(text, error)], source) from None
    try:
        root = loader.get_single_node()
        data = None if root is None else loader.construct_document(root)
        return data, _listed_twice(loader, root)
    except RecursionError:
        raise PolicyError(["(file): nests too deep to be an SLA file"], source) from None
    except yaml.YAMLError as error:
        mark = getattr(error, "problem_mark", None)
        where = f"line {mark.line + 1}, column {mark.column + 1}" if mark else "(file)"
        problem = getattr(error, "problem", None) or str(error)
        raise PolicyError([f"{where}: not valid YAML: {problem}"], source) from None
    finally:
        loader.dispose()


def _refused_character(text: str, error: yaml.reader.ReaderError) -> str:
    """Where the file holds a character YAML does not allow (YAML 1.1, 5.1: printable
    characters only), and which: PyYAML's ReaderError said it in a traceback, by offset."""
    line = text.count("\n", 0, error.position) + 1
    column = error.position - (text.rfind("\n", 0, error.position) + 1) + 1
    character = chr(error.character) if isinstance(error.character, int) else "?"
    what = "a control character" if unicodedata.category(character) == "Cc" else "a character"
    return (
        f"line {line}, column {column}: not valid YAML: {what} (#x{ord(character):04x}) that "
        "YAML does not allow: remove it"
    )


def check_policy_text(text: str, source: str = "sla.yaml") -> Checked:
    """Check an SLA file's text (YAML): its policy, or every problem found (a key listed twice
    among them); PolicyError, naming `source`, if it is not valid YAML (nothing else can be
    read from it)."""
    data, repeated = read_sla_yaml(text, source)
    checked = check_policy(data)
    if not repeated:
        return checked
    return replace(checked, policy=None, problems=list(dict.fromkeys(repeated + checked.problems)))


def policy_from_text(text: str, source: str = "sla.yaml") -> Policy:
    """Parse and validate an SLA file's text (YAML); PolicyError, naming `source`, if it is
    not valid YAML or not a valid SLA."""
    return check_policy_text(text, source).valid(source)


def policy_from_snapshot(content: dict[str, Any], version: str) -> Policy:
    """Rebuild the policy a lead arrived under from its stored snapshot, keeping its version."""
    policy = parse_policy(content, "stored SLA version", stored=True)
    return policy.model_copy(update={"version": version})


def snapshot(policy: Policy) -> dict[str, Any]:
    """The policy's content as plain JSON-able data (what `policy_from_snapshot` reads)."""
    return json.loads(policy.model_dump_json(exclude={"version"}))


__all__ = ["WEEKDAYS", "Disposition", "Policy", "PolicyError", "parse_policy", "policy_from_text"]
