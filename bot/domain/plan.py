"""The revenue plan: work backwards from a revenue goal to the MQLs each segment needs a week.

Per segment: deals = its share of the goal / average deal, rounded up to whole deals (a deal
cannot be split); then, on unrounded numbers, opportunities = deals / win rate, SQLs =
opportunities / the SQL → opportunity rate, SALs = SQLs / the SAL → SQL rate, MQLs = SALs /
the MQL → SAL rate. Counts are rounded up only when shown.

Each rate is measured from the team's history (the MQLs received over the last N weeks and what
became of them), in the segment, else across all segments, and blended with the SLA file's
`plan:` value by sample size: the configured rate counts as `PRIOR_WEIGHT` observations (a Beta
prior), so one deal moves the plan a little and a hundred move it a lot. The plan keeps each
rate's counts and its prior, so the view can say where every number came from.
"""

from __future__ import annotations

import math
import re
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Literal

from bot.domain.policy import Policy
from bot.domain.refusal import Refusal

Per = Literal["month", "quarter"]
PERIOD_WEEKS: dict[str, float] = {"month": 4.33, "quarter": 13.0}
MAX_GOAL = 1e12
# The SLA file's rates and average deal count as this many observations when blended with the
# measured ones: 1 deal moves a rate by under 5%, 100 deals make the measure 83% of it.
PRIOR_WEIGHT = 20
USAGE = (
    "Usage: `/sla-plan <revenue goal> [per month|quarter]`, e.g. `/sla-plan $2M per quarter` "
    "or `/sla-plan 500k per month` (the goal is per month unless you say quarter)."
)
GOAL_HELP = (
    "write it like 2000000, 2,000,000, $2M, 500k or 1.5m, then per month or per quarter "
    "(per month if you say neither)"
)
ACTIVITY_ROUTE = "POST /leads/{external_id}/activity"

_UNITS = {
    "": 1.0,
    "k": 1e3,
    "thousand": 1e3,
    "m": 1e6,
    "mm": 1e6,
    "mn": 1e6,
    "mil": 1e6,
    "million": 1e6,
    "b": 1e9,
    "bn": 1e9,
    "billion": 1e9,
}
# What a currency sign names: `$` alone is any dollar or peso, so it fits a plan in any of
# _DOLLARS, the currencies whose sign is `$` (ISO 4217 names them; `R$` is the real's).
_SIGNS = {"€": "EUR", "£": "GBP", "a$": "AUD", "au$": "AUD", "us$": "USD", "c$": "CAD"}
_SIGNS |= {"ca$": "CAD", "nz$": "NZD", "s$": "SGD", "hk$": "HKD", "$": "$"}
_SIGNS |= {"r$": "BRL", "nt$": "TWD", "mx$": "MXN", "rd$": "DOP", "j$": "JMD", "tt$": "TTD"}
_SIGNS |= {"n$": "NAD", "ec$": "XCD", "bz$": "BZD", "fj$": "FJD"}
_DOLLARS = {"USD", "AUD", "CAD", "NZD", "SGD", "HKD", "MXN", "ARS", "CLP", "COP", "CUP", "DOP"}
_DOLLARS |= {"UYU", "TWD", "BBD", "BMD", "BND", "BSD", "BZD", "FJD", "GYD", "JMD", "KYD", "LRD"}
_DOLLARS |= {"NAD", "SBD", "SRD", "TTD", "XCD"}
# The codes a goal can name: ISO 4217's current ones (the SIX list, www.six-group.com/en/
# products-services/financial-information/data-standards.html), so `2M ARR` or `500k net` is
# not a goal in the currency "ARR" or "NET". plan.currency's own code is read too.
_ISO_4217 = frozenset(
    """AED AFN ALL AMD ANG AOA ARS AUD AWG AZN BAM BBD BDT BGN BHD BIF BMD BND BOB BOV BRL BSD
    BTN BWP BYN BZD CAD CDF CHE CHF CHW CLF CLP CNY COP COU CRC CUC CUP CVE CZK DJF DKK DOP DZD
    EGP ERN ETB EUR FJD FKP GBP GEL GHS GIP GMD GNF GTQ GYD HKD HNL HTG HUF IDR ILS INR IQD IRR
    ISK JMD JOD JPY KES KGS KHR KMF KPW KRW KWD KYD KZT LAK LBP LKR LRD LSL LYD MAD MDL MGA MKD
    MMK MNT MOP MRU MUR MVR MWK MXN MXV MYR MZN NAD NGN NIO NOK NPR NZD OMR PAB PEN PGK PHP PKR
    PLN PYG QAR RON RSD RUB RWF SAR SBD SCR SDG SEK SGD SHP SLE SLL SOS SRD SSP STN SVC SYP SZL
    THB TJS TMT TND TOP TRY TTD TWD TZS UAH UGX USD USN UYI UYU UYW UZS VED VES VND VUV WST XAF
    XAG XAU XCD XCG XDR XOF XPD XPF XPT XSU XUA YER ZAR ZMW ZWG ZWL""".split()
)
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
    r"(?P<code>[a-z]{3})?(?P<sign>(?:[a-z]{1,2})?[$€£])?"
    r"(?P<number>\d{1,3}(?:,\d{3})+(?:\.\d+)?|\d+(?:\.\d+)?|\.\d+)"
    r"(?P<unit>thousand|million|billion|mil|mm|mn|bn|k|m|b)?(?P<suffix>[a-z]{3})?"
)


