"""A manager answers an escalation from its alert: Reassign to another rep of the pool, or
Snooze 1h. Reps are refused privately, and a forged choice changes nothing."""

from __future__ import annotations

from datetime import timedelta

from bot.cli.stack import LocalStack, TravelClock, start_stack
from bot.domain.policy import Policy, parse_policy, snapshot
from bot.simulator.data import Message
from tests.conftest import lead_payload

ENTERPRISE, ESCALATIONS = "C0ENT", "C0ESCALATE"
MANAGER, OWNER, PEER = "U0MGR1", "U0REP1", "U0REP2"
PEER_NAME = "tom"  # U0REP2 as Slack names him: the Reassign menu's label


async def alerted(stack: LocalStack, clock: TravelClock) -> Message:
    """A hot lead nobody claimed for an hour: the managers' alert, with Reassign and Snooze."""
    status, _ = await stack.post_lead(lead_payload())
    assert status == 201
    await stack.settle()
    clock.advance(minutes=61)  # 12:01: the claim deadline passed
    assert (await stack.handoff.sweeper.run(clock())).changed == 1
    await stack.settle()
    (alert,) = stack.sim.messages(ESCALATIONS)
    assert "Snooze 1h" in alert.all_text
    return alert


async def sweep(stack: LocalStack, clock: TravelClock) -> int:
    result = await stack.handoff.sweeper.run(clock())
    await stack.settle()
    return result.changed


def private_answers(stack: LocalStack, user: str) -> list[str]:
    return [note.text for note in stack.sim.ephemerals(user=user)]


def thread(stack: LocalStack) -> list[str]:
    (post,) = stack.sim.messages(ENTERPRISE)
    return [reply.all_text for reply in stack.sim.thread(ENTERPRISE, post.ts)]


def has_controls(message: Message) -> bool:
    return any(block.get("type") == "actions" for block in message.blocks)


def menu(message: Message) -> list[str]:
    """The reps the alert's Reassign menu offers."""
    return [
        option["value"].partition(":")[2]
        for block in message.blocks
        for element in block.get("elements", [])
        if element.get("type") == "static_select"
        for option in element["options"]
    ]


async def test_a_manager_reassigns_from_the_alert(stack: LocalStack, clock: TravelClock) -> None:
    alert = await alerted(stack, clock)
    notes_before = len(thread(stack))
    assert menu(alert) == [PEER]  # the pool without the rep it is suggested to already

    await stack.driver.choose(MANAGER, PEER_NAME, channel=ESCALATIONS)
    await stack.settle()

    assert private_answers(stack, MANAGER) == []
    lead = await stack.services.lead(1)
    assert (lead.owner, lead.suggested_owner) == (None, PEER)
    notes = thread(stack)
    assert len(notes) == notes_before + 1
    assert f"Reassigned to <@{PEER}> from <@{OWNER}>" in notes[-1]
    (dm,) = stack.sim.messages(stack.sim.dm_channel(PEER))
    assert f"<@{MANAGER}> handed you" in dm.all_text and "claim it there" in dm.all_text
    (post,) = stack.sim.messages(ENTERPRISE)
    assert f"<@{PEER}>" in post.all_text  # re-rendered: the new suggested owner
    # Its why line says who chose the rep now (it kept the rotation's "Round robin: @maya").
    assert f"Reassigned by <@{MANAGER}> from <@{OWNER}>" in post.all_text
    assert "Round robin" not in post.all_text
    (settled,) = stack.sim.messages(ESCALATIONS)  # replaced in place, not a second message
    assert settled.ts == alert.ts
    assert settled.text.startswith(
        f"🔁 Reassigned to <@{PEER}> from <@{OWNER}> by <@{MANAGER}> at Mon 12:01 AEDT: "
    )
    assert not has_controls(settled)


async def test_a_manager_reassigns_a_claimed_lead_to_its_new_owner(
    stack: LocalStack, clock: TravelClock
) -> None:
    await stack.post_lead(lead_payload())
    await stack.settle()
    await stack.driver.press(OWNER, "Claim", channel=ENTERPRISE)
    await stack.settle()
    clock.advance(hours=3)  # 14:00: first touch is an hour overdue, the managers hear
    assert await sweep(stack, clock) == 1
    (alert,) = stack.sim.messages(ESCALATIONS)
    assert f"owner <@{OWNER}>" in alert.all_text

    await stack.driver.choose(MANAGER, PEER_NAME, channel=ESCALATIONS)
    await stack.settle()

    lead = await stack.services.lead(1)
    assert lead.owner == PEER
    (dm,) = stack.sim.messages(stack.sim.dm_channel(PEER))
    assert "it is yours now" in dm.all_text
    (settled,) = stack.sim.messages(ESCALATIONS)  # no longer says it is the owner's
    assert f"owner <@{OWNER}>" not in settled.text and not has_controls(settled)
    assert settled.text.startswith(f"🔁 Reassigned to <@{PEER}> from <@{OWNER}> by <@{MANAGER}>")


