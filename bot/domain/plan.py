"""The revenue plan: work backwards from a revenue goal to the MQLs each segment needs a week.

Per segment: deals = its share of the goal / average deal; opportunities = deals / win rate
(opportunity → won); MQLs = opportunities / the MQL → opportunity rate. Each rate is measured
from the team's history (the MQLs received over the last N weeks and what the CRM reported
about them), else from all segments' history, else from the SLA file's `plan:`; the plan says
which, with its counts, and what is missing.
"""

from __future__ import annotations

import math
import re
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Literal

from bot.domain.policy import Policy
from bot.domain.refusal import Refusal

Per = Literal["month", "quarter"]
PERIOD_WEEKS: dict[str, float] = {"month": 4.33, "quarter": 13.0}
MAX_GOAL = 1e12
USAGE = (
    "Usage: `/sla-plan <revenue goal> [per month|quarter]`, e.g. `/sla-plan $2M per quarter` "
    "or `/sla-plan 500k per month` (the goal is per month unless you say quarter)."
)
GOAL_HELP = (
    "write it like 2000000, 2,000,000, $2M, 500k or 1.5m, then per month or per quarter "
    "(per month if you say neither)"
)
ACTIVITY_ROUTE = "POST /leads/{external_id}/activity"

_UNITS = {"": 1.0, "k": 1e3, "m": 1e6, "mm": 1e6, "b": 1e9, "bn": 1e9}
_PERIODS: dict[str, Per] = {
    "month": "month",
    "monthly": "month",
    "mo": "month",
    "quarter": "quarter",
    "quarterly": "quarter",
    "qtr": "quarter",
}
_FILLERS = {"per", "a", "an", "each", "every"}
_GOAL = re.compile(
    r"(?:[a-z]{3}|[a-z]{1,2}(?=[$€£]))?[$€£]?"
    r"(?P<number>\d{1,3}(?:,\d{3})+(?:\.\d+)?|\d+(?:\.\d+)?|\.\d+)"
    r"(?P<unit>k|mm|m|bn|b)?"
)


@dataclass(frozen=True)
class Goal:
    """A revenue goal per month or per quarter."""

    amount: float
    per: Per = "month"

    @property
    def weeks(self) -> float:
        return PERIOD_WEEKS[self.per]


def parse_goal(text: str, per: str | None = None) -> Goal:
    """`$2M per quarter`, `2,000,000`, `500k`, `1.5m monthly`: the goal; Refusal with the usage
    for anything else. `per` (month or quarter) is the period when the text names none."""
    words = text.lower().replace("/", " per ").split()
    if not words:
        raise Refusal(USAGE)
    named = _PERIODS.get(words[-1])
    if named:
        words.pop()
        if words and words[-1] in _FILLERS:
            words.pop()
    period = named or _PERIODS.get((per or "month").lower())
    found = _GOAL.fullmatch("".join(words))
    if period is None or found is None:
        raise Refusal(f"I can't read {text.strip()[:100]!r} as a revenue goal: {GOAL_HELP}.")
    amount = float(found["number"].replace(",", "")) * _UNITS[found["unit"] or ""]
    if not 0 < amount <= MAX_GOAL:
        raise Refusal(f"A revenue goal is more than 0 and at most 1 trillion: {GOAL_HELP}.")
    return Goal(amount, period)


@dataclass(frozen=True)
class Funnel:
    """What became of the MQLs one segment (or the team) received over the measured weeks."""

    mqls: int = 0
    opportunities: int = 0
    won: int = 0
    lost: int = 0
    won_with_amount: int = 0  # won deals the CRM gave an amount for
    won_amount: float = 0.0  # the sum of those amounts

    def __add__(self, other: Funnel) -> Funnel:
        return Funnel(
            self.mqls + other.mqls,
            self.opportunities + other.opportunities,
            self.won + other.won,
            self.lost + other.lost,
            self.won_with_amount + other.won_with_amount,
            self.won_amount + other.won_amount,
        )


@dataclass(frozen=True)
class History:
    """The team's funnel by segment over the last `weeks` weeks."""

    weeks: int
    by_segment: dict[str, Funnel] = field(default_factory=dict)

    @property
    def team(self) -> Funnel:
        return sum(self.by_segment.values(), Funnel())


@dataclass(frozen=True)
class Input:
    """One number the plan works back through, and where it came from (or why it is missing)."""

    value: float | None
    origin: str  # "measured over 26 weeks: 6 won of 24 closed in smb", "sla.yaml plan.win_rate"
    missing: str | None = None  # what to do about it, when there is no value


@dataclass(frozen=True)
class SegmentPlan:
    segment: str
    share: float  # of the goal
    revenue: float  # per period
    average_deal: Input
    win_rate: Input
    opportunity_rate: Input
    deals: float | None  # per period; None: an input on the way is missing
    opportunities: float | None
    mqls: float | None
    weeks: float  # in the goal's period
    mqls_now: float  # a week, measured
    target: int | None  # targets.mql_per_week of the SLA

    @property
    def mqls_per_week(self) -> float | None:
        return None if self.mqls is None else self.mqls / self.weeks


@dataclass(frozen=True)
class Totals:
    """Per period, for the whole team."""

    deals: float
    opportunities: float
    mqls: float
    weeks: float

    @property
    def mqls_per_week(self) -> float:
        return self.mqls / self.weeks


