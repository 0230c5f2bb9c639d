"""Routing past time away, and a lead no segment matches, through the real server: a named
account's owner, the same account's owner and the fallback owner who are away (set with
`/handoff away`) are passed over and the post says so; an MQL that matches no segment goes to
the fallback owner, posted where the managers see it, instead of being kept in nurture. On
SQLite and PostgreSQL (where the owners' time away is read in the intake's own statements)."""

from __future__ import annotations

import pytest

from bot.cli.stack import LocalStack
from bot.domain.policy import Policy, parse_policy, snapshot
from tests.e2e.test_routing_e2e import account, post, why
from tests.e2e.test_time_away import say

ENTERPRISE, MID, ESCALATIONS = "C0ENT", "C0MID", "C0ESCALATE"
MANAGER, MANAGER2, REP1, REP2, REP3 = "U0MGR1", "U0MGR2", "U0REP1", "U0REP2", "U0REP3"


@pytest.fixture
def policy(policy: Policy) -> Policy:
    content = snapshot(policy)
    content |= {"named_accounts": {"contoso.example": REP3}, "account_matching": True}
    # The last segment takes only small companies: a lead with no headcount matches none.
    content["segments"][-1]["when"] = {"employees_max": 199}
    return parse_policy(content)


@pytest.fixture
def stack_database_url(database_url: str) -> str:
    return database_url


async def test_a_named_accounts_owner_away_is_passed_over(stack: LocalStack) -> None:
    said = await say(stack, REP3, "away fri Offsite")
    assert said.startswith("You're away until"), said
    named = await post(stack, account(1, "contoso.example"))
    # Not REP3 (away): the round robin of the lead's own segment, and the post says why.
    assert named.suggested_owner == REP1 and named.segment == "enterprise"
    assert why(stack, ENTERPRISE, 0) == (
        f"Named account of <@{REP3}>: away → Round robin: <@{REP1}>, 1 of 1 this week"
    )
    await say(stack, REP3, "back")
    again = await post(stack, account(2, "contoso.example"))
    assert (again.suggested_owner, again.segment) == (REP3, "mid_market")


async def test_the_same_accounts_owner_away_is_passed_over(stack: LocalStack) -> None:
    first = await post(stack, account(1))
    message = stack.sim.messages(ENTERPRISE)[0]
    assert (
        await stack.driver.press(REP1, "Claim", channel=ENTERPRISE, message_ts=message.ts)
    ).status == 200
    await stack.settle()
    assert (await stack.services.lead(first.id)).owner == REP1
    await say(stack, REP1, "away fri")
    same = await post(stack, account(2, "acme1.example"))
    assert same.suggested_owner == REP2
    assert why(stack, ENTERPRISE, -1) == (
        f"Same account as an earlier lead of <@{REP1}>: away → "
        f"Round robin: <@{REP2}>, 1 of 2 this week"
    )


async def test_the_fallback_owner_away_hands_on_to_the_next_manager(stack: LocalStack) -> None:
    await say(stack, REP1, "away fri")
    await say(stack, REP2, "away fri")
    await say(stack, MANAGER, "away fri")
    lead = await post(stack, account(1))
    assert lead.suggested_owner == MANAGER2
    assert why(stack, ENTERPRISE, 0) == (
        f"Fallback owner <@{MANAGER}>: away → Fallback: nobody available (all away) → <@{MANAGER2}>"
    )


async def test_an_mql_no_segment_matches_goes_to_the_fallback_owner(stack: LocalStack) -> None:
    payload = account(1)
    payload["company"].pop("employees", None)  # no segment matches a lead of no headcount
    status, body = await stack.post_lead(payload)
    assert (status, body["status"]) == (201, "mql")  # not kept in nurture for want of a segment
    await stack.settle()
    lead = await stack.services.lead(int(body["id"]))
    assert (lead.suggested_owner, lead.segment) == (MANAGER, "unrouted")
    # Posted where the managers work, saying why, with nothing told to marketing as nurture.
    assert why(stack, ESCALATIONS, 0) == (f"Fallback: no segment matches this lead → <@{MANAGER}>")
    marketing = [
        m.text for m in stack.sim.messages(stack.services.policy.channels.marketing_feedback)
    ]
    assert not any("Not an MQL" in text for text in marketing), marketing
    # The fallback owner can claim it.
    post_ts = stack.sim.messages(ESCALATIONS)[0].ts
    assert (
        await stack.driver.press(MANAGER, "Claim", channel=ESCALATIONS, message_ts=post_ts)
    ).status == 200
    await stack.settle()
    assert (await stack.services.lead(lead.id)).owner == MANAGER
