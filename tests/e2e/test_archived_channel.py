"""A segment channel archived in Slack: chat.postMessage answers `is_archived` ("Channel has
been archived.", Slack's chat.postMessage reference) for every lead posted there. The managers
hear it in ONE alert per channel and error, updated in place with the count and the latest
lead, not one message per refusal; and once the channel is unarchived (the `channel_unarchive`
event, https://docs.slack.dev/reference/events/channel_unarchive, or, with no event, the next
message Slack takes there), every open lead whose post was given up is posted there again, as
it is now, with its buttons, once. On SQLite and on PostgreSQL: the grouping lives in the
database."""

from __future__ import annotations

import asyncio
import logging
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
import yaml
from sqlalchemy import event
from sqlalchemy.engine import Engine
from sqlalchemy.util import await_only

from bot.cli.stack import LocalStack, TravelClock, start_stack
from bot.domain.policy import Policy
from bot.services.erasure import forget
from bot.simulator.data import Message
from tests.conftest import ROOT, lead_payload

ENTERPRISE, ESCALATIONS = "C0ENT", "C0ESCALATE"
ADMIN = "U0MGR1"


@pytest.fixture
def stack_database_url(database_url: str) -> str:
    return database_url


async def send(stack: LocalStack, first: int, count: int) -> None:
    for index in range(first, first + count):
        status, _ = await stack.post_lead(
            lead_payload(f"hs-{index}", name=f"Person {index}", email=f"p{index}@northwind.example")
        )
        assert status == 201
        await stack.settle()


def alerts(stack: LocalStack) -> list[Message]:
    return stack.sim.messages(ESCALATIONS)


def lead_posts(stack: LocalStack) -> dict[str, list[Message]]:
    """Each lead's posts in the enterprise channel, by its external id (message metadata)."""
    return posts_in(stack, ENTERPRISE)


def posts_in(stack: LocalStack, channel: str) -> dict[str, list[Message]]:
    """Each lead's posts in `channel`, by its external id (message metadata)."""
    seen: dict[str, list[Message]] = {}
    for message in stack.sim.messages(channel):
        meta = message.metadata or {}
        if meta.get("event_type") == "handoff_lead":
            seen.setdefault(str(meta["event_payload"]["external_id"]), []).append(message)
    return seen


def labels(message: Message) -> list[str]:
    return [button["text"]["text"] for _, button in message.buttons()]


async def test_refusals_of_an_archived_channel_make_one_alert_updated_in_place(
    stack: LocalStack,
) -> None:
    stack.sim.archive_channel(ENTERPRISE)

    await send(stack, 1, 5)

    assert lead_posts(stack) == {}
    (alert,) = alerts(stack)  # one, not five
    assert alert.edited_count >= 1  # counted up in place (chat.update)
    text = alert.all_text
    assert "5 messages" in text and f"<#{ENTERPRISE}>" in text and "is_archived" in text
    assert "unarchive it" in text
    assert "Person 5" in text and "/lead hs-5" in text  # the latest lead
    assert stack.sim.calls_to("chat.update")  # in place
    assert [c for c in stack.sim.calls_to("chat.postMessage") if c.channel == ESCALATIONS][1:] == []


async def test_unarchiving_the_channel_posts_every_given_up_lead_once_with_its_buttons(
    stack: LocalStack,
) -> None:
    stack.sim.archive_channel(ENTERPRISE)
    await send(stack, 1, 5)

    response = await stack.driver.unarchive(ADMIN, ENTERPRISE)
    assert response.status == 200
    await stack.settle()
    # Slack retries an event it thinks went unanswered: nothing is posted twice.
    await stack.driver.unarchive(ADMIN, ENTERPRISE)
    await stack.settle()

    posts = lead_posts(stack)
    assert sorted(posts) == [f"hs-{i}" for i in range(1, 6)]
    for external_id, messages in posts.items():
        (post,) = messages
        assert "Claim" in labels(post), external_id
        lead = await stack.services.store.by_external_id(external_id)
        assert lead is not None and lead.message_ts == post.ts
    (alert,) = alerts(stack)
    assert "5 messages" in alert.all_text
    assert "posted again" in alert.all_text and "5 leads" in alert.all_text

    # The lead can be worked from its new post.
    await stack.driver.press("U0REP1", "Claim", channel=ENTERPRISE, message_ts=posts["hs-3"][0].ts)
    await stack.settle()
    lead = await stack.services.store.by_external_id("hs-3")
    assert lead is not None and lead.owner == "U0REP1"


async def test_with_no_event_the_next_post_that_gets_through_brings_the_others_back(
    stack: LocalStack,
) -> None:
    stack.sim.archive_channel(ENTERPRISE)
    await send(stack, 1, 3)
    stack.sim.archive_channel(ENTERPRISE, archived=False)  # Handoff was down: no event

    await send(stack, 4, 1)
    await stack.settle()

    posts = lead_posts(stack)
    assert sorted(posts) == [f"hs-{i}" for i in range(1, 5)]
    assert all(len(messages) == 1 for messages in posts.values())
    (alert,) = alerts(stack)
    assert "3 messages" in alert.all_text and "3 leads" in alert.all_text


