"""The escalation sweep: look at the leads whose next check has come, fire their due steps.

Each step fires once (storage records it under a unique key before its side effects), only
the most advanced due step of a ladder fires (the others are recorded as skipped), and the
effects go through the outbox. `handoff serve` runs it on a schedule; `handoff sweep` once.
"""

from __future__ import annotations

from collections.abc import Collection, Iterable, Mapping
from dataclasses import dataclass, replace
from datetime import UTC, datetime, timedelta
from functools import partial
from typing import Any

from bot.domain import cadence, claim, escalation
from bot.domain.comeback import Cycle, as_sent, new_cycle, own_score, rescore
from bot.domain.effects import (
    Announce,
    Effect,
    Refresh,
    RefreshHomes,
    Render,
    Send,
    Settle,
    alert_key,
    thread_note,
)
from bot.domain.intake import LeadIn
from bot.domain.lead import LeadView, Stage, comes_back_at, follow_up_met
from bot.domain.policy import Policy, Segment
from bot.domain.routing import (
    OFFERED,
    ROUND_ROBIN,
    OwnerChoice,
    counted_to,
    fallback_candidates,
    lead_account,
    pool_rules,
    routed_people,
)
from bot.services.leads import Notifier, owner_choice, retired_post
from bot.services.policies import PolicyBook
from bot.services.routing import periods
from bot.slack import alert_views
from storage.away import AwayStore
from storage.rotation import RotationAsk, Suggestion
from storage.sweep import Change, Picker, SweepStore

ACTOR = "handoff"  # who the sweep's events and messages are by (the SLA, not a person)
REASSIGN_WHY = {
    "unclaimed": "nobody claimed it in time",
    "no_touch": "no first touch in time",
    "no_feedback": "no feedback in time",
    "no_outcome": "no final disposition in time",
}


@dataclass(frozen=True)
class SweepResult:
    looked_at: int
    changed: int


class Sweeper:
    def __init__(
        self,
        rows: SweepStore,
        policies: PolicyBook,
        notifier: Notifier,
        zones: Mapping[str, str] | None = None,
        names: Mapping[str, str] | None = None,
        away: AwayStore | None = None,
        barred: Collection[str] = (),
    ) -> None:
        self.rows = rows
        self.away = away  # who is away: skipped by picks, their overdue leads offered
        # Guests and deactivated members (People keeps it fresh): no turn, like who is away.
        self.barred = barred
        self.policies = policies
        self.notifier = notifier
        self.zones = zones if zones is not None else {}  # members' time zones (`clock: owner`)
        self.names = names if names is not None else {}  # members' display names

    async def run(self, now: datetime, batch: int = 200) -> SweepResult:
        """Sweep every lead due at `now`, `batch` at a time."""
        looked = changed = 0
        seen: set[int] = set()
        more = True
        while more:
            page = await self.rows.due(now, batch)
            more = page.full  # a short page is the last one
            page.leads = [lead for lead in page.leads if lead.id not in seen]
            if not page.leads:
                break
            versions = {lead.sla_version for lead in page.leads}
            policies = {v: await self.policies.version(v) for v in versions}
            seen.update(lead.id for lead in page.leads)
            away = await self._away(page.leads, policies.values(), now)
            done = await self.rows.apply(
                page,
                now,
                partial(
                    decide,
                    policies=policies,
                    now=now,
                    zones=self.zones,
                    names=self.names,
                    current=self.policies.current,
                    away=away,
                ),
            )
            looked += len(page.leads)
            changed += len(done)
        if changed:
            self.notifier.deliver_soon()
        return SweepResult(looked, changed)

    async def _away(
        self, leads: list[LeadView], policies: Iterable[Policy], now: datetime
    ) -> frozenset[str]:
        """Who of the page's owners and their pools is away at `now` (one query), with the
        members Slack deactivated or made a guest."""
        if self.away is None:
            return frozenset(self.barred)
        every = [*policies, self.policies.current]  # the current SLA's pools re-engage leads
        people = {rep for policy in every for rep in routed_people(policy)}
        people |= {who for lead in leads for who in (lead.owner, lead.suggested_owner) if who}
        return await self.away.away(people, now) | frozenset(self.barred)

    async def hand_on(self, rep: str, why: str, now: datetime, news: bool = True) -> int:
        """A member Slack deactivated or made a guest (`why`: `deactivated`, `guest`) holds
        open leads nobody will work: each not worked yet (no feedback) goes now to the next
        available rep of its pool's rotation (the fallback owner if nobody is), as the SLA's
        `reassign` step hands a lead on; the managers hear once, in one message listing the
        leads, and those left with the member for them to hand on (feedback given, or no pool
        to hand them to). With none handed on, they hear of those left only if it is `news`
        (the member was not known to have left): a repeated event or the daily refresh says
        nothing again. The member's App Home is published again (no lead: `Homes.view`) each
        time, held leads or none: their state is saved before this runs (its own transaction),
        so a hand-on that failed or was killed between the two is not `news` when tried again,
        and a manager holds no lead; a request still waiting serves (storage/outbox.py). The
        leads move exactly once (storage locks them); how many were handed on."""
        held = await self.rows.held_versions(rep)
        policies = {v: await self.policies.version(v) for v in held}
        current = self.policies.current
        away = await self._away([], [*policies.values()], now) | {rep}
        decide = partial(
            hand_on,
            policies=policies,
            current=current,
            now=now,
            zones=self.zones,
            away=away,
            why=why,
        )
        summary = partial(_gone_summary, rep=rep, why=why, policy=current, now=now, news=news)
        handed = await self.rows.hand_on(rep, now, decide, summary)
        self.notifier.deliver_soon()
        return len(handed)


