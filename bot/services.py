"""Use cases: intake, claim, log attempt, dispose, look up. Each takes `now` and commits once."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Protocol

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
from bot.domain.policy import Disposition, Policy
from bot.domain.routing import choose_segment, choose_tier, mql_problems, score_lead
from bot.policies import PolicyBook
from storage.repository import EventView, NewLead, Store


class Notifier(Protocol):
    """Slack side effects the use cases ask for; they happen after the commit, off the request."""

    def lead_created(self, lead_id: int) -> None: ...
    def lead_changed(self, lead_id: int) -> None: ...
    def lead_dispositioned(self, lead_id: int) -> None: ...


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


@dataclass(frozen=True)
class DisposeOutcome(Outcome):
    errors: dict[str, str] = field(default_factory=dict)  # modal input errors by block id


@dataclass(frozen=True)
class DisposeStart:
    """A disposition button was pressed: dispose at once, or ask for a reason first."""

    lead: LeadView
    disposition: Disposition
    needs_modal: bool


def _missing_lead(lead_id: int | str) -> Refusal:
    return Refusal(f"Lead {lead_id} no longer exists in Handoff; nothing was changed.")


class Services:
    """The use cases over one store, the SLA versions and a notifier for Slack effects."""

    def __init__(self, store: Store, policies: PolicyBook, notifier: Notifier) -> None:
        self.store = store
        self.policies = policies
        self.notifier = notifier

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
            self.notifier.lead_created(lead.id)
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
            "segment": segment.name if segment else "unrouted",
            "channel": segment.channel if segment else policy.channels.marketing_feedback,
            "tier": tier.name,
            "sla_version": policy.version,
            "received_at": lead_in.received_at or now,
            "first_touch_due_at": policy.calendar.add(now, tier.first_touch) if is_mql else None,
            "attempts": 0,
        }
        received = {"source": source, "score": score.value, "segment": values["segment"]}
        events: list[tuple[str, str, dict[str, Any]]] = [("received", source, received)]
        if is_mql:
            events.append(("mql", "handoff", {"tier": tier.name, "reasons": score.reasons}))
        else:
            events.append(("nurture", "handoff", {"reason": values["stage_reason"]}))
        pool = list(segment.reps) if segment and is_mql else []
        return NewLead(values=values, pool=pool), events

    # --- claim and work -----------------------------------------------------------------------

    async def claim(self, lead_id: int, actor: str, now: datetime) -> Outcome:
        """Exactly one caller wins; the others learn who has the lead."""
        policy = self.policy
        due = policy.calendar.add(now, policy.disposition_deadline)
        pool = None if policy.is_manager(actor) else policy.segments_of(actor)
        # Fast path: one conditional update, for a lead under the current SLA this actor may
        # claim. Anything else (taken, refused, older SLA, unknown) is explained below.
        if pool != [] and await self.store.claim(
            lead_id, actor, due, now, sla_version=policy.version, segments=pool
        ):
            self.notifier.lead_changed(lead_id)
            return Outcome(True)
        lead = await self.lead(lead_id)
        if lead.owner == actor:
            return Outcome(False, "You already own this lead.", lead)
        lead_policy = await self.policy_for(lead)
        check_claim(lead, actor, lead_policy)
        due = lead_policy.calendar.add(now, lead_policy.disposition_deadline)
        if await self.store.claim(lead_id, actor, due, now):
            self.notifier.lead_changed(lead_id)
            return Outcome(True)
        current = await self.lead(lead_id)
        if current.owner == actor:
            return Outcome(False, "You already own this lead.", current)
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
        self.notifier.lead_changed(lead_id)
        return Outcome(True, "", await self.lead(lead_id))

    async def start_disposition(self, lead_id: int, actor: str, code: str) -> DisposeStart:
        """Check a disposition press; say whether a reason modal must come first."""
        lead = await self.lead(lead_id)
        policy = await self.policy_for(lead)
        disposition, _ = check_disposition(policy, code, None, None)
        check_work(lead, actor, policy, f"mark it {disposition.label}")
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
            return DisposeOutcome(True, "Already recorded.", lead)
        check_work(lead, actor, policy, "disposition it")
        disposition, errors = check_disposition(policy, code, reason, note)
        if errors:
            return DisposeOutcome(False, "", lead, errors)
        self._check_attempts(lead, policy, disposition)
        stage = STAGE_BY_OUTCOME[disposition.outcome]
        note = (note or "").strip() or None
        done = await self.store.dispose(
            lead_id, actor, code=code, stage=stage, reason=reason, note=note, now=now
        )
        current = await self.lead(lead_id)
        if not done:
            if current.disposition_code == code:
                return DisposeOutcome(True, "Already recorded.", current)
            raise Refusal(
                f"This lead was closed a moment ago as {current.disposition_code}; "
                "nothing was changed."
            )
        self.notifier.lead_changed(lead_id)
        if disposition.outcome in FEEDBACK_OUTCOMES:
            self.notifier.lead_dispositioned(lead_id)
        return DisposeOutcome(True, "", current)

    # --- look-ups -----------------------------------------------------------------------------

    async def find(self, query: str) -> tuple[LeadView, list[EventView], Policy]:
        query = query.strip()
        if not query:
            raise Refusal("Usage: /lead <email or external id>, e.g. /lead jane@acme.com")
        lead = await self.store.find(query)
        if lead is None:
            raise Refusal(f"No lead with the email or external id {query!r}.")
        return lead, await self.store.events(lead.id), await self.policy_for(lead)
