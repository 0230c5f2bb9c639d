"""Changes made in the CRM reach Slack (issue 14): HubSpot's and Salesforce's webhooks, really
signed, through the real server and the Slack simulator. A contact created in HubSpot becomes
one posted lead however often HubSpot retries; an owner changed in the CRM reassigns the lead
in Slack (its own echo changes nothing); a won deal shows in `/sla-report`; a deleted contact
is erased; bad signatures, unknown shapes and unknown leads change nothing."""

from __future__ import annotations

import asyncio
import base64
import hashlib
import hmac
import json
import logging
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
import yaml

from bot.cli.stack import BOT_TOKEN, LocalStack, TravelClock, start_stack
from bot.crm.hubspot_in import sign_v3
from bot.crmfake.hubspot import HubSpotFake, sign_v1
from bot.domain.policy import Policy, parse_policy, snapshot
from bot.services import crm_inbound
from storage.crm_inbox import KEEP, CrmInboxStore
from tests.e2e.test_forget import database_text, forget_cli, slack_text
from tests.e2e.test_token_refused import probe, refreshed, wait_ready

ROOT = Path(__file__).resolve().parents[2]
SECRET = "hubspot-client-secret-for-tests"
SF_TOKEN = "salesforce-webhook-token-for-tests"
ENTERPRISE, ROOM = "C0ENT", "C0MKTFEED"
MAYA, TOM, MANAGER = "U0REP1", "U0REP2", "U0MGR1"
MAYA_OWNER, TOM_OWNER = "1001", "1002"  # the HubSpot fake's first two owners
SF_LEAD = "00Q5e00000AbCdEAAV"


@pytest.fixture
def crm_policy() -> Policy:
    """The example SLA with a HubSpot `crm:` section mapping two reps to their owners."""
    data = yaml.safe_load((ROOT / "sla.yaml").read_text())
    data["crm"] = {"kind": "hubspot", "owners": {MAYA: MAYA_OWNER, TOM: TOM_OWNER}}
    return parse_policy(data)


@pytest.fixture
async def hub() -> AsyncIterator[HubSpotFake]:
    """The HubSpot portal our own writes go to (its owners: Maya's and Tom's)."""
    fake = await HubSpotFake().start()
    assert fake.add_owner("maya@example.com", "Maya") == MAYA_OWNER
    assert fake.add_owner("tom@example.com", "Tom") == TOM_OWNER
    yield fake
    await fake.stop()  # raises if it answered outside HubSpot's specs


@pytest.fixture
async def crm_stack(
    sqlite_url: str, crm_policy: Policy, clock: TravelClock, hub: HubSpotFake
) -> AsyncIterator[LocalStack]:
    async with crm_stack_on(sqlite_url, crm_policy, clock, hub) as local:
        yield local


@pytest.fixture
async def crm_stack_both(
    database_url: str, crm_policy: Policy, clock: TravelClock, hub: HubSpotFake
) -> AsyncIterator[LocalStack]:
    """`crm_stack` on SQLite and on PostgreSQL."""
    async with crm_stack_on(database_url, crm_policy, clock, hub) as local:
        yield local


@asynccontextmanager
async def crm_stack_on(
    url: str, crm_policy: Policy, clock: TravelClock, hub: HubSpotFake
) -> AsyncIterator[LocalStack]:
    local = await start_stack(
        url,
        crm_policy,
        clock=clock,
        HUBSPOT_ACCESS_TOKEN=hub.token,
        HUBSPOT_API_URL=hub.base_url,
        HUBSPOT_CLIENT_SECRET=SECRET,
        HANDOFF_SALESFORCE_WEBHOOK_TOKEN=SF_TOKEN,
    )
    try:
        yield local
    finally:
        await local.close()


def contact(contact_id: int = 451, email: str = "ana.silva@acme.example") -> dict[str, Any]:
    """A contact as a HubSpot workflow's "Send a webhook" action sends it."""
    return {
        "vid": contact_id,
        "properties": {
            "email": {"value": email},
            "firstname": {"value": "Ana"},
            "lastname": {"value": "Silva"},
            "jobtitle": {"value": "Head of Revenue Operations"},
            "phone": {"value": "+61 2 5550 9876"},
            "company": {"value": "Acme Freight"},
            "numemployees": {"value": "2400"},
            "country": {"value": "AU"},
            "hubspotscore": {"value": "88"},
        },
    }


def change(
    event_id: int, name: str, value: str, object_id: int = 451, at: datetime | None = None
) -> dict[str, Any]:
    """A subscription's contact.propertyChange event (made at `at`: the tests' Monday start
    unless given)."""
    return {
        "eventId": event_id,
        "subscriptionId": 9,
        "portalId": 62515,
        "appId": 54321,
        "occurredAt": int(at.timestamp() * 1000) if at else 1795392000000,
        "subscriptionType": "contact.propertyChange",
        "attemptNumber": 0,
        "objectId": object_id,
        "propertyName": name,
        "propertyValue": value,
        "changeSource": "CRM",
    }


async def hubspot(
    stack: LocalStack,
    clock: TravelClock,
    payload: Any,
    *,
    version: str = "v3",
    secret: str = SECRET,
    age_minutes: float = 0,
) -> tuple[int, Any]:
    """POST /crm/hubspot signed as HubSpot signs it: v3 (a workflow's webhook), v3 and v1 beside
    it (`v1`: a webhook subscription), or `v1 alone` (what HubSpot never sends);
    (status, decoded JSON answer)."""
    body = json.dumps(payload).encode()
    url = f"{stack.base_url}/crm/hubspot"
    headers = {"Content-Type": "application/json"}
    if version != "v1 alone":
        stamp = str(int((clock().timestamp() - age_minutes * 60) * 1000))
        headers["X-HubSpot-Request-Timestamp"] = stamp
        headers["X-HubSpot-Signature-v3"] = sign_v3(secret, "POST", url, body, stamp)
    if version != "v3":  # a subscription's delivery: v1 beside v3, as HubSpot sends it
        headers["X-HubSpot-Signature-Version"] = "v1"
        headers["X-HubSpot-Signature"] = sign_v1(secret, body)
    async with stack.session.post(url, data=body, headers=headers) as response:
        return response.status, await response.json(content_type=None)


async def salesforce(stack: LocalStack, payload: Any, token: str = SF_TOKEN) -> tuple[int, Any]:
    status, answer, _ = await salesforce_answer(stack, payload, token)
    return status, answer


async def salesforce_answer(
    stack: LocalStack, payload: Any, token: str = SF_TOKEN
) -> tuple[int, Any, str | None]:
    """`POST /crm/salesforce`: the status, the JSON answer and its `Retry-After`."""
    headers = {"Content-Type": "application/json", "Authorization": f"Bearer {token}"}
    url = f"{stack.base_url}/crm/salesforce"
    async with stack.session.post(url, json=payload, headers=headers) as response:
        answer = await response.json(content_type=None)
        return response.status, answer, response.headers.get("Retry-After")


async def raj_for_maya(stack: LocalStack) -> None:
    """Salesforce creates Raj's lead (suggested to Maya), and Tom is a member Slack finds by
    his email: the start of an owner change to Tom."""
    stack.sim.add_user(TOM, "tom", "Tom Okafor", email="tom.okafor@example.com")
    lead = {"email": "raj@globex.example", "name": "Raj Patel", "title": "VP Sales"}
    lead |= {"company": {"name": "Globex", "employees": 5000, "country": "AU"}, "score": 90}
    created_change = {"event_id": "sf-1", "type": "created", "lead_id": SF_LEAD, "lead": lead}
    assert await salesforce(stack, created_change) == (200, {"handled": 1, "ignored": 0})
    await stack.settle()


def owner_to_tom(event_id: str) -> dict[str, Any]:
    """Salesforce's change of Raj's owner to Tom, found by his email."""
    owner = {"event_id": event_id, "type": "owner", "lead_id": SF_LEAD}
    return owner | {"owner_id": "0055e000001XyZw", "owner_email": "tom.okafor@example.com"}


def thread(stack: LocalStack) -> list[str]:
    (post,) = stack.sim.messages(ENTERPRISE)
    return [reply.all_text for reply in stack.sim.thread(ENTERPRISE, post.ts)]


def dms(stack: LocalStack, user: str) -> list[str]:
    return [m.all_text for m in stack.sim.messages(stack.sim.dm_channel(user))]


async def created(stack: LocalStack, clock: TravelClock) -> None:
    status, answer = await hubspot(stack, clock, contact())
    assert (status, answer) == (200, {"handled": 1, "ignored": 0}), answer
    await stack.settle()


async def claimed(stack: LocalStack, clock: TravelClock) -> None:
    """The contact created in HubSpot, posted, and claimed by Maya in Slack."""
    await created(stack, clock)
    await stack.driver.press(MAYA, "Claim", channel=ENTERPRISE)
    await stack.settle()


