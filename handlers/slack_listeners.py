"""Bolt listeners: buttons, the disposition modal, slash commands and App Home."""

from __future__ import annotations

import json
import logging
import re
from collections.abc import Awaitable, Callable
from typing import Any

from slack_bolt.async_app import AsyncAck, AsyncApp, AsyncBoltContext, AsyncRespond
from slack_sdk.web.async_client import AsyncWebClient
from slack_sdk.webhook.async_client import WebhookResponse

from bot.domain.lead import Refusal
from bot.domain.plan import Goal, parse_goal
from bot.metrics import Metrics
from bot.services.digest import Digests
from bot.services.home import Homes
from bot.services.leads import Notifier, Outcome, Services
from bot.services.reports import Reports
from bot.slack import alert_views, lead_views, plan_view, report_views, sla_view
from bot.slack.blocks import Message
from bot.slack.ids import ActionId, CallbackId
from bot.slack.publisher import Clock, SlackPublisher
from handlers import authorize

log = logging.getLogger("handoff.handlers")

COMING = {
    "away": "`/handoff away` and `/handoff back` (out-of-office routing)",
    "back": "`/handoff away` and `/handoff back` (out-of-office routing)",
    "routing": "`/handoff routing` (who gets which leads)",
}
HELP = (
    "*Handoff* runs the marketing–sales SLA in Slack.\n"
    "• Press *Claim* on a lead in your segment channel, log attempts with the buttons, "
    "and close it with a disposition.\n"
    "• `/lead &lt;email or external id&gt;`: a lead and its timeline\n"
    "• `/sla`: the SLA on one page\n"
    "• `/sla-report [this-week|last-week|YYYY-Www] [segment]`: the week's numbers\n"
    "• `/sla-plan &lt;revenue goal&gt; [per month|quarter]`: the MQLs a week a revenue goal needs\n"
    "• `/handoff away|back|routing|help`"
)
_LEAD_ID = re.compile(r"^\d{1,18}$")
_REASSIGN_CHOICE = re.compile(r"^(\d{1,18}):([UW][A-Z0-9]{2,20})$")  # "<lead id>:<rep>"


def _lead_id(value: Any) -> int:
    if not isinstance(value, str) or not _LEAD_ID.match(value):
        raise Refusal("This button does not carry a lead Handoff knows; nothing was changed.")
    return int(value)


def _reassign_choice(action: dict[str, Any]) -> tuple[int, str]:
    """The lead and the rep of a Reassign menu's choice."""
    option = action.get("selected_option")
    value = option.get("value") if isinstance(option, dict) else None
    found = _REASSIGN_CHOICE.match(value) if isinstance(value, str) else None
    if found is None:
        raise Refusal(
            "This choice does not name a lead and a rep Handoff knows; nothing was changed."
        )
    return int(found[1]), found[2]


def in_home(body: dict[str, Any]) -> bool:
    """Whether a press came from App Home (no channel or message: the container is the view)."""
    view = body.get("view") or {}
    return (body.get("container") or {}).get("type") == "view" and view.get("type") == "home"


class HomeAnswer(AsyncRespond):
    """The private answer to a press in App Home, which has no response URL, nor a channel for
    an ephemeral message: the person's home is published again with the answer on top. It goes
    through the outbox, behind any refresh of that home already on its way."""

    def __init__(self, homes: Homes, notifier: Notifier, user: str, clock: Clock) -> None:
        super().__init__(response_url=None)
        self.homes, self.notifier, self.user, self.clock = homes, notifier, user, clock

    async def __call__(
        self, text: str | dict[str, Any] = "", *args: Any, **kwargs: Any
    ) -> WebhookResponse:
        said = text.get("text", "") if isinstance(text, dict) else text
        await self.homes.notice(self.user, str(said), self.clock())
        self.notifier.deliver_soon()
        return WebhookResponse(url="views.publish", status_code=200, body="", headers={})


async def answer(respond: AsyncRespond, message: Message, response_type: str = "ephemeral") -> None:
    """A rendered message through a request's response URL (privately, or to its channel)."""
    await respond(
        text=message.text,
        blocks=message.blocks,
        response_type=response_type,
        replace_original=False,
    )


