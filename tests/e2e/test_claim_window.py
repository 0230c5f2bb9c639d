"""Claim windows and re-routing through the real server and the local Slack.

The enterprise segment runs `claim: assigned` with a 15-business-minute window: the suggested
owner has a new lead alone, a peer is told privately whose it is and when it opens, the sweep
says on the post (once) when it opens to the pool, and then anyone in the pool may claim. A
manager may always claim, and reassigns a lead from its message or from its `/lead` card; the
rep who lost it hears so privately, and a rep who tries is refused privately.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import timedelta

import pytest

from bot.cli.stack import LocalStack, TravelClock, start_stack
from bot.domain.lead import Stage
from bot.domain.policy import Policy, parse_policy, snapshot
from bot.simulator.data import Message
from tests.conftest import lead_payload

ENTERPRISE = "C0ENT"
MANAGER, OWNER, PEER = "U0MGR1", "U0REP1", "U0REP2"  # OWNER: the rotation's first pick
PEER_NAME = "tom"  # U0REP2 as the simulator's Slack names him
RESERVED = f"Reserved for <@{OWNER}> until"


def assigned(policy: Policy) -> Policy:
    data = snapshot(policy)
    data["segments"][0] |= {"claim": "assigned", "claim_window": "15 business minutes"}
    return parse_policy(data)


@pytest.fixture
async def stack(sqlite_url: str, policy: Policy, clock: TravelClock) -> AsyncIterator[LocalStack]:
    local = await start_stack(sqlite_url, assigned(policy), clock=clock)
    try:
        yield local
    finally:
        await local.close()


async def posted(stack: LocalStack) -> Message:
    status, _ = await stack.post_lead(lead_payload())
    assert status == 201
    await stack.settle()
    (post,) = stack.sim.messages(ENTERPRISE)
    return post


async def sweep(stack: LocalStack, clock: TravelClock) -> int:
    result = await stack.handoff.sweeper.run(clock())
    await stack.settle()
    return result.changed


def private_answers(stack: LocalStack, user: str) -> list[str]:
    return [note.text for note in stack.sim.ephemerals(user=user)]


def the_post(stack: LocalStack) -> Message:
    (post,) = stack.sim.messages(ENTERPRISE)
    return post


async def test_the_suggested_owner_claims_inside_the_window(
    stack: LocalStack, clock: TravelClock
) -> None:
    post = await posted(stack)
    assert RESERVED in post.all_text and "then open to the pool" in post.all_text
    assert (await stack.services.lead(1)).suggested_owner == OWNER

    clock.advance(minutes=5)
    await stack.driver.press(OWNER, "Claim", channel=ENTERPRISE)
    await stack.settle()

    assert private_answers(stack, OWNER) == []
    lead = await stack.services.lead(1)
    assert (lead.owner, lead.stage) == (OWNER, Stage.SAL)
    assert "Reserved for" not in the_post(stack).all_text


async def test_a_peer_is_told_whose_it_is_and_claims_once_it_opens(
    stack: LocalStack, clock: TravelClock
) -> None:
    await posted(stack)
    clock.advance(minutes=10)  # 11:10: still OWNER's alone

    await stack.driver.press(PEER, "Claim", channel=ENTERPRISE)
    await stack.settle()

    (refused,) = private_answers(stack, PEER)
    assert refused.startswith(f"This lead is reserved for <@{OWNER}> until Mon 11:15 AEDT;")
    assert "anyone in the pool can claim it" in refused
    lead = await stack.services.lead(1)
    assert (lead.owner, lead.stage) == (None, Stage.MQL)

    clock.advance(minutes=6)  # 11:16: the window is over; the sweep says so on the post
    edits = the_post(stack).edited_count
    assert await sweep(stack, clock) == 1
    post = the_post(stack)
    assert post.edited_count == edits + 1
    assert "Open to the pool since" in post.all_text and "Reserved for" not in post.all_text
    assert await sweep(stack, clock) == 0  # once
    assert the_post(stack).edited_count == edits + 1
    events = [event.type for event in await stack.services.store.events(1)]
    assert events.count("claim_opened") == 1

    await stack.driver.press(PEER, "Claim", channel=ENTERPRISE)
    await stack.settle()
    assert len(private_answers(stack, PEER)) == 1  # no second refusal
    assert (await stack.services.lead(1)).owner == PEER


async def test_a_manager_claims_inside_the_window(stack: LocalStack, clock: TravelClock) -> None:
    await posted(stack)
    clock.advance(minutes=1)
    await stack.driver.press(MANAGER, "Claim", channel=ENTERPRISE)
    await stack.settle()
    assert private_answers(stack, MANAGER) == []
    assert (await stack.services.lead(1)).owner == MANAGER


async def test_a_manager_reassigns_from_the_lead_message(
    stack: LocalStack, clock: TravelClock
) -> None:
    await posted(stack)
    await stack.driver.press(OWNER, "Claim", channel=ENTERPRISE)
    await stack.settle()
    edits = the_post(stack).edited_count

    await stack.driver.choose(MANAGER, PEER_NAME, channel=ENTERPRISE, action_id="lead_reassign")
    await stack.settle()

    lead = await stack.services.lead(1)
    assert lead.owner == PEER
    post = the_post(stack)
    assert post.edited_count > edits  # updated in place, no second post
    assert f"<@{PEER}>" in post.all_text
    (done,) = private_answers(stack, MANAGER)
    assert done.startswith(f"🔁 Reassigned to <@{PEER}> from <@{OWNER}> by <@{MANAGER}> at ")
    # The audit trail: who moved it, from whom, to whom.
    (moved,) = [e for e in await stack.services.store.events(1) if e.type == "reassigned"]
    assert (moved.actor, moved.data["from"], moved.data["to"]) == (MANAGER, OWNER, PEER)
    # The rep who lost it hears privately; the new owner too.
    (lost,) = stack.sim.messages(stack.sim.dm_channel(OWNER))
    assert f"<@{MANAGER}> reassigned your lead" in lost.all_text
    assert f"to <@{PEER}>" in lost.all_text
    (handed,) = stack.sim.messages(stack.sim.dm_channel(PEER))
    assert "it is yours now" in handed.all_text


async def test_a_rep_cannot_reassign_from_the_lead_message(
    stack: LocalStack, clock: TravelClock
) -> None:
    await posted(stack)
    await stack.driver.press(OWNER, "Claim", channel=ENTERPRISE)
    await stack.settle()
    before = (await stack.services.lead(1), the_post(stack).edited_count)

    await stack.driver.choose(OWNER, PEER_NAME, channel=ENTERPRISE, action_id="lead_reassign")
    await stack.settle()

    assert private_answers(stack, OWNER) == [
        "Sorry, only the sales managers can reassign a lead; nothing was changed."
    ]
    assert (await stack.services.lead(1), the_post(stack).edited_count) == before
    assert stack.sim.messages(stack.sim.dm_channel(PEER)) == []


async def test_a_manager_reassigns_from_the_lead_card(
    stack: LocalStack, clock: TravelClock
) -> None:
    await posted(stack)
    await stack.driver.press(OWNER, "Claim", channel=ENTERPRISE)
    await stack.settle()
    rep_card = await stack.driver.command(PEER, "/lead", "hs-1")
    assert rep_card.json is not None and "lead_reassign" not in str(rep_card.json["blocks"])
    card = await stack.driver.command(MANAGER, "/lead", "hs-1")
    assert card.json is not None

    await stack.driver.choose_in_card(MANAGER, PEER_NAME, channel="C0SIM")
    await stack.settle()

    assert (await stack.services.lead(1)).owner == PEER
    assert f"<@{PEER}>" in the_post(stack).all_text
    # The card chosen on says what was done, on top of the lead as it now is (test_lead_card).
    (shown,) = stack.sim.ephemerals(user=MANAGER, commands=True)
    done = shown.blocks[0]["text"]["text"]
    assert done.startswith(f"🔁 Reassigned to <@{PEER}> from <@{OWNER}> by <@{MANAGER}> at ")
    assert private_answers(stack, MANAGER) == []
    (lost,) = stack.sim.messages(stack.sim.dm_channel(OWNER))
    assert "reassigned your lead" in lost.all_text


async def test_a_reassigned_reservation_follows_the_new_suggested_owner(
    stack: LocalStack, clock: TravelClock
) -> None:
    """Reassigning an unclaimed lead inside its window holds it for the new rep instead, for
    the rest of the window; the rep who lost it is told, and can no longer claim it."""
    await posted(stack)
    await stack.driver.choose(MANAGER, PEER_NAME, channel=ENTERPRISE, action_id="lead_reassign")
    await stack.settle()
    assert f"Reserved for <@{PEER}> until" in the_post(stack).all_text
    (lost,) = stack.sim.messages(stack.sim.dm_channel(OWNER))
    assert "the lead suggested to you" in lost.all_text

    await stack.driver.press(OWNER, "Claim", channel=ENTERPRISE)
    await stack.settle()
    (refused,) = private_answers(stack, OWNER)
    assert refused.startswith(f"This lead is reserved for <@{PEER}> until")
    assert (await stack.services.lead(1)).owner is None


async def test_claim_open_segments_claim_as_before(
    sqlite_url: str, policy: Policy, clock: TravelClock
) -> None:
    """Without `claim: assigned` (the shipped file) anyone in the pool claims at once, and
    the post says nothing of a window."""
    stack = await start_stack(sqlite_url, policy, clock=clock)
    try:
        post = await posted(stack)
        assert "Reserved for" not in post.all_text and "Open to the pool" not in post.all_text
        await stack.driver.press(PEER, "Claim", channel=ENTERPRISE)
        await stack.settle()
        assert (await stack.services.lead(1)).owner == PEER
        clock.advance(minutes=20)
        await sweep(stack, clock)
        assert "claim_opened" not in [e.type for e in await stack.services.store.events(1)]
    finally:
        await stack.close()


async def test_the_window_counts_business_minutes_across_the_night(
    stack: LocalStack, clock: TravelClock
) -> None:
    """A lead that arrives at 16:55 is held for 5 minutes that day and 10 the next morning."""
    clock.advance(hours=5, minutes=55)  # Monday 16:55 in Sydney
    await posted(stack)
    lead = await stack.services.lead(1)
    assert lead.claim_opens_at == clock() + timedelta(hours=16, minutes=15)  # Tue 09:10
    clock.advance(hours=16)  # Tuesday 08:55: still held
    await stack.driver.press(PEER, "Claim", channel=ENTERPRISE)
    await stack.settle()
    assert "reserved for" in private_answers(stack, PEER)[-1]
    clock.advance(minutes=16)  # 09:11
    await sweep(stack, clock)
    assert "Open to the pool since" in the_post(stack).all_text
    await stack.driver.press(PEER, "Claim", channel=ENTERPRISE)
    await stack.settle()
    assert (await stack.services.lead(1)).owner == PEER


async def test_a_lead_offered_to_nobody_mid_window_is_claimed_by_a_rep_back(
    sqlite_url: str, policy: Policy, clock: TravelClock
) -> None:
    """A 75-business-minute window outlasts the 12:00 claim deadline. The rep it is held for
    goes away, and so does everyone else: at 12:01 the lead is offered to nobody. Its post and
    its thread say it is back with the pool, and the rep back at 12:03 claims it (the claim's
    update used to refuse them until 12:15 with "This lead changed a moment ago")."""
    data = snapshot(policy)
    data["segments"][0] |= {"claim": "assigned", "claim_window": "75 business minutes"}
    stack = await start_stack(sqlite_url, parse_policy(data), clock=clock)
    try:
        post = await posted(stack)
        assert f"{RESERVED} <!date^" in post.all_text and "12:15" in post.all_text
        for rep in (OWNER, PEER):
            await stack.driver.command(rep, "/handoff", "away")
        clock.advance(minutes=61)  # 12:01
        assert await sweep(stack, clock) == 1
        post = the_post(stack)
        assert "Open to the pool: nobody to reserve it for" in post.all_text
        assert "Reserved for" not in post.all_text
        (note,) = [m.text for m in stack.sim.thread(ENTERPRISE, post.ts)]
        assert "is back with the enterprise pool" in note

        clock.advance(minutes=2)  # 12:03, inside what was the window
        await stack.driver.command(PEER, "/handoff", "back")
        await stack.driver.press(PEER, "Claim", channel=ENTERPRISE)
        await stack.settle()
        assert private_answers(stack, PEER) == []
        assert (await stack.services.lead(1)).owner == PEER
    finally:
        await stack.close()
