"""Incoming duplicates: Slack's retries and double clicks have no second effect."""

from __future__ import annotations

import asyncio

from bot.cli.stack import LocalStack
from tests.conftest import lead_payload

ENTERPRISE, FEEDBACK = "C0ENT", "C0MKTFEED"


async def posted_lead(stack: LocalStack) -> str:
    status, _ = await stack.post_lead(lead_payload())
    assert status == 201
    await stack.settle()
    (message,) = stack.sim.messages(ENTERPRISE)
    return message.ts


async def event_types(stack: LocalStack) -> list[str]:
    return [event.type for event in await stack.services.store.events(1)]


async def test_a_retried_claim_press_claims_once_and_says_nothing(stack: LocalStack) -> None:
    ts = await posted_lead(stack)
    first = await stack.driver.press("U0REP1", "Claim", channel=ENTERPRISE, message_ts=ts)
    await stack.settle()  # the message already shows the owner when Slack retries
    retries = [await stack.driver.resend(retry_num=n) for n in (1, 2)]
    await stack.settle()

    assert first.status == 200 and all(r.status == 200 for r in retries)
    assert (await event_types(stack)).count("claimed") == 1
    assert stack.sim.ephemerals() == []  # the owner is not told they own it, three times
    assert len(stack.sim.calls_to("chat.update")) == 1


async def test_a_double_clicked_attempt_counts_once(stack: LocalStack) -> None:
    ts = await posted_lead(stack)
    await stack.driver.press("U0REP1", "Claim", channel=ENTERPRISE, message_ts=ts)
    await stack.settle()
    await asyncio.gather(
        *(stack.driver.press("U0REP1", "Log call", channel=ENTERPRISE) for _ in range(2))
    )
    await stack.driver.resend(retry_num=1)
    await stack.settle()

    lead = await stack.services.lead(1)
    assert lead.attempts == 1
    assert (await event_types(stack)).count("attempt") == 1
    message = stack.sim.message(ENTERPRISE, ts)
    assert message is not None and "1/6" in message.all_text
    assert stack.sim.ephemerals() == []


async def test_a_double_submitted_modal_dispositions_and_tells_marketing_once(
    stack: LocalStack,
) -> None:
    ts = await posted_lead(stack)
    await stack.driver.press("U0REP1", "Claim", channel=ENTERPRISE, message_ts=ts)
    await stack.settle()
    await stack.driver.press("U0REP1", "Not a fit", channel=ENTERPRISE)
    await stack.settle()
    (view,) = stack.sim.open_views("U0REP1")
    values = {"reason": "No budget", "note": "Budget frozen until July"}
    answers = await asyncio.gather(
        stack.driver.submit_view("U0REP1", values, view_id=view.id),
        stack.driver.submit_view("U0REP1", values, view_id=view.id, retry_num=1),
    )
    await stack.settle()

    assert [answer.status for answer in answers] == [200, 200]
    assert all("errors" not in answer.body for answer in answers)
    assert (await event_types(stack)).count("dispositioned") == 1
    assert len(stack.sim.messages(FEEDBACK)) == 1
    lead = await stack.services.lead(1)
    assert (lead.disposition_code, lead.disposition_reason) == ("not_a_fit", "No budget")