@dataclass(frozen=True)
class Goal:
    """A revenue goal per month or per quarter."""

    amount: float
    per: Per = "month"
    currency: str | None = None  # as written: a code (EUR), or `$` for a dollar of any kind

    @property
    def weeks(self) -> float:
        return PERIOD_WEEKS[self.per]


def parse_goal(text: str, per: str | None = None, currency: str | None = None) -> Goal:
    """`$2M per quarter`, `2,000,000`, `500k`, `1.5m monthly`, `AUD 1.2M`: the goal; Refusal
    with the usage for anything else. `per` (month or quarter) is the period when the text
    names none. A goal written in a currency other than the plan's `currency` is refused:
    nothing is converted, and `€400k` is not AUD 400,000."""
    words = text.lower().replace("/", " per ").split()
    if not words:
        raise Refusal(USAGE)
    named = _PERIODS.get(words[-1])
    if named:
        words.pop()
        if words and words[-1] in _FILLERS:
            words.pop()
    period = named or _PERIODS.get((per or "month").lower())
    written = "".join(words)
    found = _GOAL.fullmatch(written.removeprefix("-"))
    if period is not None and found is not None and written.startswith("-"):
        # `-5` reads as a number, a negative one: the goal's bounds say what is wrong with it.
        raise Refusal(f"A revenue goal is more than 0 and at most 1 trillion: {GOAL_HELP}.")
    if period is None or found is None:
        raise Refusal(f"I can't read {text.strip()[:100]!r} as a revenue goal: {GOAL_HELP}.")
    written_in = _written_currency(found, text, currency)
    if currency and written_in and written_in != currency and not _dollar(written_in, currency):
        raise Refusal(
            f"The plan is in {currency} (plan.currency in sla.yaml) and Handoff does not convert "
            f"currencies: write the goal in {currency}, like `{currency} 2M` or `2M`."
        )
    amount = float(found["number"].replace(",", "")) * _UNITS[found["unit"] or ""]
    if not 0 < amount <= MAX_GOAL:
        raise Refusal(f"A revenue goal is more than 0 and at most 1 trillion: {GOAL_HELP}.")
    return Goal(amount, period, written_in)


def _written_currency(found: re.Match[str], text: str, currency: str | None) -> str | None:
    """The currency a goal names (`EUR`, `$` for any dollar), None for none; a Refusal for two
    that differ (`AUD 2M EUR`), a sign unknown (`x$2M`) or three letters that are no currency
    code (`2M ARR`), unless they are the plan's `currency`."""
    unreadable = Refusal(f"I can't read {text.strip()[:100]!r} as a revenue goal: {GOAL_HELP}.")
    named = {code.upper() for code in (found["code"], found["suffix"]) if code}
    if any(code not in _ISO_4217 and code != currency for code in named):
        raise unreadable
    if found["sign"]:
        sign = _SIGNS.get(found["sign"])
        if sign is None:
            raise unreadable
        if sign != "$" or not named & _DOLLARS:
            named.add(sign)
    if len(named) > 1:
        raise unreadable
    return next(iter(named), None)


def _dollar(written: str, currency: str) -> bool:
    """`$2M` fits a plan in any dollar or peso (AUD, USD, COP, …)."""
    return written == "$" and currency in _DOLLARS


