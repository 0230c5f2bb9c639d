"""The private `/lead` card through the real server and the local Slack: what a manager does from
it shows on it. The card is the command's ephemeral answer; a choice made in it reaches Handoff
with `container.is_ephemeral` and a response_url, and only that response_url can change it: "It
can also be used to update the original interactive message, regardless of whether it was an
ephemeral message or not" (https://api.slack.com/messaging/modifying; chat.update cannot:
"Ephemeral messages can't be updated in this way."). So the card a manager reassigns from is
replaced in place by the lead as it now stands, and so is one whose choice is refused (the
refusal on top; a person erased meanwhile leaves nothing of theirs on it). A rep's card offers
no control (only managers reassign; the lead's own post has the rep's buttons). Over HTTP and
Socket Mode, on SQLite and on PostgreSQL."""

from __future__ import annotations

import json
from typing import Any

import pytest

from bot.cli.stack import LocalStack, TravelClock
from bot.services.erasure import forget
from bot.simulator.data import Ephemeral
from tests.conftest import lead_payload

ENTERPRISE, WHERE = "C0ENT", "C0SIM"  # the lead's channel; where the command is typed
MANAGER, OWNER, PEER = "U0MGR1", "U0REP1", "U0REP2"  # OWNER: the rotation's first pick
OTHER = "U0MGR2"  # the other manager
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


async def test_a_refused_reassignment_is_said_on_the_card_shown_as_the_lead_now_stands(
    stack: LocalStack, clock: TravelClock
) -> None:
    """The lead closed while the manager's card was open: the choice is refused in plain words
    on the card itself, through the press's response URL (the one way to change an ephemeral
    message, https://api.slack.com/messaging/modifying), and the card shows the lead as it now
    stands: Qualified, no Reassign menu left to pick from, rather than the open lead and its
    menu above a separate refusal that contradicts them."""
    await claimed(stack)
    await stack.driver.command(MANAGER, "/lead", "hs-1", channel_id=WHERE)
    (card,) = cards(stack, MANAGER)
    assert menu_options(card) == [PEER_NAME]
    await stack.driver.press(OWNER, "Qualified", channel=ENTERPRISE)
    await stack.settle()

    await stack.driver.choose_in_card(MANAGER, PEER_NAME, channel=WHERE)
    await stack.settle()

    assert (await stack.services.lead(1)).owner == OWNER
    (now,) = cards(stack, MANAGER)
    assert now.ts == card.ts and now.replaced == 1
    assert "nothing to reassign and nothing was changed" in now.blocks[0]["text"]["text"]
    assert "Qualified" in now.text and menu_options(now) == []
    assert not [block for block in now.blocks if block.get("type") == "actions"]
    assert whispers(stack, MANAGER) == []


async def test_a_card_of_a_lead_erased_meanwhile_keeps_none_of_the_persons_data(
    stack: LocalStack, clock: TravelClock
) -> None:
    """The person was erased (`handoff forget`) while the manager's card still showed them: the
    choice is refused, and the card is emptied of their data, as every message Handoff sent
    about them is (bot/services/erasure.py: "every Slack message Handoff sent about it is
    emptied"), instead of showing it on."""
    await claimed(stack)
    await stack.driver.command(MANAGER, "/lead", "hs-1", channel_id=WHERE)
    (card,) = cards(stack, MANAGER)
    assert "Priya Raman" in card.all_text
    await forget(stack.services.store, stack.handoff.outbox, "hs-1", "test", clock())
    await stack.settle()

    await stack.driver.choose_in_card(MANAGER, PEER_NAME, channel=WHERE)
    await stack.settle()

    (now,) = cards(stack, MANAGER)
    assert now.ts == card.ts and now.replaced == 1
    assert "erased at the person's request" in now.all_text
    shown = json.dumps([now.text, now.blocks]).lower()
    for value in ("Priya", "Raman", "northwind", "+61 2 5550 1234", "VP Revenue", "hs-1"):
        assert value.lower() not in shown, value
    assert whispers(stack, MANAGER) == []


async def test_a_card_stale_after_another_managers_reassignment_shows_who_has_it(
    stack: LocalStack, clock: TravelClock
) -> None:
    """Another manager gave the lead to PEER from its post while this manager's card still
    showed OWNER: picking PEER on the stale card changes nothing, says so, and the card now
    shows PEER as the owner, the other manager's move in its timeline, and a menu offering
    OWNER. Showing the card again is not a look-up: its timeline still counts one."""
    await claimed(stack)
    await stack.driver.command(MANAGER, "/lead", "hs-1", channel_id=WHERE)
    await stack.driver.choose(OTHER, PEER_NAME, channel=ENTERPRISE, action_id="lead_reassign")
    await stack.settle()
    assert (await stack.services.lead(1)).owner == PEER

    await stack.driver.choose_in_card(MANAGER, PEER_NAME, channel=WHERE)
    await stack.settle()

    (now,) = cards(stack, MANAGER)
    assert now.replaced == 1
    assert f"<@{PEER}> owns this lead already; nothing was changed." in now.all_text
    assert f"owner <@{PEER}>, reassigned from <@{OWNER}>" in now.text
    assert f"to <@{PEER}> · <@{OTHER}>" in now.all_text and menu_options(now) == [OWNER_NAME]
    assert "looked up once" in now.all_text
    assert [e.type for e in await stack.services.store.events(1)].count("viewed") == 1


async def test_a_reps_card_offers_nothing_to_act_on(stack: LocalStack) -> None:
    """Only managers reassign (bot/domain/access.py): a rep's card has no control, so nothing
    pressed on it can leave it stale; the rep's buttons are on the lead's post."""
    await claimed(stack)
    await stack.driver.command(PEER, "/lead", "hs-1", channel_id=WHERE)
    (card,) = cards(stack, PEER)
    assert not [block for block in card.blocks if block.get("type") == "actions"]
    with pytest.raises(LookupError):
        await stack.driver.choose_in_card(PEER, OWNER_NAME, channel=WHERE)
