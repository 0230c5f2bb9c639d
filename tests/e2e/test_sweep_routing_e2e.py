"""The sweep's reassignment through the real server and the Slack simulator: the overdue lead
goes to the next rep of its pool's weighted rotation, passing over a rep a manager set away
with `/handoff away`, and its post says the SLA moved it, from whom, and why its new rep was
chosen."""

from __future__ import annotations

import pytest

from bot.cli.stack import LocalStack, TravelClock
from bot.domain.policy import Policy, parse_policy, snapshot
from tests.conftest import lead_payload

ENTERPRISE = "C0ENT"
MANAGER, REP1, REP2, REP7 = "U0MGR1", "U0REP1", "U0REP2", "U0REP7"


@pytest.fixture
def policy(policy: Policy) -> Policy:
    content = snapshot(policy)
    content["segments"][0] |= {"reps": [REP1, REP2, REP7], "weights": {REP2: 2}}
    return parse_policy(content)


def why(stack: LocalStack, index: int) -> str:
    """The context line of the post that says why its rep was chosen."""
    message = stack.sim.messages(ENTERPRISE)[index]
    lines = [
        element.get("text", "")
        for block in message.blocks
        if block.get("type") == "context"
        for element in block.get("elements", [])
    ]
    starts = ("Round robin", "Fallback", "Reassigned")
    (line,) = [text for text in lines if text.startswith(starts)]
    return line


def thread(stack: LocalStack, index: int) -> list[str]:
    post = stack.sim.messages(ENTERPRISE)[index]
    return [reply.all_text for reply in stack.sim.thread(ENTERPRISE, post.ts)]


async def test_an_overdue_lead_goes_to_the_next_weighted_rep_who_is_in(
    stack: LocalStack, clock: TravelClock
) -> None:
    for number in range(2):
        status, _ = await stack.post_lead(lead_payload(f"hs-{number}"))
        assert status == 201
    await stack.settle()
    # Weights 1, 2, 1: U0REP2 first, then U0REP1 (U0REP7 would be next but one).
    assert [(await stack.services.lead(n)).suggested_owner for n in (1, 2)] == [REP2, REP1]
    assert why(stack, 0) == f"Round robin: <@{REP2}>, 1 of 1 this week, weight 2"

    answer = await stack.driver.command(MANAGER, "/handoff", f"away <@{REP7}|sam> 3d")
    assert answer.json is not None and str(answer.json["text"]).startswith(f"<@{REP7}> is away")

    clock.advance(minutes=91)  # 12:31: 150% of the claim window: reassigned
    result = await stack.handoff.sweeper.run(clock())
    await stack.settle()

    assert result.changed == 2
    # U0REP7 is owed the next lead but is away; each lead leaves the rep who let it lapse.
    assert [(await stack.services.lead(n)).suggested_owner for n in (1, 2)] == [REP1, REP2]
    assert f"Reassigned to <@{REP1}> from <@{REP2}>" in thread(stack, 0)[-1]
    assert f"Reassigned to <@{REP2}> from <@{REP1}>" in thread(stack, 1)[-1]
    # The posts say why their new reps were chosen, with the counts as each turn left them:
    # lead 1 left U0REP2 for U0REP1 (who still had lead 2): 2 of 2; then lead 2 left U0REP1.
    assert why(stack, 0) == (
        f"Reassigned by the SLA from <@{REP2}> (claim overdue) · Round robin: <@{REP1}>, "
        "2 of 2 this week"
    )
    assert why(stack, 1) == (
        f"Reassigned by the SLA from <@{REP1}> (claim overdue) · Round robin: <@{REP2}>, "
        "1 of 2 this week, weight 2"
    )
