"""A lead's post deleted in Slack (by a rep, by an admin): chat.update of it then answers
`message_not_found` ("No message exists with the requested timestamp.", Slack's chat.update
reference), so Handoff posts the lead again in its channel, once, and tells the managers once."""

from __future__ import annotations

from bot.cli.stack import LocalStack, TravelClock
from bot.services.erasure import forget
from bot.simulator.data import Message
from tests.conftest import lead_payload
from tests.e2e.test_app_home import open_home

ENTERPRISE, ESCALATIONS = "C0ENT", "C0ESCALATE"
REP, MANAGER = "U0REP1", "U0MGR1"


async def deleted_post(stack: LocalStack) -> Message:
    """A hot enterprise lead, posted, then its post deleted in Slack by a person."""
    status, _ = await stack.post_lead(lead_payload())
    assert status == 201
    await stack.settle()
    (post,) = stack.sim.messages(ENTERPRISE)
    stack.sim.delete_message(ENTERPRISE, post.ts)
    assert stack.sim.messages(ENTERPRISE) == []
    return post


async def sweep(stack: LocalStack, clock: TravelClock) -> None:
    await stack.handoff.sweeper.run(clock())
    await stack.settle()


def labels(message: Message) -> list[str]:
    return [button["text"]["text"] for _, button in message.buttons()]


def deletion_alerts(stack: LocalStack) -> list[str]:
    return [m.all_text for m in stack.sim.messages(ESCALATIONS) if "deleted" in m.all_text]


async def test_a_deleted_post_comes_back_at_the_next_change_with_its_buttons(
    stack: LocalStack,
) -> None:
    deleted = await deleted_post(stack)
    await open_home(stack, REP)  # the button in the channel is gone: claim from App Home

    await stack.driver.press_in_view(REP, "Claim")
    await stack.settle()

    (post,) = stack.sim.messages(ENTERPRISE)  # one fresh post, as the lead is now
    assert post.ts != deleted.ts
    assert f"<@{REP}>" in post.all_text and "Log call" in labels(post)
    assert "earlier post" in post.all_text and "deleted" in post.all_text
    lead = await stack.services.lead(1)
    assert (lead.owner, lead.message_channel, lead.message_ts) == (REP, ENTERPRISE, post.ts)
    (alert,) = deletion_alerts(stack)
    assert "Priya Raman" in alert and "posted it again" in alert

    # Later changes edit the new post in place; the managers are not told again.
    await stack.driver.press(REP, "Log call", channel=ENTERPRISE)
    await stack.settle()
    (again,) = stack.sim.messages(ENTERPRISE)
    assert again.ts == post.ts and "Attempts 1/6" in again.all_text
    assert len(deletion_alerts(stack)) == 1
    assert (await stack.services.lead(1)).attempts == 1


async def test_a_deleted_post_is_posted_again_once_when_its_answer_is_lost(
    stack: LocalStack,
) -> None:
    await deleted_post(stack)
    await open_home(stack, REP)
    # Slack posts the lead again, and its answer is lost: the outbox must find it, not post
    # a second copy.
    stack.sim.inject_connection_drop("chat.postMessage", times=1, channel=ENTERPRISE, after=True)

    await stack.driver.press_in_view(REP, "Claim")
    await stack.settle()

    (post,) = stack.sim.messages(ENTERPRISE)
    assert (await stack.services.lead(1)).message_ts == post.ts
    assert stack.handoff.metrics.counts["slack_adopted_total"] == 1  # found, not posted again
    assert len(deletion_alerts(stack)) == 1


async def test_the_sweep_posts_a_deleted_post_again_and_its_notes_follow_it(
    stack: LocalStack, clock: TravelClock
) -> None:
    await deleted_post(stack)  # at 11:00; nobody claims it

    clock.advance(minutes=31)  # 11:31: the claim reminder re-renders the post: it comes back
    await sweep(stack, clock)
    (post,) = stack.sim.messages(ENTERPRISE)
    assert "🟠 First touch due by" in post.all_text and "Claim" in labels(post)
    assert (await stack.services.lead(1)).message_ts == post.ts

    clock.advance(minutes=60)  # 12:31: reassigned; the note goes in the new post's thread
    await sweep(stack, clock)
    await sweep(stack, clock)
    notes = [reply.all_text for reply in stack.sim.thread(ENTERPRISE, post.ts)]
    assert any("Reassigned to <@U0REP2>" in note for note in notes)
    assert [m.ts for m in stack.sim.messages(ENTERPRISE)] == [post.ts]
    assert len(deletion_alerts(stack)) == 1


async def test_an_erased_lead_whose_post_was_deleted_is_not_posted_again(
    stack: LocalStack, clock: TravelClock
) -> None:
    await deleted_post(stack)

    await forget(stack.services.store, stack.handoff.outbox, "hs-1@northwind.example", "t", clock())
    await stack.settle()

    assert stack.sim.messages(ENTERPRISE) == []
    assert deletion_alerts(stack) == []