@dataclass(frozen=True)
class Funnel:
    """What became of the MQLs one segment (or the team) received over the measured weeks.

    A lead counts at every stage up to the furthest it reached: an opportunity the CRM reported
    is also an SQL and a SAL, so each stage's leads are among the previous stage's."""

    mqls: int = 0
    opportunities: int = 0
    won: int = 0
    lost: int = 0
    won_with_amount: int = 0  # won deals the CRM gave an amount for
    won_amount: float = 0.0  # the sum of those amounts
    sals: int = 0  # claimed and not rejected (nurtured and recycled leads were accepted)
    sqls: int = 0  # qualified in Slack, or an opportunity in the CRM

    def __add__(self, other: Funnel) -> Funnel:
        return Funnel(
            mqls=self.mqls + other.mqls,
            opportunities=self.opportunities + other.opportunities,
            won=self.won + other.won,
            lost=self.lost + other.lost,
            won_with_amount=self.won_with_amount + other.won_with_amount,
            won_amount=self.won_amount + other.won_amount,
            sals=self.sals + other.sals,
            sqls=self.sqls + other.sqls,
        )


@dataclass(frozen=True)
class History:
    """The team's funnel by segment over the last `weeks` weeks, up to `until`, and when the
    first MQL of those weeks arrived (None: none, or not known)."""

    weeks: int
    by_segment: dict[str, Funnel] = field(default_factory=dict)
    until: datetime | None = None
    first_mql_at: datetime | None = None

    @property
    def team(self) -> Funnel:
        return sum(self.by_segment.values(), Funnel())

    @property
    def observed_weeks(self) -> float:
        """The weeks the pace is measured over: from the first MQL (at least one week) when the
        history is shorter than the window, else the window."""
        if self.until is None or self.first_mql_at is None:
            return float(self.weeks)
        observed = (self.until - self.first_mql_at) / timedelta(weeks=1)
        return min(float(self.weeks), max(1.0, observed))


@dataclass(frozen=True)
class Input:
    """One number the plan works back through, and where it came from (or why it is missing).

    `value` blends what was measured (`successes` of `trials`, in `scope`) with the SLA file's
    `prior` (under `prior_key`) worth `weight` observations: (successes + prior × weight) ÷
    (trials + weight). For the average deal, `successes` is the won amount and `trials` the won
    deals with an amount."""

    value: float | None
    trials: float = 0
    successes: float = 0
    scope: str = ""  # "in enterprise", "across all segments"
    prior: float | None = None
    prior_key: str | None = None  # "plan.win_rate"
    weight: int = 0  # of the prior; 0 when there is none
    missing: str | None = None  # what to do about it, when there is no value

    @property
    def measured(self) -> float | None:
        """The measure alone, when there is one."""
        return self.successes / self.trials if self.trials else None


@dataclass(frozen=True)
class SegmentPlan:
    segment: str
    share: float  # of the goal
    revenue: float  # per period
    average_deal: Input
    win_rate: Input  # opportunity → won
    opportunity_rate: Input  # SQL → opportunity
    sql_rate: Input  # SAL → SQL
    sal_rate: Input  # MQL → SAL
    deals: float | None  # per period, whole; None: an input on the way is missing
    opportunities: float | None  # unrounded from here on
    sqls: float | None
    sals: float | None
    mqls: float | None
    weeks: float  # in the goal's period
    mqls_now: float  # a week, measured
    target: int | None  # targets.mql_per_week of the SLA
    # MQL → opportunity, used straight when a step between them is missing (seed 004's "three
    # core numbers": lead → opportunity, opportunity → won, average deal); None: not used
    mql_opportunity_rate: Input | None = None

    @property
    def mqls_per_week(self) -> float | None:
        return None if self.mqls is None else self.mqls / self.weeks

    @property
    def inputs(self) -> tuple[Input, ...]:
        steps = (self.opportunity_rate, self.sql_rate, self.sal_rate)
        shortcut = (self.mql_opportunity_rate,) if self.mql_opportunity_rate else ()
        return (self.average_deal, self.win_rate, *steps, *shortcut)