@dataclass(frozen=True)
class RevenuePlan:
    goal: Goal
    currency: str | None
    history_weeks: int
    split_origin: str
    segments: list[SegmentPlan]
    missing: list[str]  # what to do so every number can be worked out

    @property
    def totals(self) -> Totals | None:
        """The whole team's figures, or None while a segment's are not known."""
        segments = self.segments
        if any(segment.mqls is None for segment in segments):
            return None
        return Totals(
            deals=sum(segment.deals or 0 for segment in segments),
            opportunities=sum(segment.opportunities or 0 for segment in segments),
            mqls=sum(segment.mqls or 0 for segment in segments),
            weeks=self.goal.weeks,
        )

    @property
    def mqls_now(self) -> float:
        return sum(segment.mqls_now for segment in self.segments)


def whole(value: float) -> int:
    """Counts of deals, opportunities and MQLs are worked out upwards: 22.1 deals need 23."""
    return math.ceil(round(value, 6))


def build_plan(goal: Goal, history: History, policy: Policy) -> RevenuePlan:
    """The plan for `goal` from the measured `history` and the SLA's `plan:` settings."""
    names = [segment.name for segment in policy.segments]
    shares, split_origin = _split(names, history, policy)
    segments = [_segment(name, shares[name], goal, history, policy) for name in names]
    missing: list[str] = []
    for segment in segments:
        if segment.revenue <= 0:
            continue
        for item in (segment.average_deal, segment.win_rate, segment.opportunity_rate):
            if item.missing and item.missing not in missing:
                missing.append(item.missing)
    currency = policy.plan.currency if policy.plan else None
    return RevenuePlan(goal, currency, history.weeks, split_origin, segments, missing)


def _split(names: list[str], history: History, policy: Policy) -> tuple[dict[str, float], str]:
    """Each segment's share of the goal, and where the shares came from."""
    if policy.plan and policy.plan.revenue_split:
        split = policy.plan.revenue_split
        return {name: split.get(name, 0.0) for name in names}, "sla.yaml plan.revenue_split"
    won = {name: history.by_segment.get(name, Funnel()).won_amount for name in names}
    total = sum(won.values())
    if total > 0:
        origin = f"each segment's share of the won revenue of the last {history.weeks} weeks"
        return {name: won[name] / total for name in names}, origin
    equal = "split equally (no won revenue measured yet, and no plan.revenue_split in sla.yaml)"
    return {name: 1 / len(names) for name in names}, equal


@dataclass(frozen=True)
class _Rate:
    """How one input is measured from a funnel, and its key under `plan:` in the SLA file."""

    key: str
    counted: Callable[[Funnel], int]  # nothing counted: nothing measured
    value: Callable[[Funnel], float]
    words: Callable[[Funnel], str]
    missing: str


_AVERAGE_DEAL = _Rate(
    "average_deal",
    lambda f: f.won_with_amount,
    lambda f: f.won_amount / f.won_with_amount,
    lambda f: f"mean of {_n(f.won_with_amount, 'won deal')}",
    f'no won deal with an amount yet: send stage "won" with its "amount" to {ACTIVITY_ROUTE}, '
    "or set plan.average_deal in sla.yaml",
)
_WIN_RATE = _Rate(
    "win_rate",
    lambda f: f.won,
    lambda f: f.won / (f.won + f.lost),
    lambda f: f"{f.won} won of {f.won + f.lost} closed",
    f'no won deals recorded yet: send stage changes ("won", "lost") to {ACTIVITY_ROUTE}, '
    "or set plan.win_rate in sla.yaml",
)
_OPPORTUNITY_RATE = _Rate(
    "opportunity_rate",
    lambda f: f.opportunities,
    lambda f: f.opportunities / f.mqls,
    lambda f: f"{f.opportunities} of {_n(f.mqls, 'MQL')} became opportunities",
    f'no opportunities recorded yet: send stage changes ("opportunity") to {ACTIVITY_ROUTE}, '
    "or set plan.opportunity_rate in sla.yaml",
)


def _input(rate: _Rate, name: str, history: History, policy: Policy) -> Input:
    """Measured in the segment, else across all segments, else the SLA file's, else missing."""
    scopes = (
        (history.by_segment.get(name, Funnel()), f"in {name}"),
        (history.team, "across all segments"),
    )
    for funnel, scope in scopes:
        if rate.counted(funnel) > 0:
            words = f"measured over {history.weeks} weeks: {rate.words(funnel)} {scope}"
            return Input(rate.value(funnel), words)
    configured = getattr(policy.plan, rate.key) if policy.plan else None
    if configured is not None:
        return Input(configured, f"sla.yaml plan.{rate.key}")
    return Input(None, "missing", rate.missing)


def _segment(name: str, share: float, goal: Goal, history: History, policy: Policy) -> SegmentPlan:
    average = _input(_AVERAGE_DEAL, name, history, policy)
    win = _input(_WIN_RATE, name, history, policy)
    opportunity = _input(_OPPORTUNITY_RATE, name, history, policy)
    revenue = goal.amount * share
    deals = _divide(revenue, average.value)
    opportunities = _divide(deals, win.value)
    mqls = _divide(opportunities, opportunity.value)
    measured = history.by_segment.get(name, Funnel()).mqls
    return SegmentPlan(
        segment=name,
        share=share,
        revenue=revenue,
        average_deal=average,
        win_rate=win,
        opportunity_rate=opportunity,
        deals=deals,
        opportunities=opportunities,
        mqls=mqls,
        weeks=goal.weeks,
        mqls_now=measured / history.weeks if history.weeks else 0.0,
        target=policy.targets.mql_per_week.get(name),
    )


def _n(count: int, noun: str) -> str:
    return f"{count} {noun}" + ("" if count == 1 else "s")


def _divide(amount: float | None, by: float | None) -> float | None:
    if amount is None:
        return None
    if amount == 0:
        return 0.0
    return None if not by else amount / by
