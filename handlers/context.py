"""Every Slack request parsed once, by the first middleware, into a typed `Asked`: what it
asks for (the access table's action), the lead it names, and what was chosen. The access
middleware and the listeners read it from the context; nothing parses a button twice."""

from __future__ import annotations

import json
import logging
import re
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, replace
from typing import Any

from slack_bolt.async_app import AsyncBoltContext

from bot import logs
from bot.domain.access import Action
from bot.domain.refusal import Refusal
from bot.slack.ids import ActionId, CallbackId
from bot.slack.text import typed

LEAD_ID = re.compile(r"^\d{1,18}$")
REASSIGN_CHOICE = re.compile(r"^(\d{1,18}):([UW][A-Z0-9]{2,20})$")  # "<lead id>:<rep>"
# "<lead id>:<rating>:<cycle the post shows>" (before the cycle was carried: no cycle)
RATING_CHOICE = re.compile(r"^(\d{1,18}):([1-5])(?::(\d{1,9}))?$")
BLOCK_LEAD = re.compile(r"_(\d{1,18})$")  # a block id ending in the lead's id
USER_ID = re.compile(r"^[UW][A-Z0-9]{2,20}$")
ESCAPED_MENTION = re.compile(r"<@([A-Z0-9]+)(?:\|[^>]*)?>")
PLAIN_MENTION = re.compile(r"(?<![<\w])@([\w.\-]+)")
CONTEXT_KEY = "asked"
log = logging.getLogger("handoff.slack")

ALERT_CONTROLS = (ActionId.REASSIGN, ActionId.SNOOZE)  # the managers' alert's (and App Home's)
BUTTONS = {
    ActionId.CLAIM: Action.CLAIM,
    ActionId.ATTEMPT: Action.ATTEMPT,
    ActionId.DISPOSE: Action.DISPOSE,
    ActionId.REASSIGN: Action.REASSIGN,
    ActionId.SNOOZE: Action.SNOOZE,
}


@dataclass(frozen=True)
class Asked:
    """What one Slack request asks Handoff to do, as parsed from its payload."""

    action: Action | None = None  # a restricted action (None: open to everyone)
    lead_id: int | None = None  # the lead it names, when it names one Handoff can read
    choice: str = ""  # the attempt kind, the disposition code, or the rep of a Reassign menu
    command: str | None = None  # the slash command, if it is one
    text: str = ""  # the command's text as the person typed it (Slack sends it escaped)
    rep_chosen: bool = True  # a Reassign menu's choice names a lead and a rep
    where: str | None = None  # the channel of the press (an answer modal: of its Answer press)
    alert_ts: str | None = None  # a press on a managers' alert: that message's ts
    post_ts: str | None = None  # a rating picked on a lead's post: that post's ts
    post_cycle: int | None = None  # and the cycle that post shows, if its option says
    ephemeral: bool = False  # a press on an ephemeral message (the `/lead` card)

    def lead(self) -> int:
        """The lead this press names; Refusal if its value is not one Handoff could make."""
        if self.lead_id is None:
            raise Refusal("This button does not carry a lead Handoff knows; nothing was changed.")
        return self.lead_id

    def rating(self) -> dict[str, int]:
        """What a rating menu chose (`{"fit": 4}`); Refusal if it names no rating 1–5."""
        rated, _, number = self.choice.partition(":")
        if not number.isdigit():
            raise Refusal("This choice does not carry a rating from 1 to 5; nothing was changed.")
        return {rated: int(number)}

    def rep(self) -> str:
        """The rep a Reassign menu's choice names; Refusal if it names none."""
        if not self.rep_chosen:
            raise Refusal(
                "This choice does not name a lead and a rep Handoff knows; nothing was changed."
            )
        return self.choice


def lead_id(value: Any) -> int | None:
    return int(value) if isinstance(value, str) and LEAD_ID.match(value) else None


