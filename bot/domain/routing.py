"""Routing: which segment, which tier, which rep, and whether it is an MQL (the score itself is
bot/domain/scoring.py's)."""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from datetime import date, datetime, timedelta
from typing import Any

from bot.domain.accounts import account_domain
from bot.domain.intake import LeadIn
from bot.domain.policy import Policy, Segment, SegmentWhen, Territory, TerritoryWhen, Tier
from bot.domain.rotation import PoolRules
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


def _in_territory(lead: LeadIn, when: TerritoryWhen) -> bool:
    company = lead.company
    prefixes = when.postcode_prefix
    if prefixes is not None:
        postcode = (company.postcode or "").replace(" ", "").lower()
        options = [prefixes] if isinstance(prefixes, str) else prefixes
        if not postcode or not any(
            postcode.startswith(p.replace(" ", "").lower()) for p in options
        ):
            return False
    return (
        _matches(company.country, when.country)
        and _matches(company.state, when.state)
        and _matches(company.industry, when.industry)
    )


def territory_of(lead: LeadIn, policy: Policy) -> Territory | None:
    """The first territory of the SLA whose places match the lead (None: none does)."""
    return next((t for t in policy.territories if _in_territory(lead, t.when)), None)


def choose_segment(lead: LeadIn, policy: Policy) -> Segment | None:
    """The segment the sender named, else the first matching territory's, else the first
    whose `when` matches (None: no match)."""
    named = policy.segment(lead.segment)
    if named is not None:
        return named
    territory = territory_of(lead, policy)
    if territory is not None and (segment := policy.segment(territory.segment)) is not None:
        return segment
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
    segment = choose_segment(lead, policy)  # None: an MQL still goes to the fallback owner
    problems = mql_problems(lead, score, policy)
    return Routing(
        score=score,
        segment=segment,
        tier=choose_tier(score.value, lead.source, policy),
        problems=problems,
        complete=not missing_fields(lead, policy),
        icp=matches_icp(lead, policy),
    )


# How a lead's suggested owner was chosen: the `rule` of its `RouteReason`.
NAMED_ACCOUNT = "named_account"
ACCOUNT_MATCH = "account_match"
PARTNER = "partner"
ROUND_ROBIN = "round_robin"
# A lead handed on by a manager, or by its owner changed in the CRM (its route reason's rule).
BY_MANAGER, BY_CRM = "manager", "crm"
# A lead offered to the pool while its rep was away, with nobody available to suggest it to.
OFFERED = "offered"
FALLBACK = "fallback"


# The business day (ISO date, team zone) a turn counted its lead in, kept in its route reason.
COUNTED_ON = "counted_on"


@dataclass(frozen=True)
class Counted:
    """The rep the rotation counted a lead to, and the periods it counted it in: what the lead
    leaving them takes off (`periods` None: not recorded, as for a lead routed or reassigned
    before the reason kept its day: the leave's own periods then)."""

    rep: str
    periods: tuple[str, str] | None = None  # (business day, its week's Monday), ISO dates


def counted_to(reason: dict[str, Any] | None) -> Counted | None:
    """Whom the rotation counted the lead to, by its route reason: the rep of a turn (round
    robin) or of a manager's or the CRM's reassignment (both counted to their rep); None for
    any other rule (a named account, the fallback owner, offered to nobody: not counted).
    A claim leaves the reason as it was, so the rep is not always the lead's owner."""
    reason = reason or {}
    rep = reason.get("rep")
    if reason.get("rule") not in (ROUND_ROBIN, BY_MANAGER, BY_CRM) or not rep:
        return None
    day = reason.get(COUNTED_ON)
    if not isinstance(day, str):
        return Counted(str(rep))
    counted = date.fromisoformat(day)
    return Counted(str(rep), (day, (counted - timedelta(days=counted.weekday())).isoformat()))


@dataclass(frozen=True)
class AccountLead:
    """An owned lead of the same account (open, won or recent): lead-to-account matching."""

    lead_id: int
    owner: str


@dataclass(frozen=True)
class OwnerChoice:
    """The routing rules' answer for one MQL: a rep (and why), or the pool's rotation to ask."""

    segment: Segment | None
    reason: dict[str, Any] = field(default_factory=dict)  # the RouteReason, as stored
    rep: str | None = None  # None with `pool`: the rotation picks
    pool: PoolRules | None = None


def pool_rules(segment: Segment, policy: Policy) -> PoolRules:
    cap = segment.cap
    return PoolRules(
        reps=tuple(segment.reps),
        weights=dict(segment.weights),
        cap_open=cap.open if cap else None,
        cap_per_day=cap.per_day if cap else None,
        catch_up=policy.catch_up,
    )