async def test_a_contact_created_in_hubspot_is_posted_once_however_often_it_is_sent(
    crm_stack: LocalStack, clock: TravelClock
) -> None:
    stack = crm_stack
    await created(stack, clock)
    (post,) = stack.sim.messages(ENTERPRISE)
    assert "Ana Silva" in post.all_text and "Acme Freight" in post.all_text
    lead = await stack.services.lead(1)
    assert (lead.external_id, lead.crm_id, lead.email) == (
        "hubspot:451",
        "451",
        "ana.silva@acme.example",
    )
    clock.advance(seconds=30)
    status, answer = await hubspot(stack, clock, contact())  # HubSpot's retry
    assert (status, answer) == (200, {"handled": 0, "ignored": 1})
    await stack.settle()
    assert len(stack.sim.messages(ENTERPRISE)) == 1
    assert await stack.services.store.count_leads() == 1


async def test_an_owner_changed_in_hubspot_reassigns_the_lead_in_slack(
    crm_stack: LocalStack, clock: TravelClock
) -> None:
    stack = crm_stack
    await created(stack, clock)
    clock.advance(minutes=5)
    await stack.driver.press(MAYA, "Claim", channel=ENTERPRISE)
    await stack.settle()
    assert (await stack.services.lead(1)).owner == MAYA

    clock.advance(minutes=5)
    status, answer = await hubspot(
        stack, clock, [change(11, "hubspot_owner_id", TOM_OWNER, at=clock())], version="v1"
    )
    assert (status, answer) == (200, {"handled": 1, "ignored": 0})
    await stack.settle()
    lead = await stack.services.lead(1)
    assert lead.owner == TOM
    assert f"Reassigned to <@{TOM}> from <@{MAYA}>" in thread(stack)[-1]
    assert "owner was changed in the CRM" in thread(stack)[-1]
    assert any("The CRM handed you" in text for text in dms(stack, TOM))
    assert any("The CRM reassigned your lead" in text for text in dms(stack, MAYA))
    (post,) = stack.sim.messages(ENTERPRISE)
    assert f"<@{TOM}>" in post.all_text  # the post shows its new owner
    assert f"Owner changed in the CRM from <@{MAYA}>" in post.all_text  # and why
    events = await stack.services.store.events(1)
    (moved,) = [e for e in events if e.type == "reassigned"]
    assert moved.actor == "crm" and moved.data["from"] == MAYA and moved.data["to"] == TOM

    # The echo of the owner Handoff itself wrote to HubSpot: nothing changes.
    notes = len(thread(stack))
    status, answer = await hubspot(
        stack, clock, [change(12, "hubspot_owner_id", TOM_OWNER)], version="v1"
    )
    assert (status, answer) == (200, {"handled": 0, "ignored": 1})
    # An owner Handoff cannot find in Slack: the lead keeps its owner.
    status, answer = await hubspot(stack, clock, [change(13, "hubspot_owner_id", "999")])
    assert (status, answer) == (200, {"handled": 0, "ignored": 1})
    await stack.settle()
    assert (await stack.services.lead(1)).owner == TOM
    assert len(thread(stack)) == notes
    # A change made before the last change of owner, delivered late (HubSpot's retry, or the
    # echo of Maya's claim written to HubSpot before Tom got the lead): Tom's stands.
    before = clock() - timedelta(minutes=3)
    status, answer = await hubspot(
        stack, clock, [change(15, "hubspot_owner_id", MAYA_OWNER, at=before)], version="v1"
    )
    assert (status, answer) == (200, {"handled": 0, "ignored": 1})
    await stack.settle()
    assert (await stack.services.lead(1)).owner == TOM
    assert len(thread(stack)) == notes
    # A lead status change is only recorded.
    status, answer = await hubspot(stack, clock, [change(14, "hs_lead_status", "IN_PROGRESS")])
    assert (status, answer) == (200, {"handled": 1, "ignored": 0})
    (status_event,) = [e for e in await stack.services.store.events(1) if e.type == "crm_status"]
    assert status_event.actor == "crm" and status_event.data == {"status": "IN_PROGRESS"}


async def test_two_owner_changes_in_one_batch_leave_the_lead_with_the_later_owner(
    crm_stack_both: LocalStack, clock: TravelClock
) -> None:
    """HubSpot batches the notifications of changes made close together (up to 100 in one
    request: its Webhooks API guide). Owner to Tom, then a minute later back to Maya, both told
    in one delivery: the lead ends with Maya, as HubSpot does. A change told late, made between
    the two (`occurredAt` before Maya's), does not undo her: the order is the CRM's, by
    `occurredAt`, not the moment Handoff applied the earlier change."""
    stack = crm_stack_both
    await claimed(stack, clock)
    clock.advance(minutes=10)
    to_tom = change(21, "hubspot_owner_id", TOM_OWNER, at=clock() - timedelta(minutes=2))
    to_maya = change(22, "hubspot_owner_id", MAYA_OWNER, at=clock() - timedelta(minutes=1))
    status, answer = await hubspot(stack, clock, [to_tom, to_maya], version="v1")
    assert (status, answer) == (200, {"handled": 2, "ignored": 0})
    await stack.settle()
    assert (await stack.services.lead(1)).owner == MAYA
    between = change(23, "hubspot_owner_id", TOM_OWNER, at=clock() - timedelta(seconds=90))
    assert await hubspot(stack, clock, [between], version="v1") == (
        200,
        {"handled": 0, "ignored": 1},
    )
    await stack.settle()
    assert (await stack.services.lead(1)).owner == MAYA


async def test_two_owner_changes_keep_their_order_when_hubspots_clock_is_ahead_of_ours(
    crm_stack_both: LocalStack, clock: TravelClock
) -> None:
    """HubSpot's clock 40 s ahead of ours (its requests are taken within 5 minutes of our
    clock: the v3 signature's window). The lead's owner set to Maya, then 20 s later to Tom,
    both told in one delivery with Tom's first: the lead ends with Tom, as in HubSpot. Both
    times are HubSpot's, so they order the two; Tom's is not cut to our clock, which would
    put Maya's after it."""
    stack = crm_stack_both
    await claimed(stack, clock)  # by Maya
    clock.advance(minutes=10)
    ahead = timedelta(seconds=40)
    to_maya = change(31, "hubspot_owner_id", MAYA_OWNER, at=clock() - timedelta(seconds=30) + ahead)
    to_tom = change(32, "hubspot_owner_id", TOM_OWNER, at=clock() - timedelta(seconds=10) + ahead)
    status, answer = await hubspot(stack, clock, [to_tom, to_maya], version="v1")
    assert (status, answer) == (200, {"handled": 1, "ignored": 1})
    await stack.settle()
    assert (await stack.services.lead(1)).owner == TOM


async def test_a_salesforce_owner_found_by_email_becomes_the_suggested_owner(
    crm_stack: LocalStack, clock: TravelClock
) -> None:
    stack = crm_stack
    stack.sim.add_user(TOM, "tom", "Tom Okafor", email="tom.okafor@example.com")
    lead = {
        "email": "raj@globex.example",
        "name": "Raj Patel",
        "title": "VP Sales",
        "company": {"name": "Globex", "employees": 5000, "country": "AU"},
        "score": 90,
    }
    created_change = {"event_id": "sf-1", "type": "created", "lead_id": SF_LEAD, "lead": lead}
    assert await salesforce(stack, created_change) == (200, {"handled": 1, "ignored": 0})
    await stack.settle()
    posted = await stack.services.lead(1)
    assert (posted.external_id, posted.crm_id, posted.owner) == (
        f"salesforce:{SF_LEAD}",
        SF_LEAD,
        None,
    )
    owner = {
        "event_id": "sf-2",
        "type": "owner",
        "lead_id": SF_LEAD,
        "owner_id": "0055e000001XyZw",
        "owner_email": "Tom.Okafor@example.com",
    }
    assert posted.suggested_owner == MAYA  # the rotation's first turn
    assert await salesforce(stack, owner) == (200, {"handled": 1, "ignored": 0})
    await stack.settle()
    lead_now = await stack.services.lead(1)
    assert (lead_now.owner, lead_now.suggested_owner) == (None, TOM)
    assert f"Reassigned to <@{TOM}> from <@{MAYA}>" in thread(stack)[-1]
    assert any(
        "The CRM handed you" in text and "claim it there" in text for text in dms(stack, TOM)
    )
    assert any("the lead suggested to you" in text for text in dms(stack, MAYA))
    stage = {"event_id": "sf-3", "type": "stage", "lead_id": SF_LEAD, "stage": "opportunity"}
    stage |= {"amount": 40000}
    assert await salesforce(stack, [stage]) == (200, {"handled": 1, "ignored": 0})
    await stack.settle()
    (post,) = stack.sim.messages(ENTERPRISE)
    assert "💼 An opportunity in the CRM · AUD 40,000" in post.all_text