async def test_a_new_alert_starts_after_the_channel_was_mended_or_after_a_day(
    stack: LocalStack, clock: TravelClock
) -> None:
    stack.sim.archive_channel(ENTERPRISE)
    await send(stack, 1, 2)
    await stack.driver.unarchive(ADMIN, ENTERPRISE)
    await stack.settle()
    stack.sim.archive_channel(ENTERPRISE)  # archived again: a new problem, a new alert

    await send(stack, 3, 2)

    first, second = alerts(stack)
    assert "2 messages" in first.all_text and "posted again" in first.all_text
    assert "2 messages" in second.all_text and "posted again" not in second.all_text

    clock.advance(hours=25)  # still archived a day later: told again, counted afresh
    await send(stack, 5, 1)
    assert len(alerts(stack)) == 3
    assert "Person 5" in alerts(stack)[2].all_text


async def test_an_erased_lead_is_no_longer_named_in_the_alert(
    stack: LocalStack, clock: TravelClock
) -> None:
    stack.sim.archive_channel(ENTERPRISE)
    await send(stack, 1, 2)
    assert "Person 2" in alerts(stack)[0].all_text

    await forget(stack.services.store, stack.handoff.outbox, "p2@northwind.example", "t", clock())
    await stack.settle()

    (alert,) = alerts(stack)
    assert "2 messages" in alert.all_text
    assert "Person 2" not in alert.all_text and "hs-2" not in alert.all_text


async def test_a_private_channel_unarchived_brings_its_leads_back_too(stack: LocalStack) -> None:
    """A private channel's unarchiving is `group_unarchive` {channel}, with no user."""
    stack.sim.add_channel(ENTERPRISE, private=True)
    stack.sim.archive_channel(ENTERPRISE)
    await send(stack, 1, 2)

    response = await stack.driver.unarchive(ADMIN, ENTERPRISE)
    assert response.status == 200
    await stack.settle()

    assert sorted(lead_posts(stack)) == ["hs-1", "hs-2"]


async def test_the_app_invited_back_to_its_channel_posts_the_refused_leads_at_once(
    stack: LocalStack,
) -> None:
    """The app removed from a private segment channel: Slack refuses its leads' posts
    (`not_in_channel`). Invited back (`/invite @Handoff`), Slack sends `member_joined_channel`
    for the app's own join (docs.slack.dev/reference/events/member_joined_channel): the leads
    it refused are posted there at once, once each, not when the next lead arrives."""
    stack.sim.add_channel(ENTERPRISE, private=True)
    stack.sim.not_in_channel.add(ENTERPRISE)
    await send(stack, 1, 2)
    assert lead_posts(stack) == {}
    (alert,) = alerts(stack)
    assert "not_in_channel" in alert.all_text and "/invite @Handoff" in alert.all_text

    # Someone else joining: the app, still out, hears nothing (the event needs membership).
    assert await stack.driver.invite(ADMIN, ENTERPRISE, "U0REP2") is None

    response = await stack.driver.invite(ADMIN, ENTERPRISE)
    assert response is not None and response.status == 200
    await stack.settle()
    await stack.driver.resend(retry_num=1)  # Slack's retry: nothing twice
    await stack.settle()

    posts = lead_posts(stack)
    assert sorted(posts) == ["hs-1", "hs-2"]
    assert all(len(messages) == 1 for messages in posts.values())
    (alert,) = alerts(stack)
    assert "posted again" in alert.all_text and "2 leads" in alert.all_text


async def test_someone_else_joining_a_channel_the_app_is_in_posts_nothing_again(
    stack: LocalStack,
) -> None:
    """The channel archived, then unarchived while Handoff did not hear it (no event): the
    app is in it, and hears `member_joined_channel` when someone else joins. That is not the
    app's invitation: the leads it refused are not posted on it (the next message that gets
    through there, or the app's own invitation, brings them)."""
    stack.sim.archive_channel(ENTERPRISE)
    await send(stack, 1, 1)
    stack.sim.archive_channel(ENTERPRISE, archived=False)  # unheard

    response = await stack.driver.invite(ADMIN, ENTERPRISE, "U0REP2")
    assert response is not None and response.status == 200
    await stack.settle()
    assert lead_posts(stack) == {}


# --- marketing's feedback channel -------------------------------------------------------------

FEEDBACK, REP = "C0MKTFEED", "U0REP1"


async def worked_and_closed(stack: LocalStack, index: int, label: str, note: str | None) -> None:
    """Lead hs-`index` posted, claimed by the rep, and closed with `label` (through the modal
    with a reason and `note` when it asks for one), all through Slack."""
    await send(stack, index, 1)
    post = lead_posts(stack)[f"hs-{index}"][-1]
    await stack.driver.press(REP, "Claim", channel=ENTERPRISE, message_ts=post.ts)
    await stack.settle()
    await stack.driver.press(REP, label, channel=ENTERPRISE, message_ts=post.ts)
    await stack.settle()
    if note is not None:
        await stack.driver.submit_view(REP, {"reason": "No budget", "note": note})
        await stack.settle()


def feedback_posts(stack: LocalStack) -> list[str]:
    return [message.all_text for message in stack.sim.messages(FEEDBACK)]


