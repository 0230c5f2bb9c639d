"""`/lead` through the real server and the local Slack: a claim by another rep than the one the
lead was suggested to says so on the timeline, on the managers' alert it settles, and on the
lead's own post in its channel (and the claimer's App Home), since that rep answers for a first
touch whose clock ran while they had it (docs/reports.md "By rep"). On SQLite and on
PostgreSQL."""

from __future__ import annotations

import pytest

from bot.cli.stack import LocalStack, TravelClock
from bot.domain.lead import LeadView
from bot.simulator.data import Message
from tests.conftest import lead_payload
from tests.e2e.test_app_home import open_home, text
from tests.e2e.test_reassign import alerted
from tests.e2e.test_time_away import say

ENTERPRISE, ESCALATIONS = "C0ENT", "C0ESCALATE"
MANAGER, SUGGESTED, PEER = "U0MGR1", "U0REP1", "U0REP2"  # SUGGESTED: the rotation's first pick
CLAIMED = "after 12m of business time"  # both claims below: 12 minutes into Monday's hours


@pytest.fixture
def stack_database_url(database_url: str) -> str:
    return database_url  # the same test on SQLite and on PostgreSQL


async def timeline(stack: LocalStack, external_id: str) -> str:
    card = await stack.driver.command(MANAGER, "/lead", external_id)
    assert card.json is not None and card.json["response_type"] == "ephemeral"
    texts = [block.get("text", {}).get("text", "") for block in card.json["blocks"]]
    (section,) = [text for text in texts if text.startswith("*Timeline*")]
    return str(section)


async def two_leads(stack: LocalStack) -> tuple[LeadView, LeadView]:
    """hs-1 and hs-2, posted: the rotation suggests the first to SUGGESTED, the second to PEER."""
    for external_id in ("hs-1", "hs-2"):
        status, _ = await stack.post_lead(lead_payload(external_id))
        assert status == 201
    await stack.settle()
    return await stack.services.lead(1), await stack.services.lead(2)


async def test_lead_says_whom_a_claimed_lead_was_suggested_to(
    stack: LocalStack, clock: TravelClock
) -> None:
    first, second = await two_leads(stack)
    assert first.suggested_owner == SUGGESTED, "the rotation's first pick"
    clock.advance(minutes=5)
    await stack.driver.press(PEER, "Claim", channel=ENTERPRISE, message_ts=first.message_ts)
    assert second.suggested_owner is not None
    await stack.driver.press(
        second.suggested_owner, "Claim", channel=ENTERPRISE, message_ts=second.message_ts
    )
    await stack.settle()

    text = await timeline(stack, "hs-1")
    assert f"claimed by <@{PEER}> (suggested to <@{SUGGESTED}>)" in text
    assert "claimed · " not in text
    # The suggested rep's own claim reads as it always did.
    own = await timeline(stack, "hs-2")
    assert f"claimed · <@{second.suggested_owner}>" in own
    assert "suggested to" not in own and "claimed by" not in own


async def test_the_managers_alert_says_whom_a_claimed_lead_was_suggested_to(
    stack: LocalStack, clock: TravelClock
) -> None:
    alert = await alerted(stack, clock)  # 12:01: the lead suggested to SUGGESTED is unclaimed
    await stack.driver.press(PEER, "Claim", channel=ENTERPRISE)
    await stack.settle()

    (settled,) = stack.sim.messages(ESCALATIONS)
    assert settled.ts == alert.ts
    assert settled.text.startswith(
        f"✅ Claimed by <@{PEER}> (suggested to <@{SUGGESTED}>) at Mon 12:01 AEDT: "
    )
    assert f"claimed by <@{PEER}> (suggested to <@{SUGGESTED}>)" in await timeline(stack, "hs-1")


def post(stack: LocalStack, ts: str | None) -> Message:
    assert ts is not None
    message = stack.sim.message(ENTERPRISE, ts)
    assert message is not None
    return message


async def test_the_lead_post_says_whom_a_claimed_lead_was_suggested_to(
    stack: LocalStack, clock: TravelClock
) -> None:
    first, second = await two_leads(stack)
    assert (first.suggested_owner, second.suggested_owner) == (SUGGESTED, PEER)
    clock.advance(minutes=12)
    for lead in (first, second):  # PEER takes the lead suggested to SUGGESTED, then their own
        pressed = await stack.driver.press(
            PEER, "Claim", channel=ENTERPRISE, message_ts=lead.message_ts
        )
        assert pressed.status == 200
    await stack.settle()

    taken = post(stack, first.message_ts)  # updated in place: everyone in #ent sees it
    assert f"Claimed by <@{PEER}> (suggested to <@{SUGGESTED}>) {CLAIMED}" in taken.all_text
    assert taken.text.endswith(f", claimed by <@{PEER}> (suggested to <@{SUGGESTED}>)")
    own = post(stack, second.message_ts)
    assert f"Claimed by <@{PEER}> {CLAIMED}" in own.all_text
    assert "suggested to" not in own.all_text
    # The claimer's App Home shows each lead's clock line as the channel does.
    home = text(await open_home(stack, PEER))
    assert f"Claimed by <@{PEER}> (suggested to <@{SUGGESTED}>) {CLAIMED}" in home
    assert f"Claimed by <@{PEER}> {CLAIMED}" in home


async def test_a_lead_suggested_to_nobody_and_claimed_from_the_pool_reads_as_before(
    stack: LocalStack, clock: TravelClock
) -> None:
    status, _ = await stack.post_lead(lead_payload("hs-1"))
    assert status == 201
    await stack.settle()
    await say(stack, MANAGER, "away @maya 3d")  # both reps of the enterprise pool
    await say(stack, MANAGER, "away @tom 3d")
    clock.advance(minutes=61)  # 12:01: unclaimed by its deadline, and nobody is in to take it
    assert (await stack.handoff.sweeper.run(clock())).changed == 1
    await stack.settle()
    lead = await stack.services.lead(1)
    assert (lead.owner, lead.suggested_owner) == (None, None)

    assert (await stack.driver.press(MANAGER, "Claim", channel=ENTERPRISE)).status == 200
    await stack.settle()

    shown = post(stack, lead.message_ts)
    assert f"Claimed by <@{MANAGER}> after " in shown.all_text
    assert shown.text.endswith(f", claimed by <@{MANAGER}>")
    assert "suggested to" not in shown.all_text
