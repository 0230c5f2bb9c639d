"""Claim windows: who may claim an unclaimed lead now, under its segment's `claim` rule.

`claim: open` (the default): anyone in the segment's pool may claim a lead from its post.
`claim: assigned`: the suggested owner has the lead alone for the segment's `claim_window`,
counted from the post (the start of the lead's cycle, when Handoff posts it); after that it
opens to the pool. Managers may always claim (and reassign). The end of the window is stored
on the lead (`claim_opens_at`) when its cycle starts, so the claim's conditional update in
storage enforces the same rule this module states, and a press at the window's edge is
decided by the database, once.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from bot.domain.lead import LeadView, Stage
from bot.domain.policy import Policy

OPEN_LADDER = "claim_window"
"""The sweep's fence for the window's end: one (lead, cycle, ladder, step) row, so the post
says "open to the pool" exactly once per cycle."""
OPEN_STEP = 0
OPEN_ACTION = "open_to_pool"


@dataclass(frozen=True)
class Reservation:
    """An unclaimed lead held for `rep` alone until `until`."""

    rep: str
    until: datetime


def opens_at(policy: Policy, segment: str | None, start: datetime) -> datetime | None:
    """When a lead of `segment` whose cycle starts at `start` opens to the pool: the end of the
    segment's claim window (on its clock) under `claim: assigned`, else None (open at once)."""
    found = policy.segment(segment)
    if found is None or found.claim != "assigned" or found.claim_window is None:
        return None
    return policy.calendar.add(start, found.claim_window)


def reservation(lead: LeadView, now: datetime) -> Reservation | None:
    """Whom the lead is held for at `now` and until when; None once anyone in the pool may
    claim it (no window, the window is over, nobody is suggested, or it is claimed or closed)."""
    if lead.stage is not Stage.MQL or lead.owner is not None:
        return None
    if lead.claim_opens_at is None or lead.suggested_owner is None:
        return None
    if now >= lead.claim_opens_at:
        return None
    return Reservation(lead.suggested_owner, lead.claim_opens_at)


def held_from(lead: LeadView, actor: str, policy: Policy, now: datetime) -> Reservation | None:
    """The reservation that keeps `actor` from claiming the lead at `now`, if any: a lead held
    for someone else. Its suggested owner and the managers are never held back."""
    held = reservation(lead, now)
    if held is None or held.rep == actor or policy.is_manager(actor):
        return None
    return held


def opened(lead: LeadView, now: datetime) -> datetime | None:
    """When the unclaimed lead opened to the pool, if its claim window is over at `now` (for
    the post: "open to the pool since 10:15"); None if it has no window or it is still held."""
    if lead.stage is not Stage.MQL or lead.owner is not None or lead.claim_opens_at is None:
        return None
    return lead.claim_opens_at if now >= lead.claim_opens_at else None


def window_end(
    lead: LeadView, now: datetime, recorded: set[tuple[str, int]]
) -> tuple[bool, datetime | None]:
    """The sweep's look at the window: (it ended and the post must say so now, when to look
    again for it). Nothing once the post said so this cycle (`recorded`) or the lead was
    claimed or closed meanwhile."""
    if lead.stage is not Stage.MQL or lead.owner is not None or lead.claim_opens_at is None:
        return False, None
    if (OPEN_LADDER, OPEN_STEP) in recorded:
        return False, None
    if now >= lead.claim_opens_at:
        return True, None
    return False, lead.claim_opens_at