@dataclass(frozen=True)
class _Turns:
    """A sweep's turns of its pools' weighted rotations, as intake takes them: weights, caps and
    time away applied; the fallback owner, and why, when nobody is available."""

    pick: Picker
    policy: Policy
    now: datetime
    away: frozenset[str]

    def route(self, lead: LeadView, lead_in: LeadIn, segment: Segment | None) -> OwnerChoice:
        """A lead starting a new cycle, routed by the rules in order as a new lead is (named
        account, the same account's owner but for itself, partner, the pool's rotation, the
        fallback owner): the choice, its `rep` and `reason` those the rotation's turn gave."""
        policy = self.policy
        account = None
        domain = lead_account(lead_in, policy)
        if policy.account_matching and domain is not None:
            recent = timedelta(minutes=policy.account_recent.total_minutes(24 * 60))
            account = self.pick.account_lead(domain, self.now - recent, lead.id)
        choice = owner_choice(lead_in, segment, policy, account, self.away)
        if choice.pool is None or choice.segment is None:
            return choice
        chosen = self.take(choice.segment, reason=choice.reason)
        return replace(choice, rep=chosen.rep, reason=chosen.reason, pool=None)

    def take(
        self,
        segment: Segment,
        *,
        taken_from: LeadView | None = None,
        fallback: bool = True,
        reason: dict[str, Any] | None = None,
        released: bool = False,
    ) -> Suggestion:
        """A turn of `segment`'s rotation. A reassignment passes the lead (`taken_from`): its
        current rep is never picked, the lead leaves the counts of the rep the rotation counted
        it to (`counted_to`: not its owner when another rep claimed it), of the day and week it
        counted it in, and a claimed lead moves to the new rep's open leads (unless `released`:
        back to the pool unclaimed). Without `fallback`, nobody available gives None."""
        day, week = periods(self.policy, self.now)
        current = (taken_from.owner or taken_from.suggested_owner) if taken_from else None
        counted = counted_to(taken_from.route_reason) if taken_from else None
        # Never back to a rep the SLA already took this lead from in its cycle (`had`).
        had = _had(taken_from) - {current}
        avoid = frozenset({current} if current else ()) | had
        fallbacks = fallback_candidates(self.policy) if fallback else ()
        ask = RotationAsk(
            segment=segment.name,
            rules=pool_rules(segment, self.policy),
            day=day,
            week=week,
            away=self.away & frozenset((*segment.reps, *fallbacks)),
            reason=reason or {"rule": ROUND_ROBIN},
            fallback=self.policy.fallback if fallback else None,
            fallbacks=fallbacks,
            avoid=avoid,
            had=had,
            leaving=counted.rep if counted else None,
            leaving_periods=counted.periods if counted else None,
            claimed_by=taken_from.owner if taken_from and not released else None,
        )
        return self.pick.take(ask)

    def leaves(self, lead: LeadView) -> None:
        """The lead leaves its rep for nobody (offered to the pool): out of the counts of the
        rep the rotation counted it to (`counted_to`), of the day and week it counted it in;
        none if it was counted to nobody (offered to nobody before: the offer took it out)."""
        counted = counted_to(lead.route_reason)
        if counted is not None:
            day, week = counted.periods or periods(self.policy, self.now)
            self.pick.uncount(lead.segment, counted.rep, day, week)


