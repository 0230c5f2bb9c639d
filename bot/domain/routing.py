"""Routing and scoring: which segment, which tier, which rep, and whether it is an MQL."""

from __future__ import annotations

import re
from dataclasses import dataclass

from bot.domain.intake import LeadIn
from bot.domain.policy import Policy, Segment, SegmentWhen, Tier

_SENIOR = ("chief", "ceo", "cfo", "cmo", "cro", "cto", "coo", "vp", "vice president", "head")
# Whole words only: "cto" is inside "director", "coo" inside "coordinator".
_SENIOR_WORDS = re.compile(r"\b(?:" + "|".join(_SENIOR) + r")\b")
_MANAGER = ("director", "manager", "lead", "founder", "owner", "partner")
OWN_SCORE = "score sent by the marketing system"  # the reason of a score kept as sent
_INTENT = {"demo_request": 30, "pricing": 25, "trial": 25, "event": 15, "webinar": 15}


@dataclass(frozen=True)
class Score:
    value: int
    reasons: list[str]
    own: bool  # the sender scored the lead; we keep its number


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


def score_lead(lead: LeadIn) -> Score:
    """Fit + intent, 0–100; a lead that arrives with its own score keeps it."""
    if lead.score is not None:
        return Score(lead.score, [OWN_SCORE], own=True)
    reasons: list[str] = []
    fit = 0
    title = (lead.title or "").lower()
    if _SENIOR_WORDS.search(title):
        fit += 30
        reasons.append("senior title (+30)")
    elif any(word in title for word in _MANAGER):
        fit += 20
        reasons.append("manager-level title (+20)")
    employees = lead.company.employees
    if employees is not None and employees >= 50:
        fit += 20
        reasons.append(f"{employees:,} employees (+20)")
    intent = 0
    for item in lead.engagement:
        points = _INTENT.get(item.type.lower(), 10)
        intent += points
    if lead.engagement:
        reasons.append(f"{len(lead.engagement)} engagement(s) (+{min(intent, 50)})")
    source_points = _INTENT.get((lead.source or "").lower(), 0)
    if source_points and not lead.engagement:
        intent += source_points
        reasons.append(f"source {lead.source} (+{source_points})")
    return Score(min(100, fit + min(intent, 50)), reasons, own=False)


def missing_fields(lead: LeadIn, policy: Policy) -> list[str]:
    """The SLA's required fields the lead lacks (data completeness)."""
    return [path for path in policy.mql.required_fields if lead.value(path) in (None, "")]


def matches_icp(lead: LeadIn, policy: Policy) -> bool | None:
    """Whether the lead fits the SLA's ideal customer profile (None: the SLA defines none)."""
    return None if policy.icp is None else _segment_matches(lead, policy.icp)


def mql_problems(lead: LeadIn, score: Score, policy: Policy) -> list[str]:
    """Why the lead is not an MQL (empty: it is one): missing data or a score below threshold."""
    problems = [f"missing {path}" for path in missing_fields(lead, policy)]
    if score.value < policy.mql.threshold:
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


def route(lead: LeadIn, policy: Policy) -> Routing:
    """Score the lead, pick its segment and tier, and say whether it qualifies."""
    score = score_lead(lead)
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
