"""The lead lifecycle: stages, the stored view of a lead, and the checks before changing it."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from enum import StrEnum
from typing import Any

from bot.domain.access import Action, allowed, refusal
from bot.domain.naming import readable
from bot.domain.policy import Disposition, Policy
from bot.domain.refusal import Reason, Refusal


class Stage(StrEnum):
    MQL = "mql"  # posted, waiting for a rep to claim it
    SAL = "sal"  # claimed: sales accepted it and works it
    SQL = "sql"
    REJECT = "reject"
    NURTURE = "nurture"
    RECYCLE = "recycle"

    @property
    def is_open(self) -> bool:
        return self in (Stage.MQL, Stage.SAL)


class AttemptKind(StrEnum):
    EMAIL = "email"
    CALL = "call"
    LINKEDIN = "linkedin"

    @property
    def words(self) -> str:
        """The channel for people: `email`, `call`, `LinkedIn`."""
        return "LinkedIn" if self is AttemptKind.LINKEDIN else self.value

    @property
    def label(self) -> str:
        """The button that logs one: `Log LinkedIn`."""
        return f"Log {self.words}"


Pause = tuple[datetime, datetime]
"""A question to marketing, answered: when it was asked and when the answer came."""


@dataclass(frozen=True)
class LeadView:
    """A lead as stored: what every rule and every rendering reads."""

    id: int
    external_id: str
    email: str
    stage: Stage
    segment: str
    channel: str
    tier: str
    score: int
    sla_version: str
    received_at: datetime
    name: str | None = None
    title: str | None = None
    phone: str | None = None
    company: dict[str, Any] = field(default_factory=dict)
    source: str | None = None
    campaign: str | None = None
    engagement: list[dict[str, Any]] = field(default_factory=list)
    score_reasons: list[str] = field(default_factory=list)
    handoff_score: int | None = None  # ours, beside a score its sender gave (None: before 0016)
    stage_reason: str | None = None
    suggested_owner: str | None = None
    owner: str | None = None
    owner_zone: str | None = None  # the owner's Slack time zone, for `clock: owner`
    posted_at: datetime | None = None
    claimed_at: datetime | None = None
    first_touch_at: datetime | None = None
    dispositioned_at: datetime | None = None
    first_touch_due_at: datetime | None = None
    disposition_due_at: datetime | None = None  # the first feedback's deadline
    feedback_at: datetime | None = None  # the first feedback: any disposition, progressing too
    final_due_at: datetime | None = None  # the final disposition's deadline
    attempts: int = 0
    disposition_code: str | None = None
    disposition_reason: str | None = None
    disposition_note: str | None = None
    message_channel: str | None = None
    message_ts: str | None = None
    # Escalation: the cycle (a recycled lead starts a new one), its clocks, the next check.
    cycle: int = 1
    cycle_started_at: datetime | None = None
    claim_due_at: datetime | None = None
    # `claim: assigned`: the suggested owner has it alone until then (None: open to the pool).
    claim_opens_at: datetime | None = None
    next_action_at: datetime | None = None
    snoozed_until: datetime | None = None
    # "Request more info": the question waiting for marketing (its clocks pause meanwhile).
    info_question: str | None = None
    info_asked_at: datetime | None = None
    info_asked_by: str | None = None
    # The cycle's answered questions, oldest first: the steps a deadline already passed at a
    # question had still to come wait its pause out (bot/domain/escalation.py `windows`).
    info_pauses: tuple[Pause, ...] = ()

    @property
    def waiting_for_info(self) -> bool:
        """Marketing has the lead's question: its owner waits, its clocks are paused."""
        return self.info_asked_at is not None

    # The follow-up cadence (bot/domain/cadence.py), kept with each attempt and claim.
    next_touch_due_at: datetime | None = None
    touches_counted: int = 0  # attempts that count towards the standard (all of them)
    follow_up_met_at: datetime | None = None
    # The owner's rating after the disposition, 1–5 each (None: not rated).
    fit_rating: int | None = None
    timing_rating: int | None = None
    erased_at: datetime | None = None  # its personal data was erased (`handoff forget`)
    # Why the suggested owner was chosen (bot/domain/routing.py `RouteReason`, as stored).
    route_reason: dict[str, Any] | None = None
    account_domain: str | None = None  # the company's normalised domain (None: free mail)
    crm_id: str | None = None  # its CRM record (HubSpot contact / Salesforce Lead id)
    # Its deal, as the CRM reports it (bot/domain/activity.py `Deal`): shown on its message.
    opportunity_at: datetime | None = None
    won_at: datetime | None = None
    lost_at: datetime | None = None
    amount: float | None = None

    @property
    def display_name(self) -> str:
        return self.name or self.email

    @property
    def company_name(self) -> str | None:
        value = self.company.get("name")
        return str(value) if value else None