def decide(
    lead: LeadView,
    recorded: set[tuple[str, int]],
    pick: Picker,
    policies: dict[str, Policy],
    now: datetime,
    zones: Mapping[str, str] | None = None,
    names: Mapping[str, str] | None = None,
    current: Policy | None = None,
    away: frozenset[str] = frozenset(),
) -> Change | None:
    """What the sweep does to one lead: pure, but for the turns of a pool's rotation (`pick`:
    a reassignment, a lead offered while its owner is away, a new cycle).
    `current` (the SLA in force) scores nurtured leads again; by default the lead's own.
    `away`: the reps away now; turns pass over them, and a lead whose owner (or suggested
    owner) is away goes back to the pool when one of its deadlines passes."""
    policy = policies[lead.sla_version]
    person = lead.owner or lead.suggested_owner
    # An away rep's lead is offered once a deadline has passed, not at its very instant (an
    # answer then is in time): `fires_at`.
    plan = escalation.plan(lead, policy, now, recorded, offers=person in away)
    if plan.recycle and lead.stage is Stage.NURTURE:
        return _reengage(lead, policy, _Turns(pick, current or policy, now, away), now)
    turns = _Turns(pick, policy, now, away)
    if plan.recycle:
        return _new_cycle(lead, policy, turns, now)
    touch, later = cadence.touch_reminder(lead, now, recorded)
    if follow_up_met(lead, policy):  # by its count alone, when stored under an older rule
        touch, later = None, None
    window_over, window_ends = claim.window_end(lead, now, recorded)
    looks = (plan.next_at, later, window_ends)
    change = Change(next_action_at=min(filter(None, looks), default=None))
    if touch is not None:
        _remind_touch(change, lead, touch, policy, now)
    if window_over:
        _open_to_pool(change, lead)
    for due in plan.skip:
        change.skipped.append((due.ladder, due.index, due.step.do))
    for due in plan.fire:
        change.fired.append((due.ladder, due.index, due.step.do))
        change.events.append(
            ("escalated", {"ladder": due.ladder, "step": due.step.percent, "action": due.step.do})
        )
        if person in away and due.at >= due.window.due:
            _offer(change, lead, person, recorded, policy, turns, now)
        elif person in away and due.step.do == "remind_owner":
            text = alert_views.away_reminder(lead, person, due.window, policy, now)
            _say(change, lead, now, lead.message_channel or lead.channel, text, thread=True)
        else:
            _effect(change, lead, due, policy, turns, now, zones or {}, names or {})
    if plan.fire:  # the post shows the clock's new colour; its people's App Homes too
        change.effects += [Refresh(lead.id), RefreshHomes(leads=(lead.id,))]
    if any(due.at >= due.window.due for due in plan.fire):
        # Past a deadline: the lead is on the managers' overdue list (or just came onto it, or
        # changed hands there), so their App Homes follow.
        managers = (current or policy).managers
        change.effects.append(RefreshHomes(users=tuple(managers)))
    return change