async def test_rejections_refused_by_an_archived_marketing_channel_reach_it_once_unarchived(
    stack: LocalStack,
) -> None:
    """SPEC: every rejection is posted to the marketing feedback channel, with its reason and
    note. While that channel is archived Slack refuses them (chat.postMessage `is_archived`);
    once it is unarchived, marketing gets each one, once, in the order they were made, as it
    gets the leads' posts back in a segment channel."""
    stack.sim.archive_channel(FEEDBACK)
    await worked_and_closed(stack, 1, "Not a fit", "Budget frozen until Q3.")
    await worked_and_closed(stack, 2, "Bad timing", None)
    await worked_and_closed(stack, 3, "Not a fit", "Renewed with their vendor.")
    assert feedback_posts(stack) == []
    (alert,) = alerts(stack)  # the managers heard it, once
    assert f"<#{FEEDBACK}>" in alert.all_text and "is_archived" in alert.all_text

    assert (await stack.driver.unarchive(ADMIN, FEEDBACK)).status == 200
    await stack.settle()
    await stack.driver.unarchive(ADMIN, FEEDBACK)  # Slack's retry of the event: nothing twice
    await stack.settle()

    first, second, third = feedback_posts(stack)
    assert "Not a fit" in first and "No budget" in first and "Budget frozen until Q3." in first
    assert "Bad timing" in second and "hs-2" in second
    assert "Not a fit" in third and "Renewed with their vendor." in third
    for text in (first, second, third):
        assert "webinar" in text and "Q4 Pipeline Webinar" in text  # its source and campaign


async def test_with_no_event_the_next_rejection_that_gets_through_brings_the_others_back(
    stack: LocalStack,
) -> None:
    stack.sim.archive_channel(FEEDBACK)
    await worked_and_closed(stack, 1, "Not a fit", "Budget frozen until Q3.")
    stack.sim.archive_channel(FEEDBACK, archived=False)  # Handoff was down: no event

    await worked_and_closed(stack, 2, "Not a fit", "Renewed with their vendor.")
    await stack.settle()

    texts = feedback_posts(stack)
    assert len(texts) == 2
    assert sum("Budget frozen until Q3." in text for text in texts) == 1
    assert sum("Renewed with their vendor." in text for text in texts) == 1


async def test_a_lead_back_in_a_new_cycle_is_not_told_again_as_it_was(
    stack: LocalStack, clock: TravelClock
) -> None:
    """A nurtured lead whose feedback was refused, then sent again with new engagement (a new
    cycle, open in its channel), has no disposition to tell marketing any more: nothing is
    posted for it once the channel is unarchived."""
    stack.sim.archive_channel(FEEDBACK)
    await worked_and_closed(stack, 1, "Bad timing", None)
    again = lead_payload(
        "hs-1",
        name="Person 1",
        email="p1@northwind.example",
        engagement=[{"type": "demo", "title": "Book a demo", "at": "2026-11-24T01:00:00Z"}],
    )
    status, body = await stack.post_lead(again)
    assert status == 201 and body["status"] == "mql", body
    await stack.settle()

    await stack.driver.unarchive(ADMIN, FEEDBACK)
    await stack.settle()

    assert feedback_posts(stack) == []


# --- the weekly reports: marketing's rejection review, the managers' digest ---------------------

DIGEST = "C0REVOPS"
# The example SLA's weekly digest: Mondays 09:00 in Sydney. 2026-W48's is due Mon 30 Nov.
DIGEST_TIME = datetime(2026, 11, 29, 22, 0, tzinfo=UTC)


def reviews(stack: LocalStack) -> list[str]:
    """The weekly rejection reviews in marketing's channel (not the leads' feedback)."""
    return [text for text in feedback_posts(stack) if "Rejections in" in text]


def digests(stack: LocalStack) -> list[str]:
    return [m.all_text for m in stack.sim.messages(DIGEST) if "Weekly SLA digest" in m.all_text]


async def test_the_weekly_rejection_review_refused_while_archived_reaches_marketing_once(
    stack: LocalStack, clock: TravelClock
) -> None:
    """SPEC: every rejection is posted to the marketing feedback channel, and nothing is lost.
    The week's review of them comes due while that channel is archived (chat.postMessage
    `is_archived`): once it is unarchived (channel_unarchive), marketing gets that week's
    review, once, as it was that week's, however late and however often Slack sends the
    event."""
    await worked_and_closed(stack, 1, "Not a fit", "Budget frozen until Q3.")  # in 2026-W48
    stack.sim.archive_channel(FEEDBACK)
    clock.now = DIGEST_TIME
    await stack.handoff.digest()  # the scheduler's weekly job, at its time
    await stack.settle()
    assert reviews(stack) == []
    assert [text for text in digests(stack) if "2026-W48" in text]  # the managers' went
    (alert,) = alerts(stack)
    assert f"<#{FEEDBACK}>" in alert.all_text and "is_archived" in alert.all_text
    # The managers read which message it was, not "a message".
    assert "could not post the rejection review of 2026-W48 in" in alert.all_text

    clock.advance(days=8)  # unarchived the week after next began: still 2026-W48's review
    assert (await stack.driver.unarchive(ADMIN, FEEDBACK)).status == 200
    await stack.settle()
    await stack.driver.unarchive(ADMIN, FEEDBACK)  # Slack's retry of the event: nothing twice
    await stack.settle()

    (review,) = reviews(stack)
    assert "Rejections in 2026-W48" in review and "2026-W49" not in review
    assert "*webinar* · Q4 Pipeline Webinar: No budget" in review
    assert "takes messages again" in alerts(stack)[0].all_text


