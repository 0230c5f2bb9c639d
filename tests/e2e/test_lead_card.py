"""The private `/lead` card through the real server and the local Slack: what a manager does
from it shows on it. The card is the command's ephemeral answer; a choice made in it reaches
Handoff with `container.is_ephemeral` and a response_url, and only that response_url can change
it: "It can also be used to update the original interactive message, regardless of whether it
was an ephemeral message or not" (https://api.slack.com/messaging/modifying; chat.update
cannot: "Ephemeral messages can't be updated in this way."). So the card a manager reassigns
from is replaced in place by the lead as it now stands; a refusal is told privately and leaves
the card alone. A rep's card offers no control (only managers reassign; the lead's own post
has the rep's buttons). Over HTTP and Socket Mode, on SQLite and on PostgreSQL."""

from __future__ import annotations

from typing import Any

import pytest

from bot.cli.stack import LocalStack, TravelClock
from bot.simulator.data import Ephemeral
from tests.conftest import lead_payload

ENTERPRISE, WHERE = "C0ENT", "C0SIM"  # the lead's channel; where the command is typed
MANAGER, OWNER, PEER = "U0MGR1", "U0REP1", "U0REP2"  # OWNER: the rotation's first pick
OWNER_NAME, PEER_NAME = "maya", "tom"  # as the simulator's Slack names them


@pytest.fixture(params=["http", "socket"])
def transport(request: pytest.FixtureRequest) -> str:
    return str(request.param)


@pytest.fixture
def stack_database_url(database_url: str) -> str:
    return database_url  # the same test on SQLite and on PostgreSQL


async def claimed(stack: LocalStack) -> None:
    """hs-1 posted, and claimed by OWNER from its post."""
    status, _ = await stack.post_lead(lead_payload())
    assert status == 201
    await stack.settle()
    await stack.driver.press(OWNER, "Claim", channel=ENTERPRISE)
    await stack.settle()
    assert (await stack.services.lead(1)).owner == OWNER


def cards(stack: LocalStack, user: str) -> list[Ephemeral]:
    """The `/lead` cards `user` sees where they typed the command (its answers, as now)."""
    shown = stack.sim.ephemerals(user=user, channel=WHERE, commands=True)
    return [note for note in shown if note.source == "command"]


def whispers(stack: LocalStack, user: str) -> list[str]:
    """What Handoff told `user` privately besides the card."""
    return [note.text for note in stack.sim.ephemerals(user=user, channel=WHERE)]


def menu_options(card: Ephemeral) -> list[str]:
    """The names the card's Reassign menu offers (none: no menu)."""
    found: list[str] = []
    for block in card.blocks:
        for element in block.get("elements", []) if block.get("type") == "actions" else []:
            options: list[dict[str, Any]] = element.get("options", [])
            found += [option["text"]["text"] for option in options]
    return found


async def test_a_manager_who_reassigns_from_the_card_sees_the_new_owner_on_it(
    stack: LocalStack, clock: TravelClock
) -> None:
    await claimed(stack)
    answer = await stack.driver.command(MANAGER, "/lead", "hs-1", channel_id=WHERE)
    assert answer.json is not None
    (card,) = cards(stack, MANAGER)
    assert f"claimed by <@{OWNER}>" in card.text
    assert menu_options(card) == [PEER_NAME]
    clock.advance(minutes=3)

    await stack.driver.choose_in_card(MANAGER, PEER_NAME, channel=WHERE)
    await stack.settle()

    assert (await stack.services.lead(1)).owner == PEER
    (now,) = cards(stack, MANAGER)  # the same card, replaced in place: no second card
    assert now.ts == card.ts and now.replaced == 1
    assert f"owner <@{PEER}>, reassigned from <@{OWNER}>" in now.text
    assert f"claimed by <@{OWNER}>" not in now.text
    assert f"reassigned from <@{OWNER}> to <@{PEER}>" in now.all_text  # its timeline
    assert menu_options(now) == [OWNER_NAME]  # PEER has it: the menu offers the other rep
    # What was done is said on the card itself, not in a second private message.
    assert f"🔁 Reassigned to <@{PEER}> from <@{OWNER}> by <@{MANAGER}> at " in now.all_text
    assert whispers(stack, MANAGER) == []
    # The lead's post in its channel says the same.
    (post,) = stack.sim.messages(ENTERPRISE)
    assert f"<@{PEER}>" in post.all_text

    # And again from the card as it now is: back to OWNER.
    await stack.driver.choose_in_card(MANAGER, OWNER_NAME, channel=WHERE)
    await stack.settle()
    assert (await stack.services.lead(1)).owner == OWNER
    (again,) = cards(stack, MANAGER)
    assert again.ts == card.ts and again.replaced == 2
    assert f"owner <@{OWNER}>, reassigned from <@{PEER}>" in again.text
    assert menu_options(again) == [PEER_NAME]


async def test_a_refused_reassignment_is_told_privately_and_the_card_stays(
    stack: LocalStack, clock: TravelClock
) -> None:
    """The lead closed while the manager's card was open: the choice is refused in plain words,
    privately, and the card they chose on is not replaced by the refusal."""
    await claimed(stack)
    await stack.driver.command(MANAGER, "/lead", "hs-1", channel_id=WHERE)
    (card,) = cards(stack, MANAGER)
    shown = (card.text, card.blocks)
    await stack.driver.press(OWNER, "Qualified", channel=ENTERPRISE)
    await stack.settle()

    await stack.driver.choose_in_card(MANAGER, PEER_NAME, channel=WHERE)
    await stack.settle()

    assert (await stack.services.lead(1)).owner == OWNER
    (refused,) = whispers(stack, MANAGER)
    assert "nothing to reassign and nothing was changed" in refused
    (still,) = cards(stack, MANAGER)
    assert (still.ts, still.text, still.blocks, still.replaced) == (card.ts, *shown, 0)


async def test_a_reps_card_offers_nothing_to_act_on(stack: LocalStack) -> None:
    """Only managers reassign (bot/domain/access.py): a rep's card has no control, so nothing
    pressed on it can leave it stale; the rep's buttons are on the lead's post."""
    await claimed(stack)
    await stack.driver.command(PEER, "/lead", "hs-1", channel_id=WHERE)
    (card,) = cards(stack, PEER)
    assert not [block for block in card.blocks if block.get("type") == "actions"]
    with pytest.raises(LookupError):
        await stack.driver.choose_in_card(PEER, OWNER_NAME, channel=WHERE)
