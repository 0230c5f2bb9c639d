"""Routing's reads: who is away (the seam time away plugs into), the business day and week the
rotation counts in, and each segment's rotation as it stands (`/handoff routing`, App Home)."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime, timedelta
from typing import Protocol

from bot.domain.policy import Policy
from bot.domain.rotation import RepLoad, SegmentRotation, next_picks
from bot.domain.routing import pool_rules
from bot.slack.blocks import Message
from bot.slack.route_views import routing_view


class AwayTime(Protocol):
    """Someone's time away: until when (None: until they are back)."""

    @property
    def user(self) -> str: ...

    @property
    def until(self) -> datetime | None: ...


class Availability(Protocol):
    """Who of a pool is away now (time away set by hand, Slack status): routing skips them.
    `stored`: it is the time-away table, which intake reads inside its own transaction, with
    the rotation's turn, rather than asking here first."""

    stored: bool

    async def away(self, reps: Sequence[str], now: datetime) -> frozenset[str]: ...

    async def everyone(self, now: datetime) -> Sequence[AwayTime]:
        """Everyone away at `now`, with when they are back (`/handoff routing` shows it)."""
        ...


class NobodyAway:
    """Availability until time away is recorded: everyone is in."""

    stored = False

    async def away(self, reps: Sequence[str], now: datetime) -> frozenset[str]:
        return frozenset()

    async def everyone(self, now: datetime) -> Sequence[AwayTime]:
        return ()


class Standings(Protocol):
    async def rotation_standing(
        self, segment: str, reps: Sequence[str], day: str, week: str
    ) -> tuple[float, dict[str, RepLoad]]: ...


def periods(policy: Policy, now: datetime) -> tuple[str, str]:
    """The business day and the week (its Monday) a lead at `now` counts in, in the team's
    zone, as ISO dates: what `cap.per_day` and "this week" count in. The business day is the
    day of the working time at or after `now`, where the lead's clock starts: a lead at Sunday
    20:00 or Friday 18:00 counts to Monday, not to a day nobody works."""
    calendar = policy.calendar
    try:
        starts = calendar.at_work(now)
    except ValueError:  # no working time in ten years: the calendar's own day
        starts = now
    local = starts.astimezone(calendar.zone).date()
    return local.isoformat(), (local - timedelta(days=local.weekday())).isoformat()


async def rotations(
    store: Standings,
    policy: Policy,
    availability: Availability,
    now: datetime,
    picks: int = 5,
    until: bool = False,
) -> list[SegmentRotation]:
    """Every segment's rotation now: each rep's loads, who is away (with `until`, until when),
    the next `picks` picks."""
    day, week = periods(policy, now)
    back: dict[str, datetime | None] = {}
    if until:
        back = {away.user: away.until for away in await availability.everyone(now)}
    shown = []
    for segment in policy.segments:
        rules = pool_rules(segment, policy)
        clock, loads = await store.rotation_standing(segment.name, segment.reps, day, week)
        away = await availability.away(segment.reps, now)
        upcoming = next_picks(rules, loads, away, picks, clock)
        away_until = {rep: back[rep] for rep in away if rep in back}
        shown.append(SegmentRotation(segment.name, rules, loads, away, upcoming, clock, away_until))
    return shown


async def routing_answer(
    store: Standings, policy: Policy, availability: Availability, now: datetime, asked: str = ""
) -> Message:
    """`/handoff routing [segment]` for a manager: this week's distribution per rep against
    their share, weights, caps and time away, and the rotation's next picks."""
    shown = await rotations(store, policy, availability, now, until=True)
    return routing_view(shown, periods(policy, now)[1], policy.timezone, asked)