def parse(body: dict[str, Any]) -> Asked:
    """What `body` asks for; an `Asked()` with no action for what the access table leaves open."""
    kind = body.get("type")
    if kind == "block_actions" and body.get("actions"):
        pressed = body["actions"][0]
        if pressed.get("action_id") == ActionId.INFO_ANSWER:
            channel = (body.get("channel") or {}).get("id")
            return _answer(str(pressed.get("value") or ""), channel)
        found = replace(_press(pressed), ephemeral=_on_ephemeral(body))
        if pressed.get("action_id") in ALERT_CONTROLS:
            return replace(found, alert_ts=_message_ts(body))
        if found.action is Action.RATE:
            return replace(found, post_ts=_message_ts(body))
        return found
    if kind == "view_submission":
        return _submission(body.get("view") or {})
    command = body.get("command")
    if not isinstance(command, str):
        return Asked()
    text = typed(str(body.get("text") or ""))
    if command in ("/sla-report", "/sla-plan"):  # both read the team's history
        return Asked(Action.SLA_REPORT, command=command, text=text)
    if command == "/handoff" and _sets_someone_else_away(body, text):
        return Asked(Action.AWAY_FOR_OTHERS, command=command, text=text)
    if command == "/handoff" and _word(text) == "routing":
        return Asked(Action.ROUTING, command="/handoff routing", text=text)
    return Asked(command=command, text=text)


def _press(pressed: dict[str, Any]) -> Asked:
    action_id = str(pressed.get("action_id", ""))
    if action_id == ActionId.REPORT_SHARE:
        return Asked(Action.SLA_REPORT, choice=str(pressed.get("value") or ""))
    reassign = action_id in (ActionId.REASSIGN, ActionId.LEAD_REASSIGN)
    if reassign and "selected_user" in pressed:
        # The user picker of a large pool: the lead is the block id's number (the alert's
        # `reassign_<lead>`, the lead message's `lead_reassign_<lead>`, or App Home's
        # `home_overdue_<lead>`).
        user = pressed.get("selected_user")
        found = BLOCK_LEAD.search(str(pressed.get("block_id") or ""))
        named = int(found[1]) if found else None
        if not (isinstance(user, str) and USER_ID.match(user)):
            return Asked(Action.REASSIGN, named, rep_chosen=False)
        return Asked(Action.REASSIGN, named, user, rep_chosen=named is not None)
    if reassign:
        option = pressed.get("selected_option")
        value = option.get("value") if isinstance(option, dict) else None
        found = REASSIGN_CHOICE.match(value) if isinstance(value, str) else None
        if found is None:  # still the lead, for the access check, if the value starts with it
            named = lead_id(str(value or "").partition(":")[0])
            return Asked(Action.REASSIGN, named, rep_chosen=False)
        return Asked(Action.REASSIGN, int(found[1]), found[2])
    if action_id.startswith(f"{ActionId.RATE}_"):
        # A rating menu on a closed lead: the option is "<lead id>:<1–5>:<cycle>".
        option = pressed.get("selected_option")
        value = str(option.get("value") or "") if isinstance(option, dict) else ""
        found = RATING_CHOICE.match(value)
        rated = action_id.removeprefix(f"{ActionId.RATE}_")
        if found is None:
            return Asked(Action.RATE, lead_id(value.partition(":")[0]), f"{rated}:")
        shown = int(found[3]) if found[3] else None
        return Asked(Action.RATE, int(found[1]), f"{rated}:{found[2]}", post_cycle=shown)
    for prefix, action in BUTTONS.items():
        if action_id == prefix or action_id.startswith(f"{prefix}_"):
            choice = action_id.removeprefix(f"{prefix}_") if action_id != prefix else ""
            return Asked(action, lead_id(pressed.get("value")), choice)
    return Asked()


def _on_ephemeral(body: dict[str, Any]) -> bool:
    """Whether a press was on an ephemeral message: Slack says so in its container
    (`"is_ephemeral": true`), and only the press's response URL can change that message."""
    container = body.get("container")
    return isinstance(container, dict) and container.get("is_ephemeral") is True


