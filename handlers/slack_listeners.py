"""Bolt listeners: buttons, the disposition modal, slash commands and App Home.

Each listener acks, makes one service call and answers. A "no" is a `Refusal` raised by the
service (or the access middleware) and answered in one place, `Listeners.failed`: privately
(or as the press's listener registered: the `/lead` card's pick shows the card again), in the
modal's fields, or in the command's own answer. `register` attaches everything.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Awaitable, Callable, Coroutine
from typing import Any, Protocol

from slack_bolt.async_app import AsyncAck, AsyncApp, AsyncBoltContext, AsyncRespond
from slack_bolt.response import BoltResponse
from slack_sdk.errors import SlackApiError
from slack_sdk.web.async_client import AsyncWebClient
from slack_sdk.webhook.async_client import WebhookResponse

from bot.domain.access import Action
from bot.domain.lead import RATED
from bot.domain.plan import Goal, parse_goal
from bot.domain.refusal import Refusal
from bot.metrics import Metrics
from bot.services.away import Aways
from bot.services.digest import Digests
from bot.services.home import Homes
from bot.services.leads import Done, Notifier, Services
from bot.services.people import People
from bot.services.plan import Plans
from bot.services.reports import Reports
from bot.services.routing import routing_answer
from bot.services.slack_events import Channels
from bot.slack import alert_views, info_views, lead_views, plan_view, report_views, sla_view
from bot.slack.blocks import Message
from bot.slack.ids import ActionId, CallbackId
from bot.slack.publisher import Clock, NoSlackAnswer, SlackPublisher
from bot.slack.text import as_mrkdwn, as_plain, escape
from bot.traffic import Traffic
from handlers import authorize
from handlers.context import asked, parse_once

log = logging.getLogger("handoff.handlers")

HELP = (
    "*Handoff* runs the marketing–sales SLA in Slack.\n"
    "• Press *Claim* on a lead in your segment channel, log attempts with the buttons, "
    "and close it with a disposition.\n"
    "• `/lead &lt;email or external id&gt;`: a lead and its timeline\n"
    "• `/sla`: the SLA on one page\n"
    "• `/sla-report [week|month|quarter|last-week|last-month|last-quarter|YYYY-Www|YYYY-MM|"
    "YYYY-Qn|YYYY-MM-DD..YYYY-MM-DD] [segment]`: the SLA's numbers for a week (the default), "
    "a month, a quarter or a range of days\n"
    "• `/sla-plan &lt;revenue goal&gt; [per month|quarter]`: the MQLs a week a revenue goal needs\n"
    "• `/handoff away [until] [note]`: new leads skip you until then (`fri`, "
    "`2026-12-24`, `tomorrow`, `3d`; alone, until you're back); `/handoff back` when "
    "you're back. A manager adds "
    "`@rep` to set it for a rep\n"
    "• `/handoff routing|help`"
)
OUT_OF_DATE = "This form is out of date."
# A failure may come after the database took the change (the connection lost on its commit's
# answer, or on the lead read back after it): the words may not say "nothing was changed".
SORRY = (
    "Something went wrong on our side, so this may not have gone through. Check before you try "
    "again."
)
TOO_LATE = (
    "Slack closed the form before Handoff could open it (it took too long); nothing was "
    "changed. Press the button again."
)
NOT_OPENED = (
    "Slack did not open the form (it answered with an error); nothing was changed. Press the "
    "button again in a moment."
)
# Slack's answer did not come through (a dropped connection, a proxy's page, a trigger our own
# retry found "already exchanged in a previous call"): the form may be open.
UNSURE = (
    "Handoff could not tell whether Slack opened the form; nothing was changed. If the form "
    "is not open, press the button again."
)
SHARE_TOO_LATE = (
    "Slack no longer took the report you shared (it took too long to build), so nothing was "
    "posted. If you still want it in the channel, press *Share to channel* again."
)
# views.open: a trigger_id is good for 3 seconds (expired_trigger_id), once: Handoff opens one
# form a press, so `exchanged_trigger_id` ("already exchanged in a previous call") is its own
# earlier try, retried by the client after its answer was lost, or the press delivered twice.
LATE_TRIGGER = "expired_trigger_id"
USED_TRIGGER = "exchanged_trigger_id"
# A response_url takes 5 posts within 30 minutes of the interaction; after that Slack answers
# 404 (`expired_url`, `used_url`): https://docs.slack.dev/interactivity/handling-user-interaction
# ("Message responses"). A private answer it refuses goes to the person's DM with Handoff.
GONE_URL = 404


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


async def answer(
    respond: AsyncRespond, message: Message, response_type: str = "ephemeral"
) -> WebhookResponse:
    """A rendered message through a request's response URL (privately, or to its channel)."""
    return await respond(
        text=message.text,
        blocks=message.blocks,
        response_type=response_type,
        replace_original=False,
    )