async def test_a_rep_cannot_reassign(stack: LocalStack, clock: TravelClock) -> None:
    alert = await alerted(stack, clock)
    before = (await stack.services.lead(1), len(thread(stack)))

    await stack.driver.choose(OWNER, PEER_NAME, channel=ESCALATIONS)
    await stack.settle()

    assert private_answers(stack, OWNER) == [
        "Sorry, only the sales managers can reassign a lead; nothing was changed."
    ]
    assert (await stack.services.lead(1), len(thread(stack))) == before
    assert stack.sim.messages(stack.sim.dm_channel(PEER)) == []
    (unchanged,) = stack.sim.messages(ESCALATIONS)
    assert unchanged.edited_count == alert.edited_count and has_controls(unchanged)


async def test_a_forged_choice_changes_nothing(stack: LocalStack, clock: TravelClock) -> None:
    await alerted(stack, clock)
    before = (await stack.services.lead(1), len(thread(stack)))

    for forged in ("x:y", "1", "1:<!channel>", "999:U0REP2", "1:U0REP3"):
        await stack.driver.choose(MANAGER, PEER_NAME, channel=ESCALATIONS, override_value=forged)
        await stack.settle()

    assert private_answers(stack, MANAGER) == [
        *["This choice does not name a lead and a rep Handoff knows; nothing was changed."] * 3,
        "Lead 999 no longer exists in Handoff; nothing was changed.",
        "<@U0REP3> is not in the enterprise pool (<@U0REP1>, <@U0REP2>); nothing was changed.",
    ]
    assert (await stack.services.lead(1), len(thread(stack))) == before
    assert has_controls(stack.sim.messages(ESCALATIONS)[0])


async def test_a_snooze_holds_the_ladder_for_a_working_hour(
    stack: LocalStack, clock: TravelClock
) -> None:
    await alerted(stack, clock)

    await stack.driver.press(OWNER, "Snooze 1h", channel=ESCALATIONS)  # a rep: refused
    await stack.settle()
    assert private_answers(stack, OWNER) == [
        "Sorry, only the sales managers can snooze a lead's SLA clock."
    ]
    assert (await stack.services.lead(1)).snoozed_until is None

    await stack.driver.press(MANAGER, "Snooze 1h", channel=ESCALATIONS)
    await stack.settle()

    assert private_answers(stack, MANAGER) == []
    assert (await stack.services.lead(1)).snoozed_until == clock() + timedelta(hours=1)
    assert thread(stack)[-1].startswith(f"😴 Snoozed by <@{MANAGER}> until <!date^")
    (settled,) = stack.sim.messages(ESCALATIONS)
    assert settled.text.startswith(f"😴 Snoozed by <@{MANAGER}> until")
    assert not has_controls(settled)

    clock.advance(minutes=30)  # 12:31: the reassignment (150%) is due, but snoozed
    assert await sweep(stack, clock) == 0
    assert (await stack.services.lead(1)).suggested_owner == OWNER
    clock.advance(hours=2)  # 14:31: long over; the strongest due step fires, once
    assert await sweep(stack, clock) == 1
    assert (await stack.services.lead(1)).suggested_owner == PEER
    assert await sweep(stack, clock) == 0


async def test_the_reassign_menu_names_the_reps(stack: LocalStack, clock: TravelClock) -> None:
    """An option's plain text cannot show a mention: the menu shows the names Slack gives."""
    await alerted(stack, clock)
    (alert,) = stack.sim.messages(ESCALATIONS)
    labels = [
        option["text"]["text"]
        for block in alert.blocks
        for element in block.get("elements", [])
        if element.get("type") == "static_select"
        for option in element["options"]
    ]
    assert labels == ["tom"]  # U0REP2, the pool without the rep it is suggested to already
    assert menu(alert) == [PEER]  # the value still carries the id
    # Everyone sees the same message: the menu says it is the managers'.
    (placeholder,) = [
        element["placeholder"]["text"]
        for block in alert.blocks
        for element in block.get("elements", [])
        if element.get("type") == "static_select"
    ]
    assert placeholder == "Reassign to… (managers)"