async def test_with_no_event_the_next_rejection_that_gets_through_brings_the_review_back(
    stack: LocalStack, clock: TravelClock
) -> None:
    await worked_and_closed(stack, 1, "Not a fit", "Budget frozen until Q3.")
    stack.sim.archive_channel(FEEDBACK)
    clock.now = DIGEST_TIME
    await stack.handoff.digest()
    await stack.settle()
    stack.sim.archive_channel(FEEDBACK, archived=False)  # Handoff was down: no event

    await worked_and_closed(stack, 2, "Not a fit", "Renewed with their vendor.")
    await stack.settle()

    (review,) = reviews(stack)
    assert "Rejections in 2026-W48" in review
    assert sum("Renewed with their vendor." in text for text in feedback_posts(stack)) == 1


async def digest_while_out_of_its_channel(stack: LocalStack, clock: TravelClock) -> None:
    """A lead closed, then the weekly digest's time while the app is out of its private
    digest channel (Slack refuses the post and its charts: `not_in_channel`)."""
    stack.sim.add_channel(DIGEST, private=True)
    stack.sim.not_in_channel.add(DIGEST)
    await worked_and_closed(stack, 1, "Not a fit", None)
    clock.now = DIGEST_TIME
    await stack.handoff.digest()
    await stack.settle()


async def test_a_digest_refused_while_the_app_was_out_of_its_channel_comes_back_with_its_charts(
    stack: LocalStack, clock: TravelClock
) -> None:
    """The managers' weekly digest to a private channel the app was removed from: the post
    and its charts are refused (`not_in_channel`: chat.postMessage "Cannot post user messages
    to a channel they are not in.", files.completeUploadExternal "User/bot membership is
    required for the specified channel."). Once the app is invited back, the first message
    there that gets through (next week's digest) brings that week's digest back, once, as it
    was, with its charts."""
    await digest_while_out_of_its_channel(stack, clock)
    assert digests(stack) == [] and stack.sim.files(DIGEST) == []
    (alert,) = alerts(stack)
    assert "3 messages" in alert.all_text and "not_in_channel" in alert.all_text
    # The post, then its charts: the latest names the report it belongs to.
    assert "The latest: Handoff could not upload a chart of the weekly digest of 2026-W48." in (
        alert.all_text
    )

    stack.sim.not_in_channel.discard(DIGEST)  # /invite @Handoff while Handoff was down: no event
    clock.now = DIGEST_TIME + timedelta(days=7)
    await stack.handoff.digest()
    await stack.settle()

    posted = digests(stack)
    assert sum("Weekly SLA digest · 2026-W49" in text for text in posted) == 1
    (w48,) = [text for text in posted if "Weekly SLA digest · 2026-W48" in text]
    assert "1 MQL posted" in w48  # that week's numbers, as they were meant
    assert len(stack.sim.files(DIGEST)) == 4  # two charts each week, each once
    assert len(reviews(stack)) == 2  # marketing's channel took both weeks' reviews


def manifest_scopes_but(missing: str) -> list[str]:
    """The bot scopes manifest.yaml asks for, but `missing` (an admin declined it)."""
    manifest = yaml.safe_load((ROOT / "manifest.yaml").read_text())
    return [scope for scope in manifest["oauth_config"]["scopes"]["bot"] if scope != missing]


async def test_a_digest_refused_while_the_app_was_out_comes_back_when_it_is_invited(
    stack: LocalStack, clock: TravelClock
) -> None:
    """The same digest, but the app's invitation is heard (`member_joined_channel` for the app
    itself): the week's digest and its charts reach the channel at once, not a week later
    with the next digest."""
    await digest_while_out_of_its_channel(stack, clock)

    invited = await stack.driver.invite(ADMIN, DIGEST)
    assert invited is not None and invited.status == 200
    await stack.settle()

    (w48,) = digests(stack)
    assert "Weekly SLA digest · 2026-W48" in w48 and "1 MQL posted" in w48
    assert len(stack.sim.files(DIGEST)) == 2
    (alert,) = alerts(stack)
    assert "takes messages again" in alert.all_text


async def test_charts_refused_for_want_of_membership_wait_for_an_upload_not_each_post(
    stack: LocalStack, clock: TravelClock
) -> None:
    """The digest channel is public and the app is not in it, without `channels:join`: the
    digest posts (chat:write.public) but its charts are refused (files.completeUploadExternal
    `not_in_channel`: "User/bot membership is required for the specified channel."). A post
    getting through says nothing of membership: the refused charts are not uploaded again,
    to be refused again, at each week's digest (each copy refused, copied again at the next,
    one more a week). Once the app is invited, the first chart that gets through brings each
    refused chart back, once."""
    stack.sim.scopes = manifest_scopes_but("channels:join")
    stack.sim.add_channel(DIGEST)
    stack.sim.not_in_channel.add(DIGEST)
    await worked_and_closed(stack, 1, "Not a fit", None)
    for week in range(3):
        clock.now = DIGEST_TIME + timedelta(days=7 * week)
        await stack.handoff.digest()
        await stack.settle()
    assert len(digests(stack)) == 3 and stack.sim.files(DIGEST) == []
    uploads = [row for row in await stack.handoff.outbox.rows.rows() if row["kind"] == "upload"]
    assert len(uploads) == 6  # two charts a week, each tried once: no copies refused again

    stack.sim.not_in_channel.discard(DIGEST)  # /invite @Handoff
    clock.now = DIGEST_TIME + timedelta(days=21)
    await stack.handoff.digest()
    await stack.settle()
    assert len(stack.sim.files(DIGEST)) == 8  # every week's two charts, each once


