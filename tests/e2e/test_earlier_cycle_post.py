"""The post of a lead's earlier cycle, once the lead came back (from recycling by the sweep, or
re-qualified at intake): updated in place, its controls gone (a pick there could only be
refused) and a line saying it came back as cycle N. And a pick on an old copy of the current
cycle's post (a deleted post posted again) is not called one of an earlier cycle."""

from __future__ import annotations

import copy

import pytest

from bot.cli.stack import LocalStack, TravelClock
from bot.simulator.data import Message
from tests.conftest import lead_payload

ENTERPRISE, OWNER = "C0ENT", "U0REP1"
DEMO = {"type": "demo_request", "title": "Book a demo"}
EARLIER = (
    "This post is of an earlier cycle of this lead: it came back as cycle 2, and the "
    "rating of an earlier cycle stays as it was; nothing was changed."
)


@pytest.fixture
def stack_database_url(database_url: str) -> str:
    return database_url


def menus(message: Message) -> list[str]:
    return [
        str(element.get("action_id"))
        for block in message.blocks
        if block.get("type") == "actions"
        for element in block.get("elements", [])
        if element.get("type") == "static_select"
    ]


async def claimed(stack: LocalStack, external_id: str = "hs-back") -> Message:
    status, answer = await stack.post_lead(lead_payload(external_id))
    assert status == 201, answer
    await stack.settle()
    post = stack.sim.messages(ENTERPRISE)[-1]
    await stack.driver.press(OWNER, "Claim", channel=ENTERPRISE, message_ts=post.ts)
    await stack.settle()
    return post


def with_rating_menus(stack: LocalStack, ts: str) -> Message:
    """The post `ts`, showing the owner's rating menus, as a Slack client still shows it (the
    post is edited later)."""
    shown = stack.sim.message(ENTERPRISE, ts)
    assert shown is not None and menus(shown) == ["lead_rate_fit", "lead_rate_timing"]
    return copy.deepcopy(shown)


async def recycled(stack: LocalStack, clock: TravelClock) -> Message:
    """A lead closed as Unable to contact after its six attempts: its post as it then was."""
    post = await claimed(stack)
    for _ in range(6):
        clock.advance(minutes=30)
        await stack.driver.press(OWNER, "Log email", channel=ENTERPRISE, message_ts=post.ts)
        await stack.settle()
    await stack.driver.press(OWNER, "Unable to contact", channel=ENTERPRISE, message_ts=post.ts)
    await stack.settle()
    return with_rating_menus(stack, post.ts)


async def test_a_recycled_lead_back_in_its_queue_retires_its_first_post(
    stack: LocalStack, clock: TravelClock
) -> None:
    before = await recycled(stack, clock)
    clock.advance(days=31)  # recycle_after: 30d, then the sweep posts it again, cycle 2
    await stack.handoff.sweeper.run(clock())
    await stack.settle()

    first, second = stack.sim.messages(ENTERPRISE)
    assert first.ts == before.ts and second.ts != before.ts
    assert menus(first) == [] and first.buttons() == []  # nothing that could only be refused
    assert "Came back as cycle 2" in first.all_text and f"<#{ENTERPRISE}>" in first.all_text
    assert "Unable to contact" in first.all_text  # the cycle as it ended stays readable
    assert "how good was this lead" not in first.all_text
    assert "Came back" not in second.all_text and "Claim" in str(second.blocks)

    # A Slack client still showing the old menus: refused in words, nothing changed.
    await stack.driver.choose(OWNER, "4 good fit", channel=ENTERPRISE, seen=before)
    await stack.settle()
    assert stack.sim.ephemerals(user=OWNER)[-1].text == EARLIER
    lead = await stack.services.lead(1)
    assert (lead.cycle, lead.fit_rating) == (2, None)


async def test_a_nurtured_lead_re_qualified_at_intake_retires_its_first_post(
    stack: LocalStack, clock: TravelClock
) -> None:
    post = await claimed(stack)
    await stack.driver.press(OWNER, "Bad timing", channel=ENTERPRISE, message_ts=post.ts)
    await stack.settle()
    clock.advance(hours=3)
    again = lead_payload("hs-back", score=95, engagement=[*lead_payload()["engagement"], DEMO])
    status, answer = await stack.post_lead(again)
    assert (status, answer["status"], answer.get("cycle")) == (201, "mql", 2)
    await stack.settle()

    first, second = stack.sim.messages(ENTERPRISE)
    assert first.ts == post.ts and menus(first) == [] and first.buttons() == []
    assert "Came back as cycle 2" in first.all_text
    assert "Book a demo" in second.all_text and "Came back" not in second.all_text