async def test_a_salesforce_time_without_its_zone_is_refused_as_intake_refuses_it(
    crm_stack: LocalStack, clock: TravelClock
) -> None:
    """A stage change is recorded like `POST /leads/{external_id}/activity`, whose `at` must say
    its time zone (docs/intake.md; RFC 3339's date-time, the schema's `format: date-time`): a
    Flow's local wall time read as UTC would date the deal hours off."""
    stack = crm_stack
    lead = {"email": "raj@globex.example", "name": "Raj Patel", "title": "VP Sales"}
    lead |= {"company": {"name": "Globex", "employees": 5000, "country": "AU"}, "score": 90}
    zoneless = lead | {"received_at": "2026-11-22T09:30:00"}
    sent = {"event_id": "sf-0", "type": "created", "lead_id": SF_LEAD, "lead": zoneless}
    status, answer = await salesforce(stack, sent)
    assert status == 400
    assert answer["errors"][0]["field"] == "lead.received_at"
    assert "must say its time zone" in answer["errors"][0]["message"]
    created_change = {"event_id": "sf-1", "type": "created", "lead_id": SF_LEAD, "lead": lead}
    assert await salesforce(stack, created_change) == (200, {"handled": 1, "ignored": 0})
    await stack.settle()
    stage = {"event_id": "sf-3", "type": "stage", "lead_id": SF_LEAD, "stage": "opportunity"}
    stage |= {"amount": 40000, "at": "2026-11-22T09:30:00"}
    status, answer = await salesforce(stack, [stage])
    assert status == 400
    assert answer["errors"][0]["field"] == "[0].at"
    assert "must say its time zone" in answer["errors"][0]["message"]
    await stack.settle()
    assert not [e for e in await stack.services.store.events(1) if e.type == "opportunity"]
    (post,) = stack.sim.messages(ENTERPRISE)
    assert "opportunity in the CRM" not in post.all_text
    stage |= {"at": clock().isoformat()}
    assert await salesforce(stack, [stage]) == (200, {"handled": 1, "ignored": 0})


async def test_a_deal_won_in_the_crm_shows_in_the_report(
    crm_stack: LocalStack, clock: TravelClock
) -> None:
    stack = crm_stack
    await claimed(stack, clock)
    before = await report(stack)
    won = [change(21, "lifecyclestage", "customer")]
    assert await hubspot(stack, clock, won) == (200, {"handled": 1, "ignored": 0})
    (event,) = [e for e in await stack.services.store.events(1) if e.type == "won"]
    assert event.actor == "crm"
    await stack.settle()
    (post,) = stack.sim.messages(ENTERPRISE)
    assert "🏆 Deal won in the CRM" in post.all_text  # the message shows it
    assert await hubspot(stack, clock, won) == (200, {"handled": 0, "ignored": 1})  # a retry
    after = await report(stack)
    assert "*Win rate*\n–\n0 of 0" in before
    assert "*Win rate*\n100%\n1 of 1" in after


async def report(stack: LocalStack) -> str:
    response = await stack.driver.command(MANAGER, "/sla-report", "", channel_id=ROOM)
    assert response.status == 200
    await stack.settle()
    return stack.sim.ephemerals(user=MANAGER, channel=ROOM)[-1].all_text


async def test_a_contact_deleted_in_hubspot_is_erased(
    crm_stack: LocalStack, clock: TravelClock
) -> None:
    stack = crm_stack
    await claimed(stack, clock)
    deleted = {**change(31, "x", "y"), "subscriptionType": "contact.privacyDeletion"}
    assert await hubspot(stack, clock, [deleted]) == (200, {"handled": 1, "ignored": 0})
    await stack.settle()
    found = (await database_text(stack)) + slack_text(stack)
    for trace in ("ana.silva", "Ana Silva", "Acme Freight", "5550 9876", "Revenue Operations"):
        assert trace.lower() not in found.lower(), trace
    lead = await stack.services.lead(1)
    # The contact id is kept only as a digest (the record is known, its id is not readable).
    digest = stack.services.store.erasure_key.tombstone("451")
    assert lead.erased_at is not None and lead.crm_id == digest != "451"
    # HubSpot's retry of the deletion changes nothing more.
    assert await hubspot(stack, clock, [deleted]) == (200, {"handled": 0, "ignored": 1})
    # Nor does another deletion of the same contact (a new event, say a second privacy
    # request): the erased record is known, so it is answered 200, never the 404 HubSpot
    # would retry for days.
    again = {**change(32, "x", "y"), "subscriptionType": "contact.privacyDeletion"}
    assert await hubspot(stack, clock, [again]) == (200, {"handled": 0, "ignored": 1})
    # The CRM inbox named the contact in each notification's key: none is left, nor kept
    # by the retries answered since.
    assert inbox_rows(await database_text(stack), "451") == []


def inbox_rows(dump: str, crm_id: str) -> list[str]:
    """The CRM inbox's rows of a database dump that name the CRM record `crm_id`."""
    return [
        line
        for line in dump.splitlines()
        if line.startswith("crm_inbox:") and (f":{crm_id}" in line or f'"{crm_id}"' in line)
    ]


async def test_forget_drops_the_crm_notifications_that_named_the_person(
    crm_stack_both: LocalStack, clock: TravelClock
) -> None:
    """`handoff forget` of a person whose contact HubSpot sent (its workflow's webhook, then a
    status change): the database dump keeps no CRM inbox row naming the contact, on SQLite and
    PostgreSQL, and HubSpot's late retries are answered, change nothing and leave none."""
    stack = crm_stack_both
    await claimed(stack, clock)
    status = change(41, "hs_lead_status", "OPEN")
    assert await hubspot(stack, clock, [status]) == (200, {"handled": 1, "ignored": 0})
    before = await database_text(stack)
    assert len(inbox_rows(before, "451")) == 2  # the workflow's call, the status change

    code, output = await forget_cli(stack, "ana.silva@acme.example")
    assert code == 0, output
    await stack.settle()
    assert inbox_rows(await database_text(stack), "451") == []

    assert await hubspot(stack, clock, contact()) == (200, {"handled": 0, "ignored": 1})
    assert await hubspot(stack, clock, [status]) == (200, {"handled": 0, "ignored": 1})
    assert inbox_rows(await database_text(stack), "451") == []
    assert await stack.services.store.count_leads() == 1


async def test_the_crm_inbox_is_pruned_once_the_crms_retries_are_over(
    crm_stack: LocalStack, clock: TravelClock
) -> None:
    """The hourly retention job drops a notification's key `KEEP` after it came (HubSpot
    retries for up to 3 days), not before: until then its retry is still refused."""
    stack = crm_stack
    await created(stack, clock)
    start = clock()
    clock.advance(days=KEEP.days, hours=-1)
    await stack.handoff.prune()
    assert len(inbox_rows(await database_text(stack), "451")) == 1
    assert await hubspot(stack, clock, contact()) == (200, {"handled": 0, "ignored": 1})
    clock.advance(hours=2)
    await stack.handoff.prune()
    assert inbox_rows(await database_text(stack), "451") == []
    assert clock() - start > KEEP


async def test_bad_signatures_are_refused_and_change_nothing(
    crm_stack: LocalStack, clock: TravelClock
) -> None:
    stack = crm_stack
    status, answer = await hubspot(stack, clock, contact(), secret="not the secret")
    assert status == 401 and "X-HubSpot-Signature-v3 does not match" in answer["error"]
    status, answer = await hubspot(stack, clock, contact(), age_minutes=6)
    assert status == 401 and "more than 5 minutes" in answer["error"]
    status, answer = await hubspot(stack, clock, [change(1, "x", "y")], version="v1", secret="x")
    assert status == 401
    # A delivery with its v1 signature alone (a recorded one sent again, its v3 taken off):
    # v1 signs no time, so it is refused however well it matches.
    status, answer = await hubspot(stack, clock, [change(1, "x", "y")], version="v1 alone")
    assert status == 401 and "older X-HubSpot-Signature alone is not enough" in answer["error"]
    status, answer = await salesforce(stack, {"event_id": "e"}, token="wrong")
    assert status == 401 and "HANDOFF_SALESFORCE_WEBHOOK_TOKEN" in answer["error"]
    # A timestamp centuries away, and a token that is not text: refused, not a 500.
    url = f"{stack.base_url}/crm/hubspot"
    far = {"X-HubSpot-Request-Timestamp": "9" * 15, "X-HubSpot-Signature-v3": "AAAA"}
    async with stack.session.post(url, json=contact(), headers=far) as response:
        assert response.status == 401 and "more than 5 minutes" in (await response.json())["error"]
    status, raw = await raw_post(stack, "/crm/salesforce", b"Authorization: Bearer \xff\xfe")
    assert status == 401 and b"HANDOFF_SALESFORCE_WEBHOOK_TOKEN" in raw
    assert await stack.services.store.count_leads() == 0
    assert "crm_inbox" not in await database_text(stack)


