"""Use cases: intake, claim, log attempt, dispose, CRM activity, the revenue plan, look up.
Each takes `now` and commits once."""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from datetime import datetime
from typing import Any, Protocol

from bot.domain import escalation
from bot.domain.access import Action, allowed, refusal
from bot.domain.activity import AttemptIn, activity_time, parse_activity
from bot.domain.escalation import claim_deadline
from bot.domain.intake import FieldError, LeadIn, parse_lead
from bot.domain.lead import (
    FEEDBACK_OUTCOMES,
    STAGE_BY_OUTCOME,
    AttemptKind,
    LeadView,
    Refusal,
    Stage,
    check_claim,
    check_disposition,
    check_work,
)
from bot.domain.plan import Goal, RevenuePlan
from bot.domain.policy import Disposition, Policy
from bot.domain.routing import (
    choose_segment,
    choose_tier,
    matches_icp,
    missing_fields,
    mql_problems,
    score_lead,
)
from bot.services.plan import PLAN_WEEKS, revenue_plan
from bot.services.policies import PolicyBook
from bot.slack import alert_views
from storage.plan import PlanStore
from storage.repository import EventView, NewLead, Store


class Notifier(Protocol):
    """The outbox's delivery worker. Every state change writes its Slack side effects to the
    outbox in its own transaction; after the commit the use case only says "deliver soon"."""

    def deliver_soon(self) -> None: ...


@dataclass(frozen=True)
class IntakeResult:
    lead: LeadView | None
    created: bool
    errors: list[FieldError] = field(default_factory=list)


@dataclass(frozen=True)
class Outcome:
    """What happened, in words for the person who acted (`ok` False: nothing changed)."""

    ok: bool
    message: str = ""
    lead: LeadView | None = None
    repeated: bool = False  # it was done already (a double click or Slack's retry)


@dataclass(frozen=True)
class DisposeOutcome(Outcome):
    errors: dict[str, str] = field(default_factory=dict, kw_only=True)  # modal errors by block


@dataclass(frozen=True)
class ActivityResult:
    """What a CRM activity did to a lead (`lead_id` None: no such lead; `recorded` None and no
    errors: nothing changed, `message` says why)."""

    lead_id: int | None
    recorded: dict[str, Any] | None = None
    errors: list[FieldError] = field(default_factory=list)
    message: str = ""


@dataclass(frozen=True)
class DisposeStart:
    """A disposition button was pressed: dispose at once, or ask for a reason first."""

    lead: LeadView
    disposition: Disposition
    needs_modal: bool


def feedback_check(
    policy: Policy, claimed: datetime, due: datetime, owner_zone: str | None = None
) -> datetime | None:
    """The first step of the no-feedback ladder of a lead claimed at `claimed`."""
    steps = policy.escalation.ladder("no_feedback")
    window = escalation.Window("no_feedback", claimed, due)
    calendar = policy.calendar_for(owner_zone)
    return escalation.step_times(window, steps[:1], calendar)[0] if steps else None


def feedback_deadline(
    policy: Policy, claimed: datetime, owner_zone: str | None
) -> tuple[datetime, datetime | None]:
    """A lead claimed at `claimed`: its disposition deadline and the first step towards it."""
    due = policy.calendar_for(owner_zone).add(claimed, policy.disposition_deadline)
    return due, feedback_check(policy, claimed, due, owner_zone)


def _provisional(values: dict[str, Any], stage: Stage) -> LeadView:
    """The lead about to be stored, for the rules that read a LeadView."""
    fields = {k: v for k, v in values.items() if k in LeadView.__dataclass_fields__}
    return LeadView(**{**fields, "id": 0, "stage": stage})


def _missing_lead(lead_id: int | str) -> Refusal:
    return Refusal(f"Lead {lead_id} no longer exists in Handoff; nothing was changed.")


