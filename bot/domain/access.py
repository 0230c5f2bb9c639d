"""Who may do what: one table of actions and the roles allowed to take them, and the refusals."""

from __future__ import annotations

from collections.abc import Collection
from enum import StrEnum
from typing import TYPE_CHECKING

from bot.domain.naming import readable
from bot.domain.policy import Policy

if TYPE_CHECKING:  # lead.py imports this module for its checks
    from bot.domain.lead import LeadView


class Action(StrEnum):
    """Restricted things a person can ask Handoff to do; anything else is open to everyone."""

    CLAIM = "claim"
    ATTEMPT = "attempt"
    DISPOSE = "dispose"
    REASSIGN = "reassign"
    SNOOZE = "snooze"
    SLA_REPORT = "sla_report"
    AWAY_FOR_OTHERS = "away_for_others"
    RATE = "rate"  # the owner rates a closed lead's fit and timing
    VIEW_LEAD = "view_lead"  # see a lead's personal data: `/lead`, its card, its timeline
    ROUTING = "routing"  # `/handoff routing`: the whole team's distribution


class Role(StrEnum):
    POOL_REP = "pool_rep"  # a rep of the lead's segment (without a lead: of any segment)
    OWNER = "owner"  # the rep who owns the lead
    MANAGER = "manager"  # `managers:` of the SLA
    REPORTER = "reporter"  # `reporters:` of the SLA: may read the reports
    VIEWER = "viewer"  # `viewers:` of the SLA: may look up leads (marketing, say)


RULES: dict[Action, frozenset[Role]] = {
    Action.CLAIM: frozenset({Role.POOL_REP, Role.MANAGER}),
    Action.ATTEMPT: frozenset({Role.OWNER, Role.MANAGER}),
    Action.DISPOSE: frozenset({Role.OWNER, Role.MANAGER}),
    Action.REASSIGN: frozenset({Role.MANAGER}),
    Action.SNOOZE: frozenset({Role.MANAGER}),
    Action.SLA_REPORT: frozenset({Role.MANAGER, Role.REPORTER}),
    Action.AWAY_FOR_OTHERS: frozenset({Role.MANAGER}),
    Action.RATE: frozenset({Role.OWNER}),
    Action.VIEW_LEAD: frozenset(
        {Role.POOL_REP, Role.OWNER, Role.MANAGER, Role.REPORTER, Role.VIEWER}
    ),
    Action.ROUTING: frozenset({Role.MANAGER}),
}
"""The whole table. A new command adds its action and its row here, and its refusal below.
Slack guests (single- and multi-channel) and deactivated members hold no role, whatever the
SLA file lists (`barred`, from users.info): they never see a lead's data and never claim."""


def needs_lead(action: Action) -> bool:
    """Whether deciding `action` needs the lead (the owner is only known from it)."""
    return Role.OWNER in RULES[action]


def anyone_may(action: Action, policy: Policy) -> bool:
    """Whether anyone can be allowed `action` under `policy`: an action for the managers alone
    is nobody's while the SLA names none (`managers: []`), so its control is left out rather
    than shown to everyone and refused at every use."""
    return RULES[action] != {Role.MANAGER} or bool(policy.managers)


def roles_of(
    actor: str,
    policy: Policy,
    lead: LeadView | None = None,
    barred: Collection[str] = (),
) -> frozenset[Role]:
    """The roles `actor` holds under `policy`, for `lead` when given; none for the `barred`
    (Slack guests and deactivated members).

    Without a lead, POOL_REP means a rep of any segment (the lead-independent pre-check of a
    claim) and OWNER is never held.
    """
    roles: set[Role] = set()
    if actor in barred:
        return frozenset()
    if policy.is_viewer(actor):
        roles.add(Role.VIEWER)
    if policy.is_manager(actor):
        roles.add(Role.MANAGER)
    if policy.is_reporter(actor):
        roles.add(Role.REPORTER)
    if lead is None:
        if policy.segments_of(actor):
            roles.add(Role.POOL_REP)
        return frozenset(roles)
    segment = policy.segment(lead.segment)
    if segment is not None and actor in segment.reps:
        roles.add(Role.POOL_REP)
    if lead.owner is not None and lead.owner == actor:
        roles.add(Role.OWNER)
    return frozenset(roles)