async def test_the_review_and_the_rejections_refused_after_it_come_back_in_their_order(
    stack: LocalStack, clock: TravelClock
) -> None:
    """Marketing's channel archived: the week's rejection review is refused on Monday, then a
    rejection of that Tuesday. Unarchived, marketing reads them as they were made: the week's
    review, then Tuesday's rejection (not the rejection first, then last week's review)."""
    await worked_and_closed(stack, 1, "Not a fit", "Budget frozen until Q3.")  # in 2026-W48
    stack.sim.archive_channel(FEEDBACK)
    clock.now = DIGEST_TIME
    await stack.handoff.digest()
    await stack.settle()
    clock.now = DIGEST_TIME + timedelta(days=1)
    await worked_and_closed(stack, 2, "Not a fit", "Renewed with their vendor.")
    assert feedback_posts(stack)[1:] == []  # lead 1's rejection went before the archive

    assert (await stack.driver.unarchive(ADMIN, FEEDBACK)).status == 200
    await stack.settle()

    review, rejection = feedback_posts(stack)[1:]
    assert "Rejections in 2026-W48" in review
    assert "Renewed with their vendor." in rejection


MONTHLY_TIME = datetime(2026, 11, 30, 22, 0, tzinfo=UTC)  # Tue 1 Dec 09:00 AEDT


async def test_a_monthly_digest_refused_is_named_in_the_alert_and_in_what_came_back(
    stack: LocalStack, clock: TravelClock
) -> None:
    """The managers' monthly digest comes due while the app is out of its private channel
    (`not_in_channel`, its post and its charts): the managers' alert names the month's digest
    it could not send, not "a message"; once the app is back and the week's digest gets
    through, it says it sent that month's digest and its charts again."""
    stack.sim.add_channel(DIGEST, private=True)
    stack.sim.not_in_channel.add(DIGEST)
    await worked_and_closed(stack, 1, "Not a fit", None)  # in November
    clock.now = MONTHLY_TIME
    await stack.handoff.monthly_digest()
    await stack.settle()
    (alert,) = alerts(stack)
    text = alert.all_text
    assert f"<#{DIGEST}>" in text and "3 messages" in text and "not_in_channel" in text
    assert "The latest: Handoff could not upload a chart of the monthly digest of 2026-11." in text

    stack.sim.not_in_channel.discard(DIGEST)  # /invite @Handoff
    await stack.handoff.digest()  # Monday's weekly digest, still due: it gets through
    await stack.settle()

    posted = [m.all_text for m in stack.sim.messages(DIGEST)]
    assert sum("Monthly SLA digest · 2026-11" in text for text in posted) == 1
    (alert,) = alerts(stack)
    assert "sent again what it could not send there: the monthly digest of 2026-11 and the 2 " in (
        alert.all_text
    )


# --- the alert says what came back --------------------------------------------------------------


async def test_the_mended_alert_says_each_kind_sent_again_to_marketing_with_its_count(
    stack: LocalStack, clock: TravelClock
) -> None:
    """Marketing's channel archived: two rejections, a lead put back in nurture and the week's
    rejection review are refused. Once it is unarchived, the managers' one alert says, in
    place, what Handoff sent there again, each kind with its count, so they can tell marketing
    got its feedback; and no lead posts, as none were held."""
    clock.now = DIGEST_TIME
    stack.sim.archive_channel(FEEDBACK)
    await worked_and_closed(stack, 1, "Not a fit", "Budget frozen until Q3.")
    await worked_and_closed(stack, 2, "Bad timing", None)
    await worked_and_closed(stack, 3, "Not a fit", "Renewed with their vendor.")
    await stack.handoff.digest()  # 2026-W48's review, refused too
    await stack.settle()
    (alert,) = alerts(stack)
    assert "sent again" not in alert.all_text

    assert (await stack.driver.unarchive(ADMIN, FEEDBACK)).status == 200
    await stack.settle()
    await stack.driver.unarchive(ADMIN, FEEDBACK)  # Slack's retry of the event: counted once
    await stack.settle()

    assert len(feedback_posts(stack)) == 4
    (alert,) = alerts(stack)  # the same alert, re-rendered in place
    text = alert.all_text
    assert "4 messages" in text and "takes messages again" in text
    assert "sent again what it could not send there: the 2 rejections, " in text
    assert "the 1 lead put back in nurture or recycling" in text
    assert "the rejection review of 2026-W48" in text
    assert "posted again" not in text and "digest" not in text and "chart" not in text