class Services:
    """The use cases over one store, the SLA versions and a notifier for Slack effects."""

    def __init__(self, store: Store, policies: PolicyBook, notifier: Notifier) -> None:
        self.store = store
        self.policies = policies
        self.notifier = notifier
        # Members' Slack time zones (kept fresh by `bot.services.people`), for `clock: owner`.
        self.zones: dict[str, str] = {}

    @property
    def policy(self) -> Policy:
        return self.policies.current

    async def policy_for(self, lead: LeadView) -> Policy:
        return await self.policies.for_lead(lead)

    async def lead(self, lead_id: int) -> LeadView:
        lead = await self.store.get(lead_id)
        if lead is None:
            raise _missing_lead(lead_id)
        return lead

    # --- intake -------------------------------------------------------------------------------

    async def intake(self, payload: Any, now: datetime, source: str = "intake") -> IntakeResult:
        """Validate, score, route and store a lead; idempotent on its external id."""
        lead_in, errors = parse_lead(payload)
        if lead_in is None:
            return IntakeResult(None, False, errors)
        known = await self.store.by_external_id(lead_in.external_id)
        if known is not None:
            return IntakeResult(known, False)
        new, events = self._route(lead_in, payload, now, source)
        lead, created = await self.store.create_lead(new, events, now)
        if created:
            self.notifier.deliver_soon()
        return IntakeResult(lead, created)

    def _route(
        self, lead_in: LeadIn, payload: dict[str, Any], now: datetime, source: str
    ) -> tuple[NewLead, list[tuple[str, str, dict[str, Any]]]]:
        policy = self.policy
        score = score_lead(lead_in)
        segment = choose_segment(lead_in, policy)
        problems = mql_problems(lead_in, score, policy)
        if segment is None:
            problems.append("no segment of the SLA matches this lead")
        tier = choose_tier(score.value, lead_in.source, policy)
        is_mql = not problems
        values: dict[str, Any] = {
            "external_id": lead_in.external_id,
            "email": lead_in.email,
            "name": lead_in.name,
            "title": lead_in.title,
            "phone": lead_in.phone,
            "company": lead_in.company.model_dump(exclude_none=True),
            "source": lead_in.source,
            "campaign": lead_in.campaign,
            "engagement": [item.model_dump(mode="json") for item in lead_in.engagement],
            "payload": payload,
            "score": score.value,
            "score_reasons": score.reasons,
            "stage": Stage.MQL.value if is_mql else Stage.NURTURE.value,
            "stage_reason": None if is_mql else "; ".join(problems),
            # Facts for the reports, fixed at arrival.
            "mql": is_mql,
            "complete": not missing_fields(lead_in, policy),
            "icp": matches_icp(lead_in, policy),
            "segment": segment.name if segment else "unrouted",
            "channel": segment.channel if segment else policy.channels.marketing_feedback,
            "tier": tier.name,
            "sla_version": policy.version,
            "received_at": lead_in.received_at or now,
            "first_touch_due_at": policy.calendar.add(now, tier.first_touch) if is_mql else None,
            "attempts": 0,
            "cycle": 1,
            "cycle_started_at": now,
        }
        if is_mql:
            values["claim_due_at"] = claim_deadline(policy, tier, now)
            values["next_action_at"] = escalation.first_check(
                _provisional(values, Stage.MQL), policy
            )
        received = {"source": source, "score": score.value, "segment": values["segment"]}
        events: list[tuple[str, str, dict[str, Any]]] = [("received", source, received)]
        if is_mql:
            events.append(("mql", "handoff", {"tier": tier.name, "reasons": score.reasons}))
        else:
            events.append(("nurture", "handoff", {"reason": values["stage_reason"]}))
        pool = list(segment.reps) if segment and is_mql else []
        announce_in = values["channel"] if is_mql else policy.channels.marketing_feedback
        return NewLead(values=values, pool=pool, announce_in=announce_in), events

    # --- claim and work -----------------------------------------------------------------------

    async def claim(self, lead_id: int, actor: str, now: datetime) -> Outcome:
        """Exactly one caller wins; the others learn who has the lead."""
        policy = self.policy
        zone = self.zones.get(actor)  # the claimer's Slack time zone, for `clock: owner`
        due, check = feedback_deadline(policy, now, zone)
        pool = None if policy.is_manager(actor) else policy.segments_of(actor)
        # Fast path: one conditional update, for a lead under the current SLA this actor may
        # claim. Anything else (taken, refused, older SLA, unknown) is explained below.
        if pool != [] and await self.store.claim(
            lead_id,
            actor,
            due,
            now,
            sla_version=policy.version,
            segments=pool,
            check_at=check,
            owner_zone=zone,
        ):
            self.notifier.deliver_soon()
            return Outcome(True)
        lead = await self.lead(lead_id)
        if lead.owner == actor:
            return Outcome(True, "", lead, repeated=True)  # nothing to say
        lead_policy = await self.policy_for(lead)
        check_claim(lead, actor, lead_policy)
        due, check = feedback_deadline(lead_policy, now, zone)
        if await self.store.claim(lead_id, actor, due, now, check_at=check, owner_zone=zone):
            self.notifier.deliver_soon()
            return Outcome(True)
        current = await self.lead(lead_id)
        if current.owner == actor:
            return Outcome(True, "", current, repeated=True)
        owner = f"<@{current.owner}>" if current.owner else "someone else"
        return Outcome(False, f"Too late: this lead was already claimed by {owner}.", current)

    async def log_attempt(self, lead_id: int, actor: str, kind: str, now: datetime) -> Outcome:
        lead = await self.lead(lead_id)
        try:
            attempt = AttemptKind(kind)
        except ValueError:
            raise Refusal(f"{kind!r} is not a kind of contact attempt.") from None
        check_work(lead, actor, await self.policy_for(lead), "log an attempt")
        count = await self.store.log_attempt(lead_id, actor, attempt.value, now)
        if count is None:
            raise Refusal("This lead was closed a moment ago; the attempt was not logged.")
        self.notifier.deliver_soon()
        return Outcome(True)

    async def start_disposition(self, lead_id: int, actor: str, code: str) -> DisposeStart:
        """Check a disposition press; say whether a reason modal must come first."""
        lead = await self.lead(lead_id)
        policy = await self.policy_for(lead)
        disposition, _ = check_disposition(policy, code, None, None)
        check_work(lead, actor, policy, f"mark it {disposition.label}", Action.DISPOSE)
        self._check_attempts(lead, policy, disposition)
        return DisposeStart(lead, disposition, needs_modal=disposition.reason_required)

    def _check_attempts(self, lead: LeadView, policy: Policy, disposition: Disposition) -> None:
        minimum = policy.follow_up.min_attempts
        if disposition.requires_attempts and lead.attempts < minimum:
            raise Refusal(
                f"{disposition.label} needs {minimum} contact attempts first "
                f"({lead.attempts} logged so far): keep trying, the SLA asks for "
                f"{minimum} within {policy.follow_up.within}."
            )

    async def dispose(
        self,
        lead_id: int,
        actor: str,
        code: str,
        now: datetime,
        reason: str | None = None,
        note: str | None = None,
    ) -> DisposeOutcome:
        """Close the lead with a disposition code; a second identical submission is a no-op."""
        lead = await self.lead(lead_id)
        policy = await self.policy_for(lead)
        if lead.disposition_code == code and not lead.stage.is_open:
            return DisposeOutcome(True, "", lead, repeated=True)
        check_work(lead, actor, policy, "disposition it", Action.DISPOSE)
        disposition, errors = check_disposition(policy, code, reason, note)
        if errors:
            return DisposeOutcome(False, "", lead, errors=errors)
        self._check_attempts(lead, policy, disposition)
        stage = STAGE_BY_OUTCOME[disposition.outcome]
        note = (note or "").strip() or None
        feedback = disposition.outcome in FEEDBACK_OUTCOMES
        # A recycled lead comes back to its queue after `recycle_after`; the others are done.
        calendar = policy.calendar_for(lead.owner_zone)
        back = calendar.add(now, policy.recycle_after) if stage is Stage.RECYCLE else None
        done = await self.store.dispose(
            lead_id,
            actor,
            code=code,
            stage=stage,
            reason=reason,
            note=note,
            now=now,
            feedback_channel=policy.channels.marketing_feedback if feedback else None,
            next_action_at=back,
        )
        current = await self.lead(lead_id)
        if not done:
            if current.disposition_code == code:
                return DisposeOutcome(True, "", current, repeated=True)
            raise Refusal(
                f"This lead was closed a moment ago as {current.disposition_code}; "
                "nothing was changed."
            )
        self.notifier.deliver_soon()
        return DisposeOutcome(True, "", current)

    # --- CRM activity -------------------------------------------------------------------------

    async def activity(self, external_id: str, payload: Any, now: datetime) -> ActivityResult:
        """Record what the CRM did on a lead: an attempt (counted like a button press, and the
        lead's message re-rendered) or a deal stage change; idempotent on the CRM's `id`.

        Raises Refusal when the lead can't take it (an attempt on a lead nobody has claimed or
        one closed already; a won deal reported lost)."""
        activity, errors = parse_activity(payload)
        if activity is None:
            return ActivityResult(None, errors=errors)
        lead = await self.store.by_external_id(external_id)
        if lead is None:
            message = f"no lead with the external id {external_id!r}: send it to POST /leads first"
            return ActivityResult(None, message=message)
        try:
            at = activity_time(activity.at, lead.received_at, now)
        except ValueError as error:
            return ActivityResult(lead.id, errors=[FieldError(field="at", message=str(error))])
        if isinstance(activity, AttemptIn):
            return await self._crm_attempt(lead, activity, at, now)
        currency = (self.policy.plan.currency if self.policy.plan else None) or activity.currency
        if activity.currency and activity.currency != currency:
            message = f"must be {currency}, the plan's currency in sla.yaml (nothing is converted)"
            return ActivityResult(lead.id, errors=[FieldError(field="currency", message=message)])
        deal = await self.store.record_stage(
            lead.id,
            activity.stage,
            at,
            amount=activity.amount,
            currency=currency,
            activity_id=activity.id,
        )
        if deal is None:
            return ActivityResult(lead.id, message=_nothing_changed(activity.id))
        recorded: dict[str, Any] = {"type": "stage", "stage": activity.stage}
        recorded |= {"at": at.isoformat(), "amount": deal.amount, "currency": currency}
        return ActivityResult(lead.id, recorded)

    async def _crm_attempt(
        self, lead: LeadView, activity: AttemptIn, at: datetime, now: datetime
    ) -> ActivityResult:
        if lead.stage is Stage.MQL:
            raise Refusal(
                f"lead {lead.external_id} is not claimed yet: an attempt counts once a rep has "
                "claimed the lead in Slack; nothing was recorded"
            )
        actor = activity.actor or "crm"
        count, counted = await self.store.record_attempt(
            lead.id, actor, activity.kind, at, now, activity_id=activity.id
        )
        if count is None:
            closed = lead.disposition_code or lead.stage.value
            raise Refusal(f"lead {lead.external_id} is closed ({closed}); nothing was recorded")
        if not counted:
            return ActivityResult(lead.id, message=_nothing_changed(activity.id))
        self.notifier.deliver_soon()
        recorded: dict[str, Any] = {"type": "attempt", "kind": activity.kind}
        recorded |= {"at": at.isoformat(), "attempts": count, "first_touch": count == 1}
        return ActivityResult(lead.id, recorded)

    # --- the revenue plan ---------------------------------------------------------------------

    async def plan(self, goal: Goal, now: datetime, weeks: int = PLAN_WEEKS) -> RevenuePlan:
        return await revenue_plan(PlanStore(self.store.db), self.policy, goal, now, weeks)

    # --- look-ups -----------------------------------------------------------------------------

    async def find(self, query: str) -> tuple[LeadView, list[EventView], Policy]:
        query = query.strip()
        if not query:
            raise Refusal("Usage: /lead <email or external id>, e.g. /lead jane@acme.com")
        lead = await self.store.find(query)
        if lead is None:
            raise Refusal(f"No lead with the email or external id {query!r}.")
        return lead, await self.store.events(lead.id), await self.policy_for(lead)

    # --- a manager's answer to an escalation ----------------------------------------------------

    async def reassign(self, lead_id: int, actor: str, rep: str, now: datetime) -> Outcome:
        """Hand an open lead to `rep` of its segment's pool: the owner if it is claimed, else
        the suggested owner. The thread hears it, `rep` gets a DM, the post is re-rendered."""
        lead = await self.lead(lead_id)
        policy = await self.policy_for(lead)
        _check_manager(lead, actor, policy, Action.REASSIGN, "reassign")
        segment = policy.segment(lead.segment)
        pool = list(segment.reps) if segment else []
        if rep not in pool:
            reps = ", ".join(f"<@{user}>" for user in pool) or "nobody"
            raise Refusal(
                f"<@{rep}> is not in the {lead.segment} pool ({reps}); nothing was changed."
            )
        current = lead.owner or lead.suggested_owner
        if rep == current:
            role = "owns" if lead.owner else "is the suggested owner of"
            message = f"<@{rep}> {role} this lead already; nothing was changed."
            return Outcome(True, message, lead, repeated=True)
        zone = self.zones.get(rep) if lead.owner else lead.owner_zone
        handed = replace(
            lead, owner=rep if lead.owner else None, suggested_owner=rep, owner_zone=zone
        )
        why = f"a manager's call (<@{actor}>)"
        note = alert_views.reassign_note(lead, current, rep, why, policy, now)
        dm = alert_views.reassigned_dm(handed, actor, policy, now)
        reassigned = await self.store.reassign(
            lead, rep, actor, now, note=note, dm=dm, rep_zone=zone
        )
        if not reassigned:
            latest = await self.lead(lead_id)
            if (latest.owner or latest.suggested_owner) == rep:
                return Outcome(True, f"<@{rep}> has this lead already.", latest, repeated=True)
            _check_manager(latest, actor, policy, Action.REASSIGN, "reassign")
            raise Refusal("This lead changed a moment ago; nothing was changed. Try again?")
        self.notifier.deliver_soon()
        return Outcome(True, alert_views.reassigned_alert(handed, rep, actor), handed)

    async def snooze(self, lead_id: int, actor: str, now: datetime, hours: int = 1) -> Outcome:
        """Hold an open lead's reminders and escalations for `hours` of working time; the
        sweep looks again when the snooze ends. The lead's thread hears it."""
        lead = await self.lead(lead_id)
        policy = await self.policy_for(lead)
        _check_manager(lead, actor, policy, Action.SNOOZE, "snooze")
        until = policy.calendar_for(lead.owner_zone).add(now, 60 * hours)
        note = alert_views.snooze_note(actor, until, policy)
        if not await self.store.snooze(lead, actor, until, now, note=note):
            latest = await self.lead(lead_id)
            _check_manager(latest, actor, policy, Action.SNOOZE, "snooze")
            if latest.snoozed_until is not None and latest.snoozed_until >= until:
                message = "This lead is snoozed that long already; nothing was changed."
                return Outcome(True, message, latest, repeated=True)
            raise Refusal("This lead changed a moment ago; nothing was changed. Try again?")
        self.notifier.deliver_soon()
        snoozed = replace(lead, snoozed_until=until)
        return Outcome(True, alert_views.snoozed_alert(snoozed, actor, until, policy), snoozed)


def _nothing_changed(activity_id: str | None) -> str:
    if activity_id is not None:
        return f"activity {activity_id!r} was recorded already; nothing changed"
    return "the lead already had this; nothing changed"


def _check_manager(lead: LeadView, actor: str, policy: Policy, action: Action, verb: str) -> None:
    """Raise Refusal unless `actor` may take a manager's `action` on the lead, open now."""
    if not allowed(action, actor, policy, lead):
        raise Refusal(refusal(action, actor, policy, lead))
    if not lead.stage.is_open:
        raise Refusal(
            f"This lead was already closed as {lead.disposition_code or lead.stage.value}; "
            f"there is nothing to {verb} and nothing was changed."
        )
