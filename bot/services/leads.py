"""The lead use cases: intake, claim, log an attempt, dispose, CRM activity, reassign, snooze,
look up. Each takes `now`, asks the domain what happens, and writes the change with its events
and every Slack effect it decided (`bot/domain/effects.py`) in one transaction. A "no" is a
`Refusal` (`bot/domain/refusal.py`), raised before anything changed."""

from __future__ import annotations

import hashlib
import logging
import re
from collections.abc import Callable
from dataclasses import dataclass, replace
from datetime import datetime, timedelta
from functools import partial
from typing import Any, Protocol
from zoneinfo import ZoneInfo

from bot.domain import cadence, escalation
from bot.domain.access import VIEWERS, Action, allowed, may_look_up, refusal
from bot.domain.activity import AttemptIn, InfoIn, activity_time, parse_activity
from bot.domain.claim import held_from, opens_at
from bot.domain.comeback import Again, Rescored, arrives_again, as_sent, new_cycle
from bot.domain.effects import (
    Announce,
    Effect,
    Refresh,
    RefreshHomes,
    Render,
    RetirePost,
    Send,
    Settle,
    thread_note,
)
from bot.domain.escalation import claim_deadline, claim_deadlines
from bot.domain.info import (
    MORE_INFO,
    asked_at_of,
    check_answer_text,
    check_answerer,
    check_ask,
    check_question,
    is_current,
    resumed,
    token,
)
from bot.domain.intake import FieldError, LeadIn, arrival_errors, parse_lead
from bot.domain.lead import (
    FEEDBACK_OUTCOMES,
    STAGE_BY_OUTCOME,
    EventView,
    LeadView,
    Stage,
    check_attempts,
    check_claim,
    check_disposition,
    check_manager,
    check_pool,
    check_rating,
    check_work,
    closed_as,
    comes_back_at,
    evolve,
    parse_attempt,
    snoozed_until,
)
from bot.domain.policy import Disposition, Policy, Segment
from bot.domain.refusal import Reason, Refusal
from bot.domain.routing import (
    BY_CRM,
    NAMED_ACCOUNT,
    AccountLead,
    OwnerChoice,
    choose_owner,
    choose_segment,
    fallback,
    fallback_candidates,
    lead_account,
    route,
    routed_people,
)
from bot.services.policies import PolicyBook
from bot.services.routing import Availability, NobodyAway, periods
from bot.slack import alert_views, info_views, lead_views
from bot.slack.home import overdue_window
from bot.slack.text import is_user_id, person, plain, readable
from storage.crm_inbox import Notification
from storage.repository import AccountAsk, Decided, Follow, NewLead, OwnerCheck, Store
from storage.rotation import RotationAsk

log = logging.getLogger("handoff.leads")


class Notifier(Protocol):
    """The outbox's delivery worker. Every state change writes its Slack side effects to the
    outbox in its own transaction; after the commit the use case only says "deliver soon"."""

    def deliver_soon(self) -> None: ...


@dataclass(frozen=True)
class Stored:
    """An intake request took: the lead, and whether this request created it, or posted it
    again as a new cycle (re-qualified); `message` says what else happened, if anything."""

    lead: LeadView
    created: bool
    requalified: bool = False
    message: str | None = None


@dataclass(frozen=True)
class Invalid:
    """A request whose fields are wrong; nothing was stored."""

    errors: list[FieldError]


@dataclass(frozen=True)
class Done:
    """A change was made (or had been made already), in words for the person who acted."""

    message: str = ""  # Slack text, shown as is; empty: nothing to say beyond the message
    lead: LeadView | None = None
    repeated: bool = False  # it was done already (a double click or Slack's retry)
    first_touch_minutes: int | None = None  # this was the first touch: working minutes since post


@dataclass(frozen=True)
class Recorded:
    """A CRM activity changed the lead: what was recorded."""

    lead_id: int
    recorded: dict[str, Any]
    first_touch_minutes: int | None = None  # the first touch: working minutes since the post


@dataclass(frozen=True)
class AlreadyRecorded:
    """A CRM activity the lead had already: nothing changed, `message` says why."""

    lead_id: int
    message: str


@dataclass(frozen=True)
class DisposeStart:
    """A disposition button was pressed: dispose at once, or ask for a reason first."""

    lead: LeadView
    disposition: Disposition
    needs_modal: bool

    @property
    def asks(self) -> bool:
        """The code asks marketing for more info: its modal takes the question."""
        return self.disposition.outcome == MORE_INFO


@dataclass(frozen=True)
class Handing:
    """A lead handed to another rep, before it is written: the lead as handed, the effects
    that tell it, and the managers' alerts' words once settled."""

    lead: LeadView
    effects: list[Effect]
    settled: str


def lead_message_changed(lead_id: int, *users: str | None) -> list[Effect]:
    """A change a lead's message shows: the message, and the App Homes of its owner and
    suggested rep and of `users`."""
    people = tuple(user for user in users if user)
    return [Refresh(lead_id), RefreshHomes(users=people, leads=(lead_id,))]


def follow_up(lead: LeadView, policy: Policy) -> Follow:
    """The cadence rule of the lead's SLA version on its owner's clock, for storage to apply to
    the lead's attempts in the transaction that records one."""
    calendar = policy.calendar_for(lead.owner_zone)
    return partial(cadence.follow, policy.follow_up, calendar, lead.first_touch_due_at)


def owner_choice(
    lead_in: LeadIn,
    segment: Segment | None,
    policy: Policy,
    account: AccountLead | None,
    away: frozenset[str] = frozenset(),
) -> OwnerChoice:
    """The routing rules' choice of owner for an MQL, passing over owners `away`; if routing
    fails for any reason, the fallback owner, and why: a lead is never dropped."""
    try:
        return choose_owner(lead_in, segment, policy, account, away)
    except Exception as error:
        log.exception("routing lead %s failed", lead_in.external_id)
        return fallback(segment, policy, f"routing failed ({type(error).__name__})", away)


ACTIVITY_ERASED = (
    "this person was erased at their request: nothing was recorded (stop sending their activity)"
)
ERASED_AGAIN = (
    "this person was erased at their request: nothing was stored (stop sending them, or send "
    "them under a new id if they come back)"
)


def retired_post(
    ended: LeadView, policy: Policy, now: datetime, comeback: LeadView
) -> list[Effect]:
    """The post of the cycle `ended` (the lead as it stands before it came back as
    `comeback`, its next cycle, at `now`; `policy`: the SLA it was posted under) replaced in
    place: that cycle as it ended, its controls gone and a line saying it came back. Nothing
    if that cycle has no post in Slack."""
    if ended.message_ts is None or ended.message_channel is None:
        return []
    message = lead_views.ended_cycle_post(ended, policy, now, comeback.channel)
    key = f"retire:{ended.id}:{comeback.cycle}"
    channel, ts = ended.message_channel, ended.message_ts
    return [RetirePost(ended.id, channel, ts, message.text, tuple(message.blocks), key)]