async def test_the_mended_alert_says_the_digest_and_its_charts_came_back(
    stack: LocalStack, clock: TravelClock
) -> None:
    """The managers' digest refused while the app was out of its channel (`not_in_channel`),
    brought back by the next week's: the alert about that channel names the week's digest
    and its charts it sent again; and the segment channel's alert names only its leads."""
    await digest_while_out_of_its_channel(stack, clock)
    stack.sim.not_in_channel.discard(DIGEST)  # /invite @Handoff
    clock.now = DIGEST_TIME + timedelta(days=7)
    await stack.handoff.digest()
    await stack.settle()

    (alert,) = [m for m in alerts(stack) if f"<#{DIGEST}>" in m.all_text]
    text = alert.all_text
    assert "takes messages again" in text
    assert "sent again what it could not send there: the weekly digest of 2026-W48 " in text
    assert "and the 2 report charts." in text
    assert "rejection" not in text and "posted again" not in text

    stack.sim.archive_channel(ENTERPRISE)
    await send(stack, 2, 2)
    await stack.driver.unarchive(ADMIN, ENTERPRISE)
    await stack.settle()
    (alert,) = [m for m in alerts(stack) if f"<#{ENTERPRISE}>" in m.all_text]
    assert "posted again the 2 leads it could not post there" in alert.all_text
    assert "sent again" not in alert.all_text


# --- the segment moved to another channel in sla.yaml --------------------------------------

NEW_ENTERPRISE = "C0ENTNEW"


def enterprise_moved(stack: LocalStack, policy: Policy) -> Policy:
    """sla.yaml with the enterprise segment moved to a new channel (which Slack now has)."""
    segments = [
        s.model_copy(update={"channel": NEW_ENTERPRISE}) if s.name == "enterprise" else s
        for s in policy.segments
    ]
    stack.sim.add_channel(NEW_ENTERPRISE, "sales-enterprise-new")
    return policy.model_copy(update={"segments": segments})


def moved_line(segment: str, new: str, count: int, old: str = ENTERPRISE) -> str:
    """What the old channel's alert says of the leads sla.yaml moved from it."""
    leads = "1 lead" if count == 1 else f"{count} leads"
    return (
        f":arrow_right: sla.yaml moved the `{segment}` segment to <#{new}>: Handoff posts "
        f"there the {leads} it could not post in <#{old}>."
    )


def updates_of(stack: LocalStack, alert: Message) -> int:
    """How many times Handoff edited the alert (chat.update calls that Slack took)."""
    return sum(
        1
        for call in stack.sim.calls_to("chat.update")
        if call.ok and call.channel == ESCALATIONS and call.args.get("ts") == alert.ts
    )


async def test_the_old_channels_alert_says_its_leads_are_now_posted_in_the_new_channel(
    stack: LocalStack, policy: Policy, clock: TravelClock, stack_database_url: str
) -> None:
    """The managers' alert about the archived channel said 3 leads were refused there. Once
    Handoff starts with the segment moved, that alert is updated in place, once, to say the 3
    leads are now posted in the new channel (started twice: not again), and it still counts
    the refusals; a lead erased since is no longer counted; unarchived later, it says the
    channel takes messages again, with no lead posted again there."""
    stack.sim.archive_channel(ENTERPRISE)
    await send(stack, 1, 3)
    (alert,) = alerts(stack)
    assert "3 messages" in alert.all_text and ":arrow_right:" not in alert.all_text
    before = updates_of(stack, alert)

    moved = enterprise_moved(stack, policy)
    for _ in range(2):  # started twice (or two replicas): told once
        again = await start_stack(stack_database_url, moved, clock=clock, sim=stack.sim)
        try:
            await again.settle()
        finally:
            await again.close()

    (alert,) = alerts(stack)
    assert "3 messages" in alert.all_text and "is_archived" in alert.all_text
    assert moved_line("enterprise", NEW_ENTERPRISE, 3) in alert.all_text
    assert updates_of(stack, alert) == before + 1

    # One of them erased since (`handoff forget`): no longer counted.
    await forget(stack.services.store, stack.handoff.outbox, "p2@northwind.example", "t", clock())
    await stack.settle()
    (alert,) = alerts(stack)
    assert moved_line("enterprise", NEW_ENTERPRISE, 2) in alert.all_text

    await stack.driver.unarchive(ADMIN, ENTERPRISE)
    await stack.settle()
    (alert,) = alerts(stack)
    assert moved_line("enterprise", NEW_ENTERPRISE, 2) in alert.all_text
    assert f"<#{ENTERPRISE}> takes messages again." in alert.all_text
    assert "posted again" not in alert.all_text