async def test_behind_a_proxy_that_ends_tls_the_url_hubspot_called_is_the_one_checked(
    crm_stack: LocalStack, clock: TravelClock
) -> None:
    """HubSpot signs the URL it called (v3: method + URI + body + timestamp, the URI with
    `%3A` and its other listed escapes decoded: "Validating requests"). Behind a proxy that
    ends TLS, Handoff sees `http` and the proxy's `X-Forwarded-Proto: https`; the original
    `Host` is passed through. Without the proxy's header the check fails, and the answer (and
    log line) names the URL Handoff checked, so the operator sees what the proxy changed."""
    stack = crm_stack
    body = json.dumps(contact()).encode()
    stamp = str(int(clock().timestamp() * 1000))
    called = "https://handoff.example.com/crm/hubspot?portal=62515:1"  # as HubSpot signs it
    source = b"POST" + called.encode() + body + stamp.encode()
    signature = base64.b64encode(hmac.new(SECRET.encode(), source, hashlib.sha256).digest())
    headers = {
        "Content-Type": "application/json",
        "Host": "handoff.example.com",
        "X-HubSpot-Request-Timestamp": stamp,
        "X-HubSpot-Signature-v3": signature.decode(),
    }
    url = f"{stack.base_url}/crm/hubspot?portal=62515%3A1"  # the target URL as registered
    async with stack.session.post(url, data=body, headers=headers) as response:
        answer = await response.json()
        assert response.status == 401, answer
    assert "http://handoff.example.com/crm/hubspot?portal=62515:1" in answer["error"]
    assert "X-Forwarded-Proto" in answer["error"]
    assert await stack.services.store.count_leads() == 0
    proxied = headers | {"X-Forwarded-Proto": "https"}
    async with stack.session.post(url, data=body, headers=proxied) as response:
        assert (response.status, await response.json()) == (200, {"handled": 1, "ignored": 0})


async def raw_post(stack: LocalStack, path: str, header: bytes) -> tuple[int, bytes]:
    """POST `{}` with one header line of raw bytes (aiohttp's client sends only text)."""
    host, port = stack.base_url.removeprefix("http://").split(":")
    reader, writer = await asyncio.open_connection(host, int(port))
    request = (
        f"POST {path} HTTP/1.1\r\nHost: {host}\r\nContent-Type: application/json\r\n"
        "Content-Length: 2\r\nConnection: close\r\n"
    ).encode()
    writer.write(request + header + b"\r\n\r\n{}")
    answer = await reader.read()
    writer.close()
    await writer.wait_closed()
    status = int(answer.split(b" ", 2)[1])
    return status, answer.split(b"\r\n\r\n", 1)[1]


async def test_unknown_shapes_and_unknown_leads(crm_stack: LocalStack, clock: TravelClock) -> None:
    stack = crm_stack
    status, answer = await hubspot(stack, clock, {"hello": "world"})
    assert status == 400
    assert [error["field"] for error in answer["errors"]] == ["objectId", "properties"]
    status, answer = await salesforce(
        stack, {"event_id": "e", "type": "won", "lead_id": SF_LEAD, "colour": "red"}
    )
    assert status == 400
    assert [error["field"] for error in answer["errors"]] == ["type", "colour"]
    no_email = {"vid": 7, "properties": {"firstname": {"value": "Nobody"}}}
    status, answer = await hubspot(stack, clock, no_email)
    assert status == 400 and answer["errors"][0]["field"] == "lead.email"

    status, answer = await hubspot(stack, clock, [change(41, "hs_lead_status", "OPEN", 999)])
    assert status == 404 and "999" in answer["error"]
    await created(stack, clock)
    batch = [change(42, "hs_lead_status", "OPEN", 999), change(43, "hs_lead_status", "OPEN")]
    status, answer = await hubspot(stack, clock, batch)
    assert (status, answer) == (200, {"handled": 1, "ignored": 0, "unknown": ["999"]})
    assert await stack.services.store.count_leads() == 1


async def test_without_a_crm_configured_the_routes_say_so(stack: LocalStack) -> None:
    async with stack.session.post(f"{stack.base_url}/crm/hubspot", json=[]) as response:
        assert response.status == 404
        answer = await response.json()
    assert answer == {
        "error": "no CRM configured: set HUBSPOT_CLIENT_SECRET to take hubspot's webhooks"
    }


async def test_another_portals_events_are_ignored_with_crm_portal(
    sqlite_url: str, crm_policy: Policy, clock: TravelClock, hub: HubSpotFake
) -> None:
    """An app installed in a sandbox portal beside production signs both portals' webhooks
    with one secret: with `crm.portal`, the sandbox's deletion of a contact with the same id
    erases nothing here (it erased the production lead); this portal's events apply."""
    data = snapshot(crm_policy)
    data["crm"]["portal"] = 62515
    stack = await start_stack(
        sqlite_url,
        parse_policy(data),
        clock=clock,
        HUBSPOT_ACCESS_TOKEN=hub.token,
        HUBSPOT_API_URL=hub.base_url,
        HUBSPOT_CLIENT_SECRET=SECRET,
    )
    try:
        await claimed(stack, clock)
        deleted = {**change(31, "x", "y"), "subscriptionType": "contact.privacyDeletion"}
        sandbox = {**deleted, "portalId": 99999999}
        assert await hubspot(stack, clock, [sandbox]) == (200, {"handled": 0, "ignored": 0})
        assert (await stack.services.lead(1)).erased_at is None
        assert await hubspot(stack, clock, [deleted]) == (200, {"handled": 1, "ignored": 0})
        assert (await stack.services.lead(1)).erased_at is not None
    finally:
        await stack.close()


async def test_a_contact_without_an_email_does_not_lose_the_rest_of_its_batch(
    crm_stack: LocalStack, clock: TravelClock, hub: HubSpotFake
) -> None:
    """HubSpot sends up to 100 events in one request, and a contact need not have an email
    (one made from a phone call). Its creation makes no lead; the other events of the batch
    still apply, and HubSpot's retry of the batch applies nothing twice."""
    stack = crm_stack
    await created(stack, clock)
    no_email = hub.add_contact("", firstname="Walk-in", phone="+61 2 5550 0000")
    creation = {**change(61, "x", "y", int(no_email)), "subscriptionType": "contact.creation"}
    batch = [creation, change(62, "hs_lead_status", "IN_PROGRESS")]
    status, answer = await hubspot(stack, clock, batch, version="v1")
    assert status == 200 and (answer["handled"], answer["ignored"]) == (1, 0), answer
    assert [error["field"] for error in answer["errors"]] == ["lead.email"]
    statuses = [e for e in await stack.services.store.events(1) if e.type == "crm_status"]
    assert [e.data for e in statuses] == [{"status": "IN_PROGRESS"}]
    status, answer = await hubspot(stack, clock, batch, version="v1")  # a retry
    assert status == 200 and answer["handled"] == 0, answer
    statuses = [e for e in await stack.services.store.events(1) if e.type == "crm_status"]
    assert len(statuses) == 1
    assert await stack.services.store.count_leads() == 1


async def test_events_handoff_does_not_follow_are_ignored_whatever_their_shape(
    crm_stack: LocalStack, clock: TravelClock
) -> None:
    """An association change has no `objectId` (HubSpot sends `fromObjectId` and `toObjectId`
    instead): it is not ours to follow, so it does not make HubSpot's batch a 400."""
    stack = crm_stack
    await created(stack, clock)
    association = {
        "eventId": 71,
        "subscriptionId": 10,
        "portalId": 62515,
        "appId": 54321,
        "occurredAt": 1795392000000,
        "subscriptionType": "contact.associationChange",
        "attemptNumber": 0,
        "changeSource": "USER",
        "associationType": "CONTACT_TO_COMPANY",
        "fromObjectId": 451,
        "toObjectId": 8001,
        "associationRemoved": False,
        "isPrimaryAssociation": True,
    }
    batch = [association, change(72, "hs_lead_status", "IN_PROGRESS")]
    status, answer = await hubspot(stack, clock, batch, version="v1")
    assert (status, answer) == (200, {"handled": 1, "ignored": 0})