def answered_alerts(lead: LeadView, done: str, words: Callable[[], str], key: str) -> list[Effect]:
    """The managers' open alerts about `lead` (as it was) that `done` answers (an attempt, or a
    disposition's outcome: `escalation.clocks_met`), settled with `words`; none when it meets
    no clock. Keyed `key`: each alert once."""
    clocks = escalation.clocks_met(lead, done)
    if clocks is not None and not clocks:
        return []
    return [Settle(lead.id, lead.cycle, words, key, clocks=clocks)]


def _steps_due(lead: LeadView, policy: Policy, now: datetime) -> bool:
    """Whether any escalation step of the lead's running clocks came due by `now`: only then
    can the sweep have alerted anyone about it (it never fires a step early)."""
    for window in escalation.windows(lead, policy):
        steps = policy.escalation.ladder(window.ladder)
        first = min(steps, key=lambda step: step.at, default=None)
        calendar = escalation.calendar_of(window.ladder, lead, policy)
        if first is not None and escalation.step_times(window, [first], calendar)[0] <= now:
            return True
    return False


def _channel(segment: Segment | None, policy: Policy, mql: bool) -> str:
    """Where the lead is posted: its segment's channel; an MQL no segment matches goes to the
    escalations channel (the managers', where its fallback owner sees it), else the first
    segment's; a lead in nurture is told to marketing."""
    if segment is not None:
        return segment.channel
    if not mql:
        return policy.channels.marketing_feedback
    return policy.channels.escalations or policy.segments[0].channel


def _missing_lead(lead_id: int | str) -> Refusal:
    return Refusal(
        f"Lead {lead_id} no longer exists in Handoff; nothing was changed.", Reason.NOT_FOUND
    )


def _repeats(lead: LeadView, code: str, reason: str | None, note: str | None) -> bool:
    """Whether a disposition is the one the closed lead has already: the same code, reason
    and note (a second click, or the same modal sent twice), not a different answer."""
    same_note = ((note or "").strip() or None) == lead.disposition_note
    same = lead.disposition_code == code and reason == lead.disposition_reason and same_note
    return same and not lead.stage.is_open


