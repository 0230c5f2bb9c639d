"""Incoming duplicates: Slack's retries and double clicks have no second effect."""

from __future__ import annotations

import asyncio

import pytest

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


async def test_an_id_sent_as_a_whole_number_is_the_same_lead_as_its_digits(
    stack: LocalStack,
) -> None:
    """HubSpot's contact ids are numbers (`hs_object_id`), and a workflow or a form tool may send
    them unquoted: `"external_id": 10234` is the lead `"10234"`, its repeat as text is a repeat
    (200, not a second post), and `crm_id` is read the same way. Not a whole number of 0 or more
    (10234.0, -1, true): refused by name, nothing stored."""
    payload = lead_payload() | {"external_id": 10234, "crm_id": 901}
    status, body = await stack.post_lead(payload)
    assert status == 201, body
    await stack.settle()
    lead = await stack.services.store.by_external_id("10234")
    assert lead is not None and lead.crm_id == "901"

    status, body = await stack.post_lead(payload | {"external_id": "10234"})
    assert status == 200, body
    await stack.settle()
    assert len(stack.sim.messages(ENTERPRISE)) == 1

    for field, value in (("external_id", 10235.0), ("external_id", -1), ("crm_id", True)):
        status, body = await stack.post_lead(lead_payload("hs-2") | {field: value})
        assert status == 400, (field, value)
        assert [error["field"] for error in body["errors"]] == [field], body
    assert await stack.services.store.by_external_id("hs-2") is None
    assert await stack.services.store.by_external_id("10235") is None
    assert await stack.services.store.count_leads() == 1


async def test_a_modal_a_proxy_answered_is_one_line_not_a_traceback(
    stack: LocalStack, caplog: pytest.LogCaptureFixture
) -> None:
    """The disposition modal's views.open, made with the client Bolt gives the listener, is
    answered by a proxy's plain-text page, not Slack's JSON (Slack's Web API always answers a
    JSON object with `ok`): one error line naming what answered, no traceback, and the next
    press opens the modal (before: Bolt's per-request client is slack_sdk's own, not
    HandoffWebClient, so its AttributeError was logged with a traceback)."""
    ts = await posted_lead(stack)
    await stack.driver.press("U0REP1", "Claim", channel=ENTERPRISE, message_ts=ts)
    await stack.settle()
    stack.sim.inject("views.open", status=200, text="Service unavailable", times=1)

    await stack.driver.press("U0REP1", "Not a fit", channel=ENTERPRISE)
    await stack.settle()
    await stack.handoff.publisher.drain(5)
    lines = [r.getMessage() for r in caplog.records if "modal" in r.getMessage()]
    assert len(lines) == 1, lines
    assert (
        "HTTP 200 from 127.0.0.1, not Slack's answer (text/plain: Service unavailable)" in lines[0]
    )
    assert not any(record.exc_info for record in caplog.records)

    await stack.driver.press("U0REP1", "Not a fit", channel=ENTERPRISE)
    await stack.settle()
    await stack.handoff.publisher.drain(5)
    assert len(stack.sim.open_views("U0REP1")) == 1
