"""Time away: reading `/handoff away [until] [note]`, and which Slack statuses mean "away".

Pure rules over `now`: the team's calendar says when a day ends and when work starts again,
so "away through Wednesday" ends when the team's next working day opens, not at midnight.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta

from bot.domain.businesstime import BusinessCalendar
from bot.domain.durations import Duration
from bot.domain.refusal import Refusal

FORMS = (
    "a date (`2026-12-24`: away through that day), a weekday (`fri`: through the coming "
    "Friday), `today`, `tomorrow`, or a duration (`4h`, `3d`, `2w`, `2bd`)"
)
USAGE = (
    "`/handoff away [until] [note]`, e.g. `/handoff away fri Offsite in Melbourne` (alone, "
    "`/handoff away` lasts until you are back); `/handoff back` when you are back. Until: "
    + FORMS
    + "."
)
MANAGER_USAGE = (
    "A manager sets it for a rep: `/handoff away @rep [until] [note]`, `/handoff back @rep`."
)
LONGEST = timedelta(days=366)  # further ahead is a typo more often than a plan
NOTE_LENGTH = 200

_WEEKDAYS = {
    "mon": 0,
    "monday": 0,
    "tue": 1,
    "tues": 1,
    "tuesday": 1,
    "wed": 2,
    "wednesday": 2,
    "thu": 3,
    "thur": 3,
    "thurs": 3,
    "thursday": 3,
    "fri": 4,
    "friday": 4,
    "sat": 5,
    "saturday": 5,
    "sun": 6,
    "sunday": 6,
}
_DATE = re.compile(r"\d{4}-\d{2}-\d{2}")
_MENTION = re.compile(r"<@([A-Z0-9]+)(?:\|[^>]*)?>|(?<![<\w])@([\w.\-]+)")


@dataclass(frozen=True)
class AwayAsk:
    """`/handoff away` as typed: for whom (None: the caller), until when, and the note."""

    who: str | None  # a user id (`<@U…>`), or `@name` as typed (the service resolves it)
    until: datetime | None  # None: until `/handoff back`
    note: str | None


@dataclass(frozen=True)
class BackAsk:
    """`/handoff back` as typed: for whom (None: the caller)."""

    who: str | None


def _who(words: list[str]) -> str | None:
    """Take a leading mention off `words`: its user id, or `@name` as typed."""
    if not words:
        return None
    found = _MENTION.fullmatch(words[0])
    if found is None:
        return None
    words.pop(0)
    return found.group(1) or f"@{found.group(2)}"


def parse_away(text: str, now: datetime, calendar: BusinessCalendar) -> AwayAsk:
    """The words after `/handoff away`: `[@rep] [until] [note]`; no until (SPEC: `/handoff
    away` takes no argument) is away until `/handoff back`, as a Slack status with no
    expiration is. Refusal naming the problem and the accepted forms for anything else, and
    for a rep named after the date (`tomorrow @tom`: a note that starts with a mention), which
    would set the caller away instead."""
    words = text.split()
    who = _who(words)
    if not words:
        return AwayAsk(who, None, None)
    until = parse_until(words[0], now, calendar)
    if who is None and len(words) > 1 and _MENTION.fullmatch(words[1]):
        raise _rep_comes_first(words)
    note = " ".join(words[1:]).strip()[:NOTE_LENGTH] or None
    return AwayAsk(who, until, note)


def _rep_comes_first(words: list[str]) -> Refusal:
    """`/handoff away tomorrow @tom` would set the caller away with the note "@tom": the
    refusal for it, with the order that sets the rep away (`words`: the date, then the rest)."""
    name = re.fullmatch(r"<@[A-Z0-9]+\|([^>]+)>", words[1])  # a mention Slack escaped
    rep = f"@{name.group(1)}" if name else words[1]
    asked = " ".join([rep, words[0], *words[2:]])[:120]
    return Refusal(
        f"Did you mean `/handoff away {asked}`? The rep comes first. Nothing was changed."
    )


def parse_back(text: str) -> BackAsk:
    """The words after `/handoff back`: nothing, or `@rep`."""
    words = text.split()
    who = _who(words)
    if words:
        raise Refusal(
            f"`/handoff back` takes no more than a rep: I can't read {' '.join(words)[:80]!r}. "
            f"{MANAGER_USAGE}"
        )
    return BackAsk(who)


def parse_until(word: str, now: datetime, calendar: BusinessCalendar) -> datetime:
    """When time away that the person wrote as `word` ends, as of `now`.

    A day (a date, a weekday, `today`, `tomorrow`) means away through that day in the team's
    zone: back when the team's next working day opens. A duration counts from `now` (calendar
    time, or business time for `2bd`). Refusal for anything else, in the past, or over a year
    ahead."""
    lowered = word.strip().lower()
    today = now.astimezone(calendar.zone).date()
    day: date | None = None
    if lowered == "today":
        day = today
    elif lowered == "tomorrow":
        day = today + timedelta(days=1)
    elif lowered in _WEEKDAYS:
        day = today + timedelta(days=(_WEEKDAYS[lowered] - today.weekday()) % 7)
    elif _DATE.fullmatch(lowered):
        try:
            day = date.fromisoformat(lowered)
        except ValueError:
            raise Refusal(f"{word[:40]!r} is not a date on the calendar. {USAGE}") from None
        if day < today:
            raise Refusal(f"{word} has passed already: away until when? {USAGE}")
    too_far = Refusal(f"{word[:40]} is more than a year ahead: away for at most a year. {USAGE}")
    if day is not None:
        if day - today > LONGEST:  # before any arithmetic: 9999-12-31 has no next day
            raise too_far
        until = back_after(day, calendar)
    else:
        if lowered.startswith("-") and _duration_shaped(lowered[1:]):  # `-1d`: back from now
            raise Refusal(f"{word[:40]} is in the past: away until when? {USAGE}")
        try:
            duration = Duration.parse(lowered)
        except ValueError:
            if _is_zero(lowered):
                raise Refusal(
                    f"{word[:40]} is no time at all: away for how long? {USAGE}"
                ) from None
            raise Refusal(f"I can't read {word[:40]!r} as until when. {USAGE}") from None
        try:
            until = calendar.add(now, duration)
        except (OverflowError, ValueError):  # past any date, or past the calendar's reach
            raise too_far from None
    if until - now > LONGEST:
        raise too_far
    return until.astimezone(UTC)


def _duration_shaped(text: str) -> bool:
    """Whether `text` is written as a duration (`1d`, `0d`, `99999w`), whatever its length."""
    try:
        Duration.parse(text)
    except ValueError:
        return _is_zero(text)
    return True


def _is_zero(text: str) -> bool:
    """Whether `text` is a duration of nothing (`0d`, `0h 0m`): readable, but no time away."""
    try:
        Duration.parse(text.replace("0", "1", 1))  # the same shape with time in it
    except ValueError:
        return False
    return all(char == "0" for char in text if char.isdigit())


def back_after(day: date, calendar: BusinessCalendar) -> datetime:
    """Someone away through `day` is back when the team's next working time opens after it."""
    next_day = datetime.combine(day + timedelta(days=1), time(0), calendar.zone)
    return calendar.at_work(next_day)