def evolve(lead: LeadView, **changes: Any) -> LeadView:
    """`lead` with `changes` (what `dataclasses.replace` gives, as LeadView has no
    `__post_init__` and every field is in `__init__`), without calling its 60-field
    `__init__`: intake makes two or three of these per lead (issue 15)."""
    unknown = changes.keys() - lead.__dict__.keys()
    if unknown:
        raise TypeError(f"LeadView has no field {sorted(unknown)[0]!r}")
    copy = object.__new__(LeadView)
    copy.__dict__.update(lead.__dict__)
    copy.__dict__.update(changes)
    return copy


@dataclass(frozen=True)
class EventView:
    """One row of a lead's audit trail: who did what, when, with what data."""

    lead_id: int
    type: str
    actor: str
    at: datetime
    data: dict[str, Any]


def check_claim(lead: LeadView, actor: str, policy: Policy) -> None:
    """Raise Refusal unless `actor` may claim the lead now (a pool rep or a manager)."""
    if lead.owner is not None:
        raise Refusal(f"Too late: this lead was already claimed by <@{lead.owner}>.", Reason.TAKEN)
    if lead.stage is not Stage.MQL:
        raise Refusal(
            f"This lead is closed ({lead.stage.value}); there is nothing to claim.", Reason.CLOSED
        )
    if not allowed(Action.CLAIM, actor, policy, lead):
        raise Refusal(refusal(Action.CLAIM, actor, policy, lead), Reason.NOT_ALLOWED)


def closed_as(lead: LeadView, policy: Policy) -> str:
    """`This lead was already closed as Not a fit (No budget)`: its disposition in words."""
    disposition = policy.disposition(lead.disposition_code or "")
    what = disposition.label if disposition else lead.disposition_code or lead.stage.value
    why = f" ({lead.disposition_reason})" if lead.disposition_reason else ""
    return f"This lead was already closed as {what}{why}"


def check_work(
    lead: LeadView, actor: str, policy: Policy, action: str, kind: Action = Action.ATTEMPT
) -> None:
    """Raise Refusal unless `actor` may take `kind` of work (worded `action`) on the lead now."""
    if lead.owner is None:
        raise Refusal(f"Claim this lead before you {action}.", Reason.NOT_READY)
    if not allowed(kind, actor, policy, lead):
        raise Refusal(refusal(kind, actor, policy, lead, doing=action), Reason.NOT_ALLOWED)
    if not lead.stage.is_open:
        raise Refusal(f"{closed_as(lead, policy)}; nothing was changed.", Reason.CLOSED)
    if lead.waiting_for_info:
        raise Refusal(
            "This lead is with marketing, waiting for the answer to "
            f"“{lead.info_question or 'a question'}”; it comes back to its owner with the "
            "answer. Nothing was changed.",
            Reason.NOT_READY,
        )


NOTE_MAX = 2000  # characters of a disposition's note for marketing (the modal's max_length)


