"""A rep deactivated or made a guest in Slack: Slack's `user_change` event
(https://docs.slack.dev/reference/events/user_change/, "sent ... when a member updates their
profile or data") tells Handoff at once, and new leads skip them from then on, instead of
being suggested to someone who can no longer sign in or claim."""

from __future__ import annotations

import pytest

from bot.cli.stack import LocalStack
from tests.conftest import lead_payload

REP1, REP2 = "U0REP1", "U0REP2"


async def new_lead(stack: LocalStack, external_id: str) -> str | None:
    status, body = await stack.post_lead(lead_payload(external_id))
    assert status == 201
    await stack.settle()
    return (await stack.services.lead(body["id"])).suggested_owner


@pytest.mark.parametrize("change", ["deactivated", "guest"])
async def test_new_leads_skip_a_rep_slack_says_left_or_became_a_guest(
    stack: LocalStack, change: str
) -> None:
    assert {await new_lead(stack, f"hs-a{n}") for n in range(2)} == {REP1, REP2}
    if change == "deactivated":
        stack.sim.deactivate_user(REP1)
    else:
        stack.sim.make_guest(REP1)
    answer = await stack.driver.user_change(REP1)
    await stack.settle()
    assert answer.status == 200
    assert [await new_lead(stack, f"hs-b{n}") for n in range(3)] == [REP2, REP2, REP2]


async def test_a_change_to_someone_else_changes_nothing(stack: LocalStack) -> None:
    stack.sim.add_user("U0OTHER", "other")
    stack.sim.deactivate_user("U0OTHER")
    assert (await stack.driver.user_change("U0OTHER")).status == 200
    await stack.settle()
    assert {await new_lead(stack, f"hs-{n}") for n in range(2)} == {REP1, REP2}