class Services:
    """The use cases over one store, the SLA versions and a notifier for Slack effects."""

    def __init__(
        self,
        store: Store,
        policies: PolicyBook,
        notifier: Notifier,
        names: dict[str, str] | None = None,
    ) -> None:
        self.store = store
        self.policies = policies
        self.notifier = notifier
        # Members' Slack time zones (kept fresh by `bot.services.people`), for `clock: owner`.
        self.zones: dict[str, str] = {}
        # Their display names, for where a mention would ping (kept fresh the same way).
        self.names: dict[str, str] = names if names is not None else {}
        # Slack guests and deactivated members (kept fresh the same way): no role at all.
        self.barred: set[str] = set()
        # Who is away, for routing (time away is wired in here).
        self.availability: Availability = NobodyAway()

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

    async def find_lead(self, lead_id: int) -> LeadView | None:
        """The lead, or None if it does not exist (for the access check before a listener)."""
        return await self.store.get(lead_id)

    # --- intake -------------------------------------------------------------------------------

    async def intake(self, payload: Any, now: datetime, source: str = "intake") -> Stored | Invalid:
        """Validate, score, route and store a lead; idempotent on its external id."""
        lead_in, errors = parse_lead(payload)
        if lead_in is None:
            return Invalid(errors)
        if late := arrival_errors(lead_in, now):
            return Invalid(late)
        # Stored time away is read in the intake's own transaction, with the rotation's turn
        # (once a segment for a batch); any other source of availability is asked here.
        stored_away = self.availability.stored
        away = frozenset() if stored_away else await self._away(lead_in, now)
        away |= self.barred  # guests and deactivated members take no turn either
        new = self.route(
            lead_in, payload, now, source, away=away, look_up_account=True, read_away=stored_away
        )
        taken = await self.store.intake(new, now)  # its external id is checked there, once
        if taken.known and taken.lead.erased_at is not None:  # the person asked to be forgotten
            return Stored(taken.lead, False, message=ERASED_AGAIN)
        if taken.known:
            return await self._again(taken.lead, lead_in, now, source)
        if taken.created:
            self.notifier.deliver_soon()
        return Stored(taken.lead, taken.created)

    async def _again(self, lead: LeadView, sent: LeadIn, now: datetime, source: str) -> Stored:
        """A known lead sent again: a duplicate changes nothing; new engagement is stored, and
        re-qualifies a nurtured or recycled lead as a new cycle (see `bot.domain.comeback`).
        Of concurrent requests exactly one changes the lead; the others read it again."""
        for _ in range(5):
            again = arrives_again(lead, sent, self.policy, now)
            if again.kind == "duplicate":
                return Stored(lead, False)
            if await self._store_again(lead, again, now, source):
                current = await self.lead(lead.id)
                self.notifier.deliver_soon()
                if again.kind == "requalified":
                    return Stored(current, False, requalified=True)
                if again.kind == "still_nurture":
                    return Stored(current, False, message=f"still not an MQL: {again.reason}")
                return Stored(current, False, message=_STORED_ONLY)
            latest = await self.store.by_external_id(lead.external_id)
            if latest is None:
                raise _missing_lead(lead.external_id)
            lead = latest
        raise Refusal("this lead changed while it was stored; send it again", Reason.CHANGED)

    async def _store_again(self, lead: LeadView, again: Again, now: datetime, source: str) -> bool:
        fresh = len(again.engagement or lead.engagement) - len(lead.engagement)
        seen: dict[str, Any] = {"cycle": lead.cycle, "stage": lead.stage.value}
        seen["new_engagement"] = fresh
        if again.kind == "engagement":
            values: dict[str, Any] = {"engagement": again.engagement}
            return await self.store.again(lead, values, [("engagement", source, seen)], now)
        rescored = again.rescored
        assert rescored is not None
        score = rescored.routing.score
        if again.kind == "still_nurture":
            values = {"engagement": rescored.engagement, "score": score.value}
            values["score_reasons"] = score.reasons
            values["handoff_score"] = score.ours
            if lead.stage is Stage.NURTURE:
                values["stage_reason"] = rescored.reason
            seen |= {"score": score.value, "reason": rescored.reason}
            return await self.store.again(lead, values, [("engagement", source, seen)], now)
        policy = self.policy
        choice, rotation = await self._requalified_owner(lead, rescored, now)
        rescored = replace(rescored, routing=replace(rescored.routing, segment=choice.segment))
        cycle = new_cycle(lead, policy, now, choice.rep, rescored)
        previous = cycle.previous | {"outcome": lead.disposition_code or lead.stage.value}
        previous |= {"new_engagement": fresh, "source": source, "rule": choice.reason.get("rule")}
        values = cycle.values | {"next_action_at": escalation.first_check(cycle.lead, policy)}
        values["route_reason"] = None if rotation else choice.reason
        key = f"{Announce.POST}:{lead.id}:{cycle.lead.cycle}"
        effects: list[Effect] = [
            Render(Announce.POST, lead.id, cycle.lead.channel, key, cycle=cycle.lead.cycle),
            *retired_post(lead, await self.policy_for(lead), now, cycle.lead),
            RefreshHomes(leads=(lead.id,)),
        ]
        return await self.store.again(
            lead,
            values,
            [("requalified", source, previous)],
            now,
            rotation=rotation,
            effects=effects,
        )

    async def _requalified_owner(
        self, lead: LeadView, rescored: Rescored, now: datetime
    ) -> tuple[OwnerChoice, RotationAsk | None]:
        """Who a re-qualifying lead goes to: the routing rules in order, as for a new lead
        (named account, the same account's owner, partner, the pool's rotation; the fallback
        owner if none applies or routing fails), and the rotation's turn when the pool picks."""
        lead_in = as_sent(lead, rescored.engagement, None)
        account = await self._account(lead_in, now, exclude=lead.id)
        away = await self.availability.away(sorted(routed_people(self.policy)), now)
        away |= self.barred  # guests and deactivated members take no turn either
        choice = owner_choice(lead_in, rescored.routing.segment, self.policy, account, away)
        return choice, self.rotation_ask(choice, now, away)

    async def _account(
        self, lead_in: LeadIn, now: datetime, exclude: int | None = None
    ) -> AccountLead | None:
        """The owned lead of the same account, when the SLA matches leads to accounts (not
        `exclude`: a lead coming back is not its own account's other lead)."""
        policy = self.policy
        domain = lead_account(lead_in, policy)
        if not policy.account_matching or domain is None:
            return None
        recent = timedelta(minutes=policy.account_recent.total_minutes(24 * 60))
        return await self.store.account_lead(domain, now - recent, exclude)

    async def _away(self, lead_in: LeadIn, now: datetime) -> frozenset[str]:
        segment = choose_segment(lead_in, self.policy)
        if segment is None:
            return frozenset()
        return await self.availability.away(segment.reps, now)

    def rotation_ask(
        self,
        choice: OwnerChoice,
        now: datetime,
        away: frozenset[str] = frozenset(),
        read_away: bool = False,
    ) -> RotationAsk | None:
        """The rotation turn an owner choice asks for (None: the rules chose the rep); with
        `read_away`, storage reads who of the pool is away with the turn (stored time away)."""
        if choice.pool is None or choice.segment is None:
            return None
        day, week = periods(self.policy, now)
        return RotationAsk(
            segment=choice.segment.name,
            rules=choice.pool,
            day=day,
            week=week,
            away=away,
            reason=choice.reason,
            fallback=self.policy.fallback,
            fallbacks=fallback_candidates(self.policy),
            away_at=now if read_away else None,
        )

    def route(
        self,
        lead_in: LeadIn,
        payload: dict[str, Any],
        now: datetime,
        source: str,
        *,
        account: AccountLead | None = None,
        away: frozenset[str] = frozenset(),
        look_up_account: bool = False,
        read_away: bool = False,
    ) -> NewLead:
        """The lead routed under the current SLA, with its events and effects (no I/O): its
        owner by the routing rules, or a turn of its pool's rotation to take when stored.
        `account`: the same account's owned lead, if known; with `look_up_account`, storage
        looks for it in the intake's transaction and routes the lead again here if found;
        with `read_away`, storage reads who of the pool is away (stored time away) with the
        rotation's turn."""
        policy = self.policy
        routing = route(lead_in, policy, lead_in.received_at or now)  # as of its arrival
        segment, tier, mql = routing.segment, routing.tier, routing.is_mql
        choice: OwnerChoice | None = None
        if mql:
            choice = owner_choice(lead_in, segment, policy, account, away)
            segment = choice.segment
        segment_name = segment.name if segment else "unrouted"
        lead = LeadView(
            id=0,
            external_id=lead_in.external_id,
            email=lead_in.email,
            name=lead_in.name,
            title=lead_in.title,
            phone=lead_in.phone,
            company=lead_in.company.model_dump(exclude_none=True),
            source=lead_in.source,
            campaign=lead_in.campaign,
            crm_id=lead_in.crm_id,
            engagement=[item.model_dump(mode="json") for item in lead_in.engagement],
            score=routing.score.value,
            score_reasons=routing.score.reasons,
            handoff_score=routing.score.ours,
            stage=Stage.MQL if mql else Stage.NURTURE,
            stage_reason=None if mql else "; ".join(routing.problems),
            segment=segment_name,
            channel=_channel(segment, policy, mql),
            tier=tier.name,
            sla_version=policy.version,
            received_at=lead_in.received_at or now,
            first_touch_due_at=policy.calendar.add(now, tier.first_touch) if mql else None,
            cycle_started_at=now,
            suggested_owner=choice.rep if choice else None,
            route_reason=choice.reason if choice and choice.pool is None else None,
            account_domain=lead_account(lead_in, policy),
            claim_due_at=claim_deadline(policy, tier, now) if mql else None,
            claim_opens_at=opens_at(policy, segment_name, now) if mql else None,
        )
        if mql:
            lead = evolve(lead, next_action_at=escalation.first_check(lead, policy))
        else:  # scored again at its re-engagement date
            lead = evolve(lead, next_action_at=comes_back_at(lead, policy, Stage.NURTURE, now))
        received = {"source": source, "score": lead.score, "segment": lead.segment}
        events: list[tuple[str, str, dict[str, Any]]] = [("received", source, received)]
        if mql:
            events.append(("mql", "handoff", {"tier": tier.name, "reasons": lead.score_reasons}))
        else:
            events.append(("nurture", "handoff", {"reason": lead.stage_reason}))
        # Posted to its channel when an MQL, told to marketing otherwise; the rep it is
        # suggested to sees it in App Home.
        what = Announce.POST if mql else Announce.NURTURE
        channel = lead.channel if mql else policy.channels.marketing_feedback

        def effects(stored: LeadView) -> list[Effect]:
            key = f"{what}:{stored.id}"
            return [Render(what, stored.id, channel, key), RefreshHomes(leads=(stored.id,))]

        ask = None
        domain = lead.account_domain
        matched_first = choice is not None and choice.reason.get("rule") == NAMED_ACCOUNT
        asks = look_up_account and account is None and mql and policy.account_matching
        if asks and domain and not matched_first:
            recent = timedelta(minutes=policy.account_recent.total_minutes(24 * 60))
            again = partial(
                self.route, lead_in, payload, now, source, away=away, read_away=read_away
            )
            ask = AccountAsk(domain, now - recent, lambda found: again(account=found))
        check = None
        if read_away and choice is not None and choice.pool is None and choice.rep is not None:
            # The rule chose a rep (a named account's owner, say): storage reads whether they
            # are away in the intake's transaction, and routes the lead again past them if so.
            check = OwnerCheck(
                choice.rep,
                partial(
                    self.route,
                    lead_in,
                    payload,
                    now,
                    source,
                    account=account,
                    look_up_account=look_up_account,
                    read_away=read_away,
                ),
            )
        return NewLead(
            lead=lead,
            payload=payload,
            mql=mql,
            complete=routing.complete,
            icp=routing.icp,
            rotation=self.rotation_ask(choice, now, away, read_away) if choice else None,
            account=ask,
            owner_check=check,
            events=events,
            effects=effects,
        )

    # --- claim and work -----------------------------------------------------------------------

    async def claim(self, lead_id: int, actor: str, now: datetime) -> Done:
        """Exactly one caller wins; the others are refused, told who has the lead, or, in a
        `claim: assigned` window, whose it is and when it opens to the pool."""
        policy = self.policy
        zone = self.zones.get(actor)  # the claimer's Slack time zone, for `clock: owner`
        deadlines = claim_deadlines(policy, now, zone)
        manager = policy.is_manager(actor)
        pool = None if manager else policy.segments_of(actor)
        # Fast path: one conditional update, for a lead under the current SLA this actor may
        # claim. Anything else (taken, refused, older SLA, unknown) is explained below.
        if pool != [] and await self.store.claim(
            lead_id,
            actor,
            deadlines.feedback,
            now,
            sla_version=policy.version,
            segments=pool,
            check_at=deadlines.check,
            owner_zone=zone,
            final_due_at=deadlines.final,
            manager=manager,
            effects=self._claimed(actor, policy, now),
        ):
            self.notifier.deliver_soon()
            return Done()
        lead = await self.lead(lead_id)
        if lead.owner == actor:
            return Done(lead=lead, repeated=True)  # nothing to say
        lead_policy = await self.policy_for(lead)
        check_claim(lead, actor, lead_policy)
        _check_window(lead, actor, lead_policy, now)
        deadlines = claim_deadlines(lead_policy, now, zone)
        if await self.store.claim(
            lead_id,
            actor,
            deadlines.feedback,
            now,
            check_at=deadlines.check,
            owner_zone=zone,
            final_due_at=deadlines.final,
            manager=lead_policy.is_manager(actor),
            effects=self._claimed(actor, lead_policy, now),
        ):
            self.notifier.deliver_soon()
            return Done()
        current = await self.lead(lead_id)
        if current.owner == actor:
            return Done(lead=current, repeated=True)
        if current.owner is None:  # still unclaimed: reassigned to someone else meanwhile
            check_claim(current, actor, lead_policy)
            _check_window(current, actor, lead_policy, now)
            raise Refusal(
                "This lead changed a moment ago; nothing was changed. Try again?", Reason.CHANGED
            )
        raise Refusal(
            f"Too late: this lead was already claimed by <@{current.owner}>.", Reason.TAKEN
        )

    def _claimed(self, actor: str, policy: Policy, now: datetime) -> Decided:
        """What a won claim causes, decided from the lead as claimed (no read before the
        claim): its message and the App Homes of the claimer and the suggested rep, the
        managers' open alerts about it settled, and their App Homes if it was overdue."""

        def effects(lead: LeadView) -> list[Effect]:
            # Its words are written only for a lead the managers were alerted to (most are not).
            settled = partial(alert_views.claimed_alert, lead, actor, policy, now)
            before = evolve(lead, stage=Stage.MQL, owner=None)  # as it was: unclaimed
            again = lead.claimed_at is not None and lead.claimed_at < now  # its first claim stays
            settle = Settle(lead.id, lead.cycle, settled, f"claim:{lead.id}:{now.isoformat()}")
            return [
                *lead_message_changed(lead.id),
                # Looked for only when a step could have fired, or the lead was claimed before
                # (back with the pool, its managers told): a claim in time costs no query.
                *([settle] if again or _steps_due(before, policy, now) else []),
                *self._overdue_homes(before, policy, now),
            ]

        return effects

    def _overdue_homes(self, lead: LeadView, policy: Policy, now: datetime) -> list[Effect]:
        """The managers' App Homes when `lead` (as it was before a change) is on their overdue
        list, its card there with Reassign and Snooze: the change shows there at once. Only
        then: most changes leave the managers' homes as they were."""
        dues = (lead.claim_due_at, lead.first_touch_due_at, lead.disposition_due_at)
        if all(due is None or due > now for due in (*dues, lead.final_due_at)):
            return []  # every clock's deadline is one of these: on time, at no cost
        if overdue_window(lead, policy, now) is None:
            return []
        return [RefreshHomes(users=tuple(self.policy.managers))]

    async def log_attempt(self, lead_id: int, actor: str, kind: str, now: datetime) -> Done:
        lead = await self.lead(lead_id)
        attempt = parse_attempt(kind)
        policy = await self.policy_for(lead)
        check_work(lead, actor, policy, "log an attempt")
        effects = lead_message_changed(lead_id, actor)
        if lead.first_touch_at is None:  # the first touch: no longer overdue for one
            effects += self._overdue_homes(lead, policy, now)
            words = partial(alert_views.touched_alert, lead, actor, attempt.words, policy, now)
            key = f"attempt:{lead_id}:{now.isoformat()}:settle"
            effects += answered_alerts(lead, escalation.ATTEMPT, words, key)
        count = await self.store.log_attempt(
            lead_id, actor, attempt.value, now, effects=effects, follow=follow_up(lead, policy)
        )
        if count is None:
            raise Refusal(
                "This lead was closed a moment ago; the attempt was not logged.", Reason.CLOSED
            )
        self.notifier.deliver_soon()
        if count == 1 and lead.first_touch_at is None and lead.posted_at is not None:
            return Done(first_touch_minutes=policy.calendar.elapsed(lead.posted_at, now))
        return Done()

    async def start_disposition(self, lead_id: int, actor: str, code: str) -> DisposeStart:
        """Check a disposition press; say whether a reason modal must come first."""
        lead = await self.lead(lead_id)
        policy = await self.policy_for(lead)
        disposition, _ = check_disposition(policy, code, None, None)
        check_work(lead, actor, policy, f"mark it {disposition.label}", Action.DISPOSE)
        check_attempts(lead, policy, disposition)
        asks = disposition.outcome == MORE_INFO
        return DisposeStart(lead, disposition, needs_modal=disposition.reason_required or asks)

    async def dispose(
        self,
        lead_id: int,
        actor: str,
        code: str,
        now: datetime,
        reason: str | None = None,
        note: str | None = None,
    ) -> Done:
        """Close the lead with a disposition code; a second identical submission is a no-op.
        Input errors are a Refusal whose `fields` name the modal's inputs."""
        lead = await self.lead(lead_id)
        policy = await self.policy_for(lead)
        if _repeats(lead, code, reason, note) and allowed(Action.DISPOSE, actor, policy, lead):
            return Done(lead=lead, repeated=True)  # a double click: it stands as it was
        check_work(lead, actor, policy, "disposition it", Action.DISPOSE)
        disposition, errors = check_disposition(policy, code, reason, note)
        if errors:
            raise Refusal(next(iter(errors.values())), fields=errors)
        check_attempts(lead, policy, disposition)
        if disposition.outcome == MORE_INFO:
            raise Refusal(f"{disposition.label} needs your question for marketing first.")
        note = (note or "").strip() or None
        if disposition.outcome == "progressing":
            return await self._progress(lead, policy, actor, disposition, note, now)
        stage = STAGE_BY_OUTCOME[disposition.outcome]
        settled = partial(alert_views.closed_alert, lead, actor, disposition, policy, now)
        effects = [
            *lead_message_changed(lead_id, actor),
            *answered_alerts(  # closed: every alert about it
                lead, disposition.outcome, settled, f"dispose:{lead_id}:{now.isoformat()}"
            ),
            *self._overdue_homes(lead, policy, now),
        ]
        if disposition.outcome in FEEDBACK_OUTCOMES:  # marketing hears it, once per cycle
            key = f"{Announce.FEEDBACK}:{lead_id}:{now.isoformat()}"
            feedback = policy.channels.marketing_feedback
            effects.append(Render(Announce.FEEDBACK, lead_id, feedback, key))
        back = comes_back_at(lead, policy, stage, now)
        done = await self.store.dispose(
            lead_id,
            actor,
            code=code,
            stage=stage,
            reason=reason,
            note=note,
            now=now,
            next_action_at=back,
            effects=effects,
        )
        current = await self.lead(lead_id)
        if not done:
            # Only the same answer is a repeat: a second reason or note lost the race, and its
            # submitter is told so (marketing heard the first one).
            if _repeats(current, code, reason, note):
                return Done(lead=current, repeated=True)
            raise Refusal(f"{closed_as(current, policy)}; nothing was changed.", Reason.CLOSED)
        self.notifier.deliver_soon()
        return Done(lead=current)

    async def _progress(
        self,
        lead: LeadView,
        policy: Policy,
        actor: str,
        disposition: Disposition,
        note: str | None,
        now: datetime,
    ) -> Done:
        """ "Contacted – progressing": the first feedback, recorded once. The lead stays open
        and owned, its feedback clock stops, the final disposition is still due at the end of
        the cadence. Its thread hears it; marketing's channel does not (it is no rejection: it
        reads feedback in the weekly report). The managers' alerts about missing feedback (and
        a missing first touch) are settled; one about the final outcome stays live."""
        if lead.feedback_at is not None:
            return Done(
                "Feedback on this lead was recorded already; it stays open: log your attempts, "
                "and pick its final disposition when you know.",
                lead,
                repeated=True,
            )
        text = alert_views.progress_note(lead, actor, disposition, policy)
        key = f"progress:{lead.id}:{lead.cycle}"
        words = partial(alert_views.feedback_alert, lead, actor, disposition, policy, now)
        effects = [
            *lead_message_changed(lead.id, actor),
            thread_note(lead, text, key),
            *self._overdue_homes(lead, policy, now),  # feedback given: no longer overdue
            # The managers' alert about missing feedback is answered (not one about the outcome).
            *answered_alerts(lead, disposition.outcome, words, f"{key}:settle"),
        ]
        done = await self.store.progress(
            lead.id, actor, code=disposition.code, note=note, now=now, effects=effects
        )
        current = await self.lead(lead.id)
        if not done:
            if current.feedback_at is not None and current.stage is Stage.SAL:
                return Done(lead=current, repeated=True)
            raise _closed_meanwhile(current)
        self.notifier.deliver_soon()
        return Done(lead=current)

    # --- request more info -------------------------------------------------------------------

    async def request_info(
        self, lead_id: int, actor: str, code: str, question: str | None, now: datetime
    ) -> Done:
        """Send the lead back to marketing with a question (a `more_info` disposition code):
        posted to the feedback channel with an Answer button, noted in the lead's thread; its
        clocks pause; the managers' alert about its missing feedback is settled. A second
        identical submission is a no-op."""
        lead = await self.lead(lead_id)
        policy = await self.policy_for(lead)
        disposition, _ = check_disposition(policy, code, None, None)
        if disposition.outcome != MORE_INFO:
            raise Refusal(f"{disposition.label} does not ask marketing a question.")
        text = check_question(question)
        if lead.waiting_for_info and lead.info_question == text:
            return Done(lead=lead, repeated=True)
        check_ask(lead, actor, policy)
        asked = replace(lead, info_question=text, info_asked_at=now, info_asked_by=actor)
        key = _question_key(lead.id, token(now))
        request = info_views.info_request(asked, policy, token(now), self.names)
        effects: list[Effect] = [
            Send(
                policy.channels.marketing_feedback,
                request.text,
                key,
                lead.id,
                tuple(request.blocks),
            ),
            thread_note(lead, info_views.asked_note(asked), f"{key}:note"),
            *lead_message_changed(lead.id, actor),
            # The rep reported back: the managers' alert about missing feedback is answered.
            *answered_alerts(
                lead,
                disposition.outcome,
                partial(alert_views.feedback_alert, lead, actor, disposition, policy, now),
                f"{key}:alerts",
            ),
        ]
        if not await self.store.ask_info(lead, actor, text, now, effects=effects):
            latest = await self.lead(lead_id)
            if latest.waiting_for_info and latest.info_question == text:
                return Done(lead=latest, repeated=True)
            check_ask(latest, actor, policy)
            raise Refusal(
                "This lead changed a moment ago; nothing was changed. Try again?", Reason.CHANGED
            )
        self.notifier.deliver_soon()
        return Done(lead=asked)

    async def start_answer(
        self, lead_id: int, question: str, actor: str, channel: str | None
    ) -> LeadView:
        """Check an Answer press (the question's token from its button): the lead, for the
        answer modal. Refusal if `actor` may not answer, or the question was answered."""
        lead = await self.lead(lead_id)
        check_answerer(actor, channel, await self.policy_for(lead))
        await self._still_asked(lead, question)
        return lead

    async def answer_info(
        self,
        lead_id: int,
        question: str,
        actor: str,
        answer: str | None,
        now: datetime,
        channel: str | None = None,
    ) -> Done:
        """Marketing's answer to the question `question` names: posted in the lead's thread to
        its owner, the lead open again with its clocks moved on; exactly once."""
        lead = await self.lead(lead_id)
        policy = await self.policy_for(lead)
        check_answerer(actor, channel, policy)
        text = check_answer_text(answer)
        await self._still_asked(lead, question)
        return await self._answer(lead, policy, actor, text, now, question)

    async def _answer(
        self, lead: LeadView, policy: Policy, actor: str, text: str, now: datetime, question: str
    ) -> Done:
        back = resumed(lead, policy, now)
        data: dict[str, Any] = {"question": lead.info_question, "answer": text}
        data["token"] = question
        data |= {"asked_by": lead.info_asked_by, "cycle": lead.cycle}
        note = info_views.answered_note(lead, text, actor)
        key = _question_key(lead.id, question)
        effects: list[Effect] = [
            thread_note(lead, note, f"{key}:answer"),
            *lead_message_changed(lead.id, lead.owner),
        ]
        asked = await self.store.sent_ts(key)  # the question's post in the marketing channel
        if asked is not None:  # its thread says it is answered, so nobody answers it again
            done = info_views.answered_there(lead, actor)
            where = policy.channels.marketing_feedback
            effects.append(Send(where, done, f"{key}:answered", lead.id, thread_ts=asked))
        # The question's post itself says it is answered, its Answer button gone (sent or not).
        settled = info_views.answered_post(lead, text, actor, now, policy)
        effects.append(Settle(lead.id, lead.cycle, settled, f"{key}:settle", of=key))
        if not await self.store.answer_info(lead, back, actor, data, now, effects=effects):
            await self._still_asked(await self.lead(lead.id), question)
            raise Refusal("This lead changed a moment ago; try again?", Reason.CHANGED)
        self.notifier.deliver_soon()
        return Done(lead=back)

    async def _still_asked(self, lead: LeadView, question: str) -> None:
        """Raise Refusal unless the lead waits on the question `question` names."""
        asked_at = asked_at_of(question)
        if asked_at is None:
            raise Refusal(
                "This button does not name a question Handoff asked; nothing was changed."
            )
        if is_current(lead, asked_at):
            return
        for event in reversed(await self.store.events(lead.id)):
            if event.type == "info_answered" and event.data.get("token") == question:
                who = person(event.actor, 200)
                raise Refusal(f"Already answered by {who}; nothing was changed.", Reason.CLOSED)
        raise Refusal(
            "This lead is not waiting for that answer any more; nothing was changed.", Reason.CLOSED
        )

    async def rate(self, lead_id: int, actor: str, ratings: dict[str, int], now: datetime) -> Done:
        """The owner's rating of a dispositioned lead's fit and timing (1–5 each, either or
        both), kept on the lead and as a "rated" event; the same rating again changes nothing."""
        lead = await self.lead(lead_id)
        policy = await self.policy_for(lead)
        check_rating(lead, actor, policy, ratings)
        changed = await self.store.rate(
            lead_id, actor, ratings, now, effects=lead_message_changed(lead_id, actor)
        )
        if changed:
            self.notifier.deliver_soon()
        return Done(lead=await self.lead(lead_id), repeated=not changed)

    # --- CRM activity -------------------------------------------------------------------------

    async def activity(
        self, external_id: str, payload: Any, now: datetime
    ) -> Recorded | AlreadyRecorded | Invalid:
        """Record what the CRM did on a lead: an attempt (counted like a button press, and the
        lead's message re-rendered) or a deal stage change; idempotent on the CRM's `id`.

        Raises Refusal for an unknown lead, or one that can't take it (an attempt on a lead
        nobody has claimed or one closed already; a won deal reported lost)."""
        activity, errors = parse_activity(payload)
        if activity is None:
            return Invalid(errors)
        lead = await self.store.by_external_id(external_id)
        if lead is None:  # an erased lead keeps its external id's digest
            lead = await self.store.by_erased_id(external_id=external_id)
        if lead is not None and lead.erased_at is not None:  # not a 404 a CRM retries for days
            return AlreadyRecorded(lead.id, ACTIVITY_ERASED)
        if lead is None:
            raise Refusal(
                f"no lead with the external id {external_id!r}: send it to POST /leads first",
                Reason.NOT_FOUND,
            )
        try:
            at = activity_time(activity.at, lead.received_at, now)
        except ValueError as error:
            return Invalid([FieldError(field="at", message=str(error))])
        if isinstance(activity, AttemptIn):
            return await self._crm_attempt(lead, activity, at, now)
        if isinstance(activity, InfoIn):
            return await self._crm_answer(lead, activity, now)
        currency = self.policy.currency or activity.currency
        if activity.currency and activity.currency != currency:
            message = f"must be {currency}, the plan's currency in sla.yaml (nothing is converted)"
            return Invalid([FieldError(field="currency", message=message)])
        deal = await self.store.record_stage(
            lead.id,
            activity.stage,
            at,
            amount=activity.amount,
            currency=currency,
            activity_id=activity.id,
            effects=lead_message_changed(lead.id),  # its message shows the deal
            now=now,
        )
        if deal is None:
            return AlreadyRecorded(lead.id, _nothing_changed(activity.id))
        self.notifier.deliver_soon()
        recorded: dict[str, Any] = {"type": "stage", "stage": activity.stage}
        recorded |= {"at": at.isoformat(), "amount": deal.amount, "currency": currency}
        return Recorded(lead.id, recorded)

    async def _crm_answer(
        self, lead: LeadView, activity: InfoIn, now: datetime
    ) -> Recorded | AlreadyRecorded:
        """Marketing's answer sent by the CRM: to the question the lead waits on."""
        if lead.info_asked_at is None:
            answered = [e for e in await self.store.events(lead.id) if e.type == "info_answered"]
            if answered:
                who = person(answered[-1].actor, 200)
                return AlreadyRecorded(lead.id, f"the question was already answered by {who}")
            raise Refusal(
                f"lead {lead.external_id} is not waiting for an answer: nobody asked marketing "
                "for more info; nothing was recorded",
                Reason.NOT_READY,
            )
        actor = activity.by or "crm"
        question = token(lead.info_asked_at)
        done = await self._answer(
            lead, await self.policy_for(lead), actor, activity.answer, now, question
        )
        recorded: dict[str, Any] = {"type": "info", "question": lead.info_question}
        recorded |= {"answer": activity.answer, "owner": done.lead.owner if done.lead else None}
        return Recorded(lead.id, recorded)

    async def _crm_attempt(
        self, lead: LeadView, activity: AttemptIn, at: datetime, now: datetime
    ) -> Recorded | AlreadyRecorded:
        if lead.stage is Stage.MQL:
            raise Refusal(
                f"lead {lead.external_id} is not claimed yet: an attempt counts once a rep has "
                "claimed the lead in Slack; nothing was recorded",
                Reason.NOT_READY,
            )
        actor = activity.actor or "crm"
        policy = await self.policy_for(lead)
        effects = lead_message_changed(lead.id, actor)
        if lead.first_touch_at is None:  # the managers' alert about a missing touch is answered
            kind = parse_attempt(activity.kind).words
            words = partial(alert_views.touched_alert, lead, actor, kind, policy, at)
            # The CRM's id (up to 200 characters) as a digest: the key fits the outbox's column.
            ref = hashlib.sha256(activity.id.encode()).hexdigest()[:24] if activity.id else None
            key = f"crm-attempt:{lead.id}:{ref or now.isoformat()}:settle"
            effects += answered_alerts(lead, escalation.ATTEMPT, words, key)
        count, counted = await self.store.record_attempt(
            lead.id,
            actor,
            activity.kind,
            at,
            now,
            activity_id=activity.id,
            effects=effects,
            follow=follow_up(lead, policy),
        )
        if count is None:
            closed = lead.disposition_code or lead.stage.value
            raise Refusal(
                f"lead {lead.external_id} is closed ({closed}); nothing was recorded",
                Reason.CLOSED,
            )
        if not counted:
            return AlreadyRecorded(lead.id, _nothing_changed(activity.id))
        self.notifier.deliver_soon()
        recorded: dict[str, Any] = {"type": "attempt", "kind": activity.kind}
        recorded |= {"at": at.isoformat(), "attempts": count, "first_touch": count == 1}
        first_touch = None
        if count == 1 and lead.first_touch_at is None and lead.posted_at is not None:
            first_touch = policy.calendar.elapsed(lead.posted_at, max(at, lead.posted_at))
        return Recorded(lead.id, recorded, first_touch)

    # --- look-ups -----------------------------------------------------------------------------

    async def find(
        self, query: str, actor: str, now: datetime
    ) -> tuple[LeadView, list[EventView], Policy]:
        """The lead `query` names (external id or email), its timeline and its SLA version,
        for `actor` if the lead is theirs to see (`Action.VIEW_LEAD`); the look-up is recorded
        (a `viewed` event: who and when). Someone who may see no lead is refused before any
        search, and a lead that exists but is not theirs to see reads as one that does not:
        a look-up never tells who is a lead. An email several leads have that `actor` may
        see (a person who came back) is answered with those leads, each by its external id
        to ask for (a Refusal: no lead is shown)."""
        query = query.strip()
        if not query:
            raise Refusal("Usage: /lead <email or external id>, e.g. /lead jane@acme.com")
        if (what := slack_reference(query)) is not None:
            raise _not_a_lead(what)
        if not may_look_up(actor, self.policy, self.barred):
            raise Refusal(refusal(Action.VIEW_LEAD, actor, self.policy), Reason.NOT_ALLOWED)
        found = await self.store.matching(query)
        named = [lead for lead in found if lead.external_id == query]  # an id names one lead
        visible = []
        for lead in named or found:
            policy = await self.policy_for(lead)
            if allowed(Action.VIEW_LEAD, actor, policy, lead, self.barred):
                visible.append((lead, policy))
        if not visible and (what := slack_reference(query, typed=True)) is not None:
            raise _not_a_lead(what)
        if not visible:
            raise Refusal(
                f"No lead you may see has the email or external id {query!r}. A lead's details "
                f"are shown to {VIEWERS}.",
                Reason.NOT_FOUND,
            )
        if len(visible) > 1:
            raise Refusal(_several(query, [lead for lead, _ in visible], self.policy))
        ((lead, policy),) = visible
        await self.store.viewed(lead.id, actor, now)
        return lead, await self.store.events(lead.id), policy

    async def card(self, lead_id: int, viewer: str) -> tuple[LeadView, list[EventView], Policy]:
        """The lead, its timeline and its SLA version as stored now, for the `/lead` card
        `viewer` acted from, shown again as it now stands (not a new look-up: no `viewed`
        event). A lead not theirs to see is refused as `find` refuses it."""
        lead = await self.lead(lead_id)
        policy = await self.policy_for(lead)
        if not allowed(Action.VIEW_LEAD, viewer, policy, lead, self.barred):
            raise Refusal(refusal(Action.VIEW_LEAD, viewer, policy, lead), Reason.NOT_ALLOWED)
        return lead, await self.store.events(lead.id), policy

    # --- a manager's answer to an escalation ----------------------------------------------------

    async def reassign(
        self, lead_id: int, actor: str, rep: str, now: datetime, alert_ts: str | None = None
    ) -> Done:
        """Hand an open lead to `rep` of its segment's pool: the owner if it is claimed, else
        the suggested owner (who then holds a `claim: assigned` window for the rest of it).
        The thread hears it, `rep` gets a DM, the rep who had it a DM saying who has it now,
        the post is re-rendered; the event records who moved it from whom to whom.
        `alert_ts`: the managers' alert it was chosen on (a settled one changes nothing)."""
        lead = await self.lead(lead_id)
        policy = await self.policy_for(lead)
        check_manager(lead, actor, policy, Action.REASSIGN, "reassign")
        if (settled := await self._settled_alert(lead, alert_ts)) is not None:
            return settled
        check_pool(lead, rep, policy)
        current = lead.owner or lead.suggested_owner
        if rep == current:
            role = "owns" if lead.owner else "is the suggested owner of"
            message = f"<@{rep}> {role} this lead already; nothing was changed."
            return Done(message, lead, repeated=True)
        handing = self._handing(lead, policy, actor, rep, now)
        handed, effects = handing.lead, handing.effects
        look_at = now if escalation.clocks_moved(lead, handed) else None
        if not await self.store.reassign(
            lead, handed, actor, now, look_at=look_at, effects=effects
        ):
            latest = await self.lead(lead_id)
            if (latest.owner or latest.suggested_owner) == rep:
                return Done(f"<@{rep}> has this lead already.", latest, repeated=True)
            check_manager(latest, actor, policy, Action.REASSIGN, "reassign")
            raise Refusal(
                "This lead changed a moment ago; nothing was changed. Try again?", Reason.CHANGED
            )
        self.notifier.deliver_soon()
        return Done(handing.settled, handed)

    async def _settled_alert(self, lead: LeadView, alert_ts: str | None) -> Done | None:
        """When the press came from a managers' alert that is settled already (a control the
        manager's Slack still showed: the settled words had not reached it yet), what was done
        about it stands: nothing changes, and the manager hears so privately (a repeat)."""
        if alert_ts is None:
            return None
        settled = await self.store.settled_alert(lead.id, alert_ts)
        if settled is None:
            return None
        return Done(alert_views.stale_alert(lead, settled), lead, repeated=True)

    def _handing(
        self,
        lead: LeadView,
        policy: Policy,
        actor: str,
        rep: str,
        now: datetime,
        by_crm: bool = False,
    ) -> Handing:
        """The lead handed to `rep`, the effects that tell it (a thread note, a DM to `rep`
        and one to the rep who had it, the post and App Homes, the managers' open alerts
        settled, their App Homes if it is overdue). A claimed lead takes `rep`'s zone, and
        its deadlines move to their hours if those differ (`escalation.handed_over`)."""
        current = lead.owner or lead.suggested_owner
        handed = escalation.handed_over(lead, policy, rep, self.zones.get(rep), now)
        why = "its owner was changed in the CRM" if by_crm else f"a manager's call (<@{actor}>)"
        by_words = "The CRM" if by_crm else None
        key = f"reassign:{lead.id}:{now.isoformat()}"
        dm = alert_views.reassigned_dm(handed, actor, policy, now, by_words)
        effects: list[Effect] = [
            thread_note(
                lead, alert_views.reassign_note(lead, current, rep, why, policy, now), f"{key}:note"
            ),
            Send(rep, dm, f"{key}:dm", lead.id, asks_claim=handed.owner is None),
            Refresh(lead.id),
            RefreshHomes(users=tuple(u for u in (current, rep, actor) if u and is_user_id(u))),
        ]
        if current and current != actor and is_user_id(current):  # the rep who lost it hears why
            lost = alert_views.reassigned_away_dm(lead, rep, actor, by_words)
            effects.append(Send(current, lost, f"{key}:lost", lead.id))
        by = "the CRM" if by_crm else None
        settled = alert_views.reassigned_alert(lead, rep, actor, policy, now, by)
        effects += [
            Settle(lead.id, lead.cycle, settled, f"{key}:settle"),
            *self._overdue_homes(lead, policy, now),
        ]
        return Handing(handed, effects, settled)

    async def crm_reassign(
        self,
        lead: LeadView,
        rep: str,
        now: datetime,
        occurred_at: datetime | None = None,
        notification: Notification | None = None,
    ) -> bool:
        """Hand an open lead to `rep` because its owner was changed in the CRM (actor `crm`):
        the same post, DMs, rotation counts and audit trail as a manager's reassignment, but
        no pool check (the CRM is the system of record for who owns a lead). False when it
        was not changed: `rep` has it already, or it is closed. A lead that changed while it
        was handed over (a claim at the same moment) is read again and handed over then.
        `occurred_at`: when the CRM made the change (kept, to order its later ones by).
        `notification`: the CRM's that told it, marked done with the handover (NotOurs,
        nothing changed, when another took it over: storage/crm_inbox.py `finish`)."""
        for _ in range(3):
            if not lead.stage.is_open or rep == (lead.owner or lead.suggested_owner):
                return False
            policy = await self.policy_for(lead)
            handing = self._handing(lead, policy, "crm", rep, now, by_crm=True)
            look_at = now if escalation.clocks_moved(lead, handing.lead) else None
            if await self.store.reassign(
                lead,
                handing.lead,
                "crm",
                now,
                look_at=look_at,
                effects=handing.effects,
                why=BY_CRM,
                occurred_at=occurred_at,
                notification=notification,
            ):
                self.notifier.deliver_soon()
                return True
            latest = await self.store.get(lead.id)
            if latest is None:
                return False
            lead = latest
        raise Refusal(
            "this lead kept changing while it was reassigned; send it again", Reason.CHANGED
        )

    async def snooze(
        self,
        lead_id: int,
        actor: str,
        now: datetime,
        hours: int = 1,
        alert_ts: str | None = None,
    ) -> Done:
        """Hold an open lead's reminders and escalations for `hours` of working time; the
        sweep looks again when the snooze ends. The lead's thread hears it. `alert_ts`: the
        managers' alert it was pressed on (a settled one changes nothing)."""
        lead = await self.lead(lead_id)
        policy = await self.policy_for(lead)
        check_manager(lead, actor, policy, Action.SNOOZE, "snooze")
        if (settled := await self._settled_alert(lead, alert_ts)) is not None:
            return settled
        until = snoozed_until(lead, policy, now, hours)
        note = alert_views.snooze_note(actor, until, policy)
        effects: list[Effect] = [
            thread_note(lead, note, f"snooze:{lead.id}:{until.isoformat()}"),
            RefreshHomes(users=(actor,)),
            *self._overdue_homes(lead, policy, now),  # the other managers see it snoozed
        ]
        if not await self.store.snooze(lead, actor, until, now, effects=effects):
            latest = await self.lead(lead_id)
            check_manager(latest, actor, policy, Action.SNOOZE, "snooze")
            if latest.snoozed_until is not None and latest.snoozed_until >= until:
                message = "This lead is snoozed that long already; nothing was changed."
                return Done(message, latest, repeated=True)
            raise Refusal(
                "This lead changed a moment ago; nothing was changed. Try again?", Reason.CHANGED
            )
        self.notifier.deliver_soon()
        snoozed = replace(lead, snoozed_until=until)
        return Done(alert_views.snoozed_alert(snoozed, actor, until, policy), snoozed)