def check_disposition(
    policy: Policy, code: str, reason: str | None, note: str | None
) -> tuple[Disposition, dict[str, str]]:
    """The disposition for `code`, and the input errors (by input) a modal should show."""
    disposition = policy.disposition(code)
    if disposition is None:
        known = ", ".join(item.label for item in policy.dispositions)
        raise Refusal(f"{code!r} is not a disposition of this SLA (it has: {known}).")
    errors: dict[str, str] = {}
    if disposition.reason_required:
        if not reason:
            errors["reason"] = "Pick the reason marketing should hear."
        elif reason not in disposition.reasons:
            errors["reason"] = f"{reason!r} is not one of the reasons for {disposition.label}."
        if not (note or "").strip():
            errors["note"] = "Add a short note for marketing: what did you learn?"
    if len(note or "") > NOTE_MAX:  # the modal stops at it; a request made by hand may not
        errors["note"] = f"Keep the note to {NOTE_MAX:,} characters (it has {len(note or ''):,})."
    return disposition, errors


STAGE_BY_OUTCOME = {
    "sql": Stage.SQL,
    "reject": Stage.REJECT,
    "nurture": Stage.NURTURE,
    "recycle": Stage.RECYCLE,
    "progressing": Stage.SAL,  # feedback: the lead stays open and owned
}
FEEDBACK_OUTCOMES = frozenset({"reject", "nurture", "recycle"})


def counted_attempts(lead: LeadView) -> int:
    """The attempts that count towards the follow-up standard: every attempt of the cycle
    (bot/domain/cadence.py). A lead stored under an older rule (before the cadence was kept,
    or when attempts close together did not count) keeps a smaller `touches_counted` until its
    next attempt; it reads by its attempts too."""
    return lead.attempts


def follow_up_met(lead: LeadView, policy: Policy) -> bool:
    """Whether the lead met the follow-up standard: what the reports' coverage counts. A lead
    whose cadence was stored under an older rule is judged by its count of attempts: one whose
    attempts were all logged before Handoff kept the cadence (migration 0014: none counted) as
    it was then; one stored when attempts close together did not count (fewer counted than
    logged) likewise, unless the standard asks for channels, which only its attempts' events
    tell (its next attempt recomputes it)."""
    if lead.follow_up_met_at is not None:
        return True
    standard = policy.follow_up
    enough = lead.attempts >= standard.min_attempts
    spaced = 0 < lead.touches_counted < lead.attempts and standard.channels is None
    return enough and (lead.touches_counted == 0 or spaced)


def check_attempts(lead: LeadView, policy: Policy, disposition: Disposition) -> None:
    """Raise Refusal unless the lead met the follow-up standard `disposition` needs (Unable to
    contact): its attempts, on enough channels, as the reports count it."""
    if not disposition.requires_attempts or follow_up_met(lead, policy):
        return
    standard = policy.follow_up
    minimum, counted = standard.min_attempts, counted_attempts(lead)
    asks = f"the SLA asks for {minimum} within {standard.within.words}"
    if counted < minimum:
        raise Refusal(
            f"{disposition.label} needs {minimum} contact attempts first ({counted} of "
            f"{minimum} so far): keep trying, {asks}.",
            Reason.NOT_READY,
        )
    raise Refusal(
        f"{disposition.label} needs attempts on {standard.channels} different channels first "
        f"(email, call, LinkedIn): {asks} on {standard.channels}+ channels. Try another channel.",
        Reason.NOT_READY,
    )


def check_manager(lead: LeadView, actor: str, policy: Policy, action: Action, verb: str) -> None:
    """Raise Refusal unless `actor` may take a manager's `action` on the lead, open now."""
    if not allowed(action, actor, policy, lead):
        raise Refusal(refusal(action, actor, policy, lead), Reason.NOT_ALLOWED)
    if not lead.stage.is_open:
        raise Refusal(
            f"{closed_as(lead, policy)}; there is nothing to {verb} and nothing was changed.",
            Reason.CLOSED,
        )