async def test_segments_moved_from_one_channel_to_several_are_each_told(
    stack: LocalStack, policy: Policy, clock: TravelClock, stack_database_url: str
) -> None:
    """Enterprise and mid-market leads both posted in the archived channel; sla.yaml moves
    each segment to a channel of its own: the one alert says where each segment's leads went,
    with each one's count."""
    shared = policy.model_copy(
        update={
            "segments": [
                s.model_copy(update={"channel": ENTERPRISE}) if s.name == "mid_market" else s
                for s in policy.segments
            ]
        }
    )
    stack.sim.archive_channel(ENTERPRISE)
    first = await start_stack(stack_database_url, shared, clock=clock, sim=stack.sim)
    try:
        for index, employees in ((1, 2400), (2, 2400), (3, 500)):
            company = {"name": "Northwind", "domain": "northwind.example", "employees": employees}
            payload = lead_payload(f"hs-{index}", email=f"p{index}@northwind.example")
            status, _ = await first.post_lead({**payload, "company": company})
            assert status == 201
            await first.settle()
    finally:
        await first.close()
    (alert,) = alerts(stack)
    assert "3 messages" in alert.all_text

    moved = enterprise_moved(stack, shared)
    stack.sim.add_channel("C0MIDNEW", "sales-mid-market-new")
    moved = moved.model_copy(
        update={
            "segments": [
                s.model_copy(update={"channel": "C0MIDNEW"}) if s.name == "mid_market" else s
                for s in moved.segments
            ]
        }
    )
    again = await start_stack(stack_database_url, moved, clock=clock, sim=stack.sim)
    try:
        await again.settle()
    finally:
        await again.close()

    assert sorted(posts_in(stack, NEW_ENTERPRISE)) == ["hs-1", "hs-2"]
    assert sorted(posts_in(stack, "C0MIDNEW")) == ["hs-3"]
    (alert,) = alerts(stack)
    assert moved_line("enterprise", NEW_ENTERPRISE, 2) in alert.all_text
    assert moved_line("mid_market", "C0MIDNEW", 1) in alert.all_text


async def test_leads_refused_by_an_archived_channel_follow_their_segment_to_its_new_channel(
    stack: LocalStack, policy: Policy, clock: TravelClock, stack_database_url: str
) -> None:
    """The refusals alert says "unarchive it or change sla.yaml". Following the second
    advice (the enterprise segment's channel changed to a new one, and Handoff started with
    it), the open leads the archived channel refused are posted in the new channel, once each,
    with their buttons, however often Handoff starts, and not again if the old channel is
    unarchived later."""
    stack.sim.archive_channel(ENTERPRISE)
    await send(stack, 1, 2)
    assert lead_posts(stack) == {}

    moved = enterprise_moved(stack, policy)
    for _ in range(2):  # started twice (or two replicas): nothing twice
        again = await start_stack(stack_database_url, moved, clock=clock, sim=stack.sim)
        try:
            await again.settle()
        finally:
            await again.close()
    await stack.driver.unarchive(ADMIN, ENTERPRISE)  # unarchived later: nothing twice
    await stack.settle()

    assert lead_posts(stack) == {}
    posted = posts_in(stack, NEW_ENTERPRISE)
    assert sorted(posted) == ["hs-1", "hs-2"]
    for external_id, messages in posted.items():
        (post,) = messages
        assert "Claim" in labels(post), external_id
        lead = await stack.services.store.by_external_id(external_id)
        assert lead is not None and lead.message_channel == NEW_ENTERPRISE
        assert lead.message_ts == post.ts


async def test_replicas_starting_at_once_post_each_moved_lead_once(
    stack: LocalStack, policy: Policy, clock: TravelClock, stack_database_url: str
) -> None:
    """Three servers started at once on one PostgreSQL database with the segment moved (a
    rollout): each lead the archived channel refused is posted once in the new channel, and
    the managers' alert about the old channel is updated once to say so."""
    if stack_database_url.startswith("sqlite"):
        pytest.skip("replicas share PostgreSQL; one process owns a SQLite file")
    stack.sim.archive_channel(ENTERPRISE)
    await send(stack, 1, 3)
    before = updates_of(stack, alerts(stack)[0])
    moved = enterprise_moved(stack, policy)
    replicas = await asyncio.gather(
        *(start_stack(stack_database_url, moved, clock=clock, sim=stack.sim) for _ in range(3))
    )
    try:
        await asyncio.gather(*(replica.settle() for replica in replicas))
        for replica in replicas:
            await replica.settle()
    finally:
        for replica in replicas:
            await replica.close()
    posted = posts_in(stack, NEW_ENTERPRISE)
    assert sorted(posted) == ["hs-1", "hs-2", "hs-3"]
    assert all(len(messages) == 1 for messages in posted.values())
    (alert,) = alerts(stack)  # told once, in place
    assert moved_line("enterprise", NEW_ENTERPRISE, 3) in alert.all_text
    assert updates_of(stack, alert) == before + 1


async def test_a_few_hundred_leads_follow_their_segment_each_posted_once(
    stack: LocalStack,
    policy: Policy,
    clock: TravelClock,
    stack_database_url: str,
    caplog: pytest.LogCaptureFixture,
) -> None:
    """300 leads the archived channel refused: a start with sla.yaml as it was posts none
    and logs nothing about them; the start with the segment moved posts each once in the new
    channel, with its buttons, and says so in one log line."""
    stack.sim.archive_channel(ENTERPRISE)
    for first in range(1, 301, 50):  # posted 50 at a time, as a marketing burst would
        answers = await asyncio.gather(
            *(
                stack.post_lead(lead_payload(f"hs-{index}", email=f"p{index}@northwind.example"))
                for index in range(first, first + 50)
            )
        )
        assert all(status == 201 for status, _ in answers)
    await stack.settle()
    assert lead_posts(stack) == {}
    moved = enterprise_moved(stack, policy)

    for sla in (policy, moved):
        with caplog.at_level(logging.WARNING, logger="handoff"):
            again = await start_stack(stack_database_url, sla, clock=clock, sim=stack.sim)
            try:
                await again.settle()
            finally:
                await again.close()
        told = [line for line in caplog.messages if "posted in" in line]
        if sla is policy:
            assert told == [] and posts_in(stack, NEW_ENTERPRISE) == {}
            caplog.clear()

    assert told == [
        f"300 open leads Slack refused in {ENTERPRISE} are posted in {NEW_ENTERPRISE}, their "
        "segment's channel in sla.yaml now"
    ]
    posted = posts_in(stack, NEW_ENTERPRISE)
    assert sorted(posted) == sorted(f"hs-{index}" for index in range(1, 301))
    assert all(len(messages) == 1 for messages in posted.values())
    assert all("Claim" in labels(messages[0]) for messages in posted.values())
    assert lead_posts(stack) == {}