async def test_two_notifications_of_one_event_id_are_both_applied(
    crm_stack: LocalStack, clock: TravelClock
) -> None:
    """HubSpot's `eventId` "is not guaranteed to be unique": one change in HubSpot that sets
    two followed properties may come as two notifications with the same id. Both apply; the
    retry of either changes nothing."""
    stack = crm_stack
    await claimed(stack, clock)
    batch = [change(81, "hs_lead_status", "CONNECTED"), change(81, "lifecyclestage", "customer")]
    assert await hubspot(stack, clock, batch, version="v1") == (200, {"handled": 2, "ignored": 0})
    types = [e.type for e in await stack.services.store.events(1)]
    assert "crm_status" in types and "won" in types
    assert await hubspot(stack, clock, batch, version="v1") == (200, {"handled": 0, "ignored": 2})


def generic(event: dict[str, Any], object_type: str = "0-1") -> dict[str, Any]:
    """`event` in HubSpot's generic format ("Public Beta: Generic Webhook Subscriptions", the
    format of apps on its current developer platform): `object.*` for `contact.*`, the object
    named by `objectTypeId` in its raw id ("0-1" a contact, "0-3" a deal)."""
    kind = "object." + event["subscriptionType"].split(".", 1)[1]
    return {**event, "subscriptionType": kind, "objectTypeId": object_type}


async def test_a_contacts_changes_in_the_generic_format_do_what_the_legacy_ones_do(
    crm_stack_both: LocalStack, clock: TravelClock
) -> None:
    """An app on HubSpot's current developer platform subscribes with `object.*` and an
    `objectTypeId`: a contact's owner change reassigns its lead in Slack, its lead status is
    recorded, its retry changes nothing, and its deletion erases the person."""
    stack = crm_stack_both
    await claimed(stack, clock)
    clock.advance(minutes=5)
    owner = generic(change(101, "hubspot_owner_id", TOM_OWNER, at=clock()))
    assert await hubspot(stack, clock, [owner], version="v1") == (200, {"handled": 1, "ignored": 0})
    await stack.settle()
    assert (await stack.services.lead(1)).owner == TOM
    assert f"Reassigned to <@{TOM}> from <@{MAYA}>" in thread(stack)[-1]
    assert any("The CRM handed you" in text for text in dms(stack, TOM))
    # HubSpot's retry of it: nothing more.
    assert await hubspot(stack, clock, [owner]) == (200, {"handled": 0, "ignored": 1})

    deleted = generic({**change(102, "x", "y"), "subscriptionType": "contact.deletion"})
    assert await hubspot(stack, clock, [deleted]) == (200, {"handled": 1, "ignored": 0})
    await stack.settle()
    found = (await database_text(stack)) + slack_text(stack)
    for trace in ("ana.silva", "Ana Silva", "Acme Freight", "5550 9876"):
        assert trace.lower() not in found.lower(), trace
    lead = await stack.services.lead(1)
    digest = stack.services.store.erasure_key.tombstone("451")
    assert lead.erased_at is not None and lead.crm_id == digest
    assert await hubspot(stack, clock, [deleted]) == (200, {"handled": 0, "ignored": 1})


async def test_a_mixed_batch_of_both_formats_applies_the_contacts_events_only(
    crm_stack_both: LocalStack, clock: TravelClock, hub: HubSpotFake
) -> None:
    """One delivery with legacy and generic events: the contact's are applied (its creation
    read through the API, its status, its merge), a deal's creation and an association change
    are ignored (not counted), as an event of another object always was."""
    stack = crm_stack_both
    await created(stack, clock)
    clock.advance(minutes=5)
    newcomer = hub.add_contact("bea.costa@globex.example", firstname="Bea", lastname="Costa")
    merge = {
        **change(113, "x", "y"),
        "subscriptionType": "contact.merge",
        "primaryObjectId": 777,
        "mergedObjectIds": [451],
        "newObjectId": 777,
        "numberOfPropertiesMoved": 2,
    }
    association = {
        **change(114, "x", "y"),
        "subscriptionType": "object.associationChange",
        "fromObjectId": 451,
        "toObjectId": 8001,
    }
    for name in ("objectId", "propertyName", "propertyValue"):
        association.pop(name)
    batch = [
        generic({**change(110, "x", "y", 9001), "subscriptionType": "contact.creation"}, "0-3"),
        generic({**change(111, "x", "y", int(newcomer)), "subscriptionType": "contact.creation"}),
        generic(change(112, "hs_lead_status", "IN_PROGRESS")),
        association,
        generic(merge),
        change(115, "lifecyclestage", "opportunity", 777),  # legacy, on the merged contact
    ]
    status, answer = await hubspot(stack, clock, batch, version="v1")
    assert (status, answer) == (200, {"handled": 4, "ignored": 0}), answer
    await stack.settle()
    assert await stack.services.store.count_leads() == 2
    bea = await stack.services.lead(2)
    assert (bea.external_id, bea.email) == (f"hubspot:{newcomer}", "bea.costa@globex.example")
    lead = await stack.services.lead(1)
    assert lead.crm_id == "777"
    events = await stack.services.store.events(1)
    assert [e.data for e in events if e.type == "crm_status"] == [{"status": "IN_PROGRESS"}]
    (tied,) = [e for e in events if e.type == "crm_merged"]
    assert tied.data == {"crm_id": "777", "merged": ["451"]}
    assert "opportunity" in [e.type for e in events]
    # HubSpot's retry of the whole delivery applies nothing twice.
    status, answer = await hubspot(stack, clock, batch, version="v1")
    assert status == 200 and answer["handled"] == 0, answer
    assert await stack.services.store.count_leads() == 2


async def test_a_generic_event_without_its_object_type_is_refused_and_changes_nothing(
    crm_stack_both: LocalStack, clock: TravelClock
) -> None:
    """Without `objectTypeId` an `object.*` event could be a contact's or a deal's: the request
    is refused naming the field (HubSpot retries it), and nothing in it is applied."""
    stack = crm_stack_both
    await created(stack, clock)
    untyped = {**generic(change(121, "hs_lead_status", "OPEN")), "objectTypeId": None}
    del untyped["objectTypeId"]
    numbered = {**generic(change(122, "hs_lead_status", "OPEN")), "objectTypeId": 1}
    batch = [change(120, "hs_lead_status", "CONNECTED"), untyped, numbered]
    status, answer = await hubspot(stack, clock, batch, version="v1")
    assert status == 400, answer
    assert [(e["field"], e["message"]) for e in answer["errors"]] == [
        ("[1].objectTypeId", "is required for object.propertyChange (0-1 is a contact)"),
        ("[2].objectTypeId", "must be text like 0-1 (a contact)"),
    ]
    assert not [e for e in await stack.services.store.events(1) if e.type == "crm_status"]


def merge_of(event_id: int, primary: int, merged: int) -> dict[str, Any]:
    """A `contact.merge` event: contact `merged` merged into `primary`, which remains."""
    return {
        **change(event_id, "x", "y", primary),
        "subscriptionType": "contact.merge",
        "primaryObjectId": primary,
        "mergedObjectIds": [merged],
        "newObjectId": primary,
        "numberOfPropertiesMoved": 1,
    }


async def test_events_about_a_contact_merged_into_an_erased_one_are_taken_and_change_nothing(
    crm_stack_both: LocalStack, clock: TravelClock
) -> None:
    """Ana's contact (451) had a duplicate (452) merged into it; she is forgotten (`handoff
    forget`), and later another duplicate (453) is merged into her contact. HubSpot's events
    about the merged contacts (a late status change, a deletion, a workflow's call, in either
    format) are answered 200 and ignored, never the 404 HubSpot retries for 24 hours (its
    Webhooks API guide, "Retries": any 4xx or 5xx, up to 10 times): nothing of Ana comes back
    and no contact id is stored in plain. A contact never seen is still a 404."""
    stack = crm_stack_both
    await claimed(stack, clock)
    ignored = (200, {"handled": 0, "ignored": 1})
    assert await hubspot(stack, clock, [merge_of(201, 451, 452)]) == ignored  # no lead of 452
    code, output = await forget_cli(stack, "ana.silva@acme.example")
    assert code == 0, output
    await stack.settle()
    assert await hubspot(stack, clock, [merge_of(202, 451, 453)]) == ignored

    late = [
        [change(203, "hs_lead_status", "CONNECTED", 452)],
        [{**change(204, "x", "y", 452), "subscriptionType": "contact.deletion"}],
        [generic(change(205, "hubspot_owner_id", TOM_OWNER, 452))],
        [generic({**change(206, "x", "y", 453), "subscriptionType": "contact.deletion"})],
        [change(207, "lifecyclestage", "customer", 453)],
        contact(452),  # a workflow's call about the merged contact, delivered late
    ]
    for payload in late:
        assert await hubspot(stack, clock, payload) == ignored, payload
        assert await hubspot(stack, clock, payload) == ignored, payload  # and its retry
    await stack.settle()

    assert await stack.services.store.count_leads() == 1
    lead = await stack.services.lead(1)
    digest = stack.services.store.erasure_key.tombstone("451")
    assert lead.erased_at is not None and lead.crm_id == digest
    assert lead.email == "erased-1@erased.invalid"
    dump = await database_text(stack)
    for trace in ("ana.silva", "Ana Silva", "Acme Freight", '"452"', '"453"', ":452", ":453"):
        assert trace.lower() not in (dump + slack_text(stack)).lower(), trace

    status, answer = await hubspot(stack, clock, [change(208, "hs_lead_status", "OPEN", 999)])
    assert status == 404 and "999" in answer["error"], answer