# How a refused press is answered: (its respond, its context, the refusal as Slack text).
RefusalAnswer = Callable[[AsyncRespond, AsyncBoltContext, str], None]


class SlackToken(Protocol):
    """The delivery worker, told that Slack refuses the bot token, or that someone opened the
    Home tab (bot/slack/outbox.py)."""

    def refuse_token(self, why: str) -> None: ...

    def home_tab_opened(self) -> None: ...


class Listeners:
    """Every listener, over the running use cases; `register` attaches them to the app."""

    def __init__(
        self,
        services: Services,
        plans: Plans,
        reports: Reports,
        digests: Digests,
        homes: Homes,
        publisher: SlackPublisher,
        metrics: Metrics,
        clock: Clock,
        aways: Aways | None = None,
        traffic: Traffic | None = None,
        people: People | None = None,
        token: SlackToken | None = None,
        channels: Channels | None = None,
    ) -> None:
        self.services, self.plans, self.reports = services, plans, reports
        self.token = token
        self.aways, self.people, self.channels = aways, people, channels
        self.traffic = traffic or Traffic()  # Slack's requests: a report's answer lets them first
        self.digests, self.homes = digests, homes
        self.publisher, self.metrics, self.clock = publisher, metrics, clock
        # A press's own answer to its refusal, by action id (`register`); else `refused_privately`.
        self.refusal_answers: dict[str, RefusalAnswer] = {}

    # --- answering ------------------------------------------------------------------------------

    def tell(self, respond: AsyncRespond, message: str) -> None:
        """A private answer (Slack text), off the request path: the ack goes back first."""
        self.publisher.spawn(
            respond(text=message, response_type="ephemeral", replace_original=False),
            "answer privately",
        )

    def open_modal(
        self,
        client: AsyncWebClient,
        body: dict[str, Any],
        respond: AsyncRespond,
        view: dict[str, Any],
        what: str,
    ) -> None:
        """Open a modal on the press's trigger_id, on its own task (not queued). Slack takes a
        trigger_id once and for 3 seconds: when Handoff was too slow (a slow database), the
        person is told privately to press again instead of seeing nothing happen; so they are
        when Slack refused it for any other reason (its `internal_error`): a press must never
        seem to do nothing. When Slack's answer was lost (a dropped connection, a proxy's page,
        the trigger used by the client's own retry), the form may be open: they hear that
        Handoff could not tell, and to press again if it is not."""

        async def opening() -> None:
            try:
                await client.views_open(trigger_id=body["trigger_id"], view=view)
            except Exception as error:
                refused = isinstance(error, SlackApiError) and not isinstance(error, NoSlackAnswer)
                code = error.response.get("error") if isinstance(error, SlackApiError) else None
                if code == LATE_TRIGGER:
                    said = TOO_LATE
                elif refused and code != USED_TRIGGER:
                    said = NOT_OPENED  # Slack's own answer: it did not open the form
                else:
                    said = UNSURE
                await respond(text=said, response_type="ephemeral", replace_original=False)
                raise  # still logged and counted as Slack's refusal

        self.publisher.open_modal(opening(), what)

    def later(
        self,
        respond: AsyncRespond,
        work: Coroutine[Any, Any, None],
        what: str,
        client: AsyncWebClient | None = None,
        user: str = "",
    ) -> None:
        """Answer after the ack (reports, plans): a refusal on the way is told privately."""

        async def run() -> None:
            try:
                await work
            except Refusal as refused:
                said = Message(text=as_mrkdwn(refused.message), blocks=[])
                await self.privately(respond, said, client, user)

        self.publisher.spawn(run(), what)

    async def privately(
        self,
        respond: AsyncRespond,
        message: Message,
        client: AsyncWebClient | None = None,
        user: str = "",
        in_dm: Message | None = None,
    ) -> None:
        """A private answer through the request's response URL; when Slack no longer takes it
        (404: older than 30 minutes, as a report built behind a busy worker may be, or used 5
        times), in the person's DM with Handoff (chat.postMessage to their user id), so the
        answer they waited for is not lost (`in_dm`: the answer as the DM shows it, if not
        the same)."""
        sent = await answer(respond, message)
        if not isinstance(sent, WebhookResponse) or sent.status_code < 400:
            return
        body = str(sent.body)[:100]
        if sent.status_code == GONE_URL and client is not None and user:
            log.warning("Slack refused the response URL (%s); answering in the DM", body)
            dm = in_dm or message
            await client.chat_postMessage(channel=user, text=dm.text, blocks=dm.blocks or None)
            return
        self.refused(sent)

    def refused(self, sent: WebhookResponse) -> None:
        """Slack refused a post to a response URL for good: counted and logged, as the
        publisher does for its other answers."""
        self.metrics.inc("slack_errors_total")
        log.error("Slack refused an answer: %d %s", sent.status_code, str(sent.body)[:100])

    async def failed(
        self,
        error: Exception,
        body: dict[str, Any],
        ack: AsyncAck,
        context: AsyncBoltContext,
        respond: AsyncRespond | None,
    ) -> BoltResponse:
        """The one error path: a Refusal is answered where the person is (a command's answer,
        the modal's fields, or a press's answer: `refusal_answers`, else privately); anything
        else is logged and apologised for.

        A refusal's words are plain: a message shows them through `as_mrkdwn` (escaped, its
        mentions live); a modal's field errors are plain text already."""
        if not isinstance(error, Refusal):
            log.exception("a Slack request failed", exc_info=error)
            return await self.sorry(body, ack, respond)
        if asked(context).action is Action.CLAIM:
            self.metrics.inc("claims_refused_total")
        if body.get("type") == "view_submission":  # plain text: mentions as @name
            errors = error.fields or {_first_input(body): error.message}
            names = self.services.names
            plain = {field: as_plain(words, names) for field, words in errors.items()}
            return await ack(response_action="errors", errors=plain)
        if body.get("command"):
            return await ack(text=as_mrkdwn(error.message), response_type="ephemeral")
        if respond is not None and (body.get("response_url") or in_home(body)):
            answering = self.refusal_answers.get(_pressed(body), self.refused_privately)
            answering(respond, context, as_mrkdwn(error.message))
        return await ack()

    def refused_privately(
        self, respond: AsyncRespond, context: AsyncBoltContext, refusal: str
    ) -> None:
        """How a refused press is answered unless its listener registered its own: privately."""
        self.tell(respond, refusal)

    async def sorry(
        self, body: dict[str, Any], ack: AsyncAck, respond: AsyncRespond | None
    ) -> BoltResponse:
        """A failure on Handoff's side (not a refusal), answered 200 in plain words where the
        person is. Slack sends a press, a command or a form once and shows its own error to a
        request not answered 200 ("This slash command experienced a problem…", a warning on
        the element, "We had some trouble connecting" on a modal); an event is answered 500,
        so Slack sends it again."""
        kind = body.get("type")
        if kind == "view_submission":  # on the first input; the modal stays open
            return await ack(response_action="errors", errors={_first_input(body): SORRY})
        if body.get("command"):
            return await ack(text=SORRY, response_type="ephemeral")
        if kind == "block_actions":
            if respond is not None and (body.get("response_url") or in_home(body)):
                self.tell(respond, SORRY)
            return await ack()
        return BoltResponse(status=500, body="")

    def settle_alert(self, respond: AsyncRespond, done: Done) -> None:
        """Replace a manager alert with what was done (its menu and button go); a repeat is
        only told to the person."""
        if done.repeated:
            if done.message:
                self.tell(respond, done.message)
            return
        alert = alert_views.settled_alert(done.message)
        self.publisher.spawn(
            respond(text=alert.text, blocks=alert.blocks, replace_original=True),
            "settle the manager alert",
        )

    # --- middleware -------------------------------------------------------------------------------

    async def answer_in_home(
        self, body: dict[str, Any], context: AsyncBoltContext, next: Callable[[], Awaitable[None]]
    ) -> None:
        if in_home(body) and context.user_id:
            notifier = self.services.notifier
            context["respond"] = HomeAnswer(self.homes, notifier, context.user_id, self.clock)
        await next()

    # --- buttons and the modal ------------------------------------------------------------------

    async def claim(self, ack: AsyncAck, context: AsyncBoltContext) -> None:
        await ack()
        done = await self.services.claim(asked(context).lead(), _user(context), self.clock())
        if not done.repeated:
            self.metrics.inc("claims_total")

    async def attempt(self, ack: AsyncAck, context: AsyncBoltContext) -> None:
        await ack()
        press = asked(context)
        done = await self.services.log_attempt(
            press.lead(), _user(context), press.choice, self.clock()
        )
        self.metrics.inc("attempts_total")
        if done.first_touch_minutes is not None:
            self.metrics.first_touch_seconds.observe(60 * done.first_touch_minutes)

    async def dispose(
        self,
        ack: AsyncAck,
        body: dict[str, Any],
        context: AsyncBoltContext,
        respond: AsyncRespond,
        client: AsyncWebClient,
    ) -> None:
        await ack()
        press = asked(context)
        start = await self.services.start_disposition(press.lead(), _user(context), press.choice)
        if start.asks:
            view = info_views.question_modal(start.lead, start.disposition)
            self.open_modal(client, body, respond, view, "open the question modal")
            return
        if start.needs_modal:
            view = lead_views.disposition_modal(start.lead, start.disposition, _user(context))
            self.open_modal(client, body, respond, view, "open the disposition modal")
            return
        done = await self.services.dispose(
            start.lead.id, _user(context), press.choice, self.clock()
        )
        self.metrics.inc("dispositions_total")
        if done.message:
            self.tell(respond, done.message)

    async def submit_disposition(
        self, ack: AsyncAck, body: dict[str, Any], context: AsyncBoltContext
    ) -> None:
        form = asked(context)
        if form.lead_id is None:
            raise Refusal(OUT_OF_DATE, fields={"reason": OUT_OF_DATE})
        values = body["view"].get("state", {}).get("values", {})
        selected = values.get("reason", {}).get("reason", {}).get("selected_option") or {}
        note = values.get("note", {}).get("note", {}).get("value")
        reason = selected.get("value")
        ratings = _ratings(values)
        # A refusal shows on the modal's reason input (see `failed`).
        await self.services.dispose(
            form.lead_id, _user(context), form.choice, self.clock(), reason=reason, note=note
        )
        self.metrics.inc("dispositions_total")
        if ratings:  # optional: the owner's rating of fit and timing, kept as an event too
            await self.rate_quietly(form.lead_id, _user(context), ratings)
        await ack()

    async def rate_quietly(self, lead_id: int, user: str, ratings: dict[str, int]) -> None:
        """The ratings given with a disposition that is saved already: one that cannot be kept
        (the lead changed hands while the modal was open) is skipped, never failing the submit
        (a modal error would keep it open over a disposition that was made); nor does a
        failure on Handoff's side (the database went away after the disposition's commit):
        logged with its traceback, the modal closes on the saved disposition."""
        try:
            await self.services.rate(lead_id, user, ratings, self.clock())
        except Refusal as refused:
            log.info("lead %s: ratings by %s skipped: %s", lead_id, user, refused.message)
        except Exception:
            log.exception("lead %s: ratings by %s not stored", lead_id, user)

    async def submit_question(
        self, ack: AsyncAck, body: dict[str, Any], context: AsyncBoltContext
    ) -> None:
        form = asked(context)
        if form.lead_id is None:
            raise Refusal(OUT_OF_DATE, fields={"question": OUT_OF_DATE})
        question = _input(body, "question")
        # A refusal shows on the modal's question input (see `failed`).
        await self.services.request_info(
            form.lead_id, _user(context), form.choice, question, self.clock()
        )
        await ack()

    async def answer(
        self,
        ack: AsyncAck,
        body: dict[str, Any],
        context: AsyncBoltContext,
        respond: AsyncRespond,
        client: AsyncWebClient,
    ) -> None:
        await ack()
        press, user = asked(context), _user(context)
        lead = await self.services.start_answer(press.lead(), press.choice, user, press.where)
        view = info_views.answer_modal(lead, press.choice, press.where)
        self.open_modal(client, body, respond, view, "open the answer modal")

    async def submit_answer(
        self, ack: AsyncAck, body: dict[str, Any], context: AsyncBoltContext
    ) -> None:
        form = asked(context)
        if form.lead_id is None:
            raise Refusal(OUT_OF_DATE, fields={"answer": OUT_OF_DATE})
        await self.services.answer_info(
            form.lead_id,
            form.choice,
            _user(context),
            _input(body, "answer"),
            self.clock(),
            form.where,
        )
        await ack()

    async def rate(self, ack: AsyncAck, context: AsyncBoltContext, respond: AsyncRespond) -> None:
        await ack()
        chosen = asked(context)
        await self.services.rate(chosen.lead(), _user(context), chosen.rating(), self.clock())

    async def reassign(
        self, ack: AsyncAck, context: AsyncBoltContext, respond: AsyncRespond
    ) -> None:
        await ack()
        choice = asked(context)
        rep = choice.rep()  # a menu's choice names the lead and the rep, or neither
        done = await self.services.reassign(
            choice.lead(), _user(context), rep, self.clock(), alert_ts=choice.alert_ts
        )
        self.settle_alert(respond, done)

    async def lead_reassign(
        self, ack: AsyncAck, context: AsyncBoltContext, respond: AsyncRespond
    ) -> None:
        """The Reassign menu under a lead's message or on its `/lead` card: the post updates in
        place (an effect of the change). Under the post, the manager hears what was done,
        privately; on the card, it is replaced by the lead as it now stands, what was done on
        top (and so is a refusal: `lead_reassign_refused`)."""
        await ack()
        choice, user = asked(context), _user(context)
        done = await self.services.reassign(choice.lead(), user, choice.rep(), self.clock())
        if choice.ephemeral:
            self.show_card_again(respond, choice.lead(), user, done.message)
        elif done.message:
            self.tell(respond, done.message)

    def lead_reassign_refused(
        self, respond: AsyncRespond, context: AsyncBoltContext, refusal: str
    ) -> None:
        """A refused choice on the `/lead` card (the lead closed, or was erased, while it was
        open) is said on the card, shown as the lead now stands, not under a stale one; under
        the lead's post, privately (only the press's response URL can replace the card).
        Registered for its action id in `register`."""
        choice, on_card = asked(context), bool(respond.response_url)
        if on_card and choice.ephemeral and choice.lead_id is not None and context.user_id:
            self.show_card_again(respond, choice.lead_id, str(context.user_id), refusal)
        else:
            self.tell(respond, refusal)

    def show_card_again(
        self, respond: AsyncRespond, lead_id: int, viewer: str, notice: str
    ) -> None:
        """Replace the `/lead` card a press came from with the lead as stored now, `notice`
        (Slack text) on top, off the request path. The card is an ephemeral message:
        chat.update cannot change it ("Ephemeral messages can't be updated in this way"), the
        press's response URL can: "It can also be used to update the original interactive
        message, regardless of whether it was an ephemeral message or not"
        (https://api.slack.com/messaging/modifying). A lead no longer `viewer`'s to see (its
        person erased meanwhile) leaves only the plain-words refusal on the card: what it
        showed goes, and the notice with it (it names the person)."""

        async def replacing() -> None:
            try:
                lead, events, policy = await self.services.card(lead_id, viewer)
            except Refusal as refused:
                card = Message(text=as_mrkdwn(refused.message), blocks=[])
            else:
                names, now = self.services.names, self.clock()
                card = lead_views.lead_card(
                    lead, events, policy, now, viewer, names, notice or None
                )
            sent = await respond(text=card.text, blocks=card.blocks, replace_original=True)
            if isinstance(sent, WebhookResponse) and sent.status_code >= 400:
                self.refused(sent)

        self.publisher.spawn(replacing(), "show the lead card again")

    async def snooze(self, ack: AsyncAck, context: AsyncBoltContext, respond: AsyncRespond) -> None:
        await ack()
        choice = asked(context)
        done = await self.services.snooze(
            choice.lead(), _user(context), self.clock(), alert_ts=choice.alert_ts
        )
        self.settle_alert(respond, done)

    async def report_share(
        self,
        ack: AsyncAck,
        context: AsyncBoltContext,
        respond: AsyncRespond,
        client: AsyncWebClient,
    ) -> None:
        await ack()
        user = _user(context)
        sharing = self.share_report(respond, asked(context).choice, user, client)
        self.later(respond, sharing, "share sla report", client, user)

    async def share_report(
        self,
        respond: AsyncRespond,
        value: str,
        user: str,
        client: AsyncWebClient | None = None,
    ) -> None:
        period, _, segment = value.partition("|")
        report = await self.reports.named(period, self.clock(), segment or None)
        message = report_views.sla_report(
            report, self.services.policy, shared_by=user, names=self.services.names
        )
        sent = await answer(respond, message, "in_channel")
        if sent.status_code == GONE_URL and client is not None and user:
            # Only the press's response URL posts where the report was asked for (the bot may
            # not be in that channel): past its 30 minutes, the person is told in their DM.
            log.warning("Slack refused the shared report's response URL (%s)", sent.body)
            await client.chat_postMessage(channel=user, text=SHARE_TOO_LATE)
        elif sent.status_code >= 400:
            self.refused(sent)

    # --- slash commands ---------------------------------------------------------------------------

    async def lead_command(
        self, ack: AsyncAck, command: dict[str, Any], context: AsyncBoltContext
    ) -> None:
        viewer = str(command.get("user_id") or "")
        lead, events, policy = await self.services.find(asked(context).text, viewer, self.clock())
        names = self.services.names
        card = lead_views.lead_card(lead, events, policy, self.clock(), viewer, names)
        await ack(text=card.text, blocks=card.blocks, response_type="ephemeral")

    async def sla_command(self, ack: AsyncAck) -> None:
        summary = sla_view.sla_summary(self.services.policy)
        await ack(text=summary.text, blocks=summary.blocks, response_type="ephemeral")

    async def handoff_command(
        self, ack: AsyncAck, command: dict[str, Any], context: AsyncBoltContext
    ) -> None:
        word, _, rest = (asked(context).text or "help").strip().partition(" ")
        word = word.lower()
        user = str(command.get("user_id") or "")
        if word in ("away", "back") and self.aways is not None:
            doing = self.aways.away if word == "away" else self.aways.back
            said = await doing(user, rest, self.clock())  # a Refusal is answered by `failed`
            await ack(text=as_mrkdwn(said), response_type="ephemeral")
        elif word == "routing":  # managers only: the access table refused anyone else
            services = self.services
            view = await routing_answer(
                services.store, services.policy, services.availability, self.clock(), rest
            )
            await ack(text=view.text, blocks=view.blocks, response_type="ephemeral")
        elif word in ("help", ""):
            await ack(text=HELP, response_type="ephemeral")
        else:
            unknown = f"I don't know `/handoff {escape(word)}`.\n{HELP}"
            await ack(text=unknown, response_type="ephemeral")

    async def sla_report_command(
        self,
        ack: AsyncAck,
        command: dict[str, Any],
        context: AsyncBoltContext,
        respond: AsyncRespond,
        client: AsyncWebClient,
    ) -> None:
        # Answer Slack at once; the report follows privately through the response URL, which
        # works in DMs and in channels the bot is not in (or in the DM, once it expired).
        await ack()
        text, user = asked(context).text, str(command.get("user_id") or "")
        sending = self.send_report(respond, text, user, client)
        self.later(respond, sending, "sla report", client, user)

    async def send_report(
        self,
        respond: AsyncRespond,
        text: str,
        user: str,
        client: AsyncWebClient | None = None,
    ) -> None:
        now = self.clock()
        report = await self.reports.ask(text, now)
        policy = self.services.policy
        message = report_views.sla_report(report, policy, charts_in_dm=True)
        # In the DM, no Share button: its press would post the report there again.
        in_dm = report_views.sla_report(report, policy, charts_in_dm=True, shareable=False)
        # Like the outbox: a lull in Slack's requests first (a quarter of a second at most), so
        # sending the report never holds up an ack; the report may come a moment later.
        await self.traffic.quiet(at_most=0.25)
        await self.privately(respond, message, client, user, in_dm)
        self.metrics.inc("reports_total")
        await self.digests.charts_to(user, report, now)

    async def sla_plan_command(
        self,
        ack: AsyncAck,
        command: dict[str, Any],
        context: AsyncBoltContext,
        respond: AsyncRespond,
        client: AsyncWebClient,
    ) -> None:
        goal = parse_goal(asked(context).text, currency=self.services.policy.currency)
        # Like /sla-report: answer Slack at once, the plan follows through the response URL.
        await ack()
        user = str(command.get("user_id") or "")
        self.later(respond, self.send_plan(respond, goal, client, user), "sla plan", client, user)

    async def send_plan(
        self,
        respond: AsyncRespond,
        goal: Goal,
        client: AsyncWebClient | None = None,
        user: str = "",
    ) -> None:
        now = self.clock()
        plan = await self.plans.plan(goal, now)
        message = plan_view.revenue_plan(plan, self.services.policy, now)
        await self.privately(respond, message, client, user)

    # --- App Home ---------------------------------------------------------------------------------

    async def home_opened(self, event: dict[str, Any]) -> None:
        # Published by the outbox like every refresh of it: one lane per person keeps a home's
        # publishes in order, and opens and changes in a burst collapse into one.
        if event.get("tab") not in (None, "home"):
            return
        await self.homes.opened(str(event["user"]), self.clock())
        if event.get("tab") == "home" and self.token is not None:
            # Slack sends `tab: home` only when the Home tab is on: homes held while Slack
            # refused them all (`not_enabled`) go now (this one's request joined its waiting one).
            self.token.home_tab_opened()
        self.services.notifier.deliver_soon()

    async def user_changed(self, event: dict[str, Any]) -> None:
        # A member deactivated, made a guest or renamed (users:read): their role and their
        # turn in the rotation follow at once.
        user = event.get("user")
        if self.people is not None and isinstance(user, dict):
            await self.people.changed(user, self.clock())

    async def uninstalled(self, event: dict[str, Any]) -> None:
        """Slack's word that the bot token is gone: `app_uninstalled`, or `tokens_revoked`
        listing bot tokens (by their bot user ids; `oauth` lists user tokens, which Handoff has
        none of). Both need no scope: https://docs.slack.dev/reference/events/tokens_revoked"""
        kind = str(event.get("type") or "")
        revoked = (event.get("tokens") or {}).get("bot") if kind == "tokens_revoked" else True
        if self.token is not None and revoked:
            self.token.refuse_token(f"{kind} event")

    async def channel_unarchived(self, event: dict[str, Any]) -> None:
        # channel_unarchive (channels:read) / group_unarchive (groups:read): the leads whose
        # posts it refused while archived are posted there again.
        channel = event.get("channel")
        if self.channels is not None and isinstance(channel, str) and channel:
            await self.channels.unarchived(channel, self.clock())

    async def channel_joined(self, event: dict[str, Any], context: AsyncBoltContext) -> None:
        # member_joined_channel (channels:read / groups:read), kept by Bolt for the app's own
        # join: invited back to a channel that refused it (`not_in_channel`, or a private
        # channel's `channel_not_found`), what it refused there is sent there again now, not
        # with the next message that gets through. Someone else joining changes nothing.
        channel, user = event.get("channel"), event.get("user")
        if self.channels is None or not isinstance(channel, str) or not channel:
            return
        if user and user == context.bot_user_id:
            await self.channels.joined(channel, self.clock())