async def test_a_pick_on_an_old_copy_of_the_current_cycle_rates_it(
    stack: LocalStack, clock: TravelClock
) -> None:
    """Cycle 2 closed, its post deleted in Slack and posted again at the next change: a pick on
    the deleted copy (still on someone's screen) is of the current cycle, not an earlier one."""
    await recycled(stack, clock)
    clock.advance(days=31)
    await stack.handoff.sweeper.run(clock())
    await stack.settle()
    second = stack.sim.messages(ENTERPRISE)[-1]
    await stack.driver.press(OWNER, "Claim", channel=ENTERPRISE, message_ts=second.ts)
    await stack.settle()
    await stack.driver.press(OWNER, "Qualified", channel=ENTERPRISE, message_ts=second.ts)
    await stack.settle()
    old_copy = with_rating_menus(stack, second.ts)
    stack.sim.delete_message(ENTERPRISE, second.ts)

    # The first pick's update finds the post deleted: the lead is posted again (cycle 2).
    await stack.driver.choose(OWNER, "3 fair fit", channel=ENTERPRISE, seen=old_copy)
    await stack.settle()
    lead = await stack.services.lead(1)
    assert (lead.cycle, lead.fit_rating) == (2, 3) and lead.message_ts not in (None, second.ts)

    await stack.driver.choose(OWNER, "5 ideal fit", channel=ENTERPRISE, seen=old_copy)
    await stack.settle()
    assert all("earlier cycle" not in e.text for e in stack.sim.ephemerals(user=OWNER))
    assert (await stack.services.lead(1)).fit_rating == 5


ESCALATIONS, ADMIN = "C0ESCALATE", "U0MGR1"


async def test_a_post_retired_while_its_channel_was_archived_is_retired_once_unarchived(
    stack: LocalStack, clock: TravelClock
) -> None:
    """The channel archived when the lead comes back: Slack refuses the new cycle's post
    (chat.postMessage `is_archived`) and the edit of the earlier one (chat.update
    `is_inactive`, "The message cannot be edited within a frozen, archived or deleted
    channel."). Once it is unarchived, the new post comes back and the earlier one is retired,
    once; the managers' alert about the refused edit says it was sent again."""
    before = await recycled(stack, clock)
    stack.sim.archive_channel(ENTERPRISE)
    clock.advance(days=31)
    await stack.handoff.sweeper.run(clock())
    await stack.settle()
    (still,) = stack.sim.messages(ENTERPRISE)
    assert menus(still) == ["lead_rate_fit", "lead_rate_timing"]  # refused: as it was

    assert (await stack.driver.unarchive(ADMIN, ENTERPRISE)).status == 200
    await stack.settle()
    first, second = stack.sim.messages(ENTERPRISE)
    edits = first.edited_count
    await stack.driver.unarchive(ADMIN, ENTERPRISE)  # Slack's retry of the event: once
    await stack.settle()

    assert first.ts == before.ts and second.ts != before.ts
    assert menus(first) == [] and first.buttons() == []
    assert "Came back as cycle 2" in first.all_text and f"<#{ENTERPRISE}>" in first.all_text
    assert "Unable to contact" in first.all_text
    assert first.edited_count == edits  # retired once
    assert "Came back" not in second.all_text and "Claim" in str(second.blocks)
    lead = await stack.services.lead(1)
    assert (lead.cycle, lead.message_ts) == (2, second.ts)

    (edit,) = [m for m in stack.sim.messages(ESCALATIONS) if "is_inactive" in m.all_text]
    text = edit.all_text
    assert "could not update the post of a lead's earlier cycle" in text
    assert "takes messages again" in text
    assert "sent again what it could not send there: the 1 update of the post of a lead's" in text
    (post,) = [m for m in stack.sim.messages(ESCALATIONS) if "is_archived" in m.all_text]
    assert "posted again the 1 lead" in post.all_text and "earlier cycle" not in post.all_text

    # A Slack client still showing the old menus: refused in words, nothing changed.
    await stack.driver.choose(OWNER, "4 good fit", channel=ENTERPRISE, seen=before)
    await stack.settle()
    assert stack.sim.ephemerals(user=OWNER)[-1].text == EARLIER