@pytest.mark.parametrize(
    ("fault", "waits"),
    [
        ({"retry_after": 120}, 120),  # Slack's 429, its wait longer than the client's retries
        ({"error": "fatal_error"}, 60),
        ({"error": "internal_error", "status": 500}, 60),
        ({"error": "request_timeout"}, 60),
        ({"drop": True}, 60),  # no answer at all
    ],
)
async def test_an_owner_slack_will_not_look_up_now_is_answered_503_and_taken_on_its_retry(
    crm_stack: LocalStack,
    clock: TravelClock,
    caplog: pytest.LogCaptureFixture,
    fault: dict[str, Any],
    waits: int,
) -> None:
    """The CRM hands a lead to an owner found by email, and Slack's `users.lookupByEmail` fails
    for the moment (a 429 with its `Retry-After`, `fatal_error`, `internal_error`,
    `request_timeout`, a dropped connection). The notification is not taken: a 503 with
    `Retry-After` (Slack's wait, else 60 s), as for a CRM read that failed, so the CRM sends it
    again (HubSpot retries "any HTTP status code (4xx or 5xx)": its Webhooks API guide), with no
    traceback in the log and nothing changed (before: a 500 "internal error" and a traceback).
    Its retry, once Slack answers, hands the lead over."""
    stack = crm_stack
    await raj_for_maya(stack)
    assert (await stack.services.lead(1)).suggested_owner == MAYA
    thread_before, dms_before = len(thread(stack)), len(dms(stack, TOM))
    owner = owner_to_tom("sf-2")

    if fault.pop("drop", False):
        stack.sim.inject_connection_drop("users.lookupByEmail")
    else:
        stack.sim.inject("users.lookupByEmail", **fault)
    status, answer, retry_after = await salesforce_answer(stack, owner)
    assert status == 503, answer
    assert retry_after == str(waits)
    assert "Slack" in answer["error"] and "again" in answer["error"]
    assert "Traceback" not in caplog.text
    assert not any(record.exc_info for record in caplog.records)
    await stack.settle()
    lead_now = await stack.services.lead(1)
    assert (lead_now.owner, lead_now.suggested_owner) == (None, MAYA)
    assert (len(thread(stack)), len(dms(stack, TOM))) == (thread_before, dms_before)

    stack.sim.clear_faults()
    clock.advance(seconds=waits)
    assert await salesforce(stack, owner) == (200, {"handled": 1, "ignored": 0})
    await stack.settle()
    assert (await stack.services.lead(1)).suggested_owner == TOM
    assert f"Reassigned to <@{TOM}> from <@{MAYA}>" in thread(stack)[-1]