def hand_on(
    lead: LeadView,
    recorded: set[tuple[str, int]],
    pick: Picker,
    policies: Mapping[str, Policy],
    current: Policy,
    now: datetime,
    zones: Mapping[str, str],
    away: frozenset[str],
    why: str,
) -> Change | None:
    """What becomes of an open lead whose rep Slack deactivated or made a guest (`why`): not
    worked yet (no feedback: claimed or not, a first touch logged or not), it goes to the next
    rep of its pool by the rotation, or to the fallback owner, as the `reassign` step hands a
    lead on (its clocks run on); None (it stays, for a manager to hand on) when its rep gave
    feedback (the conversation is under way: whom it goes to is a manager's call), or there
    is nobody to hand it to."""
    del recorded  # no step fires: the lead's ladder carries on with its new rep
    policy = policies.get(lead.sla_version, current)
    if not lead.stage.is_open or lead.feedback_at is not None:
        return None
    current_rep = lead.owner or lead.suggested_owner
    words = escalation.GONE_WORDS.get(why, why)
    change = Change(next_action_at=lead.next_action_at)
    turns = _Turns(pick, policy, now, away)
    chosen = _hand_over(
        change,
        lead,
        policy,
        turns,
        now,
        zones,
        why,
        f"<@{current_rep}> was {words}",
        f"The SLA (<@{current_rep}> was {words})",
        tag="gone",
        gone=True,
    )
    if chosen is None:
        return None
    change.effects += [
        Refresh(lead.id),  # the post shows its new rep and why
        RefreshHomes(leads=(lead.id,)),
        RefreshHomes(users=tuple(current.managers)),  # their overdue list may change hands
    ]
    return change


def _gone_summary(
    handed: list[tuple[LeadView, Change]],
    left: list[LeadView],
    *,
    rep: str,
    why: str,
    policy: Policy,
    now: datetime,
    news: bool,
) -> list[Effect]:
    """The managers' one message about a member's leads handed on (and left), in the
    escalations channel (without one, a DM to each manager); nothing if none was handed on
    and the leads left with them are no news. The member's own App Home, always."""
    # Slack shows the rep's App Home as last published the moment they open it: a guest must
    # not read leads there, so it is published again (`Homes.view`: no lead for them). Always:
    # a hand-on tried again after a failure is no `news`, and would never publish it.
    own_home: list[Effect] = [RefreshHomes(users=(rep,))]
    if not handed and not (left and news):
        return own_home
    moved = [
        (lead, str(change.values["suggested_owner"]), _fell_back(change)) for lead, change in handed
    ]
    text = alert_views.gone_alert(rep, why, moved, left, policy, now)
    key = f"gone:{rep}:{now.isoformat()}"
    targets = [policy.channels.escalations] if policy.channels.escalations else policy.managers
    return [*own_home, *(Send(target, text, f"{key}:{target}") for target in targets)]


def _fell_back(change: Change) -> bool:
    return (change.values.get("route_reason") or {}).get("rule") != ROUND_ROBIN


def _remind_touch(
    change: Change, lead: LeadView, touch: cadence.TouchDue, policy: Policy, now: datetime
) -> None:
    """The owner hears of an overdue touch in the lead's thread, once (fenced like a step)."""
    change.fired.append((cadence.TOUCH_LADDER, touch.touch, "remind_owner"))
    change.events.append(
        ("touch_due", {"touch": touch.touch, "due": touch.due_at.isoformat(), "owner": lead.owner})
    )
    text = alert_views.touch_reminder(lead, touch.touch, touch.due_at, policy)
    key = f"touch:{lead.id}:{lead.cycle}:{touch.touch}"
    change.effects += [thread_note(lead, text, key), Refresh(lead.id)]  # the post shows it red