def _check_window(lead: LeadView, actor: str, policy: Policy, now: datetime) -> None:
    """Raise Refusal if the lead is held for someone else (`claim: assigned`) at `now`."""
    held = held_from(lead, actor, policy, now)
    if held is not None:
        raise Refusal(lead_views.reserved_refusal(held, policy), Reason.NOT_READY)


LEADS_LISTED = 20  # of an email's leads, in a look-up's answer


def _several(query: str, leads: list[LeadView], policy: Policy) -> str:
    """The answer to a look-up of an email several leads have: each by its external id (to
    ask for), segment, stage and arrival, newest first; plain words (no lead data but the
    ids, no mention can come alive in them)."""
    newest = sorted(leads, key=lambda lead: (lead.received_at, lead.id), reverse=True)
    zone = ZoneInfo(policy.timezone)
    lines = [
        f"• `/lead {_asked_by(lead)}` · "
        f"{plain(readable(lead.segment), 80)} · {lead_views.stage_words(lead)} · received "
        f"{lead.received_at.astimezone(zone):%a %d %b %Y %H:%M %Z}"
        for lead in newest[:LEADS_LISTED]
    ]
    if len(newest) > LEADS_LISTED:
        lines.append(f"… and {len(newest) - LEADS_LISTED} older ones.")
    return (
        f"{len(leads)} leads you may see have the email {query!r}; ask for one by its "
        f"external id, e.g. `/lead {_asked_by(newest[0])}`:\n" + "\n".join(lines)
    )