async def test_an_owner_lookup_slower_than_the_crms_wait_is_answered_503_and_applied_once_later(
    crm_stack_both: LocalStack, clock: TravelClock, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The CRM hands a lead to an owner found by email, and Slack answers the lookup
    (`users.lookupByEmail`), but slowly: the client would wait 10 s, longer than a CRM gives
    its webhook (HubSpot counts a delivery failed after a few seconds, its Webhooks API guide,
    "Retries"; a Salesforce callout's default timeout is 10 s). The request stops waiting at
    its bound for outside calls (READS_BOUND, shortened here; Slack takes twice as long): a
    503 with a `Retry-After`, nothing changed. Its retry hands the lead over, once."""
    monkeypatch.setattr(crm_inbound, "READS_BOUND", 0.5)
    stack = crm_stack_both
    await raj_for_maya(stack)
    assert (await stack.services.lead(1)).suggested_owner == MAYA
    thread_before, dms_before = len(thread(stack)), len(dms(stack, TOM))
    owner = owner_to_tom("sf-2")

    stack.sim.answer_delay = 1.0
    status, answer, retry_after = await salesforce_answer(stack, owner)
    stack.sim.answer_delay = 0.0
    assert status == 503, answer
    assert retry_after is not None and int(retry_after) >= 1
    assert "Slack" in answer["error"] and "again" in answer["error"]
    await stack.settle()
    lead_now = await stack.services.lead(1)
    assert (lead_now.owner, lead_now.suggested_owner) == (None, MAYA)
    assert (len(thread(stack)), len(dms(stack, TOM))) == (thread_before, dms_before)

    clock.advance(seconds=int(retry_after))
    assert await salesforce(stack, owner) == (200, {"handled": 1, "ignored": 0})
    assert await salesforce(stack, owner) == (200, {"handled": 0, "ignored": 1})
    await stack.settle()
    assert (await stack.services.lead(1)).suggested_owner == TOM
    assert sum("Reassigned to" in text for text in thread(stack)) == 1
    assert f"Reassigned to <@{TOM}> from <@{MAYA}>" in thread(stack)[-1]
    assert len(dms(stack, TOM)) == dms_before + 1


@pytest.mark.parametrize(
    ("status", "text"),
    [
        # A load balancer's own 503 in front of Slack (Envoy's), plain text, not Slack's JSON.
        (503, "upstream connect error or disconnect/reset before headers. reset reason: overflow"),
        (200, "<html><body>Please sign in to the network</body></html>"),  # a captive portal
    ],
)
async def test_an_owner_lookup_answered_with_no_slack_json_is_answered_503_not_500(
    crm_stack: LocalStack,
    clock: TravelClock,
    caplog: pytest.LogCaptureFixture,
    status: int,
    text: str,
) -> None:
    """The lookup of the CRM's new owner by email is answered, but not by Slack's Web API: a
    proxy's plain-text page (slack_sdk keeps the text as the answer's data). That is no answer:
    the notification is answered 503 with a `Retry-After`, nothing changed, no traceback (before:
    AttributeError on the text's `.get`, a 500 "internal error"); its retry hands the lead over."""
    stack = crm_stack
    await raj_for_maya(stack)
    owner = owner_to_tom("sf-2")

    stack.sim.inject("users.lookupByEmail", status=status, text=text, times=1)
    answered, answer, retry_after = await salesforce_answer(stack, owner)
    assert answered == 503, answer
    assert retry_after == "60"
    assert "Slack" in answer["error"] and "again" in answer["error"]
    assert "Traceback" not in caplog.text
    assert not any(record.exc_info for record in caplog.records)
    await stack.settle()
    assert (await stack.services.lead(1)).suggested_owner == MAYA

    clock.advance(seconds=60)
    assert await salesforce(stack, owner) == (200, {"handled": 1, "ignored": 0})
    await stack.settle()
    assert (await stack.services.lead(1)).suggested_owner == TOM


async def test_no_owner_lookup_reaches_slack_before_its_429s_retry_after(
    crm_stack: LocalStack, clock: TravelClock
) -> None:
    """Slack answers `users.lookupByEmail` 429 with `Retry-After: 120`: its limit is the app's,
    per method (Slack's rate-limit docs: the header is "the number of seconds until you can
    retry"). The notification is answered 503, and so is every owner change after it until the
    wait is over, with what is left of it, without a call to Slack (before: each one called
    Slack again at once, and was answered 429 again). Once it is over, the retry goes through."""
    stack = crm_stack
    await raj_for_maya(stack)

    async def post(change: dict[str, Any]) -> tuple[int, str | None]:
        status, _, retry_after = await salesforce_answer(stack, change)
        return status, retry_after

    stack.sim.inject("users.lookupByEmail", retry_after=120, times=1)
    assert await post(owner_to_tom("sf-2")) == (503, "120")
    clock.advance(seconds=30)
    assert await post(owner_to_tom("sf-2")) == (503, "90")  # HubSpot's retry, too early
    assert await post(owner_to_tom("sf-3")) == (503, "90")  # another change meanwhile
    lookups = [call for call in stack.sim.calls if call.method == "users.lookupByEmail"]
    assert len(lookups) == 1, lookups
    assert (await stack.services.lead(1)).suggested_owner == MAYA

    clock.advance(seconds=90)
    assert await salesforce(stack, owner_to_tom("sf-2")) == (200, {"handled": 1, "ignored": 0})
    await stack.settle()
    assert (await stack.services.lead(1)).suggested_owner == TOM


@pytest.mark.parametrize(
    "code",
    [
        # Slack's common errors (its Web API reference), each a set-up to fix, not a moment
        # (a refused bot token is not among them: it is fixed, and the change then applies):
        "missing_scope",  # "The token used is not granted the specific scope permissions
        "no_permission",  # required…" / "The workspace token used in this request does not
        "team_access_not_granted",  # have the permissions…" / "The token used is not granted
        "org_login_required",  # access required to complete this request." / "The workspace
        "ekm_access_denied",  # is undergoing an enterprise migration…" / "Administrators have
        "invalid_arguments",  # suspended the ability to post a message." / "The method was
        "not_allowed_token_type",  # called with invalid arguments." / "The token type used in
        "two_factor_setup_required",  # this request is not allowed." / "Two factor setup is
        "access_denied",  # required." / "Access to a resource specified in the request is denied."
    ],
)
async def test_an_owner_lookup_slack_refuses_for_good_leaves_the_owner_and_applies_the_rest(
    crm_stack: LocalStack, caplog: pytest.LogCaptureFixture, code: str
) -> None:
    """users.lookupByEmail refused with one of Slack's errors no waiting mends (a scope or
    access not granted, an admin's setting): the lead keeps its owner, the notification is
    taken (200, ignored), the change after it in the batch is applied, and the log says once
    what Slack said (before: a 503, HubSpot's retries for a day, the batch's later changes
    waiting behind it). A refused bot token is not one of them (below)."""
    stack = crm_stack
    await raj_for_maya(stack)

    stack.sim.inject("users.lookupByEmail", error=code)
    owner = owner_to_tom("sf-2")
    stage = {"event_id": "sf-3", "type": "stage", "lead_id": SF_LEAD, "stage": "opportunity"}
    assert await salesforce(stack, [owner, stage]) == (200, {"handled": 1, "ignored": 1})
    again = owner | {"event_id": "sf-4"}
    assert await salesforce(stack, again) == (200, {"handled": 0, "ignored": 1})
    await stack.settle()

    assert (await stack.services.lead(1)).suggested_owner == MAYA
    (post,) = stack.sim.messages(ENTERPRISE)
    assert "An opportunity in the CRM" in post.all_text
    said = [r.getMessage() for r in caplog.records if "users.lookupByEmail" in r.getMessage()]
    assert len(said) == 1 and code in said[0], said
    assert not any(record.exc_info for record in caplog.records)


def token_fixes(caplog: pytest.LogCaptureFixture) -> list[str]:
    """The log's lines saying how to fix a refused bot token."""
    return [r.getMessage() for r in caplog.records if "SLACK_BOT_TOKEN" in r.getMessage()]


@pytest.mark.parametrize(
    "code",
    # Slack's common errors for a refused token (its Web API reference): "Some aspect of
    # authentication cannot be validated…", "No authentication token provided.", "Authentication
    # token is for a deleted user or workspace when using a bot token.", "Authentication token is
    # for a deleted user or workspace or the app has been removed…", "Authentication token has
    # expired". Fixed by reinstalling the app or a new SLACK_BOT_TOKEN, not for good.
    ["invalid_auth", "not_authed", "account_inactive", "token_revoked", "token_expired"],
)
async def test_an_owner_lookup_met_by_a_refused_bot_token_is_answered_503_until_it_works(
    crm_stack: LocalStack, clock: TravelClock, caplog: pytest.LogCaptureFixture, code: str
) -> None:
    """users.lookupByEmail refused because Slack refuses the bot token: the owner change is not
    lost (before: the lead kept its owner and the notification was taken, 200, for good). It is
    answered 503 with `Retry-After` (REFUSED_READ_WAIT), nothing applied, the notification
    released; the delivery worker is told, so /readyz's `slack_token` check fails and its
    auth.test probe starts; meanwhile no lookup is sent to Slack (answered 503 at once), and
    the log says once what to fix, with no traceback. Once auth.test accepts the token, the
    CRM's retry hands the lead over."""
    stack = crm_stack
    caplog.set_level(logging.INFO, logger="handoff")
    caplog.set_level(logging.INFO, logger="handoff.outbox")
    await raj_for_maya(stack)
    await refreshed(stack)
    thread_before, dms_before = len(thread(stack)), len(dms(stack, TOM))
    probes = len(stack.sim.calls_to("auth.test"))
    wait = str(crm_inbound.REFUSED_READ_WAIT)

    stack.sim.inject("users.lookupByEmail", error=code)
    owner = owner_to_tom("sf-2")
    status, answer, retry_after = await salesforce_answer(stack, owner)
    assert (status, retry_after) == (503, wait), answer
    assert "token" in answer["error"] and "again" in answer["error"], answer
    check = await wait_ready(stack, ok=False)
    assert code in check["detail"], check
    # Known refused: the CRM's retry and another change are answered at once, unasked.
    assert (await salesforce_answer(stack, owner))[::2] == (503, wait)
    assert (await salesforce_answer(stack, owner_to_tom("sf-3")))[::2] == (503, wait)
    assert len(stack.sim.calls_to("users.lookupByEmail")) == 1
    await stack.settle()
    lead_now = await stack.services.lead(1)
    assert (lead_now.owner, lead_now.suggested_owner) == (None, MAYA)
    assert (len(thread(stack)), len(dms(stack, TOM))) == (thread_before, dms_before)
    (fix,) = token_fixes(caplog)
    assert code in fix and "reinstall" in fix, fix
    assert "Traceback" not in caplog.text
    assert not any(record.exc_info for record in caplog.records)

    stack.sim.clear_faults()  # the token works again: auth.test, a minute later, says so
    await probe(stack, clock, probes)
    await wait_ready(stack, ok=True)
    clock.advance(seconds=crm_inbound.REFUSED_READ_WAIT)
    assert await salesforce(stack, owner) == (200, {"handled": 1, "ignored": 0})
    assert await salesforce(stack, owner_to_tom("sf-3")) == (200, {"handled": 0, "ignored": 1})
    await stack.settle()
    assert (await stack.services.lead(1)).suggested_owner == TOM
    assert f"Reassigned to <@{TOM}> from <@{MAYA}>" in thread(stack)[-1]
    assert len(dms(stack, TOM)) == dms_before + 1
    assert len(token_fixes(caplog)) == 1


async def test_a_hubspot_owner_change_met_by_a_revoked_bot_token_applies_once_it_works_again(
    crm_stack_both: LocalStack, clock: TravelClock, hub: HubSpotFake
) -> None:
    """End to end: the app is uninstalled (Slack refuses its bot token), and HubSpot hands a
    claimed lead to an owner Handoff finds by email in Slack (not in `crm.owners`). The
    webhook is answered 503, so HubSpot sends it again (it retries "any HTTP status code (4xx
    or 5xx)" for up to 24 hours: its Webhooks API guide, "Retries"). The app is reinstalled;
    auth.test accepts the token; HubSpot's retry reassigns the lead, in Handoff and in Slack."""
    stack = crm_stack_both
    await claimed(stack, clock)
    await refreshed(stack)
    assert (await stack.services.lead(1)).owner == MAYA
    stack.sim.add_user("U0REP9", "priya", "Priya Nair", email="priya.nair@example.com")
    priya = hub.add_owner("priya.nair@example.com", "Priya")
    probes = len(stack.sim.calls_to("auth.test"))

    stack.sim.refused_tokens.add(BOT_TOKEN)  # the app uninstalled: Slack answers invalid_auth
    clock.advance(minutes=5)
    owner = [change(21, "hubspot_owner_id", priya, at=clock())]
    status, answer = await hubspot(stack, clock, owner, version="v1")
    assert status == 503, answer
    check = await wait_ready(stack, ok=False)
    assert "invalid_auth" in check["detail"], check
    assert (await stack.services.lead(1)).owner == MAYA

    stack.sim.refused_tokens.discard(BOT_TOKEN)  # reinstalled with the same token
    await probe(stack, clock, probes)
    await wait_ready(stack, ok=True)
    clock.advance(seconds=crm_inbound.REFUSED_READ_WAIT)
    status, answer = await hubspot(stack, clock, owner, version="v1")  # HubSpot's retry
    assert (status, answer) == (200, {"handled": 1, "ignored": 0})
    await stack.settle()
    assert (await stack.services.lead(1)).owner == "U0REP9"
    assert "Reassigned to <@U0REP9> from <@U0REP1>" in thread(stack)[-1]
    (post,) = stack.sim.messages(ENTERPRISE)
    assert "<@U0REP9>" in post.all_text  # the post shows its new owner
    assert any("The CRM handed you" in text for text in dms(stack, "U0REP9"))


async def test_a_refused_bot_token_holds_back_only_its_owner_change_not_the_rest_of_the_batch(
    crm_stack_both: LocalStack, clock: TravelClock, hub: HubSpotFake
) -> None:
    """The app is uninstalled, and one HubSpot delivery (up to 100 events) brings an owner
    change that needs Slack's lookup, a new contact, and the first contact's status change.
    The owner change waits for the token (503, HubSpot's retry), and so does the change after
    it about the same contact, in its order; the new contact is taken in now, as it was before
    owner changes waited for the token (before: it waited behind the owner change, and was lost
    with it when the token stayed refused past HubSpot's last retry, 24 hours on: its Webhooks
    API guide, "Retries"). Its post waits in the outbox, as every post does meanwhile. Once
    the token works, HubSpot's retry applies the two that waited and nothing twice."""
    stack = crm_stack_both
    await claimed(stack, clock)
    await refreshed(stack)
    stack.sim.add_user("U0REP9", "priya", "Priya Nair", email="priya.nair@example.com")
    priya = hub.add_owner("priya.nair@example.com", "Priya")
    newcomer = hub.add_contact(
        "bea.costa@globex.example",
        firstname="Bea",
        lastname="Costa",
        jobtitle="VP Sales",
        company="Globex",
        numemployees="5000",
        country="AU",
        hubspotscore="90",
    )
    probes = len(stack.sim.calls_to("auth.test"))

    stack.sim.refused_tokens.add(BOT_TOKEN)  # the app uninstalled: Slack answers invalid_auth
    clock.advance(minutes=5)
    batch = [
        change(21, "hubspot_owner_id", priya, at=clock()),
        {**change(22, "x", "y", int(newcomer)), "subscriptionType": "contact.creation"},
        change(23, "hs_lead_status", "IN_PROGRESS", at=clock()),
    ]
    status, answer = await hubspot(stack, clock, batch, version="v1")
    assert status == 503 and "token" in answer["error"], answer
    assert await stack.services.store.count_leads() == 2  # Bea's lead, taken in now
    assert not [m for m in stack.sim.messages(ENTERPRISE) if "Bea Costa" in m.all_text]
    lead = await stack.services.lead(1)
    assert lead.owner == MAYA
    assert not [e for e in await stack.services.store.events(1) if e.type == "crm_status"]

    stack.sim.refused_tokens.discard(BOT_TOKEN)  # reinstalled with the same token
    await probe(stack, clock, probes)
    await wait_ready(stack, ok=True)
    status, answer = await hubspot(stack, clock, batch, version="v1")  # HubSpot's retry
    assert (status, answer) == (200, {"handled": 2, "ignored": 1}), answer
    await stack.settle()
    assert (await stack.services.lead(1)).owner == "U0REP9"
    statuses = [e for e in await stack.services.store.events(1) if e.type == "crm_status"]
    assert [e.data for e in statuses] == [{"status": "IN_PROGRESS"}]
    assert await stack.services.store.count_leads() == 2
    bea = await stack.services.lead(2)
    assert bea.email == "bea.costa@globex.example"
    posted = [m for m in stack.sim.messages(ENTERPRISE) if "Bea Costa" in m.all_text]
    assert len(posted) == 1  # posted once the token works, not before, not twice


@pytest.mark.parametrize(
    "event",
    [{"type": "app_uninstalled"}, {"type": "tokens_revoked", "tokens": {"bot": ["U0BOT"]}}],
    ids=["app_uninstalled", "tokens_revoked"],
)
async def test_an_owner_change_after_slacks_uninstall_event_waits_without_asking_slack(
    crm_stack: LocalStack, clock: TravelClock, event: dict[str, Any]
) -> None:
    """Slack said the bot token is gone (its `app_uninstalled` or `tokens_revoked` event, which
    the delivery worker takes as a refusal) before any owner lookup met it: the owner change
    that needs a lookup is answered 503 at once, naming the event, without asking Slack; once
    auth.test accepts the token, the CRM's retry hands the lead over."""
    stack = crm_stack
    await raj_for_maya(stack)
    await refreshed(stack)
    probes = len(stack.sim.calls_to("auth.test"))
    stack.sim.refused_tokens.add(BOT_TOKEN)
    assert (await stack.driver.event(event)).status == 200
    await wait_ready(stack, ok=False)

    owner = owner_to_tom("sf-2")
    status, answer, retry_after = await salesforce_answer(stack, owner)
    assert (status, retry_after) == (503, str(crm_inbound.REFUSED_READ_WAIT)), answer
    assert event["type"] in answer["error"], answer
    assert stack.sim.calls_to("users.lookupByEmail") == []
    assert (await stack.services.lead(1)).suggested_owner == MAYA

    stack.sim.refused_tokens.discard(BOT_TOKEN)
    await probe(stack, clock, probes)
    await wait_ready(stack, ok=True)
    assert await salesforce(stack, owner) == (200, {"handled": 1, "ignored": 0})
    await stack.settle()
    assert (await stack.services.lead(1)).suggested_owner == TOM


async def test_a_lead_status_retried_after_a_kill_is_one_line_in_the_lead_card(
    crm_stack_both: LocalStack, clock: TravelClock, monkeypatch: pytest.MonkeyPatch
) -> None:
    """HubSpot's `hs_lead_status` changed once. The process applying it is killed after its
    write, before its done mark; HubSpot sends the notification again (it resends a delivery
    it had no 2xx for: its Webhooks API guide, "Retries") after the 2-minute lease. The
    `/lead` card's timeline shows the CRM's status once, as does the lead's history (it used
    to show it twice)."""
    stack = crm_stack_both
    await created(stack, clock)
    status = [change(14, "hs_lead_status", "IN_PROGRESS")]

    async def killed(*_: object) -> None:
        return None

    with monkeypatch.context() as patch:
        patch.setattr(CrmInboxStore, "done", killed)
        assert await hubspot(stack, clock, status) == (200, {"handled": 1, "ignored": 0})
    clock.advance(minutes=3)
    assert await hubspot(stack, clock, status) == (200, {"handled": 0, "ignored": 1})
    await stack.settle()
    card = await stack.driver.command(MANAGER, "/lead", "hubspot:451")
    assert card.json is not None
    text = "\n".join(block.get("text", {}).get("text", "") for block in card.json["blocks"])
    assert text.count("crm status") == 1, text
    statuses = [e.data for e in await stack.services.store.events(1) if e.type == "crm_status"]
    assert statuses == [{"status": "IN_PROGRESS"}]


async def test_a_salesforce_owner_change_retried_after_a_kill_does_not_undo_a_managers_call(
    crm_stack_both: LocalStack, clock: TravelClock, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A Flow hands Raj's lead to Tom (no `at`: docs/crm-inbound.md makes it optional); the
    process is killed before the done mark; a manager then hands the lead to Maya. The Flow's
    retry of the same notification after the lease changes nothing: the lead stays Maya's,
    with no second "owner was changed in the CRM" note, no second DM to Tom, none to Maya
    (it used to hand the lead back to Tom)."""
    stack = crm_stack_both
    stack.sim.add_user(TOM, "tom", "Tom Okafor", email="tom.okafor@example.com")
    lead = {"email": "raj@globex.example", "name": "Raj Patel", "company": {"name": "Globex"}}
    lead |= {"title": "VP Sales", "score": 90}
    lead["company"] |= {"employees": 5000, "country": "AU"}
    created_change = {"event_id": "sf-1", "type": "created", "lead_id": SF_LEAD, "lead": lead}
    assert await salesforce(stack, created_change) == (200, {"handled": 1, "ignored": 0})
    await stack.settle()
    owner = {"event_id": "sf-2", "type": "owner", "lead_id": SF_LEAD, "owner_id": "0055e000001XyZw"}
    owner["owner_email"] = "tom.okafor@example.com"

    async def killed(*_: object) -> None:
        return None

    with monkeypatch.context() as patch:
        patch.setattr(CrmInboxStore, "done", killed)
        assert await salesforce(stack, owner) == (200, {"handled": 1, "ignored": 0})
    await stack.settle()
    assert (await stack.services.lead(1)).suggested_owner == TOM
    clock.advance(minutes=1)
    await stack.services.reassign(1, MANAGER, MAYA, clock())
    await stack.settle()
    notes, to_tom, to_maya = len(thread(stack)), len(dms(stack, TOM)), len(dms(stack, MAYA))

    clock.advance(minutes=2)
    assert await salesforce(stack, owner) == (200, {"handled": 0, "ignored": 1})
    await stack.settle()
    assert (await stack.services.lead(1)).suggested_owner == MAYA
    assert (len(thread(stack)), len(dms(stack, TOM)), len(dms(stack, MAYA))) == (
        notes,
        to_tom,
        to_maya,
    )
    moves = [e for e in await stack.services.store.events(1) if e.type == "reassigned"]
    assert [(e.actor, e.data["to"]) for e in moves] == [("crm", TOM), (MANAGER, MAYA)]