def parse_attempt(kind: str) -> AttemptKind:
    """The kind of contact attempt `kind` names; Refusal if it names none."""
    try:
        return AttemptKind(kind)
    except ValueError:
        raise Refusal(f"{kind!r} is not a kind of contact attempt.") from None


def check_pool(lead: LeadView, rep: str, policy: Policy) -> None:
    """Raise Refusal unless `rep` is in the pool of the lead's segment (a reassignment's target)."""
    segment = policy.segment(lead.segment)
    pool = list(segment.reps) if segment else []
    if rep not in pool:
        reps = ", ".join(f"<@{user}>" for user in pool) or "nobody"
        pool_name = readable(lead.segment)
        raise Refusal(f"<@{rep}> is not in the {pool_name} pool ({reps}); nothing was changed.")


def comes_back_at(lead: LeadView, policy: Policy, stage: Stage, now: datetime) -> datetime | None:
    """When a lead closed at `now` into `stage` comes back: a recycled lead to its queue after
    `recycle_after` (on its owner's clock); a nurtured lead is scored again after
    `nurture_after` (on the team's clock); the others never. A calendar-time wait that ends
    outside working time (a night, a weekend, a `closed:` day) ends when work opens next: a
    lead returns to people at work."""
    if stage is Stage.NURTURE:
        calendar, wait = policy.calendar, policy.nurture_after
    elif stage is Stage.RECYCLE:
        calendar, wait = policy.calendar_for(lead.owner_zone), policy.recycle_after
    else:
        return None
    return calendar.at_work(calendar.add(now, wait))


def snoozed_until(lead: LeadView, policy: Policy, now: datetime, hours: int) -> datetime:
    """The end of a snooze of `hours` working hours from `now`, on the lead's clock."""
    return policy.calendar_for(lead.owner_zone).add(now, 60 * hours)


RATINGS = (1, 2, 3, 4, 5)
RATED = ("fit", "timing")  # what the owner rates: how well the lead fits, and its timing


def earlier_cycle_post(
    lead: LeadView, shown_in: str | None, shown_cycle: int | None = None
) -> str | None:
    """The refusal of a rating picked on the post of one of the lead's earlier cycles: the
    lead's row is its current cycle now, and an ended cycle is kept as it was
    (storage/cycles.py). Decided by the cycle the post shows (`shown_cycle`, carried in the
    menu's options): a copy of the current cycle's post that Handoff posted again (a deleted
    post, an archived channel) is of the current cycle, whatever its ts. A post rendered
    before options carried the cycle says none: for it alone, a post other than the lead's
    current one (`shown_in`: the ts of the post picked on) is taken for an earlier cycle's."""
    if shown_cycle is not None:
        if shown_cycle >= lead.cycle:
            return None
    elif shown_in is None or lead.cycle <= 1 or lead.message_ts in (None, shown_in):
        return None
    return (
        f"This post is of an earlier cycle of this lead: it came back as cycle {lead.cycle}, "
        "and the rating of an earlier cycle stays as it was; nothing was changed."
    )


def check_rating(lead: LeadView, actor: str, policy: Policy, ratings: dict[str, int]) -> None:
    """Raise Refusal unless `actor` may rate the lead with `ratings` now: its owner, after
    the disposition, each rating 1 to 5 of fit or timing."""
    for name, value in ratings.items():
        if name not in RATED or value not in RATINGS:
            raise Refusal(f"A rating is fit or timing from 1 to 5, not {name} {value}.")
    if not allowed(Action.RATE, actor, policy, lead):
        raise Refusal(refusal(Action.RATE, actor, policy, lead), Reason.NOT_ALLOWED)
    if lead.stage.is_open or lead.dispositioned_at is None:
        raise Refusal(
            "Rate a lead after its disposition: mark the outcome first.", Reason.NOT_READY
        )