# What Slack puts in a command's text for a member or a channel picked in the composer
# (`<@U0123|ben>`, `<#C0123|sales>`; "Implementing slash commands": escaping).
_SLACK_REFERENCE = re.compile(r"<(?P<kind>[@#])(?P<id>[A-Z0-9]{2,20})(?:\|[^<>]*)?>")
# The same as typed, for a command that does not escape (manifest.yaml: should_escape false):
# `@ben`, `#sales` (`/handoff away @tom` reads a person so too: bot/domain/away.py).
_TYPED_REFERENCE = re.compile(r"(?P<kind>[@#])(?P<name>[\w.\-]{1,80})")


def _not_a_lead(what: str) -> Refusal:
    """`/lead` given a Slack mention (`what`: of whom or what, `slack_reference`), not a lead's
    email or external id."""
    return Refusal(
        f"`/lead` looks up a lead by its email or external id: {what}, not a lead. "
        "For example, `/lead jane@acme.com`."
    )


def slack_reference(query: str, typed: bool = False) -> str | None:
    """What a `/lead` query that is a Slack mention names, in words ("<@U0123> is a person in
    Slack", "that is a Slack channel"); None for anything else (an email, an external id).
    `typed`: a mention as typed (`@ben`) too, for a query no lead answers to (an external id
    may start with `#`)."""
    found = _SLACK_REFERENCE.fullmatch(query)
    if found is None and typed and (plain := _TYPED_REFERENCE.fullmatch(query)):
        person = plain["kind"] == "@"
        return f"{plain[0]} is a person in Slack" if person else "that is a Slack channel"
    if found is None:
        return None
    if found["kind"] == "@" and is_user_id(found["id"]):
        return f"<@{found['id']}> is a person in Slack"
    return "that is a Slack channel" if found["kind"] == "#" else None


def _asked_by(lead: LeadView) -> str:
    """The lead's external id to type after `/lead`: plain, and never a live mention."""
    return plain(lead.external_id, 255).replace("<@", "< @")


def _question_key(lead_id: int, question: str) -> str:
    """The outbox key of a question's post to marketing (its answer's keys start with it)."""
    return f"info:{lead_id}:{question}"


_STORED_ONLY = "the new engagement was stored; the lead is not coming back from nurture or recycle"


def _nothing_changed(activity_id: str | None) -> str:
    if activity_id is not None:
        return (
            f"activity {activity_id!r} changes nothing: it was recorded already, or the lead "
            "already had it"
        )
    return "the lead already had this; nothing changed"


def _closed_meanwhile(current: LeadView) -> Refusal:
    """The answer to a change that lost a race with another rep's disposition."""
    return Refusal(
        f"This lead was closed a moment ago as {current.disposition_code}; nothing was changed.",
        Reason.CLOSED,
    )