def _open_to_pool(change: Change, lead: LeadView) -> None:
    """A `claim: assigned` window ended unclaimed: the post says the lead is open to the pool,
    once (fenced like a step), and the suggested rep's App Home follows. A lead held for
    nobody was open already (its post says so): only the fence, so nothing says it later."""
    change.noted.append((claim.OPEN_LADDER, claim.OPEN_STEP, claim.OPEN_ACTION))
    if claim.held_for_nobody(lead):
        return
    change.events.append(("claim_opened", {"reserved_for": lead.suggested_owner}))
    change.effects += [Refresh(lead.id), RefreshHomes(leads=(lead.id,))]


def _say(
    change: Change,
    lead: LeadView,
    now: datetime,
    channel: str,
    text: str,
    blocks: list[dict[str, Any]] | None = None,
    *,
    thread: bool = False,
    tag: str = "sweep",
    asks_claim: bool = False,
) -> None:
    """A message of this sweep (or of a hand-on: `tag`) about the lead (once: keyed by the
    lead, its cycle and `now`); `asks_claim`: it asks its reader to claim the lead (`Send`)."""
    index = sum(isinstance(effect, Send) for effect in change.effects)
    key = f"{tag}:{lead.id}:{lead.cycle}:{now.isoformat()}:{index}"
    if thread:
        change.effects.append(thread_note(lead, text, key))
    else:
        message = Send(channel, text, key, lead.id, tuple(blocks or ()), asks_claim=asks_claim)
        change.effects.append(message)


def _effect(
    change: Change,
    lead: LeadView,
    due: escalation.DueStep,
    policy: Policy,
    turns: _Turns,
    now: datetime,
    zones: Mapping[str, str],
    names: Mapping[str, str],
) -> None:
    window = due.window
    where = lead.message_channel or lead.channel
    match due.step.do:
        case "remind_channel":
            text = alert_views.channel_reminder(lead, window, policy, now)
            _say(change, lead, now, where, text, thread=True)
        case "remind_owner":
            person = lead.owner or lead.suggested_owner
            if person:
                _say(
                    change, lead, now, person, alert_views.owner_reminder(lead, window, policy, now)
                )
        case "notify_manager":
            alert = alert_views.manager_alert(lead, window, policy, now, names)
            target = policy.channels.escalations or where
            key = alert_key(lead.id, lead.cycle, now.isoformat(), window.ladder)
            change.effects.append(Send(target, alert.text, key, lead.id, tuple(alert.blocks)))
        case "reassign":
            _reassign(change, lead, window, policy, turns, now, zones)


def _reassign(
    change: Change,
    lead: LeadView,
    window: escalation.Window,
    policy: Policy,
    turns: _Turns,
    now: datetime,
    zones: Mapping[str, str],
) -> None:
    """The lead goes to the next rep of its pool's weighted rotation (never the rep it is
    taken from, nor one away or at a cap), counted in the rotation like any turn; with nobody
    available, to the fallback owner, and the thread says why. Nobody to hand it to (no
    fallback, or the fallback has it already): it stays (the manager was told already)."""
    why = f"{window.what} overdue ({REASSIGN_WHY[window.ladder]})"
    by_words = f"The SLA ({window.what} overdue)"
    _hand_over(change, lead, policy, turns, now, zones, window.ladder, why, by_words)