async def test_a_pool_past_100_reps_reassigns_with_slacks_user_picker(
    sqlite_url: str, policy: Policy, clock: TravelClock
) -> None:
    """A static select holds 100 options; a larger pool picks from Slack's user picker, and a
    pick outside the pool is refused privately."""
    data = snapshot(policy)
    data["segments"][0]["reps"] = [OWNER, PEER, *(f"U0BIG{n:03d}" for n in range(150))]
    stack = await start_stack(sqlite_url, parse_policy(data), clock=clock)
    try:
        await alerted(stack, clock)
        await stack.driver.choose(MANAGER, "U0MGR2", channel=ESCALATIONS)  # not a rep
        await stack.settle()
        assert "is not in the enterprise pool" in private_answers(stack, MANAGER)[-1]
        assert (await stack.services.lead(1)).suggested_owner == OWNER

        await stack.driver.choose(MANAGER, "U0BIG042", channel=ESCALATIONS)
        await stack.settle()
        assert (await stack.services.lead(1)).suggested_owner == "U0BIG042"
        assert "Reassigned to <@U0BIG042>" in thread(stack)[-1]
    finally:
        await stack.close()


def claim_words(message: Message) -> str:
    """The post's context line that says who has the lead and when it was claimed."""
    (line,) = [
        element.get("text", "")
        for block in message.blocks
        if block.get("type") == "context"
        for element in block.get("elements", [])
        if "claimed after" in element.get("text", "").lower()
    ]
    return line


async def test_a_reassigned_lead_does_not_credit_its_new_owner_with_the_claim(
    stack: LocalStack, clock: TravelClock
) -> None:
    await stack.post_lead(lead_payload())
    await stack.settle()
    (post,) = stack.sim.messages(ENTERPRISE)
    clock.advance(minutes=12)
    await stack.driver.press(OWNER, "Claim", channel=ENTERPRISE)
    await stack.settle()
    clock.advance(minutes=40)  # the manager hands it over from the post
    await stack.driver.choose(
        MANAGER, PEER_NAME, channel=ENTERPRISE, action_id="lead_reassign", message_ts=post.ts
    )
    await stack.settle()

    shown = stack.sim.message(ENTERPRISE, post.ts)
    assert shown is not None
    assert claim_words(shown).startswith(
        f"Owner <@{PEER}> · claimed after 12m of business time; reassigned from <@{OWNER}> · "
    )
    assert f"Claimed by <@{PEER}>" not in shown.all_text
    assert shown.text.endswith(f", owner <@{PEER}>, reassigned from <@{OWNER}>")


def selects(message: Message) -> list[str]:
    """The action ids of the menus (static selects or user pickers) on a message."""
    return [
        element.get("action_id", "")
        for block in message.blocks
        if block.get("type") == "actions"
        for element in block.get("elements", [])
        if str(element.get("type", "")).endswith("_select")
    ]


async def test_an_sla_with_no_managers_shows_no_reassign_menu_and_claim_still_works(
    sqlite_url: str, policy: Policy, clock: TravelClock
) -> None:
    """Only the managers reassign and snooze: with `managers: []` nobody could, so the post and
    the escalation alert leave the "Reassign to… (managers)" menu and Snooze 1h out (the alert
    keeps its words, with no buttons); Claim is as it was."""
    stack = await start_stack(
        sqlite_url, parse_policy(snapshot(policy) | {"managers": []}), clock=clock
    )
    try:
        status, _ = await stack.post_lead(lead_payload())
        assert status == 201
        await stack.settle()
        (post,) = stack.sim.messages(ENTERPRISE)
        assert selects(post) == []
        assert "Reassign to" not in post.all_text
        clock.advance(minutes=61)  # 12:01: the claim deadline passed, the managers' step is due
        await sweep(stack, clock)
        (alert,) = stack.sim.messages(ESCALATIONS)
        # Snoozing is the managers' too: no button anyone would be refused at.
        assert "Snooze 1h" not in alert.all_text and selects(alert) == [], alert.all_text
        assert not [b for b in alert.blocks if b.get("type") == "actions"]
        (post,) = stack.sim.messages(ENTERPRISE)
        assert selects(post) == []

        await stack.driver.press(OWNER, "Claim", channel=ENTERPRISE)
        await stack.settle()
        assert (await stack.services.lead(1)).owner == OWNER
        (post,) = stack.sim.messages(ENTERPRISE)
        assert selects(post) == []
    finally:
        await stack.close()