def allowed(
    action: Action,
    actor: str,
    policy: Policy,
    lead: LeadView | None = None,
    barred: Collection[str] = (),
) -> bool:
    """Whether one of the actor's roles may take `action` (on `lead`, when it is lead-scoped).
    Nobody may take any on an erased lead: a press or a modal from before the erasure would
    store the person's data again (`refusal` says so)."""
    if lead is not None and lead.erased_at is not None:
        return False
    return not RULES[action].isdisjoint(roles_of(actor, policy, lead, barred))


def may_look_up(actor: str, policy: Policy, barred: Collection[str] = ()) -> bool:
    """Whether `actor` may look up leads at all: some lead could be theirs to see (a rep of a
    segment, a manager, a reporter, a viewer), before any lead is searched for."""
    return bool(roles_of(actor, policy, None, barred) & RULES[Action.VIEW_LEAD])


BARRED = (
    "Sorry, Handoff shows leads and takes claims only from full members of the workspace: "
    "Slack guests and deactivated accounts cannot. Nothing was changed."
)
ERASED = "This lead was erased at the person's request; nothing was changed."
VIEWERS = (
    "the lead's segment reps, its owner, the sales managers, the SLA's reporters and its viewers"
)


def refusal(
    action: Action,
    actor: str,
    policy: Policy,
    lead: LeadView | None = None,
    doing: str | None = None,
) -> str:
    """What to tell `actor` when `action` is not theirs to take, in plain words.

    `doing` words the action for the lead's owner messages ("mark it Qualified").
    """
    if lead is not None and lead.erased_at is not None:
        return ERASED
    owner = f"<@{lead.owner}>, who owns this lead," if lead and lead.owner else "the lead's owner"
    match action:
        case Action.CLAIM if lead is not None:
            return (
                f"Sorry, only the {readable(lead.segment)} reps and the sales managers can claim "
                "this lead. Ask a manager if it should be yours."
            )
        case Action.CLAIM:
            return (
                "Sorry, only the sales reps of a segment and the sales managers can claim leads. "
                "Ask a manager if one should be yours."
            )
        case Action.ATTEMPT:
            return f"Only {owner} or a manager can {doing or 'log an attempt'}."
        case Action.DISPOSE:
            return f"Only {owner} or a manager can {doing or 'disposition it'}."
        case Action.REASSIGN:
            return "Sorry, only the sales managers can reassign a lead; nothing was changed."
        case Action.SNOOZE:
            return "Sorry, only the sales managers can snooze a lead's SLA clock."
        case Action.SLA_REPORT:  # the reports: `/sla-report`, and `/sla-plan` (`doing`)
            return (
                "Sorry, only the sales managers and the SLA's reporters can "
                f"{doing or 'run `/sla-report`'}. Ask a manager to add you to `reporters` in "
                "sla.yaml."
            )
        case Action.RATE:
            return f"Only {owner} can rate it: the rating is the owner's judgement of the lead."
        case Action.VIEW_LEAD:
            return (
                f"Sorry, a lead's details are shown only to {VIEWERS} (`viewers` in sla.yaml). "
                "Nothing was looked up."
            )
        case Action.ROUTING:
            return (
                "Sorry, only the sales managers can see the team's routing. Your own share of "
                "the round robin is on your Handoff App Home."
            )
        case Action.AWAY_FOR_OTHERS:
            return (
                "Sorry, only the sales managers can set someone else away. "
                "`/handoff away` on its own sets you away."
            )
