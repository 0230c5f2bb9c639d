"""Routing: which segment, which tier, which rep, and whether it is an MQL (the score itself is
bot/domain/scoring.py's)."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from bot.domain.intake import LeadIn
from bot.domain.policy import Policy, Segment, SegmentWhen, Tier
from bot.domain.scoring import OWN_SCORE, Score, score_lead

# Scoring's names, where the callers have always found them.
__all__ = [
    "OWN_SCORE",
    "Routing",
    "Score",
    "choose_segment",
    "choose_tier",
    "matches_icp",
    "missing_fields",
    "mql_problems",
    "next_in_rotation",
    "route",
    "score_lead",
]


def _matches(value: str | None, wanted: str | list[str] | None) -> bool:
    if wanted is None:
        return True
    options = [wanted] if isinstance(wanted, str) else wanted
    return value is not None and value.strip().lower() in {o.lower() for o in options}


def _segment_matches(lead: LeadIn, when: SegmentWhen | None) -> bool:
    if when is None:
        return True
    employees = lead.company.employees
    if when.employees_min is not None and (employees is None or employees < when.employees_min):
        return False
    if when.employees_max is not None and (employees is None or employees > when.employees_max):
        return False
    return (
        _matches(lead.company.country, when.country)
        and _matches(lead.company.industry, when.industry)
        and _matches(lead.source, when.source)
    )


def choose_segment(lead: LeadIn, policy: Policy) -> Segment | None:
    """The segment the sender named, else the first whose `when` matches (None: no match)."""
    named = policy.segment(lead.segment)
    if named is not None:
        return named
    return next((s for s in policy.segments if _segment_matches(lead, s.when)), None)


def choose_tier(score: int, source: str | None, policy: Policy) -> Tier:
    for tier in policy.tiers:
        when = tier.when
        if when is None:
            return tier
        if (when.score_min is None or score >= when.score_min) and _matches(source, when.source):
            return tier
    return policy.tiers[-1]


def missing_fields(lead: LeadIn, policy: Policy) -> list[str]:
    """The SLA's required fields the lead lacks (data completeness)."""
    return [path for path in policy.mql.required_fields if lead.value(path) in (None, "")]


def matches_icp(lead: LeadIn, policy: Policy) -> bool | None:
    """Whether the lead fits the SLA's ideal customer profile (None: the SLA defines none)."""
    return None if policy.icp is None else _segment_matches(lead, policy.icp)


def mql_problems(lead: LeadIn, score: Score, policy: Policy) -> list[str]:
    """Why the lead is not an MQL (empty: it is one): missing data, or a score below the
    threshold without a signal that qualifies it alone."""
    problems = [f"missing {path}" for path in missing_fields(lead, policy)]
    if score.value < policy.mql.threshold and score.qualified_by is None:
        problems.append(f"score {score.value} is below the MQL threshold {policy.mql.threshold}")
    return problems


def next_in_rotation(reps: list[str], position: int) -> str:
    """The rep at a round-robin position (positions count up forever; reps wrap around)."""
    return reps[position % len(reps)]


@dataclass(frozen=True)
class Routing:
    """Where a new lead goes under the SLA, and why."""

    score: Score
    segment: Segment | None
    tier: Tier
    problems: list[str]  # why it is not an MQL; empty: it is one
    complete: bool  # every required field (data completeness)
    icp: bool | None

    @property
    def is_mql(self) -> bool:
        return not self.problems


def route(lead: LeadIn, policy: Policy, as_of: datetime | None = None) -> Routing:
    """Score the lead as of `as_of` (None: its `received_at`), pick its segment and tier, and
    say whether it qualifies."""
    score = score_lead(lead, policy.mql, as_of)
    segment = choose_segment(lead, policy)
    problems = mql_problems(lead, score, policy)
    if segment is None:
        problems.append("no segment of the SLA matches this lead")
    return Routing(
        score=score,
        segment=segment,
        tier=choose_tier(score.value, lead.source, policy),
        problems=problems,
        complete=not missing_fields(lead, policy),
        icp=matches_icp(lead, policy),
    )
