"""Nurture and recycle come back: when a closed lead is scored again, what counts as new
engagement, and what a lead that arrives again under its external id does.

A nurtured lead (at intake or by a disposition) is scored again at its re-engagement date
(`nurture_after`), and whenever marketing sends it again with new engagement; a recycled lead
is scored again when it is sent with new engagement (it comes back on its own after
`recycle_after`). Pure rules: the caller gives `now` and the current SLA.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from datetime import datetime
from typing import Any, Literal

from bot.domain import claim
from bot.domain.escalation import claim_deadline
from bot.domain.intake import Company, Engagement, LeadIn
from bot.domain.lead import LeadView, Stage
from bot.domain.policy import Policy, Segment
from bot.domain.routing import Routing, route
from bot.domain.scoring import is_own

# The stages a lead comes back from (re-qualified when it arrives again with new engagement).
RETURNING = frozenset({Stage.NURTURE, Stage.RECYCLE})


def _identity(item: dict[str, Any]) -> tuple[str, str, str, str]:
    """What makes two engagement entries the same: type, title, url and time as stored."""
    return (
        str(item.get("type") or "").strip().lower(),
        str(item.get("title") or "").strip(),
        str(item.get("url") or "").strip(),
        str(item.get("at") or ""),
    )


def new_engagement(
    stored: list[dict[str, Any]], sent: list[dict[str, Any]]
) -> list[dict[str, Any]]:
    """The entries of `sent` the lead has not had (by type, title, url and time), in order,
    each once."""
    seen = {_identity(item) for item in stored}
    fresh: list[dict[str, Any]] = []
    for item in sent:
        key = _identity(item)
        if key not in seen:
            seen.add(key)
            fresh.append(item)
    return fresh


def own_score(lead: LeadView) -> int | None:
    """The score the marketing system sent for the lead (None: Handoff scored it)."""
    return lead.score if is_own(lead.score_reasons) else None


def higher_score(lead: LeadView, sent: int | None) -> bool:
    """Whether the marketing system now sends a higher score than the lead has."""
    return sent is not None and sent > lead.score


def as_sent(lead: LeadView, engagement: list[dict[str, Any]], score: int | None) -> LeadIn:
    """The lead as intake would read it today: its stored data with `engagement` and `score`
    (None: score it from its data). Its segment is kept when the SLA still has it."""
    return LeadIn(
        external_id=lead.external_id,
        email=lead.email,
        name=lead.name,
        title=lead.title,
        phone=lead.phone,
        company=Company.model_validate(lead.company),
        source=lead.source,
        campaign=lead.campaign,
        segment=lead.segment,
        score=score,
        engagement=[Engagement.model_validate(item) for item in engagement],
        received_at=lead.received_at,
    )


@dataclass(frozen=True)
class Rescored:
    """A closed lead scored again under the current SLA."""

    routing: Routing
    engagement: list[dict[str, Any]]  # all of it: what it had and what is new

    @property
    def qualifies(self) -> bool:
        return self.routing.is_mql

    @property
    def reason(self) -> str:
        """Why it is still not an MQL (empty: it is one)."""
        return "; ".join(self.routing.problems)


def rescore(
    lead: LeadView,
    policy: Policy,
    sent: list[dict[str, Any]] | None = None,
    score: int | None = None,
    as_of: datetime | None = None,
) -> Rescored:
    """The lead scored again from what it has now plus `sent` engagement and a `score` sent
    (a sent score only replaces a lower one), as of `as_of`: when it comes back (None: as of
    its first arrival). Recency windows count back from then."""
    engagement = lead.engagement + new_engagement(lead.engagement, sent or [])
    kept = own_score(lead)
    if score is not None and (kept is None or score > kept):
        kept = score
    return Rescored(route(as_sent(lead, engagement, kept), policy, as_of), engagement)


Arrival = Literal["duplicate", "engagement", "requalified", "still_nurture"]


@dataclass(frozen=True)
class Again:
    """What a lead sent again under a known external id does."""

    kind: Arrival
    rescored: Rescored | None = None  # for "requalified" and "still_nurture"
    engagement: list[dict[str, Any]] | None = None  # all of it, when something is new

    @property
    def reason(self) -> str:
        return self.rescored.reason if self.rescored else ""


def arrives_again(
    lead: LeadView, sent: LeadIn, policy: Policy, now: datetime | None = None
) -> Again:
    """A known lead sent again: nothing new (a duplicate); new engagement on a lead that is not
    coming back (open, rejected, qualified: stored only); or a nurtured or recycled lead scored
    again as of `now` (re-qualified as a new cycle, or stored and kept where it is)."""
    sent_items = [item.model_dump(mode="json") for item in sent.engagement]
    fresh = new_engagement(lead.engagement, sent_items)
    if not fresh and not higher_score(lead, sent.score):
        return Again("duplicate")
    if lead.stage not in RETURNING:
        return Again("engagement", engagement=lead.engagement + fresh)
    rescored = rescore(lead, policy, sent_items, sent.score, now)
    kind: Arrival = "requalified" if rescored.qualifies else "still_nurture"
    return Again(kind, rescored, rescored.engagement)


@dataclass(frozen=True)
class Cycle:
    """A closed lead back in its queue as a new cycle, with its own clocks."""

    lead: LeadView  # as it will be stored
    values: dict[str, Any]  # the lead's columns that change
    previous: dict[str, Any]  # the cycle it leaves, for its event (history stays linked)


def _iso(value: datetime | None) -> str | None:
    return value.isoformat() if value else None


def new_cycle(
    lead: LeadView,
    policy: Policy,
    now: datetime,
    suggested: str | None,
    rescored: Rescored | None = None,
    home: Segment | None = None,
) -> Cycle:
    """The lead's next cycle from `now`, suggested to `suggested`: a recycled lead as it was
    routed; a re-scored lead (`rescored`, under `policy`, the current SLA) with its new score,
    segment, tier and engagement. `home`: the segment the routing rules gave it (a named
    account's owner's segment, say), if not its own."""
    values: dict[str, Any] = {}
    if rescored is not None:
        routing = rescored.routing
        segment = routing.segment
        values = {
            "score": routing.score.value,
            "score_reasons": routing.score.reasons,
            "handoff_score": routing.score.ours,
            "engagement": rescored.engagement,
            "stage_reason": None,
            "segment": segment.name if segment else lead.segment,
            "channel": segment.channel if segment else lead.channel,
            "tier": routing.tier.name,
            "sla_version": policy.version,
        }
    if home is not None:
        values |= {"segment": home.name, "channel": home.channel}
    tier_name = values.get("tier", lead.tier)
    tier = next((t for t in policy.tiers if t.name == tier_name), policy.tiers[-1])
    values |= {
        "cycle": lead.cycle + 1,
        "cycle_started_at": now,
        "owner": None,
        "owner_zone": None,
        "suggested_owner": suggested,
        "attempts": 0,
        "claim_due_at": claim_deadline(policy, tier, now),
        "claim_opens_at": claim.opens_at(policy, values.get("segment", lead.segment), now),
        "first_touch_due_at": policy.calendar.add(now, tier.first_touch),
        "disposition_due_at": None,
        "final_due_at": None,
        "feedback_at": None,
        "disposition_code": None,
        "disposition_reason": None,
        "disposition_note": None,
        # The new cycle's stage times; the old ones stay in the cycle's event.
        "posted_at": None,
        "claimed_at": None,
        "first_touch_at": None,
        "dispositioned_at": None,
        "message_channel": None,
        "message_ts": None,
        "snoozed_until": None,
        "info_question": None,
        "info_asked_at": None,
        "info_asked_by": None,
        "info_pauses": (),  # the old cycle's questions move none of the new cycle's steps
        "next_touch_due_at": None,  # the new cycle's cadence starts at its claim
        "touches_counted": 0,
        "follow_up_met_at": None,
    }
    fresh = replace(lead, **values, stage=Stage.MQL)
    values["stage"] = Stage.MQL.value
    if rescored is not None:  # it qualifies now: the reports count it as an MQL (by arrival)
        values["mql"] = True
    previous = {
        "cycle": lead.cycle,
        "stage": lead.stage.value,
        "posted_at": _iso(lead.posted_at),
        "claimed_at": _iso(lead.claimed_at),
        "first_touch_at": _iso(lead.first_touch_at),
        "dispositioned_at": _iso(lead.dispositioned_at),
        "owner": lead.owner,
        "attempts": lead.attempts,
        "disposition": lead.disposition_code,
        "message_ts": lead.message_ts,
    }
    if rescored is not None:
        previous |= {"score": lead.score, "new_score": rescored.routing.score.value}
    return Cycle(fresh, values, previous)