def _hand_over(
    change: Change,
    lead: LeadView,
    policy: Policy,
    turns: _Turns,
    now: datetime,
    zones: Mapping[str, str],
    cause: str,
    why: str,
    by_words: str,
    *,
    tag: str = "sweep",
    gone: bool = False,
) -> Suggestion | None:
    """The SLA hands the lead on (its `reassign` step, or its rep left: `cause`), by a turn of
    its pool's rotation; the turn taken, or None if it stays. A rep who is `gone` (deactivated,
    or a guest who must not read a lead) is not written to; `tag` keys the messages."""
    segment = policy.segment(lead.segment)
    if segment is None:
        return None
    current = lead.owner or lead.suggested_owner
    chosen = turns.take(segment, taken_from=lead, reason=_taken_reason(cause, current, lead))
    rep = chosen.rep
    if rep is None or rep == current:
        return None
    if chosen.reason.get("rule") != ROUND_ROBIN:  # the fallback owner: say why
        why += f"; {chosen.reason.get('why', 'nobody available')}, so to the fallback owner"
    handed = escalation.handed_over(lead, policy, rep, zones.get(rep), now)
    if lead.owner is not None:
        change.values["owner"] = rep
        change.values["owner_zone"] = handed.owner_zone
        change.values |= {name: getattr(handed, name) for name in escalation.HANDED_DEADLINES}
    if escalation.clocks_moved(lead, handed):  # its steps moved: look again at the next sweep
        change.next_action_at = now
    change.values["suggested_owner"] = rep
    change.values["route_reason"] = chosen.reason
    change.events.append(("reassigned", {"from": current, "to": rep, "why": cause}))
    note = alert_views.reassign_note(lead, current, rep, why, policy, now)
    _say(change, lead, now, lead.message_channel or lead.channel, note, thread=True, tag=tag)
    settled = alert_views.sla_reassigned_alert(lead, current, rep, why, policy, now)
    key = f"settle:{lead.id}:{lead.cycle}:{now.isoformat()}" + ("" if tag == "sweep" else f":{tag}")
    change.effects.append(Settle(lead.id, lead.cycle, settled, key))  # the alert's menu goes
    _tell_reps(change, lead, handed, rep, by_words, policy, now, tag=tag, gone=gone)
    return chosen


def _taken_reason(cause: str, current: str | None, lead: LeadView | None = None) -> dict[str, Any]:
    """The route reason a reassignment's turn starts from: the rotation's rule, that the SLA
    took the lead from `current` because `cause` (the ladder that ran out, or why its rep left:
    the post's why line says so), and every rep it has taken the lead from this cycle (`had`:
    none of them gets it back)."""
    reason: dict[str, Any] = {"rule": ROUND_ROBIN, "reassigned": cause}
    had = sorted(_had(lead) | ({current} if current else set()))
    return reason | ({"from": current} if current else {}) | ({"had": had} if had else {})


def _had(lead: LeadView | None) -> frozenset[str]:
    """The reps the SLA has taken the lead from in its cycle (its route reason keeps them)."""
    had = (lead.route_reason or {}).get("had") if lead is not None else None
    return frozenset(str(rep) for rep in had) if isinstance(had, list) else frozenset()


def _tell_reps(
    change: Change,
    lead: LeadView,
    handed: LeadView,
    rep: str,
    by_words: str,
    policy: Policy,
    now: datetime,
    *,
    tag: str = "sweep",
    gone: bool = False,
) -> None:
    """As a manager's reassignment does: `rep` hears the lead (`handed`) is theirs now, and
    the rep it was taken from (its owner, or a suggested rep who never claimed it) that it is
    off their list, each in a DM; the rep it was taken from sees it leave their App Home.
    A rep who is `gone` hears nothing: Slack deactivated them, or made them a guest."""
    dm = alert_views.reassigned_dm(handed, ACTOR, policy, now, by_words)
    _say(change, lead, now, rep, dm, tag=tag, asks_claim=handed.owner is None)
    current = lead.owner or lead.suggested_owner
    if current and not gone:
        lost = alert_views.reassigned_away_dm(lead, rep, ACTOR, by_words)
        _say(change, lead, now, current, lost, tag=tag)
        change.effects.append(RefreshHomes(users=(current,)))