def status_counts(emoji: str | None, text: str | None, away_statuses: Sequence[str]) -> bool:
    """Whether a Slack status means away under the SLA's `away_statuses`: an entry written as
    an emoji (`:palm_tree:`) matches the status emoji exactly, in any skin tone; any other
    entry matches when the status text contains it, ignoring case ("Out of office" matches
    "Out of office until Mon")."""
    emoji = (emoji or "").strip().lower()
    # Slack writes an emoji in a skin tone as the emoji then the tone, `:raised_hand::skin-tone-3:`
    # (without the tone, the default): the emoji listed is that emoji in any tone.
    toneless = emoji.partition("::skin-tone-")[0] + ":" if "::skin-tone-" in emoji else emoji
    words = " ".join((text or "").lower().split())
    for entry in away_statuses:
        wanted = entry.strip().lower()
        if not wanted:
            continue
        if wanted.startswith(":") and wanted.endswith(":") and len(wanted) > 2:
            if wanted in (emoji, toneless):
                return True
        elif " ".join(wanted.split()) in words:
            return True
    return False


def status_until(expiration: int | float | None, now: datetime) -> datetime | None:
    """When a status set to expire at `expiration` (Unix seconds; 0: never) stops counting.
    None: it does not expire. An expired one ends `now`."""
    if not expiration:
        return None
    return max(datetime.fromtimestamp(float(expiration), UTC), now)


def is_away(until: datetime | None, now: datetime) -> bool:
    """Whether time away ending at `until` (None: until further notice) counts at `now`."""
    return until is None or now < until
