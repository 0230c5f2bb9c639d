"""Exactly once against Slack's rules, when an answer is lost after Slack did the work.

The outbox looks for a message before it sends it again. Slack's rules decide where it can
look (api.slack.com/methods): `conversations.history` takes conversation ids, not user ids,
lists parent messages only, and answers `not_in_channel` where the bot is not a member, even
in a public channel it may post to with `chat:write.public`; `conversations.replies` lists a
thread; `files.completeUploadExternal` needs membership. The strict simulator enforces them.
"""

from __future__ import annotations

from collections import Counter
from datetime import timedelta

import pytest

from bot.cli.stack import LocalStack, TravelClock
from storage.outbox import OutboxStore
from tests.conftest import lead_payload
from tests.e2e.test_reassign import (
    ENTERPRISE,
    ESCALATIONS,
    MANAGER,
    PEER,
    PEER_NAME,
    alerted,
)
from tests.e2e.test_uploads import CHART, upload, upload_rows


async def failed_rows(stack: LocalStack) -> list[tuple[str, str]]:
    rows = await OutboxStore(stack.handoff.database).rows()
    return [(row["kind"], row["last_error"]) for row in rows if row["state"] == "failed"]


async def test_a_dm_and_a_thread_reply_whose_answers_were_lost_arrive_once(
    stack: LocalStack, clock: TravelClock
) -> None:
    await alerted(stack, clock)
    (post,) = stack.sim.messages(ENTERPRISE)
    notes_before = len(stack.sim.thread(ENTERPRISE, post.ts))
    # Slack posts the reassignment's thread note and the new rep's DM, and both answers are
    # lost on the way back: the outbox must find each before it posts it again.
    stack.sim.inject_connection_drop("chat.postMessage", times=2, after=True)

    await stack.driver.choose(MANAGER, PEER_NAME, channel=ESCALATIONS)
    assert await stack.handoff.outbox.drain(30)

    notes = [m.all_text for m in stack.sim.thread(ENTERPRISE, post.ts)]
    assert len(notes) == notes_before + 1 and f"Reassigned to <@{PEER}>" in notes[-1]
    dms = stack.sim.messages(stack.sim.dm_channel(PEER))
    assert len(dms) == 1 and "claim it there" in dms[0].all_text
    assert stack.handoff.metrics.counts["slack_adopted_total"] == 2  # found, not posted again
    assert await failed_rows(stack) == []
    read = [call.args.get("channel") for call in stack.sim.calls_to("conversations.history")]
    assert PEER not in read  # a DM is read by its conversation id, never by the user id


async def test_a_post_to_a_public_channel_the_bot_is_not_in_arrives_once(
    stack: LocalStack,
) -> None:
    stack.sim.not_in_channel.add(ENTERPRISE)  # public: posting needs only chat:write.public
    stack.sim.inject_connection_drop("chat.postMessage", times=1, after=True)

    status, _ = await stack.post_lead(lead_payload())
    assert status == 201
    assert await stack.handoff.outbox.drain(30)

    posts = Counter(m.metadata and "lead" for m in stack.sim.messages(ENTERPRISE))
    assert posts == Counter({"lead": 1})
    lead = await stack.services.lead(1)
    assert lead.message_ts == stack.sim.messages(ENTERPRISE)[0].ts
    assert stack.sim.calls_to("conversations.join")  # it joined to read the history
    assert await failed_rows(stack) == []


async def test_a_post_is_never_given_up_because_the_history_cannot_be_read(
    stack: LocalStack,
) -> None:
    # A private channel the bot has not been invited to refuses the post itself (reported
    # once, see test_outbox.py); a public channel it cannot join (no channels:join) is posted
    # to after a lost answer: a possible duplicate is better than a lost lead, and the
    # operator is told.
    stack.sim.not_in_channel.add(ENTERPRISE)
    stack.sim.inject("conversations.join", error="missing_scope")
    stack.sim.inject_connection_drop("chat.postMessage", times=1, after=True)

    status, _ = await stack.post_lead(lead_payload())
    assert status == 201
    assert await stack.handoff.outbox.drain(30)

    lead = await stack.services.lead(1)
    assert lead.message_ts is not None
    assert await failed_rows(stack) == []
    (alert,) = stack.sim.messages(ESCALATIONS)
    assert "could not read" in alert.all_text and "/invite @Handoff" in alert.all_text


async def test_a_chart_for_a_public_channel_the_bot_is_not_in_is_shared_once(
    stack: LocalStack,
) -> None:
    stack.handoff.outbox.upload_settle = timedelta(seconds=0.3)
    stack.sim.not_in_channel.add("C0REVOPS")
    stack.sim.inject_connection_drop("files.completeUploadExternal", times=1, after=True)

    await upload(stack, "C0REVOPS", CHART)
    assert await stack.handoff.outbox.drain(30)

    assert len(stack.sim.files("C0REVOPS")) == 1
    assert [row["state"] for row in await upload_rows(stack)] == ["done"]


@pytest.mark.parametrize("answer", ["proxy-page", "slack-503", "dropped"])
async def test_a_join_slack_did_not_answer_is_tried_again_not_taken_for_a_refusal(
    stack: LocalStack, answer: str
) -> None:
    """A public channel the bot is not in: after a lost answer the outbox joins it to read its
    history, and the join is answered by a proxy's page, not Slack's JSON (Slack refused
    nothing: its Web API always answers JSON with `ok`). The join is asked again later, the
    post is found and not posted twice, and the managers are not told to invite the app
    (before: the page was taken as Slack refusing the join, the lead posted a second time
    without checking, and a false 'could not read' alert sent; so for Slack's 503, and a
    dropped connection left the channel taken as joined for the process's life)."""
    stack.sim.not_in_channel.add(ENTERPRISE)  # public: posting needs only chat:write.public
    stack.sim.inject_connection_drop("chat.postMessage", times=1, after=True)
    page = "<html><body>Please sign in to the network</body></html>"
    if answer == "proxy-page":
        join = "conversations.join"
        stack.sim.inject(join, status=200, text=page, content_type="text/html", times=1)
    elif answer == "slack-503":
        stack.sim.inject("conversations.join", status=503, times=1)
    else:
        stack.sim.inject_connection_drop("conversations.join", times=1)

    status, _ = await stack.post_lead(lead_payload())
    assert status == 201
    assert await stack.handoff.outbox.drain(30)

    posts = Counter(m.metadata and "lead" for m in stack.sim.messages(ENTERPRISE))
    assert posts == Counter({"lead": 1})
    assert len(stack.sim.calls_to("conversations.join")) == 2  # asked again, then joined
    assert stack.handoff.metrics.counts["slack_adopted_total"] == 1
    assert stack.sim.messages(ESCALATIONS) == []
    assert await failed_rows(stack) == []