def register(app: AsyncApp, listeners: Listeners) -> None:
    """Attach the middleware (parse once, answer in App Home, the access table) and every
    listener to the Bolt app, and the one error path."""
    app.middleware(parse_once)
    app.middleware(listeners.answer_in_home)  # before the guard: it answers in App Home too
    app.middleware(authorize.guard(listeners.services))  # who may: before every listener
    app.action(ActionId.CLAIM.value)(listeners.claim)
    app.action(re.compile(f"^{ActionId.ATTEMPT.value}_"))(listeners.attempt)
    app.action(re.compile(f"^{ActionId.DISPOSE.value}_"))(listeners.dispose)
    app.action(ActionId.REASSIGN.value)(listeners.reassign)
    app.action(ActionId.LEAD_REASSIGN.value)(listeners.lead_reassign)
    listeners.refusal_answers[ActionId.LEAD_REASSIGN.value] = listeners.lead_reassign_refused
    app.action(ActionId.SNOOZE.value)(listeners.snooze)
    app.action(ActionId.REPORT_SHARE.value)(listeners.report_share)
    app.action(re.compile(f"^{ActionId.RATE.value}_"))(listeners.rate)
    app.view(CallbackId.DISPOSE_MODAL.value)(listeners.submit_disposition)
    app.action(ActionId.INFO_ANSWER.value)(listeners.answer)
    app.view(CallbackId.INFO_MODAL.value)(listeners.submit_question)
    app.view(CallbackId.ANSWER_MODAL.value)(listeners.submit_answer)
    app.command("/lead")(listeners.lead_command)
    app.command("/sla")(listeners.sla_command)
    app.command("/handoff")(listeners.handoff_command)
    app.command("/sla-report")(listeners.sla_report_command)
    app.command("/sla-plan")(listeners.sla_plan_command)
    app.event("app_home_opened")(listeners.home_opened)
    app.event("user_change")(listeners.user_changed)
    app.event("app_uninstalled")(listeners.uninstalled)
    app.event("tokens_revoked")(listeners.uninstalled)
    app.event("channel_unarchive")(listeners.channel_unarchived)
    app.event("group_unarchive")(listeners.channel_unarchived)
    app.event("member_joined_channel")(listeners.channel_joined)
    app.error(listeners.failed)


