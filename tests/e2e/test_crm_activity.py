"""POST /leads/{external_id}/activity through the real server and the Slack simulator: the CRM's
attempts count like buttons and update the lead's message; stage changes are recorded once."""

from __future__ import annotations

import time
from typing import Any

from bot.cli.stack import INTAKE_TOKEN, LocalStack, TravelClock, start_stack
from handlers.http_routes import MAX_BODY, sign_body
from tests.conftest import lead_payload

ENTERPRISE = "C0ENT"
REP = "U0REP1"


async def activity(
    stack: LocalStack,
    external_id: str,
    payload: Any = None,
    *,
    token: str | None = INTAKE_TOKEN,
    raw: bytes | None = None,
    headers: dict[str, str] | None = None,
) -> tuple[int, Any]:
    """POST /leads/{external_id}/activity as a CRM would; (status, decoded JSON answer)."""
    sent = {"Content-Type": "application/json", **(headers or {})}
    if token is not None:
        sent["Authorization"] = f"Bearer {token}"
    body: dict[str, Any] = {"data": raw} if raw is not None else {"json": payload}
    url = f"{stack.base_url}/leads/{external_id}/activity"
    async with stack.session.post(url, headers=sent, **body) as response:
        return response.status, await response.json(content_type=None)


async def claimed(stack: LocalStack, clock: TravelClock) -> str:
    """A posted enterprise lead, claimed by REP ten minutes later; its message's ts."""
    status, answer = await stack.post_lead(lead_payload())
    assert status == 201, answer
    await stack.settle()
    (message,) = stack.sim.messages(ENTERPRISE)
    clock.advance(minutes=10)
    await stack.driver.press(REP, "Claim", channel=ENTERPRISE, message_ts=message.ts)
    await stack.settle()
    return message.ts


async def test_a_crm_attempt_updates_the_lead_message_like_a_button(
    stack: LocalStack, clock: TravelClock
) -> None:
    ts = await claimed(stack, clock)
    clock.advance(minutes=5)
    call = {"type": "attempt", "kind": "call", "actor": REP, "id": "hs-call-1"}
    status, answer = await activity(stack, "hs-1", call)
    assert status == 201, answer
    assert answer == {
        "lead_id": 1,
        "recorded": {
            "type": "attempt",
            "kind": "call",
            "at": clock.now.isoformat(),
            "attempts": 1,
            "first_touch": True,
        },
    }
    await stack.settle()
    message = stack.sim.message(ENTERPRISE, ts)
    assert message is not None
    assert "Attempts 1/6" in message.all_text and "first touch after 15m" in message.all_text
    # The CRM retries with the same activity id: 200, and nothing counted twice.
    status, again = await activity(stack, "hs-1", call)
    assert status == 200
    assert again == {
        "lead_id": 1,
        "recorded": None,
        "message": "activity 'hs-call-1' changes nothing: it was recorded already, or the lead "
        "already had it",
    }
    lead = await stack.services.lead(1)
    assert lead.attempts == 1
    events = [event.type for event in await stack.services.store.events(1)]
    assert events.count("attempt") == 1 and events.count("first_touch") == 1
    assert stack.sim.invalid_payloads == []


async def test_stage_changes_are_recorded_once_and_never_contradicted(stack: LocalStack) -> None:
    status, _ = await stack.post_lead(lead_payload())
    assert status == 201
    opportunity = {"type": "stage", "stage": "opportunity", "amount": 40000, "id": "opp-1"}
    status, answer = await activity(stack, "hs-1", opportunity)
    assert status == 201 and answer["recorded"]["stage"] == "opportunity"
    assert answer["recorded"]["amount"] == 40000 and answer["recorded"]["currency"] == "AUD"
    won = {"type": "stage", "stage": "won", "amount": 42500, "at": "2026-11-22T23:00:00Z"}
    status, answer = await activity(stack, "hs-1", won)
    assert status == 201, answer
    assert answer["recorded"]["at"] == "2026-11-23T00:00:00+00:00"  # not before the lead arrived
    status, answer = await activity(stack, "hs-1", {**won, "amount": 1})
    assert status == 200 and answer["recorded"] is None  # won already: nothing changes
    status, answer = await activity(stack, "hs-1", {"type": "stage", "stage": "lost"})
    assert status == 409
    assert answer == {"error": "this deal was recorded as won on 2026-11-23; not lost too"}
    stages = ("opportunity", "won", "lost")
    events = await stack.services.store.events(1)  # with "posted", whenever Slack answered
    deals = [(e.type, e.data.get("amount")) for e in events if e.type in stages]
    assert deals == [("opportunity", 40000), ("won", 42500)]


async def test_an_attempt_on_an_unclaimed_lead_is_a_conflict(stack: LocalStack) -> None:
    status, _ = await stack.post_lead(lead_payload())
    assert status == 201
    status, answer = await activity(stack, "hs-1", {"type": "attempt", "kind": "email"})
    assert status == 409
    assert answer["error"].startswith("lead hs-1 is not claimed yet")
    assert (await stack.services.lead(1)).attempts == 0


async def test_unknown_leads_and_bad_payloads(stack: LocalStack) -> None:
    status, answer = await activity(stack, "nobody", {"type": "stage", "stage": "won"})
    assert status == 404
    assert answer == {
        "error": "no lead with the external id 'nobody': send it to POST /leads first"
    }
    await stack.post_lead(lead_payload())
    status, answer = await activity(stack, "hs-1", {"type": "stage", "stage": "signed"})
    assert status == 400
    assert answer == {
        "errors": [{"field": "stage", "message": "must be one of opportunity, won, lost"}]
    }
    status, answer = await activity(stack, "hs-1", raw=b"{not json")
    assert status == 400 and answer["errors"][0]["field"] == "(body)"
    status, answer = await activity(stack, "hs-1", [])
    assert status == 400 and answer["errors"] == [
        {"field": "(body)", "message": "must be a JSON object"}
    ]
    events = await stack.services.store.events(1)
    assert {event.type for event in events} <= {"received", "mql", "posted"}


async def test_the_token_and_the_body_limit_are_the_intakes(stack: LocalStack) -> None:
    await stack.post_lead(lead_payload())
    won = {"type": "stage", "stage": "won"}
    for token in (None, "wrong-token"):
        status, answer = await activity(stack, "hs-1", won, token=token)
        assert status == 401 and "bearer token" in answer["error"]
    huge = b'{"type": "stage", "stage": "won", "note": "' + b"x" * MAX_BODY + b'"}'
    status, answer = await activity(stack, "hs-1", raw=huge)
    assert status == 413
    events = await stack.services.store.events(1)
    assert "won" not in {event.type for event in events}


async def test_a_signing_secret_covers_activity_too(sqlite_url: str, clock: TravelClock) -> None:
    secret = "crm-signing-secret"
    stack = await start_stack(sqlite_url, clock=clock, HANDOFF_INTAKE_SIGNING_SECRET=secret)
    try:
        body = b'{"type": "stage", "stage": "opportunity"}'
        status, answer = await activity(stack, "hs-1", raw=body)
        assert status == 401 and "X-Handoff-Signature" in answer["error"]
        timestamp = str(int(time.time()))
        signed = {
            "X-Handoff-Timestamp": timestamp,
            "X-Handoff-Signature": sign_body(secret, timestamp, body),
        }
        status, answer = await activity(stack, "hs-1", raw=body, headers=signed)
        assert status == 404  # signed and let in: there is no such lead yet
    finally:
        await stack.close()
