"""Bolt middleware: every Slack request passes the access table before any listener runs."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Protocol

from slack_bolt.async_app import AsyncBoltContext

from bot.domain.access import BARRED, Action, allowed, needs_lead, refusal
from bot.domain.lead import LeadView, earlier_cycle_post
from bot.domain.policy import Policy
from bot.domain.refusal import Reason, Refusal
from handlers.context import asked

Middleware = Callable[..., Awaitable[None]]


class Leads(Protocol):
    """What the access check reads: the SLA versions and the lead a request names."""

    @property
    def policy(self) -> Policy: ...

    async def policy_for(self, lead: LeadView) -> Policy: ...

    async def find_lead(self, lead_id: int) -> LeadView | None: ...

    @property
    def barred(self) -> set[str]: ...


def guard(leads: Leads) -> Middleware:
    """The global middleware: refuse what the table does not allow (a `Refusal`, answered
    privately by the one error path).

    A claim is only pre-checked (neither a manager nor any segment's rep): the claim path is
    latency-bound, and its pool check is atomic in the claim's conditional update. A request
    for a lead that does not exist goes on to its listener, which says so.
    """

    async def authorize(context: AsyncBoltContext, next: Callable[[], Awaitable[None]]) -> None:
        wanted, actor = asked(context), context.user_id
        if wanted.action is not None and actor is None:  # Slack always names who asks
            raise Refusal(
                "Sorry, this request names nobody, so nobody may make it.", Reason.NOT_ALLOWED
            )
        if wanted.action is not None and actor is not None:
            doing = f"run `{wanted.command}`" if wanted.command else None
            decided = await _decide(
                leads,
                wanted.action,
                actor,
                wanted.lead_id,
                doing,
                wanted.post_ts,
                wanted.post_cycle,
            )
            if decided is not None:
                raise Refusal(decided, Reason.NOT_ALLOWED)
        await next()

    return authorize


async def _decide(
    leads: Leads,
    action: Action,
    actor: str,
    lead_id: int | None,
    doing: str | None = None,
    post_ts: str | None = None,
    post_cycle: int | None = None,
) -> str | None:
    """The refusal for `actor` asking for `action`, or None to let the request through
    (`post_ts`: the lead's post a rating was picked on; `post_cycle`: the cycle it shows)."""
    policy = leads.policy
    lead: LeadView | None = None
    if needs_lead(action):
        lead = await leads.find_lead(lead_id) if lead_id is not None else None
        if lead is None:
            return None
        policy = await leads.policy_for(lead)
        if action is Action.RATE and (elsewhere := earlier_cycle_post(lead, post_ts, post_cycle)):
            return elsewhere
    if actor in leads.barred:
        return BARRED
    if allowed(action, actor, policy, lead, leads.barred):
        return None
    return refusal(action, actor, policy, lead, doing)