def named_owner(domain: str | None, policy: Policy) -> str | None:
    """The owner the SLA names for the account `domain` (None: not a named account)."""
    return None if domain is None else policy.named_index.get(domain)


def lead_account(lead: LeadIn, policy: Policy) -> str | None:
    """The lead's account domain under the SLA's matching (None: free mail or no domain)."""
    subdomains = policy.account_subdomains
    return account_domain(lead.company.domain, lead.email, subdomains=subdomains)


def _home(segment: Segment | None, rep: str, policy: Policy) -> Segment | None:
    """The lead's segment once `rep` has it: its own if the rep is in its pool, else the rep's
    first segment (so its post goes where the rep can claim it); a manager keeps it."""
    if segment is not None and rep in segment.reps:
        return segment
    return next((s for s in policy.segments if rep in s.reps), segment)


def choose_owner(
    lead: LeadIn,
    segment: Segment | None,
    policy: Policy,
    account: AccountLead | None = None,
    away: frozenset[str] = frozenset(),
) -> OwnerChoice:
    """The routing rules in order: a named account, the same account's owner (`account`, found
    by the caller when `account_matching` is on), a partner-sourced lead's partner manager,
    then the segment's rotation; the fallback owner when none applies. Owners the SLA no
    longer knows (left every pool) are passed over, and so are owners `away`: the lead goes
    on down the rules, and its reason says whom it passed (`passed`: "Named account of @Ana:
    away")."""
    territory = territory_of(lead, policy)
    where = {"territory": territory.label} if territory is not None else {}
    domain = lead_account(lead, policy)
    passed: list[dict[str, Any]] = []  # the rules that matched an owner who is away

    def rule(reason: dict[str, Any], rep: str) -> OwnerChoice | None:
        if rep in away:
            passed.append({key: reason[key] for key in ("rule", "rep", "lead") if key in reason})
            return None
        return OwnerChoice(_home(segment, rep, policy), reason, rep=rep)

    owner = named_owner(domain, policy)
    if owner is not None and policy.is_known(owner):
        named = {"rule": NAMED_ACCOUNT, "rep": owner, "domain": domain}
        if (chosen := rule(named, owner)) is not None:
            return chosen
    if account is not None and policy.is_known(account.owner):
        same = {"rule": ACCOUNT_MATCH, "rep": account.owner, "lead": account.lead_id}
        if (chosen := rule(same | {"domain": domain}, account.owner)) is not None:
            return chosen
    partner = policy.partner
    if partner is not None and _matches(lead.source, partner.sources) and lead.source:
        sourced = {"rule": PARTNER, "rep": partner.manager}
        if (chosen := rule(sourced, partner.manager)) is not None:
            return chosen
    before = {"passed": passed} if passed else {}
    if segment is not None:
        reason = {"rule": ROUND_ROBIN, **where, **before}
        return OwnerChoice(segment, reason, pool=pool_rules(segment, policy))
    choice = fallback(segment, policy, "no segment matches this lead", away)
    passed += choice.reason.get("passed", [])
    return replace(choice, reason=choice.reason | ({"passed": passed} if passed else {}))


def routed_people(policy: Policy) -> frozenset[str]:
    """Everyone the routing rules can hand a lead to (`Policy.routed_people`: built once per
    policy, not on each call)."""
    return policy.routed_people


def fallback_candidates(policy: Policy) -> tuple[str, ...]:
    """Who may take a lead nobody else can, in order: `fallback_owner`, then the managers."""
    return tuple(dict.fromkeys(r for r in (policy.fallback_owner, *policy.managers) if r))


def fallback_rep(candidates: tuple[str, ...], away: frozenset[str]) -> str | None:
    """The first of `candidates` who is not away; if all are, still the first: a lead is
    never left with nobody (None only when there is nobody at all)."""
    return next((rep for rep in candidates if rep not in away), next(iter(candidates), None))


def fallback(
    segment: Segment | None, policy: Policy, why: str, away: frozenset[str] = frozenset()
) -> OwnerChoice:
    """The fallback owner (or nobody, if the SLA names none and has no manager), and why; if
    they are away, the first manager who is not (`passed` says whom it passed). A lead no
    segment matches goes where its fallback owner can claim it (their segment, if any)."""
    candidates = fallback_candidates(policy)
    rep = fallback_rep(candidates, away)
    reason: dict[str, Any] = {"rule": FALLBACK, "rep": rep, "why": why}
    if candidates and rep != candidates[0]:
        reason["passed"] = [{"rule": FALLBACK, "rep": candidates[0]}]
    home = _home(None, rep, policy) if segment is None and rep is not None else segment
    return OwnerChoice(home, reason, rep=rep)