@dataclass(frozen=True)
class Totals:
    """Per period, for the whole team: each count is the sum of the segments' counts as shown
    (each rounded up), so the segments add up to the headline. SQLs and SALs are None when a
    segment's plan went from opportunities to MQLs straight (MQL → opportunity)."""

    deals: int
    opportunities: int
    sqls: int | None
    sals: int | None
    mqls: int
    mqls_per_week: float  # the sum of the segments' weekly MQLs as shown, to a tenth


@dataclass(frozen=True)
class RevenuePlan:
    goal: Goal
    currency: str | None
    history_weeks: int
    observed_weeks: float  # the weeks the pace ("now") is measured over
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
            deals=sum(whole(segment.deals or 0) for segment in segments),
            opportunities=sum(whole(segment.opportunities or 0) for segment in segments),
            sqls=_total([segment.sqls for segment in segments]),
            sals=_total([segment.sals for segment in segments]),
            mqls=sum(whole(segment.mqls or 0) for segment in segments),
            # Each segment's weekly MQLs are shown to a tenth: the headline adds those up, so
            # 37.0 + 18.5 + 6.2 reads 61.7 on screen, not the unrounded 61.6.
            mqls_per_week=sum(round(segment.mqls_per_week or 0, 1) for segment in segments),
        )

    @property
    def mqls_now(self) -> float:
        return sum(segment.mqls_now for segment in self.segments)


def _total(counts: list[float | None]) -> int | None:
    """The counts as shown added up; None when one is not known."""
    if any(value is None for value in counts):
        return None
    return sum(whole(value or 0) for value in counts)


def whole(value: float) -> int:
    """Counts of deals, opportunities and MQLs are worked out upwards: 22.1 deals need 23."""
    return math.ceil(round(value, 6))


def blend(
    successes: float, trials: float, prior: float | None, weight: int = PRIOR_WEIGHT
) -> float:
    """The measured rate shrunk towards the configured `prior` by sample size (a Beta prior
    worth `weight` observations): (successes + prior × weight) ÷ (trials + weight)."""
    if prior is None:
        return successes / trials
    return (successes + prior * weight) / (trials + weight)


def build_plan(goal: Goal, history: History, policy: Policy) -> RevenuePlan:
    """The plan for `goal` from the measured `history` and the SLA's `plan:` settings."""
    names = [segment.name for segment in policy.segments]
    shares, split_origin = _split(names, history, policy)
    segments = [_segment(name, shares[name], goal, history, policy) for name in names]
    missing: list[str] = []
    for segment in segments:
        if segment.revenue <= 0 or segment.mqls is not None:
            continue
        for item in segment.inputs:
            if item.missing and item.missing not in missing:
                missing.append(item.missing)
    # With no plan.currency, the goal's own (`€400k`: EUR); `$` alone does not say which dollar.
    written = goal.currency if goal.currency != "$" else None
    currency = policy.currency or written
    return RevenuePlan(
        goal, currency, history.weeks, history.observed_weeks, split_origin, segments, missing
    )


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
    trials: Callable[[Funnel], float]
    successes: Callable[[Funnel], float]
    missing: str


_AVERAGE_DEAL = _Rate(
    "average_deal",
    lambda f: f.won_with_amount,
    lambda f: f.won_amount,
    f'no won deal with an amount yet: send stage "won" with its "amount" to {ACTIVITY_ROUTE}, '
    "or set plan.average_deal in sla.yaml",
)
_WIN_RATE = _Rate(
    "win_rate",
    lambda f: f.won + f.lost,
    lambda f: f.won,
    f'no won deals recorded yet: send stage changes ("won", "lost") to {ACTIVITY_ROUTE}, '
    "or set plan.win_rate in sla.yaml",
)
_OPPORTUNITY_RATE = _Rate(
    "opportunity_rate",
    lambda f: f.sqls,
    lambda f: f.opportunities,
    f'no opportunities recorded yet: send stage changes ("opportunity") to {ACTIVITY_ROUTE}, '
    "or set plan.opportunity_rate (MQL → opportunity) in sla.yaml",
)
# MQL → opportunity in one step, prior plan.opportunity_rate as written: the seeds' way when
# the SAL and SQL steps are not known (seed 004, "Building One From the Ground Up").
_MQL_OPPORTUNITY_RATE = _Rate(
    "opportunity_rate",
    lambda f: f.mqls,
    lambda f: f.opportunities,
    "no opportunities recorded yet",
)
_SQL_RATE = _Rate(
    "sql_rate",
    lambda f: f.sals,
    lambda f: f.sqls,
    "no SQLs recorded yet: disposition claimed leads as Qualified in Slack, or set "
    "plan.sql_rate (SAL → SQL) in sla.yaml",
)
_SAL_RATE = _Rate(
    "sal_rate",
    lambda f: f.mqls,
    lambda f: f.sals,
    "no SALs recorded yet: claim leads in Slack, or set plan.sal_rate (MQL → SAL) in sla.yaml",
)


