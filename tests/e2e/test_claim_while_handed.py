"""A rep claims a lead while the DM that hands it to them is still on its way: a manager (or
the SLA's sweep) reassigned the unclaimed lead to @tom, and @tom presses Claim before that
DM is delivered. It must not then reach him saying "claim it there" about a lead he holds.

The race is made deterministic by holding the server's Slack deliveries (its outbox closed)
from the reassignment until after the claim, then letting another replica deliver them, as a
DM stuck behind Slack's pace or a retry would be delivered."""

from __future__ import annotations

from collections.abc import Awaitable
from typing import Any

import pytest

from bot.cli.stack import LocalStack, TravelClock
from bot.slack.outbox import Outbox
from tests.e2e.conftest import replica
from tests.e2e.test_escalation import new_lead
from tests.e2e.test_reassign import alerted

ENTERPRISE, ESCALATIONS = "C0ENT", "C0ESCALATE"
MANAGER, MAYA, TOM = "U0MGR1", "U0REP1", "U0REP2"


@pytest.fixture
def stack_database_url(database_url: str) -> str:
    return database_url  # the outbox's rows, on SQLite and PostgreSQL


def dms(stack: LocalStack, user: str) -> list[str]:
    return [message.all_text for message in stack.sim.messages(stack.sim.dm_channel(user))]


async def claim_before_the_dm_goes(stack: LocalStack, reassign: Awaitable[Any]) -> Outbox:
    """Hold deliveries, let `reassign` (a coroutine) hand the lead to @tom, @tom claim it,
    then deliver everything with another replica (returned: the caller closes it)."""
    (post,) = stack.sim.messages(ENTERPRISE)
    await stack.handoff.outbox.close()  # nothing reaches Slack until the claim is in
    await reassign
    lead = await stack.services.lead(1)
    assert (lead.owner, lead.suggested_owner) == (None, TOM)
    assert dms(stack, TOM) == []  # the handing DM waits in the outbox
    await stack.driver.press(TOM, "Claim", channel=ENTERPRISE, message_ts=post.ts)
    assert (await stack.services.lead(1)).owner == TOM
    other = replica(stack, stack.handoff.outbox.client)
    await stack.settle()
    return other


async def test_a_manager_hands_a_lead_to_a_rep_who_claims_it_before_the_dm(
    stack: LocalStack, clock: TravelClock
) -> None:
    await alerted(stack, clock)  # 12:01: suggested to @maya, unclaimed; the managers' alert
    choose = stack.driver.choose(MANAGER, "tom", channel=ESCALATIONS)
    other = await claim_before_the_dm_goes(stack, choose)
    try:
        assert not any("claim it there" in text for text in dms(stack, TOM)), dms(stack, TOM)
        (lost,) = dms(stack, MAYA)  # still true: it was taken from her
        assert "reassigned the lead suggested to you" in lost
        (shown,) = stack.sim.messages(ENTERPRISE)
        assert f"Owner <@{TOM}>" in shown.all_text  # the post tells the claim
    finally:
        await other.close()


async def test_the_sla_hands_a_lead_to_a_rep_who_claims_it_before_the_dm(
    stack: LocalStack, clock: TravelClock
) -> None:
    await new_lead(stack)
    clock.advance(minutes=91)  # 12:31: nobody claimed it; 150% of the claim window
    other = await claim_before_the_dm_goes(stack, stack.handoff.sweeper.run(clock()))
    try:
        assert not any("claim it there" in text for text in dms(stack, TOM)), dms(stack, TOM)
        (lost,) = dms(stack, MAYA)
        assert "The SLA (claim overdue) reassigned the lead suggested to you" in lost
    finally:
        await other.close()


async def test_the_handing_dm_still_goes_while_the_lead_waits_for_a_claim(
    stack: LocalStack, clock: TravelClock
) -> None:
    """The check is on the lead at delivery: held back and delivered later, but not claimed
    meanwhile, the DM still asks @tom to claim it."""
    await new_lead(stack)
    clock.advance(minutes=91)
    await stack.handoff.outbox.close()
    await stack.handoff.sweeper.run(clock())
    other = replica(stack, stack.handoff.outbox.client)
    try:
        await stack.settle()
        (handed,) = dms(stack, TOM)
        assert "handed you" in handed and "claim it there" in handed
    finally:
        await other.close()
