"""Claim windows: who may claim an unclaimed lead now, under its segment's `claim` rule.

`claim: open` (the default): anyone in the segment's pool may claim a lead from its post.
`claim: assigned`: the suggested owner has the lead alone for the segment's `claim_window`,
counted from the post (the start of the lead's cycle, when Handoff posts it); after that it
opens to the pool. Managers may always claim (and reassign). The end of the window is stored
on the lead (`claim_opens_at`) when its cycle starts, so the claim's conditional update in
storage enforces the same rule this module states, and a press at the window's edge is
decided by the database, once.

A lead suggested to nobody (its whole pool away, with nobody to fall back on; or offered while
its rep is away and everyone else is too) is held for nobody: it is open to the pool at once,
whatever its window says, so a rep back from time away claims it. A lead offered to the pool
(its rep away past a deadline) opens then: its window ends at the offer (`opens_on_offer`).
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


def held_for_nobody(lead: LeadView) -> bool:
    """Whether the unclaimed lead has a claim window but nobody to hold it for: open to the
    pool (the post says so, with no time: there was no reservation to end)."""
    if lead.stage is not Stage.MQL or lead.owner is not None or lead.claim_opens_at is None:
        return False
    return lead.suggested_owner is None


def held_from(lead: LeadView, actor: str, policy: Policy, now: datetime) -> Reservation | None:
    """The reservation that keeps `actor` from claiming the lead at `now`, if any: a lead held
    for someone else. Its suggested owner and the managers are never held back."""
    held = reservation(lead, now)
    if held is None or held.rep == actor or policy.is_manager(actor):
        return None
    return held


def opened(lead: LeadView, now: datetime) -> datetime | None:
    """When the unclaimed lead opened to the pool, if its claim window is over at `now` (for
    the post: "open to the pool since 10:15"); None if it has no window, it is still held, or
    it is held for nobody (`held_for_nobody`: open, but not by the window's end)."""
    if lead.stage is not Stage.MQL or lead.owner is not None or lead.claim_opens_at is None:
        return None
    if lead.suggested_owner is None:
        return None
    return lead.claim_opens_at if now >= lead.claim_opens_at else None


def window_end(
    lead: LeadView, now: datetime, recorded: set[tuple[str, int]]
) -> tuple[bool, datetime | None]:
    """The sweep's look at the window: (it ended and the post must say so now, when to look
    again for it). Nothing once the post said so this cycle (`recorded`) or the lead was
    claimed or closed meanwhile. A window that ends held for nobody ends too (its fence is
    recorded), but the post has nothing to say (`held_for_nobody`: it was open already)."""
    if lead.stage is not Stage.MQL or lead.owner is not None or lead.claim_opens_at is None:
        return False, None
    if (OPEN_LADDER, OPEN_STEP) in recorded:
        return False, None
    if now >= lead.claim_opens_at:
        return True, None
    return False, lead.claim_opens_at


def opens_on_offer(lead: LeadView, now: datetime) -> bool:
    """Whether offering the lead to the pool at `now` (its rep away past a deadline) ends its
    claim window now: one still running (the lead is back with the pool, not held for the next
    rep), or any window of a claimed lead it releases (it opens now, not when its window ended
    before the claim)."""
    if lead.claim_opens_at is None:
        return False
    return lead.owner is not None or lead.claim_opens_at > now