def _pressed(body: dict[str, Any]) -> str:
    """The action id of a press (its first action), or "" (not a press, or not shaped as one:
    the error path also answers payloads `parse_once` could not read)."""
    actions = body.get("actions") if body.get("type") == "block_actions" else None
    first = actions[0] if isinstance(actions, list) and actions else None
    action_id = first.get("action_id") if isinstance(first, dict) else None
    return action_id if isinstance(action_id, str) else ""


def _first_input(body: dict[str, Any]) -> str:
    """The block id of a modal's first input: where a refusal without a field is shown."""
    view = body.get("view")
    blocks = view.get("blocks") if isinstance(view, dict) else None
    found = (
        block.get("block_id")
        for block in (blocks if isinstance(blocks, list) else [])
        if isinstance(block, dict) and block.get("type") == "input"
    )
    return str(next(found, None) or "reason")


def _input(body: dict[str, Any], name: str) -> str | None:
    """A modal's plain text input `name` (its block and action share the name)."""
    values = body["view"].get("state", {}).get("values", {})
    value = values.get(name, {}).get(name, {}).get("value")
    return value if isinstance(value, str) else None


def _ratings(values: dict[str, Any]) -> dict[str, int]:
    """The disposition modal's optional 1–5 menus, as chosen (none chosen: empty)."""
    found = {}
    for rated in RATED:
        option = values.get(rated, {}).get(rated, {}).get("selected_option") or {}
        value = str(option.get("value") or "")
        if value.isdigit():
            found[rated] = int(value)
    return found


def _user(context: AsyncBoltContext) -> str:
    """Who pressed or submitted: Bolt reads it from the payload's `user`."""
    return str(context.user_id or "")
