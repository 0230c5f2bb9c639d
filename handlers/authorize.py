"""Bolt middleware: every Slack request passes the access table before any listener runs."""

from __future__ import annotations

import json
import re
from collections.abc import Awaitable, Callable
from typing import Any

from slack_bolt.async_app import AsyncAck, AsyncBoltContext, AsyncRespond
from slack_bolt.response import BoltResponse

from bot.domain.access import Action, allowed, needs_lead, refusal
from bot.domain.lead import LeadView
from bot.domain.policy import Policy
from bot.metrics import Metrics
from bot.services.leads import Services
from bot.slack.ids import ActionId, CallbackId

Tell = Callable[[AsyncRespond, str], None]
Middleware = Callable[..., Awaitable[BoltResponse | None]]

BUTTONS = {
    ActionId.CLAIM: Action.CLAIM,
    ActionId.ATTEMPT: Action.ATTEMPT,
    ActionId.DISPOSE: Action.DISPOSE,
    ActionId.REASSIGN: Action.REASSIGN,
    ActionId.SNOOZE: Action.SNOOZE,
}
_LEAD_ID = re.compile(r"^\d{1,18}$")
_ESCAPED_MENTION = re.compile(r"<@([A-Z0-9]+)(?:\|[^>]*)?>")
_PLAIN_MENTION = re.compile(r"(?<![<\w])@([\w.\-]+)")


def requested(body: dict[str, Any]) -> tuple[Action, int | None] | None:
    """The restricted action a Slack request asks for, and its lead id; None if unrestricted."""
    if body.get("type") == "block_actions" and body.get("actions"):
        pressed = body["actions"][0]
        action_id = str(pressed.get("action_id", ""))
        if action_id == ActionId.REPORT_SHARE:
            return Action.SLA_REPORT, None
        for prefix, action in BUTTONS.items():
            if action_id == prefix or action_id.startswith(f"{prefix}_"):
                return action, _lead_id(_pressed_value(pressed))
        return None
    if body.get("type") == "view_submission":
        view = body.get("view") or {}
        if view.get("callback_id") != CallbackId.DISPOSE_MODAL:
            return None
        try:
            meta = json.loads(view.get("private_metadata") or "{}")
        except ValueError:
            return None
        return Action.DISPOSE, _lead_id(
            str(meta.get("lead_id")) if isinstance(meta, dict) else None
        )
    command = body.get("command")
    if command in ("/sla-report", "/sla-plan"):  # both read the team's history
        return Action.SLA_REPORT, None
    if command == "/handoff" and _sets_someone_else_away(body):
        return Action.AWAY_FOR_OTHERS, None
    return None


def _lead_id(value: Any) -> int | None:
    return int(value) if isinstance(value, str) and _LEAD_ID.match(value) else None


def _pressed_value(pressed: dict[str, Any]) -> Any:
    """A button's value, or the lead id of a menu's choice ("<lead id>:<rep>" for Reassign)."""
    option = pressed.get("selected_option")
    if isinstance(option, dict):
        return str(option.get("value") or "").partition(":")[0]
    return pressed.get("value")


def _sets_someone_else_away(command: dict[str, Any]) -> bool:
    """`/handoff away @someone` where someone is not the caller (mentions escaped or not)."""
    word, _, rest = (command.get("text") or "").strip().partition(" ")
    if word.lower() != "away":
        return False
    caller, caller_name = command.get("user_id"), command.get("user_name")
    others = [user for user in _ESCAPED_MENTION.findall(rest) if user != caller]
    others += [name for name in _PLAIN_MENTION.findall(rest) if name != caller_name]
    return bool(others)


def guard(services: Services, tell: Tell, metrics: Metrics) -> Middleware:
    """The global middleware: refuse what the table does not allow, with a private answer.

    A claim is only pre-checked (neither a manager nor any segment's rep): the claim path is
    latency-bound, and its pool check is atomic in the claim's conditional update. A request
    for a lead that does not exist goes on to its listener, which says so.
    """

    async def authorize(
        body: dict[str, Any],
        context: AsyncBoltContext,
        next: Callable[[], Awaitable[None]],
        ack: AsyncAck,
        respond: AsyncRespond | None,
    ) -> BoltResponse | None:
        wanted = requested(body)
        actor = context.user_id
        if wanted is None or actor is None:
            await next()
            return None
        action, lead_id = wanted
        command = body.get("command")
        doing = f"run `{command}`" if isinstance(command, str) else None
        decided = await _decide(services, action, actor, lead_id, doing)
        if decided is None:
            await next()
            return None
        if action is Action.CLAIM:
            metrics.inc("claims_refused_total")
        if body.get("type") == "view_submission":
            return await ack(response_action="errors", errors={"reason": decided})
        if body.get("command"):
            return await ack(text=decided, response_type="ephemeral")
        response = await ack()
        if respond is not None:
            tell(respond, decided)
        return response

    return authorize


async def _decide(
    services: Services, action: Action, actor: str, lead_id: int | None, doing: str | None = None
) -> str | None:
    """The refusal for `actor` asking for `action`, or None to let the request through."""
    policy: Policy = services.policy
    lead: LeadView | None = None
    if needs_lead(action):
        lead = await services.store.get(lead_id) if lead_id is not None else None
        if lead is None:
            return None
        policy = await services.policy_for(lead)
    if allowed(action, actor, policy, lead):
        return None
    return refusal(action, actor, policy, lead, doing)