async def test_only_open_leads_follow_their_segment_as_they_are_now(
    stack: LocalStack,
    policy: Policy,
    clock: TravelClock,
    stack_database_url: str,
    caplog: pytest.LogCaptureFixture,
) -> None:
    """Between the refusal and the start with the segment moved, one lead was claimed (from
    App Home or `/lead`), one closed, one erased: the claimed one is posted in the new channel
    as it is (its owner shown), the closed and the erased ones are not posted, and the start's
    log line counts the one posted."""
    stack.sim.archive_channel(ENTERPRISE)
    await send(stack, 1, 3)
    ids = {}
    for external_id in ("hs-1", "hs-2", "hs-3"):
        lead = await stack.services.store.by_external_id(external_id)
        assert lead is not None
        ids[external_id] = lead.id
    await stack.services.claim(ids["hs-1"], "U0REP1", clock())
    await stack.services.claim(ids["hs-2"], "U0REP1", clock())
    await stack.services.dispose(ids["hs-2"], "U0REP1", "qualified", clock())
    await forget(stack.services.store, stack.handoff.outbox, "p3@northwind.example", "t", clock())
    await stack.settle()

    moved = enterprise_moved(stack, policy)
    with caplog.at_level(logging.WARNING, logger="handoff"):
        again = await start_stack(stack_database_url, moved, clock=clock, sim=stack.sim)
    try:
        await again.settle()
    finally:
        await again.close()

    posted = posts_in(stack, NEW_ENTERPRISE)
    assert sorted(posted) == ["hs-1"]
    (post,) = posted["hs-1"]
    assert "U0REP1" in post.all_text and "Claim" not in labels(post)
    assert [line for line in caplog.messages if "posted in" in line] == [
        f"1 open lead Slack refused in {ENTERPRISE} is posted in {NEW_ENTERPRISE}, their "
        "segment's channel in sla.yaml now"
    ]
    (alert,) = alerts(stack)  # the closed and the erased leads are not counted
    assert moved_line("enterprise", NEW_ENTERPRISE, 1) in alert.all_text


async def test_a_lead_erased_while_a_start_moves_it_is_not_posted_in_the_new_channel(
    stack: LocalStack,
    policy: Policy,
    clock: TravelClock,
    stack_database_url: str,
    caplog: pytest.LogCaptureFixture,
) -> None:
    """The person asks to be forgotten (`handoff forget`) while a replica starts with the
    segment moved: the erasure commits between the start's look for the refused leads (the
    lead not erased yet) and its write of their posts. On PostgreSQL (Read Committed) the
    erasure cannot see the post to come, so it drops nothing; the lead must still not be
    posted in the new channel (docs/reliability.md: one erased meanwhile is not posted), not
    even as the erased lead's card, nor counted in the start's log line as posted there."""
    if not stack_database_url.startswith("postgresql"):
        pytest.skip("SQLite runs a start's look and write with no other writer in between")
    stack.sim.archive_channel(ENTERPRISE)
    await send(stack, 1, 2)
    moved = enterprise_moved(stack, policy)
    erased: list[object] = []

    def erased_meanwhile(_conn: Any, _cursor: Any, statement: str, *_: Any) -> None:
        """Right after the start's look (its transaction open): the erasure, to its commit."""
        if not erased and "CASE leads.segment" in statement and "FROM outbox" in statement:
            erased.append(None)
            notifier = stack.handoff.outbox
            erased[0] = await_only(forget(stack.services.store, notifier, "hs-1", "t", clock()))

    event.listen(Engine, "after_cursor_execute", erased_meanwhile)
    try:
        with caplog.at_level(logging.WARNING, logger="handoff"):
            again = await start_stack(stack_database_url, moved, clock=clock, sim=stack.sim)
    finally:
        event.remove(Engine, "after_cursor_execute", erased_meanwhile)
    try:
        await again.settle()
        await stack.settle()
    finally:
        await again.close()

    assert erased and erased[0]  # the erasure ran between the look and the write
    assert sorted(posts_in(stack, NEW_ENTERPRISE)) == ["hs-2"]
    assert len(stack.sim.messages(NEW_ENTERPRISE)) == 1  # nothing of the erased lead
    assert [line for line in caplog.messages if "posted in" in line] == [
        f"1 open lead Slack refused in {ENTERPRISE} is posted in {NEW_ENTERPRISE}, their "
        "segment's channel in sla.yaml now"
    ]
    (alert,) = alerts(stack)  # the erased lead is not counted among the leads posted there
    assert moved_line("enterprise", NEW_ENTERPRISE, 1) in alert.all_text
