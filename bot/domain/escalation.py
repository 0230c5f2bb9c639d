"""The clocks on a lead and the escalation ladders that police them: pure rules over `now`.

A lead runs up to three clocks (windows of business time from a start to a deadline):
`unclaimed` (nobody owns it; from the cycle's start to the claim deadline), `no_touch` (no
contact attempt yet; to the first-touch deadline) and `no_feedback` (owned but not
dispositioned; from the claim to the disposition deadline). Each clock has a ladder of steps at
a share of its window (50%, 100%, 150%…). When a sweep finds steps due, only the strongest one
fires (after downtime: the most advanced); the ones it passed over are recorded as skipped, so
a sweep after downtime never floods anyone.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime

from bot.domain.businesstime import BusinessCalendar
from bot.domain.durations import words
from bot.domain.lead import LeadView, Stage
from bot.domain.policy import EscalationStep, Policy, Tier

LADDER_WORDS = {
    "unclaimed": "claim",
    "no_touch": "first touch",
    "no_feedback": "disposition (feedback to marketing)",
}


SEVERITY = {"remind_channel": 1, "remind_owner": 2, "notify_manager": 3, "reassign": 4}


@dataclass(frozen=True)
class Window:
    """One clock: `ladder` runs from `start` to its deadline `due`."""

    ladder: str
    start: datetime
    due: datetime

    @property
    def what(self) -> str:
        return LADDER_WORDS[self.ladder]


@dataclass(frozen=True)
class DueStep:
    ladder: str
    index: int
    step: EscalationStep
    at: datetime
    window: Window


@dataclass(frozen=True)
class Plan:
    """What a sweep does to one lead now."""

    fire: list[DueStep] = field(default_factory=list)  # at most one
    skip: list[DueStep] = field(default_factory=list)  # passed over after downtime
    next_at: datetime | None = None  # when to look at the lead again (None: never)
    recycle: bool = False  # a recycled or nurtured lead's re-engagement date has come


def windows(lead: LeadView, policy: Policy) -> list[Window]:
    """The clocks running on the lead now (none while marketing has its question)."""
    if lead.waiting_for_info:
        return []
    start = lead.cycle_started_at or lead.received_at
    running: list[Window] = []
    if lead.stage is Stage.MQL and lead.owner is None and lead.claim_due_at is not None:
        running.append(Window("unclaimed", start, lead.claim_due_at))
    open_stage = lead.stage in (Stage.MQL, Stage.SAL)
    if open_stage and lead.first_touch_at is None and lead.first_touch_due_at is not None:
        running.append(Window("no_touch", start, lead.first_touch_due_at))
    if lead.stage is Stage.SAL and lead.claimed_at and lead.disposition_due_at:
        running.append(Window("no_feedback", lead.claimed_at, lead.disposition_due_at))
    return running


def step_times(
    window: Window, steps: list[EscalationStep], calendar: BusinessCalendar
) -> list[datetime]:
    """When each step of the window's ladder comes due: its share of the window's business time."""
    span = calendar.elapsed(window.start, window.due)
    return [calendar.add(window.start, round(step.at * span)) for step in steps]


def plan(lead: LeadView, policy: Policy, now: datetime, recorded: set[tuple[str, int]]) -> Plan:
    """Which steps fire now, which are skipped, and when the lead is due again.

    `recorded` holds the (ladder, step index) pairs of this cycle already fired or skipped.
    """
    if lead.stage in (Stage.RECYCLE, Stage.NURTURE):
        back = lead.next_action_at
        return Plan(recycle=back is not None and back <= now, next_at=back)
    ripe_all: list[DueStep] = []
    upcoming: list[datetime] = []
    snoozed = lead.snoozed_until is not None and now < lead.snoozed_until
    for window in windows(lead, policy):
        steps = policy.escalation.ladder(window.ladder)
        times = step_times(window, steps, policy.calendar_for(lead.owner_zone))
        ripe = [
            DueStep(window.ladder, index, step, at, window)
            for index, (step, at) in enumerate(zip(steps, times, strict=True))
            if at <= now and (window.ladder, index) not in recorded
        ]
        upcoming += [
            at
            for index, at in enumerate(times)
            if at > now and (window.ladder, index) not in recorded
        ]
        if not snoozed:  # a manager said "not now": look again when the snooze ends
            ripe_all += ripe
    if snoozed and lead.snoozed_until is not None:
        upcoming.append(lead.snoozed_until)
    next_at = min(upcoming) if upcoming else None
    if not ripe_all:
        return Plan(next_at=next_at)
    # One step per lead per sweep: the strongest due one (after downtime, the most advanced);
    # every other due step is recorded as skipped, so a restart never floods anyone.
    best = max(ripe_all, key=lambda due: (SEVERITY[due.step.do], due.at))
    return Plan(fire=[best], skip=[due for due in ripe_all if due is not best], next_at=next_at)


def first_check(lead: LeadView, policy: Policy) -> datetime | None:
    """When a new (or newly claimed) lead first needs a look: its earliest step."""
    return plan(lead, policy, lead.cycle_started_at or lead.received_at, set()).next_at


def urgency(lead: LeadView, policy: Policy, now: datetime) -> tuple[str, Window | None]:
    """How the lead's nearest clock looks now: "ok", "near" (past its first step) or "overdue"."""
    running = windows(lead, policy)
    if not running:
        return "ok", None
    window = min(running, key=lambda w: w.due)
    if now >= window.due:
        return "overdue", window
    steps = policy.escalation.ladder(window.ladder)
    times = step_times(window, steps, policy.calendar_for(lead.owner_zone))
    if times and now >= times[0]:
        return "near", window
    return "ok", window


def time_words(window: Window, now: datetime, calendar: BusinessCalendar) -> str:
    """ "due in 40m" or "overdue by 1h 20m" of business time, for people."""
    if now < window.due:
        return f"due in {words(calendar.elapsed(now, window.due))}"
    late = calendar.elapsed(window.due, now)
    return f"overdue by {words(late)} of business time" if late else "due now"


def claim_deadline(policy: Policy, tier: Tier, start: datetime) -> datetime:
    """When a lead must be claimed: the tier's `claim`, else half its first-touch window."""
    if tier.claim is not None:
        return policy.calendar.add(start, tier.claim)
    minutes = tier.first_touch.total_minutes(policy.calendar.minutes_per_day)
    return policy.calendar.add(start, max(1, minutes // 2))


def feedback_check(
    policy: Policy, claimed: datetime, due: datetime, owner_zone: str | None = None
) -> datetime | None:
    """The first step of the no-feedback ladder of a lead claimed at `claimed`."""
    steps = policy.escalation.ladder("no_feedback")
    window = Window("no_feedback", claimed, due)
    calendar = policy.calendar_for(owner_zone)
    return step_times(window, steps[:1], calendar)[0] if steps else None


def feedback_deadline(
    policy: Policy, claimed: datetime, owner_zone: str | None
) -> tuple[datetime, datetime | None]:
    """A lead claimed at `claimed`: its disposition deadline and the first step towards it."""
    due = policy.calendar_for(owner_zone).add(claimed, policy.disposition_deadline)
    return due, feedback_check(policy, claimed, due, owner_zone)