def kept_deadlines(lead: LeadView, now: datetime) -> dict[str, str]:
    """The deadlines an offer clears (a claim sets new ones) that had already run by `now`:
    answered (the first feedback) or passed. They stay the cycle's in the report, each a miss
    or an answer in time of the rep who had the lead then (storage/reports.py `_clocks`), as
    an ISO UTC time to the microsecond. One not yet due goes with the lead to its next claim."""
    kept = {}
    feedback = lead.disposition_due_at
    if feedback is not None and (lead.feedback_at is not None or feedback <= now):
        kept["feedback_due"] = feedback
    if lead.final_due_at is not None and lead.final_due_at <= now:
        kept["final_due"] = lead.final_due_at
    return {key: at.astimezone(UTC).isoformat(timespec="microseconds") for key, at in kept.items()}


def offered(lead: LeadView, away: str, rep: str | None, now: datetime) -> dict[str, Any]:
    """The `offered` event's data of `lead` offered to the pool at `now` while `away` (its
    owner, or the rep it was suggested to) is away, suggested to `rep` (None: nobody): a
    claimed lead is released, keeping the deadlines that had run (`kept_deadlines`)."""
    released = lead.owner is not None
    data: dict[str, Any] = {"from": away, "to": rep, "why": "away", "released": released}
    if released:
        data |= kept_deadlines(lead, now)
    return data


def _offer(
    change: Change,
    lead: LeadView,
    away: str,
    recorded: set[tuple[str, int]],
    policy: Policy,
    turns: _Turns,
    now: datetime,
) -> None:
    """A deadline passed while the lead's owner (or suggested owner) is away: the lead is open
    again for its pool to claim, suggested to the next rep who is not away. A claimed lead
    leaves its owner (back to MQL, with a new claim deadline; its first claim time stays).
    Under `claim: assigned` it opens to the pool now, as its note says: not held for the next
    rep for the rest of its window. With nobody in the pool available, the managers hear,
    with the lead to hand on."""
    segment = policy.segment(lead.segment)
    chosen = None
    if segment is not None:
        chosen = turns.take(segment, taken_from=lead, fallback=False, released=True)
    rep = chosen.rep if chosen else None
    values: dict[str, Any] = {"suggested_owner": rep}
    if chosen is not None and rep is not None:
        values["route_reason"] = chosen.reason
    else:  # open to the pool, suggested to nobody: it leaves the rep who is away all the same
        turns.leaves(lead)
        values["route_reason"] = _offered_reason(lead, away, chosen)
    if lead.owner is not None:
        values |= {
            "owner": None,
            "owner_zone": None,
            "stage": Stage.MQL.value,
            "claim_due_at": escalation.claim_deadline(policy, policy.tier(lead.tier), now),
            "disposition_due_at": None,
            "final_due_at": None,
        }
    if claim.opens_on_offer(lead, now):  # back with the pool now, as its note says
        values["claim_opens_at"] = now
        if (claim.OPEN_LADDER, claim.OPEN_STEP) not in recorded:  # the offer says it opened
            change.noted.append((claim.OPEN_LADDER, claim.OPEN_STEP, claim.OPEN_ACTION))
    change.values.update(values)
    released = lead.owner is not None
    change.events.append(("offered", offered(lead, away, rep, now)))
    opened = replace(
        lead,
        stage=Stage.MQL,
        owner=None,
        owner_zone=None,
        suggested_owner=rep,
        route_reason=values["route_reason"],
        claim_due_at=values.get("claim_due_at", lead.claim_due_at),
        claim_opens_at=values.get("claim_opens_at", lead.claim_opens_at),
        disposition_due_at=None if released else lead.disposition_due_at,
        final_due_at=None if released else lead.final_due_at,
    )
    fired = {(ladder, index) for ladder, index, _ in change.fired + change.skipped}
    later = escalation.plan(opened, policy, now, recorded | fired).next_at
    change.next_action_at = later if later is not None and later > now else change.next_action_at
    where = lead.message_channel or lead.channel
    _say(
        change,
        lead,
        now,
        where,
        alert_views.away_offer_note(lead, away, rep, policy, now),
        thread=True,
    )
    if rep is None:
        alert = alert_views.away_offer_alert(opened, away, policy, now)
        _say(change, lead, now, policy.channels.escalations or where, alert)
    change.effects.append(RefreshHomes(users=(away,)))