def _message_ts(body: dict[str, Any]) -> str | None:
    """The ts of the channel message a press was on (None in App Home or an ephemeral)."""
    container = body.get("container")
    if not isinstance(container, dict) or container.get("type") != "message":
        return None
    if container.get("is_ephemeral"):
        return None
    ts = container.get("message_ts")
    return ts if isinstance(ts, str) and ts else None


def _answer(value: str, channel: Any) -> Asked:
    """An Answer press (`<lead id>:<question token>`): open to whoever can press it; the
    service checks the channel (bot/domain/info.py)."""
    named, _, question = value.partition(":")
    return Asked(
        None, lead_id(named), question, where=channel if isinstance(channel, str) else None
    )


def _submission(view: dict[str, Any]) -> Asked:
    callback = view.get("callback_id")
    if callback not in (CallbackId.DISPOSE_MODAL, CallbackId.INFO_MODAL, CallbackId.ANSWER_MODAL):
        return Asked()
    action = None if callback == CallbackId.ANSWER_MODAL else Action.DISPOSE
    try:
        meta = json.loads(view.get("private_metadata") or "{}")
    except ValueError:
        return Asked(action)
    if not isinstance(meta, dict):
        return Asked(action)
    if callback == CallbackId.ANSWER_MODAL:
        return _answer(f"{meta.get('lead_id')}:{meta.get('question')}", meta.get("channel"))
    return Asked(Action.DISPOSE, lead_id(str(meta.get("lead_id"))), str(meta.get("code")))


def _word(text: str) -> str:
    return text.strip().partition(" ")[0].lower()


def _sets_someone_else_away(command: dict[str, Any], text: str) -> bool:
    """`/handoff away|back @someone` where someone is not the caller (mentions escaped or
    not). Only the word after `away`/`back` names whom: a mention in the note ("fri dentist,
    ping @tom") is the note's."""
    words = text.split(maxsplit=2)
    if len(words) < 2 or words[0].lower() not in ("away", "back"):
        return False
    rest = words[1:]
    caller, caller_name = command.get("user_id"), command.get("user_name")
    escaped, plain = ESCAPED_MENTION.fullmatch(rest[0]), PLAIN_MENTION.fullmatch(rest[0])
    if escaped is not None:
        return escaped.group(1) != caller
    return plain is not None and plain.group(1) != caller_name


async def parse_once(
    body: dict[str, Any], context: AsyncBoltContext, next: Callable[[], Awaitable[None]]
) -> None:
    """The first middleware: parse the request into the context for everything after it. A
    payload not shaped as Slack sends it (signed, so from Slack or whoever holds the secret)
    is refused in plain words, and the operator sees what could not be read."""
    try:
        check_shape(body)
        found = parse(body)
    except (TypeError, AttributeError, KeyError, IndexError, ValueError, RecursionError):
        log.warning("a signed Slack request Handoff could not read", exc_info=True)
        raise Refusal("Handoff could not read this request, so nothing was changed.") from None
    context[CONTEXT_KEY] = found
    logs.bind(lead_id=found.lead_id)
    await next()


def check_shape(body: dict[str, Any]) -> None:
    """TypeError unless an interaction carries what Bolt's listener matching reads as Slack
    sends it: each action an object with a text `action_id`, a view an object with a text
    `callback_id` (Bolt's matchers would fail on anything else, after this middleware)."""
    kind = body.get("type")
    if kind == "block_actions":
        actions = body.get("actions")
        if (
            not isinstance(actions, list)
            or not actions
            or not all(
                isinstance(action, dict) and isinstance(action.get("action_id"), str)
                for action in actions
            )
        ):
            raise TypeError("block_actions: each action must be an object with an action_id")
    if kind in ("view_submission", "view_closed"):
        view = body.get("view")
        if not isinstance(view, dict) or not isinstance(view.get("callback_id", ""), str):
            raise TypeError(f"{kind}: the view must be an object with a callback_id")


def asked(context: AsyncBoltContext) -> Asked:
    """The request as `parse_once` read it."""
    found = context.get(CONTEXT_KEY)
    return found if isinstance(found, Asked) else Asked()