def register(
    app: AsyncApp,
    services: Services,
    publisher: SlackPublisher,
    metrics: Metrics,
    clock: Clock,
    reports: Reports,
    digests: Digests,
    *,
    homes: Homes,
) -> None:
    """Attach every listener to the Bolt app."""

    def tell(respond: AsyncRespond, message: str) -> None:
        # Off the request path: the ack goes back to Slack first.
        publisher.spawn(
            respond(text=message, response_type="ephemeral", replace_original=False),
            "answer privately",
        )

    async def answer_in_home(
        body: dict[str, Any], context: AsyncBoltContext, next: Callable[[], Awaitable[None]]
    ) -> None:
        if in_home(body) and context.user_id:
            context["respond"] = HomeAnswer(homes, services.notifier, context.user_id, clock)
        await next()

    app.middleware(answer_in_home)  # before the guard: its refusals answer in App Home too
    app.middleware(authorize.guard(services, tell, metrics))  # who may: before every listener

    @app.action(ActionId.CLAIM.value)
    async def claim(ack: AsyncAck, body: dict[str, Any], respond: AsyncRespond) -> None:
        await ack()
        try:
            outcome = await services.claim(
                _lead_id(body["actions"][0].get("value")), body["user"]["id"], clock()
            )
        except Refusal as refusal:
            metrics.inc("claims_refused_total")
            tell(respond, refusal.message)
            return
        if not outcome.repeated:
            metrics.inc("claims_total" if outcome.ok else "claims_refused_total")
        if not outcome.ok:
            tell(respond, outcome.message)

    @app.action(re.compile(f"^{ActionId.ATTEMPT.value}_"))
    async def attempt(ack: AsyncAck, body: dict[str, Any], respond: AsyncRespond) -> None:
        await ack()
        action = body["actions"][0]
        kind = action["action_id"].removeprefix(f"{ActionId.ATTEMPT.value}_")
        try:
            await services.log_attempt(
                _lead_id(action.get("value")), body["user"]["id"], kind, clock()
            )
            metrics.inc("attempts_total")
        except Refusal as refusal:
            tell(respond, refusal.message)

    @app.action(re.compile(f"^{ActionId.DISPOSE.value}_"))
    async def dispose(
        ack: AsyncAck, body: dict[str, Any], respond: AsyncRespond, client: AsyncWebClient
    ) -> None:
        await ack()
        action = body["actions"][0]
        code = action["action_id"].removeprefix(f"{ActionId.DISPOSE.value}_")
        user = body["user"]["id"]
        try:
            start = await services.start_disposition(_lead_id(action.get("value")), user, code)
            if start.needs_modal:
                view = lead_views.disposition_modal(start.lead, start.disposition)
                publisher.spawn(
                    client.views_open(trigger_id=body["trigger_id"], view=view),
                    "open the disposition modal",
                )
                return
            outcome = await services.dispose(start.lead.id, user, code, clock())
            metrics.inc("dispositions_total")
            if outcome.message:
                tell(respond, outcome.message)
        except Refusal as refusal:
            tell(respond, refusal.message)

    def settle_alert(respond: AsyncRespond, outcome: Outcome) -> None:
        """Replace a manager alert with what was done (its menu and button go); a repeat is
        only told to the person."""
        if outcome.repeated or not outcome.ok:
            if outcome.message:
                tell(respond, outcome.message)
            return
        alert = alert_views.settled_alert(outcome.message)
        publisher.spawn(
            respond(text=alert.text, blocks=alert.blocks, replace_original=True),
            "settle the manager alert",
        )

    @app.action(ActionId.REASSIGN.value)
    async def reassign(ack: AsyncAck, body: dict[str, Any], respond: AsyncRespond) -> None:
        await ack()
        try:
            lead_id, rep = _reassign_choice(body["actions"][0])
            outcome = await services.reassign(lead_id, body["user"]["id"], rep, clock())
        except Refusal as refusal:
            tell(respond, refusal.message)
            return
        settle_alert(respond, outcome)

    @app.action(ActionId.SNOOZE.value)
    async def snooze(ack: AsyncAck, body: dict[str, Any], respond: AsyncRespond) -> None:
        await ack()
        try:
            lead_id = _lead_id(body["actions"][0].get("value"))
            outcome = await services.snooze(lead_id, body["user"]["id"], clock())
        except Refusal as refusal:
            tell(respond, refusal.message)
            return
        settle_alert(respond, outcome)

    @app.view(CallbackId.DISPOSE_MODAL.value)
    async def submit_disposition(ack: AsyncAck, body: dict[str, Any]) -> None:
        view = body["view"]
        try:
            meta = json.loads(view.get("private_metadata") or "{}")
            lead_id, code = _lead_id(str(meta.get("lead_id"))), str(meta.get("code"))
        except (ValueError, Refusal):
            await ack(response_action="errors", errors={"reason": "This form is out of date."})
            return
        values = view.get("state", {}).get("values", {})
        selected = values.get("reason", {}).get("reason", {}).get("selected_option") or {}
        note = values.get("note", {}).get("note", {}).get("value")
        try:
            outcome = await services.dispose(
                lead_id, body["user"]["id"], code, clock(), reason=selected.get("value"), note=note
            )
        except Refusal as refusal:
            await ack(response_action="errors", errors={"reason": refusal.message})
            return
        if outcome.errors:
            await ack(response_action="errors", errors=outcome.errors)
            return
        metrics.inc("dispositions_total")
        await ack()

    @app.command("/lead")
    async def lead_command(ack: AsyncAck, command: dict[str, Any]) -> None:
        try:
            lead, events, policy = await services.find(command.get("text") or "")
        except Refusal as refusal:
            await ack(text=refusal.message, response_type="ephemeral")
            return
        card = lead_views.lead_card(lead, events, policy, clock())
        await ack(text=card.text, blocks=card.blocks, response_type="ephemeral")

    @app.command("/sla")
    async def sla_command(ack: AsyncAck) -> None:
        summary = sla_view.sla_summary(services.policy)
        await ack(text=summary.text, blocks=summary.blocks, response_type="ephemeral")

    @app.command("/handoff")
    async def handoff_command(ack: AsyncAck, command: dict[str, Any]) -> None:
        word = (command.get("text") or "help").strip().split(" ")[0].lower()
        if word in COMING:
            await ack(text=_coming(COMING[word]), response_type="ephemeral")
        elif word in ("help", ""):
            await ack(text=HELP, response_type="ephemeral")
        else:
            await ack(text=f"I don't know `/handoff {word}`.\n{HELP}", response_type="ephemeral")

    async def send_report(respond: AsyncRespond, text: str, user: str) -> None:
        now = clock()
        try:
            report = await reports.ask(text, now)
        except Refusal as refusal:
            await respond(text=refusal.message, response_type="ephemeral", replace_original=False)
            return
        await answer(respond, report_views.sla_report(report, services.policy, charts_in_dm=True))
        metrics.inc("reports_total")
        await digests.charts_to(user, report, now)

    @app.command("/sla-report")
    async def sla_report_command(
        ack: AsyncAck, command: dict[str, Any], respond: AsyncRespond
    ) -> None:
        # Answer Slack at once; the report follows privately through the response URL, which
        # works in DMs and in channels the bot is not in.
        await ack()
        text, user = str(command.get("text") or ""), str(command.get("user_id") or "")
        publisher.spawn(send_report(respond, text, user), "sla report")

    async def share_report(respond: AsyncRespond, value: str, user: str) -> None:
        week, _, segment = value.partition("|")
        try:
            report = await reports.week(week, clock(), segment or None)
        except Refusal as refusal:
            await respond(text=refusal.message, response_type="ephemeral", replace_original=False)
            return
        message = report_views.sla_report(report, services.policy, shared_by=user)
        await answer(respond, message, "in_channel")

    @app.action(ActionId.REPORT_SHARE.value)
    async def report_share(ack: AsyncAck, body: dict[str, Any], respond: AsyncRespond) -> None:
        await ack()
        value = str(body["actions"][0].get("value") or "")
        publisher.spawn(share_report(respond, value, body["user"]["id"]), "share sla report")

    async def send_plan(respond: AsyncRespond, goal: Goal) -> None:
        now = clock()
        plan = await services.plan(goal, now)
        await answer(respond, plan_view.revenue_plan(plan, services.policy, now))

    @app.command("/sla-plan")
    async def sla_plan_command(
        ack: AsyncAck, command: dict[str, Any], respond: AsyncRespond
    ) -> None:
        try:
            goal = parse_goal(str(command.get("text") or ""))
        except Refusal as refusal:
            await ack(text=refusal.message, response_type="ephemeral")
            return
        # Like /sla-report: answer Slack at once, the plan follows through the response URL.
        await ack()
        publisher.spawn(send_plan(respond, goal), "sla plan")

    @app.event("app_home_opened")
    async def home(event: dict[str, Any]) -> None:
        # Published by the outbox like every refresh of it: one lane per person keeps a home's
        # publishes in order, and opens and changes in a burst collapse into one.
        if event.get("tab") not in (None, "home"):
            return
        await homes.opened(str(event["user"]), clock())
        services.notifier.deliver_soon()

    @app.error
    async def failed(error: Exception, body: dict[str, Any], respond: AsyncRespond | None) -> None:
        log.exception("a Slack request failed", exc_info=error)
        if respond is not None and (body.get("response_url") or in_home(body)):
            tell(respond, "Something went wrong on our side and nothing was changed. Try again?")


def _coming(what: str) -> str:
    return (
        f"{what} is coming in a later release of Handoff. `/handoff help` lists what works today."
    )