def _offered_reason(lead: LeadView, away: str, chosen: Suggestion | None) -> dict[str, Any]:
    """The route reason of a lead offered to nobody: offered from `away`, and why nobody was
    available (the turn's words: "nobody available (all away)"), so its post's why line no
    longer names the rep it was taken from, and the rotation no longer counts it to anyone
    (`counted_to`: the offer took it out of their counts). The reps the SLA took it from this
    cycle stay (`had`): its `reassign` step still passes over them."""
    why = (chosen.reason.get("why") if chosen is not None else None) or "nobody available"
    reason: dict[str, Any] = {"rule": OFFERED, "from": away, "why": why}
    had = sorted(_had(lead))
    return reason | ({"had": had} if had else {})


def _new_cycle(lead: LeadView, policy: Policy, turns: _Turns, now: datetime) -> Change:
    """A recycled lead returns to its segment's queue: a new cycle with its own clocks, its
    owner chosen by the routing rules (a named account's owner, say; else a turn of the
    segment's rotation, or the fallback owner if nobody is in)."""
    segment = policy.segment(lead.segment)
    choice = turns.route(lead, as_sent(lead, lead.engagement, own_score(lead)), segment)
    home = choice.segment if choice.segment is not segment else None
    cycle = new_cycle(lead, policy, now, choice.rep, home=home)
    retired = retired_post(lead, policy, now, cycle.lead)
    change = _posted(cycle, policy, "recycled_back", cycle.previous, retired)
    change.values["route_reason"] = choice.reason
    return change


def _reengage(lead: LeadView, own: Policy, turns: _Turns, now: datetime) -> Change:
    """A nurtured lead's re-engagement date: scored again under the current SLA from what it
    has now; posted as a new cycle if it qualifies (routed by the rules in order, as a new
    lead is), else left in nurture until the next date (marketing heard why when it was
    nurtured; nothing new is said). `own`: the SLA it was posted under (its earlier post's)."""
    current = turns.policy
    rescored = rescore(lead, current, as_of=now)
    if not rescored.qualifies:
        checked: dict[str, Any] = {"cycle": lead.cycle, "score": rescored.routing.score.value}
        checked["reason"] = rescored.reason
        back = comes_back_at(lead, current, Stage.NURTURE, now)
        return Change(next_action_at=back, events=[("nurture_checked", checked)])
    segment = rescored.routing.segment
    choice = turns.route(lead, as_sent(lead, rescored.engagement, None), segment)
    home = choice.segment if choice.segment is not segment else None
    cycle = new_cycle(lead, current, now, choice.rep, rescored, home=home)
    retired = retired_post(lead, own, now, cycle.lead)
    change = _posted(cycle, current, "nurture_reengaged", cycle.previous, retired)
    change.values["route_reason"] = choice.reason
    return change


def _posted(
    cycle: Cycle, policy: Policy, event: str, data: dict[str, Any], retired: list[Effect]
) -> Change:
    """The new cycle's change: its values, its event, its post in its channel, and the
    `retired` post of the cycle it ends (services/leads.py `retired_post`)."""
    lead = cycle.lead
    key = f"{Announce.POST}:{lead.id}:{lead.cycle}"
    return Change(
        next_action_at=escalation.first_check(lead, policy),
        events=[(event, data)],
        values=cycle.values,
        effects=[
            Render(Announce.POST, lead.id, lead.channel, key, cycle=lead.cycle),
            *retired,
            RefreshHomes(leads=(lead.id,)),
        ],
    )