def _prior(rate: _Rate, policy: Policy) -> tuple[float | None, str | None]:
    """The SLA file's value for `rate`, and the key it is read from. `plan.opportunity_rate` is
    MQL → opportunity; the SQL → opportunity step's prior is it ÷ (sal_rate × sql_rate)."""
    settings = policy.plan
    if settings is None:
        return None, None
    if rate is not _OPPORTUNITY_RATE:  # plan.opportunity_rate is MQL → opportunity as written
        value = getattr(settings, rate.key)
        return value, (f"plan.{rate.key}" if value is not None else None)
    if settings.opportunity_rate and settings.sal_rate and settings.sql_rate:
        derived = settings.opportunity_rate / (settings.sal_rate * settings.sql_rate)
        return derived, "plan.opportunity_rate ÷ (plan.sal_rate × plan.sql_rate)"
    return None, None


def _input(rate: _Rate, name: str, history: History, policy: Policy) -> Input:
    """Measured in the segment, else across all segments; blended with the SLA file's value;
    the SLA file's alone when nothing is measured; else missing."""
    prior, key = _prior(rate, policy)
    weight = PRIOR_WEIGHT if prior is not None else 0
    scopes = (
        (history.by_segment.get(name, Funnel()), f"in {name}"),
        (history.team, "across all segments"),
    )
    # Opportunities come only from the CRM: none reported in all these weeks is a CRM that has
    # not sent a stage yet, not a measured 0% (seed 002 sizes MQLs on historical rates).
    unreported = (
        rate in (_OPPORTUNITY_RATE, _MQL_OPPORTUNITY_RATE) and not history.team.opportunities
    )
    for funnel, scope in () if unreported else scopes:
        trials, successes = rate.trials(funnel), rate.successes(funnel)
        if trials > 0 and (successes > 0 or prior is not None):
            value = blend(successes, trials, prior, weight)
            return Input(value, trials, successes, scope, prior, key, weight)
    if prior is not None:
        return Input(prior, prior=prior, prior_key=key, weight=weight)
    return Input(None, missing=rate.missing)


def _segment(name: str, share: float, goal: Goal, history: History, policy: Policy) -> SegmentPlan:
    average = _input(_AVERAGE_DEAL, name, history, policy)
    win = _input(_WIN_RATE, name, history, policy)
    opportunity = _input(_OPPORTUNITY_RATE, name, history, policy)
    sql = _input(_SQL_RATE, name, history, policy)
    sal = _input(_SAL_RATE, name, history, policy)
    revenue = goal.amount * share
    exact_deals = _divide(revenue, average.value)
    deals = None if exact_deals is None else float(whole(exact_deals))
    opportunities = _divide(deals, win.value)
    sqls = _divide(opportunities, opportunity.value)
    sals = _divide(sqls, sql.value)
    mqls = _divide(sals, sal.value)
    shortcut = None
    if mqls is None and opportunities is not None:
        shortcut = _input(_MQL_OPPORTUNITY_RATE, name, history, policy)
        mqls = _divide(opportunities, shortcut.value)
        shortcut = shortcut if mqls is not None else None
    measured = history.by_segment.get(name, Funnel()).mqls
    return SegmentPlan(
        segment=name,
        share=share,
        revenue=revenue,
        average_deal=average,
        win_rate=win,
        opportunity_rate=opportunity,
        sql_rate=sql,
        sal_rate=sal,
        deals=deals,
        opportunities=opportunities,
        sqls=sqls,
        sals=sals,
        mqls=mqls,
        weeks=goal.weeks,
        mqls_now=measured / history.observed_weeks if history.weeks else 0.0,
        target=policy.targets.mql_per_week.get(name),
        mql_opportunity_rate=shortcut,
    )


def _divide(amount: float | None, by: float | None) -> float | None:
    if amount is None:
        return None
    if amount == 0:
        return 0.0
    return None if not by else amount / by
